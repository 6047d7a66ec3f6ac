//! The engine: one thread that owns the model and runs every request. Up to `n_seq`
//! sequences, each in its own slot of the KV cache, join and leave the running batch at
//! every step (continuous batching): a new request is admitted into a free slot — the one
//! whose cached tokens share the longest prefix with its prompt, so a conversation's next
//! turn prefills only what is new; where another slot holds a longer beginning of the
//! prompt (the system prompt every request starts with), those positions are copied from
//! it (`Executor::copy_prefix`) instead of computed again — then every active sequence advances one token per step
//! through `Executor::decode_batch`. A request whose client has gone (its event channel
//! closed) is cancelled before the next step and its slot freed.

use std::collections::VecDeque;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::mpsc::Receiver;
use std::time::Instant;

use tokio::sync::mpsc::UnboundedSender;

use super::metrics::Metrics;
use super::stops::StopScan;
use crate::error::Result;
use crate::generate::Executor;
use crate::sampler::{Sampler, SamplerConfig};
use crate::tokenizer::{StreamDecoder, Tokenizer};

/// A request for the engine, prompt tokenized and checked against the context.
pub struct Job {
    pub id: String,
    pub prompt: Vec<u32>,
    /// At most what the context leaves after the prompt.
    pub max_tokens: usize,
    pub sampling: SamplerConfig,
    pub stop: Vec<String>,
    /// Where the text goes; closed when the client has gone.
    pub events: UnboundedSender<Event>,
    pub received: Instant,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Finish {
    /// End of turn, or a stop string.
    Stop,
    Length,
    /// The client went away.
    Cancelled,
}

impl Finish {
    pub fn as_str(self) -> &'static str {
        match self {
            Finish::Stop => "stop",
            Finish::Length => "length",
            Finish::Cancelled => "cancelled",
        }
    }
}

#[derive(Debug, Clone)]
pub struct Usage {
    pub prompt_tokens: usize,
    /// Prompt tokens found in the slot's cache.
    pub cached_tokens: usize,
    pub completion_tokens: usize,
}

#[derive(Debug)]
pub enum Event {
    Text(String),
    Done(Finish, Usage),
    /// The model failed on this request (the server goes on).
    Failed(String),
}

/// A running request.
struct Active {
    job: Job,
    sampler: Sampler,
    /// Prompt and generated tokens (the repetition penalty's window).
    history: Vec<u32>,
    generated: usize,
    cached: usize,
    decoder: StreamDecoder,
    scan: StopScan,
    /// The token the next step feeds.
    next: u32,
}

/// A sequence of the KV cache: the tokens whose K/V it holds, and what runs in it.
#[derive(Default)]
struct Slot {
    tokens: Vec<u32>,
    last_used: u64,
    active: Option<Active>,
}

pub struct Engine<'a> {
    exec: &'a mut dyn Executor,
    tok: &'a Tokenizer,
    metrics: &'a Metrics,
    slots: Vec<Slot>,
    waiting: VecDeque<Job>,
    clock: u64,
}

impl<'a> Engine<'a> {
    pub fn new(exec: &'a mut dyn Executor, tok: &'a Tokenizer, metrics: &'a Metrics) -> Self {
        let slots = (0..exec.n_seq()).map(|_| Slot::default()).collect();
        Engine { exec, tok, metrics, slots, waiting: VecDeque::new(), clock: 0 }
    }

    /// Serve jobs from `rx` until it is closed and every admitted job is done.
    pub fn run(mut self, rx: Receiver<Job>) {
        loop {
            let busy = self.slots.iter().any(|s| s.active.is_some()) || !self.waiting.is_empty();
            if !busy {
                match rx.recv() {
                    Ok(j) => self.waiting.push_back(j),
                    Err(_) => return,
                }
            }
            while let Ok(j) = rx.try_recv() {
                self.waiting.push_back(j);
            }
            self.admit();
            self.step();
        }
    }

