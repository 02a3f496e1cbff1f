//! Reading shadow samples as rows, and refitting a policy on them.

use std::collections::BTreeMap;

use sluice_policy::{Message, Role};

use super::*;
use crate::calibrate::Target;
use crate::cli::{DraftRun, LargeArgs};
use crate::eval::data::tests::file;
use crate::eval::run::{calibrate, CalibrateArgs};
use sluice_router::eval::agree::Agreement;

const POLICY: &str = "version: 1\nname: live\nlocal: { model: m, max_tokens: 32 }\n\
    tiers:\n  - { name: large, provider: openai, base_url: \"http://127.0.0.1:9\", model: big, \
    price: { input_per_mtok: 1.0, output_per_mtok: 2.0 }, timeout: 5s }\n\
    scoring:\n  method: answer_confidence\n  threshold: 0.5\n  \
    weights: { bias: 3.0, mean_logprob: 2.5 }\non_upstream_failure: local\n";

/// A sample of policy `live` whose draft had mean log-probability `x`.
fn sample(i: usize, x: f64, agree: Agreement) -> ShadowSample {
    let confidence = 1.0 / (1.0 + (-(3.0 + 2.5 * x)).exp());
    ShadowSample {
        id: format!("r{i}"),
        unix_ms: 1_796_558_400_000,
        tenant: "acme".into(),
        policy: "live".into(),
        task: String::new(),
        route: if confidence >= 0.5 {
            SampleRoute::Local
        } else {
            SampleRoute::Remote
        },
        method: "answer_confidence".into(),
        confidence,
        threshold: 0.5,
        features: BTreeMap::from([("mean_logprob".to_owned(), x), ("turns".to_owned(), 1.0)]),
        messages: vec![Message::new(Role::User, format!("question {i}"))],
        local: "yes".into(),
        large: if agree == Agreement::Agree {
            "yes"
        } else {
            "no"
        }
        .into(),
        tier: "large".into(),
        large_model: "big".into(),
        prompt_tokens: 10,
        completion_tokens: 2,
        large_cost_usd: 0.000014,
        agree,
    }
}

fn lines(samples: &[ShadowSample]) -> String {
    samples
        .iter()
        .map(|s| serde_json::to_string(s).unwrap() + "\n")
        .collect()
}

fn policy(text: &str) -> Policy {
    sluice_policy::parse_policy(text, Path::new("live.yaml"), &|_| None).unwrap()
}

#[test]
fn judged_samples_of_the_policy_become_rows_labelled_by_agreement() {
    let mut other = sample(3, -0.1, Agreement::Agree);
    other.policy = "another".into();
    let mut tagged = sample(4, -2.0, Agreement::Disagree);
    tagged.task = "billing".into();
    let all = [
        sample(1, -0.1, Agreement::Agree),
        sample(2, -0.2, Agreement::Unknown),
        other,
        tagged,
        sample(1, -0.1, Agreement::Agree),
    ];
    let f = file(&lines(&all));
    let t = read_samples(f.path(), &policy(POLICY)).unwrap();
    let ids: Vec<&str> = t.rows.iter().map(|r| r.id.as_str()).collect();
    assert_eq!(ids, ["r1", "r4"]);
    assert_eq!(
        (t.other_policy, t.unknown, t.repeated, t.routes),
        (1, 1, 1, (1, 1))
    );
    assert!(t.rows[0].right && !t.rows[1].right);
    assert_eq!(
        (t.rows[0].task.as_str(), t.rows[1].task.as_str()),
        (UNTAGGED, "billing")
    );
    // The confidence is the policy's as written, recomputed from the features.
    assert!((t.rows[0].confidence - all[0].confidence).abs() < 1e-12);
    assert_eq!(t.answers[1].text, "no");
    assert_eq!(t.prompts[0].messages[0].content, "question 1");
}

