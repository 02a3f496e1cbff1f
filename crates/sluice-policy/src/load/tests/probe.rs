//! Tests of `scoring.probe` and `scoring.escalate_below`.

use super::*;

const CASCADE: &str = "\
version: 1
name: casc
local: { model: m }
tiers:
  - { name: large, provider: openai, base_url: http://127.0.0.1:1, model: big,
      price: { input_per_mtok: 1, output_per_mtok: 2 }, timeout: 5s }
scoring:
  method: cascade
  threshold: 0.5
  escalate_below: 0.2
  probe: probes/m.json
  weights: { hidden_probe: 1, mean_logprob: 2 }
";

fn probe_json(sha: &str) -> String {
    format!(
        r#"{{"version": 1, "model_sha256": "{sha}", "hidden_size": 2,
            "components": [{{"state": 3, "pool": "mean", "bias": 0.5, "weights": [1, -1]}}]}}"#
    )
}

/// A fresh directory holding `policy.yaml` with `src` and, when given, `probes/m.json`.
struct Dir(std::path::PathBuf);

impl Dir {
    fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn dir_with(src: &str, probe: Option<&str>) -> Dir {
    use std::sync::atomic::{AtomicUsize, Ordering};
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let dir = std::env::temp_dir().join(format!("sluice-probe-test-{}-{n}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("probes")).unwrap();
    std::fs::write(dir.join("policy.yaml"), src).unwrap();
    if let Some(p) = probe {
        std::fs::write(dir.join("probes/m.json"), p).unwrap();
    }
    Dir(dir)
}

#[test]
fn probe_is_read_relative_to_the_policy_file() {
    let sha = "0f".repeat(32);
    let dir = dir_with(CASCADE, Some(&probe_json(&sha)));
    let p = load_policy_file(&dir.path().join("policy.yaml")).unwrap();
    assert_eq!(p.scoring.method, ScoringMethod::Cascade);
    assert_eq!(p.scoring.escalate_below, Some(0.2));
    let probe = p.scoring.probe.as_deref().unwrap();
    assert_eq!(probe.components[0].state, 3);
    assert!(p.check_model(&sha).is_ok());
    let other = "1e".repeat(32);
    let e = p.check_model(&other).unwrap_err().to_string();
    assert!(e.contains(&sha) && e.contains(&other), "{e}");
    // the probe's text is part of the fingerprint
    let dir2 = dir_with(CASCADE, Some(&probe_json(&other)));
    let p2 = load_policy_file(&dir2.path().join("policy.yaml")).unwrap();
    assert_ne!(p.fingerprint, p2.fingerprint);
}

#[test]
fn a_missing_or_bad_probe_file_names_the_key() {
    for (probe, want) in [
        (None, "cannot read probe file"),
        (Some("{\"version\": 2}".to_string()), "missing field"),
        (Some(probe_json("nothex")), "64 lowercase hex"),
    ] {
        let dir = dir_with(CASCADE, probe.as_deref());
        match load_policy_file(&dir.path().join("policy.yaml")) {
            Err(PolicyError::Invalid {
                key_path,
                line,
                message,
                ..
            }) => {
                assert_eq!(key_path, "scoring.probe");
                assert_eq!(line, Some(11));
                assert!(message.contains(want), "{message}");
            }
            other => panic!("expected an invalid policy, got {other:?}"),
        }
    }
}

#[test]
fn methods_that_read_the_probe_require_one() {
    let src = CASCADE.replace("  probe: probes/m.json\n", "");
    let (key, _, message) = invalid(&src);
    assert_eq!(key, "scoring.probe");
    assert!(message.contains("method cascade"), "{message}");
    let src = src
        .replace("method: cascade", "method: answer_confidence")
        .replace("  escalate_below: 0.2\n", "");
    let (key, _, message) = invalid(&src);
    assert_eq!(key, "scoring.probe");
    assert!(message.contains("hidden_probe weight"), "{message}");
}

#[test]
fn escalate_below_only_with_cascade_and_in_range() {
    let src = CASCADE.replace("method: cascade", "method: answer_confidence");
    let (key, _, message) = invalid(&src);
    assert_eq!(key, "scoring.escalate_below");
    assert!(message.contains("only with method cascade"), "{message}");
    let src = CASCADE.replace("escalate_below: 0.2", "escalate_below: 1.5");
    let (key, _, message) = invalid(&src);
    assert_eq!(key, "scoring.escalate_below");
    assert!(message.contains("0..=1"), "{message}");
}

#[test]
fn prefill_probe_takes_only_prefill_and_text_features() {
    let src = CASCADE
        .replace("method: cascade", "method: prefill_probe")
        .replace("  escalate_below: 0.2\n", "");
    let (key, _, message) = invalid(&src);
    assert_eq!(key, "scoring.weights.mean_logprob");
    assert!(message.contains("prefill_probe"), "{message}");
}
