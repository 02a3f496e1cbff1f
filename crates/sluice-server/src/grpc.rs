//! The tonic services: thin adapters from wire types to the gateway and back.

use std::pin::Pin;

use futures::{Stream, StreamExt};
use sluice_policy::Policy;
use sluice_proto::v1 as pb;
use sluice_proto::v1::admin_server::Admin;
use sluice_proto::v1::router_server::Router;
use tonic::{Request, Response, Status};

use tracing::Instrument;

use crate::auth::{caller_of, span_of};
use crate::convert::{chat_response, final_chunk, grpc_timeout, score_response};
use crate::error::GatewayError;
use crate::gateway::types::{ChatInput, StreamItem};
use crate::gateway::Gateway;
use crate::telemetry::{record_answer, record_error};

/// `sluice.v1.Router`.
#[derive(Debug, Clone)]
pub struct RouterService {
    gw: Gateway,
}

impl RouterService {
    pub fn new(gw: Gateway) -> Self {
        Self { gw }
    }
}

/// Convert a request, carrying the caller and its deadline along.
fn chat_input(request: Request<pb::ChatRequest>) -> Result<ChatInput, GatewayError> {
    let timeout = grpc_timeout(
        request
            .metadata()
            .get("grpc-timeout")
            .and_then(|v| v.to_str().ok()),
    );
    let caller = caller_of(&request);
    let mut input = caller.attribute(ChatInput::try_from(request.into_inner())?);
    // Stop escalating a little before the caller gives up, to leave time for the fallback
    // answer or a clear error to reach it.
    input.deadline = timeout.map(|t| {
        let headroom = (t / 10).min(std::time::Duration::from_millis(100));
        std::time::Instant::now() + t - headroom
    });
    Ok(input)
}

type ChunkStream = Pin<Box<dyn Stream<Item = Result<pb::ChatChunk, Status>> + Send + 'static>>;

#[tonic::async_trait]
impl Router for RouterService {
    async fn chat(
        &self,
        request: Request<pb::ChatRequest>,
    ) -> Result<Response<pb::ChatResponse>, Status> {
        let span = span_of(&request, "chat");
        let input = chat_input(request)?;
        self.gw.trace_content(&span, &input);
        match self.gw.chat(input).instrument(span.clone()).await {
            Ok(out) => {
                record_answer(&span, &out.meta);
                self.gw.trace_answer(&span, &out.text);
                Ok(Response::new(chat_response(out.text, out.meta)))
            }
            Err(e) => {
                record_error(&span, e.kind());
                Err(e.into())
            }
        }
    }

    type ChatStreamStream = ChunkStream;

    async fn chat_stream(
        &self,
        request: Request<pb::ChatRequest>,
    ) -> Result<Response<Self::ChatStreamStream>, Status> {
        let span = span_of(&request, "chat");
        let input = chat_input(request)?;
        self.gw.trace_content(&span, &input);
        let request_id = input.request_id.clone();
        let mut items = span.in_scope(|| self.gw.chat_stream(input));
        // Errors that come before any text fail the call itself, so clients see a plain status.
        let first = match items.next().await {
            Some(Err(e)) => {
                record_error(&span, e.kind());
                return Err(e.into());
            }
            other => other,
        };
        let chunks = futures::stream::iter(first)
            .chain(items)
            .map(move |item| match item {
                Ok(StreamItem::Delta(delta)) => Ok(pb::ChatChunk {
                    request_id: request_id.clone(),
                    delta,
                    ..Default::default()
                }),
                Ok(StreamItem::End(meta)) => {
                    record_answer(&span, &meta);
                    Ok(final_chunk(*meta))
                }
                Err(e) => {
                    record_error(&span, e.kind());
                    Err(Status::from(e))
                }
            });
        Ok(Response::new(Box::pin(chunks)))
    }

    async fn score(
        &self,
        request: Request<pb::ScoreRequest>,
    ) -> Result<Response<pb::ScoreResponse>, Status> {
        let span = span_of(&request, "score");
        let caller = caller_of(&request);
        let input = caller.attribute(ChatInput::try_from(request.into_inner())?);
        let out = self.gw.score(input).instrument(span.clone()).await;
        let out = out.inspect_err(|e| record_error(&span, e.kind()))?;
        Ok(Response::new(score_response(out)))
    }
}

/// `sluice.v1.Admin`.
#[derive(Debug, Clone)]
pub struct AdminService {
    gw: Gateway,
}

impl AdminService {
    pub fn new(gw: Gateway) -> Self {
        Self { gw }
    }
}

fn policy_info(p: &Policy, available: Vec<String>) -> pb::PolicyInfo {
    pb::PolicyInfo {
        name: p.name.clone(),
        source: p
            .source
            .as_ref()
            .map(|s| s.display().to_string())
            .unwrap_or_default(),
        available,
        scoring_method: p.scoring.method.as_str().to_string(),
        threshold: p.scoring.threshold,
        tiers: p.tiers.iter().map(|t| t.name.clone()).collect(),
        summary: p.text.to_string(),
    }
}

#[tonic::async_trait]
impl Admin for AdminService {
    async fn get_policy(
        &self,
        request: Request<pb::GetPolicyRequest>,
    ) -> Result<Response<pb::PolicyInfo>, Status> {
        let set = self.gw.policies().snapshot();
        let p = set
            .get(&request.into_inner().name)
            .map_err(GatewayError::from)?;
        Ok(Response::new(policy_info(&p, set.names())))
    }

    async fn reload_policy(
        &self,
        _request: Request<pb::ReloadPolicyRequest>,
    ) -> Result<Response<pb::PolicyInfo>, Status> {
        match self.gw.reload_policies("rpc") {
            Ok(set) => Ok(Response::new(policy_info(
                &set.default_policy(),
                set.names(),
            ))),
            Err(e) => Err(GatewayError::Reload(e).into()),
        }
    }
}
