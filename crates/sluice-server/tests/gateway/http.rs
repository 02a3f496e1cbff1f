//! The OpenAI-compatible HTTP API in process: the same request path, tenants and error table
//! as gRPC, in OpenAI's shapes. (The official SDK drives it end to end in `tests/`.)

use serde_json::{json, Value};
use sluice_policy::parse_tenants;
use sluice_server::auth::Auth;

use super::*;

async fn http_harness(auth: Auth) -> (Harness, MockUpstream, String) {
    let mock = MockUpstream::start(MockConfig::default()).await.unwrap();
    let private = policy_yaml("private", &[("large", &mock.base_url())], "local");
    let h = Harness::start_with(
        ServeConfig {
            auth,
            http_listen: Some("127.0.0.1:0".into()),
            ..ServeConfig::default()
        },
        &[
            (
                "default.yaml",
                policy_yaml("default", &[("large", &mock.base_url())], "local"),
            ),
            ("private.yaml", private),
        ],
        loader_of(FakeLocal::new("a local answer", SURE)),
    )
    .await;
    h.router().await; // waits for the model
    let base = format!("http://{}/v1", h.server.http_addr.unwrap());
    (h, mock, base)
}

fn tenants() -> Auth {
    let src = "version: 1\ntenants:\n  - { name: acme, api_key_env: ACME_KEY, policy: private }\n";
    let env = |v: &str| (v == "ACME_KEY").then(|| "key-acme".to_string());
    Auth::new(Some(
        parse_tenants(src, std::path::Path::new("t.yaml"), &env).unwrap(),
    ))
}

async fn post(base: &str, key: Option<&str>, body: Value) -> reqwest::Response {
    let mut req = reqwest::Client::new()
        .post(format!("{base}/chat/completions"))
        .json(&body);
    if let Some(k) = key {
        req = req.bearer_auth(k);
    }
    req.send().await.unwrap()
}

fn hi() -> Value {
    json!({ "model": "sluice", "messages": [{ "role": "user", "content": "hi" }] })
}

#[tokio::test]
async fn a_completion_kept_local_names_its_route_in_headers_and_body() {
    let (_h, mock, base) = http_harness(Auth::default()).await;
    let r = post(&base, None, hi()).await;
    assert_eq!(r.status(), 200);
    let header = |n: &str| r.headers().get(n).map(|v| v.to_str().unwrap().to_owned());
    assert_eq!(header("x-sluice-route").as_deref(), Some("local"));
    assert!(header("x-sluice-confidence").is_some());
    assert!(header("x-request-id").is_some());
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["object"], "chat.completion");
    assert_eq!(body["choices"][0]["message"]["content"], "a local answer");
    assert_eq!(body["choices"][0]["message"]["role"], "assistant");
    assert_eq!(body["sluice"]["route"], "local");
    assert_eq!(body["sluice"]["decision"]["policy"], "default");
    assert!(body["usage"]["total_tokens"].as_u64().unwrap() > 0);
    assert!(mock.requests().is_empty());
}

#[tokio::test]
async fn the_route_hint_header_sends_it_to_the_tier() {
    let (_h, mock, base) = http_harness(Auth::default()).await;
    let r = reqwest::Client::new()
        .post(format!("{base}/chat/completions"))
        .header("x-sluice-route-hint", "remote")
        .json(&hi())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["x-sluice-route"], "remote");
    assert_eq!(r.headers()["x-sluice-tier"], "large");
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["model"], "mock-large");
    assert_eq!(mock.requests().len(), 1);
}

