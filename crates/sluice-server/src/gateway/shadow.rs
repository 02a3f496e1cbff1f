//! Shadow sampling (a policy's `shadow:`): for a sampled share of the requests the policy's
//! score kept local, the first tier is asked the same request too, after the answer has gone
//! out, within the policy's own shadow budget; the two answers are compared, and the running
//! agreement says how good the kept-local answers are on live traffic.
//!
//! Never on the request's path: the sample is spawned after the answer is complete and the
//! caller never waits for it. Requests a rule decided, and requests with personal data or
//! secrets, are never shadowed, whatever rule the policy has for them.

use std::collections::HashMap;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::sync::{Arc, Mutex};
use std::time::{Instant, SystemTime};

use sluice_policy::{Policy, Role, Shadow};
use sluice_router::eval::normalize;
use tokio::task::JoinSet;

use super::{upstream_request, AnswerMeta, ChatInput, Gateway, RouteKind};
use crate::budget::civil::unix_day;

/// How a local answer compares with the tier's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Agreement {
    Agree,
    Disagree,
    /// The comparer cannot tell (long free-form answers); not counted in the estimate.
    Unknown,
}

impl Agreement {
    pub fn as_str(self) -> &'static str {
        match self {
            Agreement::Agree => "yes",
            Agreement::Disagree => "no",
            Agreement::Unknown => "unknown",
        }
    }
}

/// Judges whether a local answer says what the tier's says.
pub trait Comparer: Send + Sync + std::fmt::Debug {
    fn compare(&self, local: &str, tier: &str) -> Agreement;
}

/// Short answers, judged as the evaluation grader judges them: both answers normalised
/// (lowercase, punctuation to spaces); they agree when equal, or when the shorter, at most
/// `SHORT_WORDS` words, is found whole in the longer; two short answers that differ disagree;
/// anything longer is `Unknown`.
#[derive(Debug, Clone, Copy, Default)]
pub struct ShortAnswers;

/// Longest answer, in words, that `ShortAnswers` judges.
pub const SHORT_WORDS: usize = 8;

impl Comparer for ShortAnswers {
    fn compare(&self, local: &str, tier: &str) -> Agreement {
        let (a, b) = (normalize(local), normalize(tier));
        let words = |s: &str| s.split_whitespace().count();
        let (short, long) = if words(&a) <= words(&b) {
            (a, b)
        } else {
            (b, a)
        };
        if words(&short) == 0 || words(&short) > SHORT_WORDS {
            return Agreement::Unknown;
        }
        if long.contains(&short) {
            Agreement::Agree
        } else if words(&long) <= SHORT_WORDS {
            Agreement::Disagree
        } else {
            Agreement::Unknown
        }
    }
}

/// Whether request `id` is in the sampled share `rate`: a hash of the id, so a request's fate
/// does not depend on timing and a replay samples the same requests.
pub fn sampled(id: &str, rate: f64) -> bool {
    let mut h = DefaultHasher::new();
    id.hash(&mut h);
    (h.finish() as f64 / u64::MAX as f64) < rate
}

/// Agreement share and its 95% Wilson interval from `agree` of `n` judged samples.
pub fn wilson(agree: u64, n: u64) -> Option<(f64, f64, f64)> {
    if n == 0 {
        return None;
    }
    let (n, p, z) = (n as f64, agree as f64 / n as f64, 1.96_f64);
    let denominator = 1.0 + z * z / n;
    let centre = (p + z * z / (2.0 * n)) / denominator;
    let half = z * (p * (1.0 - p) / n + z * z / (4.0 * n * n)).sqrt() / denominator;
    Some((p, (centre - half).max(0.0), (centre + half).min(1.0)))
}

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

/// Why a sampled request was not shadowed after all.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Skip {
    RateLimit,
    Budget,
}

impl Skip {
    pub fn as_str(self) -> &'static str {
        match self {
            Skip::RateLimit => "rate_limit",
            Skip::Budget => "budget",
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
        let kept_by_score = meta.route.kind == RouteKind::Local
            && !meta.route.fallback
            && meta.decision.confidence.is_some()
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
                    metrics.shadow.skipped(&name, "tier_error");
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
    fn short_answers_agree_when_one_holds_the_other() {
        let c = ShortAnswers;
        assert_eq!(c.compare("8", "3 plus 5 equals 8."), Agreement::Agree);
        assert_eq!(c.compare("Yes.", "yes"), Agreement::Agree);
        assert_eq!(c.compare("implausible", "Plausible"), Agreement::Disagree);
        // " 18 " does not hold " 8 ": whole words only
        assert_eq!(c.compare("18", "8"), Agreement::Disagree);
        // a short answer and a short sentence that does not hold it
        assert_eq!(
            c.compare("No", "Paris is the capital, so yes"),
            Agreement::Disagree
        );
        // a long one that does not hold it: cannot tell
        let sentence = "Paris has been the capital of France for many centuries now";
        assert_eq!(c.compare("No", sentence), Agreement::Unknown);
        let long = "word ".repeat(SHORT_WORDS + 1);
        assert_eq!(c.compare(&long, &long), Agreement::Unknown);
        assert_eq!(c.compare("", "yes"), Agreement::Unknown);
    }

    #[test]
    fn sampling_is_by_id_and_near_the_rate() {
        let n = 10_000;
        let hits = (0..n).filter(|i| sampled(&format!("req-{i}"), 0.1)).count();
        assert!((900..=1100).contains(&hits), "{hits} of {n} at 10%");
        assert!(sampled("x", 1.0));
        assert_eq!(sampled("req-7", 0.3), sampled("req-7", 0.3));
    }

    #[test]
    fn wilson_interval_holds_the_estimate() {
        assert_eq!(wilson(0, 0), None);
        let (p, lo, hi) = wilson(8, 10).unwrap();
        assert!((p - 0.8).abs() < 1e-12);
        // The textbook figures for 8 of 10: 0.490 .. 0.943.
        assert!(
            (lo - 0.4902).abs() < 1e-3 && (hi - 0.9433).abs() < 1e-3,
            "{lo} {hi}"
        );
        let (_, lo, hi) = wilson(10, 10).unwrap();
        assert!(lo > 0.6 && hi == 1.0);
    }

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
