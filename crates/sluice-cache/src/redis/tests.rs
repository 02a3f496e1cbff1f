//! The client against in-process fake servers: timeouts, dead peers, error replies, stale
//! pooled connections. The real Redis is exercised in `tests/redis.rs`.

use std::sync::Arc;
use std::time::Instant;

use tokio::net::TcpListener;

use super::*;

type Received = Arc<Mutex<Vec<String>>>;

/// A server that answers each command on a connection with the next of `replies`, then
/// closes that connection; it accepts any number of connections and records the commands.
async fn fake(replies: &'static [&'static [u8]]) -> (String, Received) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("redis://{}", listener.local_addr().unwrap());
    let received = Received::default();
    let log = received.clone();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            let log = log.clone();
            tokio::spawn(async move {
                let mut buf = BytesMut::new();
                for reply in replies {
                    loop {
                        if let Ok(Some((command, used))) = resp::parse(&buf) {
                            buf.advance(used);
                            log.lock().unwrap().push(words(&command));
                            break;
                        }
                        if stream.read_buf(&mut buf).await.unwrap_or(0) == 0 {
                            return;
                        }
                    }
                    if stream.write_all(reply).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    (url, received)
}

fn words(command: &Reply) -> String {
    let Reply::Array(Some(args)) = command else {
        panic!("expected a command array, found {}", command.kind());
    };
    let word = |a: &Reply| match a {
        Reply::Bulk(Some(b)) => String::from_utf8_lossy(b).into_owned(),
        other => panic!("expected a bulk string argument, found {}", other.kind()),
    };
    args.iter().map(word).collect::<Vec<_>>().join(" ")
}

#[tokio::test]
async fn a_silent_server_times_out_within_the_bound() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("redis://{}", listener.local_addr().unwrap());
    let client = RedisClient::new(&url, Duration::from_millis(100)).unwrap();
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
    assert!(
        client.take_idle().is_none(),
        "a timed-out connection was pooled"
    );
    drop(listener);
}

#[tokio::test]
async fn nothing_listening_is_an_io_error_naming_the_address() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let client =
        RedisClient::new(&format!("redis://127.0.0.1:{port}"), Duration::from_secs(1)).unwrap();
    let err = client.ping().await.unwrap_err();
    assert!(matches!(err, CacheError::Io { .. }), "{err}");
    assert!(
        err.to_string()
            .contains(&format!("127.0.0.1:{port}: cannot connect")),
        "{err}"
    );
}

#[tokio::test]
async fn error_replies_are_redis_errors_and_keep_the_connection() {
    let (url, _) = fake(&[b"-ERR wrong kind of value\r\n", b"$2\r\nok\r\n"]).await;
    let client = RedisClient::new(&url, Duration::from_secs(1)).unwrap();
    let err = client.get(b"k").await.unwrap_err();
    assert!(
        matches!(&err, CacheError::Redis { message } if message == "ERR wrong kind of value"),
        "{err}"
    );
    assert_eq!(client.shared.idle.lock().unwrap().len(), 1);
    assert_eq!(
        client.get(b"k").await.unwrap(),
        Some(Bytes::from_static(b"ok"))
    );
}

#[tokio::test]
async fn clones_share_one_pool_and_the_pool_is_bounded() {
    let (url, received) = fake(&[b"+PONG\r\n", b"+PONG\r\n"]).await;
    let client = RedisClient::new(&url, Duration::from_secs(1))
        .unwrap()
        .with_max_idle(1);
    let clone = client.clone();
    client.ping().await.unwrap();
    clone.ping().await.unwrap();
    assert_eq!(client.shared.idle.lock().unwrap().len(), 1);
    // Two calls at once need two connections; only one is kept afterwards.
    let (a, b) = tokio::join!(client.ping(), clone.ping());
    a.unwrap();
    b.unwrap();
    assert_eq!(clone.shared.idle.lock().unwrap().len(), 1);
    assert_eq!(received.lock().unwrap().len(), 4);
}

#[tokio::test]
async fn a_wrong_reply_type_is_a_protocol_error() {
    let (url, _) = fake(&[b":1\r\n"]).await;
    let client = RedisClient::new(&url, Duration::from_secs(1)).unwrap();
    let err = client.get(b"k").await.unwrap_err();
    assert_eq!(
        err.to_string(),
        "redis protocol error: expected a bulk string in reply to GET, found integer 1"
    );
}

#[tokio::test]
async fn a_connection_closed_while_idle_is_replaced_transparently() {
    // Each connection answers one PING and is then closed by the server.
    let (url, received) = fake(&[b"+PONG\r\n"]).await;
    let client = RedisClient::new(&url, Duration::from_secs(1)).unwrap();
    client.ping().await.unwrap();
    assert_eq!(client.shared.idle.lock().unwrap().len(), 1);
    tokio::time::sleep(Duration::from_millis(50)).await;
    client.ping().await.unwrap();
    assert_eq!(*received.lock().unwrap(), ["PING", "PING"]);
}

#[tokio::test]
async fn auth_and_select_are_sent_on_connect() {
    let (url, received) = fake(&[b"+OK\r\n", b"+OK\r\n", b"+PONG\r\n"]).await;
    let url = url.replace("redis://", "redis://:p%20w@") + "/2";
    let client = RedisClient::new(&url, Duration::from_secs(1)).unwrap();
    client.ping().await.unwrap();
    assert_eq!(*received.lock().unwrap(), ["AUTH p w", "SELECT 2", "PING"]);

    let (url, _) = fake(&[b"-WRONGPASS invalid username-password pair\r\n"]).await;
    let url = url.replace("redis://", "redis://:bad@");
    let client = RedisClient::new(&url, Duration::from_secs(1)).unwrap();
    let err = client.ping().await.unwrap_err();
    assert!(err.to_string().contains("WRONGPASS"), "{err}");
}

#[tokio::test]
async fn set_sends_the_ttl_in_whole_milliseconds_rounded_up() {
    let (url, received) = fake(&[b"+OK\r\n", b"+OK\r\n", b"+OK\r\n"]).await;
    let client = RedisClient::new(&url, Duration::from_secs(1)).unwrap();
    client
        .set_px(b"k", b"v", Duration::from_millis(100))
        .await
        .unwrap();
    client
        .set_px(b"k", b"v", Duration::from_micros(1_500))
        .await
        .unwrap();
    // Redis refuses PX 0.
    client.set_px(b"k", b"v", Duration::ZERO).await.unwrap();
    assert_eq!(
        *received.lock().unwrap(),
        ["SET k v PX 100", "SET k v PX 2", "SET k v PX 1"]
    );
}
