//! Domain errors of the request path, and the one table that maps them to gRPC and HTTP codes.

use sluice_policy::PolicyError;
use sluice_router::LocalError;

/// Why a request failed.
#[derive(Debug, thiserror::Error)]
pub enum GatewayError {
    /// A request field is wrong; `field` is its path in the request, e.g. `messages[1].role`.
    #[error("{field}: {message}")]
    InvalidArgument { field: String, message: String },
    #[error("unknown policy {name:?}; loaded policies: {known}")]
    UnknownPolicy { name: String, known: String },
    /// The request names a policy the caller's tenant entry does not list.
    #[error("tenant {tenant:?} may not use policy {policy:?}; its policies: {allowed}")]
    PolicyDenied {
        tenant: String,
        policy: String,
        allowed: String,
    },
    /// Every tier failed and the policy says not to fall back to the local model.
    #[error("escalation failed: {0}")]
    Upstream(String),
    /// The caller's deadline passed before any tier answered.
    #[error("deadline exceeded while escalating: {0}")]
    DeadlineExceeded(String),
    #[error("the local model is still loading")]
    NotReady,
    #[error("{0}")]
    Local(LocalError),
    /// The prompt does not fit the local model and the request must stay local.
    #[error(
        "messages: the prompt is {tokens} tokens; the local model takes at most {} \
         (its context of {context} tokens less max_tokens {max_tokens}); send it to a tier \
         (ROUTE_HINT_AUTO or _REMOTE) or shorten it",
        context.saturating_sub(*max_tokens)
    )]
    TooLong {
        tokens: usize,
        context: u32,
        max_tokens: u32,
    },
    /// A stream was cut after part of the answer had reached the caller.
    #[error("the answer was cut after {sent_chars} characters: {cause}")]
    StreamCut { sent_chars: usize, cause: String },
    #[error("policy reload failed, the running policies stay: {0}")]
    Reload(PolicyError),
    /// A policy rule with `action: {reject: MESSAGE}` matched.
    #[error("rejected by rule {rule:?} of policy {policy:?}: {message}")]
    Rejected {
        policy: String,
        rule: String,
        message: String,
    },
    /// The request must stay local and the local model is full.
    #[error(
        "the local model is busy: policy {policy:?} admits {max_queue} requests at once \
         (local.max_queue) and none freed within {} ms (local.max_wait); retry later or \
         let it go to a tier (ROUTE_HINT_AUTO)",
        max_wait.as_millis()
    )]
    LocalBusy {
        policy: String,
        max_queue: u32,
        max_wait: std::time::Duration,
    },
    /// No API key, or one that names no one.
    #[error("{0}")]
    Unauthenticated(&'static str),
    /// A key that may not call this service.
    #[error("{0}")]
    Forbidden(String),
    /// The tenant's escalation budget is spent and the policy says to reject.
    #[error("{0}")]
    BudgetExhausted(String),
}

impl From<LocalError> for GatewayError {
    fn from(e: LocalError) -> Self {
        match e {
            LocalError::NotReady => GatewayError::NotReady,
            other => GatewayError::Local(other),
        }
    }
}

impl From<PolicyError> for GatewayError {
    fn from(e: PolicyError) -> Self {
        match e {
            PolicyError::UnknownPolicy { name, known } => GatewayError::UnknownPolicy {
                name,
                known: known.join(", "),
            },
            other => GatewayError::Reload(other),
        }
    }
}

impl GatewayError {
    /// The only place that decides which gRPC code and HTTP status an error gets.
    pub fn codes(&self) -> (tonic::Code, u16) {
        use tonic::Code;
        match self {
            GatewayError::InvalidArgument { .. } => (Code::InvalidArgument, 400),
            GatewayError::UnknownPolicy { .. } => (Code::NotFound, 404),
            GatewayError::PolicyDenied { .. } => (Code::PermissionDenied, 403),
            GatewayError::Upstream(_) => (Code::Unavailable, 502),
            GatewayError::NotReady => (Code::Unavailable, 503),
            GatewayError::DeadlineExceeded(_) => (Code::DeadlineExceeded, 504),
            GatewayError::Local(_) => (Code::Internal, 500),
            GatewayError::TooLong { .. } => (Code::InvalidArgument, 400),
            GatewayError::StreamCut { .. } => (Code::Aborted, 502),
            GatewayError::Reload(_) => (Code::FailedPrecondition, 422),
            GatewayError::Rejected { .. } => (Code::PermissionDenied, 403),
            GatewayError::BudgetExhausted(_) => (Code::ResourceExhausted, 429),
            GatewayError::LocalBusy { .. } => (Code::ResourceExhausted, 429),
            GatewayError::Unauthenticated(_) => (Code::Unauthenticated, 401),
            GatewayError::Forbidden(_) => (Code::PermissionDenied, 403),
        }
    }

    /// A short label for metrics.
    pub fn kind(&self) -> &'static str {
        match self {
            GatewayError::InvalidArgument { .. } => "invalid_argument",
            GatewayError::UnknownPolicy { .. } => "unknown_policy",
            GatewayError::PolicyDenied { .. } => "policy_denied",
            GatewayError::Upstream(_) => "upstream",
            GatewayError::NotReady => "not_ready",
            GatewayError::DeadlineExceeded(_) => "deadline",
            GatewayError::Local(_) => "local",
            GatewayError::TooLong { .. } => "too_long",
            GatewayError::StreamCut { .. } => "stream_cut",
            GatewayError::Reload(_) => "reload",
            GatewayError::Rejected { .. } => "rejected",
            GatewayError::BudgetExhausted(_) => "budget_exhausted",
            GatewayError::LocalBusy { .. } => "local_busy",
            GatewayError::Unauthenticated(_) => "unauthenticated",
            GatewayError::Forbidden(_) => "forbidden",
        }
    }

    pub fn invalid(field: impl Into<String>, message: impl Into<String>) -> Self {
        GatewayError::InvalidArgument {
            field: field.into(),
            message: message.into(),
        }
    }
}

impl From<GatewayError> for tonic::Status {
    fn from(e: GatewayError) -> Self {
        tonic::Status::new(e.codes().0, e.to_string())
    }
}
