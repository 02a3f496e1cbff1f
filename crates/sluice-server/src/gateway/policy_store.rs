//! The loaded policies, swapped atomically on reload.

use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use sluice_policy::{Policy, PolicyError, PolicySet};

/// Policies loaded from a file or directory. A reload either replaces all of them or none.
#[derive(Debug)]
pub struct PolicyStore {
    path: PathBuf,
    current: RwLock<Arc<PolicySet>>,
    /// The served model file's SHA-256, which every policy's probe must have been fitted on.
    model_sha256: Option<String>,
}

impl PolicyStore {
    /// Load the policies at `path`; fails on the first invalid file.
    pub fn load(path: &Path) -> Result<Self, PolicyError> {
        let set = PolicySet::load(path)?;
        Ok(Self {
            path: path.to_path_buf(),
            current: RwLock::new(Arc::new(set)),
            model_sha256: None,
        })
    }

    /// Holds the policies to the served model: refuses them now, and on every reload, when a
    /// probe was fitted on another model file.
    pub fn for_model(mut self, model_sha256: String) -> Result<Self, PolicyError> {
        self.snapshot().check_model(&model_sha256)?;
        self.model_sha256 = Some(model_sha256);
        Ok(self)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The running set; requests keep the `Arc` they started with across reloads.
    pub fn snapshot(&self) -> Arc<PolicySet> {
        match self.current.read() {
            Ok(g) => g.clone(),
            Err(p) => p.into_inner().clone(),
        }
    }

    /// A policy by name; empty means the default.
    pub fn get(&self, name: &str) -> Result<Arc<Policy>, PolicyError> {
        self.snapshot().get(name)
    }

    /// Re-read the files. On error the running set stays.
    pub fn reload(&self) -> Result<Arc<PolicySet>, PolicyError> {
        let set = Arc::new(PolicySet::load(&self.path)?);
        if let Some(sha) = &self.model_sha256 {
            set.check_model(sha)?;
        }
        match self.current.write() {
            Ok(mut g) => *g = set.clone(),
            Err(p) => *p.into_inner() = set.clone(),
        }
        Ok(set)
    }
}
