//! Turns a streamed (SSE) chat-completion response into [`StreamEvent`]s.

use std::collections::VecDeque;

use bytes::Bytes;
use futures::stream::{self, BoxStream, StreamExt};
use sluice_policy::Tier;
use tokio::time::Instant;

use super::timeout;
use crate::error::UpstreamError;
use crate::response::{
    decode_chunk, decode_completion, non_empty, StreamEvent, Usage, DEFAULT_FINISH_REASON,
};
use crate::sse::SseParser;

type Events = BoxStream<'static, Result<StreamEvent, UpstreamError>>;

/// The events of `response` from `tier`; the stream fails with a timeout at `deadline`.
///
/// An upstream that ignores `stream: true` and answers plain JSON is accepted too: its
/// answer comes as one delta and a `Done`.
pub(super) fn events(tier: &Tier, response: reqwest::Response, deadline: Instant) -> Events {
    let is_json = response
        .headers()
        .get(reqwest::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.trim_start().starts_with("application/json"));
    if is_json {
        return whole_answer(tier.clone(), response, deadline);
    }
    let state = State {
        tier: tier.clone(),
        body: response.bytes_stream().boxed(),
        deadline,
        parser: SseParser::default(),
        payloads: Vec::new(),
        pending: VecDeque::new(),
        model: None,
        finish_reason: None,
        usage: None,
        finished: false,
    };
    stream::unfold(state, |mut state| async move {
        loop {
            if let Some(event) = state.pending.pop_front() {
                return Some((event, state));
            }
            if state.finished {
                return None;
            }
            state.pull().await;
        }
    })
    .boxed()
}

/// A JSON (non-SSE) answer to a streaming request, as events.
fn whole_answer(tier: Tier, response: reqwest::Response, deadline: Instant) -> Events {
    stream::once(async move {
        let bytes = match tokio::time::timeout_at(deadline, response.bytes()).await {
            Err(_) => return vec![Err(timeout(&tier))],
            Ok(Err(err)) => return vec![Err(UpstreamError::from_reqwest(&tier.name, &err))],
            Ok(Ok(bytes)) => bytes,
        };
        match decode_completion(&tier, &bytes) {
            Err(err) => vec![Err(err)],
            Ok(c) => {
                let mut events = Vec::with_capacity(2);
                if !c.content.is_empty() {
                    events.push(Ok(StreamEvent::Delta(c.content)));
                }
                events.push(Ok(StreamEvent::Done {
                    finish_reason: c.finish_reason,
                    model: c.model,
                    usage: Some(c.usage),
                    cost_usd: c.cost_usd,
                }));
                events
            }
        }
    })
    .flat_map(stream::iter)
    .boxed()
}

/// Where a stream is between polls.
struct State {
    tier: Tier,
    body: BoxStream<'static, reqwest::Result<Bytes>>,
    deadline: Instant,
    parser: SseParser,
    /// Scratch space for the payloads of one network chunk.
    payloads: Vec<String>,
    /// Events decoded but not yet handed out.
    pending: VecDeque<Result<StreamEvent, UpstreamError>>,
    model: Option<String>,
    finish_reason: Option<String>,
    usage: Option<Usage>,
    /// The last event (`Done` or an error) is in `pending`.
    finished: bool,
}

impl State {
    /// Reads the next network chunk and queues the events it completes.
    async fn pull(&mut self) {
        let mut payloads = std::mem::take(&mut self.payloads);
        match tokio::time::timeout_at(self.deadline, self.body.next()).await {
            Err(_) => self.fail(timeout(&self.tier)),
            Ok(Some(Err(err))) => self.fail(UpstreamError::from_reqwest(&self.tier.name, &err)),
            Ok(Some(Ok(bytes))) => {
                self.parser.push(&bytes, &mut payloads);
                self.handle_all(&mut payloads);
            }
            Ok(None) => {
                self.parser.finish(&mut payloads);
                self.handle_all(&mut payloads);
                if !self.finished {
                    self.end_of_body();
                }
            }
        }
        self.payloads = payloads;
    }

    fn handle_all(&mut self, payloads: &mut Vec<String>) {
        for data in payloads.drain(..) {
            if self.finished {
                break;
            }
            self.handle(&data);
        }
    }

    /// Handles one `data:` payload.
    fn handle(&mut self, data: &str) {
        if data.trim() == "[DONE]" {
            self.complete();
            return;
        }
        let mut chunk = match decode_chunk(&self.tier, data) {
            Ok(chunk) => chunk,
            Err(err) => return self.fail(err),
        };
        if let Some(model) = non_empty(chunk.model.take()) {
            self.model = Some(model);
        }
        if let Some(usage) = chunk.usage.take() {
            self.usage = Some(usage.into());
        }
        if let Some(reason) = chunk.finish_reason() {
            self.finish_reason = Some(reason);
        }
        if let Some(text) = chunk.content() {
            self.pending.push_back(Ok(StreamEvent::Delta(text)));
        }
    }

    /// The body ended without `data: [DONE]`: fine after a finish reason, else truncated.
    fn end_of_body(&mut self) {
        if self.finish_reason.is_some() {
            self.complete();
        } else {
            self.fail(UpstreamError::Decode {
                tier: self.tier.name.clone(),
                message: "expected a finish_reason or data: [DONE] before the stream ended, \
                          found the end of the body"
                    .to_owned(),
            });
        }
    }

    fn complete(&mut self) {
        let cost_usd = self.usage.map_or(0.0, |u| u.cost(&self.tier));
        self.pending.push_back(Ok(StreamEvent::Done {
            finish_reason: self
                .finish_reason
                .take()
                .unwrap_or_else(|| DEFAULT_FINISH_REASON.to_owned()),
            model: self.model.take().unwrap_or_else(|| self.tier.model.clone()),
            usage: self.usage,
            cost_usd,
        }));
        self.finished = true;
    }

    fn fail(&mut self, err: UpstreamError) {
        self.pending.push_back(Err(err));
        self.finished = true;
    }
}
