//! One prefill of a prompt without generating: how likely the model finds the user's text,
//! and how likely each answer label is as the first token of its answer.

use either::Either;
use mistralrs::{DType, Model, Tensor};
use sluice_policy::{Message, PromptStates, Role};
use sluice_router::{LocalError, LocalRequest, PromptStats};

use crate::engine::{gen_err, request};
use crate::states::StateShape;
use crate::stats::step_stats;

/// Tokens of `text` alone (no special tokens, no template).
async fn tokenize(model: &Model, text: &str) -> Result<Vec<u32>, LocalError> {
    model
        .tokenize(Either::Right(text.to_owned()), None, false, false, None)
        .await
        .map_err(gen_err)
}

/// The prompt's tokens (chat template and generation prompt included) and one row of logits
/// per position: row i is the next-token distribution after token i; with the model's
/// hidden states at each position when the engine returns them.
struct Prefill {
    tokens: Vec<u32>,
    rows: Tensor,
    /// Positions × (count × size) hidden states, and their layout.
    states: Option<(Tensor, StateShape)>,
}

impl Prefill {
    async fn run(
        model: &Model,
        shape: Option<StateShape>,
        messages: &[Message],
    ) -> Result<Self, LocalError> {
        let req = LocalRequest {
            messages: messages.to_vec(),
            max_tokens: 1,
            temperature: None,
            top_p: None,
            stop: Vec::new(),
        };
        let (chunks, tokens) = model
            .send_raw_chat_request(request(&req, true))
            .await
            .map_err(gen_err)?;
        let to_rows = |t: Tensor| -> mistralrs::Result<Tensor> {
            let t = t.to_dtype(DType::F32)?;
            match t.dims().len() {
                3 => t.squeeze(0),
                _ => Ok(t),
            }
        };
        let chunks: Vec<Tensor> = chunks
            .into_iter()
            .map(to_rows)
            .collect::<Result<_, _>>()
            .map_err(gen_err)?;
        let rows = Tensor::cat(&chunks, 0).map_err(gen_err)?;
        let n = rows.dims().first().copied().unwrap_or(0);
        if n != tokens.len() || tokens.is_empty() {
            return Err(gen_err(format!(
                "the model returned logits for {n} positions of a {}-token prompt",
                tokens.len()
            )));
        }
        let width = rows.dims().get(1).copied().unwrap_or(0);
        let (rows, states) = match shape {
            Some(shape) if width == shape.width() => {
                let logits = rows.narrow(1, 0, shape.vocab).map_err(gen_err)?;
                let states = rows
                    .narrow(1, shape.vocab, shape.count * shape.size)
                    .map_err(gen_err)?;
                (logits, Some((states, shape)))
            }
            _ => (rows, None),
        };
        Ok(Self {
            tokens,
            rows,
            states,
        })
    }

    /// Each hidden state at the last position, and its mean over positions `from..to`
    /// (clamped to the prompt; the whole prompt when empty).
    fn pooled(&self, from: usize, to: usize) -> Result<Option<PromptStates>, LocalError> {
        let Some((states, shape)) = &self.states else {
            return Ok(None);
        };
        let n = self.tokens.len();
        let to = to.min(n);
        let (from, to) = if from < to { (from, to) } else { (0, n) };
        let last: Vec<f32> = states
            .get(n - 1)
            .and_then(|r| r.to_vec1::<f32>())
            .map_err(gen_err)?;
        let mean: Vec<f32> = states
            .narrow(0, from, to - from)
            .and_then(|t| t.mean(0))
            .and_then(|r| r.to_vec1::<f32>())
            .map_err(gen_err)?;
        let split =
            |v: Vec<f32>| -> Vec<Vec<f32>> { v.chunks(shape.size).map(<[f32]>::to_vec).collect() };
        Ok(Some(PromptStates {
            last: split(last),
            mean: split(mean),
        }))
    }

    /// The logits after token `i`.
    fn row(&self, i: usize) -> Result<Vec<f32>, LocalError> {
        self.rows
            .get(i)
            .and_then(|r| r.to_vec1::<f32>())
            .map_err(gen_err)
    }
}

/// Where `needle` last occurs in `haystack`.
pub fn find_last(haystack: &[u32], needle: &[u32]) -> Option<usize> {
    if needle.is_empty() || needle.len() > haystack.len() {
        return None;
    }
    (0..=haystack.len() - needle.len())
        .rev()
        .find(|&i| haystack[i..i + needle.len()] == *needle)
}

