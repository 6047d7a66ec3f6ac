use clap::Args;
use lanterna::gguf::GgufFile;
use lanterna::tokenizer::Tokenizer;
use lanterna::{fetch, Result};

#[derive(Args)]
pub struct TokenizeArgs {
    /// GGUF file, or a known model name (smollm2, gemma3); default smollm2.
    #[arg(short, long)]
    model: Option<String>,
    /// Print {"ids":[…],"pieces":[…]}.
    #[arg(long)]
    json: bool,
    /// The text to tokenize (tokenized raw: control-token text is not parsed).
    text: String,
}

pub fn run(a: TokenizeArgs) -> Result<()> {
    let g = GgufFile::open(fetch::resolve(a.model.as_deref())?)?;
    let tok = Tokenizer::from_gguf(&g)?;
    let ids = tok.encode(&a.text)?;
    let pieces: Vec<String> = ids.iter().map(|&i| tok.display_piece_or_text(i)).collect();
    if a.json {
        println!("{}", serde_json::json!({ "ids": ids, "pieces": pieces }));
    } else {
        for (id, p) in ids.iter().zip(&pieces) {
            println!("{id:>8} {p:?}");
        }
    }
    Ok(())
}
