//! What `sluice eval` reports: local and large accuracy, how well each score ranks the local
//! answers, and accuracy and cost when routing on each score escalates a given share.

use std::collections::BTreeMap;

use serde::Serialize;
use sluice_policy::{Feature, Policy, PromptStates, Tier};
use sluice_router::eval::agree::{wilson, Agreement, Comparer, ShortAnswers};
use sluice_router::eval::routing::{
    apgr, min_escalated_for_quality, pgr, point_at_share, random_curve, routing_curve, CurvePoint,
    Outcome,
};
use sluice_router::eval::{auprc, auroc, cross_val_scores, fit_logistic};
use sluice_router::{pipeline, RouteChoice};

use super::large::LargeAnswer;
use super::methods::Methods;
use super::{Row, FEATURES};

/// Regularisation of the logistic fits (summed log-loss + l2/2·‖w‖² on standardised features).
pub const L2: f64 = 1.0;
/// Folds and seed of the cross-validation, fixed so that runs repeat exactly.
pub const FOLDS: usize = 5;
pub const SEED: u64 = 7;
/// Share of large-only accuracy the "kept local" figure is read at.
pub const QUALITY: f64 = 0.95;

/// The large model's side of an evaluation.
pub struct LargeSide<'a> {
    pub tier: &'a Tier,
    pub answers: &'a [LargeAnswer],
    /// Whether each answer is right, in row order.
    pub right: Vec<bool>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub items: usize,
    pub policy: String,
    pub threshold: f64,
    pub local_model: String,
    pub local_accuracy: f64,
    pub large: Option<LargeSummary>,
    pub tasks: Vec<TaskRow>,
    /// AUROC and AUPRC of "the local answer is right" for each score.
    pub ranking: Vec<Ranking>,
    pub fitted: Fitted,
    pub routing: Option<Routing>,
    /// The scoring methods side by side, k-fold and leave-one-task-out.
    pub methods: Methods,
}

