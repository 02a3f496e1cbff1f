//! Shadow sampling (a policy's `shadow:`): for a sampled share of the requests the policy's
//! score decided, the other side answers too, after the answer has gone out: the first tier
//! for a request kept local (within the policy's own shadow budget), the local model for an
//! escalated one (only while it is idle). The two answers are compared; the running agreement
//! of the kept-local ones says how good they are on live traffic, and with `--samples-dir`
//! every judged sample is written for `sluice calibrate --rows` to refit the policy on.
//!
//! Never on the request's path: the sample is spawned after the answer is complete and the
//! caller never waits for it. Requests a rule decided, and requests with personal data or
//! secrets in any message or the answer, are never sampled, whatever rule the policy has for
//! them; a sample whose second answer holds any is judged but not written.

mod second;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Instant, SystemTime};

use sluice_policy::{Policy, Shadow};
use sluice_router::eval::agree::{sampled, Agreement, Comparer, ShortAnswers};
use sluice_router::Reason;
use tokio::task::JoinSet;

use super::{AnswerMeta, ChatInput, Gateway, RouteKind};
use crate::budget::civil::unix_day;
use crate::records::RecordLog;

/// One policy's shadow state: the calls started this minute, the spend of this UTC day, and
/// the judged samples since start.
#[derive(Debug, Default)]
struct Window {
    minute_started: Option<Instant>,
    in_minute: u32,
    day: i64,
    spent_usd: f64,
    agree: u64,
    disagree: u64,
}

/// Why a sampled request was not shadowed after all (`sluice_shadow_skipped_total`'s reason).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Skip {
    RateLimit,
    Budget,
    /// The tier call failed.
    TierError,
    /// An escalated request's local answer waits for an idle local model, and it was busy.
    LocalBusy,
    /// The local model failed to answer an escalated request.
    LocalError,
    /// A request came for the local model while it answered an escalated request's sample:
    /// the sample gave way.
    Yielded,
}

impl Skip {
    pub fn as_str(self) -> &'static str {
        match self {
            Skip::RateLimit => "rate_limit",
            Skip::Budget => "budget",
            Skip::TierError => "tier_error",
            Skip::LocalBusy => "local_busy",
            Skip::LocalError => "local_error",
            Skip::Yielded => "yielded",
        }
    }
}

/// The shadow calls in flight and each policy's window; owned by the gateway, which aborts
/// the calls still running when it stops.
#[derive(Debug)]
pub struct Shadows {
    windows: Mutex<HashMap<String, Window>>,
    tasks: Mutex<JoinSet<()>>,
    comparer: Box<dyn Comparer>,
    /// Where judged samples are written (`--samples-dir`); none: only counted.
    log: OnceLock<Arc<RecordLog>>,
}

impl Default for Shadows {
    fn default() -> Self {
        Self {
            windows: Mutex::default(),
            tasks: Mutex::default(),
            comparer: Box::new(ShortAnswers),
            log: OnceLock::new(),
        }
    }
}

impl Shadows {
    /// Take a place for one sample of `policy` now, or say why not; `spends`: the sample calls
    /// the tier (a kept-local request), so the daily budget applies.
    fn admit(
        &self,
        policy: &str,
        cfg: &Shadow,
        now: Instant,
        today: i64,
        spends: bool,
    ) -> Result<(), Skip> {
        let mut windows = self.windows.lock().unwrap_or_else(|p| p.into_inner());
        let w = windows.entry(policy.to_owned()).or_default();
        if w.day != today {
            w.day = today;
            w.spent_usd = 0.0;
        }
        if spends && w.spent_usd >= cfg.budget_usd_daily {
            return Err(Skip::Budget);
        }
        let fresh = w
            .minute_started
            .is_none_or(|t| now.duration_since(t).as_secs() >= 60);
        if fresh {
            w.minute_started = Some(now);
            w.in_minute = 0;
        }
        if w.in_minute >= cfg.max_per_minute {
            return Err(Skip::RateLimit);
        }
        w.in_minute += 1;
        Ok(())
    }

    /// Whether `policy`'s shadow budget has room today (for a judgement).
    fn has_budget(&self, policy: &str, cfg: &Shadow, today: i64) -> bool {
        let windows = self.windows.lock().unwrap_or_else(|p| p.into_inner());
        windows
            .get(policy)
            .is_none_or(|w| w.day != today || w.spent_usd < cfg.budget_usd_daily)
    }

    /// Book a tier call of a sample that is not its second answer (a judgement).
    fn spend(&self, policy: &str, cost_usd: f64) {
        let mut windows = self.windows.lock().unwrap_or_else(|p| p.into_inner());
        windows.entry(policy.to_owned()).or_default().spent_usd += cost_usd;
    }

    /// Book a kept-local sample's cost and judgement; returns the agreement counts so far.
    fn record(&self, policy: &str, cost_usd: f64, agreement: Agreement) -> (u64, u64) {
        let mut windows = self.windows.lock().unwrap_or_else(|p| p.into_inner());
        let w = windows.entry(policy.to_owned()).or_default();
        w.spent_usd += cost_usd;
        match agreement {
            Agreement::Agree => w.agree += 1,
            Agreement::Disagree => w.disagree += 1,
            Agreement::Unknown => {}
        }
        (w.agree, w.agree + w.disagree)
    }

