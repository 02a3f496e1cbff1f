//! Tests of parsing, validating and using a tenants file.

use std::path::Path;

use super::*;

const FILE: &str = "\
version: 1
tenants:
  - name: acme
    api_key_env: ACME_API_KEY
    policy: default
  - name: beta
    api_key_env: BETA_API_KEY
";

const ACME_KEY: &str = "sk-acme-0123456789";
const BETA_KEY: &str = "sk-beta-9876543210";
const ADMIN_KEY: &str = "sk-admin-5555555555";

fn env(name: &str) -> Option<String> {
    match name {
        "ACME_API_KEY" => Some(ACME_KEY.into()),
        "BETA_API_KEY" => Some(BETA_KEY.into()),
        "EMPTY_KEY" => Some(String::new()),
        "BLANK_KEY" => Some("  ".into()),
        "PADDED_KEY" => Some(format!("{ACME_KEY}\n")),
        "ACME_AGAIN" => Some(ACME_KEY.into()),
        "SLUICE_ADMIN_KEY" => Some(ADMIN_KEY.into()),
        _ => None,
    }
}

/// A minimal valid policy called `name`.
fn policy(name: &str) -> crate::Policy {
    crate::parse_policy(
        &format!(
            "version: 1\nname: {name}\nlocal: {{ model: m }}\nscoring:\n  \
             method: answer_confidence\n  threshold: 0.5\n  weights: {{ bias: 1 }}\n"
        ),
        Path::new("p.yaml"),
        &|_| None,
    )
    .unwrap()
}

fn parse(src: &str) -> Result<Tenants, PolicyError> {
    parse_tenants(src, Path::new("deploy/tenants.yaml"), &env)
}

/// The error's (key path, line, message); panics when parsing succeeds.
fn invalid(src: &str) -> (String, Option<usize>, String) {
    match parse(src) {
        Err(PolicyError::Invalid {
            file,
            key_path,
            line,
            message,
        }) => {
            assert_eq!(file, Path::new("deploy/tenants.yaml"));
            assert!(!message.contains(ACME_KEY), "key leaked: {message}");
            assert!(!message.contains(BETA_KEY), "key leaked: {message}");
            (key_path, line, message)
        }
        other => panic!("expected an invalid-tenants error, got {other:?}"),
    }
}

/// `FILE` with `from` replaced by `to` (which must occur).
fn file_with(from: &str, to: &str) -> String {
    assert!(FILE.contains(from), "{from}");
    FILE.replacen(from, to, 1)
}

#[test]
fn keys_authenticate_their_tenant() {
    let tenants = parse(FILE).unwrap();
    assert_eq!(tenants.len(), 2);
    assert!(!tenants.is_empty());
    assert_eq!(tenants.names(), ["acme", "beta"]);
    let acme = tenants.authenticate(ACME_KEY).unwrap();
    assert_eq!(
        *acme,
        Tenant {
            name: "acme".into(),
            default_policy: Some("default".into()),
            policies: vec![],
        }
    );
    let beta = tenants.authenticate(BETA_KEY).unwrap();
    assert_eq!(beta.name, "beta");
    assert_eq!(beta.default_policy, None);
}

#[test]
fn wrong_or_partial_keys_do_not_authenticate() {
    let tenants = parse(FILE).unwrap();
    for wrong in [
        "",
        "sk-acme",
        &format!("{ACME_KEY} "),
        "ACME_API_KEY",
        "acme",
    ] {
        assert!(tenants.authenticate(wrong).is_none(), "{wrong:?}");
    }
}

#[test]
fn debug_shows_names_but_never_keys() {
    let shown = format!("{:?}", parse(FILE).unwrap());
    assert!(!shown.contains(ACME_KEY), "{shown}");
    assert!(!shown.contains(BETA_KEY), "{shown}");
    assert!(
        shown.contains("\"acme\"") && shown.contains("\"beta\""),
        "{shown}"
    );
}

#[test]
fn unset_or_empty_key_names_variable_and_tenant() {
    let src = file_with("BETA_API_KEY", "BETA_KEY_UNSET");
    let (key_path, line, message) = invalid(&src);
    assert_eq!(
        (key_path.as_str(), line),
        ("tenants[1].api_key_env", Some(7))
    );
    assert_eq!(
        message,
        "expected environment variable BETA_KEY_UNSET to hold the API key of tenant \"beta\", \
         found it unset"
    );
    for var in ["EMPTY_KEY", "BLANK_KEY"] {
        let (key_path, _, message) = invalid(&file_with("BETA_API_KEY", var));
        assert_eq!(key_path, "tenants[1].api_key_env");
        assert!(message.contains(var), "{message}");
        assert!(message.ends_with("found it empty"), "{message}");
    }
    let (_, _, message) = invalid(&file_with("ACME_API_KEY", "PADDED_KEY"));
    assert!(message.contains("PADDED_KEY"), "{message}");
    assert!(message.contains("tenant \"acme\""), "{message}");
    assert!(message.ends_with("found whitespace around it"), "{message}");
}

