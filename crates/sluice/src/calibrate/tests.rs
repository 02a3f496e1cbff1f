//! Rewriting policies with fitted values, and the calibration's choices.
use super::*;

/// `policies/default.yaml`, found at run time (a reused test binary keeps the path of the
/// checkout it was built in).
fn shipped_default() -> std::path::PathBuf {
    let dir = std::env::var("CARGO_MANIFEST_DIR")
        .unwrap_or_else(|_| env!("CARGO_MANIFEST_DIR").to_owned());
    Path::new(&dir).join("../../policies/default.yaml")
}
use std::path::Path;

fn calib() -> Calibration {
    Calibration {
        method: ScoringMethod::AnswerConfidence,
        bias: -1.5,
        weights: vec![("mean_logprob", 2.0), ("stopped", 0.5)],
        threshold: 0.3,
        cv_auroc: 0.7,
        escalated: 0.8,
        escalate_below: None,
        probe: None,
        routed: None,
    }
}

#[test]
fn rewrites_threshold_and_weights_and_keeps_the_rest() {
    let src = "# a comment that stays\nversion: 1\nname: fitted\n\
               local: { model: m, max_tokens: 32 }\ntiers: []\nscoring:\n  \
               method: answer_confidence\n  threshold: 0.5   # old\n  \
               # weights follow\n  weights: { bias: 1.0, mean_logprob: 2.0,\n             \
               stopped: 3.0 }\non_upstream_failure: local\n";
    let text = rewrite_policy(src, &calib()).unwrap();
    let env = |_: &str| None;
    let p = sluice_policy::parse_policy(&text, Path::new("x.yaml"), &env).unwrap();
    assert_eq!(p.scoring.threshold, 0.3);
    assert_eq!(p.scoring.weights.bias, -1.5);
    assert_eq!(p.scoring.weights.terms.len(), 2);
    assert_eq!(p.name, "fitted");
    assert!(text.contains("# a comment that stays"));
    assert!(text.contains("  # weights follow"));
    assert!(text.contains("on_upstream_failure: local"));
    assert!(
        !text.contains("stopped: 3.0"),
        "the old continuation line is gone"
    );
    assert_eq!(text.lines().count() + 1, src.lines().count());
}

#[test]
fn the_shipped_policies_can_be_rewritten() {
    let src = std::fs::read_to_string(shipped_default()).unwrap();
    let text = rewrite_policy(&src, &calib()).unwrap();
    let env = |_: &str| None;
    // Parsed where the shipped file is, so the probe it names is found.
    let p = sluice_policy::parse_policy(&text, &shipped_default(), &env).unwrap();
    assert_eq!(p.scoring.threshold, 0.3);
    assert!(text.contains("# The probe is bound to the model file it was fitted on"));
}

