//! A sample's second answer, off the request's path: asked of the other side, judged against
//! the first, counted, and written to the samples directory when there is one.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use sluice_policy::{GenParams, Message, Policy, Role, Tier};
use sluice_router::eval::agree::{
    judge_question, judge_verdict, wilson, Agreement, JUDGE_INSTRUCTION,
};
use sluice_router::eval::sample::{SampleRoute, ShadowSample};
use sluice_upstream::{Completion, UpstreamRequest};

use super::{Side, Skip};
use crate::budget::civil::unix_day;
use crate::gateway::{upstream_request, AnswerMeta, ChatInput, Gateway};
use crate::records::RecordLog;

/// How long the local model must have been idle before an escalated request's sample starts
/// on it: back-to-back traffic leaves no such gap, so samples never contend with it (a
/// prefill already running cannot be stopped midway).
const IDLE_GRACE: Duration = Duration::from_millis(250);

/// Everything a sample needs once the caller has its answer.
pub(in crate::gateway) struct Task {
    pub gw: Gateway,
    pub policy: Arc<Policy>,
    pub input: ChatInput,
    pub meta: AnswerMeta,
    /// The answer the caller got.
    pub text: String,
    /// The policy's first tier (asked when the request was kept local).
    pub tier: Tier,
    /// The draft scoring made for an escalated request: its local answer, at no cost.
    pub draft: Option<String>,
}

/// The tier's side of a sample.
struct Large {
    text: String,
    tier: String,
    model: String,
    prompt_tokens: u64,
    completion_tokens: u64,
    cost_usd: f64,
}

impl Task {
    pub async fn run(mut self, side: Side) {
        let name = self.policy.name.clone();
        let metrics = self.gw.metrics().clone();
        let pair = match side {
            Side::Local => self.ask_tier().await.map(|l| (self.text.clone(), l)),
            Side::Remote => match self.draft.take() {
                Some(draft) => Ok((draft, self.answered_by_tier())),
                None => self.ask_local().await.map(|t| (t, self.answered_by_tier())),
            },
        };
        let (local, large) = match pair {
            Ok(pair) => pair,
            Err(skip) => {
                metrics.shadow.skipped(&name, side.as_str(), skip.as_str());
                return;
            }
        };
        let shadows = &self.gw.inner.shadows;
        let mut agreement = shadows.comparer.compare(&local, &large.text);
        let mut judged_cost = 0.0;
        if agreement == Agreement::Unknown && self.policy.shadow.is_some_and(|s| s.judge) {
            if let Some((verdict, cost)) = self.judge(&local, &large.text).await {
                agreement = verdict;
                judged_cost = cost;
            }
        }
        // Only a kept-local sample paid the tier for its answer, and only those are the
        // estimate; a judgement is paid by either.
        let (spent, interval) = match side {
            Side::Local => {
                let (agree, judged) = shadows.record(&name, large.cost_usd, agreement);
                (large.cost_usd + judged_cost, wilson(agree, judged))
            }
            Side::Remote => (judged_cost, None),
        };
        metrics
            .shadow
            .sample(&name, side.as_str(), agreement.as_str(), spent, interval);
        // The second answer may hold what the request did not: then the sample is not kept.
        let private = || self.input.private_with(&[&local, &large.text]);
        if let Some(log) = shadows.log.get().cloned().filter(|_| !private()) {
            let sample = self.sample(side, local, large, agreement);
            if let Err(e) = write(log, sample).await {
                metrics.shadow.write_error(&name);
                tracing::warn!(policy = %name, error = %e, "cannot write a shadow sample");
            }
        }
    }

    /// One call of the first tier on the sample's behalf, counted as the gateway counts tier
    /// calls; `None` when it failed.
    async fn call_tier(&self, req: &UpstreamRequest) -> Option<Completion> {
        let (gw, tier) = (&self.gw, &self.tier);
        let started = Instant::now();
        let metrics = gw.metrics();
        match gw.inner.upstream.chat(tier, req).await {
            Ok(c) => {
                metrics.upstream_call(&tier.name, "ok");
                let tokens = (c.usage.prompt_tokens, c.usage.completion_tokens);
                metrics.gen_ai_call(tier, started, None, Some(tokens));
                metrics.tier_spend(&tier.name, c.cost_usd, tokens);
                Some(c)
            }
            Err(e) => {
                let status = crate::gateway::escalate::status_label(&e);
                metrics.upstream_call(&tier.name, status);
                metrics.gen_ai_call(tier, started, Some(status), None);
                tracing::debug!(policy = %self.policy.name, tier = %tier.name, error = %e, "shadow call failed");
                None
            }
        }
    }

