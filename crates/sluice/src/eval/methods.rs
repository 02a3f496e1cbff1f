//! The scoring methods side by side, each cross-validated two ways: k-fold (held-out items of
//! the tasks it was fitted on) and leave-one-task-out (every item scored by a model fitted on
//! the other tasks only, as traffic of a task no one calibrated on would be).

use serde::Serialize;
use sluice_policy::{Feature, FeatureSource, PromptStates};
use sluice_router::eval::probe_fit::{fit_probe, held_out_log_odds, probe_file, probe_inputs};
use sluice_router::eval::routing::{
    apgr, min_escalated_for_quality, routing_curve, CurvePoint, Outcome,
};
use sluice_router::eval::{
    auroc, fit_logistic, group_assignment, kfold_assignment, scores_by_folds, within_group_auroc,
};

use super::report::{LargeSide, FOLDS, L2, QUALITY, SEED};
use super::{Row, FEATURES};
use sluice_router::eval::probe_fit::PROBE_L2;

/// One method's figures.
#[derive(Debug, Clone, Serialize)]
pub struct MethodResult {
    pub method: String,
    /// What it reads before deciding.
    pub inputs: String,
    pub kfold_auroc: f64,
    pub loto_auroc: f64,
    /// Mean AUROC inside each task (tasks with at least `MIN_CLASS` right and wrong local
    /// answers): whether the method tells items of one task apart, not only easy tasks from
    /// hard ones. k-fold and leave-one-task-out.
    pub kfold_within_task_auroc: Option<f64>,
    pub loto_within_task_auroc: Option<f64>,
    /// From the k-fold scores, with the large model's answers.
    pub kfold_apgr: Option<f64>,
    /// Largest share kept local at 95% of large-only accuracy: k-fold, leave-one-task-out.
    pub kfold_local_at_95: Option<f64>,
    pub loto_local_at_95: Option<f64>,
    /// Large-model cost at the k-fold 95% point, USD.
    pub kfold_cost_at_95: Option<f64>,
    /// Mean local time an escalated request waits before its tier is called, at the k-fold
    /// 95% point, ms (from the rows' measured prefill and draft times).
    pub added_ms_per_escalation: Option<f64>,
    /// Routed accuracy by share escalated from the k-fold scores, for the plot (with the large
    /// model's answers).
    #[serde(skip)]
    pub kfold_curve: Vec<CurvePoint>,
}

/// Every method's result, and the methods that could not be run with why.
#[derive(Debug, Clone, Serialize)]
pub struct Methods {
    pub results: Vec<MethodResult>,
    pub skipped: Vec<String>,
    /// `cascade` at the k-fold 95% point: its first stage's share (escalated without a draft)
    /// and the routed accuracy relative to large-only with both stages.
    pub cascade_first_stage_share: Option<f64>,
    pub cascade_quality_at_95: Option<f64>,
}

/// Least right and wrong local answers a task needs for its within-task AUROC to count.
pub const MIN_CLASS: usize = 5;

/// The two cross-validation schemes' fold of each row.
struct Schemes {
    kfold: Vec<usize>,
    loto: Vec<usize>,
}

