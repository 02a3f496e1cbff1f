//! Features that take a prefill of the local model but no generation: how surprising the
//! prompt is (`prompt_nll`) and what the model says when asked whether it will answer the
//! request correctly (`probe_log_odds`).

use sluice_policy::{Feature, FeatureSource, Message, Role, Weights};

use crate::{FeatureValues, LocalError, LocalModel};

/// Answer labels of the probe, as the first token of the model's answer: yes ones, then no ones.
pub const PROBE_LABELS: [&str; 4] = ["Yes", "yes", "No", "no"];

/// The classification prompt for `messages`: the last user message, and the question.
pub fn probe_messages(messages: &[Message]) -> Vec<Message> {
    let question = messages
        .iter()
        .rev()
        .find(|m| m.role == Role::User)
        .map_or("", |m| m.content.as_str());
    vec![Message::new(
        Role::User,
        format!(
            "Here is a request:\n\n{question}\n\nCan you answer this request correctly and \
             completely? Answer yes or no."
        ),
    )]
}

/// ln p(yes) − ln p(no), each side summing its label variants, from `PROBE_LABELS`' log-probs.
pub fn log_odds(logprobs: &[f64]) -> f64 {
    let lse = |xs: &[f64]| {
        let m = xs.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        if m == f64::NEG_INFINITY {
            return m;
        }
        m + xs.iter().map(|x| (x - m).exp()).sum::<f64>().ln()
    };
    let (yes, no) = logprobs.split_at(logprobs.len().min(2));
    let odds = lse(yes) - lse(no);
    if odds.is_nan() {
        0.0
    } else {
        odds.clamp(-50.0, 50.0)
    }
}

/// The prefill and probe features these weights use, computed with one model call each.
pub async fn prefill_features(
    model: &dyn LocalModel,
    messages: &[Message],
    weights: &Weights,
) -> Result<FeatureValues, LocalError> {
    let mut out = Vec::new();
    if weights.uses(FeatureSource::Prefill) {
        let stats = model.prompt_stats(messages).await?;
        out.push((Feature::PromptNll, stats.mean_nll));
    }
    if weights.uses(FeatureSource::Probe) {
        let lps = model
            .label_logprobs(&probe_messages(messages), &PROBE_LABELS)
            .await?;
        out.push((Feature::ProbeLogOdds, log_odds(&lps)));
    }
    Ok(FeatureValues(out))
}

/// Every prefill and probe feature, whatever the weights (for evaluation and calibration).
pub async fn all_prefill_features(
    model: &dyn LocalModel,
    messages: &[Message],
) -> Result<FeatureValues, LocalError> {
    let every = Weights {
        bias: 0.0,
        terms: vec![(Feature::PromptNll, 1.0), (Feature::ProbeLogOdds, 1.0)],
    };
    prefill_features(model, messages, &every).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_odds_sums_label_variants() {
        let ln = f64::ln;
        let odds = log_odds(&[ln(0.3), ln(0.1), ln(0.05), ln(0.05)]);
        assert!((odds - ln(0.4 / 0.1)).abs() < 1e-12, "{odds}");
        assert!(log_odds(&[ln(0.01), ln(0.01), ln(0.4), ln(0.4)]) < 0.0);
        assert_eq!(log_odds(&[f64::NEG_INFINITY; 4]), 0.0, "no information");
        assert_eq!(
            log_odds(&[0.0, 0.0, f64::NEG_INFINITY, f64::NEG_INFINITY]),
            50.0
        );
    }

    #[test]
    fn the_probe_asks_about_the_last_user_message() {
        let msgs = [
            Message::new(Role::User, "first"),
            Message::new(Role::Assistant, "ok"),
            Message::new(Role::User, "What is 418 times 275?"),
        ];
        let p = probe_messages(&msgs);
        assert_eq!(p.len(), 1);
        assert!(p[0].content.contains("What is 418 times 275?"));
        assert!(!p[0].content.contains("first"));
        assert!(p[0].content.ends_with("Answer yes or no."));
    }
}