    /// A kept-local request, asked of the first tier.
    async fn ask_tier(&self) -> Result<Large, Skip> {
        let c = self
            .call_tier(&upstream_request(&self.input))
            .await
            .ok_or(Skip::TierError)?;
        Ok(Large {
            text: c.content,
            tier: self.tier.name.clone(),
            model: c.model,
            prompt_tokens: c.usage.prompt_tokens,
            completion_tokens: c.usage.completion_tokens,
            cost_usd: c.cost_usd,
        })
    }

    /// Two answers too long to compare by rule, judged by the first tier (`shadow.judge`)
    /// while the policy's shadow budget has room; the verdict and what it cost, `None` when
    /// no judgement was had.
    async fn judge(&self, local: &str, large: &str) -> Option<(Agreement, f64)> {
        let cfg = self.policy.shadow?;
        let shadows = &self.gw.inner.shadows;
        if !shadows.has_budget(&self.policy.name, &cfg, unix_day(SystemTime::now())) {
            return None;
        }
        let request = self
            .input
            .messages
            .iter()
            .rev()
            .find(|m| m.role == Role::User)
            .map_or("", |m| m.content.as_str());
        let messages = vec![
            Message::new(Role::System, JUDGE_INSTRUCTION),
            Message::new(Role::User, judge_question(request, large, local)),
        ];
        let params = GenParams {
            max_tokens: Some(4),
            temperature: Some(0.0),
            ..GenParams::default()
        };
        let c = self
            .call_tier(&UpstreamRequest::new(messages, &params))
            .await?;
        shadows.spend(&self.policy.name, c.cost_usd);
        Some((judge_verdict(&c.content), c.cost_usd))
    }

    /// An escalated request, answered by the local model as it would have been kept; only
    /// once the local model has been idle for `IDLE_GRACE`, and given up the moment a
    /// request comes for it (the generation is dropped, which cancels it), so live traffic
    /// never waits behind a sample.
    async fn ask_local(&self) -> Result<String, Skip> {
        let admission = &self.gw.inner.admission;
        tokio::select! {
            () = tokio::time::sleep(IDLE_GRACE) => {}
            () = admission.more_than(0) => return Err(Skip::LocalBusy),
        }
        let Some(_idle) = admission.admit(1, Duration::ZERO).await else {
            return Err(Skip::LocalBusy);
        };
        let answer = tokio::select! {
            a = self.gw.generate_local(&self.policy, &self.input) => a,
            () = admission.more_than(1) => return Err(Skip::Yielded),
        };
        match answer {
            Ok(answer) => Ok(answer.text),
            Err(e) => {
                tracing::debug!(policy = %self.policy.name, error = %e, "shadow local answer failed");
                Err(Skip::LocalError)
            }
        }
    }

    /// The tier's answer the caller got (an escalated request).
    fn answered_by_tier(&self) -> Large {
        let m = &self.meta;
        Large {
            text: self.text.clone(),
            tier: m.route.tier.clone().unwrap_or_default(),
            model: m.route.model.clone(),
            prompt_tokens: m.usage.prompt_tokens,
            completion_tokens: m.usage.completion_tokens,
            cost_usd: m.usage.cost_usd,
        }
    }

    fn sample(self, side: Side, local: String, large: Large, agreement: Agreement) -> ShadowSample {
        let d = self.meta.decision;
        let unix_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |t| u64::try_from(t.as_millis()).unwrap_or(u64::MAX));
        ShadowSample {
            id: self.input.request_id,
            unix_ms,
            task: self.input.tags.get("task").cloned().unwrap_or_default(),
            tenant: self.input.tenant,
            policy: self.policy.name.clone(),
            route: match side {
                Side::Local => SampleRoute::Local,
                Side::Remote => SampleRoute::Remote,
            },
            method: d.method.unwrap_or_default().into(),
            confidence: d.confidence.unwrap_or_default(),
            threshold: d.threshold,
            features: d
                .features
                .into_iter()
                .map(|(k, v)| (k.to_owned(), v))
                .collect(),
            messages: self.input.messages,
            local,
            large: large.text,
            tier: large.tier,
            large_model: large.model,
            prompt_tokens: large.prompt_tokens,
            completion_tokens: large.completion_tokens,
            large_cost_usd: large.cost_usd,
            agree: agreement,
        }
    }
}

/// One line in the tenant's samples file, written on a blocking thread.
async fn write(log: Arc<RecordLog>, sample: ShadowSample) -> Result<(), String> {
    let line = serde_json::to_string(&sample).map_err(|e| e.to_string())?;
    let tenant = sample.tenant;
    tokio::task::spawn_blocking(move || log.append(&tenant, SystemTime::now(), &line))
        .await
        .map_err(|e| e.to_string())?
        .map(|_| ())
        .map_err(|e| e.to_string())
}
