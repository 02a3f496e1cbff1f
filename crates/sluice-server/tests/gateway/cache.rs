//! The response and score caches through the real gRPC path: tenant isolation, what is
//! cacheable, opting out, streaming a cached answer, reusing drafts.

use std::collections::HashMap;

use sluice_policy::parse_tenants;
use sluice_server::auth::Auth;

use super::*;

const TENANTS: &str = "version: 1\ntenants:\n  - { name: acme, api_key_env: ACME_KEY }\n  \
                       - { name: beta, api_key_env: BETA_KEY }\n  - { name: gamma, api_key_env: GAMMA_KEY }\n";

fn auth() -> Auth {
    let env = |v: &str| match v {
        "ACME_KEY" => Some("key-acme".to_string()),
        "BETA_KEY" => Some("key-beta".to_string()),
        "GAMMA_KEY" => Some("key-gamma".to_string()),
        _ => None,
    };
    Auth::new(Some(
        parse_tenants(TENANTS, std::path::Path::new("tenants.yaml"), &env).unwrap(),
    ))
}

fn as_tenant(key: &str, mut req: pb::ChatRequest) -> tonic::Request<pb::ChatRequest> {
    if req.params.is_none() {
        req.params = Some(pb::GenerationParams {
            temperature: Some(0.0),
            ..Default::default()
        });
    }
    let mut r = tonic::Request::new(req);
    r.metadata_mut()
        .insert("authorization", format!("Bearer {key}").parse().unwrap());
    r
}

/// The route a tenant's request took.
async fn route_as(h: &Harness, key: &str, req: pb::ChatRequest) -> pb::RouteKind {
    h.router()
        .await
        .chat(as_tenant(key, req))
        .await
        .unwrap()
        .into_inner()
        .route
        .unwrap()
        .kind()
}

async fn cached_gateway(mock: &MockUpstream, local: FakeLocal, mode: &str) -> Harness {
    let yaml = policy_yaml("default", &[("large", &mock.base_url())], "local")
        + &format!("cache: {{ mode: {mode}, ttl: 1m, max_bytes: 1MiB }}\n");
    Harness::start_with(
        ServeConfig {
            auth: auth(),
            ..ServeConfig::default()
        },
        &[("default.yaml", yaml)],
        loader_of(local),
    )
    .await
}

#[tokio::test]
async fn cache_hits_never_cross_tenants() {
    let mock = MockUpstream::start(MockConfig::default()).await.unwrap();
    let h = cached_gateway(&mock, FakeLocal::new("x", UNSURE), "deterministic").await;
    let mut router = h.router().await;
    // every tier answer is unique, so any answer served to the wrong tenant would show
    let mut first: HashMap<(&str, usize), String> = HashMap::new();
    let mut served_by_tier = 0;
    for i in 0..150usize {
        let tenant = ["acme", "beta", "gamma"][(i * 7) % 3];
        let prompt = (i * 13) % 5;
        mock.set_config(MockConfig {
            answer: format!("answer #{i} for {tenant}"),
            ..MockConfig::default()
        });
        let resp = router
            .chat(as_tenant(
                &format!("key-{tenant}"),
                ask(&format!("question {prompt}"), pb::RouteHint::Remote, ""),
            ))
            .await
            .unwrap()
            .into_inner();
        let text = resp.message.unwrap().content;
        let route = resp.route.unwrap();
        match first.get(&(tenant, prompt)) {
            None => {
                assert_eq!(
                    route.kind(),
                    pb::RouteKind::Remote,
                    "first ask of {tenant}/{prompt}"
                );
                assert!(
                    text.ends_with(&format!("for {tenant}")),
                    "{tenant} got {text:?}"
                );
                first.insert((tenant, prompt), text);
                served_by_tier += 1;
            }
            Some(original) => {
                assert_eq!(
                    route.kind(),
                    pb::RouteKind::Cache,
                    "repeat of {tenant}/{prompt}"
                );
                assert_eq!(&text, original, "{tenant} got another answer");
                assert_eq!(route.tier, "large");
                let usage = resp.usage.unwrap();
                assert_eq!(usage.cost_usd, 0.0);
                assert!(usage.cost_avoided_usd > 0.0);
            }
        }
    }
    assert_eq!(
        served_by_tier, 15,
        "3 tenants × 5 prompts reach the tier once each"
    );
    assert_eq!(mock.requests().len(), 15);
    let (_, text) = h.http_get("/metrics").await;
    assert!(
        text.contains(r#"sluice_cache_lookups_total{result="hit_local"} 135"#),
        "{text}"
    );
    assert!(
        text.contains(r#"sluice_cache_lookups_total{result="miss"} 15"#),
        "{text}"
    );
}

#[tokio::test]
async fn calls_without_a_known_key_are_refused() {
    let mock = MockUpstream::start(MockConfig::default()).await.unwrap();
    let h = cached_gateway(&mock, FakeLocal::new("x", SURE), "deterministic").await;
    let mut router = h.router().await;
    let err = router
        .chat(ask("hi", pb::RouteHint::Auto, ""))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::Unauthenticated);
    assert!(
        err.message().contains("authorization: Bearer"),
        "{}",
        err.message()
    );
    let err = router
        .chat(as_tenant("key-nobody", ask("hi", pb::RouteHint::Auto, "")))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::Unauthenticated);
    assert!(!err.message().contains("key-nobody"), "never echo keys");
    let ok = router
        .chat(as_tenant("key-beta", ask("hi", pb::RouteHint::Auto, "")))
        .await;
    assert!(ok.is_ok());
}

