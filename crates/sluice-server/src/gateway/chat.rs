//! Complete (non-streamed) answers and dry-run scoring.

use std::sync::Arc;
use std::time::Instant;

use tracing::field::Empty;
use tracing::Instrument;

use futures::StreamExt;
use sluice_policy::{OnUpstreamFailure, Policy, RuleAction};
use sluice_router::{pipeline, Decision, Draft, FinishReason, LocalEvent, Reason, RouteChoice};

use super::admission::LocalPermit;
use super::cache::{CachedAnswer, Caches, Probe};
use super::{
    cost_avoided, local_request, ms, remote_meta, validate, AnswerMeta, ChatInput, ChatOutput,
    DecisionInfo, Gateway, RemoteFinish, RouteHint, RouteInfo, RouteKind, ScoreOutput, Timings,
    UsageInfo,
};
use crate::error::GatewayError;

/// A draft and what the policy made of it.
pub(super) struct Scored {
    /// The greedy draft, when the method made one.
    pub draft: Option<Draft>,
    pub decision: Decision,
    pub info: DecisionInfo,
    pub score_ms: f64,
}

/// How a request starts, before any tier is called: the one request plan (rules, the
/// prompt's fit, admission, the scoring pipeline) that Chat, ChatStream and Score all run.
pub(super) enum Start {
    /// The local model answers.
    Local(DecisionInfo, LocalStart),
    /// Go to the tiers (only the named one, when a rule chose it); the draft, if any, is the
    /// fallback.
    Escalate(DecisionInfo, Option<Draft>, Option<String>),
}

/// How the local model answers a request kept local.
pub(super) enum LocalStart {
    /// A drafting method scored the draft at or above the threshold: the draft is the answer.
    Draft(Draft),
    /// Generate now with the caller's parameters (streamed as it is produced), while the
    /// place on the local model is held: a rule or the caller asked for the local model, or a
    /// pre-route method kept the request without drafting. `None` only in a dry run, which
    /// generates nothing and so takes no place.
    Generate(Option<LocalPermit>),
}

/// A local answer, however it was produced.
pub(super) struct LocalAnswer {
    pub text: String,
    pub prompt_tokens: u32,
    pub completion_tokens: u32,
    pub finish: FinishReason,
}

impl From<Draft> for LocalAnswer {
    fn from(d: Draft) -> Self {
        Self {
            text: d.text,
            prompt_tokens: d.prompt_tokens,
            completion_tokens: d.completion_tokens,
            finish: d.finish,
        }
    }
}

pub(super) fn unscored(policy: &Policy, reason: Reason) -> DecisionInfo {
    DecisionInfo {
        confidence: None,
        threshold: policy.scoring.threshold,
        method: None,
        reason: reason.as_str(),
        features: Vec::new(),
        policy: policy.name.clone(),
        rule: None,
    }
}

impl Gateway {
    /// Route and answer one request.
    pub async fn chat(&self, input: ChatInput) -> Result<ChatOutput, GatewayError> {
        let started = Instant::now();
        let result = self.chat_cached(&input, started).await;
        match &result {
            Ok(out) => self.metrics().answered(&out.meta),
            Err(e) => self.metrics().failed(
                &self.policy_label(&input.policy),
                e.kind(),
                ms(started.elapsed()),
            ),
        }
        result
    }

    /// Answer from the cache when allowed, else route, then keep the answer when allowed.
    async fn chat_cached(
        &self,
        input: &ChatInput,
        started: Instant,
    ) -> Result<ChatOutput, GatewayError> {
        validate(input)?;
        let policy = self.policy(input)?;
        let model = self.local_model_id(&policy);
        if let Some(hit) = self.cache_probe(&policy, input, &model).await {
            return Ok(finish(hit.text.clone(), hit.meta(&policy, input), started));
        }
        let (out, pieces, draft) = self.chat_inner(&policy, input, started).await?;
        self.after_answer(&policy, input, &out.meta, &out.text, draft);
        // A fallback answer stands in for a tier that failed just now: not worth keeping.
        if !out.meta.route.fallback && Caches::will_store(&policy, input) {
            let entry = CachedAnswer::from_meta(&out.text, pieces, &out.meta);
            self.inner
                .caches
                .store(&policy, input, &model, &entry)
                .await;
        }
        Ok(out)
    }