pub fn compare(
    rows: &[Row],
    states: Option<&[PromptStates]>,
    large: Option<&LargeSide<'_>>,
) -> Methods {
    let right: Vec<bool> = rows.iter().map(|r| r.right).collect();
    let tasks: Vec<&str> = rows.iter().map(|r| r.task.as_str()).collect();
    let schemes = Schemes {
        kfold: kfold_assignment(rows.len(), FOLDS, SEED),
        loto: group_assignment(&tasks),
    };
    let draft_cols: Vec<usize> = (0..FEATURES.len())
        .filter(|&i| FEATURES[i].source() == FeatureSource::Draft)
        .collect();
    let draft_x: Vec<Vec<f64>> = rows
        .iter()
        .map(|r| {
            let x = r.x();
            draft_cols.iter().map(|&i| x[i]).collect()
        })
        .collect();
    let logistic = |fold_of: &[usize], xs: &[Vec<f64>]| {
        scores_by_folds(xs, &right, fold_of, |x, y| {
            let m = fit_logistic(x, y, L2);
            move |row: &Vec<f64>| m.predict(row)
        })
    };
    let prefill_ms: Vec<f64> = rows.iter().map(|r| r.prefill_ms).collect();
    let draft_ms: Vec<f64> = rows.iter().map(|r| r.draft_ms).collect();
    let mut results = Vec::new();
    let mut skipped = Vec::new();
    let mut cascade_stage = (None, None);

    let result = |name: &str, inputs: &str, kfold: &[f64], loto: &[f64], wait: &[f64]| {
        let (apgr, local, cost, added) = match large {
            Some(l) => at_quality(kfold, &right, l, wait),
            None => (None, None, None, None),
        };
        MethodResult {
            method: name.to_owned(),
            inputs: inputs.to_owned(),
            kfold_auroc: auroc(kfold, &right),
            loto_auroc: auroc(loto, &right),
            kfold_within_task_auroc: within_group_auroc(kfold, &right, &tasks, MIN_CLASS),
            loto_within_task_auroc: within_group_auroc(loto, &right, &tasks, MIN_CLASS),
            kfold_apgr: apgr,
            kfold_local_at_95: local,
            loto_local_at_95: large.and_then(|l| at_quality(loto, &right, l, wait).1),
            kfold_cost_at_95: cost,
            added_ms_per_escalation: added,
            kfold_curve: large
                .map(|l| routing_curve(&outcomes(kfold, &right, l)))
                .unwrap_or_default(),
        }
    };

    // The draft's token log-probabilities (Gupta et al.'s deferral baseline).
    results.push(result(
        "answer_confidence",
        "draft features",
        &logistic(&schemes.kfold, &draft_x),
        &logistic(&schemes.loto, &draft_x),
        &draft_ms,
    ));

    match states.filter(|s| s.len() == rows.len()) {
        None => skipped.push(
            "prefill_probe, cascade: no hidden states (the model file is needed to compute them)"
                .to_owned(),
        ),
        Some(states) => {
            let refs: Vec<&PromptStates> = states.iter().collect();
            let inputs = probe_inputs(refs.first().map_or(0, |s| s.last.len()));
            let probe =
                |fold_of: &[usize]| held_out_log_odds(&refs, &right, &inputs, PROBE_L2, fold_of);
            let local_probe = (probe(&schemes.kfold), probe(&schemes.loto));
            match &local_probe {
                (Ok(pk), Ok(pl)) => {
                    let wait_prefill = prefill_ms.clone();
                    results.push(result(
                        "prefill_probe",
                        "hidden-state probe, no draft",
                        pk,
                        pl,
                        &wait_prefill,
                    ));
                    let ck = cascade_scores(&refs, &right, &inputs, &draft_x, &schemes.kfold);
                    let cl = cascade_scores(&refs, &right, &inputs, &draft_x, &schemes.loto);
                    // Everything escalated waits for the prefill, and for the draft unless the
                    // first stage sent it on; the second stage's escalations pay both.
                    let both: Vec<f64> = prefill_ms
                        .iter()
                        .zip(&draft_ms)
                        .map(|(p, d)| p + d)
                        .collect();
                    results.push(result(
                        "cascade",
                        "probe, then draft features + probe",
                        &ck,
                        &cl,
                        &both,
                    ));
                    if let Some(l) = large {
                        let (share, quality, added) =
                            first_stage(&ck, pk, &right, l, &prefill_ms, &draft_ms);
                        if let (Some(r), Some(a)) = (results.last_mut(), added) {
                            r.added_ms_per_escalation = Some(a);
                        }
                        cascade_stage = (share, quality);
                    }
                }
                (Err(e), _) | (_, Err(e)) => {
                    skipped.push(format!("prefill_probe, cascade, prefill_probe_delta: {e}"))
                }
            }
            // The same probe fitted on whether escalating gains anything (the local answer is
            // wrong and the large one right): both-wrong requests stay local at no loss.
            if let Some(l) = large {
                let keep: Vec<bool> = (0..rows.len()).map(|i| right[i] || !l.right[i]).collect();
                let gain =
                    |fold_of: &[usize]| held_out_log_odds(&refs, &keep, &inputs, PROBE_L2, fold_of);
                if let (Ok(gk), Ok(gl)) = (gain(&schemes.kfold), gain(&schemes.loto)) {
                    results.push(result(
                        "prefill_probe_gain",
                        "hidden-state probe fitted on escalation gain, no draft",
                        &gk,
                        &gl,
                        &prefill_ms,
                    ));
                }
                // Two probes, one per model's correctness: escalating changes the expected
                // accuracy by P(large right) - P(local right), whatever their dependence, so
                // that difference ranks what to keep local.
                let large_probe = |fold_of: &[usize]| {
                    held_out_log_odds(&refs, &l.right, &inputs, PROBE_L2, fold_of)
                };
                if let ((Ok(pk), Ok(pl)), Ok(lk), Ok(ll)) = (
                    &local_probe,
                    large_probe(&schemes.kfold),
                    large_probe(&schemes.loto),
                ) {
                    let delta = |s: &[f64], l: &[f64]| -> Vec<f64> {
                        s.iter()
                            .zip(l)
                            .map(|(a, b)| sigmoid(*a) - sigmoid(*b))
                            .collect()
                    };
                    results.push(result(
                        "prefill_probe_delta",
                        "two hidden-state probes: P(local right) - P(large right), no draft",
                        &delta(pk, &lk),
                        &delta(pl, &ll),
                        &prefill_ms,
                    ));
                }
            }
        }
    }

    // Shorter prompts are easier: rank by fewer prompt tokens; no fitting.
    let i = FEATURES
        .iter()
        .position(|f| *f == Feature::PromptTokens)
        .unwrap_or(0);
    let length: Vec<f64> = rows.iter().map(|r| -r.x()[i]).collect();
    results.push(result(
        "length-only",
        "prompt tokens",
        &length,
        &length,
        &draft_ms,
    ));
    // References, not routers: every item scored with its task's true rate from the labels,
    // items of a task tied. They are what knowing each request's task exactly would give, so a
    // method near them ranks tasks, not the items inside a task.
    let rate = |hit: &dyn Fn(usize) -> bool| -> Vec<f64> {
        // (hits, items) per task, counted once.
        let mut per_task: std::collections::HashMap<&str, (usize, usize)> = Default::default();
        for (i, t) in tasks.iter().enumerate() {
            let e = per_task.entry(t).or_default();
            e.0 += usize::from(hit(i));
            e.1 += 1;
        }
        tasks
            .iter()
            .map(|t| per_task.get(t).map_or(0.0, |&(h, n)| h as f64 / n as f64))
            .collect()
    };
    let local_rate = rate(&|i| right[i]);
    results.push(result(
        "task-oracle",
        "reference: each task's true local accuracy (from the labels)",
        &local_rate,
        &local_rate,
        &prefill_ms,
    ));
    no_wait(&mut results);
    if let Some(l) = large {
        let large_rate = rate(&|i| l.right[i]);
        let gain: Vec<f64> = local_rate
            .iter()
            .zip(&large_rate)
            .map(|(a, b)| a - b)
            .collect();
        results.push(result(
            "task-oracle-gain",
            "reference: each task's true local minus large accuracy (from the labels)",
            &gain,
            &gain,
            &prefill_ms,
        ));
        no_wait(&mut results);
    }
    Methods {
        results,
        skipped,
        cascade_first_stage_share: cascade_stage.0,
        cascade_quality_at_95: cascade_stage.1,
    }
}