#[tokio::test]
async fn only_deterministic_requests_are_cached_and_callers_can_opt_out() {
    let mock = MockUpstream::start(MockConfig::default()).await.unwrap();
    let h = cached_gateway(&mock, FakeLocal::new("x", UNSURE), "deterministic").await;
    let mut router = h.router().await;
    let mut kind_of = async |req: pb::ChatRequest| {
        router
            .chat(as_tenant("key-acme", req))
            .await
            .unwrap()
            .into_inner()
            .route
            .unwrap()
            .kind()
    };
    // sampled (no temperature given): never cached
    let mut sampled = ask("sampled", pb::RouteHint::Remote, "");
    sampled.params = Some(pb::GenerationParams::default());
    assert_eq!(kind_of(sampled.clone()).await, pb::RouteKind::Remote);
    assert_eq!(kind_of(sampled).await, pb::RouteKind::Remote);
    // temperature 0: the repeat is a hit
    let q = ask("deterministic", pb::RouteHint::Remote, "");
    assert_eq!(kind_of(q.clone()).await, pb::RouteKind::Remote);
    assert_eq!(kind_of(q.clone()).await, pb::RouteKind::Cache);
    // no-cache: asks the tier although an answer is kept
    let mut fresh = q.clone();
    fresh.cache_control = "no-cache".into();
    assert_eq!(kind_of(fresh).await, pb::RouteKind::Remote);
    // no-store: the answer is not kept
    let mut secret = ask("not to be kept", pb::RouteHint::Remote, "");
    secret.cache_control = "no-store".into();
    assert_eq!(kind_of(secret.clone()).await, pb::RouteKind::Remote);
    secret.cache_control.clear();
    assert_eq!(kind_of(secret).await, pb::RouteKind::Remote);
    // the route hint is part of the key: a local answer is not a remote one
    let local = ask("deterministic", pb::RouteHint::Local, "");
    assert_eq!(kind_of(local).await, pb::RouteKind::Local);
}

#[tokio::test]
async fn mode_always_caches_sampled_requests_too() {
    let mock = MockUpstream::start(MockConfig::default()).await.unwrap();
    let h = cached_gateway(&mock, FakeLocal::new("x", UNSURE), "always").await;
    let mut router = h.router().await;
    let mut q = ask("sampled", pb::RouteHint::Remote, "");
    q.params = Some(pb::GenerationParams {
        temperature: Some(0.7),
        ..Default::default()
    });
    for want in [pb::RouteKind::Remote, pb::RouteKind::Cache] {
        let r = router
            .chat(as_tenant("key-acme", q.clone()))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(r.route.unwrap().kind(), want);
    }
}

