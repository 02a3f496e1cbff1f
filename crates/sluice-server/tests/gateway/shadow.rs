//! Shadow sampling through the real gRPC path: a sampled share of the requests the score kept
//! local is asked of the first tier too, after the answer, within the policy's rate and
//! budget; never requests a rule decided or with personal data; the agreement is measured.

use super::*;
use sluice_router::eval::agree::Agreement;
use sluice_router::eval::sample::SampleRoute;

fn shadow_policy(url: &str, shadow: &str) -> String {
    policy_yaml("default", &[("large", url)], "local") + &format!("shadow: {shadow}\n")
}

/// The value of the series `name{labels}` in the Prometheus text, 0 when absent.
fn series(metrics: &str, name_and_labels: &str) -> f64 {
    metrics
        .lines()
        .find_map(|l| l.strip_prefix(name_and_labels)?.trim().parse().ok())
        .unwrap_or(0.0)
}

/// `/metrics` once `settled` holds for it (shadow calls finish off the request's path), or
/// after 10 s.
async fn metrics_when(h: &Harness, settled: impl Fn(&str) -> bool) -> String {
    let mut text = String::new();
    for _ in 0..200 {
        text = h.http_get("/metrics").await.1;
        if settled(&text) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    text
}

const SAMPLES_AGREE: &str =
    r#"sluice_shadow_samples_total{policy="default",route="local",agree="yes"}"#;
const SAMPLES_DISAGREE: &str =
    r#"sluice_shadow_samples_total{policy="default",route="local",agree="no"}"#;

#[tokio::test]
async fn kept_local_answers_are_shadowed_at_the_rate_and_their_agreement_measured() {
    let mock = MockUpstream::start(MockConfig {
        answer: "yes".into(),
        ..MockConfig::default()
    })
    .await
    .unwrap();
    let h = Harness::single(
        shadow_policy(&mock.base_url(), "{ rate: 0.5, max_per_minute: 1000 }"),
        FakeLocal::new("Yes.", SURE),
    )
    .await;
    let n = 200;
    for i in 0..n {
        let r = h
            .chat(ask(&format!("question {i}?"), pb::RouteHint::Auto, ""))
            .await;
        assert_eq!(r.route.unwrap().kind(), pb::RouteKind::Local);
        assert_eq!(
            r.message.unwrap().content,
            "Yes.",
            "the answer is the local one"
        );
    }
    let text = metrics_when(&h, |t| {
        series(t, SAMPLES_AGREE) as usize == mock.requests().len() && !mock.requests().is_empty()
    })
    .await;
    let shadowed = mock.requests().len();
    // Binomial(200, 0.5): 70..=130 is more than four standard deviations either side.
    assert!(
        (70..=130).contains(&shadowed),
        "{shadowed} of {n} shadowed at rate 0.5"
    );
    assert_eq!(series(&text, SAMPLES_AGREE) as usize, shadowed, "{text}");
    let estimate = r#"sluice_shadow_agreement{policy="default",bound="estimate"}"#;
    let lower = r#"sluice_shadow_agreement{policy="default",bound="lower"}"#;
    assert_eq!(series(&text, estimate), 1.0, "{text}");
    assert!(series(&text, lower) > 0.95, "{text}");
    // Each shadow call is (12 × 1 + 7 × 2) / 1e6 USD at the tier's prices.
    let cost = series(&text, r#"sluice_shadow_cost_usd_total{policy="default"}"#);
    assert!((cost - shadowed as f64 * 0.000026).abs() < 1e-9, "{text}");
    // The tier's answer is the shadow's only: no answer went remote.
    assert_eq!(
        series(
            &text,
            r#"sluice_requests_total{route="local",tier="",policy="default",reason="confident"}"#
        ),
        f64::from(n),
        "{text}"
    );
}

#[tokio::test]
async fn the_answer_does_not_wait_for_its_shadow_and_streams_are_shadowed_too() {
    // The tier takes a second to answer; the local answers disagree with it.
    let mock = MockUpstream::start(MockConfig {
        answer: "implausible".into(),
        behavior: MockBehavior::Latency(Duration::from_secs(1)),
        ..MockConfig::default()
    })
    .await
    .unwrap();
    let h = Harness::single(
        shadow_policy(&mock.base_url(), "{ rate: 1 }"),
        FakeLocal::new("plausible", SURE),
    )
    .await;
    let r = h
        .chat(ask("Is it plausible?", pb::RouteHint::Auto, ""))
        .await;
    assert_eq!(r.message.unwrap().content, "plausible");
    // Answered while its shadow call is still with the tier.
    let (_, now) = h.http_get("/metrics").await;
    assert_eq!(series(&now, SAMPLES_DISAGREE), 0.0, "{now}");
    let mut stream = h
        .router()
        .await
        .chat_stream(ask("Is this one plausible?", pb::RouteHint::Auto, ""))
        .await
        .unwrap()
        .into_inner();
    while stream.message().await.unwrap().is_some() {}
    let text = metrics_when(&h, |t| series(t, SAMPLES_DISAGREE) == 2.0).await;
    assert_eq!(series(&text, SAMPLES_DISAGREE), 2.0, "{text}");
    let upper = r#"sluice_shadow_agreement{policy="default",bound="upper"}"#;
    let estimate = r#"sluice_shadow_agreement{policy="default",bound="estimate"}"#;
    assert_eq!(series(&text, estimate), 0.0, "{text}");
    assert!(series(&text, upper) > 0.5, "two samples say little: {text}");
}

#[tokio::test]
async fn shadow_calls_keep_to_the_minute_and_the_daily_budget() {
    let mock = MockUpstream::start(MockConfig::default()).await.unwrap();
    let h = Harness::single(
        shadow_policy(&mock.base_url(), "{ rate: 1, max_per_minute: 3 }"),
        FakeLocal::new("Paris.", SURE),
    )
    .await;
    for i in 0..6 {
        h.chat(ask(&format!("q{i}"), pb::RouteHint::Auto, "")).await;
    }
    let skipped =
        r#"sluice_shadow_skipped_total{policy="default",route="local",reason="rate_limit"}"#;
    let text = metrics_when(&h, |t| {
        series(t, skipped) == 3.0 && mock.requests().len() == 3
    })
    .await;
    assert_eq!(
        (mock.requests().len(), series(&text, skipped)),
        (3, 3.0),
        "{text}"
    );

    // A daily budget below one call's cost: the first call is made, then none.
    let mock = MockUpstream::start(MockConfig::default()).await.unwrap();
    let h = Harness::single(
        shadow_policy(&mock.base_url(), "{ rate: 1, budget_usd_daily: 0.00002 }"),
        FakeLocal::new("Paris.", SURE),
    )
    .await;
    h.chat(ask("first", pb::RouteHint::Auto, "")).await;
    // "Paris." is found in the tier's "Paris is the capital of France.": they agree.
    let text = metrics_when(&h, |t| series(t, SAMPLES_AGREE) == 1.0).await;
    assert_eq!(series(&text, SAMPLES_AGREE), 1.0, "{text}");
    for i in 0..3 {
        h.chat(ask(&format!("later {i}"), pb::RouteHint::Auto, ""))
            .await;
    }
    let budget = r#"sluice_shadow_skipped_total{policy="default",route="local",reason="budget"}"#;
    let text = metrics_when(&h, |t| series(t, budget) == 3.0).await;
    assert_eq!(
        (mock.requests().len(), series(&text, budget)),
        (1, 3.0),
        "{text}"
    );
}

#[tokio::test]
async fn rules_personal_data_escalations_and_cache_hits_are_never_shadowed() {
    let mock = MockUpstream::start(MockConfig::default()).await.unwrap();
    let url = mock.base_url();
    let with_rule = shadow_policy(&url, "{ rate: 1 }").replace("name: default", "name: ruled")
        + "rules:\n  - { name: privacy, when: { pii: any }, action: local }\n  \
           - { name: greetings, when: { regex: \"^hello\" }, action: score }\n";
    let h = Harness::start(
        &[
            ("default.yaml", shadow_policy(&url, "{ rate: 1 }")),
            ("ruled.yaml", with_rule),
        ],
        loader_of(FakeLocal::new("Sure.", SURE)),
    )
    .await;
    let email = "Write to jane.doe@example.com about the invoice.";
    for (prompt, policy) in [
        (email, "ruled"),         // kept local by the privacy rule
        ("hello there", "ruled"), // a rule decided, even one that says score
        (email, "default"),       // no rule, but personal data: never sent out
    ] {
        let r = h.chat(ask(prompt, pb::RouteHint::Auto, policy)).await;
        assert_eq!(r.route.unwrap().kind(), pb::RouteKind::Local, "{prompt}");
    }
    // A request the caller sent on (not kept by the score) and a repeat from the cache.
    h.chat(ask("What is the capital?", pb::RouteHint::Remote, ""))
        .await;
    assert_eq!(mock.requests().len(), 1, "the escalation itself");
    let greedy = || pb::ChatRequest {
        params: Some(pb::GenerationParams {
            temperature: Some(0.0),
            ..Default::default()
        }),
        ..ask("Name a colour.", pb::RouteHint::Auto, "")
    };
    h.chat(greedy()).await;
    let cached = h.chat(greedy()).await;
    assert_eq!(cached.route.unwrap().kind(), pb::RouteKind::Cache);
    // Only the scored, kept-local "Name a colour." was shadowed, once.
    let text = metrics_when(&h, |t| series(t, SAMPLES_DISAGREE) >= 1.0).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(mock.requests().len(), 2, "{:?}", mock.requests());
    assert_eq!(series(&text, SAMPLES_DISAGREE), 1.0, "{text}");
    assert!(
        !text.contains(r#"sluice_shadow_samples_total{policy="ruled""#),
        "{text}"
    );
}

#[tokio::test]
async fn a_request_kept_local_by_a_spent_budget_is_not_sampled_its_escalated_twin_is() {
    let mock = MockUpstream::start(MockConfig::default()).await.unwrap();
    // The daily cap allows one escalation (each costs 0.000026); the second is answered
    // locally for the budget, not because the score kept it.
    let yaml = shadow_policy(&mock.base_url(), "{ rate: 1 }")
        + "budget:\n  daily_usd: 0.00002\n  on_exhausted: local\n";
    let h = Harness::single(yaml, FakeLocal::new("Paris.", UNSURE)).await;
    let first = h.chat(ask("hard one", pb::RouteHint::Auto, "")).await;
    assert_eq!(first.route.unwrap().kind(), pb::RouteKind::Remote);
    let second = h.chat(ask("hard two", pb::RouteHint::Auto, "")).await;
    assert_eq!(second.route.unwrap().kind(), pb::RouteKind::Local);
    assert_eq!(second.decision.unwrap().reason, "budget");
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        mock.requests().len(),
        1,
        "only the escalation reached the tier"
    );
    // The escalation the score decided is sampled (the local model answered it too, off
    // the path); the answer the budget kept local is not.
    let remote = r#"sluice_shadow_samples_total{policy="default",route="remote",agree="yes"}"#;
    let text = metrics_when(&h, |t| series(t, remote) == 1.0).await;
    assert_eq!(series(&text, remote), 1.0, "{text}");
    assert!(!text.contains(r#"route="local",agree"#), "{text}");
    // Its local answer was the draft scoring made: nothing was skipped for a busy model.
    assert!(!text.contains("sluice_shadow_skipped_total{"), "{text}");
}

/// The samples files under `dir`, every line parsed, oldest first.
fn samples_in(dir: &std::path::Path) -> Vec<sluice_router::eval::sample::ShadowSample> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|d| d.map(|e| e.unwrap().path()).collect())
        .unwrap_or_default();
    files.sort();
    files
        .iter()
        .flat_map(|f| {
            let text = std::fs::read_to_string(f).unwrap();
            text.lines()
                .map(|l| serde_json::from_str(l).unwrap())
                .collect::<Vec<_>>()
        })
        .collect()
}

#[tokio::test]
async fn judged_samples_of_both_routes_are_written_to_the_tenants_directory() {
    let mock = MockUpstream::start(MockConfig {
        answer: "Paris".into(),
        ..MockConfig::default()
    })
    .await
    .unwrap();
    let url = mock.base_url();
    // `strict` escalates everything the score sees; `default` keeps it.
    let strict = shadow_policy(&url, "{ rate: 1 }")
        .replace("name: default", "name: strict")
        .replace("threshold: 0.5", "threshold: 0.9999");
    let samples = temp_dir();
    let h = Harness::start_with(
        ServeConfig {
            samples: Some(sluice_server::records::RecordsConfig {
                dir: samples.clone(),
                max_tenant_bytes: 1 << 20,
            }),
            ..ServeConfig::default()
        },
        &[
            ("default.yaml", shadow_policy(&url, "{ rate: 1 }")),
            ("strict.yaml", strict),
        ],
        loader_of(FakeLocal::new("Paris.", SURE)),
    )
    .await;
    let kept = h
        .chat(ask("Capital of France?", pb::RouteHint::Auto, ""))
        .await;
    assert_eq!(kept.route.unwrap().kind(), pb::RouteKind::Local);
    let sent = h
        .chat(ask(
            "Capital of France, really?",
            pb::RouteHint::Auto,
            "strict",
        ))
        .await;
    assert_eq!(sent.route.unwrap().kind(), pb::RouteKind::Remote);
    // Personal data: neither answered twice nor written.
    h.chat(ask("Mail jane.doe@example.com", pb::RouteHint::Auto, ""))
        .await;
    let tenant_dir = samples.join("default");
    for _ in 0..200 {
        if samples_in(&tenant_dir).len() >= 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    let mut got = samples_in(&tenant_dir);
    got.sort_by_key(|s| s.route == SampleRoute::Remote);
    assert_eq!(got.len(), 2, "{got:#?}");
    let (local, remote) = (&got[0], &got[1]);
    assert_eq!(
        (local.route, local.policy.as_str(), local.tenant.as_str()),
        (SampleRoute::Local, "default", "default")
    );
    assert_eq!(
        (local.local.as_str(), local.large.as_str()),
        ("Paris.", "Paris")
    );
    assert_eq!(local.agree, Agreement::Agree);
    assert_eq!(local.messages[0].content, "Capital of France?");
    assert_eq!(local.method, "answer_confidence");
    assert!(local.confidence >= local.threshold, "{local:?}");
    assert!(local.features.contains_key("mean_logprob"), "{local:?}");
    assert!((local.large_cost_usd - 0.000026).abs() < 1e-12, "{local:?}");
    assert_eq!(local.id, kept.request_id);
    assert_eq!(
        (remote.route, remote.policy.as_str()),
        (SampleRoute::Remote, "strict")
    );
    assert_eq!(remote.id, sent.request_id);
    assert!(remote.confidence < remote.threshold, "{remote:?}");
    assert_eq!(
        (remote.local.as_str(), remote.large.as_str()),
        ("Paris.", "Paris")
    );
    assert_eq!(remote.tier, "large");
    assert_eq!(mock.requests().len(), 2, "one shadow call, one escalation");
    let _ = std::fs::remove_dir_all(&samples);
}

#[tokio::test]
async fn an_escalated_requests_local_answer_waits_for_an_idle_model_and_gives_way() {
    let mock = MockUpstream::start(MockConfig::default()).await.unwrap();
    // A pre-route method: an escalated request has no draft, so its sample needs the model.
    let yaml = shadow_policy(&mock.base_url(), "{ rate: 1 }")
        .replace("threshold: 0.5", "threshold: 1")
        .replace("method: answer_confidence", "method: prompt_surprise")
        .replace("mean_logprob: 2.5", "prompt_nll: 1.0");
    // Every piece of local work takes 600 ms, so a request can arrive while a sample runs.
    let local = FakeLocal::new("Paris.", SURE).with_delay(Duration::from_millis(600));
    let h = Harness::single(yaml, local).await;
    let remote = |r: pb::ChatResponse| r.route.unwrap().kind() == pb::RouteKind::Remote;
    assert!(remote(h.chat(ask("first", pb::RouteHint::Auto, "")).await));
    // Back to back: the model was not idle for the grace period, so `first` is not sampled.
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert!(remote(h.chat(ask("second", pb::RouteHint::Auto, "")).await));
    // Past the grace period `second`'s sample is on the model; this request takes it back.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(remote(h.chat(ask("third", pb::RouteHint::Auto, "")).await));
    let skipped = |reason: &str| {
        format!(
            r#"sluice_shadow_skipped_total{{policy="default",route="remote",reason="{reason}"}}"#
        )
    };
    let answered = r#"sluice_shadow_samples_total{policy="default",route="remote",agree="yes"}"#;
    // With nothing after it, `third`'s sample runs to the end.
    let text = metrics_when(&h, |t| series(t, answered) == 1.0).await;
    assert_eq!(
        (
            series(&text, &skipped("local_busy")),
            series(&text, &skipped("yielded")),
            series(&text, answered)
        ),
        (1.0, 1.0, 1.0),
        "{text}"
    );
}

#[tokio::test]
async fn answers_too_long_to_compare_by_rule_are_judged_by_the_tier_when_asked() {
    // The tier answers every call "Yes." (its answer, and then its verdict).
    let mock = MockUpstream::start(MockConfig {
        answer: "Yes.".into(),
        ..MockConfig::default()
    })
    .await
    .unwrap();
    let url = mock.base_url();
    let judged = shadow_policy(&url, "{ rate: 1, judge: true }");
    let unjudged = shadow_policy(&url, "{ rate: 1 }").replace("name: default", "name: unjudged");
    // Longer than eight words and without "yes": no rule can compare it with "Yes.".
    let long = "The capital of France is Paris, a large city on the river Seine.";
    let h = Harness::start(
        &[("default.yaml", judged), ("unjudged.yaml", unjudged)],
        loader_of(FakeLocal::new(long, SURE)),
    )
    .await;
    h.chat(ask("Capital of France?", pb::RouteHint::Auto, ""))
        .await;
    h.chat(ask("Capital of France?", pb::RouteHint::Auto, "unjudged"))
        .await;
    let unknown = r#"sluice_shadow_samples_total{policy="unjudged",route="local",agree="unknown"}"#;
    let text = metrics_when(&h, |t| {
        series(t, SAMPLES_AGREE) == 1.0 && series(t, unknown) == 1.0
    })
    .await;
    assert_eq!(
        (series(&text, SAMPLES_AGREE), series(&text, unknown)),
        (1.0, 1.0),
        "{text}"
    );
    // Three tier calls: two shadow answers and one judgement, paid from the shadow budget.
    let requests = mock.requests();
    assert_eq!(requests.len(), 3, "{requests:?}");
    let judge = requests
        .iter()
        .map(|r| r.body.to_string())
        .find(|b| b.contains("Answer A"))
        .expect("a judgement was asked");
    assert!(
        judge.contains(long) && judge.contains("Capital of France?"),
        "{judge}"
    );
    let cost = series(&text, r#"sluice_shadow_cost_usd_total{policy="default"}"#);
    assert!((cost - 2.0 * 0.000026).abs() < 1e-9, "{text}");
}

#[tokio::test]
async fn a_sample_whose_tier_answer_holds_personal_data_is_judged_but_not_written() {
    let mock = MockUpstream::start(MockConfig {
        answer: "Ask jane.doe@example.com".into(),
        ..MockConfig::default()
    })
    .await
    .unwrap();
    let samples = temp_dir();
    let h = Harness::start_with(
        ServeConfig {
            samples: Some(sluice_server::records::RecordsConfig {
                dir: samples.clone(),
                max_tenant_bytes: 1 << 20,
            }),
            ..ServeConfig::default()
        },
        &[(
            "default.yaml",
            shadow_policy(&mock.base_url(), "{ rate: 1 }"),
        )],
        loader_of(FakeLocal::new("Paris.", SURE)),
    )
    .await;
    h.chat(ask("Who knows the capital?", pb::RouteHint::Auto, ""))
        .await;
    let text = metrics_when(&h, |t| series(t, SAMPLES_DISAGREE) == 1.0).await;
    assert_eq!(series(&text, SAMPLES_DISAGREE), 1.0, "{text}");
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(samples_in(&samples.join("default")).is_empty());
    let _ = std::fs::remove_dir_all(&samples);
}
