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
        SamplerConfig {
            temperature: 0.8,
            top_k: 40,
            top_p: 0.95,
            min_p: 0.05,
            repeat_penalty: 1.0,
            repeat_last_n: 64,
            seed: 0,
        }
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
        let all: Vec<(u32, f32)> = logits.iter().enumerate().map(|(i, &v)| (i as u32, v)).collect();
        self.sample_from(&all, history)
    }

    /// How many of the best logits `sample_from` needs to choose exactly as `sample` over
    /// the whole vocabulary would: the top-k (one when greedy) plus one per distinct
    /// penalised token, since a penalty only lowers a logit and can thus let in at most that
    /// many from below. None: the whole vocabulary (sampling with `top_k` 0).
    pub fn needs(&self, history: &[u32]) -> Option<usize> {
        let c = &self.cfg;
        let base = if c.temperature <= 0.0 { 1 } else { c.top_k };
        if base == 0 {
            return None;
        }
        let penalised = if self.penalises() {
            history.iter().rev().take(c.repeat_last_n).collect::<std::collections::HashSet<_>>().len()
        } else {
            0
        };
        Some(base + penalised)
    }

    fn penalises(&self) -> bool {
        self.cfg.repeat_penalty != 1.0 && self.cfg.repeat_last_n > 0
    }

    /// Pick the next token from (id, logit) pairs: the whole vocabulary, or at least the
    /// best `needs(history)` of it (then the choice is the same).
    pub fn sample_from(&mut self, pairs: &[(u32, f32)], history: &[u32]) -> u32 {
        if self.cfg.temperature <= 0.0 {
            return best(&self.penalized(pairs, history));
        }
        let cand = self.candidates_of(pairs, history);
        let r = self.rng.next_f64();
        let mut cum = 0.0;
        for &(id, p) in &cand {
            cum += p;
            if r < cum {
                return id;
            }
        }
        cand.last().map_or(0, |c| c.0)
    }

    /// The pairs after the repetition penalty over the last `repeat_last_n` tokens of
    /// `history`: llama.cpp shrinks positive logits and pushes negative ones further down,
    /// once per distinct token.
    pub fn penalized(&self, pairs: &[(u32, f32)], history: &[u32]) -> Vec<(u32, f32)> {
        let c = &self.cfg;
        let mut out = pairs.to_vec();
        if self.penalises() {
            let seen: std::collections::HashSet<u32> = history.iter().rev().take(c.repeat_last_n).copied().collect();
            for (id, v) in out.iter_mut().filter(|(id, _)| seen.contains(id)) {
                let _ = id;
                *v = if *v > 0.0 { *v / c.repeat_penalty } else { *v * c.repeat_penalty };
            }
        }
        out
    }

    /// What the draw chooses from at temperature > 0: the candidates that survive
    /// penalty → top-k → top-p → min-p, highest logit first (ties: lower id first), with
    /// their probabilities after temperature. Top-p and min-p see temperature-1
    /// probabilities, as in llama.cpp's chain, where temperature comes after them.
    pub fn candidates(&self, logits: &[f32], history: &[u32]) -> Vec<(u32, f64)> {
        let all: Vec<(u32, f32)> = logits.iter().enumerate().map(|(i, &v)| (i as u32, v)).collect();
        self.candidates_of(&all, history)
    }

    /// `candidates` from (id, logit) pairs (see `sample_from`).
    pub fn candidates_of(&self, pairs: &[(u32, f32)], history: &[u32]) -> Vec<(u32, f64)> {
        let c = &self.cfg;
        let mut cand = self.penalized(pairs, history);
        cand.retain(|(_, v)| !v.is_nan());
        if cand.is_empty() {
            return Vec::new();
        }
        let k = if c.top_k == 0 { cand.len() } else { c.top_k.min(cand.len()) };
        if k < cand.len() {
            cand.select_nth_unstable_by(k - 1, order);
            cand.truncate(k);
        }
        cand.sort_by(order);
        if c.top_p < 1.0 {
            let p = softmax(&cand, 1.0);
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
            let p = softmax(&cand, 1.0);
            let floor = p[0] * c.min_p as f64;
            let keep = p.iter().take_while(|&&pi| pi >= floor).count();
            cand.truncate(keep.max(1));
        }
        let p = softmax(&cand, c.temperature);
        cand.iter().zip(p).map(|(&(id, _), p)| (id, p)).collect()
    }
}

/// Higher logit first, lower id on ties.
fn order(a: &(u32, f32), b: &(u32, f32)) -> std::cmp::Ordering {
    b.1.total_cmp(&a.1).then(a.0.cmp(&b.0))
}

/// `argmax` over pairs in any order: the highest logit, the lowest id on ties, NaN never
/// winning (0 when every logit is NaN, as `argmax`).
fn best(pairs: &[(u32, f32)]) -> u32 {
    let mut top: Option<(u32, f32)> = None;
    for &(id, v) in pairs.iter().filter(|(_, v)| !v.is_nan()) {
        if top.is_none_or(|(tid, tv)| v > tv || (v == tv && id < tid)) {
            top = Some((id, v));
        }
    }
    top.map_or(0, |t| t.0)
}

