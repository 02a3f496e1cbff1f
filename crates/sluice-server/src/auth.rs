//! Who is calling: the API key in `authorization: Bearer KEY` (or `x-api-key: KEY`) names
//! the tenant, or for the Admin service the admin. The tenant never comes from the request
//! body, and a tenant may use only the policies its entry lists.

use std::sync::Arc;

use sluice_policy::{Tenant, Tenants};
use tonic::{Request, Status};

use crate::error::GatewayError;
use crate::gateway::types::ChatInput;
use crate::telemetry::{record_error, request_span, MetadataExtractor};

/// The authenticated caller, put into each request's extensions by [`Auth::intercept`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    pub tenant: String,
    /// The tenant's entry, which says what it may use; `None` when authentication is off
    /// (any loaded policy).
    pub entry: Option<Arc<Tenant>>,
}

impl Caller {
    /// The caller when authentication is off.
    pub fn anonymous() -> Self {
        Self {
            tenant: "default".into(),
            entry: None,
        }
    }

    /// The request as this caller's: its tenant, its default policy when the request names
    /// none, and what it may use (checked where the policy is resolved).
    pub fn attribute(self, mut input: ChatInput) -> ChatInput {
        input.tenant = self.tenant;
        if let Some(entry) = &self.entry {
            if input.policy.is_empty() {
                input.policy = entry.default_policy.clone().unwrap_or_default();
            }
        }
        input.access = self.entry;
        input
    }
}

/// The admin recorded by [`Auth::intercept_admin`]; `None` when authentication is off.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdminCaller(pub Option<Arc<str>>);

/// API-key authentication; off when no tenants file is configured.
#[derive(Debug, Clone, Default)]
pub struct Auth {
    tenants: Option<Arc<Tenants>>,
}

impl Auth {
    pub fn new(tenants: Option<Tenants>) -> Self {
        Self {
            tenants: tenants.map(Arc::new),
        }
    }

    pub fn is_enabled(&self) -> bool {
        self.tenants.is_some()
    }

    /// Whether the Admin service can be called at all: authentication is off, or the
    /// tenants file names an admin.
    pub fn admin_reachable(&self) -> bool {
        self.tenants.as_ref().is_none_or(|t| t.has_admins())
    }

    /// A tonic interceptor for the Router service: starts the request's trace span (parent
    /// from the caller's `traceparent`), checks a tenant key in its `sluice.auth` child, and
    /// records the caller and the span for the handler.
    pub fn intercept(&self, mut req: Request<()>) -> Result<Request<()>, Status> {
        let operation = match req.extensions().get::<tonic::GrpcMethod>() {
            Some(m) if m.method() == "Score" => "score",
            _ => "chat",
        };
        let span = request_span(&MetadataExtractor(req.metadata()), operation);
        let checked = span.in_scope(|| {
            let _auth = tracing::info_span!("sluice.auth").entered();
            self.caller(grpc_key(req.metadata()))
        });
        let caller = match checked {
            Ok(caller) => caller,
            Err(e) => {
                record_error(&span, e.kind());
                return Err(e.into());
            }
        };
        span.record("sluice.tenant", caller.tenant.as_str());
        req.extensions_mut().insert(caller);
        req.extensions_mut().insert(RequestSpan(span));
        Ok(req)
    }

    /// A tonic interceptor for the Admin service: only admin keys pass.
    pub fn intercept_admin(&self, mut req: Request<()>) -> Result<Request<()>, Status> {
        let admin = self.admin(grpc_key(req.metadata()))?;
        req.extensions_mut().insert(admin);
        Ok(req)
    }

    /// The tenant whose key was presented (`None`: no key), for any front door.
    pub fn caller(&self, key: Option<&str>) -> Result<Caller, GatewayError> {
        let Some(tenants) = &self.tenants else {
            return Ok(Caller::anonymous());
        };
        let key = key.ok_or(GatewayError::Unauthenticated(MISSING_KEY))?;
        match tenants.authenticate(key) {
            Some(t) => Ok(Caller {
                tenant: t.name.clone(),
                entry: Some(t),
            }),
            None if tenants.authenticate_admin(key).is_some() => Err(GatewayError::Forbidden(
                "an admin key is for the Admin service only; call Router with a tenant's key"
                    .into(),
            )),
            None => Err(GatewayError::Unauthenticated("unknown API key")),
        }
    }

    /// The admin whose key was presented; anyone when authentication is off.
    pub fn admin(&self, key: Option<&str>) -> Result<AdminCaller, GatewayError> {
        let Some(tenants) = &self.tenants else {
            return Ok(AdminCaller(None));
        };
        let key = key.ok_or(GatewayError::Unauthenticated(MISSING_KEY))?;
        if let Some(name) = tenants.authenticate_admin(key) {
            return Ok(AdminCaller(Some(name)));
        }
        Err(match tenants.authenticate(key) {
            Some(t) if tenants.has_admins() => GatewayError::Forbidden(format!(
                "the Admin service needs an admin key; this key is tenant {:?}'s",
                t.name
            )),
            Some(t) => GatewayError::Forbidden(format!(
                "the Admin service needs an admin key and the tenants file names no `admins`; \
                 this key is tenant {:?}'s",
                t.name
            )),
            None => GatewayError::Unauthenticated("unknown API key"),
        })
    }
}

const MISSING_KEY: &str =
    "missing API key: expected `authorization: Bearer <key>` or `x-api-key: <key>`";

/// The key in `authorization: Bearer KEY` or else `x-api-key: KEY`, trimmed; `None` when
/// neither holds one. The same rule for gRPC metadata and HTTP headers.
pub fn presented_key<'a>(
    authorization: Option<&'a str>,
    x_api_key: Option<&'a str>,
) -> Option<&'a str> {
    let bearer = authorization.and_then(|v| {
        v.strip_prefix("Bearer ")
            .or_else(|| v.strip_prefix("bearer "))
    });
    bearer
        .or(x_api_key)
        .map(str::trim)
        .filter(|k| !k.is_empty())
}

fn grpc_key(md: &tonic::metadata::MetadataMap) -> Option<&str> {
    let get = |name| md.get(name).and_then(|v| v.to_str().ok());
    presented_key(get("authorization"), get("x-api-key"))
}

/// The trace span the interceptor started for a request.
#[derive(Debug, Clone)]
pub struct RequestSpan(pub tracing::Span);

/// The request's trace span: the interceptor's, or a new one (parent from the metadata's
/// `traceparent`) where none ran.
pub fn span_of<T>(req: &Request<T>, operation: &'static str) -> tracing::Span {
    match req.extensions().get::<RequestSpan>() {
        Some(RequestSpan(span)) => span.clone(),
        None => request_span(&MetadataExtractor(req.metadata()), operation),
    }
}

/// The caller recorded by the interceptor (anonymous when none ran, as in unit tests).
pub fn caller_of<T>(req: &Request<T>) -> Caller {
    req.extensions()
        .get::<Caller>()
        .cloned()
        .unwrap_or_else(Caller::anonymous)
}
