//! The Prometheus registry of the gateway: one instance, passed down, never global.

mod gen_ai;
mod shadow;

use std::sync::atomic::{AtomicI64, AtomicU64};

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

use crate::gateway::types::{AnswerMeta, RouteKind};

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    /// local, remote, cache, or error.
    pub route: String,
    /// Tier name for remote answers, empty otherwise.
    pub tier: String,
    pub policy: String,
    /// Decision reason, or the error kind for route="error".
    pub reason: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RouteLabel {
    pub route: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct StageLabel {
    pub stage: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TokenLabels {
    /// Tier name, or "local".
    pub tier: String,
    /// input or output.
    pub direction: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TierLabel {
    pub tier: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct UpstreamLabels {
    pub tier: String,
    /// ok, or the error class: timeout, connect, status_5xx, status_4xx, decode, config.
    pub status: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RuleLabels {
    pub policy: String,
    pub rule: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct BudgetLabels {
    pub policy: String,
    /// daily or monthly.
    pub cap: String,
    /// What the policy did: local or reject.
    pub action: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ActionLabel {
    /// escalated or rejected.
    pub action: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ResultLabel {
    pub result: String,
}

fn latency_histogram() -> Histogram {
    // 1 ms .. ~65 s
    Histogram::new(exponential_buckets(0.001, 2.0, 17))
}

/// Every metric Sluice exports.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    pub requests: Family<RequestLabels, Counter>,
    pub request_duration: Family<RouteLabel, Histogram>,
    pub stage_duration: Family<StageLabel, Histogram>,
    pub confidence: Histogram,
    pub tokens: Family<TokenLabels, Counter>,
    pub cost: Family<TierLabel, Counter<f64, AtomicU64>>,
    pub cost_avoided: Counter<f64, AtomicU64>,
    pub upstream_requests: Family<UpstreamLabels, Counter>,
    pub slm_inflight: Gauge<i64, AtomicI64>,
    pub policy_reloads: Family<ResultLabel, Counter>,
    pub cache_lookups: Family<ResultLabel, Counter>,
    pub cache_remote_errors: Counter,
    pub rule_matches: Family<RuleLabels, Counter>,
    pub budget_exhausted: Family<BudgetLabels, Counter>,
    pub local_queue: Gauge<i64, AtomicI64>,
    pub local_busy: Family<ActionLabel, Counter>,
    pub gen_ai: gen_ai::GenAiMetrics,
    pub shadow: shadow::ShadowMetrics,
    pub ledger: crate::budget::LedgerHealth,
    /// Redis errors already counted, so each scrape adds only the new ones.
    cache_remote_errors_seen: AtomicU64,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        let mut registry = Registry::default();
        let requests = Family::<RequestLabels, Counter>::default();
        let request_duration =
            Family::<RouteLabel, Histogram>::new_with_constructor(latency_histogram as fn() -> _);
        let stage_duration =
            Family::<StageLabel, Histogram>::new_with_constructor(latency_histogram as fn() -> _);
        let confidence = Histogram::new((1..=10).map(|i| f64::from(i) / 10.0));
        let tokens = Family::<TokenLabels, Counter>::default();
        let cost = Family::<TierLabel, Counter<f64, AtomicU64>>::default();
        let cost_avoided = Counter::<f64, AtomicU64>::default();
        let upstream_requests = Family::<UpstreamLabels, Counter>::default();
        let slm_inflight = Gauge::<i64, AtomicI64>::default();
        let policy_reloads = Family::<ResultLabel, Counter>::default();
        let cache_lookups = Family::<ResultLabel, Counter>::default();
        let cache_remote_errors = Counter::default();
        let rule_matches = Family::<RuleLabels, Counter>::default();
        let budget_exhausted = Family::<BudgetLabels, Counter>::default();
        let local_queue = Gauge::<i64, AtomicI64>::default();
        let local_busy = Family::<ActionLabel, Counter>::default();
        registry.register(
            "sluice_requests",
            "Requests answered or failed, by route (local, remote, cache, error), tier, policy and reason",
            requests.clone(),
        );
        registry.register(
            "sluice_request_duration_seconds",
            "Time from request to last byte of the answer, by route",
            request_duration.clone(),
        );
        registry.register(
            "sluice_stage_duration_seconds",
            "Time spent per stage of the request path: score, upstream, local",
            stage_duration.clone(),
        );
        registry.register(
            "sluice_confidence",
            "Confidence of scored requests that the local answer is good enough",
            confidence.clone(),
        );
        registry.register(
            "sluice_tokens",
            "Tokens processed, by tier (or local) and direction (input, output)",
            tokens.clone(),
        );
        registry.register(
            "sluice_cost_usd",
            "Money spent on tiers, in US dollars at the policy's prices",
            cost.clone(),
        );
        registry.register(
            "sluice_cost_avoided_usd",
            "Money not spent because the local model answered, priced at the first tier",
            cost_avoided.clone(),
        );
        registry.register(
            "sluice_upstream_requests",
            "Calls to tiers, by tier and outcome",
            upstream_requests.clone(),
        );
        registry.register(
            "sluice_slm_inflight",
            "Requests running on the local model right now",
            slm_inflight.clone(),
        );
        registry.register(
            "sluice_policy_reloads",
            "Policy reloads by result (ok, error)",
            policy_reloads.clone(),
        );
        registry.register(
            "sluice_cache_lookups",
            "Response cache lookups by result: hit_local, hit_remote (shared Redis tier), miss, \
             bypass (not cacheable or no-cache), score_hit (a draft reused for scoring)",
            cache_lookups.clone(),
        );
        registry.register(
            "sluice_cache_remote_errors",
            "Errors talking to the shared Redis cache tier; the gateway kept serving from memory",
            cache_remote_errors.clone(),
        );
        registry.register(
            "sluice_rule_matches",
            "Requests decided by a policy rule (the first that matched), by policy and rule",
            rule_matches.clone(),
        );
        registry.register(
            "sluice_budget_exhausted",
            "Escalations refused because a tenant's budget cap was reached, by policy, cap \
             (daily, monthly) and action (local, reject)",
            budget_exhausted.clone(),
        );
        registry.register(
            "sluice_local_queue",
            "Requests admitted to the local model right now (running or waiting in its batch); \
             at most the policy's local.max_queue",
            local_queue.clone(),
        );
        registry.register(
            "sluice_local_busy",
            "Requests turned away by a full local model, by action (escalated: sent to the \
             tiers; rejected: RESOURCE_EXHAUSTED)",
            local_busy.clone(),
        );
        let gen_ai = gen_ai::GenAiMetrics::default();
        gen_ai.register(&mut registry);
        let shadow = shadow::ShadowMetrics::default();
        shadow.register(&mut registry);
        let ledger = crate::budget::LedgerHealth::default();
        registry.register(
            "sluice_budget_ledger_degraded",
            "1 while the spend ledger shared in Redis cannot be reached (each replica then \
             enforces budgets from the last shared totals plus its own spend, and adds what it \
             charged once Redis is back); 0 otherwise or without Redis",
            ledger.degraded.clone(),
        );
        registry.register(
            "sluice_budget_ledger_errors",
            "Operations on the shared spend ledger in Redis that failed or timed out",
            ledger.errors.clone(),
        );
        Self {
            registry,
            requests,
            request_duration,
            stage_duration,
            confidence,
            tokens,
            cost,
            cost_avoided,
            upstream_requests,
            slm_inflight,
            policy_reloads,
            cache_lookups,
            cache_remote_errors,
            rule_matches,
            budget_exhausted,
            local_queue,
            local_busy,
            gen_ai,
            shadow,
            ledger,
            cache_remote_errors_seen: AtomicU64::new(0),
        }
    }

    /// Count one cache lookup.
    pub fn cache_lookup(&self, result: &str) {
        self.cache_lookups
            .get_or_create(&ResultLabel {
                result: result.into(),
            })
            .inc();
    }

    /// Bring `sluice_cache_remote_errors_total` up to the caches' running total.
    pub fn sync_cache_remote_errors(&self, total: u64) {
        let seen = self
            .cache_remote_errors_seen
            .fetch_max(total, std::sync::atomic::Ordering::Relaxed);
        if total > seen {
            self.cache_remote_errors.inc_by(total - seen);
        }
    }

    /// Prometheus text exposition (OpenMetrics).
    pub fn encode(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }

    /// Count one finished answer.
    pub fn answered(&self, meta: &AnswerMeta) {
        let route = meta.route.kind.as_str().to_string();
        let tier = meta.route.tier.clone().unwrap_or_default();
        self.requests
            .get_or_create(&RequestLabels {
                route: route.clone(),
                tier: tier.clone(),
                policy: meta.decision.policy.clone(),
                reason: meta.decision.reason.to_string(),
            })
            .inc();
        self.request_duration
            .get_or_create(&RouteLabel { route })
            .observe(meta.timings.total_ms / 1000.0);
        for (stage, v) in [
            ("score", meta.timings.score_ms),
            ("upstream", meta.timings.upstream_ms),
            ("local", meta.timings.local_ms),
        ] {
            if v > 0.0 {
                self.stage_duration
                    .get_or_create(&StageLabel {
                        stage: stage.into(),
                    })
                    .observe(v / 1000.0);
            }
        }
        if let Some(c) = meta.decision.confidence {
            self.confidence.observe(c);
        }
        let token_tier = match meta.route.kind {
            RouteKind::Remote => tier.clone(),
            _ => "local".to_string(),
        };
        for (direction, n) in [
            ("input", meta.usage.prompt_tokens),
            ("output", meta.usage.completion_tokens),
        ] {
            self.tokens
                .get_or_create(&TokenLabels {
                    tier: token_tier.clone(),
                    direction: direction.into(),
                })
                .inc_by(n);
        }
        if meta.route.kind == RouteKind::Remote {
            self.cost
                .get_or_create(&TierLabel { tier })
                .inc_by(meta.usage.cost_usd);
        }
        self.cost_avoided.inc_by(meta.usage.cost_avoided_usd);
    }

    /// Money spent on a tier outside a finished answer's accounting: a streamed escalation
    /// that ended before the tier reported usage, or a shadow call.
    pub fn tier_cost(&self, tier: &str, cost_usd: f64) {
        self.cost
            .get_or_create(&TierLabel { tier: tier.into() })
            .inc_by(cost_usd);
    }

    /// Tokens and money of a tier call that is not a request's answer (a shadow call).
    pub fn tier_spend(&self, tier: &str, cost_usd: f64, (input, output): (u64, u64)) {
        for (direction, n) in [("input", input), ("output", output)] {
            self.tokens
                .get_or_create(&TokenLabels {
                    tier: tier.into(),
                    direction: direction.into(),
                })
                .inc_by(n);
        }
        self.tier_cost(tier, cost_usd);
    }

    /// Count one failed request.
    pub fn failed(&self, policy: &str, kind: &str, elapsed_ms: f64) {
        self.requests
            .get_or_create(&RequestLabels {
                route: "error".into(),
                tier: String::new(),
                policy: policy.into(),
                reason: kind.into(),
            })
            .inc();
        self.request_duration
            .get_or_create(&RouteLabel {
                route: "error".into(),
            })
            .observe(elapsed_ms / 1000.0);
    }

    /// Count one request decided by a rule.
    pub fn rule_match(&self, policy: &str, rule: &str) {
        self.rule_matches
            .get_or_create(&RuleLabels {
                policy: policy.into(),
                rule: rule.into(),
            })
            .inc();
    }

    /// Count one escalation refused by a budget cap.
    pub fn budget_refusal(&self, policy: &str, cap: &str, action: &str) {
        self.budget_exhausted
            .get_or_create(&BudgetLabels {
                policy: policy.into(),
                cap: cap.into(),
                action: action.into(),
            })
            .inc();
    }

    /// One call to `tier`'s model that began at `started`, in the GenAI conventions' terms: its
    /// duration, its error class if it failed, and its (input, output) tokens when the tier
    /// reported them.
    pub fn gen_ai_call(
        &self,
        tier: &sluice_policy::Tier,
        started: std::time::Instant,
        error: Option<&str>,
        tokens: Option<(u64, u64)>,
    ) {
        self.gen_ai.call(tier, started, error, tokens);
    }

    /// Count one call to a tier.
    pub fn upstream_call(&self, tier: &str, status: &str) {
        self.upstream_requests
            .get_or_create(&UpstreamLabels {
                tier: tier.into(),
                status: status.into(),
            })
            .inc();
    }

    /// Mark a request as running on the local model until the guard drops.
    /// Count a request a full local model turned away.
    pub fn local_busy(&self, action: &str) {
        self.local_busy
            .get_or_create(&ActionLabel {
                action: action.into(),
            })
            .inc();
    }

    pub fn slm_guard(&self) -> InflightGuard<'_> {
        self.slm_inflight.inc();
        InflightGuard(&self.slm_inflight)
    }
}

/// Decrements `sluice_slm_inflight` when dropped.
#[derive(Debug)]
pub struct InflightGuard<'a>(&'a Gauge<i64, AtomicI64>);

impl Drop for InflightGuard<'_> {
    fn drop(&mut self) {
        self.0.dec();
    }
}

/// The Prometheus text format 0.0.4 of an OpenMetrics exposition: a counter family's `HELP`
/// and `TYPE` lines name its `_total` samples (OpenMetrics names the family without the
/// suffix, which 0.0.4 parsers such as promtool read as a metric with no help text), and
/// the `# EOF` and `# UNIT` lines go.
pub fn prometheus_text(openmetrics: &str) -> String {
    let mut out = String::with_capacity(openmetrics.len());
    let mut help: Option<&str> = None;
    for line in openmetrics.lines() {
        if line == "# EOF" || line.starts_with("# UNIT ") {
            continue;
        }
        if let Some(rest) = line.strip_prefix("# HELP ") {
            // Held until the TYPE line says whether the family is a counter.
            if let Some(h) = help.replace(rest) {
                out.push_str("# HELP ");
                out.push_str(h);
                out.push('\n');
            }
            continue;
        }
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').unwrap_or((rest, ""));
            let name = if kind == "counter" && !name.ends_with("_total") {
                format!("{name}_total")
            } else {
                name.to_owned()
            };
            if let Some(h) = help.take() {
                let text = h.split_once(' ').map_or("", |(_, t)| t);
                out.push_str(&format!("# HELP {name} {text}\n"));
            }
            out.push_str(&format!("# TYPE {name} {kind}\n"));
            continue;
        }
        if let Some(h) = help.take() {
            out.push_str("# HELP ");
            out.push_str(h);
            out.push('\n');
        }
        out.push_str(line);
        out.push('\n');
    }
    if let Some(h) = help {
        out.push_str("# HELP ");
        out.push_str(h);
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod text_tests {
    use super::*;

    #[test]
    fn counters_are_named_by_their_samples_and_eof_goes() {
        let om = "# HELP sluice_requests Requests.\n# TYPE sluice_requests counter\n\
                  sluice_requests_total{route=\"local\"} 1\n\
                  # HELP sluice_slm_inflight Now.\n# TYPE sluice_slm_inflight gauge\n\
                  sluice_slm_inflight 0\n# EOF\n";
        assert_eq!(
            prometheus_text(om),
            "# HELP sluice_requests_total Requests.\n# TYPE sluice_requests_total counter\n\
             sluice_requests_total{route=\"local\"} 1\n\
             # HELP sluice_slm_inflight Now.\n# TYPE sluice_slm_inflight gauge\n\
             sluice_slm_inflight 0\n"
        );
    }

    #[test]
    fn every_family_of_a_real_exposition_keeps_its_samples() {
        let m = Metrics::new();
        m.cache_lookup("miss");
        m.local_busy("escalated");
        let om = m.encode();
        let text = prometheus_text(&om);
        let samples = |t: &str| -> Vec<String> {
            t.lines()
                .filter(|l| !l.starts_with('#'))
                .map(str::to_owned)
                .collect()
        };
        assert_eq!(samples(&om), samples(&text));
        assert!(
            text.contains("# TYPE sluice_cache_lookups_total counter"),
            "{text}"
        );
        assert!(!text.contains("# EOF"));
    }
}
