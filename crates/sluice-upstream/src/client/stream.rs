//! Turns a streamed (SSE) response into [`StreamEvent`]s: the transport half. Each
//! provider supplies a [`StreamDecoder`] that reads the `data:` payloads.

use std::collections::VecDeque;
use std::sync::Arc;

use futures::stream::{self, BoxStream, StreamExt};
use sluice_policy::{Provider, Tier};
use tokio::time::Instant;

use super::Body;
use crate::error::UpstreamError;
use crate::guard::CallGuard;
use crate::response::{Completion, StreamEvent};
use crate::sse::SseParser;
use crate::{anthropic, openai};

type Events = BoxStream<'static, Result<StreamEvent, UpstreamError>>;

/// What a provider's decoder made of one `data:` payload.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Decoded {
    /// Nothing to hand out (metadata, keep-alives, events of no interest).
    Nothing,
    /// The next piece of the answer's text (never empty).
    Delta(String),
    /// The answer is complete; this is a [`StreamEvent::Done`].
    Done(StreamEvent),
}

/// A provider's reading of one stream: `data:` payloads in, events out.
pub(crate) trait StreamDecoder: Send + 'static {
    /// Reads one payload; an error ends the stream.
    fn data(&mut self, payload: &str) -> Result<Decoded, UpstreamError>;
    /// The body ended before [`Decoded::Done`]: the `Done` event if the answer is
    /// complete anyway, else why it is not.
    fn end(&mut self) -> Result<StreamEvent, UpstreamError>;
}

/// The events of `response` from `tier`, read by `decoder`; the stream fails with a
/// timeout at `deadline`. Its end (`Done` or an error) is recorded with `guard`.
///
/// An upstream that ignores `stream: true` and answers plain JSON is accepted too: its
/// answer comes as one delta and a `Done`.
pub(super) fn events(
    tier: &Tier,
    response: reqwest::Response,
    deadline: Instant,
    decoder: Box<dyn StreamDecoder>,
    guard: Arc<dyn CallGuard>,
) -> Events {
    let is_json = response
        .headers()
        .get(reqwest::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.trim_start().starts_with("application/json"));
    let body = Body::new(tier, response, deadline);
    if is_json {
        return whole_answer(tier.clone(), body, guard);
    }
    let state = State {
        tier: tier.clone(),
        body,
        guard,
        decoder,
        parser: SseParser::default(),
        payloads: Vec::new(),
        pending: VecDeque::new(),
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
fn whole_answer(tier: Tier, body: Body, guard: Arc<dyn CallGuard>) -> Events {
    stream::once(async move {
        let completion = match body.read_all().await {
            Ok(bytes) => match tier.provider {
                Provider::OpenAi => openai::decode_completion(&tier, &bytes),
                Provider::Anthropic => anthropic::decode_completion(&tier, &bytes),
            },
            Err(err) => Err(err),
        };
        guard.record(&tier, completion.is_ok());
        match completion {
            Err(err) => vec![Err(err)],
            Ok(c) => as_events(c),
        }
    })
    .flat_map(stream::iter)
    .boxed()
}

fn as_events(c: Completion) -> Vec<Result<StreamEvent, UpstreamError>> {
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

/// Where a stream is between polls.
struct State {
    tier: Tier,
    body: Body,
    guard: Arc<dyn CallGuard>,
    decoder: Box<dyn StreamDecoder>,
    parser: SseParser,
    /// Scratch space for the payloads of one network chunk.
    payloads: Vec<String>,
    /// Events decoded but not yet handed out.
    pending: VecDeque<Result<StreamEvent, UpstreamError>>,
    /// The last event (`Done` or an error) is in `pending`.
    finished: bool,
}

impl State {
    /// Reads the next network chunk and queues the events it completes.
    async fn pull(&mut self) {
        let mut payloads = std::mem::take(&mut self.payloads);
        match self.body.next().await {
            Err(err) => self.finish(Err(err)),
            Ok(Some(bytes)) => {
                self.parser.push(&bytes, &mut payloads);
                self.handle_all(&mut payloads);
            }
            Ok(None) => {
                self.parser.finish(&mut payloads);
                self.handle_all(&mut payloads);
                if !self.finished {
                    let last = self.decoder.end();
                    self.finish(last);
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
            match self.decoder.data(&data) {
                Ok(Decoded::Nothing) => {}
                Ok(Decoded::Delta(text)) => self.pending.push_back(Ok(StreamEvent::Delta(text))),
                Ok(Decoded::Done(done)) => self.finish(Ok(done)),
                Err(err) => self.finish(Err(err)),
            }
        }
    }

    /// Queues the last event and tells the guard how the stream ended.
    fn finish(&mut self, last: Result<StreamEvent, UpstreamError>) {
        self.guard.record(&self.tier, last.is_ok());
        self.pending.push_back(last);
        self.finished = true;
    }
}
