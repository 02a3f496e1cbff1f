//! Shadow sampling (a policy's `shadow:`): for a sampled share of the requests the policy's
//! score kept local, the first tier is asked the same request too, after the answer has gone
//! out, within the policy's own shadow budget; the two answers are compared, and the running
//! agreement says how good the kept-local answers are on live traffic.
//!
//! Never on the request's path: the sample is spawned after the answer is complete and the
//! caller never waits for it. Requests a rule decided, and requests with personal data or
//! secrets, are never shadowed, whatever rule the policy has for them.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Instant, SystemTime};

use sluice_policy::{Policy, Role, Shadow};
use sluice_router::eval::agree::{sampled, wilson, Agreement, Comparer, ShortAnswers};
use sluice_router::Reason;
use tokio::task::JoinSet;

use super::{upstream_request, AnswerMeta, ChatInput, Gateway, RouteKind};
use crate::budget::civil::unix_day;

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
}

impl Skip {
    pub fn as_str(self) -> &'static str {
        match self {
            Skip::RateLimit => "rate_limit",
            Skip::Budget => "budget",
            Skip::TierError => "tier_error",
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
}

impl Default for Shadows {
    fn default() -> Self {
        Self {
            windows: Mutex::default(),
            tasks: Mutex::default(),
            comparer: Box::new(ShortAnswers),
        }
    }
}

impl Shadows {
    /// Take a place for one shadow call of `policy` now, or say why not.
    fn admit(&self, policy: &str, cfg: &Shadow, now: Instant, today: i64) -> Result<(), Skip> {
        let mut windows = self.windows.lock().unwrap_or_else(|p| p.into_inner());
        let w = windows.entry(policy.to_owned()).or_default();
        if w.day != today {
            w.day = today;
            w.spent_usd = 0.0;
        }
        if w.spent_usd >= cfg.budget_usd_daily {
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

    /// Book a finished call's cost and judgement; returns the agreement counts so far.
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

    /// Abort the shadow calls still running (at shutdown: a sample is not worth waiting for).
    pub fn stop(&self) -> usize {
        let mut tasks = self.tasks.lock().unwrap_or_else(|p| p.into_inner());
        let running = tasks.len();
        tasks.abort_all();
        running
    }
}

impl Gateway {
    /// After a request's answer is complete: when the policy shadows, the score kept the
    /// request local, and the request is sampled, ask the first tier too, off the path.
    pub(super) fn shadow(
        &self,
        policy: &Arc<Policy>,
        input: &ChatInput,
        meta: &AnswerMeta,
        text: &str,
    ) {
        let Some(cfg) = policy.shadow else { return };
        // Confident, not merely answered locally: a request the score sent on but a spent
        // budget kept is not a kept-local answer the estimate is about.
        let kept_by_score = meta.route.kind == RouteKind::Local
            && !meta.route.fallback
            && meta.decision.reason == Reason::Confident.as_str()
            && meta.decision.rule.is_none();
        let private = || {
            input
                .messages
                .iter()
                .filter(|m| m.role == Role::User)
                .any(|m| !sluice_policy::pii::kinds(&m.content).is_empty())
        };
        if !kept_by_score || !sampled(&input.request_id, cfg.rate) || private() {
            return;
        }
        let Some(tier) = policy.first_tier().cloned() else {
            return;
        };
        let today = unix_day(SystemTime::now());
        if let Err(skip) = self
            .inner
            .shadows
            .admit(&policy.name, &cfg, Instant::now(), today)
        {
            self.metrics().shadow.skipped(&policy.name, skip.as_str());
            return;
        }
        let (gw, name, local) = (self.clone(), policy.name.clone(), text.to_owned());
        let req = upstream_request(input);
        self.inner.shadows.spawn(async move {
            let started = Instant::now();
            let metrics = gw.metrics();
            match gw.inner.upstream.chat(&tier, &req).await {
                Ok(c) => {
                    metrics.upstream_call(&tier.name, "ok");
                    let tokens = (c.usage.prompt_tokens, c.usage.completion_tokens);
                    metrics.gen_ai_call(&tier, started, None, Some(tokens));
                    metrics.tier_spend(&tier.name, c.cost_usd, tokens);
                    let agreement = gw.inner.shadows.comparer.compare(&local, &c.content);
                    let (agree, judged) = gw.inner.shadows.record(&name, c.cost_usd, agreement);
                    metrics
                        .shadow
                        .sample(&name, agreement.as_str(), c.cost_usd, wilson(agree, judged));
                }
                Err(e) => {
                    let status = super::escalate::status_label(&e);
                    metrics.upstream_call(&tier.name, status);
                    metrics.gen_ai_call(&tier, started, Some(status), None);
                    metrics.shadow.skipped(&name, Skip::TierError.as_str());
                    tracing::debug!(policy = %name, tier = %tier.name, error = %e, "shadow call failed");
                }
            }
        });
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
        };
        let t0 = Instant::now();
        assert_eq!(s.admit("p", &cfg, t0, 1), Ok(()));
        assert_eq!(s.admit("p", &cfg, t0, 1), Ok(()));
        assert_eq!(s.admit("p", &cfg, t0, 1), Err(Skip::RateLimit));
        assert_eq!(s.admit("other", &cfg, t0, 1), Ok(()), "per policy");
        let later = t0 + std::time::Duration::from_secs(61);
        assert_eq!(s.admit("p", &cfg, later, 1), Ok(()), "a new minute");
        s.record("p", 0.02, Agreement::Agree);
        assert_eq!(s.admit("p", &cfg, later, 1), Err(Skip::Budget));
        assert_eq!(s.admit("p", &cfg, later, 2), Ok(()), "a new UTC day");
    }
}
