//! Per-token statistics from the raw logits, before the sampler picks a token.
//!
//! mistral.rs reports `log10` of the raw logit as the "logprob" of a greedy token, which is not
//! a probability at all. We compute the real natural-log softmax here instead, from a logits
//! processor that sees each step's logits.

use std::sync::{Arc, Mutex};

use mistralrs::{CustomLogitsProcessor, DType, Tensor};
use sluice_router::TokenStat;

/// Log-softmax summary of one next-token distribution.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct StepStats {
    /// Index of the most probable token (the greedy choice; first one on ties).
    pub argmax: usize,
    /// ln p(argmax), ≤ 0.
    pub max_logprob: f64,
    /// Entropy in nats, ≥ 0.
    pub entropy: f64,
    /// log Σ exp(logit), the softmax normaliser.
    pub log_norm: f64,
}

/// Log-softmax statistics of a logits vector; `None` when empty or not finite.
pub fn step_stats(logits: &[f32]) -> Option<StepStats> {
    let mut argmax = 0usize;
    let mut max = f32::NEG_INFINITY;
    for (i, &x) in logits.iter().enumerate() {
        if x > max {
            max = x;
            argmax = i;
        }
    }
    if !max.is_finite() {
        return None;
    }
    let max = f64::from(max);
    // Σ exp(x - max) and Σ exp(x - max)·x, in f64 so a 50k vocabulary sums exactly enough.
    let (mut z, mut zx) = (0.0_f64, 0.0_f64);
    for &x in logits {
        let x = f64::from(x);
        if x == f64::NEG_INFINITY {
            continue;
        }
        let e = (x - max).exp();
        z += e;
        zx += e * x;
    }
    let log_norm = max + z.ln();
    // H = -Σ p (x - log_norm) = log_norm - Σ p x
    let entropy = (log_norm - zx / z).max(0.0);
    Some(StepStats {
        argmax,
        max_logprob: (max - log_norm).min(0.0),
        entropy,
        log_norm,
    })
}

/// A logits processor that records the greedy token's log-probability and the entropy at
/// every step of one request, leaving the logits unchanged.
#[derive(Debug, Clone, Default)]
pub struct StatsRecorder {
    steps: Arc<Mutex<Vec<TokenStat>>>,
}

impl StatsRecorder {
    pub fn new() -> Self {
        Self::default()
    }

    /// Statistics recorded so far, one per sampled token.
    pub fn take(&self) -> Vec<TokenStat> {
        match self.steps.lock() {
            Ok(mut g) => std::mem::take(&mut *g),
            Err(p) => std::mem::take(&mut *p.into_inner()),
        }
    }

    fn record(&self, logits: &Tensor) -> mistralrs::Result<()> {
        let v: Vec<f32> = logits.to_dtype(DType::F32)?.flatten_all()?.to_vec1()?;
        if let Some(s) = step_stats(&v) {
            let stat = TokenStat {
                logprob: s.max_logprob as f32,
                entropy: s.entropy as f32,
            };
            match self.steps.lock() {
                Ok(mut g) => g.push(stat),
                Err(p) => p.into_inner().push(stat),
            }
        }
        Ok(())
    }
}

impl CustomLogitsProcessor for StatsRecorder {
    fn apply(&self, logits: &Tensor, _context: &[u32]) -> mistralrs::Result<Tensor> {
        self.record(logits)?;
        Ok(logits.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mistralrs::Device;

    fn full_log_softmax(logits: &[f32]) -> Vec<f64> {
        let s = step_stats(logits).unwrap();
        logits.iter().map(|&x| f64::from(x) - s.log_norm).collect()
    }

    #[test]
    fn log_probabilities_are_non_positive_and_normalised() {
        let cases: Vec<Vec<f32>> = vec![
            vec![1.0, 2.0, 3.0],
            vec![-50.0, 80.0, 79.5, 0.0],
            vec![0.0; 49_152],
            (0..49_152)
                .map(|i| ((i * 7919) % 1000) as f32 / 37.0 - 10.0)
                .collect(),
            vec![1e4, -1e4, f32::NEG_INFINITY],
        ];
        for logits in cases {
            let lp = full_log_softmax(&logits);
            assert!(
                lp.iter().all(|&l| l <= 0.0),
                "a log-probability is positive"
            );
            let total: f64 = lp.iter().map(|l| l.exp()).sum();
            assert!((total - 1.0).abs() < 1e-9, "probabilities sum to {total}");
            let s = step_stats(&logits).unwrap();
            assert!(s.max_logprob <= 0.0);
            assert!(s.entropy >= 0.0);
            let h: f64 = -lp
                .iter()
                .filter(|l| l.is_finite())
                .map(|l| l.exp() * l)
                .sum::<f64>();
            assert!((h - s.entropy).abs() < 1e-6, "entropy {h} vs {}", s.entropy);
        }
    }

    #[test]
    fn uniform_distribution_has_maximal_entropy() {
        let s = step_stats(&[0.5; 1024]).unwrap();
        assert!((s.entropy - (1024f64).ln()).abs() < 1e-9);
        assert!((s.max_logprob - -(1024f64).ln()).abs() < 1e-9);
        assert_eq!(s.argmax, 0);
    }

    #[test]
    fn certain_token_has_logprob_near_zero() {
        let s = step_stats(&[0.0, 100.0, 0.0]).unwrap();
        assert_eq!(s.argmax, 1);
        assert!(s.max_logprob > -1e-6 && s.max_logprob <= 0.0);
        assert!(s.entropy < 1e-6);
    }

    #[test]
    fn empty_or_non_finite_logits_give_nothing() {
        assert!(step_stats(&[]).is_none());
        assert!(step_stats(&[f32::NEG_INFINITY; 3]).is_none());
    }

    #[test]
    fn recorder_leaves_logits_unchanged_and_records_each_step() {
        let rec = StatsRecorder::new();
        let t = Tensor::new(&[1.0f32, 3.0, 2.0], &Device::Cpu).unwrap();
        let out = rec.apply(&t, &[]).unwrap();
        assert_eq!(out.to_vec1::<f32>().unwrap(), vec![1.0, 3.0, 2.0]);
        rec.apply(&t, &[1]).unwrap();
        let steps = rec.take();
        assert_eq!(steps.len(), 2);
        let expected = 3.0 - (1f64.exp() + 3f64.exp() + 2f64.exp()).ln();
        assert!((f64::from(steps[0].logprob) - expected).abs() < 1e-6);
        assert!(rec.take().is_empty());
    }
}