    /// Look the request up in the response cache, counting the outcome.
    pub(super) async fn cache_probe(
        &self,
        policy: &Policy,
        input: &ChatInput,
        model: &str,
    ) -> Option<CachedAnswer> {
        let lookup = self.inner.caches.lookup(policy, input, model);
        match lookup.instrument(tracing::info_span!("sluice.cache")).await {
            Probe::Hit(answer, result) => {
                self.metrics().cache_lookup(result);
                Some(answer)
            }
            Probe::Miss => {
                self.metrics().cache_lookup("miss");
                None
            }
            Probe::Bypass => {
                self.metrics().cache_lookup("bypass");
                None
            }
        }
    }

    /// Route and answer; also returns the answer's pieces as produced, for the cache, and
    /// the draft scoring made for a request that then escalated, for its shadow sample.
    async fn chat_inner(
        &self,
        policy: &Arc<Policy>,
        input: &ChatInput,
        started: Instant,
    ) -> Result<(ChatOutput, Vec<String>, Option<String>), GatewayError> {
        let policy = policy.clone();
        let mut timings = Timings::default();
        let (info, draft, only) = match self.begin(&policy, input, &mut timings, false).await? {
            Start::Local(info, LocalStart::Draft(draft)) => {
                let meta = self.local_meta(&policy, input, info, &draft, false, timings);
                return Ok((finish(draft.text, meta, started), draft.pieces, None));
            }
            Start::Local(info, LocalStart::Generate(permit)) => {
                let t = Instant::now();
                let answer = self
                    .generate_local(&policy, input)
                    .instrument(tracing::info_span!("sluice.local"))
                    .await?;
                drop(permit);
                timings.local_ms = ms(t.elapsed());
                let meta = self.local_meta(&policy, input, info, &answer, false, timings);
                return Ok((finish(answer.text, meta, started), Vec::new(), None));
            }
            Start::Escalate(info, draft, only) => (info, draft, only),
        };
        let Some(hold) = self
            .reserve_budget(&policy, input, only.as_deref())
            .instrument(tracing::info_span!("sluice.budget"))
            .await?
        else {
            // The tenant's budget is spent and the policy says answer locally.
            let mut info = info;
            info.reason = Reason::Budget.as_str();
            let answer = self
                .draft_or_generate(&policy, input, draft, &mut timings)
                .await?;
            let meta = self.local_meta(&policy, input, info, &answer, false, timings);
            return Ok((finish(answer.text, meta, started), Vec::new(), None));
        };
        // A caller that hangs up while the tier works drops this future with the hold: the
        // reservation then stays charged, the most the escalation could have cost.
        match self.escalate(&policy, input, only.as_deref()).await {
            Ok((c, tier, upstream_ms)) => {
                timings.upstream_ms = upstream_ms;
                self.settle(hold, c.cost_usd).await;
                let done = RemoteFinish {
                    model: c.model,
                    finish_reason: c.finish_reason,
                    usage: c.usage,
                    cost_usd: c.cost_usd,
                };
                let meta = remote_meta(input, info, &tier.name, done, timings);
                // The draft scoring made, kept for a sample of this escalation.
                let draft = draft.map(|d| d.text);
                Ok((finish(c.content, meta, started), Vec::new(), draft))
            }
            Err((failure, upstream_ms)) => {
                timings.upstream_ms = upstream_ms;
                // No tier answered: nothing to pay.
                self.settle(hold, 0.0).await;
                // No fallback when the policy says so, or when there is no draft to fall back
                // on and the caller's deadline leaves no time to generate one.
                if policy.on_upstream_failure == OnUpstreamFailure::Error
                    || (failure.deadline_passed && draft.is_none())
                {
                    return Err(failure.into_error());
                }
                let answer = match self
                    .draft_or_generate(&policy, input, draft, &mut timings)
                    .instrument(tracing::info_span!("sluice.fallback"))
                    .await
                {
                    // No local fallback for a prompt too long for it, or when the local model
                    // is full: the tiers' error stands.
                    Err(GatewayError::TooLong { .. } | GatewayError::LocalBusy { .. }) => {
                        return Err(failure.into_error())
                    }
                    other => other?,
                };
                let meta = self.local_meta(&policy, input, info, &answer, true, timings);
                Ok((finish(answer.text, meta, started), Vec::new(), None))
            }
        }
    }

