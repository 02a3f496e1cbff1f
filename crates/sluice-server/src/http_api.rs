//! The OpenAI-compatible front door: `POST /v1/chat/completions` and `GET /v1/models` on
//! their own listener, mapped onto the same request path as gRPC (same tenants and keys,
//! same policies, same error table).

pub mod limit;
mod stream;
pub mod wire;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Json;
use serde_json::json;

use crate::auth::{presented_key, Auth, Caller};
use crate::error::GatewayError;
use crate::gateway::types::AnswerMeta;
use crate::gateway::Gateway;
use crate::telemetry::{record_answer, record_error, request_span, HeaderExtractor};
use tracing::Instrument;

#[derive(Debug, Clone)]
struct Api {
    gw: Gateway,
    auth: Auth,
}

/// Largest request body: the request limits' 4 MiB of message text plus room for JSON
/// escaping and the other fields (axum's own default, 2 MB, would refuse what gRPC takes).
const MAX_BODY_BYTES: usize = 12 * 1024 * 1024;

pub fn router(gw: Gateway, auth: Auth) -> axum::Router {
    axum::Router::new()
        .route("/v1/chat/completions", post(chat_completions))
        .route("/v1/models", get(models))
        .layer(axum::extract::DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state(Api { gw, auth })
}

/// An error in OpenAI's shape, with the HTTP status of the one error table.
#[derive(Debug)]
pub struct ApiError(pub GatewayError);

impl From<GatewayError> for ApiError {
    fn from(e: GatewayError) -> Self {
        ApiError(e)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (_, status) = self.0.codes();
        let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let kind = match status.as_u16() {
            400 => "invalid_request_error",
            401 => "authentication_error",
            403 => "permission_error",
            404 => "not_found_error",
            429 => "rate_limit_error",
            _ => "api_error",
        };
        let param = match &self.0 {
            GatewayError::InvalidArgument { field, .. } => json!(field),
            _ => json!(null),
        };
        let body = json!({ "error": {
            "message": self.0.to_string(),
            "type": kind,
            "param": param,
            "code": self.0.kind(),
        }});
        (status, Json(body)).into_response()
    }
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

fn caller(api: &Api, headers: &HeaderMap) -> Result<Caller, GatewayError> {
    api.auth.caller(presented_key(
        header(headers, "authorization"),
        header(headers, "x-api-key"),
    ))
}

/// `x-sluice-*` headers of an answer.
fn meta_headers(meta: &AnswerMeta) -> HeaderMap {
    let mut h = HeaderMap::new();
    let mut put = |name: &'static str, value: String| {
        if let Ok(v) = HeaderValue::from_str(&value) {
            h.insert(HeaderName::from_static(name), v);
        }
    };
    put("x-request-id", meta.request_id.clone());
    put("x-sluice-route", meta.route.kind.as_str().to_owned());
    if let Some(tier) = &meta.route.tier {
        put("x-sluice-tier", tier.clone());
    }
    if let Some(c) = meta.decision.confidence {
        put("x-sluice-confidence", format!("{c:.6}"));
    }
    put("x-sluice-cost-usd", format!("{:.9}", meta.usage.cost_usd));
    put(
        "x-sluice-cost-avoided-usd",
        format!("{:.9}", meta.usage.cost_avoided_usd),
    );
    h
}

async fn chat_completions(
    State(api): State<Api>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let span = request_span(&HeaderExtractor(&headers), "chat");
    let checked = span.in_scope(|| {
        let _auth = tracing::info_span!("sluice.auth").entered();
        caller(&api, &headers)
    });
    let caller = checked.inspect_err(|e| record_error(&span, e.kind()))?;
    span.record("sluice.tenant", caller.tenant.as_str());
    let req = wire::parse(&body)?;
    let stream = req.stream;
    let include_usage = req.stream_options.as_ref().is_some_and(|o| o.include_usage);
    let sluice_headers = wire::Headers {
        route_hint: header(&headers, "x-sluice-route-hint"),
        cache_control: header(&headers, "x-sluice-cache-control"),
        request_id: header(&headers, "x-request-id"),
    };
    let input = caller.attribute(req.into_input(&sluice_headers)?);
    api.gw.trace_content(&span, &input);
    if stream {
        return stream::respond(&api.gw, input, include_usage, span).await;
    }
    let out = api.gw.chat(input).instrument(span.clone()).await;
    let out = out.inspect_err(|e| record_error(&span, e.kind()))?;
    record_answer(&span, &out.meta);
    api.gw.trace_answer(&span, &out.text);
    let headers = meta_headers(&out.meta);
    Ok((headers, Json(wire::completion(&out.text, &out.meta))).into_response())
}

/// The policies the caller may name, as models (`sluice` is its default).
async fn models(State(api): State<Api>, headers: HeaderMap) -> Result<Response, ApiError> {
    let caller = caller(&api, &headers)?;
    let set = api.gw.policies().snapshot();
    let default = set.default_policy();
    let names = match &caller.entry {
        Some(tenant) => tenant.allowed(&default.name),
        None => set.names(),
    };
    let data: Vec<_> = std::iter::once("sluice".to_owned())
        .chain(names)
        .map(|id| json!({ "id": id, "object": "model", "created": 0, "owned_by": "sluice" }))
        .collect();
    Ok(Json(json!({ "object": "list", "data": data })).into_response())
}
