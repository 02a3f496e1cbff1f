//! The three time limits of a tier: connect, read (between body chunks) and total.

use std::time::{Duration, Instant};

use sluice_upstream::UpstreamError;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpSocket, TcpStream};

use super::*;

/// A listener whose accept queue is full, so new connections are never completed
/// (the kernel drops their SYNs), and the connections that fill it.
async fn unresponsive() -> (TcpListener, Vec<TcpStream>, String) {
    let socket = TcpSocket::new_v4().unwrap();
    socket.bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let listener = socket.listen(1).unwrap();
    let addr = listener.local_addr().unwrap();
    let mut fillers = Vec::new();
    for _ in 0..8 {
        match tokio::time::timeout(Duration::from_millis(100), TcpStream::connect(addr)).await {
            Ok(Ok(stream)) => fillers.push(stream),
            _ => break,
        }
    }
    (listener, fillers, format!("http://{addr}"))
}

#[tokio::test]
async fn slow_connections_hit_the_connect_timeout() {
    let (_listener, _fillers, url) = unresponsive().await;
    let mut tier = tier(url);
    tier.connect_timeout = Duration::from_millis(200);
    let started = Instant::now();
    let err = client().chat(&tier, &request()).await.unwrap_err();
    assert_eq!(
        err,
        UpstreamError::Timeout {
            tier: "large".into(),
            after: Duration::from_millis(200),
            what: "connect",
        }
    );
    assert!(err.is_retryable());
    assert!(started.elapsed() < Duration::from_secs(2));
    assert!(err.to_string().contains("(connect timeout)"), "{err}");
}

#[tokio::test]
async fn tiers_with_other_connect_timeouts_share_one_client() {
    let (_listener, _fillers, url) = unresponsive().await;
    let client = client();
    for millis in [150, 300] {
        let mut tier = tier(url.clone());
        tier.connect_timeout = Duration::from_millis(millis);
        let started = Instant::now();
        let err = client.chat(&tier, &request()).await.unwrap_err();
        assert_eq!(err.retry_after(), None);
        assert!(
            matches!(err, UpstreamError::Timeout { after, what: "connect", .. }
                if after == Duration::from_millis(millis)),
            "{err:?}"
        );
        assert!(started.elapsed() >= Duration::from_millis(millis));
    }
}

#[tokio::test]
async fn a_stalled_stream_hits_the_read_timeout() {
    let mock = mock(MockBehavior::SlowStream(Duration::from_millis(400))).await;
    let mut tier = tier(mock.base_url());
    tier.read_timeout = Duration::from_millis(100);
    let started = Instant::now();
    let stream = client().chat_stream(&tier, &request()).await.unwrap();
    let events = collect(stream).await;
    assert_eq!(
        events,
        [Err(UpstreamError::Timeout {
            tier: "large".into(),
            after: Duration::from_millis(100),
            what: "read",
        })]
    );
    assert!(started.elapsed() < Duration::from_secs(1));
}

#[tokio::test]
async fn the_read_timeout_allows_slow_but_steady_streams() {
    let mock = mock(MockBehavior::SlowStream(Duration::from_millis(20))).await;
    let mut tier = tier(mock.base_url());
    tier.read_timeout = Duration::from_millis(300);
    let events = collect(client().chat_stream(&tier, &request()).await.unwrap()).await;
    assert!(
        matches!(events.last(), Some(Ok(StreamEvent::Done { .. }))),
        "{events:?}"
    );
}

/// Reads one HTTP/1 request with a `content-length` body.
async fn read_request(stream: &mut TcpStream) {
    let mut request = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let text = String::from_utf8_lossy(&request).to_ascii_lowercase();
        if let Some(end) = text.find("\r\n\r\n") {
            let length: usize = text
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .map_or(0, |n| n.trim().parse().unwrap());
            if request.len() >= end + 4 + length {
                return;
            }
        }
        match stream.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => request.extend_from_slice(&buf[..n]),
        }
    }
}

/// A server that answers every connection with headers and half a JSON body, then
/// waits.
async fn half_a_body() -> (tokio::task::JoinHandle<()>, String) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let server = tokio::spawn(async move {
        let mut open = Vec::new();
        while let Ok((mut stream, _)) = listener.accept().await {
            read_request(&mut stream).await;
            let head = "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n\
                        content-length: 100\r\n\r\n{\"choices\": [";
            let _ = stream.write_all(head.as_bytes()).await;
            open.push(stream);
        }
    });
    (server, url)
}

#[tokio::test]
async fn a_stalled_body_hits_the_read_timeout_and_is_retried() {
    let (server, url) = half_a_body().await;
    let mut tier = tier(url);
    tier.read_timeout = Duration::from_millis(150);
    tier.retries = 1;
    let started = Instant::now();
    let err = client().chat(&tier, &request()).await.unwrap_err();
    assert_eq!(
        err,
        UpstreamError::Timeout {
            tier: "large".into(),
            after: Duration::from_millis(150),
            what: "read",
        }
    );
    assert!(err.is_retryable());
    let elapsed = started.elapsed();
    assert!(
        elapsed >= Duration::from_millis(300) && elapsed < Duration::from_secs(2),
        "two attempts of 150ms each, found {elapsed:?}"
    );
    assert!(err
        .to_string()
        .contains("expected the next part of the response body within 150ms (read timeout)"));
    server.abort();
}

#[tokio::test]
async fn the_total_timeout_wins_when_it_comes_first() {
    let (server, url) = half_a_body().await;
    let mut tier = tier(url);
    tier.timeout = Duration::from_millis(200);
    tier.read_timeout = Duration::from_secs(3);
    let err = client().chat(&tier, &request()).await.unwrap_err();
    assert_eq!(
        err,
        UpstreamError::Timeout {
            tier: "large".into(),
            after: Duration::from_millis(200),
            what: "total",
        }
    );
    server.abort();
}
