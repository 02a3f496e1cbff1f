//! Reading one policy: YAML text → raw types → validated `Policy`, with errors
//! that name the file, the key path and the line.

use std::path::Path;
use std::sync::LazyLock;

use regex::Regex;
use serde::de::DeserializeOwned;

use crate::env::EnvLookup;
use crate::error::PolicyError;
use crate::locate;
use crate::model::Policy;
use crate::raw::RawPolicy;
use crate::validate;

/// Parses and validates policy YAML. `file` is only used in error messages, and
/// `env` resolves `${VAR}` references in `base_url`. The result has `source: None`
/// and the fingerprint and text of `src`.
pub fn parse_policy(
    src: &str,
    file: &Path,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Policy, PolicyError> {
    let raw: RawPolicy = parse_raw(src, file, "policy")?;
    let mut policy = validate::validate(&raw, env as EnvLookup<'_>)
        .map_err(|invalid| invalid_error(invalid, src, file))?;
    policy.fingerprint = fingerprint(src);
    policy.text = std::sync::Arc::from(src);
    if let Some(name) = &raw.scoring.probe {
        let (probe, text) = read_probe(name, src, file)?;
        // A refitted probe changes the answers, so it changes the fingerprint too.
        policy.fingerprint ^= fingerprint(&text).rotate_left(1);
        policy.scoring.probe = Some(std::sync::Arc::new(probe));
    }
    Ok(policy)
}

/// The probe file `name`, relative to the policy file's directory, parsed and checked;
/// errors point at `scoring.probe`.
fn read_probe(
    name: &str,
    src: &str,
    file: &Path,
) -> Result<(crate::HiddenProbe, String), PolicyError> {
    let path = file.parent().unwrap_or(Path::new(".")).join(name);
    let at_probe = |message: String| {
        let key = crate::locate::KeyPath::default()
            .key("scoring")
            .key("probe");
        invalid_error(validate::Invalid { path: key, message }, src, file)
    };
    let text = std::fs::read_to_string(&path)
        .map_err(|e| at_probe(format!("cannot read probe file {}: {e}", path.display())))?;
    let probe = crate::HiddenProbe::parse(&text)
        .map_err(|e| at_probe(format!("probe file {}: {e}", path.display())))?;
    Ok((probe, text))
}

/// Reads, parses and validates one policy file, resolving `${VAR}` from the
/// process environment; the result's `source` is `path`.
pub fn load_policy_file(path: &Path) -> Result<Policy, PolicyError> {
    load_policy_file_with_env(path, &|name| std::env::var(name).ok())
}

/// `load_policy_file` with an explicit environment lookup.
pub(crate) fn load_policy_file_with_env(
    path: &Path,
    env: EnvLookup<'_>,
) -> Result<Policy, PolicyError> {
    let src = std::fs::read_to_string(path).map_err(|source| PolicyError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let mut policy = parse_policy(&src, path, env)?;
    policy.source = Some(path.to_path_buf());
    Ok(policy)
}

/// FNV-1a, 64 bits, over the bytes of `src`: fixed by its definition, unlike std's
/// `DefaultHasher`, so the same file has the same fingerprint in every build.
pub(crate) fn fingerprint(src: &str) -> u64 {
    const OFFSET_BASIS: u64 = 0xcbf2_9ce4_8422_2325;
    const PRIME: u64 = 0x0000_0100_0000_01b3;
    src.bytes().fold(OFFSET_BASIS, |hash, byte| {
        (hash ^ u64::from(byte)).wrapping_mul(PRIME)
    })
}

/// A validation failure in `src` as the error users see, with the line of its key path.
pub(crate) fn invalid_error(invalid: validate::Invalid, src: &str, file: &Path) -> PolicyError {
    PolicyError::Invalid {
        file: file.to_path_buf(),
        key_path: invalid.path.to_string(),
        line: locate::line_of(src, &invalid.path),
        message: invalid.message,
    }
}

/// YAML → raw types (`what` names the document kind, e.g. `policy`, in the message
/// for an empty file); errors carry serde's key path and the YAML position.
pub(crate) fn parse_raw<T: DeserializeOwned>(
    src: &str,
    file: &Path,
    what: &str,
) -> Result<T, PolicyError> {
    let invalid = |key_path: String, line, message| PolicyError::Invalid {
        file: file.to_path_buf(),
        key_path,
        line,
        message,
    };
    if src
        .lines()
        .all(|l| l.trim().is_empty() || l.trim_start().starts_with('#'))
    {
        return Err(invalid(
            String::new(),
            None,
            format!("expected a {what} mapping, found an empty document"),
        ));
    }
    let deserializer = serde_norway::Deserializer::from_str(src);
    serde_path_to_error::deserialize(deserializer).map_err(|err| {
        let path = err.path().to_string();
        let inner = err.into_inner();
        let line = inner.location().map(|loc| loc.line());
        let message = clean_message(&inner.to_string(), &path);
        let key_path = if path == "." { String::new() } else { path };
        invalid(key_path, line, message)
    })
}

static POSITION: LazyLock<Option<Regex>> =
    LazyLock::new(|| Regex::new(r" at line \d+ column \d+").ok());

/// serde_norway's message without the parts `PolicyError` shows separately:
/// the leading `path: ` and the ` at line N column M` positions. serde_norway's
/// path may stop short of `path` (at the mapping holding an unknown key, say),
/// so any leading part of `path` is accepted.
fn clean_message(message: &str, path: &str) -> String {
    let mut prefix = path;
    let message = loop {
        if let Some(rest) = message
            .strip_prefix(prefix)
            .and_then(|r| r.strip_prefix(": "))
        {
            break rest;
        }
        match prefix.rfind(['.', '[']) {
            Some(cut) if cut > 0 => prefix = &prefix[..cut],
            _ => break message,
        }
    };
    match &*POSITION {
        Some(re) => re.replace_all(message, "").into_owned(),
        None => message.to_owned(),
    }
}

#[cfg(test)]
mod tests;
