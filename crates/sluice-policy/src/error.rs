//! The one error type of this crate: everything that can go wrong loading policies.

use std::path::PathBuf;

/// Why a policy file or directory could not be loaded, or a policy not found.
#[derive(Debug, thiserror::Error)]
pub enum PolicyError {
    /// The file was read but its content is not a valid policy.
    #[error("{}{}: {message}", .file.display(), location(.key_path, *.line))]
    Invalid {
        file: PathBuf,
        /// Where in the document, e.g. `tiers[0].timeout`; empty for the whole document.
        key_path: String,
        /// 1-based line in the file, when known.
        line: Option<usize>,
        /// What was expected and what was found.
        message: String,
    },

    /// A file or directory could not be read.
    #[error("{}: cannot read: {source}", .path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    /// The policy's probe was fitted on another model file than the one served.
    #[error(
        "{}: policy {policy:?} names a probe fitted on the model with SHA-256 {probe}, but the \
         served model's is {model}; refit it (sluice calibrate --fit-probe) or serve that model",
        .file.display()
    )]
    ProbeModelMismatch {
        policy: String,
        file: PathBuf,
        probe: String,
        model: String,
    },

    /// A policy directory holds no `*.yaml` / `*.yml` file.
    #[error("{}: expected policy files (*.yaml or *.yml), found none", .dir.display())]
    NoPolicyFiles { dir: PathBuf },

    /// Two files in a policy directory define the same policy name.
    #[error(
        "policy name {name:?} is defined twice: in {} and in {}",
        .first.display(),
        .second.display()
    )]
    DuplicatePolicy {
        name: String,
        first: PathBuf,
        second: PathBuf,
    },

    /// A policy directory has no policy named `default`, so there is nothing to fall back on.
    #[error(
        "{}: expected a policy named default, found only {}",
        .dir.display(),
        .names.join(", ")
    )]
    NoDefaultPolicy { dir: PathBuf, names: Vec<String> },

    /// A request named a policy that is not loaded.
    #[error("unknown policy {name:?}: expected one of {}", .known.join(", "))]
    UnknownPolicy { name: String, known: Vec<String> },
}

/// `: key.path (line N)` with whichever parts are known.
fn location(key_path: &str, line: Option<usize>) -> String {
    match (key_path.is_empty(), line) {
        (false, Some(line)) => format!(": {key_path} (line {line})"),
        (false, None) => format!(": {key_path}"),
        (true, Some(line)) => format!(" (line {line})"),
        (true, None) => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn invalid(key_path: &str, line: Option<usize>) -> PolicyError {
        PolicyError::Invalid {
            file: "policies/default.yaml".into(),
            key_path: key_path.into(),
            line,
            message: "expected a duration like 500ms, 30s or 2m, found \"30 seconds\"".into(),
        }
    }

    #[test]
    fn invalid_display_has_file_key_path_and_line() {
        assert_eq!(
            invalid("tiers[0].timeout", Some(12)).to_string(),
            "policies/default.yaml: tiers[0].timeout (line 12): \
             expected a duration like 500ms, 30s or 2m, found \"30 seconds\""
        );
    }

    #[test]
    fn invalid_display_omits_unknown_parts() {
        let msg = "expected a duration like 500ms, 30s or 2m, found \"30 seconds\"";
        assert_eq!(
            invalid("tiers[0].timeout", None).to_string(),
            format!("policies/default.yaml: tiers[0].timeout: {msg}")
        );
        assert_eq!(
            invalid("", Some(3)).to_string(),
            format!("policies/default.yaml (line 3): {msg}")
        );
        assert_eq!(
            invalid("", None).to_string(),
            format!("policies/default.yaml: {msg}")
        );
    }

    #[test]
    fn unknown_policy_lists_known_names() {
        let err = PolicyError::UnknownPolicy {
            name: "fast".into(),
            known: vec!["cheap".into(), "default".into()],
        };
        assert_eq!(
            err.to_string(),
            "unknown policy \"fast\": expected one of cheap, default"
        );
    }
}
