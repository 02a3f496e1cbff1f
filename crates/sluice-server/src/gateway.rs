//! The request path: validate, pick the policy, score with the local model, answer locally or
//! escalate along the tier chain, account for tokens and cost.

mod admission;
mod budget;
mod cache;
mod chat;
mod distill;
mod escalate;
pub mod limits;
mod policy_store;
mod rules;
mod shadow;
mod stream;
mod trace;
pub mod types;

use std::sync::{Arc, OnceLock};

use sluice_policy::{Policy, PolicyError, PolicySet, Role};
use sluice_router::{LocalModel, LocalRequest};
use sluice_upstream::{UpstreamClient, UpstreamRequest};

pub use cache::Caches;
pub use policy_store::PolicyStore;
pub use types::*;

use crate::error::GatewayError;
use crate::metrics::Metrics;

/// The gateway's shared state; cheap to clone, one per server.
#[derive(Debug, Clone)]
pub struct Gateway {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    policies: PolicyStore,
    local: OnceLock<Arc<dyn LocalModel>>,
    upstream: UpstreamClient,
    caches: Caches,
    metrics: Arc<Metrics>,
    /// Set once a stop was asked for: `/readyz` answers 503 while requests are still served.
    draining: std::sync::atomic::AtomicBool,
    /// Escalation spend per tenant, for budgets (in Redis when the caches have it); outlives
    /// policy reloads.
    ledger: crate::budget::Ledger,
    /// Places on the local model; outlives policy reloads.
    admission: Arc<admission::LocalAdmission>,
    /// Shadow calls in flight and each policy's shadow window; outlive policy reloads.
    shadows: shadow::Shadows,
    /// Where distillation examples are written (`--distill-dir`); unset: nowhere.
    distill: OnceLock<Arc<crate::records::RecordLog>>,
    /// Put prompts and answers in trace spans (`--trace-content`).
    trace_content: std::sync::atomic::AtomicBool,
}

impl Gateway {
    pub fn new(
        policies: PolicyStore,
        upstream: UpstreamClient,
        caches: Caches,
        metrics: Arc<Metrics>,
    ) -> Self {
        let ledger = crate::budget::Ledger::new(
            crate::budget::SpendLedger::new(),
            caches
                .redis()
                .cloned()
                .map(crate::budget::SharedLedger::new),
            metrics.ledger.clone(),
        );
        Self {
            inner: Arc::new(Inner {
                policies,
                local: OnceLock::new(),
                upstream,
                caches,
                admission: admission::LocalAdmission::new(metrics.local_queue.clone()),
                metrics,
                ledger,
                shadows: shadow::Shadows::default(),
                distill: OnceLock::new(),
                trace_content: std::sync::atomic::AtomicBool::new(false),
                draining: std::sync::atomic::AtomicBool::new(false),
            }),
        }
    }

    pub fn caches(&self) -> &Caches {
        &self.inner.caches
    }

    /// The local model's id, or the policy's label for it while it loads.
    fn local_model_id(&self, policy: &Policy) -> String {
        self.inner
            .local
            .get()
            .map_or_else(|| policy.local.model.clone(), |m| m.model_id().to_string())
    }

    /// Install the local model once it has loaded; the gateway is ready from then on.
    pub fn set_local(&self, model: Arc<dyn LocalModel>) {
        let _ = self.inner.local.set(model);
    }

    /// True once the local model is loaded.
    pub fn is_ready(&self) -> bool {
        self.inner.local.get().is_some()
    }

    /// From now on report not ready (the server is stopping), while still answering.
    pub fn set_draining(&self) {
        self.inner
            .draining
            .store(true, std::sync::atomic::Ordering::SeqCst);
    }

    /// Write every judged shadow sample to `log` (`--samples-dir`); set once, before serving.
    pub fn set_samples_log(&self, log: Arc<crate::records::RecordLog>) {
        if self.inner.shadows.set_log(log).is_err() {
            tracing::warn!("the samples directory was set already; the first one stays");
        }
    }

    /// Abort the shadow calls still running (the server is stopping); returns how many.
    pub fn stop_shadows(&self) -> usize {
        self.inner.shadows.stop()
    }

    pub fn is_draining(&self) -> bool {
        self.inner
            .draining
            .load(std::sync::atomic::Ordering::SeqCst)
    }

