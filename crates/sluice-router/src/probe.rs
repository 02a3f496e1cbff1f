//! Features that take a prefill of the local model but no generation: how surprising the
//! prompt is (`prompt_nll`) and what the model says when asked whether it will answer the
//! request correctly (`probe_log_odds`), and what a linear probe on its hidden states says
//! (`hidden_probe`).

use sluice_policy::{Feature, FeatureSource, HiddenProbe, Message, PromptStates, Role, Scoring};

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

/// The prefill and probe features the policy's scoring uses, computed with one model call
/// each.
pub async fn prefill_features(
    model: &dyn LocalModel,
    messages: &[Message],
    scoring: &Scoring,
) -> Result<FeatureValues, LocalError> {
    let weights = &scoring.weights;
    let wants_states = scoring.method.needs_probe() || weights.uses_feature(Feature::HiddenProbe);
    let probe = scoring.probe.as_deref().filter(|_| wants_states);
    let (mut values, _) = prefill(
        model,
        messages,
        weights.uses(FeatureSource::Prefill) || probe.is_some(),
        probe,
    )
    .await?;
    if weights.uses(FeatureSource::Probe) {
        values.0.push((
            Feature::ProbeLogOdds,
            probe_log_odds(model, messages).await?,
        ));
    }
    Ok(values)
}

/// What `all_prefill_features` computed.
#[derive(Debug, Clone, PartialEq)]
pub struct Prefilled {
    pub values: FeatureValues,
    /// The prompt's pooled hidden states, when the model returns them.
    pub states: Option<PromptStates>,
    /// Time of the prompt's prefill alone (not the classification prompt's), milliseconds.
    pub prefill_ms: f64,
}

/// Every prefill and probe feature, whatever the weights (for evaluation and calibration),
/// and the pooled hidden states when the model returns them; `hidden_probe` only with a probe.
pub async fn all_prefill_features(
    model: &dyn LocalModel,
    messages: &[Message],
    probe: Option<&HiddenProbe>,
) -> Result<Prefilled, LocalError> {
    let started = std::time::Instant::now();
    let (mut values, states) = prefill(model, messages, true, probe).await?;
    let prefill_ms = started.elapsed().as_secs_f64() * 1e3;
    values.0.push((
        Feature::ProbeLogOdds,
        probe_log_odds(model, messages).await?,
    ));
    Ok(Prefilled {
        values,
        states,
        prefill_ms,
    })
}

/// One prefill of the prompt: `prompt_nll`, and `hidden_probe` when there is a probe.
async fn prefill(
    model: &dyn LocalModel,
    messages: &[Message],
    run: bool,
    probe: Option<&HiddenProbe>,
) -> Result<(FeatureValues, Option<PromptStates>), LocalError> {
    if !run {
        return Ok((FeatureValues::default(), None));
    }
    let stats = model.prompt_stats(messages).await?;
    let mut out = vec![(Feature::PromptNll, stats.mean_nll)];
    if let Some(probe) = probe {
        let states = stats.states.as_ref().ok_or_else(|| {
            LocalError::Generation(format!(
                "the policy's probe needs hidden states, which model {} does not return",
                model.model_id()
            ))
        })?;
        let z = probe.log_odds(states).map_err(LocalError::Generation)?;
        out.push((Feature::HiddenProbe, z));
    }
    Ok((FeatureValues(out), stats.states))
}

/// `probe_log_odds`: one prefill of the classification prompt.
async fn probe_log_odds(model: &dyn LocalModel, messages: &[Message]) -> Result<f64, LocalError> {
    let lps = model
        .label_logprobs(&probe_messages(messages), &PROBE_LABELS)
        .await?;
    Ok(log_odds(&lps))
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
