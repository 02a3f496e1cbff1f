//! A loaded set of named policies with a default, from one file or a directory.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::env::EnvLookup;
use crate::error::PolicyError;
use crate::load::load_policy_file_with_env;
use crate::model::Policy;

/// Name of the policy a directory must contain, used when a request names none.
pub const DEFAULT_POLICY_NAME: &str = "default";

/// All policies the gateway can route with, by name, plus the default one.
/// Cheap to clone: policies are shared.
#[derive(Debug, Clone)]
pub struct PolicySet {
    policies: BTreeMap<String, Arc<Policy>>,
    default: Arc<Policy>,
}

impl PolicySet {
    /// Loads a policy file (which becomes the default) or every `*.yaml` /
    /// `*.yml` file directly in a directory (the default is the policy named
    /// `default`). Any bad file fails the whole load. `${VAR}` references are
    /// resolved from the process environment.
    pub fn load(path: &Path) -> Result<PolicySet, PolicyError> {
        Self::load_with_env(path, &|name| std::env::var(name).ok())
    }

    /// `load` with an explicit environment lookup for `${VAR}` references.
    pub fn load_with_env(
        path: &Path,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<PolicySet, PolicyError> {
        let meta = std::fs::metadata(path).map_err(|source| PolicyError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        if meta.is_dir() {
            Self::load_dir(path, env)
        } else {
            Ok(Self::from_policy(load_policy_file_with_env(path, env)?))
        }
    }

    /// A set holding just `policy`, which is the default.
    pub fn from_policy(policy: Policy) -> PolicySet {
        let default = Arc::new(policy);
        let policies = BTreeMap::from([(default.name.clone(), default.clone())]);
        PolicySet { policies, default }
    }

    /// The policy called `name`; `""` means the default.
    pub fn get(&self, name: &str) -> Result<Arc<Policy>, PolicyError> {
        if name.is_empty() {
            return Ok(self.default.clone());
        }
        self.policies
            .get(name)
            .cloned()
            .ok_or_else(|| PolicyError::UnknownPolicy {
                name: name.to_owned(),
                known: self.names(),
            })
    }

    /// The policy used when a request names none.
    pub fn default_policy(&self) -> Arc<Policy> {
        self.default.clone()
    }

    /// Refuses the set when any policy's probe was fitted on another model than the served
    /// one (`Policy::check_model`).
    pub fn check_model(&self, model_sha256: &str) -> Result<(), PolicyError> {
        self.policies
            .values()
            .try_for_each(|p| p.check_model(model_sha256))
    }

    /// Every tier whose `api_key_env` names a variable `env` has unset or empty, as
    /// (policy, tier, variable): each of them fails every escalation at call time, so the
    /// server says so when the policies load.
    pub fn missing_api_keys(&self, env: EnvLookup<'_>) -> Vec<(String, String, String)> {
        let mut out = Vec::new();
        for p in self.policies.values() {
            for t in &p.tiers {
                let Some(var) = &t.api_key_env else { continue };
                if env(var).is_none_or(|k| k.trim().is_empty()) {
                    out.push((p.name.clone(), t.name.clone(), var.clone()));
                }
            }
        }
        out
    }

    /// Names of all policies, sorted.
    pub fn names(&self) -> Vec<String> {
        self.policies.keys().cloned().collect()
    }

    fn load_dir(dir: &Path, env: EnvLookup<'_>) -> Result<PolicySet, PolicyError> {
        let mut policies: BTreeMap<String, Arc<Policy>> = BTreeMap::new();
        for file in policy_files(dir)? {
            let policy = Arc::new(load_policy_file_with_env(&file, env)?);
            if let Some(first) = policies.get(&policy.name) {
                return Err(PolicyError::DuplicatePolicy {
                    name: policy.name.clone(),
                    first: first.source.clone().unwrap_or_default(),
                    second: file,
                });
            }
            policies.insert(policy.name.clone(), policy);
        }
        if policies.is_empty() {
            return Err(PolicyError::NoPolicyFiles {
                dir: dir.to_path_buf(),
            });
        }
        let Some(default) = policies.get(DEFAULT_POLICY_NAME).cloned() else {
            return Err(PolicyError::NoDefaultPolicy {
                dir: dir.to_path_buf(),
                names: policies.into_keys().collect(),
            });
        };
        Ok(PolicySet { policies, default })
    }
}

/// Regular files named `*.yaml` / `*.yml` directly in `dir`, sorted by path.
fn policy_files(dir: &Path) -> Result<Vec<PathBuf>, PolicyError> {
    let io_err = |source| PolicyError::Io {
        path: dir.to_path_buf(),
        source,
    };
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(io_err)? {
        let path = entry.map_err(io_err)?.path();
        let is_yaml = path
            .extension()
            .is_some_and(|ext| ext == "yaml" || ext == "yml");
        if is_yaml && path.is_file() {
            files.push(path);
        }
    }
    files.sort();
    Ok(files)
}

#[cfg(test)]
mod tests;
