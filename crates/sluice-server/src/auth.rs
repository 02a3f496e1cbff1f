//! Who is calling: the API key in `authorization: Bearer KEY` (or `x-api-key: KEY`) names
//! the tenant. The tenant never comes from the request body.

use std::sync::Arc;

use sluice_policy::Tenants;
use tonic::{Request, Status};

/// The authenticated caller, put into each request's extensions by [`Auth::intercept`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    pub tenant: String,
    /// The policy used when the request names none.
    pub default_policy: Option<String>,
}

impl Caller {
    /// The caller when authentication is off.
    pub fn anonymous() -> Self {
        Self {
            tenant: "default".into(),
            default_policy: None,
        }
    }
}

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

    /// A tonic interceptor: checks the key and records the caller.
    pub fn intercept(&self, mut req: Request<()>) -> Result<Request<()>, Status> {
        let caller = self.caller(req.metadata())?;
        req.extensions_mut().insert(caller);
        Ok(req)
    }

    fn caller(&self, md: &tonic::metadata::MetadataMap) -> Result<Caller, Status> {
        let Some(tenants) = &self.tenants else {
            return Ok(Caller::anonymous());
        };
        let bearer = md
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| {
                v.strip_prefix("Bearer ")
                    .or_else(|| v.strip_prefix("bearer "))
            });
        let key = bearer.or_else(|| md.get("x-api-key").and_then(|v| v.to_str().ok()));
        let Some(key) = key.map(str::trim).filter(|k| !k.is_empty()) else {
            return Err(Status::unauthenticated(
                "missing API key: expected metadata `authorization: Bearer <key>` or `x-api-key: <key>`",
            ));
        };
        match tenants.authenticate(key) {
            Some(t) => Ok(Caller {
                tenant: t.name.clone(),
                default_policy: t.default_policy.clone(),
            }),
            None => Err(Status::unauthenticated("unknown API key")),
        }
    }
}

/// The caller recorded by the interceptor (anonymous when none ran, as in unit tests).
pub fn caller_of<T>(req: &Request<T>) -> Caller {
    req.extensions()
        .get::<Caller>()
        .cloned()
        .unwrap_or_else(Caller::anonymous)
}