#[derive(Debug, Clone, Serialize)]
pub struct LargeSummary {
    pub tier: String,
    pub model: String,
    pub accuracy: f64,
    /// Cost of sending every item to the tier, at its prices, USD.
    pub cost_usd: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct TaskRow {
    pub task: String,
    pub items: usize,
    pub local_right: usize,
    pub large_right: Option<usize>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Ranking {
    pub score: String,
    pub auroc: f64,
    pub auprc: f64,
}

/// A logistic model over every feature, fitted on all rows; its quality is the held-out
/// (cross-validated) AUROC.
#[derive(Debug, Clone, Serialize)]
pub struct Fitted {
    pub bias: f64,
    pub weights: BTreeMap<String, f64>,
    pub cv_auroc: f64,
    pub cv_auprc: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct Routing {
    pub routers: Vec<RouterResult>,
    /// Where the policy's own threshold puts it.
    pub at_threshold: Point,
    /// Mean local time the requests the policy escalates wait before their tier is called
    /// (its draft, and its prefill when it uses one), ms, from the rows' measured times.
    pub at_threshold_added_ms: Option<f64>,
    /// The requests the policy keeps local, their answers judged against the large model's
    /// as shadow sampling judges them live: the figure `sluice_shadow_agreement` estimates.
    pub kept_local_agreement: KeptLocalAgreement,
}

/// Kept-local answers judged against the large model's answers (`agree::ShortAnswers`).
#[derive(Debug, Clone, Copy, Serialize)]
pub struct KeptLocalAgreement {
    pub kept: usize,
    pub agree: u64,
    pub disagree: u64,
    /// agree / (agree + disagree) and its 95% Wilson interval; `None` when none was judged.
    pub estimate: Option<(f64, f64, f64)>,
}

#[derive(Debug, Clone, Serialize)]
pub struct RouterResult {
    pub router: String,
    pub apgr: Option<f64>,
    /// Largest share kept local while routed accuracy stays ≥ 95% of large-only.
    pub share_local_at_95: Option<f64>,
    /// At shares escalated 0, 0.1, …, 1.
    pub table: Vec<Point>,
    /// Every point, for the plot.
    #[serde(skip)]
    pub curve: Vec<CurvePoint>,
}

#[derive(Debug, Clone, Copy, Serialize)]
pub struct Point {
    pub share_escalated: f64,
    pub accuracy: f64,
    pub pgr: Option<f64>,
    pub cost_usd: f64,
}

fn share(n: usize, of: usize) -> f64 {
    n as f64 / of.max(1) as f64
}

/// Everything the report shows, computed from the graded rows (and the large side if any).
pub fn build(
    policy: &Policy,
    rows: &[Row],
    large: Option<&LargeSide<'_>>,
    states: Option<&[PromptStates]>,
) -> Report {
    let labels: Vec<bool> = rows.iter().map(|r| r.right).collect();
    let xs: Vec<Vec<f64>> = rows.iter().map(Row::x).collect();
    let conf: Vec<f64> = rows.iter().map(|r| r.confidence).collect();
    let col = |f: Feature| -> Vec<f64> {
        let i = FEATURES.iter().position(|g| *g == f).unwrap_or(0);
        xs.iter().map(|x| x[i]).collect()
    };
    // Shorter prompts are easier: the length-only baseline ranks by fewer prompt tokens.
    let length: Vec<f64> = col(Feature::PromptTokens).iter().map(|v| -v).collect();
    let cv = cross_val_scores(&xs, &labels, FOLDS, L2, SEED);

    let mut ranking = vec![
        rank(format!("policy {}", policy.name), &conf, &labels),
        rank("logistic, all features, 5-fold CV".into(), &cv, &labels),
        rank("baseline: length only".into(), &length, &labels),
    ];
    for f in FEATURES {
        ranking.push(rank(format!("feature {}", f.as_str()), &col(f), &labels));
    }
    let fit = fit_logistic(&xs, &labels, L2);
    let fitted = Fitted {
        bias: fit.bias,
        weights: FEATURES
            .iter()
            .map(|f| f.as_str().to_owned())
            .zip(fit.weights.iter().copied())
            .collect(),
        cv_auroc: auroc(&cv, &labels),
        cv_auprc: auprc(&cv, &labels),
    };

    let mut tasks: BTreeMap<&str, TaskRow> = BTreeMap::new();
    for (i, r) in rows.iter().enumerate() {
        let t = tasks.entry(&r.task).or_insert_with(|| TaskRow {
            task: r.task.clone(),
            items: 0,
            local_right: 0,
            large_right: large.map(|_| 0),
        });
        t.items += 1;
        t.local_right += usize::from(r.right);
        if let (Some(n), Some(l)) = (t.large_right.as_mut(), large) {
            *n += usize::from(l.right[i]);
        }
    }

    let routing = large.map(|l| {
        let outcomes = |scores: &[f64]| -> Vec<Outcome> {
            scores
                .iter()
                .enumerate()
                .map(|(i, s)| Outcome {
                    score: *s,
                    local_right: labels[i],
                    large_right: l.right[i],
                    large_cost: l.answers[i].cost(l.tier),
                })
                .collect()
        };
        let policy_curve = routing_curve(&outcomes(&conf));
        let routers = vec![
            router("policy", policy_curve.clone()),
            router("logistic-cv", routing_curve(&outcomes(&cv))),
            router("length-only", routing_curve(&outcomes(&length))),
            router("random", random_curve(&outcomes(&conf))),
        ];
        // Where the policy's own decision sends each row: the gateway's decision over the
        // row's features (the cascade's first stage included), and what each escalated row
        // waited for: its prefill when the method reads one, its draft when it made one.
        let mut at = CurvePoint {
            escalated: 0,
            share: 0.0,
            accuracy: 0.0,
            cost: 0.0,
        };
        let mut waits = Vec::new();
        let mut kept = KeptLocalAgreement {
            kept: 0,
            agree: 0,
            disagree: 0,
            estimate: None,
        };
        for (i, r) in rows.iter().enumerate() {
            let features = r.feature_values();
            let escalated = pipeline::decision(policy, "", &features).route == RouteChoice::Remote;
            if !escalated {
                kept.kept += 1;
                match ShortAnswers.compare(&r.draft, &l.answers[i].text) {
                    Agreement::Agree => kept.agree += 1,
                    Agreement::Disagree => kept.disagree += 1,
                    Agreement::Unknown => {}
                }
            }
            let right = if escalated { l.right[i] } else { labels[i] };
            at.accuracy += f64::from(u8::from(right));
            if escalated {
                at.escalated += 1;
                at.cost += l.answers[i].cost(l.tier);
                let prefill = if policy.scoring.uses_prefill() {
                    r.prefill_ms
                } else {
                    0.0
                };
                let draft = if pipeline::wants_draft(policy, &features) {
                    r.draft_ms
                } else {
                    0.0
                };
                waits.push(prefill + draft);
            }
        }
        let n = rows.len().max(1) as f64;
        at.share = at.escalated as f64 / n;
        at.accuracy /= n;
        let p = at;
        Routing {
            routers,
            at_threshold: point(&policy_curve, &p),
            at_threshold_added_ms: (!waits.is_empty())
                .then(|| waits.iter().sum::<f64>() / waits.len() as f64),
            kept_local_agreement: KeptLocalAgreement {
                estimate: wilson(kept.agree, kept.agree + kept.disagree),
                ..kept
            },
        }
    });

    Report {
        items: rows.len(),
        policy: policy.name.clone(),
        threshold: policy.scoring.threshold,
        local_model: policy.local.model.clone(),
        local_accuracy: share(labels.iter().filter(|r| **r).count(), rows.len()),
        large: large.map(|l| LargeSummary {
            tier: l.tier.name.clone(),
            model: l
                .answers
                .first()
                .map(|a| a.model.clone())
                .unwrap_or_default(),
            accuracy: share(l.right.iter().filter(|r| **r).count(), rows.len()),
            cost_usd: l.answers.iter().map(|a| a.cost(l.tier)).sum(),
        }),
        tasks: tasks.into_values().collect(),
        ranking,
        fitted,
        routing,
        methods: super::methods::compare(rows, states, large),
    }
}

fn rank(score: String, s: &[f64], labels: &[bool]) -> Ranking {
    Ranking {
        score,
        auroc: auroc(s, labels),
        auprc: auprc(s, labels),
    }
}

fn point(curve: &[CurvePoint], p: &CurvePoint) -> Point {
    Point {
        share_escalated: p.share,
        accuracy: p.accuracy,
        pgr: pgr(curve, p),
        cost_usd: p.cost,
    }
}

fn router(name: &str, curve: Vec<CurvePoint>) -> RouterResult {
    let n = curve.len().saturating_sub(1);
    let table = (0..=10)
        .map(|i| point(&curve, &point_at_share(&curve, f64::from(i) / 10.0)))
        .collect();
    RouterResult {
        router: name.to_owned(),
        apgr: apgr(&curve),
        share_local_at_95: min_escalated_for_quality(&curve, QUALITY).map(|k| 1.0 - share(k, n)),
        table,
        curve,
    }
}