    pub fn policies(&self) -> &PolicyStore {
        &self.inner.policies
    }

    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.inner.metrics
    }

    /// Load the policy files again and swap them in atomically; an invalid file leaves the
    /// running policies in place. Requests already running keep the policy they started with
    /// (they hold an `Arc` of it). Counted in `sluice_policy_reloads_total` and logged, with
    /// what asked for it (`rpc`, `watch`).
    pub fn reload_policies(&self, trigger: &str) -> Result<Arc<PolicySet>, PolicyError> {
        let result = self.inner.policies.reload();
        let label = if result.is_ok() { "ok" } else { "error" };
        self.metrics()
            .policy_reloads
            .get_or_create(&crate::metrics::ResultLabel {
                result: label.into(),
            })
            .inc();
        match &result {
            Ok(set) => {
                tracing::info!(trigger, policies = ?set.names(), "policies reloaded");
                warn_missing_keys(set);
            }
            Err(e) => {
                tracing::error!(trigger, error = %e, "policy reload rejected; the running policies stay")
            }
        }
        result
    }

    fn local(&self) -> Result<Arc<dyn LocalModel>, GatewayError> {
        self.inner
            .local
            .get()
            .cloned()
            .ok_or(GatewayError::NotReady)
    }

    /// The policy the request names (its tenant's default, else the set's, when it names
    /// none), refused when the caller's tenant may not use it. A restricted tenant never
    /// learns the names of other tenants' policies, not even whether they exist.
    fn policy(&self, input: &ChatInput) -> Result<Arc<Policy>, GatewayError> {
        let set = self.inner.policies.snapshot();
        if let Some(tenant) = &input.access {
            let default = set.default_policy();
            let name = match input.policy.as_str() {
                "" => default.name.as_str(),
                named => named,
            };
            if !tenant.may_use(name, &default.name) {
                return Err(GatewayError::PolicyDenied {
                    tenant: tenant.name.clone(),
                    policy: name.to_owned(),
                    allowed: tenant.allowed(&default.name).join(", "),
                });
            }
        }
        Ok(set.get(&input.policy)?)
    }

    fn admission(&self) -> &Arc<admission::LocalAdmission> {
        &self.inner.admission
    }

    /// A place on the local model for a request that must stay local, or
    /// RESOURCE_EXHAUSTED once the policy's `local.max_wait` has passed.
    async fn admit_local_only(
        &self,
        policy: &Policy,
    ) -> Result<admission::LocalPermit, GatewayError> {
        match self.admission().admit_for(policy).await {
            Some(permit) => Ok(permit),
            None => Err(self.local_busy(policy)),
        }
    }

    /// The error for a request that must stay local and found the local model full.
    fn local_busy(&self, policy: &Policy) -> GatewayError {
        self.metrics().local_busy("rejected");
        GatewayError::LocalBusy {
            policy: policy.name.clone(),
            max_queue: policy.local.max_queue,
            max_wait: policy.local.max_wait,
        }
    }

    /// The `policy` label for a request's metrics: a loaded policy's name, else `unknown`,
    /// so callers naming made-up policies cannot add series.
    fn policy_label(&self, name: &str) -> String {
        match self.inner.policies.get(name) {
            Ok(p) => p.name.clone(),
            Err(_) => "unknown".to_owned(),
        }
    }
}

/// Check what the wire format cannot: at least one message, text in each, sane parameters,
/// and the request limits.
pub fn validate(input: &ChatInput) -> Result<(), GatewayError> {
    limits::check(input)?;
    if input.messages.is_empty() {
        return Err(GatewayError::invalid(
            "messages",
            "expected at least one message, found none",
        ));
    }
    for (i, m) in input.messages.iter().enumerate() {
        if m.content.trim().is_empty() && m.role == Role::User {
            return Err(GatewayError::invalid(
                format!("messages[{i}].content"),
                "expected text in a user message, found an empty string",
            ));
        }
    }
    let p = &input.params;
    if p.max_tokens == Some(0) {
        return Err(GatewayError::invalid(
            "params.max_tokens",
            "expected 1 or more, found 0",
        ));
    }
    if let Some(t) = p.temperature {
        if !(0.0..=2.0).contains(&t) {
            return Err(GatewayError::invalid(
                "params.temperature",
                format!("expected a value in [0, 2], found {t}"),
            ));
        }
    }
    if let Some(t) = p.top_p {
        if !(t > 0.0 && t <= 1.0) {
            return Err(GatewayError::invalid(
                "params.top_p",
                format!("expected a value in (0, 1], found {t}"),
            ));
        }
    }
    Ok(())
}

/// The local request for an input: the policy caps the length of local answers.
fn local_request(policy: &Policy, input: &ChatInput) -> LocalRequest {
    let cap = policy.local.max_tokens;
    LocalRequest {
        messages: input.messages.clone(),
        max_tokens: input.params.max_tokens.map_or(cap, |m| m.min(cap)),
        temperature: input.params.temperature,
        top_p: input.params.top_p,
        stop: input.params.stop.clone(),
    }
}

fn upstream_request(input: &ChatInput) -> UpstreamRequest {
    UpstreamRequest::new(input.messages.clone(), &input.params)
}

/// How a tier finished its answer.
struct RemoteFinish {
    model: String,
    finish_reason: String,
    usage: sluice_upstream::Usage,
    cost_usd: f64,
}

/// The metadata of an answer from a tier.
fn remote_meta(
    input: &ChatInput,
    decision: DecisionInfo,
    tier: &str,
    done: RemoteFinish,
    timings: Timings,
) -> AnswerMeta {
    AnswerMeta {
        request_id: input.request_id.clone(),
        finish_reason: done.finish_reason,
        route: RouteInfo {
            kind: RouteKind::Remote,
            tier: Some(tier.to_string()),
            model: done.model,
            fallback: false,
        },
        decision,
        usage: UsageInfo {
            prompt_tokens: done.usage.prompt_tokens,
            completion_tokens: done.usage.completion_tokens,
            cost_usd: done.cost_usd,
            cost_avoided_usd: 0.0,
        },
        timings,
    }
}

/// Say which tiers will fail every escalation because their key variable is unset.
pub fn warn_missing_keys(set: &sluice_policy::PolicySet) {
    for (policy, tier, var) in set.missing_api_keys(&|v| std::env::var(v).ok()) {
        tracing::warn!(
            policy,
            tier,
            "tier {tier:?} of policy {policy:?} names api_key_env {var}, which is unset or \
             empty in the server's environment: every escalation to it will fail"
        );
    }
}

/// What escalating a local answer's tokens to the first tier would have cost.
fn cost_avoided(policy: &Policy, prompt_tokens: u64, completion_tokens: u64) -> f64 {
    policy
        .first_tier()
        .map_or(0.0, |t| t.price.cost(prompt_tokens, completion_tokens))
}

fn ms(d: std::time::Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}