    /// The local answer when a request will not be escalated after all: the draft made for
    /// scoring, else a fresh generation with the caller's parameters.
    async fn draft_or_generate(
        &self,
        policy: &Policy,
        input: &ChatInput,
        draft: Option<Draft>,
        timings: &mut Timings,
    ) -> Result<LocalAnswer, GatewayError> {
        if let Some(d) = draft {
            return Ok(d.into());
        }
        // A fresh generation takes a place on the local model like any other.
        let _permit = self.admit_local_only(policy).await?;
        let t = Instant::now();
        let a = self.generate_local(policy, input).await?;
        timings.local_ms = ms(t.elapsed());
        Ok(a)
    }

    /// Where a request starts: a confident draft, a local generation, or the tier chain (with
    /// the draft, when one was made, kept for a fallback). A `dry_run` (Score) takes no place
    /// on the local model for a request it would not score.
    pub(super) async fn begin(
        &self,
        policy: &Policy,
        input: &ChatInput,
        timings: &mut Timings,
        dry_run: bool,
    ) -> Result<Start, GatewayError> {
        let generate = || async {
            Ok::<_, GatewayError>(LocalStart::Generate(if dry_run {
                None
            } else {
                Some(self.admit_local_only(policy).await?)
            }))
        };
        // Rules come first, whatever the caller's hint: a privacy rule must hold even for a
        // caller that asks for the tiers.
        let rule = self
            .matching_rule(policy, input)
            .instrument(tracing::info_span!("sluice.rules"))
            .await?;
        let rule_name = rule.as_ref().map(|(name, _)| name.clone());
        let with_rule = |mut info: DecisionInfo| {
            info.rule.clone_from(&rule_name);
            info
        };
        match rule.map(|(_, action)| action) {
            Some(RuleAction::Local) => {
                let start = generate().await?;
                return Ok(Start::Local(
                    with_rule(unscored(policy, Reason::Rule)),
                    start,
                ));
            }
            Some(RuleAction::Tier(tier)) => {
                let info = with_rule(unscored(policy, Reason::Rule));
                return Ok(Start::Escalate(info, None, Some(tier)));
            }
            // `matching_rule` turns a reject into the error
            Some(RuleAction::Reject(_) | RuleAction::Score) | None => {}
        }
        Ok(match input.hint {
            RouteHint::Local => {
                let start = generate().await?;
                Start::Local(with_rule(unscored(policy, Reason::HintLocal)), start)
            }
            RouteHint::Remote => {
                Start::Escalate(with_rule(unscored(policy, Reason::HintRemote)), None, None)
            }
            RouteHint::Auto => {
                // A prompt the local model cannot take goes to the tiers unscored.
                match self.local_fits(policy, input).await {
                    Err(GatewayError::TooLong { .. }) if !policy.tiers.is_empty() => {
                        let info = with_rule(unscored(policy, Reason::TooLong));
                        return Ok(Start::Escalate(info, None, None));
                    }
                    other => other?,
                }
                // A full local model sends the request on rather than queueing it.
                let Some(permit) = self.admission().admit_for(policy).await else {
                    return match policy.tiers.is_empty() {
                        false => {
                            self.metrics().local_busy("escalated");
                            let info = with_rule(unscored(policy, Reason::LocalBusy));
                            Ok(Start::Escalate(info, None, None))
                        }
                        true => Err(self.local_busy(policy)),
                    };
                };
                let score_span = tracing::info_span!("sluice.score", "sluice.confidence" = Empty);
                let s = self
                    .score_input(policy, input)
                    .instrument(score_span.clone())
                    .await?;
                if let Some(c) = s.info.confidence {
                    score_span.record("sluice.confidence", c);
                }
                timings.score_ms = s.score_ms;
                let info = with_rule(s.info);
                match (s.decision.route, s.draft) {
                    (RouteChoice::Local, Some(draft)) => {
                        Start::Local(info, LocalStart::Draft(draft))
                    }
                    // A pre-route method kept it local: the answer is generated (and streamed)
                    // on the place scoring held.
                    (RouteChoice::Local, None) => {
                        let permit = (!dry_run).then_some(permit);
                        Start::Local(info, LocalStart::Generate(permit))
                    }
                    (RouteChoice::Remote, draft) => Start::Escalate(info, draft, None),
                }
            }
        })
    }

