//! `/metrics` after a mixed workload passes `promtool check metrics` (Debian's `prometheus`
//! package, which `scripts/test` installs); skipped, saying why, without promtool. The Grafana
//! dashboard in `deploy/grafana/` and the alerting rules in `deploy/prometheus/` query only
//! metrics that exist, in PromQL promtool accepts.

use super::*;

fn promtool() -> Option<std::path::PathBuf> {
    let found = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|d| d.join("promtool"))
            .find(|p| p.is_file())
    });
    if found.is_none() {
        eprintln!(
            "SKIPPED promtool check: promtool not found (apt-get install prometheus; \
             scripts/test installs it)"
        );
    }
    found
}

/// `/metrics` after local, remote, rule, cached, streamed, unknown-policy and bad requests, a
/// spent budget, a full local model, a reload and shadow samples: every family has a series.
async fn after_a_mixed_workload() -> String {
    let mock = MockUpstream::start(MockConfig::default()).await.unwrap();
    let yaml = policy_yaml("default", &[("large", &mock.base_url())], "local")
        .replace("max_tokens: 64 }", "max_tokens: 64, max_queue: 1 }")
        + "rules:\n  - name: privacy\n    when: { pii: any }\n    action: local\n"
        + "budget:\n  daily_usd: 0.000001\n  on_exhausted: reject\n"
        + "shadow: { rate: 1 }\n";
    let local = FakeLocal::new("a local answer", SURE).with_delay(Duration::from_millis(100));
    let h = Harness::single(yaml, local).await;
    let mut router = h.router().await;
    // Local, remote, a rule, a cached repeat, a stream, an unknown policy, a bad request.
    let greedy = |mut r: pb::ChatRequest| {
        r.params = Some(pb::GenerationParams {
            temperature: Some(0.0),
            ..Default::default()
        });
        r
    };
    h.chat(greedy(ask("hi", pb::RouteHint::Auto, ""))).await;
    h.chat(greedy(ask("hi", pb::RouteHint::Auto, ""))).await;
    h.chat(ask("hard", pb::RouteHint::Remote, "")).await;
    h.chat(ask("mail jane@example.com", pb::RouteHint::Remote, ""))
        .await;
    let mut s = router
        .chat_stream(ask("stream it", pb::RouteHint::Local, ""))
        .await
        .unwrap()
        .into_inner();
    while s.message().await.unwrap().is_some() {}
    let _ = router.chat(ask("x", pb::RouteHint::Auto, "nope")).await;
    let _ = router.chat(pb::ChatRequest::default()).await;
    // The first escalation spent the budget: this one is refused by it.
    let spent = router
        .chat(ask("hard again", pb::RouteHint::Remote, ""))
        .await;
    assert_eq!(spent.unwrap_err().code(), Code::ResourceExhausted);
    // Two at once on a local model that takes one: the other is sent on (local_busy).
    let (mut r1, mut r2) = (h.router().await, h.router().await);
    let _ = tokio::join!(
        r1.chat(ask("one", pb::RouteHint::Auto, "")),
        r2.chat(ask("two", pb::RouteHint::Auto, ""))
    );
    h.server.gateway.reload_policies("test").unwrap();

    // The shadow calls of the local answers finish off the requests' path.
    let (mut status, mut text) = h.http_get("/metrics").await;
    for _ in 0..100 {
        if text.contains("sluice_shadow_agreement{") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
        (status, text) = h.http_get("/metrics").await;
    }
    assert_eq!(status, 200);
    assert!(text.contains("sluice_requests_total{"), "{text}");
    text
}

/// A file of the repository, found at run time: a test binary cargo reuses from another
/// checkout keeps that one's path in `env!`.
fn repo_file(relative: &str) -> std::path::PathBuf {
    std::path::Path::new(
        &std::env::var("CARGO_MANIFEST_DIR")
            .unwrap_or_else(|_| env!("CARGO_MANIFEST_DIR").to_owned()),
    )
    .join("../..")
    .join(relative)
}

/// promtool's report (stdout and stderr) and whether it succeeded.
fn run_promtool(promtool: &std::path::Path, args: &[&str], stdin: &str) -> (bool, String) {
    let mut child = std::process::Command::new(promtool)
        .args(args)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let report = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), report)
}

#[tokio::test]
async fn metrics_after_a_mixed_workload_pass_promtool() {
    let Some(promtool) = promtool() else { return };
    let text = after_a_mixed_workload().await;
    let (ok, report) = run_promtool(&promtool, &["check", "metrics"], &text);
    assert!(ok, "promtool failed:\n{report}\n{text}");
    assert_eq!(report.trim(), "", "promtool reported:\n{report}");
}

