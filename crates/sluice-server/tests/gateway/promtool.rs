//! `/metrics` after a mixed workload passes `promtool check metrics` (Debian's `prometheus`
//! package, which `scripts/test` installs); skipped, saying why, without promtool.

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

#[tokio::test]
async fn metrics_after_a_mixed_workload_pass_promtool() {
    let Some(promtool) = promtool() else { return };
    let mock = MockUpstream::start(MockConfig::default()).await.unwrap();
    let yaml = policy_yaml("default", &[("large", &mock.base_url())], "local")
        + "rules:\n  - name: privacy\n    when: { pii: any }\n    action: local\n";
    let h = Harness::single(yaml, FakeLocal::new("a local answer", SURE)).await;
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

    let (status, text) = h.http_get("/metrics").await;
    assert_eq!(status, 200);
    assert!(text.contains("sluice_requests_total{"), "{text}");
    let mut child = std::process::Command::new(promtool)
        .args(["check", "metrics"])
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
        .write_all(text.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let report = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "promtool failed:\n{report}\n{text}");
    assert_eq!(report.trim(), "", "promtool reported:\n{report}");
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
