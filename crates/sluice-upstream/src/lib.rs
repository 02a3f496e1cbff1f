//! HTTP client for the large-model tiers: OpenAI-compatible `POST /v1/chat/completions`,
//! plain and streamed (SSE), with bearer keys, retries with jittered backoff and a
//! whole-call timeout per tier.

mod client;
mod error;
mod request;
mod response;
mod sse;

pub use client::{KeyLookup, UpstreamClient};
pub use error::UpstreamError;
pub use request::UpstreamRequest;
pub use response::{Completion, StreamEvent, Usage};
