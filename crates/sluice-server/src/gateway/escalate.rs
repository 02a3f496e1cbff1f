//! The tier chain: try each tier in order until one answers.

use std::time::Instant;

use futures::stream::BoxStream;
use sluice_policy::{Policy, Tier};
use sluice_upstream::{Completion, StreamEvent, UpstreamError};
use tracing::Instrument;

use super::{upstream_request, ChatInput, Gateway};
use crate::error::GatewayError;

/// Run `fut` until the caller's deadline, if there is one.
async fn by_deadline<T>(
    deadline: Option<Instant>,
    fut: impl std::future::Future<Output = T>,
) -> Option<T> {
    match deadline {
        Some(d) => tokio::time::timeout_at(d.into(), fut).await.ok(),
        None => Some(fut.await),
    }
}

/// Every tier of the chain failed (or there is none); one line per tier.
#[derive(Debug, Default)]
pub(super) struct ChainFailure {
    pub errors: Vec<String>,
    /// The caller's deadline passed: no time is left for anything else either.
    pub deadline_passed: bool,
}

impl ChainFailure {
    pub fn message(&self) -> String {
        if self.errors.is_empty() {
            "the policy has no tier to escalate to".to_string()
        } else {
            self.errors.join("; ")
        }
    }

    /// The error a caller gets when the policy says not to fall back.
    pub fn into_error(self) -> GatewayError {
        if self.deadline_passed {
            GatewayError::DeadlineExceeded(self.message())
        } else {
            GatewayError::Upstream(self.message())
        }
    }

    fn deadline(&mut self, tier: &str) {
        self.errors
            .push(format!("tier {tier}: the caller's deadline passed"));
        self.deadline_passed = true;
    }

    fn push(&mut self, e: &UpstreamError) {
        self.errors.push(e.to_string());
    }
}

/// The chain to try: every tier in order, or only the one a rule named.
pub(super) fn tiers<'p>(
    policy: &'p Policy,
    only: Option<&'p str>,
) -> impl Iterator<Item = &'p Tier> {
    policy
        .tiers
        .iter()
        .filter(move |t| only.is_none_or(|name| t.name == name))
}

/// The span of one tier of the chain (its HTTP attempts and retry waits inside).
fn tier_span(tier: &Tier) -> tracing::Span {
    tracing::info_span!(
        "sluice.tier",
        "sluice.tier" = %tier.name,
        "gen_ai.request.model" = %tier.model,
    )
}

/// Metrics label for the outcome of one tier call.
pub(super) fn status_label(e: &UpstreamError) -> &'static str {
    e.kind()
}

impl Gateway {
    /// Ask each tier in turn (only the one named `only`, when given) for a complete answer.
    pub(super) async fn escalate(
        &self,
        policy: &Policy,
        input: &ChatInput,
        only: Option<&str>,
    ) -> Result<(Completion, Tier, f64), (ChainFailure, f64)> {
        let started = Instant::now();
        let req = upstream_request(input);
        let mut failure = ChainFailure::default();
        for tier in tiers(policy, only) {
            let attempt = Instant::now();
            let gen_ai = |error, tokens| self.metrics().gen_ai_call(tier, attempt, error, tokens);
            let call = self.inner.upstream.chat(tier, &req);
            let Some(result) = by_deadline(input.deadline, call.instrument(tier_span(tier))).await
            else {
                self.metrics().upstream_call(&tier.name, "deadline");
                gen_ai(Some("deadline"), None);
                failure.deadline(&tier.name);
                break;
            };
            match result {
                Ok(c) => {
                    self.metrics().upstream_call(&tier.name, "ok");
                    let tokens = (c.usage.prompt_tokens, c.usage.completion_tokens);
                    gen_ai(None, Some(tokens));
                    return Ok((c, tier.clone(), super::ms(started.elapsed())));
                }
                Err(e) => {
                    self.metrics().upstream_call(&tier.name, status_label(&e));
                    gen_ai(Some(status_label(&e)), None);
                    tracing::warn!(tier = %tier.name, error = %e, "tier failed");
                    failure.push(&e);
                }
            }
        }
        Err((failure, super::ms(started.elapsed())))
    }

    /// Open a streamed answer on the first tier that accepts the request.
    ///
    /// A stream whose first event is an error counts as a failure to open, so the next tier is
    /// tried: nothing has reached the caller yet.
    pub(super) async fn open_stream(
        &self,
        policy: &Policy,
        input: &ChatInput,
        only: Option<&str>,
    ) -> Result<(OpenStream, Tier), ChainFailure> {
        use futures::StreamExt;
        let req = upstream_request(input);
        let mut failure = ChainFailure::default();
        for tier in tiers(policy, only) {
            let attempt = Instant::now();
            // A stream that opens is counted when it ends (in `stream_inner`).
            let failed = |error| self.metrics().gen_ai_call(tier, attempt, Some(error), None);
            let open = async {
                match self.inner.upstream.chat_stream(tier, &req).await {
                    Ok(mut s) => match s.next().await {
                        Some(Ok(first)) => Ok(OpenStream {
                            first: Some(first),
                            rest: s,
                        }),
                        Some(Err(e)) => Err(e),
                        None => Ok(OpenStream {
                            first: None,
                            rest: s,
                        }),
                    },
                    Err(e) => Err(e),
                }
            };
            let Some(opened) = by_deadline(input.deadline, open.instrument(tier_span(tier))).await
            else {
                self.metrics().upstream_call(&tier.name, "deadline");
                failed("deadline");
                failure.deadline(&tier.name);
                break;
            };
            match opened {
                Ok(s) => {
                    self.metrics().upstream_call(&tier.name, "ok");
                    return Ok((s, tier.clone()));
                }
                Err(e) => {
                    self.metrics().upstream_call(&tier.name, status_label(&e));
                    failed(status_label(&e));
                    tracing::warn!(tier = %tier.name, error = %e, "tier failed to stream");
                    failure.push(&e);
                }
            }
        }
        Err(failure)
    }
}

/// An upstream stream whose first event has been read already.
pub(super) struct OpenStream {
    pub first: Option<StreamEvent>,
    pub rest: BoxStream<'static, Result<StreamEvent, UpstreamError>>,
}
