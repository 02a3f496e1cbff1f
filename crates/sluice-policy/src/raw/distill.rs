//! `distill:` of a policy, as written.

use super::*;

/// `distill:` — keep the tier's answers to escalated requests of these tenants as
/// fine-tuning examples for the local model (with `sluice serve --distill-dir`); requests
/// with personal data or secrets are never kept.
#[derive(Debug, Clone, PartialEq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, expecting = "a mapping with tenants")]
pub struct RawDistill {
    /// Tenants whose escalated requests are kept, at least one; `"*"` stands for every
    /// tenant.
    pub tenants: Vec<String>,
}