    /// Start waiting jobs in free slots.
    fn admit(&mut self) {
        while let Some(s) = self.free_slot() {
            let Some(job) = self.waiting.pop_front() else { return };
            self.metrics.queued.fetch_sub(1, Relaxed);
            if job.events.is_closed() {
                log(&job, Finish::Cancelled.as_str(), 0, 0, 0);
                continue;
            }
            self.metrics.active.fetch_add(1, Relaxed);
            self.start(s, job);
        }
    }

    /// The free slot sharing the longest prefix with the next job's prompt (the least
    /// recently used among equals).
    fn free_slot(&self) -> Option<usize> {
        let prompt = &self.waiting.front()?.prompt;
        let common = |s: &Slot| common_prefix(&s.tokens, prompt);
        let free = self.slots.iter().enumerate().filter(|(_, s)| s.active.is_none());
        free.max_by_key(|(_, s)| (common(s), std::cmp::Reverse(s.last_used))).map(|(i, _)| i)
    }

    /// Prefill the job's prompt in slot `s` and take its first token.
    fn start(&mut self, s: usize, job: Job) {
        let (logits, reuse) = match self.prefill(s, &job.prompt) {
            Ok(r) => r,
            Err(e) => {
                self.slots[s].tokens.clear();
                log(&job, "error", job.prompt.len(), 0, 0);
                let _ = job.events.send(Event::Failed(e.to_string()));
                self.metrics.active.fetch_sub(1, Relaxed);
                return;
            }
        };
        self.metrics.prompt_tokens_total.fetch_add(job.prompt.len() as u64, Relaxed);
        self.metrics.cached_tokens_total.fetch_add(reuse as u64, Relaxed);
        let mut a = Active {
            sampler: Sampler::new(job.sampling.clone()),
            history: job.prompt.clone(),
            generated: 0,
            cached: reuse,
            decoder: StreamDecoder::default(),
            scan: StopScan::new(job.stop.clone()),
            next: 0,
            job,
        };
        let token = a.sampler.sample(&logits, &a.history);
        match self.take(&mut a, token) {
            Some(f) => self.finish(a, f),
            None => self.slots[s].active = Some(a),
        }
    }

    /// `prompt` into slot `s`'s cache, keeping what it shares with the cached tokens: the
    /// logits after it, and how many tokens were reused.
    fn prefill(&mut self, s: usize, prompt: &[u32]) -> Result<(Vec<f32>, usize)> {
        self.exec.select_seq(s)?;
        // At least the prompt's last token runs, for its logits.
        let most = prompt.len() - 1;
        let own = common_prefix(&self.slots[s].tokens, prompt).min(most).min(self.exec.n_pos());
        let (from, shared) = self.longest_prefix(s, prompt);
        let shared = shared.min(most);
        // Another slot holds more of the prompt (a system prompt every request starts
        // with): its positions are copied in rather than computed again.
        let reuse = if shared > own && self.exec.copy_prefix(from, shared).is_ok() {
            shared
        } else {
            self.exec.rewind(own)?;
            own
        };
        let slot = &mut self.slots[s];
        slot.tokens.truncate(reuse);
        let logits = self.exec.prefill(&prompt[reuse..], reuse)?.to_vec();
        slot.tokens = prompt.to_vec();
        self.clock += 1;
        slot.last_used = self.clock;
        Ok((logits, reuse))
    }

    /// The slot other than `s` whose cached tokens begin with the longest part of
    /// `prompt`, and that length (0 if none shares a token).
    fn longest_prefix(&self, s: usize, prompt: &[u32]) -> (usize, usize) {
        let others = self.slots.iter().enumerate().filter(|&(i, _)| i != s);
        others.map(|(i, o)| (i, common_prefix(&o.tokens, prompt))).max_by_key(|&(_, n)| n).unwrap_or((s, 0))
    }

