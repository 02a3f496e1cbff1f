//! The tenants file: who may call the gateway, by API key, and which policy each
//! tenant gets by default.
//!
//! Keys never appear in the file, only the names of the environment variables that
//! hold them, and never leave this module in errors or `Debug` output.

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::error::PolicyError;
use crate::load::{invalid_error, parse_raw};
use crate::locate;
use crate::raw::RawTenants;
use crate::set::PolicySet;

/// One caller of the gateway.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tenant {
    pub name: String,
    /// The policy for requests that name none; `None` means the policy set's default.
    pub default_policy: Option<String>,
    /// The policies the tenant may use. Empty: only its default (the file gives the
    /// tenant no `policies`; its `policy`, or the policy set's default when it has none).
    pub policies: Vec<String>,
}

impl Tenant {
    /// Whether the tenant may use the policy named `policy` (the name the request
    /// resolves to); `set_default` is the name of the policy set's default.
    pub fn may_use(&self, policy: &str, set_default: &str) -> bool {
        self.allowed(set_default).iter().any(|p| p == policy)
    }

    /// The names the tenant may use, for errors and listings.
    pub fn allowed(&self, set_default: &str) -> Vec<String> {
        match (&self.default_policy, self.policies.is_empty()) {
            (_, false) => self.policies.clone(),
            (Some(own), true) => vec![own.clone()],
            (None, true) => vec![set_default.to_owned()],
        }
    }
}

/// The tenants allowed to call, looked up by API key, and the admins. Cheap to clone.
#[derive(Clone)]
pub struct Tenants {
    by_key: HashMap<String, Arc<Tenant>>,
    /// Admin name by admin key: the only keys the Admin service accepts.
    admins: HashMap<String, Arc<str>>,
    /// The file the tenants came from, and where each policy name is written in it,
    /// for the errors of `check_policies`.
    file: PathBuf,
    policy_refs: Vec<PolicyRef>,
}

/// A policy name a tenant refers to and where it is in the file.
#[derive(Debug, Clone)]
struct PolicyRef {
    policy: String,
    key_path: String,
    line: Option<usize>,
}

impl Tenants {
    /// The tenant whose key is `api_key`, if any.
    pub fn authenticate(&self, api_key: &str) -> Option<Arc<Tenant>> {
        self.by_key.get(api_key).cloned()
    }

    /// The admin whose key is `api_key`, if any. Tenant keys are never admin keys.
    pub fn authenticate_admin(&self, api_key: &str) -> Option<Arc<str>> {
        self.admins.get(api_key).cloned()
    }

    /// Whether the file names any admin.
    pub fn has_admins(&self) -> bool {
        !self.admins.is_empty()
    }

    /// Tenant names, sorted.
    pub fn names(&self) -> Vec<String> {
        let mut names: Vec<String> = self.by_key.values().map(|t| t.name.clone()).collect();
        names.sort();
        names
    }

    pub fn len(&self) -> usize {
        self.by_key.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_key.is_empty()
    }

    /// Fails, naming the key and line, when a policy a tenant names (its `policy` or
    /// one of its `policies`) is not in `policies`; run at startup so the mistake is
    /// not found by a request.
    pub fn check_policies(&self, policies: &PolicySet) -> Result<(), PolicyError> {
        let known = policies.names();
        match self.policy_refs.iter().find(|r| !known.contains(&r.policy)) {
            None => Ok(()),
            Some(r) => Err(PolicyError::Invalid {
                file: self.file.clone(),
                key_path: r.key_path.clone(),
                line: r.line,
                message: format!(
                    "expected a loaded policy ({}), found {:?}",
                    known.join(", "),
                    r.policy
                ),
            }),
        }
    }
}

/// Names and policies only: keys are secrets.
impl fmt::Debug for Tenants {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut tenants: Vec<&Tenant> = self.by_key.values().map(|t| t.as_ref()).collect();
        tenants.sort_by(|a, b| a.name.cmp(&b.name));
        f.debug_struct("Tenants")
            .field("file", &self.file)
            .field("tenants", &tenants)
            .finish_non_exhaustive()
    }
}

/// Reads and validates a tenants file, reading keys from the process environment.
pub fn load_tenants(path: &Path) -> Result<Tenants, PolicyError> {
    let src = std::fs::read_to_string(path).map_err(|source| PolicyError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    parse_tenants(&src, path, &|name| std::env::var(name).ok())
}

/// Parses and validates tenants YAML; `env` supplies the keys and `file` is used in
/// error messages.
pub fn parse_tenants(
    src: &str,
    file: &Path,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Tenants, PolicyError> {
    let raw: RawTenants = parse_raw(src, file, "tenants")?;
    let valid = validate::file(&raw, env).map_err(|invalid| invalid_error(invalid, src, file))?;
    let mut by_key = HashMap::with_capacity(valid.tenants.len());
    for (tenant, key) in valid.tenants {
        by_key.insert(key, Arc::new(tenant));
    }
    let admins = valid
        .admins
        .into_iter()
        .map(|(name, key)| (key, Arc::from(name)))
        .collect();
    let policy_refs = valid
        .policy_refs
        .into_iter()
        .map(|(policy, path)| PolicyRef {
            policy,
            key_path: path.to_string(),
            line: locate::line_of(src, &path),
        })
        .collect();
    Ok(Tenants {
        by_key,
        admins,
        file: file.to_path_buf(),
        policy_refs,
    })
}

mod validate;

#[cfg(test)]
mod tests;
