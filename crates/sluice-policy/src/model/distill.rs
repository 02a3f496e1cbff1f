//! Distillation data: the tier's answers to escalated requests of opted-in tenants, kept as
//! fine-tuning examples for the local model.

/// Which tenants' escalated requests are kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Distill {
    /// Tenant names; `"*"` stands for every tenant.
    pub tenants: Vec<String>,
}

impl Distill {
    pub const EVERY_TENANT: &'static str = "*";

    /// Whether `tenant` opted in.
    pub fn covers(&self, tenant: &str) -> bool {
        self.tenants
            .iter()
            .any(|t| t == tenant || t == Self::EVERY_TENANT)
    }
}
