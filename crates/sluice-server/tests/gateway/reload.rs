//! Reloading policies under load: every request succeeds and is decided by one whole policy,
//! the one it started with.

use super::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_hundred_reloads_under_concurrent_requests_fail_none() {
    let mock = MockUpstream::start(MockConfig::default()).await.unwrap();
    // SURE drafts score about 0.95: kept local at threshold 0.3, escalated at 0.97.
    let low = policy_yaml("default", &[("large", &mock.base_url())], "local")
        .replace("threshold: 0.5", "threshold: 0.3");
    let high = low.replace("threshold: 0.3", "threshold: 0.97");
    let h = Harness::single(low.clone(), FakeLocal::new("a local answer", SURE)).await;
    let done = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut clients = Vec::new();
    for c in 0..4 {
        let mut router = h.router().await;
        let done = done.clone();
        clients.push(tokio::spawn(async move {
            let (mut ok, mut failed, mut inconsistent) = (0u32, Vec::new(), 0u32);
            let mut i = 0;
            while !done.load(std::sync::atomic::Ordering::SeqCst) || i < 20 {
                i += 1;
                // distinct prompts: no cache hits, every request is scored
                let prompt = format!("question {c}-{i}");
                match router.chat(ask(&prompt, pb::RouteHint::Auto, "")).await {
                    Ok(r) => {
                        let r = r.into_inner();
                        let threshold = r.decision.unwrap().threshold;
                        let kind = r.route.unwrap().kind();
                        let expected = if threshold < 0.5 {
                            pb::RouteKind::Local
                        } else {
                            pb::RouteKind::Remote
                        };
                        if kind != expected {
                            inconsistent += 1;
                        }
                        ok += 1;
                    }
                    Err(e) => failed.push(e.to_string()),
                }
            }
            (ok, failed, inconsistent)
        }));
    }
    let mut admin = pb::admin_client::AdminClient::new(h.channel().await);
    let file = h.dir.join("default.yaml");
    let mut rejected = 0;
    for n in 0..100 {
        // every tenth write is invalid: rejected, the running policy stays
        let text = if n % 10 == 9 {
            high.replace("threshold: 0.97", "threshold: 7")
        } else if n % 2 == 0 {
            high.clone()
        } else {
            low.clone()
        };
        std::fs::write(&file, text).unwrap();
        match admin.reload_policy(pb::ReloadPolicyRequest {}).await {
            Ok(_) => {}
            Err(e) => {
                assert_eq!(e.code(), Code::FailedPrecondition, "{e}");
                rejected += 1;
            }
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    done.store(true, std::sync::atomic::Ordering::SeqCst);
    let (mut total, mut inconsistent) = (0, 0);
    for c in clients {
        let (ok, failed, inc) = c.await.unwrap();
        assert!(failed.is_empty(), "failed requests: {failed:?}");
        total += ok;
        inconsistent += inc;
    }
    assert_eq!(rejected, 10);
    assert!(total >= 80, "only {total} requests ran during the reloads");
    assert_eq!(inconsistent, 0, "a request mixed two policies");
    let (_, metrics) = h.http_get("/metrics").await;
    assert!(
        metrics.contains("sluice_policy_reloads_total{result=\"ok\"} 90"),
        "{metrics}"
    );
    assert!(
        metrics.contains("sluice_policy_reloads_total{result=\"error\"} 10"),
        "{metrics}"
    );
}

#[tokio::test]
async fn the_watched_directory_reloads_on_its_own_and_keeps_the_policy_on_a_bad_edit() {
    let yaml = policy_yaml("default", &[], "local");
    let h = Harness::start_with(
        ServeConfig {
            watch_interval: Some(Duration::from_millis(30)),
            ..ServeConfig::default()
        },
        &[("default.yaml", yaml.clone())],
        loader_of(FakeLocal::new("x", SURE)),
    )
    .await;
    let mut admin = pb::admin_client::AdminClient::new(h.channel().await);
    let threshold = |admin: &mut pb::admin_client::AdminClient<Channel>| {
        let mut admin = admin.clone();
        async move {
            admin
                .get_policy(pb::GetPolicyRequest::default())
                .await
                .unwrap()
                .into_inner()
                .threshold
        }
    };
    let wait_for = |want: &'static str| {
        let h = &h;
        async move {
            for _ in 0..200 {
                let (_, m) = h.http_get("/metrics").await;
                if m.contains(want) {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            panic!("{want} never appeared in the metrics");
        }
    };
    std::fs::write(
        h.dir.join("default.yaml"),
        yaml.replace("threshold: 0.5", "threshold: 0.8"),
    )
    .unwrap();
    wait_for("sluice_policy_reloads_total{result=\"ok\"} 1").await;
    assert_eq!(threshold(&mut admin).await, 0.8);

    // A misspelled key: rejected, counted, and the running policy stays.
    std::fs::write(
        h.dir.join("default.yaml"),
        yaml.replace("threshold: 0.5", "threshhold: 0.9"),
    )
    .unwrap();
    wait_for("sluice_policy_reloads_total{result=\"error\"} 1").await;
    assert_eq!(threshold(&mut admin).await, 0.8);
}