    fn spawn(&self, call: impl std::future::Future<Output = ()> + Send + 'static) {
        let mut tasks = self.tasks.lock().unwrap_or_else(|p| p.into_inner());
        // Finished calls leave their (empty) results behind until reaped.
        while tasks.try_join_next().is_some() {}
        tasks.spawn(call);
    }

    /// Write every judged sample to `log` from now on; a second log is refused.
    pub fn set_log(&self, log: Arc<RecordLog>) -> Result<(), Arc<RecordLog>> {
        self.log.set(log)
    }

    /// Abort the shadow calls still running (at shutdown: a sample is not worth waiting for).
    pub fn stop(&self) -> usize {
        let mut tasks = self.tasks.lock().unwrap_or_else(|p| p.into_inner());
        let running = tasks.len();
        tasks.abort_all();
        running
    }
}

impl Gateway {
    /// What the gateway learns from a complete answer, off the request's path: a shadow
    /// sample (`shadow:`) and a fine-tuning example (`distill:`), where the policy asks.
    pub(super) fn after_answer(
        &self,
        policy: &Arc<Policy>,
        input: &ChatInput,
        meta: &AnswerMeta,
        text: &str,
        escalated_draft: Option<String>,
    ) {
        self.shadow(policy, input, meta, text, escalated_draft);
        self.distill(policy, input, meta, text);
    }

    /// After a request's answer is complete: when the policy samples, the score decided the
    /// route, and the request is sampled, have the other side answer too, off the path.
    fn shadow(
        &self,
        policy: &Arc<Policy>,
        input: &ChatInput,
        meta: &AnswerMeta,
        text: &str,
        escalated_draft: Option<String>,
    ) {
        let Some(cfg) = policy.shadow else { return };
        let Some(side) = Side::of(meta) else { return };
        if !sampled(&input.request_id, cfg.rate) || input.private_with(&[text]) {
            return;
        }
        let Some(tier) = policy.first_tier().cloned() else {
            return;
        };
        let spends = side == Side::Local;
        let today = unix_day(SystemTime::now());
        if let Err(skip) =
            self.inner
                .shadows
                .admit(&policy.name, &cfg, Instant::now(), today, spends)
        {
            self.metrics()
                .shadow
                .skipped(&policy.name, side.as_str(), skip.as_str());
            return;
        }
        let task = second::Task {
            gw: self.clone(),
            policy: policy.clone(),
            input: input.clone(),
            meta: meta.clone(),
            text: text.to_owned(),
            tier,
            draft: escalated_draft,
        };
        self.inner.shadows.spawn(task.run(side));
    }
}

/// Which answer the caller got, so which side answers second.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Side {
    /// Kept local by the score: the first tier answers second.
    Local,
    /// Escalated by the score: the local model answers second.
    Remote,
}

impl Side {
    /// The side of an answer the score decided; `None` for answers a rule, the caller, a
    /// spent budget, a failed tier or the cache decided (not what the router is judged on).
    fn of(meta: &AnswerMeta) -> Option<Side> {
        if meta.route.fallback || meta.decision.rule.is_some() || meta.decision.confidence.is_none()
        {
            return None;
        }
        let reason = meta.decision.reason;
        match meta.route.kind {
            RouteKind::Local if reason == Reason::Confident.as_str() => Some(Side::Local),
            RouteKind::Remote
                if reason == Reason::LowConfidence.as_str()
                    || reason == Reason::ProbeLow.as_str() =>
            {
                Some(Side::Remote)
            }
            _ => None,
        }
    }

    pub(super) fn as_str(self) -> &'static str {
        match self {
            Side::Local => "local",
            Side::Remote => "remote",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn admission_keeps_the_minute_and_the_day() {
        let s = Shadows::default();
        let cfg = Shadow {
            rate: 1.0,
            max_per_minute: 2,
            budget_usd_daily: 0.01,
            judge: false,
        };
        let t0 = Instant::now();
        assert_eq!(s.admit("p", &cfg, t0, 1, true), Ok(()));
        assert_eq!(s.admit("p", &cfg, t0, 1, true), Ok(()));
        assert_eq!(s.admit("p", &cfg, t0, 1, true), Err(Skip::RateLimit));
        assert_eq!(s.admit("other", &cfg, t0, 1, true), Ok(()), "per policy");
        let later = t0 + std::time::Duration::from_secs(61);
        assert_eq!(s.admit("p", &cfg, later, 1, true), Ok(()), "a new minute");
        s.record("p", 0.02, Agreement::Agree);
        assert_eq!(s.admit("p", &cfg, later, 1, true), Err(Skip::Budget));
        assert_eq!(s.admit("p", &cfg, later, 2, true), Ok(()), "a new UTC day");
        s.record("p", 0.02, Agreement::Agree);
        let next = later + std::time::Duration::from_secs(61);
        assert_eq!(s.admit("p", &cfg, next, 2, true), Err(Skip::Budget));
        assert_eq!(
            s.admit("p", &cfg, next, 2, false),
            Ok(()),
            "an escalated request's sample calls no tier"
        );
    }
}
