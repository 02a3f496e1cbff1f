//! Streamed answers: text reaches the caller as it is produced, metadata comes last.
//!
//! Each stream is driven by its own task writing into a small channel; when the caller goes
//! away the next write fails and the task stops, which cancels the generation.

use std::sync::Arc;
use std::time::Instant;

use futures::stream::BoxStream;
use futures::StreamExt;
use sluice_policy::{OnUpstreamFailure, Policy};
use sluice_router::{LocalEvent, Reason};
use sluice_upstream::StreamEvent;
use tokio::sync::mpsc;
use tracing::Instrument;

use super::cache::{CachedAnswer, Caches};
use super::chat::{LocalAnswer, LocalStart, Start};
use super::{
    local_request, ms, remote_meta, validate, AnswerMeta, ChatInput, DecisionInfo, Gateway,
    RemoteFinish, RouteKind, StreamItem, Timings,
};
use crate::error::GatewayError;

type Item = Result<StreamItem, GatewayError>;

/// Why a stream task stopped early.
enum Stop {
    /// The caller hung up.
    Closed,
    Failed(GatewayError),
}

impl From<GatewayError> for Stop {
    fn from(e: GatewayError) -> Self {
        Stop::Failed(e)
    }
}

impl From<sluice_router::LocalError> for Stop {
    fn from(e: sluice_router::LocalError) -> Self {
        Stop::Failed(e.into())
    }
}

/// The writing end of one stream; counts the request in metrics when it ends, and keeps the
/// answer in the cache when it may.
struct Out {
    tx: mpsc::Sender<Item>,
    gw: Gateway,
    policy: String,
    started: Instant,
    sent_chars: usize,
    /// Text sent so far, piece by piece.
    pieces: Vec<String>,
    /// Where to keep the answer: the policy, the request and the local model id.
    store: Option<(Arc<Policy>, ChatInput, String)>,
    /// The policy and the request, when the policy samples answers (`shadow:`) or keeps
    /// them as examples (`distill:`).
    shadow: Option<(Arc<Policy>, ChatInput)>,
    /// The draft scoring made for a request that then escalated, for its shadow sample.
    escalated_draft: Option<String>,
}

impl Out {
    async fn delta(&mut self, text: String) -> Result<(), Stop> {
        self.sent_chars += text.chars().count();
        if self.store.is_some() || self.shadow.is_some() {
            self.pieces.push(text.clone());
        }
        self.tx
            .send(Ok(StreamItem::Delta(text)))
            .await
            .map_err(|_| Stop::Closed)
    }

    async fn end(&mut self, mut meta: AnswerMeta) -> Result<(), Stop> {
        meta.timings.total_ms = ms(self.started.elapsed());
        self.gw.metrics().answered(&meta);
        if let Some((policy, input)) = self.shadow.take() {
            let draft = self.escalated_draft.take();
            self.gw
                .after_answer(&policy, &input, &meta, &self.pieces.concat(), draft);
        }
        if let Some((policy, input, model)) = self.store.take() {
            // Fallbacks stand in for a tier that failed just now; cache hits are kept already.
            if !meta.route.fallback && meta.route.kind != RouteKind::Cache {
                let pieces = std::mem::take(&mut self.pieces);
                let entry = CachedAnswer::from_meta(&pieces.concat(), pieces, &meta);
                self.gw
                    .caches()
                    .store(&policy, &input, &model, &entry)
                    .await;
            }
        }
        self.tx
            .send(Ok(StreamItem::End(Box::new(meta))))
            .await
            .map_err(|_| Stop::Closed)
    }

    async fn fail(&mut self, e: GatewayError) {
        self.gw
            .metrics()
            .failed(&self.policy, e.kind(), ms(self.started.elapsed()));
        let _ = self.tx.send(Err(e)).await;
    }

    /// An error after text went out must say the answer was cut.
    fn cut(&self, cause: impl ToString) -> GatewayError {
        GatewayError::StreamCut {
            sent_chars: self.sent_chars,
            cause: cause.to_string(),
        }
    }
}

