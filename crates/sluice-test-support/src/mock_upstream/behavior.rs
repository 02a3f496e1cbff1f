//! How the mock answers: [`MockBehavior`] for one request, [`FaultPlan`] for a series,
//! and the `x-mock-fault` header syntax that picks a behaviour for a single request.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

/// The request header that picks the behaviour of that one request, in the syntax of
/// [`MockBehavior`]'s `Display` (`status=503`, `latency=250ms`, `reset`, …).
pub const FAULT_HEADER: &str = "x-mock-fault";

/// How the mock answers one request.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum MockBehavior {
    /// A normal answer.
    #[default]
    Ok,
    /// Waits this long before the response headers, then answers normally.
    Latency(Duration),
    /// The same as [`MockBehavior::Latency`] (its older name).
    Delay(Duration),
    /// This HTTP status with the API's error JSON body.
    Status(u16),
    /// This status with a `Retry-After: seconds` header.
    RetryAfter { status: u16, seconds: u64 },
    /// Reads the request and never answers, until the client gives up (or the mock
    /// stops).
    Hang,
    /// Reads the request and resets the TCP connection without any HTTP response.
    Reset,
    /// Streams this many text deltas, then closes the connection without ending the
    /// stream; a non-streaming request gets the first half of its body, then the close.
    StreamCut { after_chunks: usize },
    /// A 200 whose body (or, streaming, whose first `data:` payload) is not valid JSON.
    MalformedJson,
    /// Streams normally but waits this long before each chunk of the body;
    /// non-streaming requests are answered normally.
    SlowStream(Duration),
    /// The first `failures` requests get `status` (as [`MockBehavior::Status`]), later
    /// ones a normal answer. The count starts when this behavior is set. Cannot be
    /// asked for by header; [`FaultPlan::Sequence`] is the general form.
    FailThenOk { status: u16, failures: u32 },
}

impl MockBehavior {
    /// The key under which [`crate::MockUpstream::counts`] counts this behaviour:
    /// `ok`, `latency`, `delay`, `status_503`, `retry_after_429`, `hang`, `reset`,
    /// `stream_cut`, `malformed_json`, `slow_stream` or `fail_then_ok`.
    pub fn label(&self) -> String {
        match self {
            MockBehavior::Ok => "ok".into(),
            MockBehavior::Latency(_) => "latency".into(),
            MockBehavior::Delay(_) => "delay".into(),
            MockBehavior::Status(status) => format!("status_{status}"),
            MockBehavior::RetryAfter { status, .. } => format!("retry_after_{status}"),
            MockBehavior::Hang => "hang".into(),
            MockBehavior::Reset => "reset".into(),
            MockBehavior::StreamCut { .. } => "stream_cut".into(),
            MockBehavior::MalformedJson => "malformed_json".into(),
            MockBehavior::SlowStream(_) => "slow_stream".into(),
            MockBehavior::FailThenOk { .. } => "fail_then_ok".into(),
        }
    }
}

/// The header syntax: `ok`, `latency=250ms`, `delay=250ms`, `status=503`,
/// `retry_after=429,2`, `hang`, `reset`, `stream_cut=3`, `malformed_json`,
/// `slow_stream=100ms`; `fail_then_ok=429,2` is shown but not parsed.
impl fmt::Display for MockBehavior {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MockBehavior::Ok => f.write_str("ok"),
            MockBehavior::Latency(d) => write!(f, "latency={}ms", d.as_millis()),
            MockBehavior::Delay(d) => write!(f, "delay={}ms", d.as_millis()),
            MockBehavior::Status(status) => write!(f, "status={status}"),
            MockBehavior::RetryAfter { status, seconds } => {
                write!(f, "retry_after={status},{seconds}")
            }
            MockBehavior::Hang => f.write_str("hang"),
            MockBehavior::Reset => f.write_str("reset"),
            MockBehavior::StreamCut { after_chunks } => write!(f, "stream_cut={after_chunks}"),
            MockBehavior::MalformedJson => f.write_str("malformed_json"),
            MockBehavior::SlowStream(d) => write!(f, "slow_stream={}ms", d.as_millis()),
            MockBehavior::FailThenOk { status, failures } => {
                write!(f, "fail_then_ok={status},{failures}")
            }
        }
    }
}

