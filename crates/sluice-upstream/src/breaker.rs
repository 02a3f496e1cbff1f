//! Circuit breaker for one tier: stop sending to a tier that keeps failing, probe it again
//! after a pause, close once the probes succeed.
//!
//! A pure state machine: every method takes `now`, so tests drive time by hand.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use sluice_policy::BreakerSettings;

/// Where the breaker stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BreakerState {
    /// Calls flow; outcomes are counted.
    Closed,
    /// Calls are refused until the pause ends.
    Open,
    /// A limited number of probe calls may go; their outcome decides.
    HalfOpen,
}

impl BreakerState {
    pub fn as_str(self) -> &'static str {
        match self {
            BreakerState::Closed => "closed",
            BreakerState::Open => "open",
            BreakerState::HalfOpen => "half_open",
        }
    }
}

/// Outcomes per second over the window, so memory stays bounded at any request rate.
#[derive(Debug, Default)]
struct Window {
    buckets: VecDeque<(Instant, u32, u32)>,
}

impl Window {
    fn prune(&mut self, now: Instant, span: Duration) {
        while let Some(&(t, _, _)) = self.buckets.front() {
            if now.saturating_duration_since(t) >= span {
                self.buckets.pop_front();
            } else {
                break;
            }
        }
    }

    fn add(&mut self, now: Instant, success: bool) {
        match self.buckets.back_mut() {
            Some((t, ok, fail)) if now.saturating_duration_since(*t) < Duration::from_secs(1) => {
                if success {
                    *ok += 1;
                } else {
                    *fail += 1;
                }
            }
            _ => self
                .buckets
                .push_back((now, u32::from(success), u32::from(!success))),
        }
    }

    fn totals(&self) -> (u64, u64) {
        self.buckets.iter().fold((0, 0), |(o, f), &(_, ok, fail)| {
            (o + u64::from(ok), f + u64::from(fail))
        })
    }
}

/// The breaker of one tier.
#[derive(Debug)]
pub struct Breaker {
    settings: BreakerSettings,
    state: BreakerState,
    consecutive_failures: u32,
    window: Window,
    open_until: Option<Instant>,
    probes_in_flight: u32,
    probe_successes: u32,
}

impl Breaker {
    pub fn new(settings: BreakerSettings) -> Self {
        Self {
            settings,
            state: BreakerState::Closed,
            consecutive_failures: 0,
            window: Window::default(),
            open_until: None,
            probes_in_flight: 0,
            probe_successes: 0,
        }
    }

    /// The state as of `now` (an open breaker whose pause is over reads as half-open).
    pub fn state(&self, now: Instant) -> BreakerState {
        match (self.state, self.open_until) {
            (BreakerState::Open, Some(until)) if now >= until => BreakerState::HalfOpen,
            (s, _) => s,
        }
    }

    /// May a call start now? The error says why not and for how long.
    pub fn admit(&mut self, now: Instant) -> Result<(), String> {
        if self.state(now) == BreakerState::HalfOpen && self.state == BreakerState::Open {
            self.state = BreakerState::HalfOpen;
            self.open_until = None;
            self.probes_in_flight = 0;
            self.probe_successes = 0;
        }
        match self.state {
            BreakerState::Closed => Ok(()),
            BreakerState::Open => {
                let left = self
                    .open_until
                    .map_or(Duration::ZERO, |u| u.saturating_duration_since(now));
                Err(format!(
                    "circuit open after repeated failures; next probe in {} ms",
                    left.as_millis()
                ))
            }
            BreakerState::HalfOpen => {
                if self.probes_in_flight < self.settings.half_open_probes {
                    self.probes_in_flight += 1;
                    Ok(())
                } else {
                    Err("circuit half-open and its probe calls are under way".to_string())
                }
            }
        }
    }

    /// A call that `admit` let through ended with no outcome (its caller gave up: a
    /// deadline, a hang-up). It tells nothing about the tier, but a half-open breaker's
    /// probe slot must be given back, or the tier stays refused for good.
    pub fn abandon(&mut self) {
        if self.state == BreakerState::HalfOpen {
            self.probes_in_flight = self.probes_in_flight.saturating_sub(1);
        }
    }

    /// Follow a policy reload: new thresholds apply from now on, the state and what was
    /// counted so far stay (an open breaker is not closed by a reload).
    pub fn reconfigure(&mut self, settings: BreakerSettings) {
        self.settings = settings;
    }

    pub fn settings(&self) -> BreakerSettings {
        self.settings
    }

    /// The outcome of one call that `admit` let through.
    pub fn record(&mut self, now: Instant, success: bool) {
        match self.state {
            BreakerState::Closed => {
                self.window.prune(now, self.settings.window);
                self.window.add(now, success);
                if success {
                    self.consecutive_failures = 0;
                    return;
                }
                self.consecutive_failures += 1;
                let (ok, fail) = self.window.totals();
                let total = ok + fail;
                let ratio_tripped = total >= u64::from(self.settings.min_requests)
                    && fail as f64 / total as f64 >= self.settings.error_ratio;
                if self.consecutive_failures >= self.settings.consecutive_failures || ratio_tripped
                {
                    self.open(now);
                }
            }
            BreakerState::HalfOpen => {
                self.probes_in_flight = self.probes_in_flight.saturating_sub(1);
                if !success {
                    self.open(now);
                    return;
                }
                self.probe_successes += 1;
                if self.probe_successes >= self.settings.half_open_probes {
                    self.state = BreakerState::Closed;
                    self.consecutive_failures = 0;
                    self.window = Window::default();
                }
            }
            // A call admitted before the breaker opened finished late: it changes nothing.
            BreakerState::Open => {}
        }
    }

