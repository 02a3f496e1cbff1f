//! The shadow samples' metrics: how many, how they compared, what they cost, and the running
//! agreement of kept-local answers with the tier, with its confidence interval.

use std::sync::atomic::AtomicU64;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct SampleLabels {
    pub policy: String,
    /// Which answer the caller got: local (the tier answered second) or remote (the local
    /// model answered second).
    pub route: String,
    /// yes, no, or unknown (the comparer could not tell).
    pub agree: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct SkipLabels {
    pub policy: String,
    pub route: String,
    /// rate_limit, budget, tier_error, local_busy, yielded or local_error.
    pub reason: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PolicyLabel {
    pub policy: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct AgreementLabels {
    pub policy: String,
    /// estimate, lower or upper (the 95% Wilson interval).
    pub bound: String,
}

/// `sluice_shadow_*`.
#[derive(Debug, Default)]
pub struct ShadowMetrics {
    samples: Family<SampleLabels, Counter>,
    skipped: Family<SkipLabels, Counter>,
    cost: Family<PolicyLabel, Counter<f64, AtomicU64>>,
    agreement: Family<AgreementLabels, Gauge<f64, AtomicU64>>,
    write_errors: Family<PolicyLabel, Counter>,
    distilled: Family<DistillLabels, Counter>,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct DistillLabels {
    pub policy: String,
    /// written, private (personal data or a secret: not kept) or write_error.
    pub result: String,
}

impl ShadowMetrics {
    pub fn register(&self, registry: &mut Registry) {
        registry.register(
            "sluice_shadow_samples",
            "Sampled requests the other side also answered (shadow sampling), by policy, the \
             route the caller got (local: the first tier answered too; remote: the local model \
             answered too) and whether the two answers agree (yes, no, unknown: too long to \
             judge)",
            self.samples.clone(),
        );
        registry.register(
            "sluice_shadow_skipped",
            "Sampled requests not answered by the other side, by policy, route and reason \
             (rate_limit: max_per_minute reached, budget: budget_usd_daily spent, tier_error: \
             the tier call failed, local_busy: the local model was not idle, yielded: a request \
             came for the local model and the sample gave way, local_error: the local model \
             failed)",
            self.skipped.clone(),
        );
        registry.register(
            "sluice_shadow_cost_usd",
            "Money spent on shadow calls, in US dollars at the policy's prices (also in \
             sluice_cost_usd_total of the tier)",
            self.cost.clone(),
        );
        registry.register(
            "sluice_shadow_agreement",
            "Share of judged kept-local shadow samples whose local answer agreed with the \
             tier's, since start, by policy: the estimate and its 95% Wilson interval (bound: \
             estimate, lower, upper)",
            self.agreement.clone(),
        );
        registry.register(
            "sluice_shadow_write_errors",
            "Judged shadow samples that could not be written to --samples-dir, by policy",
            self.write_errors.clone(),
        );
        registry.register(
            "sluice_distill_examples",
            "Escalated answers of opted-in tenants offered as fine-tuning examples (distill:), \
             by policy and result (written; private: personal data or a secret, not kept; \
             write_error)",
            self.distilled.clone(),
        );
    }

    /// One sample answered by both sides: its judgement and cost, and the running agreement
    /// (estimate, lower, upper) when any sample was judged.
    pub fn sample(
        &self,
        policy: &str,
        route: &str,
        agree: &str,
        cost_usd: f64,
        agreement: Option<(f64, f64, f64)>,
    ) {
        self.samples
            .get_or_create(&SampleLabels {
                policy: policy.into(),
                route: route.into(),
                agree: agree.into(),
            })
            .inc();
        self.cost
            .get_or_create(&PolicyLabel {
                policy: policy.into(),
            })
            .inc_by(cost_usd);
        if let Some((estimate, lower, upper)) = agreement {
            for (bound, v) in [("estimate", estimate), ("lower", lower), ("upper", upper)] {
                self.agreement
                    .get_or_create(&AgreementLabels {
                        policy: policy.into(),
                        bound: bound.into(),
                    })
                    .set(v);
            }
        }
    }

    /// One sampled request not shadowed, and why.
    pub fn skipped(&self, policy: &str, route: &str, reason: &str) {
        self.skipped
            .get_or_create(&SkipLabels {
                policy: policy.into(),
                route: route.into(),
                reason: reason.into(),
            })
            .inc();
    }

    /// A distillation example's fate.
    pub fn distilled(&self, policy: &str, result: &str) {
        self.distilled
            .get_or_create(&DistillLabels {
                policy: policy.into(),
                result: result.into(),
            })
            .inc();
    }

    /// A judged sample that could not be written.
    pub fn write_error(&self, policy: &str) {
        self.write_errors
            .get_or_create(&PolicyLabel {
                policy: policy.into(),
            })
            .inc();
    }
}