impl FromStr for MockBehavior {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let bad = || {
            format!(
                "expected a mock fault like ok, latency=250ms, status=503, retry_after=429,2, \
                 hang, reset, stream_cut=3 or malformed_json, found {s:?}"
            )
        };
        let (name, arg) = match s.trim().split_once('=') {
            Some((name, arg)) => (name.trim(), Some(arg.trim())),
            None => (s.trim(), None),
        };
        let duration = |arg: Option<&str>| arg.and_then(parse_duration).ok_or_else(bad);
        Ok(match (name, arg) {
            ("ok", None) => MockBehavior::Ok,
            ("hang", None) => MockBehavior::Hang,
            ("reset", None) => MockBehavior::Reset,
            ("malformed_json", None) => MockBehavior::MalformedJson,
            ("latency", _) => MockBehavior::Latency(duration(arg)?),
            ("delay", _) => MockBehavior::Delay(duration(arg)?),
            ("slow_stream", _) => MockBehavior::SlowStream(duration(arg)?),
            ("status", _) => MockBehavior::Status(number(arg).ok_or_else(bad)?),
            ("stream_cut", _) => MockBehavior::StreamCut {
                after_chunks: number(arg).ok_or_else(bad)?,
            },
            ("retry_after", Some(arg)) => {
                let (status, seconds) = arg.split_once(',').ok_or_else(bad)?;
                MockBehavior::RetryAfter {
                    status: number(Some(status)).ok_or_else(bad)?,
                    seconds: number(Some(seconds)).ok_or_else(bad)?,
                }
            }
            _ => return Err(bad()),
        })
    }
}

/// A whole number.
fn number<T: FromStr>(arg: Option<&str>) -> Option<T> {
    arg?.trim().parse().ok()
}

/// `250ms` or `2s`.
fn parse_duration(s: &str) -> Option<Duration> {
    if let Some(ms) = s.strip_suffix("ms") {
        return ms.parse().ok().map(Duration::from_millis);
    }
    s.strip_suffix('s')?.parse().ok().map(Duration::from_secs)
}

/// Which behaviour each request gets when it does not ask by header.
#[derive(Debug, Clone, PartialEq)]
pub enum FaultPlan {
    /// Every request gets this behaviour.
    Always(MockBehavior),
    /// The n-th request (counted from when the plan was set) gets the n-th behaviour;
    /// requests after the last get [`MockBehavior::Ok`].
    Sequence(Vec<MockBehavior>),
    /// Each request gets a fault with its probability, else [`MockBehavior::Ok`]; the
    /// draws come from a generator seeded with `seed`, so a run can be repeated.
    /// Probabilities are taken in order and should sum to at most 1.
    Random {
        seed: u64,
        faults: Vec<(MockBehavior, f64)>,
    },
}

impl Default for FaultPlan {
    fn default() -> Self {
        FaultPlan::Always(MockBehavior::Ok)
    }
}

/// A [`FaultPlan`] being played.
#[derive(Debug)]
pub(super) struct PlanState {
    plan: FaultPlan,
    /// Requests the plan has served.
    served: usize,
    rng: XorShift,
}

impl PlanState {
    pub(super) fn new(plan: FaultPlan) -> Self {
        let seed = match plan {
            FaultPlan::Random { seed, .. } => seed,
            _ => 0,
        };
        Self {
            plan,
            served: 0,
            rng: XorShift::new(seed),
        }
    }

    /// The behaviour of the next request.
    pub(super) fn next(&mut self) -> MockBehavior {
        let n = self.served;
        self.served += 1;
        match &self.plan {
            FaultPlan::Always(behavior) => *behavior,
            FaultPlan::Sequence(behaviors) => behaviors.get(n).copied().unwrap_or_default(),
            FaultPlan::Random { faults, .. } => {
                let draw = self.rng.next_unit();
                let mut below = 0.0;
                for (behavior, probability) in faults {
                    below += probability;
                    if draw < below {
                        return *behavior;
                    }
                }
                MockBehavior::Ok
            }
        }
    }
}

