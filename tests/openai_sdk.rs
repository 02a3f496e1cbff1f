//! The OpenAI-compatible HTTP API driven by the official `openai` Python package (installed by
//! `scripts/test` into a venv), against the real binary with the real model and a mock tier.
//! Skipped, saying why, when no such Python was set up.

use crate::support::{copy_shipped_policy, repo, temp_dir, Server};

fn openai_python() -> Option<String> {
    match std::env::var("SLUICE_OPENAI_PYTHON") {
        Ok(p) if !p.is_empty() => Some(p),
        _ => {
            eprintln!(
                "SKIPPED openai SDK test: SLUICE_OPENAI_PYTHON is not set (scripts/test sets it \
                 after installing the openai package into a venv)"
            );
            None
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_openai_sdk_talks_to_the_http_api() {
    let Some(python) = openai_python() else {
        return;
    };
    let mock = sluice_test_support::MockUpstream::start(Default::default())
        .await
        .expect("mock upstream starts");
    let dir = temp_dir("openai-sdk");
    copy_shipped_policy("default", &dir, "default.yaml");
    let tenants = dir.with_extension("tenants.yaml");
    std::fs::write(
        &tenants,
        "version: 1\ntenants:\n  - { name: acme, api_key_env: ACME_KEY }\n",
    )
    .unwrap();
    let tenants = tenants.display().to_string();
    let url = mock.base_url();
    let server = Server::start_policies(
        &dir,
        &[
            ("SLUICE_LARGE_URL", url.as_str()),
            ("SLUICE_LARGE_API_KEY", "test-key"),
            ("SLUICE_TENANTS", tenants.as_str()),
            ("ACME_KEY", "sk-acme-e2e"),
        ],
    )
    .await;
    let base = format!("http://{}/v1", server.http);
    let out = tokio::task::spawn_blocking(move || {
        std::process::Command::new(&python)
            .arg(repo().join("tests/openai_sdk.py"))
            .arg(base)
            .arg("sk-acme-e2e")
            .output()
    })
    .await
    .unwrap()
    .expect("python runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    eprintln!("{stdout}{stderr}");
    assert!(
        out.status.success(),
        "the openai SDK checks failed:\n{stdout}{stderr}"
    );
    assert!(stdout.contains("openai sdk: all checks passed"), "{stdout}");
    // One request reached the tier: the remote one.
    assert_eq!(mock.requests().len(), 1);
}