#[test]
fn a_cascade_gets_its_probe_and_first_stage_cut_after_the_method() {
    let dir = std::env::temp_dir().join(format!("sluice-rewrite-{}", std::process::id()));
    std::fs::create_dir_all(dir.join("probes")).unwrap();
    let component = sluice_policy::ProbeComponent {
        state: 0,
        pool: sluice_policy::Pool::Last,
        bias: 0.0,
        weights: vec![1.0, -1.0],
    };
    let file = sluice_router::eval::probe_fit::probe_file(
        &"ab".repeat(32),
        vec![component],
        "test".into(),
    );
    probe::write(&dir.join("probes/p.json"), &file).unwrap();
    let src = std::fs::read_to_string(shipped_default()).unwrap();
    let mut c = calib();
    c.method = ScoringMethod::Cascade;
    c.escalate_below = Some((0.125, 0.1));
    c.probe = Some("probes/p.json".into());
    let text = rewrite_policy(&src, &c).unwrap();
    assert!(
        text.contains("  method: cascade\n  probe: probes/p.json\n  escalate_below: 0.125000"),
        "{text}"
    );
    let env = |_: &str| None;
    let p = sluice_policy::parse_policy(&text, &dir.join("p.yaml"), &env).unwrap();
    assert_eq!(p.scoring.method, ScoringMethod::Cascade);
    assert_eq!(p.scoring.escalate_below, Some(0.125));
    assert_eq!(p.scoring.probe.as_deref(), Some(&file));

    // Calibrated again, as answer_confidence: no cut; the probe line stays when no new
    // probe was fitted.
    let mut again = calib();
    again.probe = None;
    let text = rewrite_policy(&text, &again).unwrap();
    assert!(!text.contains("escalate_below"), "{text}");
    assert!(text.contains("  probe: probes/p.json\n"), "{text}");
    assert_eq!(text.matches("method:").count(), 1);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_policy_without_scoring_lines_is_refused() {
    let err = rewrite_policy("version: 1\nname: x\n", &calib()).unwrap_err();
    assert!(
        err.to_string()
            .contains("found no method, no threshold, no weights"),
        "{err}"
    );
}

#[test]
fn calibration_separates_what_it_can() {
    // right answers have high first feature
    let rows: Vec<Row> = (0..100)
        .map(|i| {
            let right = i % 4 == 0;
            let mut features: std::collections::BTreeMap<String, f64> = FEATURES
                .iter()
                .filter(|f| **f != Feature::HiddenProbe)
                .map(|f| (f.as_str().to_owned(), 0.0))
                .collect();
            features.insert(
                FEATURES[0].as_str().to_owned(),
                if right { -0.1 } else { -1.0 } + (i % 7) as f64 * 0.01,
            );
            Row {
                id: i.to_string(),
                task: "t".into(),
                right,
                confidence: 0.5,
                features,
                draft: String::new(),
                prefill_ms: 0.0,
                draft_ms: 0.0,
            }
        })
        .collect();
    let c = calibrate(
        &rows,
        ScoringMethod::AnswerConfidence,
        &[],
        Target::Escalation(0.75),
        None,
        None,
    )
    .unwrap();
    assert!(c.cv_auroc > 0.95, "{}", c.cv_auroc);
    assert!((c.escalated - 0.75).abs() < 0.02, "{}", c.escalated);
    assert!(c.weights[0].1 > 0.0);
    assert!(calibrate(
        &rows,
        ScoringMethod::AnswerConfidence,
        &[],
        Target::Escalation(1.5),
        None,
        None
    )
    .is_err());

    // The large model is right everywhere: full quality needs every wrong local answer
    // escalated (75%), half of it needs fewer; without large answers there is no target.
    let large = vec![true; rows.len()];
    let full = calibrate(
        &rows,
        ScoringMethod::AnswerConfidence,
        &[],
        Target::Quality(1.0),
        Some(&large),
        None,
    )
    .unwrap();
    assert!((full.escalated - 0.75).abs() < 0.02, "{}", full.escalated);
    let half = calibrate(
        &rows,
        ScoringMethod::AnswerConfidence,
        &[],
        Target::Quality(0.5),
        Some(&large),
        None,
    )
    .unwrap();
    assert!(half.escalated < 0.3, "{}", half.escalated);
    assert!(calibrate(
        &rows,
        ScoringMethod::AnswerConfidence,
        &[],
        Target::Quality(0.9),
        None,
        None
    )
    .is_err());

    // A pre-route method is fitted on what it computes before deciding: no draft features.
    let pre = calibrate(
        &rows,
        ScoringMethod::PromptSurprise,
        &[],
        Target::Escalation(0.5),
        None,
        None,
    )
    .unwrap();
    let names: Vec<&str> = pre.weights.iter().map(|(n, _)| *n).collect();
    assert!(
        names.contains(&"prompt_nll") && names.contains(&"turns"),
        "{names:?}"
    );
    assert!(!names.contains(&"mean_logprob") && !names.contains(&"probe_log_odds"));

    // --features draft,text: no prefill features even where the method computes them.
    let only = parse_features(&["draft".into(), "text".into()]).unwrap();
    let c = calibrate(
        &rows,
        ScoringMethod::AnswerConfidence,
        &only,
        Target::Escalation(0.5),
        None,
        None,
    )
    .unwrap();
    let names: Vec<&str> = c.weights.iter().map(|(n, _)| *n).collect();
    assert_eq!(names.len(), 11, "{names:?}");
    // Without probe values, every feature but hidden_probe; asking for it is an error.
    let all = calibrate(
        &rows,
        ScoringMethod::AnswerConfidence,
        &[],
        Target::Escalation(0.5),
        None,
        None,
    )
    .unwrap();
    assert!(all.weights.iter().all(|(n, _)| *n != "hidden_probe"));
    let e = calibrate(
        &rows,
        ScoringMethod::AnswerConfidence,
        &[Feature::HiddenProbe],
        Target::Escalation(0.5),
        None,
        None,
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("no hidden_probe values"), "{e}");
    let z: Vec<f64> = rows
        .iter()
        .map(|r| if r.right { 1.0 } else { -1.0 })
        .collect();
    let probed = calibrate(
        &rows,
        ScoringMethod::PrefillProbe,
        &[Feature::HiddenProbe],
        Target::Escalation(0.5),
        None,
        Some(&z),
    )
    .unwrap();
    assert_eq!(probed.weights.len(), 1);
    assert!(probed.weights[0].1 > 0.0 && probed.cv_auroc > 0.99);
    assert!(!names.contains(&"prompt_nll"));
    let e = calibrate(
        &rows,
        ScoringMethod::PromptSurprise,
        &only,
        Target::Escalation(0.5),
        None,
        None,
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("does not compute mean_logprob"), "{e}");
    let e = parse_features(&["vibes".into()]).unwrap_err().to_string();
    assert!(
        e.contains("found \"vibes\"") && e.contains("prompt_nll"),
        "{e}"
    );
}

#[test]
fn a_policy_written_elsewhere_still_names_its_probe() {
    let dir = std::env::temp_dir().join(format!("sluice-calibrate-out-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let out = dir.join("refit.yaml");
    let c = Calibration {
        method: ScoringMethod::PrefillProbe,
        weights: vec![("hidden_probe", 0.9)],
        ..calib()
    };
    write(&shipped_default(), &c, Some(&out), false).unwrap();
    let text = std::fs::read_to_string(&out).unwrap();
    let p = sluice_policy::load_policy_file(&out).unwrap();
    assert!(p.scoring.probe.is_some(), "{text}");
    let line = text
        .lines()
        .find(|l| l.trim_start().starts_with("probe:"))
        .unwrap();
    assert!(
        line.contains("probes/smollm2-135m-instruct-q8_0.json"),
        "{line}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
