//! The call guard hook: what the retry loop asks and tells it.

use std::sync::{Arc, Mutex};

use sluice_test_support::FaultPlan;
use sluice_upstream::{CallGuard, UpstreamError};

use super::*;

/// Remembers every question and outcome; refuses what it is told to.
#[derive(Debug, Default)]
struct CountingGuard {
    refuse_admit: Option<String>,
    refuse_retries: bool,
    admits: Mutex<Vec<String>>,
    retries_asked: Mutex<usize>,
    records: Mutex<Vec<bool>>,
}

impl CallGuard for CountingGuard {
    fn admit(&self, tier: &Tier) -> Result<(), String> {
        self.admits.lock().unwrap().push(tier.name.clone());
        self.refuse_admit.clone().map_or(Ok(()), Err)
    }

    fn allow_retry(&self, _tier: &Tier) -> bool {
        *self.retries_asked.lock().unwrap() += 1;
        !self.refuse_retries
    }

    fn record(&self, _tier: &Tier, success: bool) {
        self.records.lock().unwrap().push(success);
    }
}

impl CountingGuard {
    fn records(&self) -> Vec<bool> {
        self.records.lock().unwrap().clone()
    }

    fn retries_asked(&self) -> usize {
        *self.retries_asked.lock().unwrap()
    }
}

fn guarded(guard: &Arc<CountingGuard>) -> UpstreamClient {
    client().with_guard(Arc::clone(guard) as Arc<dyn CallGuard>)
}

#[tokio::test]
async fn a_refused_admission_sends_nothing() {
    let mock = mock(MockBehavior::Ok).await;
    let guard = Arc::new(CountingGuard {
        refuse_admit: Some("circuit open".into()),
        ..Default::default()
    });
    let tier = tier(mock.base_url());
    let err = guarded(&guard).chat(&tier, &request()).await.unwrap_err();
    assert_eq!(
        err,
        UpstreamError::Rejected {
            tier: "large".into(),
            reason: "circuit open".into()
        }
    );
    assert_eq!(err.kind(), "rejected");
    let err = guarded(&guard)
        .chat_stream(&tier, &request())
        .await
        .err()
        .unwrap();
    assert!(matches!(err, UpstreamError::Rejected { .. }), "{err:?}");
    assert!(mock.requests().is_empty());
    assert_eq!(*guard.admits.lock().unwrap(), ["large", "large"]);
    assert!(guard.records().is_empty());
}

#[tokio::test]
async fn every_attempt_is_recorded_and_every_retry_asked_for() {
    let mock = mock(MockBehavior::Status(500)).await;
    let guard = Arc::new(CountingGuard::default());
    let mut tier = tier(mock.base_url());
    tier.retries = 2;
    guarded(&guard).chat(&tier, &request()).await.unwrap_err();
    assert_eq!(guard.records(), [false, false, false]);
    assert_eq!(guard.retries_asked(), 2);
    assert_eq!(guard.admits.lock().unwrap().len(), 1);

    mock.set_fault_plan(FaultPlan::Sequence(vec![MockBehavior::Status(503)]));
    let guard = Arc::new(CountingGuard::default());
    guarded(&guard).chat(&tier, &request()).await.unwrap();
    assert_eq!(guard.records(), [false, true]);
    assert_eq!(guard.retries_asked(), 1);
}

#[tokio::test]
async fn final_errors_ask_for_no_retry() {
    let mock = mock(MockBehavior::Status(400)).await;
    let guard = Arc::new(CountingGuard::default());
    let mut tier = tier(mock.base_url());
    tier.retries = 2;
    guarded(&guard).chat(&tier, &request()).await.unwrap_err();
    assert_eq!(guard.records(), [false]);
    assert_eq!(guard.retries_asked(), 0);
}

#[tokio::test]
async fn a_refused_retry_returns_the_last_error() {
    let mock = mock(MockBehavior::Status(503)).await;
    let guard = Arc::new(CountingGuard {
        refuse_retries: true,
        ..Default::default()
    });
    let mut tier = tier(mock.base_url());
    tier.retries = 3;
    let err = guarded(&guard).chat(&tier, &request()).await.unwrap_err();
    assert!(
        matches!(err, UpstreamError::Status { status: 503, .. }),
        "{err:?}"
    );
    assert_eq!(mock.requests().len(), 1);
    assert_eq!(guard.retries_asked(), 1);
    assert_eq!(guard.records(), [false]);
}

#[tokio::test]
async fn streams_are_recorded_when_opened_and_when_they_end() {
    let mock = mock(MockBehavior::Ok).await;
    let tier = tier(mock.base_url());
    let guard = Arc::new(CountingGuard::default());
    let stream = guarded(&guard)
        .chat_stream(&tier, &request())
        .await
        .unwrap();
    assert_eq!(guard.records(), [true]);
    let events = collect(stream).await;
    assert!(matches!(events.last(), Some(Ok(StreamEvent::Done { .. }))));
    assert_eq!(guard.records(), [true, true]);

    mock.set_behavior(MockBehavior::StreamCut { after_chunks: 1 });
    let guard = Arc::new(CountingGuard::default());
    let stream = guarded(&guard)
        .chat_stream(&tier, &request())
        .await
        .unwrap();
    let events = collect(stream).await;
    assert!(matches!(events.last(), Some(Err(_))), "{events:?}");
    assert_eq!(guard.records(), [true, false]);

    mock.set_behavior(MockBehavior::Status(503));
    let guard = Arc::new(CountingGuard::default());
    guarded(&guard)
        .chat_stream(&tier, &request())
        .await
        .err()
        .unwrap();
    assert_eq!(guard.records(), [false]);
}