#[tokio::test]
async fn a_stream_is_openai_chunks_then_usage_then_done() {
    let (_h, _mock, base) = http_harness(Auth::default()).await;
    let mut body = hi();
    body["stream"] = json!(true);
    body["stream_options"] = json!({ "include_usage": true });
    let r = post(&base, None, body).await;
    assert_eq!(r.status(), 200);
    assert!(r.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/event-stream"));
    let text = r.text().await.unwrap();
    let data: Vec<&str> = text
        .lines()
        .filter_map(|l| l.strip_prefix("data: "))
        .collect();
    assert_eq!(data.last(), Some(&"[DONE]"), "{text}");
    let chunks: Vec<Value> = data[..data.len() - 1]
        .iter()
        .map(|d| serde_json::from_str(d).unwrap())
        .collect();
    let content: String = chunks
        .iter()
        .filter_map(|c| c["choices"][0]["delta"]["content"].as_str())
        .collect();
    assert_eq!(content, "a local answer");
    assert_eq!(chunks[0]["choices"][0]["delta"]["role"], "assistant");
    let finish = &chunks[chunks.len() - 2];
    assert_eq!(finish["choices"][0]["finish_reason"], "stop");
    assert_eq!(finish["sluice"]["route"], "local");
    let usage = &chunks[chunks.len() - 1];
    assert_eq!(usage["choices"], json!([]));
    assert!(usage["usage"]["completion_tokens"].as_u64().unwrap() > 0);
}

#[tokio::test]
async fn errors_have_openai_shape_and_the_status_of_the_one_table() {
    let (_h, _mock, base) = http_harness(Auth::default()).await;
    let mut wrong = hi();
    wrong["temperature"] = json!("hot");
    let r = post(&base, None, wrong).await;
    assert_eq!(r.status(), 400);
    let e: Value = r.json().await.unwrap();
    assert_eq!(e["error"]["type"], "invalid_request_error");
    assert_eq!(e["error"]["param"], "temperature");
    assert_eq!(e["error"]["code"], "invalid_argument");
    let mut unknown = hi();
    unknown["model"] = json!("no-such");
    let r = post(&base, None, unknown).await;
    assert_eq!(r.status(), 404);
    let e: Value = r.json().await.unwrap();
    assert_eq!(e["error"]["code"], "unknown_policy");
    let r = post(&base, None, json!({ "messages": [] })).await;
    assert_eq!(r.status(), 400);
    let e: Value = r.json().await.unwrap();
    assert_eq!(e["error"]["param"], "messages");
}

#[tokio::test]
async fn the_same_keys_and_tenant_rules_hold() {
    let (_h, mock, base) = http_harness(tenants()).await;
    let r = post(&base, None, hi()).await;
    assert_eq!(r.status(), 401);
    let e: Value = r.json().await.unwrap();
    assert_eq!(e["error"]["type"], "authentication_error");
    assert_eq!(post(&base, Some("key-nobody"), hi()).await.status(), 401);
    let ok = post(&base, Some("key-acme"), hi()).await;
    assert_eq!(ok.status(), 200);
    let body: Value = ok.json().await.unwrap();
    assert_eq!(body["sluice"]["decision"]["policy"], "private");
    let mut other = hi();
    other["model"] = json!("default");
    other["sluice"] = json!({ "route_hint": "remote" });
    let r = post(&base, Some("key-acme"), other).await;
    assert_eq!(r.status(), 403);
    let e: Value = r.json().await.unwrap();
    assert_eq!(e["error"]["type"], "permission_error");
    assert_eq!(e["error"]["code"], "policy_denied");
    assert!(mock.requests().is_empty());
    let models: Value = reqwest::Client::new()
        .get(format!("{base}/models"))
        .bearer_auth("key-acme")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let ids: Vec<&str> = models["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["sluice", "private"]);
}

#[tokio::test]
async fn a_prompt_of_three_megabytes_is_taken_like_over_grpc() {
    let (_h, mock, base) = http_harness(Auth::default()).await;
    let mut big = hi();
    big["messages"][0]["content"] = json!("word ".repeat(600_000));
    big["sluice"] = json!({ "route_hint": "local" });
    let r = post(&base, None, big).await;
    assert_eq!(r.status(), 200);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["sluice"]["route"], "local");
    assert!(mock.requests().is_empty());
    // Past the request limit: the gateway's own 400, in OpenAI's shape.
    let mut huge = hi();
    huge["messages"][0]["content"] = json!("word ".repeat(900_000));
    let r = post(&base, None, huge).await;
    assert_eq!(r.status(), 400);
    let e: Value = r.json().await.unwrap();
    assert_eq!(e["error"]["param"], "messages");
}

#[tokio::test]
async fn connections_past_the_bound_wait_until_one_closes() {
    let h = Harness::start_with(
        ServeConfig {
            http_listen: Some("127.0.0.1:0".into()),
            http_max_connections: Some(2),
            ..ServeConfig::default()
        },
        &[("default.yaml", policy_yaml("default", &[], "local"))],
        loader_of(FakeLocal::new("a local answer", SURE)),
    )
    .await;
    h.router().await;
    let addr = h.server.http_addr.unwrap();
    let models = || async move {
        // A fresh client each time: its own connection.
        reqwest::Client::new()
            .get(format!("http://{addr}/v1/models"))
            .timeout(Duration::from_millis(500))
            .send()
            .await
    };
    assert_eq!(models().await.unwrap().status(), 200);
    // Two connections held open take both places: a third is not served while they stay.
    let idle_a = tokio::net::TcpStream::connect(addr).await.unwrap();
    let idle_b = tokio::net::TcpStream::connect(addr).await.unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    let waited = models().await;
    assert!(
        waited.as_ref().is_err_and(|e| e.is_timeout()),
        "served past the bound: {waited:?}"
    );
    // One closes: the next connection is served.
    drop(idle_a);
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(models().await.unwrap().status(), 200);
    drop(idle_b);
}
