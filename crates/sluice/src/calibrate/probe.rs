//! `sluice calibrate --fit-probe`: the hidden-state probe fitted on every row, its held-out
//! log-odds (what the policy's weights are fitted on, so they never see a probe fitted on their
//! own rows), and the cascade's first-stage cut.

use std::path::Path;

use anyhow::{bail, Context};
use sluice_policy::{HiddenProbe, PromptStates};
use sluice_router::eval::auroc;
use sluice_router::eval::probe_fit::{
    fit_probe, held_out_log_odds, probe_file, probe_inputs, PROBE_L2,
};
use sluice_router::eval::{group_assignment, kfold_assignment};

use crate::eval::report::{FOLDS, SEED};
use crate::eval::Row;

/// How many more of all requests the cascade's two stages may escalate together than its
/// second stage alone: the price of skipping the draft for the requests the probe is surest
/// the local model gets wrong.
pub const PRESCREEN_SLACK: f64 = 0.02;

/// A probe fitted by `--fit-probe`.
#[derive(Debug, Clone)]
pub struct ProbeFit {
    /// Fitted on every row: the file the policy names.
    pub file: HiddenProbe,
    /// Each row's log-odds from the probe fitted on the other folds.
    pub held_out: Vec<f64>,
    pub kfold_auroc: f64,
    /// Each row scored by a probe fitted on the other tasks only.
    /// `None` with fewer than two tasks (untagged traffic is one task).
    pub loto_auroc: Option<f64>,
}

/// Fits the probe on these rows' hidden states (`states[i]` is row `i`'s).
pub fn fit(
    rows: &[Row],
    states: &[PromptStates],
    model_sha256: &str,
    data: &Path,
) -> anyhow::Result<ProbeFit> {
    if states.len() != rows.len() {
        bail!(
            "--fit-probe: {} rows but hidden states for {}",
            rows.len(),
            states.len()
        );
    }
    let refs: Vec<&PromptStates> = states.iter().collect();
    let right: Vec<bool> = rows.iter().map(|r| r.right).collect();
    let inputs = probe_inputs(refs.first().map_or(0, |s| s.last.len()));
    if inputs.is_empty() {
        bail!("--fit-probe: the model returned no hidden states to fit on");
    }
    let fail = |e: String| anyhow::anyhow!("--fit-probe: {e}");
    eprintln!(
        "calibrate: fitting the probe ({} components) {FOLDS}-fold held out",
        inputs.len()
    );
    let kfold = kfold_assignment(rows.len(), FOLDS, SEED);
    let held_out = held_out_log_odds(&refs, &right, &inputs, PROBE_L2, &kfold).map_err(fail)?;
    let tasks: Vec<&str> = rows.iter().map(|r| r.task.as_str()).collect();
    let loto = group_assignment(&tasks);
    let task_count = loto.iter().max().map_or(0, |m| m + 1);
    let by_task = if task_count >= 2 {
        eprintln!("calibrate: fitting the probe leaving out each of {task_count} tasks");
        Some(held_out_log_odds(&refs, &right, &inputs, PROBE_L2, &loto).map_err(fail)?)
    } else {
        None
    };
    eprintln!("calibrate: fitting the probe on all {} rows", rows.len());
    let components = fit_probe(&refs, &right, &inputs, PROBE_L2).map_err(fail)?;
    let kfold_auroc = auroc(&held_out, &right);
    let loto_auroc = by_task.map(|z| auroc(&z, &right));
    let loto = match loto_auroc {
        Some(a) => format!("{a:.3} (leave-one-task-out, {task_count} tasks)"),
        None => "no leave-one-task-out (one task)".to_owned(),
    };
    let described = format!(
        "sluice calibrate --fit-probe: {} rows of {} ({} local answers right); one L2 logistic \
         (l2 {PROBE_L2}, standardised) per input, inputs {}; held-out AUROC {kfold_auroc:.3} \
         ({FOLDS}-fold), {loto}",
        rows.len(),
        data.file_name().unwrap_or_default().to_string_lossy(),
        right.iter().filter(|r| **r).count(),
        inputs
            .iter()
            .map(|(s, p)| format!("{s}/{}", pool_name(*p)))
            .collect::<Vec<_>>()
            .join(", "),
    );
    Ok(ProbeFit {
        file: probe_file(model_sha256, components, described),
        held_out,
        kfold_auroc,
        loto_auroc,
    })
}

fn pool_name(p: sluice_policy::Pool) -> &'static str {
    match p {
        sluice_policy::Pool::Last => "last",
        sluice_policy::Pool::Mean => "mean",
    }
}

