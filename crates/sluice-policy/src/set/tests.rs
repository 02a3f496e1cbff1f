//! Tests of loading policy files and directories.

use std::path::{Path, PathBuf};

use super::*;

/// A scratch directory removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> TempDir {
        let dir = std::env::temp_dir().join(format!("sluice-policy-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }

    fn write(&self, file: &str, content: &str) -> PathBuf {
        let path = self.0.join(file);
        std::fs::write(&path, content).unwrap();
        path
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn policy(name: &str) -> String {
    format!(
        "version: 1
name: {name}
local: {{ model: m }}
scoring:
  method: answer_confidence
  threshold: 0.5
  weights: {{ bias: 1, mean_logprob: 2 }}
"
    )
}

fn no_env(_: &str) -> Option<String> {
    None
}

fn load(path: &Path) -> Result<PolicySet, PolicyError> {
    PolicySet::load_with_env(path, &no_env)
}

#[test]
fn single_file_is_the_default_whatever_its_name() {
    let dir = TempDir::new("single");
    let file = dir.write("cheap.yaml", &policy("cheap"));
    let set = load(&file).unwrap();
    assert_eq!(set.names(), ["cheap"]);
    assert_eq!(set.default_policy().name, "cheap");
    assert_eq!(set.get("").unwrap().name, "cheap");
    assert_eq!(
        set.get("cheap").unwrap().source.as_deref(),
        Some(file.as_path())
    );
}

#[test]
fn directory_loads_yaml_and_yml_with_default() {
    let dir = TempDir::new("dir");
    dir.write("default.yaml", &policy("default"));
    dir.write("b.yml", &policy("fast"));
    dir.write("notes.txt", "not a policy");
    dir.write("README", "not a policy");
    std::fs::create_dir(dir.0.join("nested.yaml")).unwrap();
    std::fs::create_dir(dir.0.join("sub")).unwrap();
    std::fs::write(dir.0.join("sub/other.yaml"), policy("other")).unwrap();

    let set = load(&dir.0).unwrap();
    assert_eq!(set.names(), ["default", "fast"]);
    assert_eq!(set.default_policy().name, "default");
    assert_eq!(set.get("").unwrap().name, "default");
    assert_eq!(set.get("fast").unwrap().name, "fast");
    let clone = set.clone();
    assert!(Arc::ptr_eq(
        &clone.get("fast").unwrap(),
        &set.get("fast").unwrap()
    ));
}

#[test]
fn bad_file_in_directory_fails_the_load() {
    let dir = TempDir::new("bad");
    dir.write("default.yaml", &policy("default"));
    let bad = dir.write("z.yaml", &policy("z").replace("threshold", "threshhold"));
    match load(&dir.0) {
        Err(PolicyError::Invalid { file, key_path, .. }) => {
            assert_eq!(file, bad);
            assert_eq!(key_path, "scoring.threshhold");
        }
        other => panic!("expected an invalid-policy error, got {other:?}"),
    }
}

#[test]
fn duplicate_policy_names_name_both_files() {
    let dir = TempDir::new("dup");
    let first = dir.write("a.yaml", &policy("default"));
    let second = dir.write("b.yml", &policy("default"));
    let err = load(&dir.0).unwrap_err();
    let shown = err.to_string();
    match err {
        PolicyError::DuplicatePolicy {
            name,
            first: f,
            second: s,
        } => {
            assert_eq!(name, "default");
            assert_eq!((f, s), (first.clone(), second.clone()));
        }
        other => panic!("expected a duplicate-policy error, got {other:?}"),
    }
    assert!(shown.contains(&first.display().to_string()), "{shown}");
    assert!(shown.contains(&second.display().to_string()), "{shown}");
}

#[test]
fn directory_without_default_is_an_error() {
    let dir = TempDir::new("nodefault");
    dir.write("a.yaml", &policy("cheap"));
    dir.write("b.yaml", &policy("fast"));
    let err = load(&dir.0).unwrap_err();
    assert!(
        matches!(&err, PolicyError::NoDefaultPolicy { names, .. } if names == &["cheap", "fast"]),
        "{err:?}"
    );
    assert_eq!(
        err.to_string(),
        format!(
            "{}: expected a policy named default, found only cheap, fast",
            dir.0.display()
        )
    );
}

#[test]
fn directory_without_policy_files_is_an_error() {
    let dir = TempDir::new("empty");
    dir.write("notes.txt", "x");
    let err = load(&dir.0).unwrap_err();
    assert!(matches!(err, PolicyError::NoPolicyFiles { .. }), "{err:?}");
}

#[test]
fn missing_path_is_an_io_error_naming_it() {
    let dir = TempDir::new("missing");
    let path = dir.0.join("nope.yaml");
    let err = load(&path).unwrap_err();
    assert!(
        matches!(&err, PolicyError::Io { path: p, .. } if p == &path),
        "{err:?}"
    );
    assert!(err
        .to_string()
        .starts_with(&format!("{}: cannot read: ", path.display())));
}

#[test]
fn unknown_policy_lists_known_names() {
    let dir = TempDir::new("unknown");
    dir.write("default.yaml", &policy("default"));
    dir.write("fast.yaml", &policy("fast"));
    let set = load(&dir.0).unwrap();
    match set.get("slow") {
        Err(PolicyError::UnknownPolicy { name, known }) => {
            assert_eq!(name, "slow");
            assert_eq!(known, ["default", "fast"]);
        }
        other => panic!("expected an unknown-policy error, got {other:?}"),
    }
}

#[test]
fn env_lookup_reaches_every_file() {
    let dir = TempDir::new("env");
    let tiered = policy("default").replace(
        "scoring:",
        "tiers:
  - name: large
    provider: openai
    base_url: ${BIG_URL}
    model: big
    price: { input_per_mtok: 1, output_per_mtok: 2 }
    timeout: 10s
scoring:",
    );
    dir.write("default.yaml", &tiered);
    let env = |name: &str| (name == "BIG_URL").then(|| "http://big:9000".to_owned());
    let set = PolicySet::load_with_env(&dir.0, &env).unwrap();
    assert_eq!(set.default_policy().tiers[0].base_url, "http://big:9000");
    let err = load(&dir.0).unwrap_err().to_string();
    assert!(
        err.contains("tiers[0].base_url (line 7): environment variable BIG_URL"),
        "{err}"
    );
}

#[test]
fn shipped_policies_directory_loads() {
    let dir = crate::repo_file("policies");
    let set = load(&dir).unwrap();
    assert_eq!(set.default_policy().name, DEFAULT_POLICY_NAME);
}

#[test]
fn from_policy_makes_a_one_policy_set() {
    let p = crate::parse_policy(&policy("solo"), Path::new("x.yaml"), &no_env).unwrap();
    let set = PolicySet::from_policy(p);
    assert_eq!(set.names(), ["solo"]);
    assert_eq!(set.get("").unwrap().name, "solo");
    assert!(set.get("other").is_err());
}

#[test]
fn tiers_whose_key_variable_is_unset_are_listed() {
    let dir = TempDir::new("keys");
    let tiers = "tiers:\n  - { name: large, provider: openai, base_url: \"http://127.0.0.1:1\", \
                 model: m, api_key_env: LARGE_KEY, timeout: 5s, price: { input_per_mtok: 1, output_per_mtok: 1 } }\n  \
                 - { name: open, provider: openai, base_url: \"http://127.0.0.1:2\", model: m, timeout: 5s, \
                 price: { input_per_mtok: 1, output_per_mtok: 1 } }\n";
    std::fs::write(dir.0.join("default.yaml"), policy("default") + tiers).unwrap();
    std::fs::write(
        dir.0.join("b.yaml"),
        policy("b") + &tiers.replace("LARGE_KEY", "B_KEY"),
    )
    .unwrap();
    let set = load(&dir.0).unwrap();
    let set_only = |var: &'static str, value: &'static str| {
        move |name: &str| (name == var).then(|| value.to_owned())
    };
    assert_eq!(
        set.missing_api_keys(&set_only("LARGE_KEY", "sk-1")),
        [("b".to_owned(), "large".to_owned(), "B_KEY".to_owned())]
    );
    assert_eq!(
        set.missing_api_keys(&set_only("LARGE_KEY", "  ")).len(),
        2,
        "an empty key is as good as none"
    );
}