    /// One token for every active sequence, in one batch.
    fn step(&mut self) {
        for s in 0..self.slots.len() {
            if let Some(a) = self.slots[s].active.take_if(|a| a.job.events.is_closed()) {
                self.finish(a, Finish::Cancelled);
            }
        }
        let items: Vec<(usize, u32)> =
            self.slots.iter().enumerate().filter_map(|(i, s)| s.active.as_ref().map(|a| (i, a.next))).collect();
        if items.is_empty() {
            return;
        }
        let t = Instant::now();
        let rows = match self.exec.decode_batch(&items) {
            Ok(r) => r,
            Err(e) => {
                let msg = e.to_string();
                items.iter().for_each(|&(s, _)| self.fail(s, &msg));
                return;
            }
        };
        self.metrics.set_decode_rate(items.len() as f64 / t.elapsed().as_secs_f64().max(1e-9));
        let n_vocab = rows.len() / items.len();
        for (&(s, fed), row) in items.iter().zip(rows.chunks(n_vocab)) {
            self.slots[s].tokens.push(fed);
            let Some(mut a) = self.slots[s].active.take() else { continue };
            let token = a.sampler.sample(row, &a.history);
            match self.take(&mut a, token) {
                Some(f) => self.finish(a, f),
                None => self.slots[s].active = Some(a),
            }
        }
    }

    /// Account for a sampled token and send its text; why the sequence ends, if it does.
    fn take(&self, a: &mut Active, token: u32) -> Option<Finish> {
        a.history.push(token);
        a.generated += 1;
        self.metrics.generated_tokens_total.fetch_add(1, Relaxed);
        if self.tok.is_eog(token) {
            return Some(Finish::Stop);
        }
        let (text, stopped) = a.scan.push(&a.decoder.push(self.tok, token));
        if !text.is_empty() {
            let _ = a.job.events.send(Event::Text(text));
        }
        if stopped {
            return Some(Finish::Stop);
        }
        // The next step would feed this token at position history.len() - 1.
        if a.generated >= a.job.max_tokens || a.history.len() > self.exec.n_ctx() {
            return Some(Finish::Length);
        }
        a.next = token;
        None
    }

    fn finish(&mut self, mut a: Active, f: Finish) {
        // What is held back goes out, unless the client has gone or a stop string ended it.
        if f != Finish::Cancelled && !a.scan.stopped() {
            let (mut rest, _) = a.scan.push(&a.decoder.finish());
            rest += &a.scan.finish();
            if !rest.is_empty() {
                let _ = a.job.events.send(Event::Text(rest));
            }
        }
        let usage =
            Usage { prompt_tokens: a.job.prompt.len(), cached_tokens: a.cached, completion_tokens: a.generated };
        log(&a.job, f.as_str(), usage.prompt_tokens, usage.cached_tokens, usage.completion_tokens);
        let _ = a.job.events.send(Event::Done(f, usage));
        self.metrics.active.fetch_sub(1, Relaxed);
    }

    /// The model failed on slot `s`'s job: tell its client, forget the slot's cache.
    fn fail(&mut self, s: usize, msg: &str) {
        let slot = &mut self.slots[s];
        slot.tokens.clear();
        if let Some(a) = slot.active.take() {
            log(&a.job, "error", a.job.prompt.len(), 0, a.generated);
            let _ = a.job.events.send(Event::Failed(msg.to_string()));
            self.metrics.active.fetch_sub(1, Relaxed);
        }
    }
}

/// How many tokens `a` and `b` share from the start.
fn common_prefix(a: &[u32], b: &[u32]) -> usize {
    a.iter().zip(b).take_while(|(x, y)| x == y).count()
}

fn log(job: &Job, finish: &str, prompt: usize, cached: usize, generated: usize) {
    let ms = job.received.elapsed().as_secs_f64() * 1e3;
    eprintln!(
        "lanterna serve: {} finish={finish} prompt_tokens={prompt} cached_tokens={cached} generated_tokens={generated} time_ms={ms:.0}",
        job.id
    );
}
