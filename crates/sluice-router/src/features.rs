//! Features of a draft and the logistic model that turns them into a confidence.

use sluice_policy::{Feature, Weights};

/// Feature values of one request, in `Feature::ALL` order for the features that apply.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FeatureValues(pub Vec<(Feature, f64)>);

impl FeatureValues {
    pub fn get(&self, f: Feature) -> Option<f64> {
        self.0.iter().find(|(k, _)| *k == f).map(|(_, v)| *v)
    }
}

/// Features of a greedy draft: log-probability summaries, entropy, length, whether it stopped.
///
/// An empty draft (the model ended at once) has log-probability features of 0: nothing in it
/// was uncertain, and the length feature says it is empty.
pub fn draft_features(draft: &crate::Draft) -> FeatureValues {
    let lps: Vec<f64> = draft.tokens.iter().map(|t| f64::from(t.logprob)).collect();
    let n = lps.len();
    let mean = |xs: &[f64]| {
        if xs.is_empty() {
            0.0
        } else {
            xs.iter().sum::<f64>() / xs.len() as f64
        }
    };
    let min = lps.iter().copied().fold(0.0_f64, f64::min);
    let p10 = quantile(&lps, 0.10);
    let entropies: Vec<f64> = draft.tokens.iter().map(|t| f64::from(t.entropy)).collect();
    FeatureValues(vec![
        (Feature::MeanLogprob, mean(&lps)),
        (Feature::MinLogprob, min),
        (Feature::P10Logprob, p10),
        (Feature::MeanEntropy, mean(&entropies)),
        (Feature::DraftTokens, n as f64),
        (
            Feature::Stopped,
            if draft.finish == crate::FinishReason::Stop {
                1.0
            } else {
                0.0
            },
        ),
        (Feature::PromptTokens, f64::from(draft.prompt_tokens)),
    ])
}

/// Lower quantile by the nearest-rank method; 0 for an empty sample.
fn quantile(xs: &[f64], q: f64) -> f64 {
    if xs.is_empty() {
        return 0.0;
    }
    let mut sorted = xs.to_vec();
    sorted.sort_by(f64::total_cmp);
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}

/// confidence = sigmoid(bias + Σ weight·feature), in [0, 1]. A weight for a feature the
/// method does not produce counts as 0.
pub fn confidence(weights: &Weights, features: &FeatureValues) -> f64 {
    let z = weights.bias
        + weights
            .terms
            .iter()
            .map(|(f, w)| w * features.get(*f).unwrap_or(0.0))
            .sum::<f64>();
    let c = 1.0 / (1.0 + (-z).exp());
    if c.is_nan() {
        0.0
    } else {
        c
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Draft, FinishReason, TokenStat};

    fn draft(lps: &[f32], finish: FinishReason) -> Draft {
        Draft {
            text: "x".into(),
            pieces: vec!["x".into()],
            prompt_tokens: 9,
            completion_tokens: lps.len() as u32,
            finish,
            tokens: lps
                .iter()
                .map(|&l| TokenStat {
                    logprob: l,
                    entropy: 0.5,
                })
                .collect(),
        }
    }

    #[test]
    fn summaries_of_logprobs() {
        let lps = [-0.1, -2.0, -0.3, -0.2, -0.4, -0.1, -0.1, -0.5, -0.2, -0.1];
        let f = draft_features(&draft(&lps, FinishReason::Stop));
        let mean = lps.iter().map(|&x| f64::from(x)).sum::<f64>() / 10.0;
        assert!((f.get(Feature::MeanLogprob).unwrap() - mean).abs() < 1e-9);
        assert!((f.get(Feature::MinLogprob).unwrap() - -2.0).abs() < 1e-6);
        assert!((f.get(Feature::P10Logprob).unwrap() - -2.0).abs() < 1e-6);
        assert_eq!(f.get(Feature::DraftTokens), Some(10.0));
        assert_eq!(f.get(Feature::Stopped), Some(1.0));
        assert_eq!(f.get(Feature::PromptTokens), Some(9.0));
        assert!((f.get(Feature::MeanEntropy).unwrap() - 0.5).abs() < 1e-9);
        let cut = draft_features(&draft(&lps, FinishReason::Length));
        assert_eq!(cut.get(Feature::Stopped), Some(0.0));
    }

    #[test]
    fn empty_draft_has_neutral_logprob_features() {
        let f = draft_features(&draft(&[], FinishReason::Stop));
        assert_eq!(f.get(Feature::MeanLogprob), Some(0.0));
        assert_eq!(f.get(Feature::MinLogprob), Some(0.0));
        assert_eq!(f.get(Feature::DraftTokens), Some(0.0));
    }

    #[test]
    fn confidence_is_a_probability_and_rises_with_logprob() {
        let w = Weights {
            bias: 3.0,
            terms: vec![(Feature::MeanLogprob, 2.5), (Feature::MinLogprob, 0.15)],
        };
        let sure = confidence(&w, &draft_features(&draft(&[-0.01; 5], FinishReason::Stop)));
        let unsure = confidence(&w, &draft_features(&draft(&[-3.0; 5], FinishReason::Stop)));
        assert!((0.0..=1.0).contains(&sure) && (0.0..=1.0).contains(&unsure));
        assert!(sure > 0.9, "sure={sure}");
        assert!(unsure < 0.2, "unsure={unsure}");
        let huge = Weights {
            bias: f64::MAX,
            terms: vec![],
        };
        assert_eq!(confidence(&huge, &FeatureValues::default()), 1.0);
    }
}
