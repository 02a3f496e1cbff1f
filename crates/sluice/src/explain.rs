//! `sluice explain`: which rule of a policy matches a prompt and why, and what scoring would
//! decide, calling no tier.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

use anyhow::{bail, Context};
use sluice_policy::{Message, Policy, Role, RuleAction};
use sluice_router::{explain_rules, pipeline, LocalModel, LocalRequest, RuleInput};
use sluice_slm::SlmModel;

/// What `explain` was asked about.
pub struct Question<'a> {
    pub policy: &'a Path,
    pub prompt: &'a str,
    pub tenant: &'a str,
    pub tags: &'a [String],
    pub model: &'a Path,
    /// Skip loading the model: rules only.
    pub rules_only: bool,
}

/// `k=v` pairs into a map; a pair without `=` is an error naming it.
pub fn parse_tags(tags: &[String]) -> anyhow::Result<BTreeMap<String, String>> {
    tags.iter()
        .map(|t| match t.split_once('=') {
            Some((k, v)) if !k.is_empty() => Ok((k.to_owned(), v.to_owned())),
            _ => bail!("--tag {t:?}: expected KEY=VALUE"),
        })
        .collect()
}

/// The rule walk as text: one line per rule until the first match.
pub fn rules_report(policy: &Policy, input: &RuleInput<'_>) -> (String, Option<RuleAction>) {
    let mut out = String::new();
    let mut decided = None;
    if policy.rules.is_empty() {
        out.push_str("rules: none in this policy\n");
    }
    for ((name, result), rule) in explain_rules(&policy.rules, input)
        .into_iter()
        .zip(&policy.rules)
    {
        match result {
            Ok(reasons) => {
                let why = if reasons.is_empty() {
                    "no conditions".to_owned()
                } else {
                    reasons.join("; ")
                };
                let _ = writeln!(out, "rule {name}: MATCHES ({why}) -> {}", rule.action);
                decided = Some(rule.action.clone());
                break;
            }
            Err(failed) => {
                let _ = writeln!(out, "rule {name}: no ({failed})");
            }
        }
    }
    if decided.is_none() && !policy.rules.is_empty() {
        out.push_str("no rule matched -> score\n");
    }
    (out, decided)
}

pub async fn explain(q: &Question<'_>) -> anyhow::Result<String> {
    let policy = sluice_policy::load_policy_file(q.policy)?;
    let tags = parse_tags(q.tags)?;
    let messages = vec![Message::new(Role::User, q.prompt)];
    let needs_model = !q.rules_only;
    let model = if needs_model {
        if !q.model.is_file() {
            bail!(
                "model file {} does not exist; fetch it with `scripts/fetch-model`, pass --model, \
                 or use --rules-only",
                q.model.display()
            );
        }
        Some(SlmModel::load(q.model).await?)
    } else {
        None
    };
    let prompt_tokens = match &model {
        Some(m) => Some(m.count_tokens(&messages).await?),
        None => None,
    };
    let input = RuleInput {
        tenant: q.tenant,
        tags: &tags,
        messages: &messages,
        prompt_tokens,
    };
    let mut out = format!(
        "policy {} ({}), tenant {:?}\n",
        policy.name,
        q.policy.display(),
        q.tenant
    );
    if prompt_tokens.is_none() && policy.rules.iter().any(|r| r.when.prompt_tokens.is_some()) {
        out.push_str(
            "(--rules-only: prompt_tokens conditions are not evaluated and never match)\n",
        );
    }
    let (rules, decided) = rules_report(&policy, &input);
    out.push_str(&rules);
    match decided {
        Some(RuleAction::Local) => out.push_str("route: local (by rule, not scored)\n"),
        Some(RuleAction::Tier(t)) => {
            let _ = writeln!(out, "route: tier {t} (by rule, not scored)");
        }
        Some(RuleAction::Reject(m)) => {
            let _ = writeln!(out, "route: rejected with PERMISSION_DENIED: {m}");
        }
        Some(RuleAction::Score) | None => match &model {
            None => out.push_str("scoring: skipped (--rules-only)\n"),
            Some(m) => out.push_str(&score(&policy, q.tenant, &messages, m).await?),
        },
    }
    Ok(out)
}

