//! Test support for Sluice: an in-process mock of the large-model APIs (OpenAI-compatible
//! and Anthropic) that can inject faults, a fake local model, and helpers for
//! "upstream down" tests.

mod fake_local;
mod mock_upstream;
mod redis_server;

pub use fake_local::FakeLocal;
pub use redis_server::RedisServer;

pub use mock_upstream::{
    FaultPlan, MockBehavior, MockConfig, MockUpstream, RecordedRequest, FAULT_HEADER,
};

/// A `http://127.0.0.1:PORT` address where nothing listens, for "upstream down" tests.
///
/// The port was free a moment ago (a listener bound it, then let it go); should even
/// binding fail, port 1 is returned, which nothing listens on in practice.
pub fn unused_local_addr() -> String {
    let port = std::net::TcpListener::bind(("127.0.0.1", 0))
        .and_then(|listener| listener.local_addr())
        .map_or(1, |addr| addr.port());
    format!("http://127.0.0.1:{port}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn unused_addr_refuses_connections() {
        let addr = unused_local_addr();
        let host = addr.trim_start_matches("http://");
        assert!(tokio::net::TcpStream::connect(host).await.is_err());
    }
}