#[tokio::test]
async fn a_cached_answer_is_streamed() {
    let mock = MockUpstream::start(MockConfig::default()).await.unwrap();
    let h = cached_gateway(&mock, FakeLocal::new("x", UNSURE), "deterministic").await;
    let mut router = h.router().await;
    let q = ask("stream me", pb::RouteHint::Remote, "");
    // the first answer arrives as a stream and is kept; the repeat streams from the cache
    for want in [pb::RouteKind::Remote, pb::RouteKind::Cache] {
        let mut s = router
            .chat_stream(as_tenant("key-acme", q.clone()))
            .await
            .unwrap()
            .into_inner();
        let mut chunks = Vec::new();
        while let Some(c) = s.message().await.unwrap() {
            chunks.push(c);
        }
        let text: String = chunks.iter().map(|c| c.delta.as_str()).collect();
        assert_eq!(text, "Paris is the capital of France.");
        assert!(chunks.len() > 3, "{want:?}: {} chunks", chunks.len());
        assert_eq!(chunks.last().unwrap().route.as_ref().unwrap().kind(), want);
    }
    // and a Chat of the same request is a hit too
    let r = router
        .chat(as_tenant("key-acme", q))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(r.route.unwrap().kind(), pb::RouteKind::Cache);
    assert_eq!(mock.requests().len(), 1);
}

#[tokio::test]
async fn an_identical_prompt_reuses_its_draft_for_scoring() {
    let mock = MockUpstream::start(MockConfig::default()).await.unwrap();
    let local = FakeLocal::new("unsure draft", UNSURE);
    let h = cached_gateway(&mock, local.clone(), "deterministic").await;
    let mut router = h.router().await;
    let mut q = ask("score me", pb::RouteHint::Auto, "");
    q.params = Some(pb::GenerationParams::default()); // sampled: no response cache
    let mut confidences = Vec::new();
    for _ in 0..3 {
        let r = router
            .chat(as_tenant("key-acme", q.clone()))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(r.route.unwrap().kind(), pb::RouteKind::Remote);
        confidences.push(r.decision.unwrap().confidence.unwrap());
    }
    assert_eq!(local.calls(), 1, "the draft was made once");
    assert!(confidences.windows(2).all(|w| w[0] == w[1]));
    // another tenant gets its own draft
    router.chat(as_tenant("key-beta", q)).await.unwrap();
    assert_eq!(local.calls(), 2);
    let (_, text) = h.http_get("/metrics").await;
    assert!(
        text.contains(r#"sluice_cache_lookups_total{result="score_hit"} 2"#),
        "{text}"
    );
}

#[tokio::test]
async fn replicas_share_answers_through_redis_and_survive_it_going_away() {
    let Some(redis) = sluice_test_support::RedisServer::start(&[]) else {
        return; // said why
    };
    let mock = MockUpstream::start(MockConfig::default()).await.unwrap();
    let replica = || async {
        let yaml = policy_yaml("default", &[("large", &mock.base_url())], "local")
            + "cache: { mode: deterministic, ttl: 1m, max_bytes: 1MiB }\n";
        Harness::start_with(
            ServeConfig {
                auth: auth(),
                redis_url: Some(redis.url()),
                ..ServeConfig::default()
            },
            &[("default.yaml", yaml)],
            loader_of(FakeLocal::new("x", UNSURE)),
        )
        .await
    };
    let (a, b) = (replica().await, replica().await);
    let q = ask("shared question", pb::RouteHint::Remote, "");
    assert_eq!(
        route_as(&a, "key-acme", q.clone()).await,
        pb::RouteKind::Remote
    );
    // the other replica has it from Redis
    assert_eq!(
        route_as(&b, "key-acme", q.clone()).await,
        pb::RouteKind::Cache
    );
    // but never for another tenant
    assert_eq!(
        route_as(&b, "key-beta", q.clone()).await,
        pb::RouteKind::Remote
    );
    let (_, text) = b.http_get("/metrics").await;
    assert!(
        text.contains(r#"sluice_cache_lookups_total{result="hit_remote"} 1"#),
        "{text}"
    );

    // Redis goes away: both replicas keep answering, from memory or the tier
    drop(redis);
    for h in [&a, &b] {
        assert_eq!(
            route_as(h, "key-acme", q.clone()).await,
            pb::RouteKind::Cache
        );
        let fresh = ask("a new question", pb::RouteHint::Remote, "");
        let started = std::time::Instant::now();
        let r = h
            .router()
            .await
            .chat(as_tenant("key-gamma", fresh))
            .await
            .unwrap();
        assert_eq!(r.into_inner().route.unwrap().kind(), pb::RouteKind::Remote);
        assert!(started.elapsed() < Duration::from_secs(2));
    }
    let (_, text) = b.http_get("/metrics").await;
    let errors = text
        .lines()
        .find(|l| l.starts_with("sluice_cache_remote_errors_total "))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse::<f64>().ok())
        .unwrap_or(0.0);
    assert!(errors >= 1.0, "{text}");
}