/// The best `k` (id, logit) of `logits`, best first (higher logit, then lower id; NaN
/// last): the CPU twin of shaders/topk.wgsl.
pub fn top_of(logits: &[f32], k: usize) -> Vec<(u32, f32)> {
    let nan_last =
        |a: &(u32, f32), b: &(u32, f32)| a.1.is_nan().cmp(&b.1.is_nan()).then(b.1.total_cmp(&a.1)).then(a.0.cmp(&b.0));
    let mut all: Vec<(u32, f32)> = logits.iter().enumerate().map(|(i, &v)| (i as u32, v)).collect();
    let k = k.min(all.len());
    if k > 0 && k < all.len() {
        all.select_nth_unstable_by(k - 1, nan_last);
        all.truncate(k);
    }
    all.sort_by(nan_last);
    all
}

/// Probabilities of sorted candidates (highest logit first) at temperature `t`.
fn softmax(cand: &[(u32, f32)], t: f32) -> Vec<f64> {
    let max = cand[0].1 as f64;
    let e: Vec<f64> = cand.iter().map(|&(_, v)| ((v as f64 - max) / t as f64).exp()).collect();
    let s: f64 = e.iter().sum();
    e.into_iter().map(|x| x / s).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(temperature: f32) -> SamplerConfig {
        SamplerConfig { temperature, top_k: 0, top_p: 1.0, min_p: 0.0, repeat_penalty: 1.0, repeat_last_n: 64, seed: 7 }
    }

    /// Logits of 37 tokens (not a round number) from a fixed seed.
    fn logits() -> Vec<f32> {
        let mut r = Rng::new(42);
        (0..37).map(|_| (r.next_f64() * 8.0 - 4.0) as f32).collect()
    }

    #[test]
    fn greedy_takes_the_lowest_id_on_ties() {
        let mut s = Sampler::new(cfg(0.0));
        assert_eq!(s.sample(&[1.0, 3.0, 3.0, -1.0], &[]), 1);
        assert_eq!(argmax(&[f32::NAN, 0.5, 0.2]), 1);
    }

    #[test]
    fn same_seed_same_tokens() {
        let l = logits();
        let draw = |seed| {
            let mut s = Sampler::new(SamplerConfig { seed, ..cfg(1.0) });
            (0..64).map(|_| s.sample(&l, &[])).collect::<Vec<_>>()
        };
        assert_eq!(draw(3), draw(3));
        assert_ne!(draw(3), draw(4));
    }

    #[test]
    fn truncations_down_to_one_candidate_are_greedy() {
        let l = logits();
        let best = argmax(&l);
        for c in [
            SamplerConfig { top_k: 1, ..cfg(1.5) },
            SamplerConfig { top_p: 1e-6, ..cfg(1.5) },
            SamplerConfig { min_p: 1.0, ..cfg(1.5) },
        ] {
            let mut s = Sampler::new(c.clone());
            for _ in 0..50 {
                assert_eq!(s.sample(&l, &[]), best, "{c:?}");
            }
        }
    }

    #[test]
    fn top_k_keeps_only_the_k_best() {
        let l = logits();
        let mut order: Vec<u32> = (0..l.len() as u32).collect();
        order.sort_by(|&a, &b| l[b as usize].total_cmp(&l[a as usize]));
        let mut s = Sampler::new(SamplerConfig { top_k: 3, ..cfg(5.0) });
        let mut seen = std::collections::HashSet::new();
        for _ in 0..500 {
            let t = s.sample(&l, &[]);
            assert!(order[..3].contains(&t), "token {t} is outside the top 3");
            seen.insert(t);
        }
        assert_eq!(seen.len(), 3, "at temperature 5 all three should appear in 500 draws");
    }

    /// With two tokens at logits 0 and ln 3, token 1 has probability 3/4. Over 20000
    /// draws the frequency's standard deviation is sqrt(.75*.25/20000) ≈ 0.003;
    /// 0.015 is five of them, so a correct sampler fails this about once in 10^6 seeds.
    const FREQ_TOL: f64 = 0.015;

    #[test]
    fn draws_follow_the_softmax() {
        let l = [0.0, 3f32.ln()];
        let mut s = Sampler::new(cfg(1.0));
        let n = 20000;
        let ones = (0..n).filter(|_| s.sample(&l, &[]) == 1).count();
        let f = ones as f64 / n as f64;
        assert!((f - 0.75).abs() < FREQ_TOL, "frequency {f}");
    }

    #[test]
    fn repeat_penalty_demotes_recent_tokens() {
        let l = [2.0, 1.9, -1.0];
        let mut s = Sampler::new(SamplerConfig { repeat_penalty: 1.5, ..cfg(0.0) });
        assert_eq!(s.sample(&l, &[5]), 0);
        assert_eq!(s.sample(&l, &[0]), 1, "2.0/1.5 < 1.9");
        let l = [-1.0, -1.2];
        assert_eq!(s.sample(&l, &[0]), 1, "-1.0*1.5 < -1.2");
    }
}
