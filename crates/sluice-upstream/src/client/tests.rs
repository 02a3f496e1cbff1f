//! Unit tests of the client's own parts: keys, deadlines and the HTTP client cache.

use super::*;
use crate::response::tests::tier;

#[test]
fn api_key_comes_from_the_lookup() {
    let client =
        UpstreamClient::with_key_lookup(|name| (name == "SET").then(|| " sk-1 ".to_owned()))
            .unwrap();
    let mut tier = tier();
    assert_eq!(client.api_key(&tier).unwrap(), None);

    tier.api_key_env = Some("SET".into());
    assert_eq!(client.api_key(&tier).unwrap().as_deref(), Some("sk-1"));

    tier.api_key_env = Some("UNSET".into());
    let err = client.api_key(&tier).unwrap_err();
    assert_eq!(
        err.to_string(),
        "tier big: expected an api key in environment variable UNSET, found it unset or empty"
    );
}

#[test]
fn empty_key_is_missing() {
    let client = UpstreamClient::with_key_lookup(|_| Some(String::new())).unwrap();
    let mut tier = tier();
    tier.api_key_env = Some("EMPTY".into());
    assert!(matches!(
        client.api_key(&tier),
        Err(UpstreamError::MissingApiKey { .. })
    ));
}

#[tokio::test]
async fn one_http_client_per_connect_timeout_shared_by_clones() {
    let client = UpstreamClient::with_key_lookup(|_| None).unwrap();
    let mut tier = tier();
    client.http(&tier).unwrap();
    assert_eq!(client.clients().len(), 1, "2s is built up front");
    tier.connect_timeout = Duration::from_millis(300);
    let clone = client.clone();
    clone.http(&tier).unwrap();
    client.http(&tier).unwrap();
    assert_eq!(client.clients().len(), 2);
    let shown = format!("{client:?}");
    assert!(shown.contains("connect_timeouts: [300ms, 2s]"), "{shown}");
    assert!(shown.contains("NoGuard"), "{shown}");
}

#[tokio::test]
async fn huge_limits_do_not_overflow() {
    let deadline = deadline_after(Duration::MAX);
    assert!(deadline > Instant::now() + Duration::from_secs(365 * 24 * 3600));
}