#[test]
fn bad_variable_name() {
    let (key_path, _, message) = invalid(&file_with("ACME_API_KEY", "sk-live-123"));
    assert_eq!(key_path, "tenants[0].api_key_env");
    assert!(
        message.starts_with("expected an environment variable name"),
        "{message}"
    );
}

#[test]
fn shared_key_names_both_tenants_not_the_key() {
    let src = file_with("BETA_API_KEY", "ACME_AGAIN");
    let (key_path, line, message) = invalid(&src);
    assert_eq!(
        (key_path.as_str(), line),
        ("tenants[1].api_key_env", Some(7))
    );
    assert_eq!(
        message,
        "expected a different API key for each tenant and admin, found the key of tenant \
         \"acme\" (in ACME_API_KEY) also in ACME_AGAIN for tenant \"beta\""
    );
    let shown = parse(&src).unwrap_err().to_string();
    assert!(!shown.contains(ACME_KEY), "{shown}");
}

#[test]
fn duplicate_and_bad_names() {
    let (key_path, line, message) = invalid(&file_with("name: beta", "name: acme"));
    assert_eq!((key_path.as_str(), line), ("tenants[1].name", Some(6)));
    assert_eq!(
        message,
        "expected unique tenant names, found \"acme\" again (first at tenants[0].name)"
    );
    for bad in ["Acme", "ac me", "-acme", "''"] {
        let (key_path, _, message) = invalid(&file_with("name: acme", &format!("name: {bad}")));
        assert_eq!(key_path, "tenants[0].name", "{bad}");
        assert!(
            message.starts_with("expected a name of lowercase"),
            "{message}"
        );
    }
    let (key_path, line, message) = invalid(&file_with("policy: default", "policy: Fast"));
    assert_eq!((key_path.as_str(), line), ("tenants[0].policy", Some(5)));
    assert!(message.ends_with("found \"Fast\""), "{message}");
}

#[test]
fn version_and_empty_list() {
    let (key_path, line, message) = invalid(&file_with("version: 1", "version: 2"));
    assert_eq!((key_path.as_str(), line), ("version", Some(1)));
    assert_eq!(message, "expected version 1, found 2");
    for src in [
        "version: 1\ntenants: []\n",
        "version: 1\ntenants:\n",
        "version: 1\n",
    ] {
        let (key_path, _, message) = invalid(src);
        assert_eq!(key_path, "tenants", "{src}");
        assert_eq!(message, "expected at least one tenant, found none");
    }
    let (_, line, _) = invalid("version: 1\ntenants: []\n");
    assert_eq!(line, Some(2));
    let (key_path, _, message) = invalid("# nothing\n");
    assert_eq!(key_path, "");
    assert_eq!(
        message,
        "expected a tenants mapping, found an empty document"
    );
}

#[test]
fn unknown_keys_are_rejected() {
    let (key_path, line, message) = invalid(&file_with("    policy:", "    polcy:"));
    assert_eq!((key_path.as_str(), line), ("tenants[0].polcy", Some(5)));
    assert!(message.starts_with("unknown field `polcy`"), "{message}");
    let (key_path, _, message) = invalid(&format!("{FILE}keys: {{}}\n"));
    assert_eq!(key_path, "keys");
    assert!(message.starts_with("unknown field `keys`"), "{message}");
    // A key written into the file itself is refused, and not echoed back.
    let src = file_with("    policy: default", &format!("    api_key: {ACME_KEY}"));
    let (key_path, _, message) = invalid(&src);
    assert_eq!(key_path, "tenants[0].api_key");
    assert!(message.starts_with("unknown field `api_key`"), "{message}");
}

#[test]
fn default_policies_are_checked_against_the_loaded_set() {
    let tenants = parse(FILE).unwrap();
    assert!(tenants
        .check_policies(&PolicySet::from_policy(policy("default")))
        .is_ok());
    let err = tenants
        .check_policies(&PolicySet::from_policy(policy("cheap")))
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "deploy/tenants.yaml: tenants[0].policy (line 5): \
         expected a loaded policy (cheap), found \"default\""
    );
}

#[test]
fn load_reads_the_file_and_reports_io_errors() {
    let missing = Path::new("/nonexistent/sluice/tenants.yaml");
    match load_tenants(missing) {
        Err(PolicyError::Io { path, .. }) => assert_eq!(path, missing),
        other => panic!("expected an io error, got {other:?}"),
    }
}

