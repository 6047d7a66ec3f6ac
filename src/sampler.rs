//! Logits → next token, on the CPU. The chain follows llama.cpp's default order:
//! repetition penalty → top-k → top-p → min-p → temperature → seeded draw.
//! Temperature 0 (or below) is greedy: the highest logit, lowest id on ties.

#[derive(Clone, Debug)]
pub struct SamplerConfig {
    pub temperature: f32,
    /// 0 disables.
    pub top_k: usize,
    /// 1.0 disables.
    pub top_p: f32,
    /// 0.0 disables.
    pub min_p: f32,
    /// 1.0 disables.
    pub repeat_penalty: f32,
    /// How many of the most recent tokens the penalty looks at.
    pub repeat_last_n: usize,
    pub seed: u64,
}

impl Default for SamplerConfig {
    fn default() -> Self {
        // llama.cpp's defaults.
        SamplerConfig { temperature: 0.8, top_k: 40, top_p: 0.95, min_p: 0.05, repeat_penalty: 1.0, repeat_last_n: 64, seed: 0 }
    }
}

/// SplitMix64: small, fast, and the same sequence on every platform for a seed.
#[derive(Clone, Debug)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed)
    }
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    /// Uniform in [0, 1).
    pub fn next_f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
}

pub struct Sampler {
    pub cfg: SamplerConfig,
    rng: Rng,
}

/// Index of the largest value, lowest index on ties (NaN never wins).
pub fn argmax(logits: &[f32]) -> u32 {
    let mut best = 0;
    for (i, &v) in logits.iter().enumerate() {
        if v > logits[best] || logits[best].is_nan() {
            best = i;
        }
    }
    best as u32
}

impl Sampler {
    pub fn new(cfg: SamplerConfig) -> Self {
        let rng = Rng::new(cfg.seed);
        Sampler { cfg, rng }
    }

    /// Pick the next token. `history` is every token so far (prompt included).
    pub fn sample(&mut self, logits: &[f32], history: &[u32]) -> u32 {
        let c = &self.cfg;
        let mut logits = std::borrow::Cow::Borrowed(logits);
        if c.repeat_penalty != 1.0 && c.repeat_last_n > 0 {
            let l = logits.to_mut();
            let mut seen = std::collections::HashSet::new();
            for &t in history.iter().rev().take(c.repeat_last_n) {
                if seen.insert(t) {
                    if let Some(v) = l.get_mut(t as usize) {
                        // llama.cpp: shrink positive logits, push negative ones further down.
                        *v = if *v > 0.0 { *v / c.repeat_penalty } else { *v * c.repeat_penalty };
                    }
                }
            }
        }
        if c.temperature <= 0.0 {
            return argmax(&logits);
        }

        // Candidates sorted by logit, highest first (ties: lower id first).
        let mut cand: Vec<(u32, f32)> = logits.iter().enumerate().filter(|(_, v)| !v.is_nan()).map(|(i, &v)| (i as u32, v)).collect();
        if cand.is_empty() {
            return 0;
        }
        let k = if c.top_k == 0 { cand.len() } else { c.top_k.min(cand.len()) };
        if k < cand.len() {
            cand.select_nth_unstable_by(k - 1, |a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
            cand.truncate(k);
        }
        cand.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));

        // Probabilities at temperature 1 for top-p / min-p (as llama.cpp applies them before temp).
        let probs = |cand: &[(u32, f32)], t: f32| -> Vec<f64> {
            let max = cand[0].1 as f64;
            let e: Vec<f64> = cand.iter().map(|&(_, v)| ((v as f64 - max) / t as f64).exp()).collect();
            let s: f64 = e.iter().sum();
            e.into_iter().map(|x| x / s).collect()
        };
        if c.top_p < 1.0 {
            let p = probs(&cand, 1.0);
            let mut cum = 0.0;
            let mut keep = cand.len();
            for (i, pi) in p.iter().enumerate() {
                cum += pi;
                if cum >= c.top_p as f64 {
                    keep = i + 1;
                    break;
                }
            }
            cand.truncate(keep.max(1));
        }
        if c.min_p > 0.0 {
            let p = probs(&cand, 1.0);
            let floor = p[0] * c.min_p as f64;
            let keep = p.iter().take_while(|&&pi| pi >= floor).count();
            cand.truncate(keep.max(1));
        }
        let p = probs(&cand, c.temperature);
        let r = self.rng.next_f64();
        let mut cum = 0.0;
        for (i, pi) in p.iter().enumerate() {
            cum += pi;
            if r < cum {
                return cand[i].0;
            }
        }
        cand[cand.len() - 1].0
    }
}