    /// Dry run: what `Chat` would do, calling no tier and generating no answer (the draft a
    /// drafting method scores is made, and returned).
    pub async fn score(&self, input: ChatInput) -> Result<ScoreOutput, GatewayError> {
        let started = Instant::now();
        validate(&input)?;
        let policy = self.policy(&input)?;
        let mut timings = Timings::default();
        let start = self.begin(&policy, &input, &mut timings, true).await?;
        let local = || -> Result<RouteInfo, GatewayError> {
            Ok(RouteInfo {
                kind: RouteKind::Local,
                tier: None,
                model: self.local()?.model_id().to_string(),
                fallback: false,
            })
        };
        let (decision, route, draft) = match start {
            Start::Local(info, LocalStart::Draft(d)) => (info, local()?, d.text),
            Start::Local(info, LocalStart::Generate(_)) => (info, local()?, String::new()),
            Start::Escalate(info, draft, only) => {
                let draft = draft.map(|d| d.text).unwrap_or_default();
                let tier = only
                    .and_then(|t| policy.tiers.iter().find(|x| x.name == t))
                    .or_else(|| policy.first_tier());
                match tier {
                    Some(tier) => (
                        info,
                        RouteInfo {
                            kind: RouteKind::Remote,
                            tier: Some(tier.name.clone()),
                            model: tier.model.clone(),
                            fallback: false,
                        },
                        draft,
                    ),
                    // Nothing to escalate to: Chat would answer locally.
                    None => (info, local()?, draft),
                }
            }
        };
        Ok(ScoreOutput {
            decision,
            route,
            draft,
            timings: Timings {
                total_ms: ms(started.elapsed()),
                score_ms: timings.score_ms,
                ..Timings::default()
            },
        })
    }

    /// Greedy draft of the answer, reused when the same prompt was drafted before (same
    /// tenant, policy and model); stop sequences are not in the key, so those skip the cache.
    pub(super) async fn draft(
        &self,
        policy: &Policy,
        input: &ChatInput,
    ) -> Result<Draft, GatewayError> {
        let local = self.local()?;
        let req = local_request(policy, input);
        let model = local.model_id().to_string();
        let caches = &self.inner.caches;
        let reusable = input.params.stop.is_empty();
        if reusable {
            if let Some(d) = caches.draft(policy, input, &model, req.max_tokens).await {
                self.metrics().cache_lookup("score_hit");
                return Ok(d);
            }
        }
        let max_tokens = req.max_tokens;
        let d = {
            let _g = self.metrics().slm_guard();
            local.draft(req).await?
        };
        if reusable {
            caches
                .store_draft(policy, input, &model, max_tokens, &d)
                .await;
        }
        Ok(d)
    }

