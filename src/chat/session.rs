//! A conversation held across turns: each turn renders the whole conversation, tokenizes
//! it, and reuses the KV cache for the longest token prefix it shares with what is already
//! computed, so a turn prefills only its new tokens — and answers exactly what a fresh run
//! over the same history would.

use serde_json::{json, Value};

use super::ChatTemplate;
use crate::error::Result;
use crate::generate::{generate_from, Executor, Generation};
use crate::sampler::Sampler;
use crate::tokenizer::Tokenizer;

/// One answered turn.
pub struct Turn {
    pub text: String,
    pub prompt_tokens: usize,
    /// Prompt tokens whose keys and values were already in the cache.
    pub reused_tokens: usize,
    /// Turns dropped from the front to fit the context (the system message stays).
    pub dropped_turns: usize,
    pub gen: Generation,
}

pub struct Session {
    pub template: ChatTemplate,
    pub system: Option<String>,
    /// Every message after the system one, in order.
    pub messages: Vec<Value>,
    /// The tokens whose keys and values the executor's cache holds, in order.
    cached: Vec<u32>,
}

impl Session {
    pub fn new(template: ChatTemplate, system: Option<String>) -> Self {
        Session { template, system, messages: Vec::new(), cached: Vec::new() }
    }

    /// The conversation as an OpenAI messages array (what `/save` writes).
    pub fn all_messages(&self) -> Value {
        let system = self.system.iter().map(|s| json!({"role": "system", "content": s}));
        Value::Array(system.chain(self.messages.iter().cloned()).collect())
    }

    /// Forget the turns (and what the cache holds of them).
    pub fn reset(&mut self) {
        self.messages.clear();
        self.cached.clear();
    }

    fn prompt(&self, tok: &Tokenizer) -> Result<Vec<u32>> {
        tok.encode_special(&self.template.apply(tok, &self.all_messages(), None, true)?)
    }

    /// Answer `user`: up to `max_tokens`, ending at the model's end-of-turn token.
    pub fn turn(
        &mut self,
        exec: &mut dyn Executor,
        tok: &Tokenizer,
        sampler: &mut Sampler,
        user: &str,
        max_tokens: usize,
        on_token: impl FnMut(u32) -> Result<()>,
    ) -> Result<Turn> {
        self.messages.push(json!({"role": "user", "content": user}));
        let mut prompt = self.prompt(tok)?;
        let mut dropped_turns = 0;
        // Too long for the context: drop the oldest exchanges (never the system message or
        // the new question) until the prompt and the answer fit.
        while prompt.len() + max_tokens > exec.n_ctx() && self.messages.len() > 1 {
            let cut = self.messages.iter().skip(1).position(|m| m["role"] == "user").map_or(1, |i| i + 1);
            self.messages.drain(..cut);
            dropped_turns += 1;
            prompt = self.prompt(tok)?;
        }
        let reused = common_prefix(&self.cached, &prompt).min(exec.n_pos());
        let gen = match generate_from(exec, tok, sampler, (&prompt, reused), max_tokens, false, on_token) {
            Ok(g) => g,
            Err(e) => {
                self.messages.pop();
                self.cached.clear();
                return Err(e);
            }
        };
        let reused_tokens = reused.min(prompt.len() - 1);
        // The cache now holds the prompt and every answer token but the last, which was
        // sampled and never run.
        self.cached = prompt.clone();
        self.cached.extend(gen.tokens.iter().take(gen.tokens.len().saturating_sub(1)));
        let answer: Vec<u32> = gen.tokens.iter().copied().filter(|&t| !tok.is_eog(t)).collect();
        let text = tok.decode(&answer);
        self.messages.push(json!({"role": "assistant", "content": text}));
        Ok(Turn { text, prompt_tokens: prompt.len(), reused_tokens, dropped_turns, gen })
    }
}

fn common_prefix(a: &[u32], b: &[u32]) -> usize {
    a.iter().zip(b).take_while(|(x, y)| x == y).count()
}
