//! `sluice eval` and `sluice calibrate` end to end: the real binary and model over the shipped
//! sample, the large answers from an in-process OpenAI-compatible mock tier.

use std::path::{Path, PathBuf};
use std::process::Output;

use sluice_test_support::{MockConfig, MockUpstream};

use crate::support::{copy_shipped_policy, model_path, sluice, temp_dir};

const SAMPLE: &str = "tests/data/routing-sample.jsonl";

fn run(args: &[&str]) -> Output {
    let out = sluice()
        .args(args)
        .env("SLUICE_MODEL", model_path())
        .env("SLUICE_LARGE_API_KEY", "test-key")
        .output()
        .expect("sluice runs");
    eprintln!(
        "sluice {}\n--- stdout\n{}--- stderr\n{}",
        args.join(" "),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn ok(args: &[&str]) -> String {
    let out = run(args);
    assert!(out.status.success(), "sluice {} failed", args.join(" "));
    String::from_utf8(out.stdout).unwrap()
}

fn failure(args: &[&str]) -> String {
    let out = run(args);
    assert!(!out.status.success(), "sluice {} succeeded", args.join(" "));
    String::from_utf8(out.stderr).unwrap()
}

fn policy(dir: &Path, base_url: &str) -> PathBuf {
    let p = copy_shipped_policy("default", dir, "eval-policy.yaml");
    let src = std::fs::read_to_string(&p).unwrap();
    std::fs::write(
        &p,
        src.replace("${SLUICE_LARGE_URL:-http://127.0.0.1:8080}", base_url),
    )
    .unwrap();
    p
}

/// `v` without the measured times (keys `*_ms` and `*_ms_*`), which differ from run to run.
fn without_times(v: serde_json::Value) -> serde_json::Value {
    use serde_json::Value;
    match v {
        Value::Object(m) => Value::Object(
            m.into_iter()
                .filter(|(k, _)| !(k.ends_with("_ms") || k.contains("_ms_")))
                .map(|(k, v)| (k, without_times(v)))
                .collect(),
        ),
        Value::Array(a) => Value::Array(a.into_iter().map(without_times).collect()),
        other => other,
    }
}

/// `VERB --data SAMPLE --policy POLICY` and the rest.
fn argv<'a>(verb: &'a str, policy: &'a str, rest: &[&'a str]) -> Vec<&'a str> {
    let mut v = vec![verb, "--data", SAMPLE, "--policy", policy];
    v.extend_from_slice(rest);
    v
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn eval_reports_routing_and_repeats_exactly_and_calibrate_writes_a_valid_policy() {
    // Grading the mock's one answer: right on items 1, 5, 8, 10 and 12 of the sample.
    let mock = MockUpstream::start(MockConfig {
        answer: "Paris. yes. implausible. 4".into(),
        prompt_tokens: 20,
        completion_tokens: 10,
        ..MockConfig::default()
    })
    .await
    .unwrap();
    let dir = temp_dir("eval");
    let policy = policy(&dir, &mock.base_url());
    let path = |name: &str| dir.join(name).to_str().unwrap().to_owned();
    let (large, rows) = (path("large.jsonl"), path("rows.jsonl"));
    let (r1, r2, r3) = (path("r1.json"), path("r2.json"), path("r3.json"));
    let (p1, p2) = (path("p1.svg"), path("p2.svg"));
    let (calibrated, short) = (path("calibrated.yaml"), path("short.jsonl"));
    let base = argv("eval", s(&policy), &["--max-tokens", "12"]);

    let mut first = base.to_vec();
    first.extend([
        "--save-large",
        &large,
        "--out",
        &rows,
        "--report",
        &r1,
        "--plot",
        &p1,
    ]);
    let table = ok(&first);
    assert_eq!(mock.requests().len(), 12, "one large call per item");
    for needle in [
        "items 12",
        "APGR",
        "local@95%",
        "length-only",
        "random",
        "policy threshold",
    ] {
        assert!(table.contains(needle), "{needle:?} missing from\n{table}");
    }
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&r1).unwrap()).unwrap();
    assert_eq!(report["items"], 12);
    let summary = &report["large"];
    assert!(
        (summary["accuracy"].as_f64().unwrap() - 5.0 / 12.0).abs() < 1e-9,
        "{summary}"
    );
    // 12 calls of 20 + 10 tokens at 0.15 / 0.60 USD per million
    let cost = 12.0 * (20.0 * 0.15 + 10.0 * 0.60) / 1e6;
    assert!(
        (summary["cost_usd"].as_f64().unwrap() - cost).abs() < 1e-12,
        "{summary}"
    );
    // The kept-local answers judged against the large ones, as shadow sampling judges them:
    // every request the threshold keeps local is counted, each judged once at most.
    let kept = &report["routing"]["kept_local_agreement"];
    let escalated = report["routing"]["at_threshold"]["share_escalated"]
        .as_f64()
        .unwrap();
    let kept_n = kept["kept"].as_u64().unwrap();
    assert_eq!(kept_n, (12.0 * (1.0 - escalated)).round() as u64, "{kept}");
    let judged = kept["agree"].as_u64().unwrap() + kept["disagree"].as_u64().unwrap();
    assert!(judged <= kept_n, "{kept}");
    assert_eq!(kept["estimate"].is_null(), judged == 0, "{kept}");
    let routers = report["routing"]["routers"].as_array().unwrap();
    let random = routers.iter().find(|r| r["router"] == "random").unwrap();
    let apgr = random["apgr"].as_f64();
    // local is right on some items; where large is better, a random router recovers half.
    if let Some(a) = apgr {
        assert!((a - 0.5).abs() < 1e-9, "random APGR {a}");
    }
    let svg = std::fs::read_to_string(&p1).unwrap();
    assert!(
        svg.starts_with("<svg") && svg.contains("<polyline"),
        "{svg}"
    );

    // The same run with the model again but the saved large answers: no calls, and the same
    // report (but for the measured times) and plot byte for byte: the model's drafts
    // repeat exactly, whatever else loads the machine.
    let mut second = base.to_vec();
    second.extend(["--large", &large, "--report", &r2, "--plot", &p2]);
    let table2 = ok(&second);
    assert!(table2.contains("items 12"), "{table2}");
    assert_eq!(mock.requests().len(), 12, "saved answers call nothing");
    let read = |p: &str| std::fs::read_to_string(p).unwrap();
    let untimed = |p: &str| without_times(serde_json::from_str(&read(p)).unwrap());
    assert!(untimed(&r1) == untimed(&r2), "reports differ: {r1} {r2}");
    assert!(read(&p1) == read(&p2), "plots differ: {p1} {p2}");
    let _ = (&table, &svg);

    // Saved drafts and answers: the same report without running the model.
    let third = argv(
        "eval",
        s(&policy),
        &["--rows", &rows, "--large", &large, "--report", &r3],
    );
    ok(&third);
    assert!(read(&r1) == read(&r3), "reports differ: {r1} {r3}");

    // Calibrate for a quality target and check the written policy validates and differs.
    let calibrate = argv(
        "calibrate",
        s(&policy),
        &[
            "--rows",
            &rows,
            "--large",
            &large,
            "--target-quality",
            "0.9",
            "--out",
            &calibrated,
        ],
    );
    ok(&calibrate);
    let text = std::fs::read_to_string(&calibrated).unwrap();
    assert!(text.contains("# set by sluice calibrate"), "{text}");
    ok(&["policy", "check", &calibrated]);

    // Mistakes are named before any work.
    let e = failure(&argv("eval", s(&policy), &["--plot", "x.svg"]));
    assert!(e.contains("--plot needs the large model's answers"), "{e}");
    let e = failure(&argv(
        "eval",
        s(&policy),
        &["--save-large", "x", "--large-tier", "huge"],
    ));
    assert!(
        e.contains("no tier \"huge\"") && e.contains("its tiers: large"),
        "{e}"
    );
    std::fs::write(&short, "").unwrap();
    let e = failure(&argv(
        "eval",
        s(&policy),
        &["--rows", &rows, "--large", &short],
    ));
    assert!(
        e.contains("nothing for 12 of the 12 items (first: s-01"),
        "{e}"
    );
    let e = failure(&argv(
        "calibrate",
        s(&policy),
        &["--rows", &rows, "--target-quality", "0.9"],
    ));
    assert!(
        e.contains("--target-quality needs the large model's answers"),
        "{e}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
