//! Tenants held to their policies, and the Admin service held to admin keys, through the
//! real gRPC path; `/metrics` label values bounded whatever callers name.

use sluice_policy::parse_tenants;
use sluice_server::auth::Auth;

use super::*;

/// acme may use only `private` (whose rule keeps personal data local); beta lists both;
/// gamma lists nothing and gets the set's default; ops is the admin.
const TENANTS: &str = "version: 1\ntenants:\n  \
    - { name: acme, api_key_env: ACME_KEY, policy: private }\n  \
    - { name: beta, api_key_env: BETA_KEY, policies: [default, private] }\n  \
    - { name: gamma, api_key_env: GAMMA_KEY }\n\
    admins:\n  - { name: ops, api_key_env: OPS_KEY }\n";

fn tenants(src: &str) -> Auth {
    let env = |v: &str| match v {
        "ACME_KEY" => Some("key-acme".to_string()),
        "BETA_KEY" => Some("key-beta".to_string()),
        "GAMMA_KEY" => Some("key-gamma".to_string()),
        "OPS_KEY" => Some("key-ops".to_string()),
        _ => None,
    };
    Auth::new(Some(
        parse_tenants(src, std::path::Path::new("tenants.yaml"), &env).unwrap(),
    ))
}

fn with_key<T>(key: &str, msg: T) -> tonic::Request<T> {
    let mut r = tonic::Request::new(msg);
    r.metadata_mut()
        .insert("authorization", format!("Bearer {key}").parse().unwrap());
    r
}

/// `default` escalates everything to the mock; `private` keeps personal data local.
async fn harness(auth: Auth) -> (Harness, MockUpstream) {
    let mock = MockUpstream::start(MockConfig::default()).await.unwrap();
    let tiers = [("large", mock.base_url())];
    let tiers: Vec<(&str, &str)> = tiers.iter().map(|(n, u)| (*n, u.as_str())).collect();
    let private = policy_yaml("private", &tiers, "local")
        + "rules:\n  - name: privacy\n    when: { pii: any }\n    action: local\n";
    let h = Harness::start_with(
        ServeConfig {
            auth,
            ..ServeConfig::default()
        },
        &[
            ("default.yaml", policy_yaml("default", &tiers, "local")),
            ("private.yaml", private),
        ],
        loader_of(FakeLocal::new("a local answer", UNSURE)),
    )
    .await;
    (h, mock)
}

const CARD: &str = "Charge card 4111 1111 1111 1111 for the order";

#[tokio::test]
async fn a_tenant_cannot_leave_its_policy_to_send_personal_data_out() {
    let (h, mock) = harness(tenants(TENANTS)).await;
    let mut router = h.router().await;
    // Its own policy: the card number stays local whatever the hint.
    let own = router
        .chat(with_key("key-acme", ask(CARD, pb::RouteHint::Remote, "")))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(own.route.unwrap().kind(), pb::RouteKind::Local);
    // Naming another policy to escape the rule is refused, naming tenant and policy.
    for policy in ["default", "no-such-policy"] {
        let err = router
            .chat(with_key(
                "key-acme",
                ask(CARD, pb::RouteHint::Remote, policy),
            ))
            .await
            .unwrap_err();
        assert_eq!(err.code(), Code::PermissionDenied, "{policy}: {err:?}");
        assert_eq!(
            err.message(),
            format!("tenant \"acme\" may not use policy \"{policy}\"; its policies: private")
        );
        let stream = router
            .chat_stream(with_key(
                "key-acme",
                ask(CARD, pb::RouteHint::Remote, policy),
            ))
            .await
            .unwrap_err();
        assert_eq!(stream.code(), Code::PermissionDenied, "{policy}");
        let score = router
            .score(with_key(
                "key-acme",
                pb::ScoreRequest {
                    messages: ask(CARD, pb::RouteHint::Auto, "").messages,
                    policy: policy.into(),
                    ..Default::default()
                },
            ))
            .await
            .unwrap_err();
        assert_eq!(score.code(), Code::PermissionDenied, "{policy}");
    }
    assert!(
        mock.requests().is_empty(),
        "the card number reached the tier"
    );
}