    /// The scoring pipeline (`sluice_router::pipeline`) on the local model, drafting through
    /// the draft cache. `answer_confidence` drafts the answer first; the pre-route methods
    /// only prefill, so the draft is `None`.
    pub(super) async fn score_input(
        &self,
        policy: &Policy,
        input: &ChatInput,
    ) -> Result<Scored, GatewayError> {
        let local = self.local()?;
        let t = Instant::now();
        let prefill = {
            let _g = policy
                .scoring
                .uses_prefill()
                .then(|| self.metrics().slm_guard());
            pipeline::prefill_stage(local.as_ref(), policy, &input.messages).await?
        };
        let draft = if pipeline::wants_draft(policy, &prefill) {
            Some(self.draft(policy, input).await?)
        } else {
            None
        };
        let (features, decision) = pipeline::conclude(
            policy,
            &input.tenant,
            &input.messages,
            prefill,
            draft.as_ref(),
        );
        let info = DecisionInfo {
            confidence: decision.confidence,
            threshold: decision.threshold,
            method: Some(policy.scoring.method.as_str()),
            reason: decision.reason.as_str(),
            features: features.0.iter().map(|(f, v)| (f.as_str(), *v)).collect(),
            policy: policy.name.clone(),
            rule: None,
        };
        Ok(Scored {
            draft,
            decision,
            info,
            score_ms: ms(t.elapsed()),
        })
    }

    /// Generate with the caller's sampling parameters, unscored.
    pub(super) async fn generate_local(
        &self,
        policy: &Policy,
        input: &ChatInput,
    ) -> Result<LocalAnswer, GatewayError> {
        self.local_fits(policy, input).await?;
        let local = self.local()?;
        let _g = self.metrics().slm_guard();
        let mut s = local.stream(local_request(policy, input)).await?;
        let mut text = String::new();
        while let Some(ev) = s.next().await {
            match ev? {
                LocalEvent::Delta(t) => text.push_str(&t),
                LocalEvent::Done {
                    prompt_tokens,
                    completion_tokens,
                    finish,
                } => {
                    return Ok(LocalAnswer {
                        text,
                        prompt_tokens,
                        completion_tokens,
                        finish,
                    })
                }
            }
        }
        Err(GatewayError::Local(sluice_router::LocalError::Generation(
            "the local model stopped without finishing the answer".into(),
        )))
    }

    pub(super) fn local_meta<A: LocalTokens>(
        &self,
        policy: &Policy,
        input: &ChatInput,
        decision: DecisionInfo,
        answer: &A,
        fallback: bool,
        timings: Timings,
    ) -> AnswerMeta {
        let (p, c, finish) = answer.tokens();
        AnswerMeta {
            request_id: input.request_id.clone(),
            finish_reason: finish.as_str().to_string(),
            route: RouteInfo {
                kind: RouteKind::Local,
                tier: None,
                model: self
                    .local()
                    .map(|m| m.model_id().to_string())
                    .unwrap_or_else(|_| policy.local.model.clone()),
                fallback,
            },
            decision,
            usage: UsageInfo {
                prompt_tokens: p.into(),
                completion_tokens: c.into(),
                cost_usd: 0.0,
                cost_avoided_usd: cost_avoided(policy, p.into(), c.into()),
            },
            timings,
        }
    }
}

/// Token counts of a local answer, whether a scored draft or a plain generation.
pub(super) trait LocalTokens {
    fn tokens(&self) -> (u32, u32, FinishReason);
}

impl LocalTokens for Draft {
    fn tokens(&self) -> (u32, u32, FinishReason) {
        (self.prompt_tokens, self.completion_tokens, self.finish)
    }
}

impl LocalTokens for LocalAnswer {
    fn tokens(&self) -> (u32, u32, FinishReason) {
        (self.prompt_tokens, self.completion_tokens, self.finish)
    }
}

fn finish(text: String, mut meta: AnswerMeta, started: Instant) -> ChatOutput {
    meta.timings.total_ms = ms(started.elapsed());
    ChatOutput { text, meta }
}
