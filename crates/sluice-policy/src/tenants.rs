//! The tenants file: who may call the gateway, by API key, and which policy each
//! tenant gets by default.
//!
//! Keys never appear in the file, only the names of the environment variables that
//! hold them, and never leave this module in errors or `Debug` output.

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::env::{self, EnvLookup};
use crate::error::PolicyError;
use crate::load::{invalid_error, parse_raw};
use crate::locate::{self, KeyPath};
use crate::raw::{RawTenant, RawTenants};
use crate::set::PolicySet;
use crate::validate::{values, At, Invalid, VERSION};

/// One caller of the gateway.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tenant {
    pub name: String,
    /// The policy for requests that name none; `None` means the policy set's default.
    pub default_policy: Option<String>,
}

/// The tenants allowed to call, looked up by API key. Cheap to clone.
#[derive(Clone)]
pub struct Tenants {
    by_key: HashMap<String, Arc<Tenant>>,
    /// The file the tenants came from, and where each `policy:` is written in it,
    /// for the errors of `check_policies`.
    file: PathBuf,
    policy_refs: Vec<PolicyRef>,
}

/// A tenant's `policy:` value and where it is in the file.
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

    /// Fails, naming the tenant's `policy` key and line, when a tenant's default
    /// policy is not in `policies`; run at startup so the mistake is not found by a
    /// request.
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
    let valid = validate(&raw, env).map_err(|invalid| invalid_error(invalid, src, file))?;
    let mut by_key = HashMap::with_capacity(valid.len());
    let mut policy_refs = Vec::new();
    for (tenant, key, policy_path) in valid {
        if let (Some(policy), Some(path)) = (&tenant.default_policy, policy_path) {
            policy_refs.push(PolicyRef {
                policy: policy.clone(),
                key_path: path.to_string(),
                line: locate::line_of(src, &path),
            });
        }
        by_key.insert(key, Arc::new(tenant));
    }
    Ok(Tenants {
        by_key,
        file: file.to_path_buf(),
        policy_refs,
    })
}

/// A valid tenant, its key, and the key path of its `policy` (when given).
type Valid = (Tenant, String, Option<KeyPath>);

fn validate(raw: &RawTenants, env: EnvLookup<'_>) -> Result<Vec<Valid>, Invalid> {
    let root = KeyPath::default();
    if raw.version.0 != VERSION {
        return Err(format!(
            "expected version {VERSION}, found {}",
            raw.version.0
        ))
        .at(&root.key("version"));
    }
    let list_path = root.key("tenants");
    let list = match raw.tenants.as_deref() {
        None | Some([]) => {
            return Err("expected at least one tenant, found none".to_owned()).at(&list_path)
        }
        Some(list) => list,
    };
    let mut out: Vec<Valid> = Vec::with_capacity(list.len());
    for (i, raw_tenant) in list.iter().enumerate() {
        let path = list_path.index(i);
        let valid = tenant(raw_tenant, &path, env)?;
        let (tenant, key, _) = &valid;
        if let Some(first) = out.iter().position(|(t, _, _)| t.name == tenant.name) {
            return Err(format!(
                "expected unique tenant names, found {:?} again (first at {})",
                tenant.name,
                list_path.index(first).key("name")
            ))
            .at(&path.key("name"));
        }
        if let Some(first) = out.iter().position(|(_, k, _)| k == key) {
            return Err(format!(
                "expected a different API key for each tenant, found the key of tenant {:?} \
                 (in {}) also in {} for tenant {:?}",
                out[first].0.name, list[first].api_key_env, raw_tenant.api_key_env, tenant.name
            ))
            .at(&path.key("api_key_env"));
        }
        out.push(valid);
    }
    Ok(out)
}

fn tenant(raw: &RawTenant, path: &KeyPath, env: EnvLookup<'_>) -> Result<Valid, Invalid> {
    values::check_name(&raw.name).at(&path.key("name"))?;
    let key = api_key(raw, env).at(&path.key("api_key_env"))?;
    let policy_path = match &raw.policy {
        None => None,
        Some(policy) => {
            let policy_path = path.key("policy");
            values::check_name(policy).at(&policy_path)?;
            Some(policy_path)
        }
    };
    let tenant = Tenant {
        name: raw.name.clone(),
        default_policy: raw.policy.clone(),
    };
    Ok((tenant, key, policy_path))
}

/// The tenant's key from its variable. Messages name the variable and the tenant,
/// never the value.
fn api_key(raw: &RawTenant, env: EnvLookup<'_>) -> Result<String, String> {
    let var = &raw.api_key_env;
    if !env::is_env_name(var) {
        return Err(format!(
            "expected an environment variable name ([A-Za-z_][A-Za-z0-9_]*), found {var:?}"
        ));
    }
    let expected = format!(
        "expected environment variable {var} to hold the API key of tenant {:?}",
        raw.name
    );
    match env(var) {
        None => Err(format!("{expected}, found it unset")),
        Some(key) if key.trim().is_empty() => Err(format!("{expected}, found it empty")),
        // Surrounding whitespace is almost always a copy-paste slip that would make
        // every request fail to authenticate.
        Some(key) if key.trim() != key => Err(format!(
            "{expected} without leading or trailing whitespace, found whitespace around it"
        )),
        Some(key) => Ok(key),
    }
}

#[cfg(test)]
mod tests;