/// A reference row decides nothing, so it makes no request wait.
fn no_wait(results: &mut [MethodResult]) {
    if let Some(r) = results.last_mut() {
        r.added_ms_per_escalation = None;
    }
}

/// The cascade's second-stage scores held out by `fold_of`: a logistic over the draft features
/// and the probe's log-odds, where the training rows' probe values are themselves held out
/// (an inner 5-fold) so the second stage never sees a probe fitted on its own rows.
fn cascade_scores(
    states: &[&PromptStates],
    right: &[bool],
    inputs: &[(usize, sluice_policy::Pool)],
    draft_x: &[Vec<f64>],
    fold_of: &[usize],
) -> Vec<f64> {
    let rows = right.len();
    let folds = fold_of.iter().copied().max().map_or(0, |m| m + 1);
    let mut out = vec![0.5; rows];
    for fold in 0..folds {
        let train: Vec<usize> = (0..rows).filter(|&i| fold_of[i] != fold).collect();
        let test: Vec<usize> = (0..rows).filter(|&i| fold_of[i] == fold).collect();
        if train.is_empty() || test.is_empty() {
            continue;
        }
        let train_states: Vec<&PromptStates> = train.iter().map(|&i| states[i]).collect();
        let train_right: Vec<bool> = train.iter().map(|&i| right[i]).collect();
        let inner = kfold_assignment(train.len(), FOLDS, SEED);
        let Ok(train_probe) =
            held_out_log_odds(&train_states, &train_right, inputs, PROBE_L2, &inner)
        else {
            continue;
        };
        let Ok(components) = fit_probe(&train_states, &train_right, inputs, PROBE_L2) else {
            continue;
        };
        let probe = probe_file(&"0".repeat(64), components, String::new());
        let with = |i: usize, z: f64| -> Vec<f64> {
            let mut x = draft_x[i].clone();
            x.push(z);
            x
        };
        let xs: Vec<Vec<f64>> = train
            .iter()
            .zip(&train_probe)
            .map(|(&i, &z)| with(i, z))
            .collect();
        let m = fit_logistic(&xs, &train_right, L2);
        for &i in &test {
            let z = probe.log_odds(states[i]).unwrap_or(0.0);
            out[i] = m.predict(&with(i, z));
        }
    }
    out
}

