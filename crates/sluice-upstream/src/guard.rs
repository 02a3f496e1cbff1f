//! [`CallGuard`]: the hook through which a circuit breaker and a retry budget steer
//! the retry loop, and [`NoGuard`], which lets everything through.

use sluice_policy::Tier;

/// Consulted by the retry loop of one tier.
///
/// For a whole answer, every attempt is recorded once: a success when it produced a
/// complete answer. A stream's attempt is recorded as a success when the stream
/// opened with a 2xx status, and then once more when it ends: a success at
/// [`crate::StreamEvent::Done`], a failure when it fails before that (a stream
/// dropped by its consumer before either is not recorded again).
pub trait CallGuard: Send + Sync + std::fmt::Debug {
    /// May a first attempt start now? `Err(reason)` fails the call with
    /// [`crate::UpstreamError::Rejected`] without sending.
    fn admit(&self, tier: &Tier) -> Result<(), String>;
    /// May a retry start now? `false` stops retrying and returns the last error.
    fn allow_retry(&self, tier: &Tier) -> bool;
    /// The outcome of one attempt (success = got a complete answer / an open stream
    /// with 2xx).
    fn record(&self, tier: &Tier, success: bool);
    /// An admitted call ended before any attempt's outcome was recorded (its future was
    /// dropped: a caller deadline or hang-up), so whatever `admit` reserved is given back.
    fn abandon(&self, tier: &Tier);
}

/// A guard that admits every call and allows every retry.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoGuard;

impl CallGuard for NoGuard {
    fn admit(&self, _tier: &Tier) -> Result<(), String> {
        Ok(())
    }

    fn allow_retry(&self, _tier: &Tier) -> bool {
        true
    }

    fn record(&self, _tier: &Tier, _success: bool) {}

    fn abandon(&self, _tier: &Tier) {}
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_guard_lets_everything_through() {
        let guard: &dyn CallGuard = &NoGuard;
        let t = Tier::openai("t", "http://127.0.0.1:1", "m");
        assert_eq!(guard.admit(&t), Ok(()));
        assert!(guard.allow_retry(&t));
        guard.record(&t, false);
        guard.abandon(&t);
    }
}