async fn score(
    policy: &Policy,
    tenant: &str,
    messages: &[Message],
    model: &SlmModel,
) -> anyhow::Result<String> {
    let mut out = String::new();
    let method = policy.scoring.method;
    policy.check_model(model.sha256())?;
    let prefill = pipeline::prefill_stage(model, policy, messages).await?;
    let draft = if pipeline::wants_draft(policy, &prefill) {
        let draft = model
            .draft(LocalRequest {
                messages: messages.to_vec(),
                max_tokens: policy.local.max_tokens,
                temperature: None,
                top_p: None,
                stop: Vec::new(),
            })
            .await
            .context("drafting")?;
        let _ = writeln!(out, "draft: {:?}", draft.text);
        Some(draft)
    } else {
        None
    };
    let (features, d) = pipeline::conclude(policy, tenant, messages, prefill, draft.as_ref());
    let _ = writeln!(out, "scoring: {}", method.as_str());
    let weight = |f| {
        policy
            .scoring
            .weights
            .terms
            .iter()
            .find(|(g, _)| *g == f)
            .map(|(_, w)| *w)
    };
    let _ = writeln!(out, "  {:<16} {:>10} {:>10}", "feature", "value", "weight");
    for (f, v) in &features.0 {
        let w = weight(*f).map_or_else(|| "-".to_owned(), |w| format!("{w:.4}"));
        let _ = writeln!(out, "  {:<16} {v:>10.4} {w:>10}", f.as_str());
    }
    let c = d.confidence.unwrap_or_default();
    let route = match d.route {
        sluice_router::RouteChoice::Local => "local".to_owned(),
        sluice_router::RouteChoice::Remote => format!(
            "escalate to {}",
            policy.first_tier().map_or("-", |t| t.name.as_str())
        ),
    };
    let _ = writeln!(
        out,
        "confidence {c:.4} vs threshold {} ({}) -> {route}",
        d.threshold,
        d.reason.as_str()
    );
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_parse_and_bad_ones_are_named() {
        let t = parse_tags(&["team=ml".into(), "env=a=b".into()]).unwrap();
        assert_eq!(t["team"], "ml");
        assert_eq!(t["env"], "a=b");
        let e = parse_tags(&["oops".into()]).unwrap_err().to_string();
        assert!(e.contains("--tag \"oops\": expected KEY=VALUE"), "{e}");
        assert!(parse_tags(&["=v".into()]).is_err());
    }

    #[test]
    fn the_rule_walk_stops_at_the_first_match() {
        let src = "version: 1\nname: p\nlocal: { model: m }\ntiers: []\nscoring:\n  \
                   method: answer_confidence\n  threshold: 0.5\n  weights: { bias: 0 }\n\
                   rules:\n  - name: acme\n    when: { tenant: acme }\n    action: local\n  \
                   - name: mail\n    when: { pii: email }\n    action: { reject: no }\n  \
                   - name: all\n    action: score\n";
        let policy =
            sluice_policy::parse_policy(src, Path::new("p.yaml"), &|_: &str| None).unwrap();
        let tags = BTreeMap::new();
        let messages = vec![Message::new(Role::User, "write to bob@example.com")];
        let input = RuleInput {
            tenant: "beta",
            tags: &tags,
            messages: &messages,
            prompt_tokens: None,
        };
        let (text, action) = rules_report(&policy, &input);
        assert_eq!(action, Some(RuleAction::Reject("no".into())));
        assert!(text.starts_with("rule acme: no ("), "{text}");
        assert!(text.contains("rule mail: MATCHES ("), "{text}");
        assert!(
            !text.contains("rule all"),
            "stops at the first match: {text}"
        );
    }
}
