//! HTTP client for the large-model tiers: OpenAI-compatible `POST /v1/chat/completions`
//! and Anthropic's `POST /v1/messages`, plain and streamed (SSE), with per-tier connect,
//! read and total timeouts, retries with jittered backoff or `Retry-After`, and a
//! [`CallGuard`] hook for circuit breaking and retry budgets.

mod anthropic;
mod breaker;
mod budget;
mod client;
mod error;
mod guard;
mod openai;
mod request;
mod response;
mod sse;
mod tier_guard;

pub use breaker::BreakerState;
pub use client::{HeaderHook, KeyLookup, UpstreamClient};
pub use error::UpstreamError;
pub use guard::{CallGuard, NoGuard};
pub use request::UpstreamRequest;
pub use response::{Completion, StreamEvent, Usage};
pub use sse::SseParser;
pub use tier_guard::TierGuards;
