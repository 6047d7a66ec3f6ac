//! Everything `lanterna run` does with an untrusted file before the first token: parse the
//! GGUF, derive the configuration, build the tokenizer (and tokenize a little text), resolve
//! every weight, plan GPU memory, and dequantize the small tensors. Any panic, overflow
//! (built with -a) or runaway allocation here is a bug; errors are the expected outcome.
//!
//!     cargo +nightly fuzz run gguf_load fuzz/seeds -- -max_total_time=600

#![no_main]

use lanterna::gguf::GgufFile;
use lanterna::gpu::plan::MemoryPlan;
use lanterna::model::{Config, ModelWeights};
use lanterna::tokenizer::Tokenizer;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(g) = GgufFile::from_bytes(data.to_vec()) else { return };
    for t in &g.tensors {
        if t.n_elements <= 1 << 16 {
            let _ = g.dequantize(t);
        }
    }
    if let Ok(tok) = Tokenizer::from_gguf(&g) {
        if let Ok(ids) = tok.encode("Hello, world! 123 éß 😀") {
            let _ = tok.decode(&ids);
        }
    }
    let Ok(cfg) = Config::from_gguf(&g) else { return };
    let _ = ModelWeights::load(&cfg, &g, |_| Ok(()));
    let _ = MemoryPlan::new(&g, &cfg, 64);
});
