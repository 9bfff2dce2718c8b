//! Logit processors and samplers: penalties, temperature, top-k, top-p, min-p, seeded sampling.

use crate::error::{Error, Result};

/// Sampling options. `temperature == 0` means greedy.
#[derive(Clone, Debug, PartialEq)]
pub struct SamplingOptions {
    /// Softmax temperature; 0 = greedy (always the most likely token).
    pub temperature: f32,
    /// Keep the `top_k` most likely tokens (0 = off).
    pub top_k: usize,
    /// Keep the smallest set whose probability mass reaches `top_p` (1 = off).
    pub top_p: f32,
    /// Drop tokens whose probability is below `min_p` times the best one's (0 = off).
    pub min_p: f32,
    /// Divides positive (multiplies negative) logits of recent tokens (1 = off).
    pub repetition_penalty: f32,
    /// Subtracted once from the logit of every recent token (0 = off).
    pub presence_penalty: f32,
    /// Subtracted per occurrence of a recent token (0 = off).
    pub frequency_penalty: f32,
    /// How many recent tokens the penalties look at.
    pub penalty_window: usize,
    /// Seed of the sampler's random numbers: the same seed and options give the same output.
    pub seed: u64,
    /// Added to the logits of the given tokens before anything else (ban with `f32::NEG_INFINITY`).
    pub logit_bias: Vec<(u32, f32)>,
}

impl Default for SamplingOptions {
    fn default() -> Self {
        SamplingOptions {
            temperature: 0.3,
            top_k: 0,
            top_p: 1.0,
            min_p: 0.15,
            repetition_penalty: 1.05,
            presence_penalty: 0.0,
            frequency_penalty: 0.0,
            penalty_window: 64,
            seed: 0,
            logit_bias: Vec::new(),
        }
    }
}

impl SamplingOptions {
    /// Greedy decoding with no penalties.
    pub fn greedy() -> Self {
        SamplingOptions {
            temperature: 0.0,
            min_p: 0.0,
            repetition_penalty: 1.0,
            ..Default::default()
        }
    }

    /// Refuses values outside their ranges (NaN, negative temperature, p outside 0..=1, ...) with [`crate::Error::InvalidArgument`].
    pub fn validate(&self) -> Result<()> {
        let bad = |what: &str| Err(Error::InvalidArgument(format!("sampling: {what}")));
        if !(self.temperature.is_finite() && self.temperature >= 0.0) {
            return bad("temperature must be finite and >= 0");
        }
        if !(self.top_p > 0.0 && self.top_p <= 1.0) {
            return bad("top_p must be in (0, 1]");
        }
        if !(0.0..=1.0).contains(&self.min_p) {
            return bad("min_p must be in [0, 1]");
        }
        if !(self.repetition_penalty.is_finite() && self.repetition_penalty > 0.0) {
            return bad("repetition_penalty must be finite and > 0");
        }
        if !self.presence_penalty.is_finite() || !self.frequency_penalty.is_finite() {
            return bad("penalties must be finite");
        }
        if self.logit_bias.iter().any(|(_, b)| b.is_nan()) {
            return bad("logit_bias values must not be NaN");
        }
        Ok(())
    }
}

/// splitmix64: a tiny, stable PRNG so a seed gives the same output on every platform forever.
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

/// A stateful sampler (holds the RNG).
#[derive(Clone, Debug)]
pub struct Sampler {
    pub options: SamplingOptions,
    rng: Rng,
}

impl Sampler {
    pub fn new(options: SamplingOptions) -> Result<Self> {
        options.validate()?;
        let rng = Rng::new(options.seed);
        Ok(Sampler { options, rng })
    }

    /// Picks the next token. `logits` is modified (penalties, masking); `history` is the token
    /// sequence so far (the penalties look at its last `penalty_window` tokens).
    pub fn sample(&mut self, logits: &mut [f32], history: &[u32]) -> u32 {
        for &(t, b) in &self.options.logit_bias {
            if let Some(l) = logits.get_mut(t as usize) {
                *l += b;
            }
        }
        apply_penalties(logits, history, &self.options);
        if self.options.temperature == 0.0 {
            return argmax(logits);
        }
        let candidates = self.candidates(logits);
        let r = self.rng.next_f64();
        let mut acc = 0.0;
        for &(id, p) in &candidates {
            acc += p;
            if r < acc {
                return id;
            }
        }
        candidates.last().map_or_else(|| argmax(logits), |c| c.0)
    }

    /// Surviving (token, probability) pairs after temperature, top-k, min-p and top-p,
    /// sorted by probability, renormalized. Only the survivors of min-p and top-k are sorted
    /// (both are monotone in the logit, so filtering first keeps exactly the same set).
    fn candidates(&self, logits: &[f32]) -> Vec<(u32, f64)> {
        let o = &self.options;
        let Some(max) = logits
            .iter()
            .copied()
            .filter(|l| l.is_finite())
            .max_by(f32::total_cmp)
        else {
            return Vec::new();
        };
        let t = o.temperature as f64;
        let weight = |l: f32| ((l - max) as f64 / t).exp();
        // The best token has weight 1, so min-p is a plain threshold on the weight.
        let mut c: Vec<(u32, f32)> = logits
            .iter()
            .enumerate()
            .filter(|&(_, &l)| l.is_finite() && (o.min_p <= 0.0 || weight(l) >= o.min_p as f64))
            .map(|(i, &l)| (i as u32, l))
            .collect();
        let order = |a: &(u32, f32), b: &(u32, f32)| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0));
        if o.top_k > 0 && c.len() > o.top_k {
            c.select_nth_unstable_by(o.top_k - 1, order);
            c.truncate(o.top_k);
        }
        c.sort_by(order);
        let mut probs: Vec<(u32, f64)> = c.iter().map(|&(i, l)| (i, weight(l))).collect();
        normalize(&mut probs);
        if o.top_p < 1.0 {
            let mut acc = 0.0;
            let keep = probs
                .iter()
                .position(|&(_, p)| {
                    acc += p;
                    acc >= o.top_p as f64
                })
                .map_or(probs.len(), |i| i + 1);
            probs.truncate(keep);
            normalize(&mut probs);
        }
        probs
    }
}

