//! What `GET /metrics` reports, in Prometheus' text format: counters and gauges the HTTP
//! side and the engine update from their own threads.

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering::Relaxed};

#[derive(Default)]
pub struct Metrics {
    pub requests_total: AtomicU64,
    /// Requests refused because the queue was full (503).
    pub rejected_total: AtomicU64,
    /// Sequences generating now.
    pub active: AtomicUsize,
    /// Requests waiting for a sequence slot.
    pub queued: AtomicUsize,
    pub prompt_tokens_total: AtomicU64,
    /// Prompt tokens whose K/V a slot already held (prefix reuse), not computed again.
    pub cached_tokens_total: AtomicU64,
    pub generated_tokens_total: AtomicU64,
    /// Tokens per second of the last decoding step, all sequences together (f64 bits).
    decode_rate: AtomicU64,
    /// The model is loaded and the engine runs.
    pub ready: AtomicBool,
}

impl Metrics {
    pub fn set_decode_rate(&self, tokens_per_s: f64) {
        self.decode_rate.store(tokens_per_s.to_bits(), Relaxed);
    }

    /// Take a place in a queue of at most `cap` waiting requests; false when it is full.
    pub fn try_enqueue(&self, cap: usize) -> bool {
        self.queued.fetch_update(Relaxed, Relaxed, |q| (q < cap).then_some(q + 1)).is_ok()
    }

    pub fn render(&self) -> String {
        let mut out = String::new();
        let mut put = |name: &str, kind: &str, help: &str, value: String| {
            out.push_str(&format!("# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {value}\n"));
        };
        let c = |a: &AtomicU64| a.load(Relaxed).to_string();
        put("lanterna_requests_total", "counter", "Generation requests received.", c(&self.requests_total));
        put(
            "lanterna_requests_rejected_total",
            "counter",
            "Requests refused with 503: queue full.",
            c(&self.rejected_total),
        );
        put("lanterna_requests_active", "gauge", "Sequences generating now.", self.active.load(Relaxed).to_string());
        put(
            "lanterna_queue_depth",
            "gauge",
            "Requests waiting for a sequence slot.",
            self.queued.load(Relaxed).to_string(),
        );
        put(
            "lanterna_prompt_tokens_total",
            "counter",
            "Prompt tokens of admitted requests.",
            c(&self.prompt_tokens_total),
        );
        put(
            "lanterna_prompt_tokens_cached_total",
            "counter",
            "Prompt tokens reused from a slot's cache.",
            c(&self.cached_tokens_total),
        );
        put("lanterna_generated_tokens_total", "counter", "Tokens generated.", c(&self.generated_tokens_total));
        let rate = f64::from_bits(self.decode_rate.load(Relaxed));
        put(
            "lanterna_decode_tokens_per_second",
            "gauge",
            "Tokens per second of the last decoding step, all sequences together.",
            format!("{rate:.3}"),
        );
        put("lanterna_ready", "gauge", "1 once the model is loaded.", (self.ready.load(Relaxed) as u8).to_string());
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_queue_holds_at_most_its_capacity() {
        let m = Metrics::default();
        assert!(m.try_enqueue(2) && m.try_enqueue(2));
        assert!(!m.try_enqueue(2));
        assert!(m.render().contains("lanterna_queue_depth 2\n"));
    }
}