/// APGR, share kept local at 95% of large-only accuracy, the large cost there, and the mean
/// wait of the escalated requests there (`wait[i]`: what request i waits before its tier).
fn at_quality(
    scores: &[f64],
    right: &[bool],
    large: &LargeSide<'_>,
    wait: &[f64],
) -> (Option<f64>, Option<f64>, Option<f64>, Option<f64>) {
    let outcomes = outcomes(scores, right, large);
    let curve = routing_curve(&outcomes);
    let n = scores.len();
    let Some(k) = min_escalated_for_quality(&curve, QUALITY) else {
        return (apgr(&curve), None, None, None);
    };
    let escalated = lowest(scores, k);
    let added = (!escalated.is_empty())
        .then(|| escalated.iter().map(|&i| wait[i]).sum::<f64>() / escalated.len() as f64);
    (
        apgr(&curve),
        Some(1.0 - k as f64 / n.max(1) as f64),
        curve.get(k).map(|p| p.cost),
        added,
    )
}

/// The cascade at the k-fold 95% point of its second stage: the first stage escalates, without
/// a draft, the lowest-probe requests, as many as it can while the two stages together escalate
/// at most 2% more of all requests than the second alone. Returns the first stage's share, the
/// routed accuracy relative to large-only, and the mean wait of the escalated requests.
fn first_stage(
    second: &[f64],
    probe: &[f64],
    right: &[bool],
    large: &LargeSide<'_>,
    prefill_ms: &[f64],
    draft_ms: &[f64],
) -> (Option<f64>, Option<f64>, Option<f64>) {
    let n = second.len();
    let curve = routing_curve(&outcomes(second, right, large));
    let Some(k) = min_escalated_for_quality(&curve, QUALITY) else {
        return (None, None, None);
    };
    let stage2 = lowest(second, k);
    let by_probe = lowest(probe, n);
    let slack = k + (0.02 * n as f64).floor() as usize;
    let mut first = Vec::new();
    let mut union: std::collections::BTreeSet<usize> = stage2.iter().copied().collect();
    for &i in &by_probe {
        let grows = !union.contains(&i);
        if grows && union.len() + 1 > slack {
            break;
        }
        union.insert(i);
        first.push(i);
    }
    let first_set: std::collections::BTreeSet<usize> = first.iter().copied().collect();
    let routed: usize = (0..n)
        .filter(|i| {
            if union.contains(i) {
                large.right[*i]
            } else {
                right[*i]
            }
        })
        .count();
    let large_right = large.right.iter().filter(|r| **r).count();
    let quality = (large_right > 0).then(|| routed as f64 / large_right as f64);
    let added = (!union.is_empty()).then(|| {
        union
            .iter()
            .map(|&i| {
                prefill_ms[i]
                    + if first_set.contains(&i) {
                        0.0
                    } else {
                        draft_ms[i]
                    }
            })
            .sum::<f64>()
            / union.len() as f64
    });
    (Some(first.len() as f64 / n.max(1) as f64), quality, added)
}

fn outcomes(scores: &[f64], right: &[bool], large: &LargeSide<'_>) -> Vec<Outcome> {
    scores
        .iter()
        .enumerate()
        .map(|(i, s)| Outcome {
            score: *s,
            local_right: right[i],
            large_right: large.right[i],
            large_cost: large.answers[i].cost(large.tier),
        })
        .collect()
}

fn sigmoid(z: f64) -> f64 {
    1.0 / (1.0 + (-z).exp())
}

/// Indices of the `k` lowest scores (NaN lowest; ties in row order).
fn lowest(scores: &[f64], k: usize) -> Vec<usize> {
    let mut order: Vec<usize> = (0..scores.len()).collect();
    order.sort_by(|&a, &b| {
        let (x, y) = (scores[a], scores[b]);
        match (x.is_nan(), y.is_nan()) {
            (true, true) => std::cmp::Ordering::Equal,
            (true, false) => std::cmp::Ordering::Less,
            (false, true) => std::cmp::Ordering::Greater,
            _ => x.total_cmp(&y),
        }
    });
    order.truncate(k);
    order
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lowest_puts_nan_first_and_keeps_row_order_in_ties() {
        assert_eq!(lowest(&[0.5, f64::NAN, 0.1, 0.1], 3), [1, 2, 3]);
        assert_eq!(lowest(&[0.5, 0.2], 0), Vec::<usize>::new());
    }
}
