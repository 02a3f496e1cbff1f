//! The response and score caches on the request path. Keys always include the tenant, so an
//! answer never crosses tenants; only deterministic requests are answered from the cache
//! unless the policy says `cache: { mode: always }`.

use std::collections::BTreeMap;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use serde::{Deserialize, Serialize};
use sluice_cache::{
    response_key, score_key, CacheKey, LocalCache, Lookup, RedisClient, ResponseKeyInput,
    ScoreKeyInput, TieredCache,
};
use sluice_policy::{CacheMode, Policy};
use sluice_router::Draft;

use super::{AnswerMeta, ChatInput, DecisionInfo, RouteHint, RouteInfo, RouteKind, UsageInfo};

/// An answer as kept in the cache.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(super) struct CachedAnswer {
    pub text: String,
    /// Text pieces as first produced, so a cached answer streams like a fresh one.
    pub pieces: Vec<String>,
    pub finish_reason: String,
    pub remote: bool,
    pub tier: Option<String>,
    pub model: String,
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
    /// What answering it anew would cost: the tier's price, or the avoided price of a local answer.
    pub cost_usd: f64,
    pub confidence: Option<f64>,
}

impl CachedAnswer {
    pub fn from_meta(text: &str, pieces: Vec<String>, meta: &AnswerMeta) -> Self {
        Self {
            text: text.to_string(),
            pieces,
            finish_reason: meta.finish_reason.clone(),
            remote: meta.route.kind == RouteKind::Remote,
            tier: meta.route.tier.clone(),
            model: meta.route.model.clone(),
            prompt_tokens: meta.usage.prompt_tokens,
            completion_tokens: meta.usage.completion_tokens,
            cost_usd: meta.usage.cost_usd + meta.usage.cost_avoided_usd,
            confidence: meta.decision.confidence,
        }
    }

    /// The metadata of a cache hit: route CACHE, nothing spent, the original cost avoided.
    pub fn meta(&self, policy: &Policy, input: &ChatInput) -> AnswerMeta {
        AnswerMeta {
            request_id: input.request_id.clone(),
            finish_reason: self.finish_reason.clone(),
            route: RouteInfo {
                kind: RouteKind::Cache,
                tier: self.tier.clone(),
                model: self.model.clone(),
                fallback: false,
            },
            decision: DecisionInfo {
                confidence: self.confidence,
                threshold: policy.scoring.threshold,
                method: None,
                reason: "cache_hit",
                features: Vec::new(),
                policy: policy.name.clone(),
                rule: None,
            },
            usage: UsageInfo {
                prompt_tokens: self.prompt_tokens,
                completion_tokens: self.completion_tokens,
                cost_usd: 0.0,
                cost_avoided_usd: self.cost_usd,
            },
            timings: Default::default(),
        }
    }
}

/// One cache per policy (each has its own size), sharing one optional Redis tier.
#[derive(Debug)]
pub struct Caches {
    redis: Option<RedisClient>,
    by_policy: Mutex<HashMap<(String, u64), Arc<TieredCache>>>,
    /// Redis errors of caches dropped when their policy was reloaded, so the total never falls.
    retired_errors: AtomicU64,
}

/// Outcome of a lookup, for metrics.
pub(super) enum Probe {
    Hit(CachedAnswer, &'static str),
    Miss,
    /// Not looked up: the request is not cacheable or said no-cache.
    Bypass,
}

impl Caches {
    pub fn new(redis: Option<RedisClient>) -> Self {
        Self {
            redis,
            by_policy: Mutex::new(HashMap::new()),
            retired_errors: AtomicU64::new(0),
        }
    }

    /// The shared tier's client, when there is one (the spend ledger uses it too).
    pub fn redis(&self) -> Option<&RedisClient> {
        self.redis.as_ref()
    }

    /// Total Redis errors so far, over every policy's cache.
    pub fn remote_errors(&self) -> u64 {
        let live: u64 = self.lock().values().map(|c| c.remote_errors()).sum();
        live + self.retired_errors.load(Ordering::Relaxed)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<(String, u64), Arc<TieredCache>>> {
        match self.by_policy.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        }
    }

    /// The cache of this version of the policy; a reloaded policy gets a fresh one.
    fn for_policy(&self, policy: &Policy) -> Arc<TieredCache> {
        let mut map = self.lock();
        let key = (policy.name.clone(), policy.fingerprint);
        if let Some(c) = map.get(&key) {
            return c.clone();
        }
        map.retain(|(name, _), old| {
            let keep = name != &policy.name;
            if !keep {
                self.retired_errors
                    .fetch_add(old.remote_errors(), Ordering::Relaxed);
            }
            keep
        });
        let c = Arc::new(TieredCache::new(
            LocalCache::new(policy.cache.max_bytes),
            self.redis.clone(),
        ));
        map.insert(key, c.clone());
        c
    }