/// Mean negative log-likelihood of `tokens[from..to]`, each predicted by the row before it;
/// `row(i)` gives the logits after token i. None when the span is empty.
pub fn mean_nll(
    tokens: &[u32],
    from: usize,
    to: usize,
    mut row: impl FnMut(usize) -> Result<Vec<f32>, LocalError>,
) -> Result<Option<f64>, LocalError> {
    let from = from.max(1);
    if from >= to || to > tokens.len() {
        return Ok(None);
    }
    let mut sum = 0.0;
    for (j, &token) in tokens.iter().enumerate().take(to).skip(from) {
        let logits = row(j - 1)?;
        let stats = step_stats(&logits).ok_or_else(|| gen_err("logits are not finite"))?;
        let logit = logits
            .get(token as usize)
            .copied()
            .ok_or_else(|| gen_err("a prompt token is outside the vocabulary"))?;
        sum += stats.log_norm - f64::from(logit);
    }
    Ok(Some(sum / (to - from) as f64))
}

/// Tokens and mean NLL of the last user message's tokens; when they cannot be found in the
/// templated prompt (a template that rewrites the text), of the whole prompt.
pub(crate) async fn prompt_stats(
    model: &Model,
    shape: Option<StateShape>,
    messages: &[Message],
) -> Result<PromptStats, LocalError> {
    let prefill = Prefill::run(model, shape, messages).await?;
    let user = messages
        .iter()
        .rev()
        .find(|m| m.role == Role::User)
        .map(|m| m.content.as_str())
        .unwrap_or_default();
    let user_tokens = tokenize(model, user).await?;
    let n = prefill.tokens.len();
    let (from, to) = match find_last(&prefill.tokens, &user_tokens) {
        Some(p) => (p, p + user_tokens.len()),
        None => (1, n),
    };
    let mean = mean_nll(&prefill.tokens, from, to, |i| prefill.row(i))?.unwrap_or(0.0);
    Ok(PromptStats {
        prompt_tokens: n as u32,
        mean_nll: mean,
        states: prefill.pooled(from, to)?,
    })
}

/// ln p(first token of each label) at the position after the prompt (the answer's first).
pub(crate) async fn label_logprobs(
    model: &Model,
    shape: Option<StateShape>,
    messages: &[Message],
    labels: &[&str],
) -> Result<Vec<f64>, LocalError> {
    let prefill = Prefill::run(model, shape, messages).await?;
    let last = prefill.row(prefill.tokens.len() - 1)?;
    let stats = step_stats(&last).ok_or_else(|| gen_err("logits are not finite"))?;
    let mut out = Vec::with_capacity(labels.len());
    for label in labels {
        let ids = tokenize(model, label).await?;
        let id = *ids
            .first()
            .ok_or_else(|| gen_err(format!("label {label:?} has no tokens")))?;
        let logit = last
            .get(id as usize)
            .copied()
            .ok_or_else(|| gen_err("a label token is outside the vocabulary"))?;
        out.push((f64::from(logit) - stats.log_norm).min(0.0));
    }
    Ok(out)
}

/// Templated prompt length, from the tokenizer alone.
pub(crate) async fn count_tokens(model: &Model, messages: &[Message]) -> Result<u32, LocalError> {
    Ok(prompt_ids(model, messages).await?.len() as u32)
}

/// The templated prompt's token ids (chat template and generation prompt included).
pub(crate) async fn prompt_ids(
    model: &Model,
    messages: &[Message],
) -> Result<Vec<u32>, LocalError> {
    use mistralrs::{TextMessageRole, TextMessages};
    let mut m = TextMessages::new();
    for msg in messages {
        let role = match msg.role {
            Role::System => TextMessageRole::System,
            Role::User => TextMessageRole::User,
            Role::Assistant => TextMessageRole::Assistant,
        };
        m = m.add_message(role, &msg.content);
    }
    model
        .tokenize(Either::Left(m), None, true, true, None)
        .await
        .map_err(gen_err)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_last_occurrence() {
        assert_eq!(find_last(&[1, 2, 3, 1, 2], &[1, 2]), Some(3));
        assert_eq!(find_last(&[1, 2, 3], &[3]), Some(2));
        assert_eq!(find_last(&[1, 2, 3], &[4]), None);
        assert_eq!(find_last(&[1], &[1, 1]), None);
        assert_eq!(find_last(&[1], &[]), None);
    }

    #[test]
    fn nll_of_a_span_from_its_logits() {
        // Vocabulary of 2; after every token p(0) = e^2/(e^2+1), p(1) = 1/(e^2+1).
        let row = |_: usize| Ok(vec![2.0_f32, 0.0]);
        let tokens = [0, 0, 1, 0];
        let p0 = (2.0_f64.exp() / (2.0_f64.exp() + 1.0)).ln();
        let p1 = (1.0 / (2.0_f64.exp() + 1.0)).ln();
        let got = mean_nll(&tokens, 1, 4, row).unwrap().unwrap();
        assert!((got - -(p0 + p1 + p0) / 3.0).abs() < 1e-6, "{got}");
        assert!(got > 0.0);
        // position 0 has no prediction; empty spans have no mean
        assert_eq!(mean_nll(&tokens, 0, 1, row).unwrap(), None);
        assert_eq!(mean_nll(&tokens, 2, 9, row).unwrap(), None);
    }
}
