//! The client where no real Redis is needed: a silent peer, no peer, option checks. The real
//! Redis (AUTH, SELECT, TLS, restarts, a hung server) is exercised in `tests/redis.rs`.

use std::time::Instant;

use tokio::net::TcpListener;

use super::*;

#[tokio::test]
async fn a_silent_server_times_out_within_the_bound() {
    // Accepts connections (the kernel does, from the backlog) and never answers.
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("redis://{}", listener.local_addr().unwrap());
    let client = RedisClient::new(&url, Duration::from_millis(100)).unwrap();
    for _ in 0..2 {
        let started = Instant::now();
        let err = client.get(b"k").await.unwrap_err();
        assert!(
            started.elapsed() < Duration::from_millis(500),
            "{:?}",
            started.elapsed()
        );
        assert!(matches!(err, CacheError::Timeout { .. }), "{err}");
        assert!(
            err.to_string().contains("did not answer within 100ms"),
            "{err}"
        );
    }
    drop(listener);
}

#[tokio::test]
async fn nothing_listening_is_an_error_naming_the_address() {
    let unused = sluice_test_support::unused_local_addr();
    let addr = unused.trim_start_matches("http://").to_owned();
    let client = RedisClient::new(&format!("redis://{addr}"), Duration::from_secs(2)).unwrap();
    let started = Instant::now();
    let err = client.ping().await.unwrap_err();
    assert!(started.elapsed() < Duration::from_secs(2), "{err}");
    assert!(
        matches!(&err, CacheError::Io { addr: a, .. } | CacheError::Timeout { addr: a, .. } if *a == addr),
        "{err}"
    );
}

#[tokio::test]
async fn a_ca_for_a_plain_url_is_refused_naming_the_url_without_its_password() {
    let err = RedisClient::open(
        "redis://:hunter2@127.0.0.1:6379",
        RedisOptions {
            op_timeout: Duration::from_millis(100),
            ca_pem: Some(b"-----BEGIN CERTIFICATE-----".to_vec()),
            ..RedisOptions::default()
        },
    )
    .unwrap_err();
    let message = err.to_string();
    assert!(message.contains("not `rediss://`"), "{message}");
    assert!(message.contains("redis://:***@127.0.0.1:6379"), "{message}");
    assert!(!message.contains("hunter2"), "{message}");
}

#[tokio::test]
async fn debug_output_hides_passwords() {
    let options = RedisOptions {
        password: Some("hunter2".into()),
        ..RedisOptions::default()
    };
    assert!(!format!("{options:?}").contains("hunter2"));
    let client =
        RedisClient::new("redis://:hunter2@127.0.0.1:1", Duration::from_millis(10)).unwrap();
    assert!(!format!("{client:?}").contains("hunter2"));
}

#[test]
fn px_is_whole_milliseconds_rounded_up() {
    assert_eq!(px_millis(Duration::from_nanos(1)), 1);
    assert_eq!(px_millis(Duration::ZERO), 1);
    assert_eq!(px_millis(Duration::from_micros(1500)), 2);
    assert_eq!(px_millis(Duration::from_secs(60)), 60_000);
}