/// xorshift64*: tiny, fast, and good enough to pick faults.
#[derive(Debug)]
struct XorShift(u64);

impl XorShift {
    fn new(seed: u64) -> Self {
        // Zero is the one state xorshift never leaves.
        XorShift(if seed == 0 {
            0x9E37_79B9_7F4A_7C15
        } else {
            seed
        })
    }

    /// A number in `[0, 1)`.
    fn next_unit(&mut self) -> f64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        (x.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 11) as f64 / (1u64 << 53) as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_syntax_round_trips() {
        let all = [
            MockBehavior::Ok,
            MockBehavior::Latency(Duration::from_millis(250)),
            MockBehavior::Delay(Duration::from_secs(2)),
            MockBehavior::Status(503),
            MockBehavior::RetryAfter {
                status: 429,
                seconds: 2,
            },
            MockBehavior::Hang,
            MockBehavior::Reset,
            MockBehavior::StreamCut { after_chunks: 3 },
            MockBehavior::MalformedJson,
            MockBehavior::SlowStream(Duration::from_millis(100)),
        ];
        for behavior in all {
            assert_eq!(behavior.to_string().parse(), Ok(behavior), "{behavior}");
        }
        assert_eq!(
            "latency=2s".parse(),
            Ok(MockBehavior::Latency(Duration::from_secs(2)))
        );
        assert_eq!(
            " retry_after = 503, 1 ".parse(),
            Ok(MockBehavior::RetryAfter {
                status: 503,
                seconds: 1
            })
        );
        for bad in [
            "",
            "boom",
            "status",
            "status=x",
            "latency=5",
            "ok=1",
            "fail_then_ok=429,2",
        ] {
            let err = bad.parse::<MockBehavior>().unwrap_err();
            assert!(
                err.starts_with("expected a mock fault like"),
                "{bad}: {err}"
            );
        }
    }

    #[test]
    fn sequences_end_in_ok() {
        let mut state = PlanState::new(FaultPlan::Sequence(vec![
            MockBehavior::Status(503),
            MockBehavior::Reset,
        ]));
        let got: Vec<MockBehavior> = (0..4).map(|_| state.next()).collect();
        assert_eq!(
            got,
            [
                MockBehavior::Status(503),
                MockBehavior::Reset,
                MockBehavior::Ok,
                MockBehavior::Ok
            ]
        );
    }

    #[test]
    fn random_plans_repeat_with_their_seed_and_follow_the_odds() {
        let plan = FaultPlan::Random {
            seed: 42,
            faults: vec![(MockBehavior::Status(503), 0.3), (MockBehavior::Reset, 0.1)],
        };
        let draw = |plan: &FaultPlan| {
            let mut state = PlanState::new(plan.clone());
            (0..10_000).map(|_| state.next()).collect::<Vec<_>>()
        };
        let first = draw(&plan);
        assert_eq!(first, draw(&plan));
        let share = |b: MockBehavior| first.iter().filter(|x| **x == b).count() as f64 / 1e4;
        assert!((share(MockBehavior::Status(503)) - 0.3).abs() < 0.03);
        assert!((share(MockBehavior::Reset) - 0.1).abs() < 0.02);
        assert!((share(MockBehavior::Ok) - 0.6).abs() < 0.03);

        let other = FaultPlan::Random {
            seed: 7,
            faults: vec![(MockBehavior::Status(503), 0.3), (MockBehavior::Reset, 0.1)],
        };
        assert_ne!(first, draw(&other));
    }

    #[test]
    fn labels() {
        assert_eq!(MockBehavior::Status(503).label(), "status_503");
        assert_eq!(
            MockBehavior::RetryAfter {
                status: 429,
                seconds: 1
            }
            .label(),
            "retry_after_429"
        );
        assert_eq!(
            MockBehavior::StreamCut { after_chunks: 2 }.label(),
            "stream_cut"
        );
    }
}