/// The cascade's `escalate_below`: a cut on the probe's probability that sends on, without a
/// draft, as many of the lowest-probe rows as it can while the two stages together escalate at
/// most [`PRESCREEN_SLACK`] more of all rows than the second stage's `second_escalated` rows.
/// Returns the cut and the share of rows below it (0 and 0 when none fits).
pub fn escalate_below(probe_log_odds: &[f64], second_escalated: &[bool]) -> (f64, f64) {
    let n = probe_log_odds.len();
    let budget = second_escalated.iter().filter(|e| **e).count()
        + (PRESCREEN_SLACK * n as f64).floor() as usize;
    let mut order: Vec<usize> = (0..n).collect();
    order.sort_by(|&a, &b| probe_log_odds[a].total_cmp(&probe_log_odds[b]));
    let mut escalated = second_escalated.iter().filter(|e| **e).count();
    let mut taken = 0;
    // Whole groups of equal values: a cut cannot take one of them and leave another.
    while taken < n {
        let value = probe_log_odds[order[taken]];
        let end = (taken..n)
            .find(|&p| probe_log_odds[order[p]] != value)
            .unwrap_or(n);
        let grows = order[taken..end]
            .iter()
            .filter(|&&i| !second_escalated[i])
            .count();
        if escalated + grows > budget {
            break;
        }
        escalated += grows;
        taken = end;
    }
    if taken == 0 {
        return (0.0, 0.0);
    }
    let below = probe_log_odds[order[taken - 1]];
    let cut = match order.get(taken) {
        Some(&next) => (below + probe_log_odds[next]) / 2.0,
        None => below + 1.0,
    };
    (sigmoid(cut), taken as f64 / n as f64)
}

fn sigmoid(z: f64) -> f64 {
    1.0 / (1.0 + (-z).exp())
}

/// Writes the probe file (through a temporary file, so a reader never sees half of it).
pub fn write(path: &Path, probe: &HiddenProbe) -> anyhow::Result<()> {
    let text = serde_json::to_string(probe).context("cannot encode the probe")? + "\n";
    HiddenProbe::parse(&text)
        .map_err(|e| anyhow::anyhow!("the fitted probe does not parse: {e}"))?;
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    let tmp = path.with_extension("json.tmp");
    std::fs::write(&tmp, text).with_context(|| format!("cannot write {}", tmp.display()))?;
    std::fs::rename(&tmp, path).with_context(|| format!("cannot write {}", path.display()))?;
    eprintln!("calibrate: wrote the probe to {}", path.display());
    Ok(())
}

/// How the policy at `policy` names the probe file at `probe`: relative to the policy's
/// directory when it is inside it, else the absolute path.
pub fn named_from(policy: &Path, probe: &Path) -> anyhow::Result<String> {
    let abs = |p: &Path| -> anyhow::Result<std::path::PathBuf> {
        let parent = p.parent().filter(|d| !d.as_os_str().is_empty());
        let dir = match parent {
            Some(d) => d
                .canonicalize()
                .with_context(|| format!("cannot resolve {}", d.display()))?,
            None => std::env::current_dir()?,
        };
        Ok(dir.join(p.file_name().unwrap_or_default()))
    };
    let probe = abs(probe)?;
    let policy_dir = abs(policy)?
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_default();
    Ok(match probe.strip_prefix(&policy_dir) {
        Ok(rel) => rel.display().to_string(),
        Err(_) => probe.display().to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_stage_takes_the_lowest_probes_within_the_slack() {
        // 100 rows, probe log-odds = index; the second stage escalates rows 10..40 (30 rows).
        let probe: Vec<f64> = (0..100).map(f64::from).collect();
        let second: Vec<bool> = (0..100).map(|i| (10..40).contains(&i)).collect();
        let (cut, share) = escalate_below(&probe, &second);
        // Budget 30 + 2: rows 0 and 1 make 32, row 2 would make 33.
        assert!((share - 0.02).abs() < 1e-12, "{share}");
        assert!((cut - sigmoid(1.5)).abs() < 1e-12, "{cut}");

        // Everything the second stage escalates is lowest: the first stage takes all of those
        // and two more.
        let second: Vec<bool> = (0..100).map(|i| i < 30).collect();
        let (_, share) = escalate_below(&probe, &second);
        assert!((share - 0.32).abs() < 1e-12, "{share}");

        // Ties cannot be split: two rows at the same value with room for one take neither.
        let mut probe = vec![5.0; 10];
        probe[0] = 0.0;
        probe[1] = 0.0;
        let second = vec![false; 10];
        let n = 50;
        let mut p = probe.clone();
        p.extend((0..n - 10).map(|i| 10.0 + f64::from(i)));
        let mut s = second.clone();
        s.extend(vec![false; n as usize - 10]);
        // Budget floor(0.02 · 50) = 1; rows 0 and 1 tie at 0.0.
        assert_eq!(escalate_below(&p, &s), (0.0, 0.0));
    }

    #[test]
    fn the_probe_is_named_relative_to_the_policy() {
        let dir = std::env::temp_dir().join(format!("sluice-probe-name-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("probes")).unwrap();
        let name = named_from(&dir.join("p.yaml"), &dir.join("probes/x.json")).unwrap();
        assert_eq!(name, "probes/x.json");
        let other = std::env::temp_dir().join("x.json");
        let name = named_from(&dir.join("p.yaml"), &other).unwrap();
        assert!(Path::new(&name).is_absolute(), "{name}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