#[tokio::test]
async fn the_grafana_dashboard_queries_metrics_that_exist() {
    let path = repo_file("deploy/grafana/sluice.json");
    let dashboard: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    let mut exprs = Vec::new();
    for panel in dashboard["panels"].as_array().unwrap() {
        let targets = panel["targets"].as_array().unwrap();
        assert!(!targets.is_empty(), "panel {} has no query", panel["title"]);
        for t in targets {
            exprs.push(t["expr"].as_str().unwrap().to_owned());
        }
    }
    let text = after_a_mixed_workload().await;
    let names = assert_exported(&exprs, &text, "the dashboard");
    assert!(names >= 10, "{names} metrics");
    // And promtool parses every query (Grafana's $__rate_interval as a fixed range).
    let Some(promtool) = promtool() else { return };
    let dir = std::env::temp_dir().join(format!("sluice-dashboard-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let mut rules = String::from("groups:\n  - name: dashboard\n    rules:\n");
    for (i, e) in exprs.iter().enumerate() {
        let e = e.replace("$__rate_interval", "5m");
        rules.push_str(&format!(
            "      - record: dashboard:query_{i}\n        expr: {}\n",
            serde_json::to_string(&e).unwrap()
        ));
    }
    let file = dir.join("rules.yaml");
    std::fs::write(&file, &rules).unwrap();
    let (ok, report) = run_promtool(&promtool, &["check", "rules", file.to_str().unwrap()], "");
    assert!(
        ok,
        "promtool rejected a dashboard query:\n{report}\n{rules}"
    );
}

/// Every `sluice_` metric the expressions name has a series in `text` (histograms by their
/// _bucket series); returns how many metrics they name.
fn assert_exported(exprs: &[String], text: &str, what: &str) -> usize {
    let mut names = std::collections::BTreeSet::new();
    for e in exprs {
        let mut rest = e.as_str();
        while let Some(i) = rest.find("sluice_") {
            let name: String = rest[i..]
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            rest = &rest[i + name.len()..];
            names.insert(name);
        }
    }
    for name in &names {
        let exported = text
            .lines()
            .any(|l| l.starts_with(&format!("{name}{{")) || l.starts_with(&format!("{name} ")));
        assert!(
            exported,
            "{what} queries {name}, which /metrics does not have:\n{text}"
        );
    }
    names.len()
}

#[tokio::test]
async fn the_alerting_rules_pass_promtool_and_name_metrics_that_exist() {
    let path = repo_file("deploy/prometheus/sluice-alerts.yaml");
    let rules: serde_json::Value =
        serde_norway::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    let exprs: Vec<String> = rules["groups"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|g| g["rules"].as_array().unwrap().iter())
        .map(|r| r["expr"].as_str().unwrap().to_owned())
        .collect();
    assert!(exprs.len() >= 3, "{exprs:?}");
    let text = after_a_mixed_workload().await;
    assert_exported(&exprs, &text, "an alerting rule");
    let Some(promtool) = promtool() else { return };
    let (ok, report) = run_promtool(&promtool, &["check", "rules", path.to_str().unwrap()], "");
    assert!(ok, "promtool rejected the alerting rules:\n{report}");
}

#[tokio::test]
async fn a_scraper_that_asks_for_openmetrics_gets_it() {
    let h = Harness::single(
        policy_yaml("default", &[], "local"),
        FakeLocal::new("a", SURE),
    )
    .await;
    h.chat(ask("hi", pb::RouteHint::Auto, "")).await;
    let r = reqwest::Client::new()
        .get(format!("http://{}/metrics", h.server.admin_addr))
        .header(
            "accept",
            "application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5",
        )
        .send()
        .await
        .unwrap();
    assert!(r.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("application/openmetrics-text"));
    let text = r.text().await.unwrap();
    assert!(text.ends_with("# EOF\n"), "{text}");
    assert!(text.contains("# TYPE sluice_requests counter"), "{text}");
    let (_, plain) = h.http_get("/metrics").await;
    assert!(
        plain.contains("# TYPE sluice_requests_total counter"),
        "{plain}"
    );
    assert!(!plain.contains("# EOF"));
}

#[tokio::test]
async fn the_genai_metrics_count_tier_calls_by_provider_and_configured_model() {
    let mock = MockUpstream::start(MockConfig::default()).await.unwrap();
    let h = Harness::single(
        policy_yaml("default", &[("large", &mock.base_url())], "local"),
        FakeLocal::new("a local answer", SURE),
    )
    .await;
    let mut router = h.router().await;
    h.chat(ask("one", pb::RouteHint::Remote, "")).await;
    h.chat(ask("two", pb::RouteHint::Remote, "")).await;
    let mut s = router
        .chat_stream(ask("three", pb::RouteHint::Remote, ""))
        .await
        .unwrap()
        .into_inner();
    while s.message().await.unwrap().is_some() {}
    // A local answer is no tier call.
    h.chat(ask("hi", pb::RouteHint::Local, "")).await;

    let (_, text) = h.http_get("/metrics").await;
    let value = |series: &str| -> f64 {
        text.lines()
            .find_map(|l| l.strip_prefix(series)?.trim().parse().ok())
            .unwrap_or_else(|| panic!("no {series} in\n{text}"))
    };
    let call =
        r#"gen_ai_operation_name="chat",gen_ai_provider_name="openai",gen_ai_request_model="big""#;
    // Three calls to the tier, each observed once; the model is the policy's, not the name
    // the tier answered with ("mock-large"), so the label stays bounded.
    assert_eq!(
        value(&format!(
            "gen_ai_client_operation_duration_seconds_count{{{call},error_type=\"\"}}"
        )),
        3.0
    );
    assert!(!text.contains("mock-large"), "{text}");
    // The mock reports 12 input and 7 output tokens per call.
    for (kind, sum) in [("input", 36.0), ("output", 21.0)] {
        let labels = format!("{call},gen_ai_token_type=\"{kind}\"");
        assert_eq!(
            value(&format!("gen_ai_client_token_usage_sum{{{labels}}}")),
            sum
        );
        assert_eq!(
            value(&format!("gen_ai_client_token_usage_count{{{labels}}}")),
            3.0
        );
    }
}