#[tokio::test]
async fn listed_policies_are_usable_and_an_unlisted_tenant_gets_the_default_only() {
    let (h, mock) = harness(tenants(TENANTS)).await;
    let mut router = h.router().await;
    for policy in ["", "default", "private"] {
        let resp = router
            .chat(with_key(
                "key-beta",
                ask("hi", pb::RouteHint::Remote, policy),
            ))
            .await
            .unwrap()
            .into_inner();
        let expected = if policy.is_empty() { "default" } else { policy };
        assert_eq!(resp.decision.unwrap().policy, expected);
    }
    let resp = router
        .chat(with_key(
            "key-gamma",
            ask("hi", pb::RouteHint::Remote, "default"),
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(resp.decision.unwrap().policy, "default");
    let err = router
        .chat(with_key(
            "key-gamma",
            ask("hi", pb::RouteHint::Remote, "private"),
        ))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied);
    assert_eq!(
        err.message(),
        "tenant \"gamma\" may not use policy \"private\"; its policies: default"
    );
    assert_eq!(mock.requests().len(), 4);
}

#[tokio::test]
async fn the_admin_service_takes_admin_keys_only_and_returns_the_policy_text() {
    let (h, _mock) = harness(tenants(TENANTS)).await;
    let mut admin = pb::admin_client::AdminClient::new(h.channel().await);
    let get = |name: &str| pb::GetPolicyRequest { name: name.into() };
    let err = admin
        .get_policy(with_key("key-acme", get("private")))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied);
    assert_eq!(
        err.message(),
        "the Admin service needs an admin key; this key is tenant \"acme\"'s"
    );
    let err = admin
        .reload_policy(with_key("key-beta", pb::ReloadPolicyRequest {}))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied);
    let err = admin.get_policy(get("private")).await.unwrap_err();
    assert_eq!(err.code(), Code::Unauthenticated);
    let err = admin
        .get_policy(with_key("key-nobody", get("private")))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::Unauthenticated);
    let info = admin
        .get_policy(with_key("key-ops", get("private")))
        .await
        .unwrap()
        .into_inner();
    let on_disk = std::fs::read_to_string(h.dir.join("private.yaml")).unwrap();
    assert_eq!(info.summary, on_disk);
    let reloaded = admin
        .reload_policy(with_key("key-ops", pb::ReloadPolicyRequest {}))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(reloaded.available, ["default", "private"]);
    // An admin key is not a tenant key.
    let err = h
        .router()
        .await
        .chat(with_key("key-ops", ask("hi", pb::RouteHint::Remote, "")))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied);
}

#[tokio::test]
async fn without_admins_the_admin_service_refuses_everyone() {
    let no_admins = TENANTS.split("admins:").next().unwrap();
    let (h, _mock) = harness(tenants(no_admins)).await;
    let mut admin = pb::admin_client::AdminClient::new(h.channel().await);
    let err = admin
        .reload_policy(with_key("key-acme", pb::ReloadPolicyRequest {}))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied);
    assert!(err.message().contains("names no `admins`"), "{err:?}");
}

/// Series in the text exposition whose `policy` label is `value`.
fn series_with_policy(metrics: &str, value: &str) -> usize {
    let label = format!("policy=\"{value}\"");
    metrics
        .lines()
        .filter(|l| !l.starts_with('#') && l.contains(&label))
        .count()
}

#[tokio::test]
async fn unknown_policy_names_never_become_label_values() {
    let (h, _mock) = harness(Auth::default()).await;
    let mut router = h.router().await;
    for i in 0..40 {
        let name = format!("made-up-{i}");
        let err = router
            .chat(ask("hi", pb::RouteHint::Remote, &name))
            .await
            .unwrap_err();
        assert_eq!(err.code(), Code::NotFound);
        let err = router
            .chat_stream(ask("hi", pb::RouteHint::Remote, &name))
            .await
            .unwrap_err();
        assert_eq!(err.code(), Code::NotFound);
    }
    let (_, metrics) = h.http_get("/metrics").await;
    assert!(!metrics.contains("made-up-"), "{metrics}");
    let unknown = series_with_policy(&metrics, "unknown");
    assert!(unknown >= 1, "{metrics}");
    let series = metrics.lines().filter(|l| !l.starts_with('#')).count();
    // Forty more made-up names add no series at all.
    for i in 40..80 {
        let _ = router
            .chat(ask("hi", pb::RouteHint::Remote, &format!("made-up-{i}")))
            .await;
    }
    let (_, after) = h.http_get("/metrics").await;
    assert_eq!(
        after.lines().filter(|l| !l.starts_with('#')).count(),
        series
    );
    assert_eq!(series_with_policy(&after, "unknown"), unknown);
}
