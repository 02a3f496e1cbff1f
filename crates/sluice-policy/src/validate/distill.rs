//! `distill:` — which tenants' escalated requests become fine-tuning examples.

use super::{At, Invalid};
use crate::locate::KeyPath;
use crate::model::Distill;
use crate::raw::RawDistill;

pub(super) fn distill(raw: &RawDistill, path: &KeyPath) -> Result<Distill, Invalid> {
    let tenants = path.key("tenants");
    if raw.tenants.is_empty() {
        return Err(
            "expected at least one tenant (or \"*\" for every tenant), found none".to_owned(),
        )
        .at(&tenants);
    }
    for (i, t) in raw.tenants.iter().enumerate() {
        if t.trim().is_empty() {
            return Err("expected a tenant name, found an empty one".to_owned())
                .at(&tenants.index(i));
        }
        if raw.tenants[..i].contains(t) {
            return Err(format!("tenant {t:?} is named twice")).at(&tenants.index(i));
        }
    }
    Ok(Distill {
        tenants: raw.tenants.clone(),
    })
}
