//! What a tier answers: the public result types, and helpers shared by the providers'
//! decoders.

use sluice_policy::Tier;

use crate::error::{truncate, UpstreamError};

/// Longest excerpt of a bad answer quoted in a decode error, in characters.
pub(crate) const MAX_EXCERPT_CHARS: usize = 200;

/// Token counts the upstream reports for one call.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Usage {
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
}

impl Usage {
    /// What this usage costs on `tier`, in US dollars.
    pub fn cost(&self, tier: &Tier) -> f64 {
        tier.price.cost(self.prompt_tokens, self.completion_tokens)
    }
}

/// A whole (non-streamed) answer.
#[derive(Debug, Clone, PartialEq)]
pub struct Completion {
    pub content: String,
    /// As the upstream reports it (`stop`, `length`, ...); `stop` when it reports none.
    pub finish_reason: String,
    /// The model the upstream reports, else the tier's model.
    pub model: String,
    /// Zeros when the upstream reports no usage.
    pub usage: Usage,
    /// `tier.price` applied to `usage`.
    pub cost_usd: f64,
}

/// One item of a streamed answer.
#[derive(Debug, Clone, PartialEq)]
pub enum StreamEvent {
    /// The next piece of the answer's text (never empty).
    Delta(String),
    /// The answer is complete; always the last event of a successful stream.
    Done {
        /// As the upstream reports it; `stop` when it reports none.
        finish_reason: String,
        /// The model the upstream reports, else the tier's model.
        model: String,
        /// `None` when the upstream sent no usage.
        usage: Option<Usage>,
        /// `tier.price` applied to `usage`; 0 without usage.
        cost_usd: f64,
    },
}

/// Finish reason used when the upstream reports none.
pub(crate) const DEFAULT_FINISH_REASON: &str = "stop";

/// The reported model, unless absent or empty.
pub(crate) fn non_empty(model: Option<String>) -> Option<String> {
    model.filter(|m| !m.is_empty())
}

/// `body` as JSON of type `T`; otherwise a decode error saying `expected` and quoting
/// the start of the body.
pub(crate) fn decode_json<T: serde::de::DeserializeOwned>(
    tier: &Tier,
    body: &[u8],
    expected: &str,
) -> Result<T, UpstreamError> {
    serde_json::from_slice(body).map_err(|err| {
        let text = String::from_utf8_lossy(body);
        let found = if text.trim().is_empty() {
            "an empty body".to_owned()
        } else {
            format!("{:?}", truncate(&text, MAX_EXCERPT_CHARS))
        };
        decode_error(tier, format!("expected {expected}, found {found} ({err})"))
    })
}

/// A [`UpstreamError::Decode`] from `tier`.
pub(crate) fn decode_error(tier: &Tier, message: String) -> UpstreamError {
    UpstreamError::Decode {
        tier: tier.name.clone(),
        message,
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use sluice_policy::{Price, Tier};
    use std::time::Duration;

    /// An OpenAI tier named `big` serving `tier-model` at 0.15/0.60 USD per Mtok.
    pub(crate) fn tier() -> Tier {
        Tier {
            price: Price {
                input_per_mtok: 0.15,
                output_per_mtok: 0.60,
            },
            timeout: Duration::from_secs(5),
            read_timeout: Duration::from_secs(5),
            ..Tier::openai("big", "http://127.0.0.1:1", "tier-model")
        }
    }
}
