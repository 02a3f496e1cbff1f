//! `${VAR}` and `${VAR:-default}` expansion, with an injectable environment lookup.
//!
//! Only these two forms are recognised; a `$` not followed by `{` is kept as is.
//! As in the shell, `${VAR:-default}` uses the default when `VAR` is unset or empty.

/// A way to read environment variables; tests pass a closure over a fixed map.
pub type EnvLookup<'a> = &'a dyn Fn(&str) -> Option<String>;

/// Whether `name` looks like an environment variable name: `[A-Za-z_][A-Za-z0-9_]*`.
pub fn is_env_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// Expands every `${…}` reference in `template`; the error is a message for the user.
pub fn expand(template: &str, env: EnvLookup<'_>) -> Result<String, String> {
    let mut out = String::with_capacity(template.len());
    let mut rest = template;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let Some(end) = after.find('}') else {
            return Err(format!(
                "expected `}}` to close `${{` in {template:?}, found the end of the value"
            ));
        };
        let inner = &after[..end];
        out.push_str(&resolve(inner, env)?);
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

/// The value of one reference, `inner` being the text between `${` and `}`.
fn resolve(inner: &str, env: EnvLookup<'_>) -> Result<String, String> {
    let (name, default) = match inner.split_once(":-") {
        Some((name, default)) => (name, Some(default)),
        None => (inner, None),
    };
    if !is_env_name(name) {
        return Err(format!(
            "expected an environment reference like ${{VAR}} or ${{VAR:-default}}, \
             found ${{{inner}}}"
        ));
    }
    match (env(name), default) {
        (Some(value), Some(default)) if value.is_empty() => Ok(default.to_owned()),
        (Some(value), _) => Ok(value),
        (None, Some(default)) => Ok(default.to_owned()),
        (None, None) => Err(format!(
            "environment variable {name} is not set (expected by ${{{name}}}; \
             set it or write ${{{name}:-default}})"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(name: &str) -> Option<String> {
        match name {
            "HOST" => Some("example.com".into()),
            "EMPTY" => Some(String::new()),
            _ => None,
        }
    }

    #[test]
    fn set_variable_is_substituted() {
        assert_eq!(
            expand("https://${HOST}/v1", &env).unwrap(),
            "https://example.com/v1"
        );
        assert_eq!(expand("${HOST:-other}", &env).unwrap(), "example.com");
    }

    #[test]
    fn default_applies_when_unset_or_empty() {
        assert_eq!(
            expand("${NOPE:-http://127.0.0.1:8080}", &env).unwrap(),
            "http://127.0.0.1:8080"
        );
        assert_eq!(expand("${EMPTY:-d}", &env).unwrap(), "d");
        assert_eq!(expand("${NOPE:-}", &env).unwrap(), "");
        assert_eq!(expand("x${EMPTY}y", &env).unwrap(), "xy");
    }

    #[test]
    fn unset_variable_without_default_is_an_error_naming_it() {
        let err = expand("http://${NOPE}", &env).unwrap_err();
        assert!(err.contains("NOPE is not set"), "{err}");
    }

    #[test]
    fn text_without_references_is_unchanged() {
        assert_eq!(expand("a$b$", &env).unwrap(), "a$b$");
    }

    #[test]
    fn malformed_references_are_errors() {
        assert!(expand("${HOST", &env).unwrap_err().contains("close"));
        assert!(expand("${1X}", &env).unwrap_err().contains("found ${1X}"));
        assert!(expand("${HOST-x}", &env).is_err());
        assert!(expand("${}", &env).is_err());
    }

    #[test]
    fn env_names() {
        assert!(is_env_name("SLUICE_LARGE_API_KEY"));
        assert!(is_env_name("_x1"));
        assert!(!is_env_name(""));
        assert!(!is_env_name("1A"));
        assert!(!is_env_name("A-B"));
    }
}