impl Gateway {
    /// Route one request and stream its answer. Errors before the first chunk come back as
    /// the stream's only item; an error after text was sent says the answer was cut.
    pub fn chat_stream(&self, input: ChatInput) -> BoxStream<'static, Item> {
        let (tx, rx) = mpsc::channel(32);
        let mut out = Out {
            tx,
            gw: self.clone(),
            policy: self.policy_label(&input.policy),
            started: Instant::now(),
            sent_chars: 0,
            pieces: Vec::new(),
            store: None,
            shadow: None,
            escalated_draft: None,
        };
        let gw = self.clone();
        // The request's trace span goes along into the task.
        let work = async move {
            match gw.stream_inner(&input, &mut out).await {
                Ok(()) | Err(Stop::Closed) => {}
                Err(Stop::Failed(e)) => out.fail(e).await,
            }
        };
        tokio::spawn(work.instrument(tracing::Span::current()));
        tokio_stream::wrappers::ReceiverStream::new(rx).boxed()
    }

    async fn stream_inner(&self, input: &ChatInput, out: &mut Out) -> Result<(), Stop> {
        validate(input)?;
        let policy = self.policy(input)?;
        let model = self.local_model_id(&policy);
        if let Some(hit) = self.cache_probe(&policy, input, &model).await {
            let meta = hit.meta(&policy, input);
            let pieces = if hit.pieces.len() > 1 {
                hit.pieces
            } else {
                hit.text.split_inclusive(' ').map(str::to_string).collect()
            };
            for piece in pieces {
                out.delta(piece).await?;
            }
            return out.end(meta).await;
        }
        // Keep the pieces only when the answer will be cached or may be shadowed.
        if Caches::will_store(&policy, input) {
            out.store = Some((policy.clone(), input.clone(), model));
        }
        if policy.shadow.is_some() || policy.distill.is_some() {
            out.shadow = Some((policy.clone(), input.clone()));
        }
        let mut timings = Timings::default();
        let (info, draft, only) = match self.begin(&policy, input, &mut timings, false).await? {
            Start::Local(info, LocalStart::Draft(draft)) => {
                let meta = self.local_meta(&policy, input, info, &draft, false, timings);
                for piece in draft.pieces {
                    out.delta(piece).await?;
                }
                return out.end(meta).await;
            }
            Start::Local(info, LocalStart::Generate(_permit)) => {
                return self
                    .stream_local(&policy, input, info, false, timings, out)
                    .await;
            }
            Start::Escalate(info, draft, only) => (info, draft, only),
        };
        if policy.shadow.is_some() {
            out.escalated_draft = draft.as_ref().map(|d| d.text.clone());
        }
        let Some(hold) = self
            .reserve_budget(&policy, input, only.as_deref())
            .instrument(tracing::info_span!("sluice.budget"))
            .await?
        else {
            // The tenant's budget is spent and the policy says answer locally.
            let mut info = info;
            info.reason = Reason::Budget.as_str();
            let Some(d) = draft else {
                let _permit = self.admit_local_only(&policy).await?;
                return self
                    .stream_local(&policy, input, info, false, timings, out)
                    .await;
            };
            let pieces = d.pieces.clone();
            let meta = self.local_meta(&policy, input, info, &LocalAnswer::from(d), false, timings);
            for piece in pieces {
                out.delta(piece).await?;
            }
            return out.end(meta).await;
        };
        let t = Instant::now();
        let (open, tier) = match self.open_stream(&policy, input, only.as_deref()).await {
            Ok(opened) => opened,
            Err(failure) => {
                timings.upstream_ms = ms(t.elapsed());
                // No tier answered: nothing to pay.
                self.settle(hold, 0.0).await;
                // No fallback when the policy says so, or when there is no draft to fall back
                // on and the caller's deadline leaves no time to generate one.
                if policy.on_upstream_failure == OnUpstreamFailure::Error
                    || (failure.deadline_passed && draft.is_none())
                {
                    return Err(failure.into_error().into());
                }
                let Some(d) = draft else {
                    // No local fallback when the local model is full or the prompt too long
                    // for it (stream_local checks, before any text): the tiers' error stands.
                    let Ok(_permit) = self.admit_local_only(&policy).await else {
                        return Err(failure.into_error().into());
                    };
                    return match self
                        .stream_local(&policy, input, info, true, timings, out)
                        .await
                    {
                        Err(Stop::Failed(GatewayError::TooLong { .. })) => {
                            Err(failure.into_error().into())
                        }
                        other => other,
                    };
                };
                let pieces = d.pieces.clone();
                let meta =
                    self.local_meta(&policy, input, info, &LocalAnswer::from(d), true, timings);
                for piece in pieces {
                    out.delta(piece).await?;
                }
                return out.end(meta).await;
            }
        };
        let mut events = futures::stream::iter(open.first.map(Ok)).chain(open.rest);
        // Every way out before the tier's last event (the caller hung up, the tier failed or
        // stopped) still charges the tenant for what the tier was asked and had produced.
        let mut received_chars = 0;
        while let Some(ev) = events.next().await {
            match ev {
                Ok(StreamEvent::Delta(text)) => {
                    received_chars += text.len();
                    if let Err(stop) = out.delta(text).await {
                        self.settle_unfinished(hold, input, &tier, received_chars)
                            .await;
                        return Err(stop);
                    }
                }
                Ok(StreamEvent::Done {
                    finish_reason,
                    model,
                    usage,
                    cost_usd,
                }) => {
                    timings.upstream_ms = ms(t.elapsed());
                    let tokens = usage.map(|u| (u.prompt_tokens, u.completion_tokens));
                    self.metrics().gen_ai_call(&tier, t, None, tokens);
                    self.settle(hold, cost_usd).await;
                    let done = RemoteFinish {
                        model,
                        finish_reason,
                        usage: usage.unwrap_or_default(),
                        cost_usd,
                    };
                    let meta = remote_meta(input, info, &tier.name, done, timings);
                    return out.end(meta).await;
                }
                Err(e) => {
                    self.settle_unfinished(hold, input, &tier, received_chars)
                        .await;
                    let class = super::escalate::status_label(&e);
                    self.metrics().gen_ai_call(&tier, t, Some(class), None);
                    return Err(out.cut(e).into());
                }
            }
        }
        self.settle_unfinished(hold, input, &tier, received_chars)
            .await;
        Err(out
            .cut(format!(
                "tier {} ended the stream without finishing",
                tier.name
            ))
            .into())
    }

    /// Stream a fresh local generation with the caller's sampling parameters.
    async fn stream_local(
        &self,
        policy: &Arc<Policy>,
        input: &ChatInput,
        info: DecisionInfo,
        fallback: bool,
        mut timings: Timings,
        out: &mut Out,
    ) -> Result<(), Stop> {
        self.local_fits(policy, input).await?;
        let local = self.local()?;
        let _g = self.metrics().slm_guard();
        let t = Instant::now();
        let mut events = local.stream(local_request(policy, input)).await?;
        while let Some(ev) = events.next().await {
            let ev = match ev {
                Ok(ev) => ev,
                Err(e) if out.sent_chars > 0 => return Err(out.cut(e).into()),
                Err(e) => return Err(e.into()),
            };
            match ev {
                LocalEvent::Delta(text) => out.delta(text).await?,
                LocalEvent::Done {
                    prompt_tokens,
                    completion_tokens,
                    finish,
                } => {
                    timings.local_ms = ms(t.elapsed());
                    let answer = LocalAnswer {
                        text: String::new(),
                        prompt_tokens,
                        completion_tokens,
                        finish,
                    };
                    let meta = self.local_meta(policy, input, info, &answer, fallback, timings);
                    return out.end(meta).await;
                }
            }
        }
        Err(out
            .cut("the local model stopped without finishing the answer")
            .into())
    }
}