fn normalize(probs: &mut [(u32, f64)]) {
    let sum: f64 = probs.iter().map(|p| p.1).sum();
    if sum > 0.0 {
        probs.iter_mut().for_each(|p| p.1 /= sum);
    }
}

/// Index of the largest logit (lowest index on ties).
pub fn argmax(logits: &[f32]) -> u32 {
    let mut best = 0;
    for (i, &l) in logits.iter().enumerate() {
        if l > logits[best] {
            best = i;
        }
    }
    best as u32
}

fn apply_penalties(logits: &mut [f32], history: &[u32], o: &SamplingOptions) {
    if o.repetition_penalty == 1.0 && o.presence_penalty == 0.0 && o.frequency_penalty == 0.0 {
        return;
    }
    let window = &history[history.len().saturating_sub(o.penalty_window)..];
    let mut counts: std::collections::HashMap<u32, u32> = std::collections::HashMap::new();
    for &t in window {
        *counts.entry(t).or_default() += 1;
    }
    for (&t, &n) in &counts {
        let Some(l) = logits.get_mut(t as usize) else {
            continue;
        };
        *l = if *l > 0.0 {
            *l / o.repetition_penalty
        } else {
            *l * o.repetition_penalty
        };
        *l -= o.presence_penalty + o.frequency_penalty * n as f32;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn greedy_picks_argmax_and_penalties_change_it() {
        let mut s = Sampler::new(SamplingOptions::greedy()).unwrap();
        assert_eq!(s.sample(&mut [0.1, 2.0, 1.9], &[]), 1);
        let mut s = Sampler::new(SamplingOptions {
            repetition_penalty: 2.0,
            ..SamplingOptions::greedy()
        })
        .unwrap();
        assert_eq!(s.sample(&mut [0.1, 2.0, 1.9], &[1]), 2);
        let mut s = Sampler::new(SamplingOptions {
            presence_penalty: 0.5,
            ..SamplingOptions::greedy()
        })
        .unwrap();
        assert_eq!(s.sample(&mut [0.1, 2.0, 1.9], &[1, 1]), 2);
    }

    #[test]
    fn same_seed_same_tokens_and_filters_hold() {
        let opts = SamplingOptions {
            temperature: 1.0,
            top_k: 3,
            min_p: 0.0,
            repetition_penalty: 1.0,
            seed: 7,
            ..Default::default()
        };
        let logits: Vec<f32> = (0..50).map(|i| (i as f32 * 0.37).sin() * 3.0).collect();
        let run = |opts: &SamplingOptions| {
            let mut s = Sampler::new(opts.clone()).unwrap();
            (0..200)
                .map(|_| s.sample(&mut logits.clone(), &[]))
                .collect::<Vec<_>>()
        };
        let a = run(&opts);
        assert_eq!(a, run(&opts));
        let mut top3: Vec<u32> = (0..50).collect();
        top3.sort_by(|&x, &y| logits[y as usize].total_cmp(&logits[x as usize]));
        assert!(a.iter().all(|t| top3[..3].contains(t)), "top-k violated");
        assert!(
            a.iter().collect::<std::collections::HashSet<_>>().len() > 1,
            "should vary"
        );
        assert_ne!(
            a,
            run(&SamplingOptions {
                seed: 8,
                ..opts.clone()
            })
        );
        // min-p = 1 keeps only the best token; a tiny top-p too.
        let mut s = Sampler::new(SamplingOptions {
            min_p: 1.0,
            ..opts.clone()
        })
        .unwrap();
        assert!((0..50).all(|_| s.sample(&mut logits.clone(), &[]) == top3[0]));
        let mut s = Sampler::new(SamplingOptions {
            top_p: 1e-6,
            ..opts
        })
        .unwrap();
        assert!((0..50).all(|_| s.sample(&mut logits.clone(), &[]) == top3[0]));
    }

    #[test]
    fn invalid_options_are_rejected() {
        for o in [
            SamplingOptions {
                temperature: -1.0,
                ..Default::default()
            },
            SamplingOptions {
                temperature: f32::NAN,
                ..Default::default()
            },
            SamplingOptions {
                top_p: 0.0,
                ..Default::default()
            },
            SamplingOptions {
                min_p: 2.0,
                ..Default::default()
            },
            SamplingOptions {
                repetition_penalty: 0.0,
                ..Default::default()
            },
        ] {
            assert!(matches!(Sampler::new(o), Err(Error::InvalidArgument(_))));
        }
    }
}