    /// Whether an answer to this request would be kept: callers skip preparing one otherwise.
    pub(super) fn will_store(policy: &Policy, input: &ChatInput) -> bool {
        !input.cache.no_store && Self::cacheable(policy, input)
    }

    fn cacheable(policy: &Policy, input: &ChatInput) -> bool {
        match policy.cache.mode {
            CacheMode::Off => false,
            CacheMode::Always => true,
            CacheMode::Deterministic => input.params.temperature == Some(0.0),
        }
    }

    fn response_key(policy: &Policy, input: &ChatInput, local_model: &str) -> CacheKey {
        let hint = match input.hint {
            RouteHint::Auto => "auto",
            RouteHint::Local => "local",
            RouteHint::Remote => "remote",
        };
        // Tags matter only when a rule of the policy matches on them.
        let no_tags = BTreeMap::new();
        let tags = if policy.rules.iter().any(|r| !r.when.tags.is_empty()) {
            &input.tags
        } else {
            &no_tags
        };
        response_key(&ResponseKeyInput {
            tenant: &input.tenant,
            policy: &policy.name,
            policy_fingerprint: policy.fingerprint,
            local_model,
            hint,
            messages: &input.messages,
            params: &input.params,
            tags,
        })
    }

    pub(super) async fn lookup(
        &self,
        policy: &Policy,
        input: &ChatInput,
        local_model: &str,
    ) -> Probe {
        if input.cache.no_cache || !Self::cacheable(policy, input) {
            return Probe::Bypass;
        }
        let key = Self::response_key(policy, input, local_model);
        let found = self.for_policy(policy).get(&key, policy.cache.ttl).await;
        let (bytes, where_) = match found {
            Lookup::HitLocal(b) => (b, "hit_local"),
            Lookup::HitRemote(b) => (b, "hit_remote"),
            Lookup::Miss => return Probe::Miss,
        };
        match serde_json::from_slice::<CachedAnswer>(&bytes) {
            Ok(a) => Probe::Hit(a, where_),
            Err(e) => {
                tracing::warn!(error = %e, "dropping an unreadable cache entry");
                Probe::Miss
            }
        }
    }

    pub(super) async fn store(
        &self,
        policy: &Policy,
        input: &ChatInput,
        local_model: &str,
        answer: &CachedAnswer,
    ) {
        if !Self::will_store(policy, input) {
            return;
        }
        let Ok(bytes) = serde_json::to_vec(answer) else {
            return;
        };
        let key = Self::response_key(policy, input, local_model);
        self.for_policy(policy)
            .insert(key, Bytes::from(bytes), policy.cache.ttl)
            .await;
    }

    fn score_key(
        policy: &Policy,
        input: &ChatInput,
        local_model: &str,
        max_tokens: u32,
    ) -> CacheKey {
        score_key(&ScoreKeyInput {
            tenant: &input.tenant,
            policy: &policy.name,
            policy_fingerprint: policy.fingerprint,
            local_model,
            messages: &input.messages,
            max_tokens,
        })
    }

    /// A greedy draft of the same prompt, made before for this tenant and policy.
    pub(super) async fn draft(
        &self,
        policy: &Policy,
        input: &ChatInput,
        local_model: &str,
        max_tokens: u32,
    ) -> Option<Draft> {
        if policy.cache.mode == CacheMode::Off || input.cache.no_cache {
            return None;
        }
        let key = Self::score_key(policy, input, local_model, max_tokens);
        match self.for_policy(policy).get(&key, policy.cache.ttl).await {
            Lookup::HitLocal(b) | Lookup::HitRemote(b) => serde_json::from_slice(&b).ok(),
            Lookup::Miss => None,
        }
    }

    pub(super) async fn store_draft(
        &self,
        policy: &Policy,
        input: &ChatInput,
        local_model: &str,
        max_tokens: u32,
        draft: &Draft,
    ) {
        if policy.cache.mode == CacheMode::Off || input.cache.no_store {
            return;
        }
        let Ok(bytes) = serde_json::to_vec(draft) else {
            return;
        };
        let key = Self::score_key(policy, input, local_model, max_tokens);
        self.for_policy(policy)
            .insert(key, Bytes::from(bytes), policy.cache.ttl)
            .await;
    }
}