#[test]
fn shipped_example_parses() {
    let path = crate::repo_file("deploy/tenants.example.yaml");
    let src = std::fs::read_to_string(&path).unwrap();
    let tenants = parse_tenants(&src, &path, &env).unwrap();
    assert_eq!(tenants.names(), ["acme", "beta"]);
    let acme = tenants.authenticate(ACME_KEY).unwrap();
    assert_eq!(acme.default_policy.as_deref(), Some("default"));
    let beta = tenants.authenticate(BETA_KEY).unwrap();
    assert_eq!(beta.default_policy, None);
    assert_eq!(beta.allowed("default"), ["default"]);
    assert_eq!(
        tenants.authenticate_admin(ADMIN_KEY).as_deref(),
        Some("ops")
    );
    assert!(tenants.authenticate(ADMIN_KEY).is_none());
    assert!(tenants.authenticate_admin(ACME_KEY).is_none());
}

#[test]
fn a_tenant_may_use_only_the_policies_it_lists() {
    let src = file_with(
        "    policy: default\n",
        "    policy: privacy\n    policies: [privacy, default]\n",
    );
    let tenants = parse(&src).unwrap();
    let acme = tenants.authenticate(ACME_KEY).unwrap();
    assert_eq!(acme.default_policy.as_deref(), Some("privacy"));
    assert!(acme.may_use("privacy", "default"));
    assert!(acme.may_use("default", "default"));
    assert!(!acme.may_use("cost-saver", "default"));
    // No `policies`: only the tenant's `policy`, or the set's default when it has none.
    let beta = tenants.authenticate(BETA_KEY).unwrap();
    assert!(beta.may_use("default", "default"));
    assert!(!beta.may_use("privacy", "default"));
    assert!(beta.may_use("privacy", "privacy"));
    let only_own = parse(FILE).unwrap().authenticate(ACME_KEY).unwrap();
    assert_eq!(only_own.allowed("cost-saver"), ["default"]);
    // `policies` without `policy`: the first listed is the default.
    let first = parse(&file_with(
        "    policy: default\n",
        "    policies: [b, a]\n",
    ))
    .unwrap();
    let acme = first.authenticate(ACME_KEY).unwrap();
    assert_eq!(acme.default_policy.as_deref(), Some("b"));
}

#[test]
fn bad_policy_lists_name_the_entry() {
    let cases = [
        (
            "    policies: []\n",
            "tenants[0].policies",
            "expected at least one policy name (omit `policies` to allow only the tenant's \
             default policy), found none",
        ),
        (
            "    policies: [a, a]\n",
            "tenants[0].policies[1]",
            "expected each policy once, found \"a\" again",
        ),
        (
            "    policy: c\n    policies: [a, b]\n",
            "tenants[0].policy",
            "expected one of the tenant's `policies` (a, b), found \"c\"",
        ),
    ];
    for (policies, path, message) in cases {
        let (key_path, _, got) = invalid(&file_with("    policy: default\n", policies));
        assert_eq!(
            (key_path.as_str(), got.as_str()),
            (path, message),
            "{policies}"
        );
    }
    let (key_path, _, got) = invalid(&file_with("    policy: default\n", "    policies: [A]\n"));
    assert_eq!(key_path, "tenants[0].policies[0]");
    assert!(got.starts_with("expected a name of lowercase"), "{got}");
}

#[test]
fn admins_have_their_own_unique_keys() {
    let admins = "admins:\n  - name: ops\n    api_key_env: SLUICE_ADMIN_KEY\n";
    let tenants = parse(&format!("{FILE}{admins}")).unwrap();
    assert!(tenants.has_admins());
    assert!(!parse(FILE).unwrap().has_admins());
    let (key_path, line, message) = invalid(&format!(
        "{FILE}admins:\n  - name: ops\n    api_key_env: ACME_AGAIN\n"
    ));
    assert_eq!(
        (key_path.as_str(), line),
        ("admins[0].api_key_env", Some(10))
    );
    assert_eq!(
        message,
        "expected a different API key for each tenant and admin, found the key of tenant \
         \"acme\" (in ACME_API_KEY) also in ACME_AGAIN for admin \"ops\""
    );
    let (key_path, _, message) = invalid(&format!("{FILE}{admins}{}", &admins[8..]));
    assert_eq!(key_path, "admins[1].name");
    assert!(
        message.starts_with("expected unique admin names"),
        "{message}"
    );
    let (key_path, _, message) = invalid(&format!(
        "{FILE}admins:\n  - name: ops\n    api_key_env: UNSET_ADMIN\n"
    ));
    assert_eq!(key_path, "admins[0].api_key_env");
    assert_eq!(
        message,
        "expected environment variable UNSET_ADMIN to hold the API key of admin \"ops\", \
         found it unset"
    );
}

#[test]
fn listed_policies_are_checked_against_the_loaded_set() {
    let src = file_with("    policy: default\n", "    policies: [default, cheap]\n");
    let err = parse(&src)
        .unwrap()
        .check_policies(&PolicySet::from_policy(policy("default")))
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "deploy/tenants.yaml: tenants[0].policies[1] (line 5): \
         expected a loaded policy (default), found \"cheap\""
    );
}
