//! The call guard hook: what the retry loop asks and tells it.

use std::sync::{Arc, Mutex};

use sluice_policy::BreakerSettings;
use sluice_test_support::FaultPlan;
use sluice_upstream::{BreakerState, CallGuard, TierGuards, UpstreamError};

use super::*;

/// Remembers every question and outcome; refuses what it is told to.
#[derive(Debug, Default)]
struct CountingGuard {
    refuse_admit: Option<String>,
    refuse_retries: bool,
    admits: Mutex<Vec<String>>,
    retries_asked: Mutex<usize>,
    records: Mutex<Vec<bool>>,
    abandoned: Mutex<usize>,
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

    fn abandon(&self, _tier: &Tier) {
        *self.abandoned.lock().unwrap() += 1;
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

#[tokio::test]
async fn a_call_dropped_before_its_outcome_is_abandoned_once() {
    let mock = mock(MockBehavior::Hang).await;
    let guard = Arc::new(CountingGuard::default());
    let tier = tier(mock.base_url());
    let dropped = tokio::time::timeout(
        Duration::from_millis(100),
        guarded(&guard).chat(&tier, &request()),
    )
    .await;
    assert!(dropped.is_err(), "the hung call should still be pending");
    assert_eq!(*guard.abandoned.lock().unwrap(), 1);
    assert!(guard.records().is_empty());
    // A call with an outcome is not abandoned as well.
    mock.set_behavior(MockBehavior::Ok);
    guarded(&guard).chat(&tier, &request()).await.unwrap();
    assert_eq!(*guard.abandoned.lock().unwrap(), 1);
    assert_eq!(guard.records(), [true]);
}

/// A breaker that opens on one failure, pauses 50 ms and closes on one good probe.
fn twitchy(base_url: String) -> Tier {
    Tier {
        circuit_breaker: BreakerSettings {
            consecutive_failures: 1,
            open_for: Duration::from_millis(50),
            half_open_probes: 1,
            ..BreakerSettings::default()
        },
        ..tier(base_url)
    }
}

#[tokio::test]
async fn a_half_open_probe_whose_caller_leaves_does_not_lock_the_tier_out() {
    let mock = mock(MockBehavior::Status(500)).await;
    let guards = Arc::new(TierGuards::new());
    let client = client().with_guard(Arc::clone(&guards) as Arc<dyn CallGuard>);
    let tier = twitchy(mock.base_url());
    client.chat(&tier, &request()).await.unwrap_err();
    assert_eq!(guards.state(&tier), BreakerState::Open);
    tokio::time::sleep(Duration::from_millis(60)).await;
    assert_eq!(guards.state(&tier), BreakerState::HalfOpen);
    // The probe hangs and its caller gives up.
    mock.set_behavior(MockBehavior::Hang);
    let gave_up =
        tokio::time::timeout(Duration::from_millis(100), client.chat(&tier, &request())).await;
    assert!(gave_up.is_err());
    // The tier recovered: the next call is a probe again, not refused.
    mock.set_behavior(MockBehavior::Ok);
    client.chat(&tier, &request()).await.unwrap();
    assert_eq!(guards.state(&tier), BreakerState::Closed);
}

#[tokio::test]
async fn breaker_settings_follow_the_tier_after_a_reload() {
    let mock = mock(MockBehavior::Status(500)).await;
    let guards = Arc::new(TierGuards::new());
    let client = client().with_guard(Arc::clone(&guards) as Arc<dyn CallGuard>);
    let lenient = Tier {
        circuit_breaker: BreakerSettings {
            consecutive_failures: 100,
            ..BreakerSettings::default()
        },
        ..tier(mock.base_url())
    };
    client.chat(&lenient, &request()).await.unwrap_err();
    assert_eq!(guards.state(&lenient), BreakerState::Closed);
    // The same tier, reloaded with a breaker that opens on one failure.
    let strict = twitchy(mock.base_url());
    client.chat(&strict, &request()).await.unwrap_err();
    assert_eq!(guards.state(&strict), BreakerState::Open);
    let err = client.chat(&strict, &request()).await.unwrap_err();
    assert!(matches!(err, UpstreamError::Rejected { .. }), "{err:?}");
}
