//! Distillation examples through the real gRPC path: escalated answers of opted-in tenants
//! are written in the chat fine-tuning format; local answers, other tenants' requests and
//! anything with personal data are not.

use super::*;
use sluice_router::eval::finetune::check;

#[tokio::test]
async fn escalated_answers_of_opted_in_tenants_become_fine_tuning_examples() {
    let mock = MockUpstream::start(MockConfig::default()).await.unwrap();
    let url = mock.base_url();
    let opted_in =
        policy_yaml("default", &[("large", &url)], "local") + "distill: { tenants: [default] }\n";
    let others =
        policy_yaml("others", &[("large", &url)], "local") + "distill: { tenants: [acme] }\n";
    let dir = temp_dir();
    let h = Harness::start_with(
        ServeConfig {
            distill: Some(sluice_server::records::RecordsConfig {
                dir: dir.clone(),
                max_tenant_bytes: 1 << 20,
            }),
            ..ServeConfig::default()
        },
        &[("default.yaml", opted_in), ("others.yaml", others)],
        loader_of(FakeLocal::new("I think maybe 17", UNSURE)),
    )
    .await;
    // Escalated by the score, and by the caller: both kept.
    let scored = h
        .chat(ask("What is 418 times 275?", pb::RouteHint::Auto, ""))
        .await;
    assert_eq!(scored.route.unwrap().kind(), pb::RouteKind::Remote);
    let mut stream = h
        .router()
        .await
        .chat_stream(ask(
            "Name the capital of France.",
            pb::RouteHint::Remote,
            "",
        ))
        .await
        .unwrap()
        .into_inner();
    while stream.message().await.unwrap().is_some() {}
    // Not kept: personal data, a local answer, a tenant that did not opt in.
    h.chat(ask(
        "Mail jane.doe@example.com the total",
        pb::RouteHint::Remote,
        "",
    ))
    .await;
    h.chat(ask("Say hi", pb::RouteHint::Local, "")).await;
    h.chat(ask("Escalate me", pb::RouteHint::Remote, "others"))
        .await;
    let file = dir.join("default");
    let mut lines: Vec<serde_json::Value> = Vec::new();
    for _ in 0..200 {
        lines = std::fs::read_dir(&file)
            .map(|d| {
                d.flat_map(|e| {
                    std::fs::read_to_string(e.unwrap().path())
                        .unwrap()
                        .lines()
                        .map(|l| serde_json::from_str(l).unwrap())
                        .collect::<Vec<_>>()
                })
                .collect()
            })
            .unwrap_or_default();
        if lines.len() >= 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    let (_, metrics) = h.http_get("/metrics").await;
    assert_eq!(lines.len(), 2, "{lines:#?}");
    for ex in &lines {
        assert_eq!(check(ex), Ok(()), "{ex}");
        assert_eq!(
            ex["messages"][1]["content"],
            "Paris is the capital of France."
        );
    }
    let mut asked: Vec<&str> = lines
        .iter()
        .map(|ex| ex["messages"][0]["content"].as_str().unwrap())
        .collect();
    asked.sort_unstable();
    assert_eq!(
        asked,
        ["Name the capital of France.", "What is 418 times 275?"]
    );
    assert!(
        metrics.contains(r#"sluice_distill_examples_total{policy="default",result="written"} 2"#),
        "{metrics}"
    );
    assert!(
        metrics.contains(r#"sluice_distill_examples_total{policy="default",result="private"} 1"#),
        "{metrics}"
    );
    assert!(!metrics.contains(r#"policy="others",result"#), "{metrics}");
    let _ = std::fs::remove_dir_all(&dir);
}