    fn open(&mut self, now: Instant) {
        self.state = BreakerState::Open;
        self.open_until = Some(now + self.settings.open_for);
        self.probes_in_flight = 0;
        self.probe_successes = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> BreakerSettings {
        BreakerSettings {
            consecutive_failures: 3,
            error_ratio: 0.5,
            min_requests: 10,
            window: Duration::from_secs(30),
            open_for: Duration::from_secs(10),
            half_open_probes: 2,
        }
    }

    #[test]
    fn opens_after_consecutive_failures_then_probes_and_closes() {
        let t0 = Instant::now();
        let mut b = Breaker::new(settings());
        for _ in 0..2 {
            assert!(b.admit(t0).is_ok());
            b.record(t0, false);
        }
        assert_eq!(b.state(t0), BreakerState::Closed);
        b.admit(t0).unwrap();
        b.record(t0, false);
        assert_eq!(b.state(t0), BreakerState::Open);
        let err = b.admit(t0 + Duration::from_secs(1)).unwrap_err();
        assert!(err.contains("circuit open"), "{err}");
        assert!(err.contains("9000 ms"), "{err}");

        // the pause is over: two probes may go, a third waits
        let t1 = t0 + Duration::from_secs(10);
        assert_eq!(b.state(t1), BreakerState::HalfOpen);
        b.admit(t1).unwrap();
        b.admit(t1).unwrap();
        assert!(b.admit(t1).unwrap_err().contains("half-open"));
        b.record(t1, true);
        assert_eq!(b.state(t1), BreakerState::HalfOpen);
        b.record(t1, true);
        assert_eq!(b.state(t1), BreakerState::Closed);
        assert!(b.admit(t1).is_ok());
    }

    #[test]
    fn a_failed_probe_opens_it_again() {
        let t0 = Instant::now();
        let mut b = Breaker::new(settings());
        for _ in 0..3 {
            b.admit(t0).unwrap();
            b.record(t0, false);
        }
        let t1 = t0 + Duration::from_secs(10);
        b.admit(t1).unwrap();
        b.record(t1, false);
        assert_eq!(b.state(t1), BreakerState::Open);
        assert!(b.admit(t1 + Duration::from_secs(9)).is_err());
        assert!(b.admit(t1 + Duration::from_secs(10)).is_ok());
    }

    #[test]
    fn successes_reset_the_consecutive_count() {
        let t0 = Instant::now();
        let mut b = Breaker::new(settings());
        for i in 0..20 {
            b.admit(t0).unwrap();
            // fail, fail, succeed, ...: never three in a row, ratio 2/3 but we look below
            b.record(t0 + Duration::from_secs(i * 60), i % 3 == 2);
        }
        // each minute is its own window here, so the ratio never has 10 requests
        assert_eq!(
            b.state(t0 + Duration::from_secs(20 * 60)),
            BreakerState::Closed
        );
    }

    #[test]
    fn opens_on_error_ratio_over_the_window() {
        let t0 = Instant::now();
        let mut b = Breaker::new(settings());
        // alternate success and failure: never 3 in a row, but half of 10 fail
        for i in 0..10u64 {
            let now = t0 + Duration::from_millis(i * 100);
            b.admit(now).unwrap();
            b.record(now, i % 2 == 0);
        }
        assert_eq!(b.state(t0 + Duration::from_secs(1)), BreakerState::Open);
    }

    #[test]
    fn old_outcomes_leave_the_window() {
        let t0 = Instant::now();
        let mut b = Breaker::new(settings());
        for i in 0..9u64 {
            let now = t0 + Duration::from_millis(i * 10);
            b.record(now, i % 2 == 0);
        }
        // 31 s later the old failures no longer count: 1 failure of 1 < min_requests
        let later = t0 + Duration::from_secs(31);
        b.record(later, false);
        assert_eq!(b.state(later), BreakerState::Closed);
    }

    #[test]
    fn an_abandoned_probe_gives_its_slot_back() {
        let t0 = Instant::now();
        let mut b = Breaker::new(BreakerSettings {
            half_open_probes: 1,
            ..settings()
        });
        for _ in 0..3 {
            b.admit(t0).unwrap();
            b.record(t0, false);
        }
        let t1 = t0 + Duration::from_secs(10);
        b.admit(t1).unwrap();
        assert!(b.admit(t1).unwrap_err().contains("under way"));
        b.abandon();
        assert_eq!(b.state(t1), BreakerState::HalfOpen);
        b.admit(t1).unwrap();
        b.record(t1, true);
        assert_eq!(b.state(t1), BreakerState::Closed);
        // Closed: abandoning changes nothing.
        b.abandon();
        assert_eq!(b.state(t1), BreakerState::Closed);
    }

    #[test]
    fn reconfigured_thresholds_apply_and_the_state_stays() {
        let t0 = Instant::now();
        let mut b = Breaker::new(settings());
        b.admit(t0).unwrap();
        b.record(t0, false);
        assert_eq!(b.state(t0), BreakerState::Closed);
        b.reconfigure(BreakerSettings {
            consecutive_failures: 2,
            ..settings()
        });
        b.admit(t0).unwrap();
        b.record(t0, false);
        assert_eq!(b.state(t0), BreakerState::Open);
        b.reconfigure(settings());
        assert_eq!(b.state(t0), BreakerState::Open);
    }

    #[test]
    fn late_outcomes_while_open_change_nothing() {
        let t0 = Instant::now();
        let mut b = Breaker::new(settings());
        for _ in 0..3 {
            b.record(t0, false);
        }
        b.record(t0, true);
        assert_eq!(b.state(t0), BreakerState::Open);
    }
}
