//! Policy and tenants files: raw YAML types, validation into domain types, and the chat domain types.
//!
//! Entry points: [`parse_policy`] for text, [`load_policy_file`] for one file and
//! [`PolicySet::load`] for a file or a directory of policies; [`load_tenants`] for the
//! tenants file (who may call, by API key). Every failure is a
//! [`PolicyError`] naming the file and, for bad content, the key path and line.

pub mod chat;
mod env;
pub mod error;
pub mod hidden_probe;
mod load;
mod locate;
pub mod model;
pub mod pii;
mod raw;
pub mod schema;
mod set;
mod tenants;
mod validate;

pub use chat::{GenParams, Message, Role};
pub use error::PolicyError;
pub use hidden_probe::{HiddenProbe, Pool, ProbeComponent, PromptStates, PROBE_VERSION};
pub use load::{load_policy_file, parse_policy};
pub use model::*;
pub use pii::PiiKind;
pub use set::{PolicySet, DEFAULT_POLICY_NAME};
pub use tenants::{load_tenants, parse_tenants, Tenant, Tenants};

/// A file of the repository, for tests. Read at run time: cargo reuses a test binary built in
/// another checkout of the same sources, and `env!` would keep that checkout's path.
#[cfg(test)]
pub(crate) fn repo_file(relative: &str) -> std::path::PathBuf {
    let dir = std::env::var("CARGO_MANIFEST_DIR")
        .unwrap_or_else(|_| env!("CARGO_MANIFEST_DIR").to_owned());
    std::path::Path::new(&dir).join("../..").join(relative)
}
