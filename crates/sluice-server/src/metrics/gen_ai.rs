//! The OpenTelemetry GenAI semantic conventions' client metrics for every call to a tier's
//! model: `gen_ai_client_operation_duration_seconds` and `gen_ai_client_token_usage`.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

/// The OpenTelemetry GenAI semantic conventions' attributes of one call to a tier's model,
/// as Prometheus labels. Every value comes from the policy (provider, configured model) or a
/// fixed set (error classes), so the series are bounded.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct GenAiLabels {
    pub gen_ai_operation_name: String,
    pub gen_ai_provider_name: String,
    pub gen_ai_request_model: String,
    /// Empty on success, else the error class (as `sluice_upstream_requests_total`'s status).
    pub error_type: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct GenAiTokenLabels {
    pub gen_ai_operation_name: String,
    pub gen_ai_provider_name: String,
    pub gen_ai_request_model: String,
    /// input or output.
    pub gen_ai_token_type: String,
}

fn gen_ai_duration_histogram() -> Histogram {
    // The semantic conventions' advised boundaries, in seconds.
    Histogram::new([
        0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24, 20.48, 40.96, 81.92,
    ])
}

fn gen_ai_token_histogram() -> Histogram {
    // The semantic conventions' advised boundaries: powers of 4 from 1 to 4^13.
    Histogram::new(exponential_buckets(1.0, 4.0, 14))
}

type Constructor = fn() -> Histogram;

/// `gen_ai_client_*`.
#[derive(Debug)]
pub struct GenAiMetrics {
    duration: Family<GenAiLabels, Histogram, Constructor>,
    tokens: Family<GenAiTokenLabels, Histogram, Constructor>,
}

impl Default for GenAiMetrics {
    fn default() -> Self {
        Self {
            duration: Family::new_with_constructor(gen_ai_duration_histogram),
            tokens: Family::new_with_constructor(gen_ai_token_histogram),
        }
    }
}

impl GenAiMetrics {
    pub fn register(&self, registry: &mut Registry) {
        registry.register(
            "gen_ai_client_operation_duration_seconds",
            "GenAI operation duration (OpenTelemetry semantic conventions): each call to a tier's \
             model, by operation, provider, requested model and error type",
            self.duration.clone(),
        );
        registry.register(
            "gen_ai_client_token_usage",
            "Tokens per GenAI operation (OpenTelemetry semantic conventions): each tier call's \
             input and output tokens, by operation, provider, requested model and token type",
            self.tokens.clone(),
        );
    }

    /// One call to `tier`'s model that began at `started`, in the GenAI conventions' terms: its
    /// duration, its error class if it failed, and its (input, output) tokens when the tier
    /// reported them.
    pub fn call(
        &self,
        tier: &sluice_policy::Tier,
        started: std::time::Instant,
        error: Option<&str>,
        tokens: Option<(u64, u64)>,
    ) {
        let (provider, model) = (tier.provider.as_str(), tier.model.as_str());
        let seconds = started.elapsed().as_secs_f64();
        let op = "chat".to_owned();
        self.duration
            .get_or_create(&GenAiLabels {
                gen_ai_operation_name: op.clone(),
                gen_ai_provider_name: provider.into(),
                gen_ai_request_model: model.into(),
                error_type: error.unwrap_or_default().into(),
            })
            .observe(seconds);
        if let Some((input, output)) = tokens {
            for (kind, n) in [("input", input), ("output", output)] {
                self.tokens
                    .get_or_create(&GenAiTokenLabels {
                        gen_ai_operation_name: op.clone(),
                        gen_ai_provider_name: provider.into(),
                        gen_ai_request_model: model.into(),
                        gen_ai_token_type: kind.into(),
                    })
                    .observe(n as f64);
            }
        }
    }
}