#[test]
fn bad_samples_are_refused_with_the_file_and_line() {
    let mut bad = serde_json::to_value(sample(1, -0.1, Agreement::Agree)).unwrap();
    bad["agree"] = "maybe".into();
    let text = lines(&[sample(0, 0.0, Agreement::Agree)]) + &bad.to_string() + "\n";
    let f = file(&text);
    let e = format!("{:#}", read_samples(f.path(), &policy(POLICY)).unwrap_err());
    assert!(
        e.contains("line 2") && e.contains("`maybe`") && e.contains("`yes`, `no`, `unknown`"),
        "{e}"
    );

    let f = file("{\"id\":\"x\"}\n");
    let e = format!("{:#}", read_samples(f.path(), &policy(POLICY)).unwrap_err());
    assert!(
        e.contains("line 1") && e.contains("expected a shadow sample"),
        "{e}"
    );

    let mut elsewhere = sample(0, 0.0, Agreement::Agree);
    elsewhere.policy = "another".into();
    let f = file(&lines(&[elsewhere]));
    let e = read_samples(f.path(), &policy(POLICY))
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("no judged samples of policy \"live\"") && e.contains("1 of other"),
        "{e}"
    );
}

/// Traffic where the policy keeps too much: drafts with mean log-probability in [-1.2, -0.6)
/// are kept (confidence ≥ 0.5) but disagree with the tier. Refitted for 95% agreement, the
/// policy keeps fewer, and the estimate says so before anything is written.
#[test]
fn a_refit_on_traffic_that_disagrees_keeps_fewer_local() {
    let dir = std::env::temp_dir().join(format!("sluice-traffic-{}", std::process::id()));
    let tenant = dir.join("acme");
    std::fs::create_dir_all(&tenant).unwrap();
    let samples: Vec<ShadowSample> = (0..200)
        .map(|i| {
            let x = -3.0 + 3.0 * (i as f64 + 0.5) / 200.0;
            let agree = if x >= -0.6 {
                Agreement::Agree
            } else {
                Agreement::Disagree
            };
            sample(i, x, agree)
        })
        .collect();
    // Two days' files, read in name order.
    std::fs::write(tenant.join("2026-12-05.0000.jsonl"), lines(&samples[..120])).unwrap();
    std::fs::write(tenant.join("2026-12-06.0000.jsonl"), lines(&samples[120..])).unwrap();
    let policy_file = dir.join("live.yaml");
    std::fs::write(&policy_file, POLICY).unwrap();
    let out = dir.join("refit.yaml");
    let run = DraftRun {
        data: None,
        policy: policy_file,
        model: dir.join("no-model.gguf"),
        limit: None,
        max_tokens: None,
        rows: Some(dir.clone()),
    };
    let large = LargeArgs {
        large: None,
        save_large: None,
        large_tier: None,
        large_max_tokens: 64,
    };
    let features = [sluice_policy::Feature::MeanLogprob];
    calibrate(
        &run,
        &large,
        CalibrateArgs {
            target: Target::Quality(0.95),
            features: &features,
            method: None,
            fit_probe: None,
            out: Some(&out),
            write_in_place: false,
        },
    )
    .unwrap();
    let before = policy(POLICY);
    let after = policy(&std::fs::read_to_string(&out).unwrap());
    let t = read_samples(&dir, &before).unwrap();
    let kept = |p: &Policy| {
        t.rows
            .iter()
            .filter(|r| {
                sluice_router::confidence(&p.scoring.weights, &r.feature_values())
                    >= p.scoring.threshold
            })
            .count()
    };
    let right_of = |p: &Policy| {
        t.rows
            .iter()
            .filter(|r| {
                sluice_router::confidence(&p.scoring.weights, &r.feature_values())
                    < p.scoring.threshold
                    || r.right
            })
            .count()
    };
    assert_eq!(kept(&before), 80, "x ≥ -1.2 is kept as written");
    assert_eq!(right_of(&before), 160, "40 kept answers disagree");
    assert!(kept(&after) < kept(&before), "{} kept", kept(&after));
    assert!(
        right_of(&after) as f64 >= 0.95 * 200.0,
        "{} of 200 agree or escalate",
        right_of(&after)
    );
    assert!(
        kept(&after) >= 40,
        "the 40 agreeing rows stay local: {}",
        kept(&after)
    );
    let _ = std::fs::remove_dir_all(&dir);
}
