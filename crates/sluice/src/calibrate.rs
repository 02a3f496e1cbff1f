//! `sluice calibrate`: fit the policy's logistic weights on labelled prompts (and, with
//! `--fit-probe`, the hidden-state probe), pick the threshold for a target escalation rate or
//! quality, and write the policy with them.

pub mod probe;

use std::fmt::Write as _;
use std::path::Path;

use anyhow::{bail, Context};
use sluice_policy::{Feature, FeatureSource, ScoringMethod};
use sluice_router::eval::routing::{min_escalated_for_quality, routing_curve, Outcome};
use sluice_router::eval::{auroc, cross_val_scores, fit_logistic, threshold_for_escalation_rate};

use crate::eval::report::{FOLDS, L2, SEED};
use crate::eval::{Row, FEATURES};

/// What the threshold is chosen for.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Target {
    /// Escalate this share of requests.
    Escalation(f64),
    /// Reach this share of large-only accuracy, escalating as few as possible.
    Quality(f64),
}

/// Features named on the command line: feature names, or the groups `draft`, `text`,
/// `prefill`, `probe` (what each feature is computed from).
pub fn parse_features(names: &[String]) -> anyhow::Result<Vec<Feature>> {
    let mut out: Vec<Feature> = Vec::new();
    for name in names.iter().map(|n| n.trim()).filter(|n| !n.is_empty()) {
        let group = match name {
            "draft" => Some(FeatureSource::Draft),
            "text" => Some(FeatureSource::Text),
            "prefill" => Some(FeatureSource::Prefill),
            "probe" => Some(FeatureSource::Probe),
            _ => None,
        };
        let found: Vec<Feature> = match group {
            Some(g) => FEATURES.into_iter().filter(|f| f.source() == g).collect(),
            None => match Feature::parse(name) {
                Some(f) => vec![f],
                None => {
                    let valid: Vec<&str> = FEATURES.iter().map(|f| f.as_str()).collect();
                    bail!(
                        "--features: expected a feature ({}) or a group (draft, text, prefill, probe), found {name:?}",
                        valid.join(", ")
                    )
                }
            },
        };
        for f in found {
            if !out.contains(&f) {
                out.push(f);
            }
        }
    }
    Ok(out)
}

/// Every feature asked for must be one the scoring method computes before deciding.
pub fn check_features(method: ScoringMethod, only: &[Feature]) -> anyhow::Result<()> {
    if let Some(f) = only.iter().find(|f| !method.provides(**f)) {
        bail!(
            "--features: scoring method {} does not compute {} before deciding",
            method.as_str(),
            f.as_str()
        );
    }
    Ok(())
}

/// What calibration found.
#[derive(Debug, Clone, PartialEq)]
pub struct Calibration {
    pub method: ScoringMethod,
    pub bias: f64,
    pub weights: Vec<(&'static str, f64)>,
    pub threshold: f64,
    pub cv_auroc: f64,
    pub escalated: f64,
    /// `cascade`: the first stage's cut on the probe's probability, and the share of rows
    /// below it (escalated without a draft).
    pub escalate_below: Option<(f64, f64)>,
    /// The probe file as the policy names it, when `--fit-probe` wrote a new one.
    pub probe: Option<String>,
    /// With the large model's answers: the share kept local and the routed quality (share of
    /// large-only accuracy) at the chosen share, on the held-out scores.
    pub routed: Option<Routed>,
}

/// What a routing of the rows achieves.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Routed {
    /// Share of rows answered locally.
    pub kept: f64,
    /// Routed accuracy as a share of large-only accuracy.
    pub quality: f64,
}

/// The rows marked `kept` answered locally, the others by the large model.
pub fn routed(kept: &[bool], local_right: &[bool], large_right: &[bool]) -> Routed {
    let right = kept
        .iter()
        .zip(local_right.iter().zip(large_right))
        .filter(|(k, (l, g))| if **k { **l } else { **g })
        .count();
    let large = large_right.iter().filter(|g| **g).count();
    Routed {
        kept: kept.iter().filter(|k| **k).count() as f64 / kept.len().max(1) as f64,
        quality: if large == 0 {
            0.0
        } else {
            right as f64 / large as f64
        },
    }
}

/// Fit on every row, report held-out AUROC from 5-fold cross-validation, pick the threshold
/// for the target. A quality target is met on the held-out scores (an honest estimate of how
/// many must escalate), and needs whether the large model is right on each row. `hidden_probe`
/// is each row's held-out probe log-odds (`--fit-probe`), or else the value in the rows; the
/// method `cascade` also gets its first stage's cut from it.
pub fn calibrate(
    rows: &[Row],
    method: ScoringMethod,
    only: &[Feature],
    target: Target,
    large_right: Option<&[bool]>,
    hidden_probe: Option<&[f64]>,
) -> anyhow::Result<Calibration> {
    let mut rows = std::borrow::Cow::Borrowed(rows);
    if let Some(z) = hidden_probe {
        if z.len() != rows.len() {
            bail!("{} rows but {} probe scores", rows.len(), z.len());
        }
        for (row, z) in rows.to_mut().iter_mut().zip(z) {
            row.features
                .insert(Feature::HiddenProbe.as_str().to_owned(), *z);
        }
    }
    if method.needs_probe()
        && rows
            .iter()
            .any(|r| !r.features.contains_key("hidden_probe"))
    {
        bail!(
            "method {} reads the hidden-state probe, and the rows have no hidden_probe values: \
             give --fit-probe FILE (with the model file) to fit one",
            method.as_str()
        );
    }
    let labels: Vec<bool> = rows.iter().map(|r| r.right).collect();
    if labels.iter().all(|l| *l) || labels.iter().all(|l| !*l) {
        bail!("the data has only right or only wrong local answers: nothing to separate");
    }
    // Only the features the policy's method computes before it decides (and, when given,
    // only those asked for).
    check_features(method, only)?;
    // `hidden_probe` exists only where a probe scored the rows (or `--fit-probe` fitted one).
    let has_probe = rows
        .iter()
        .all(|r| r.features.contains_key(Feature::HiddenProbe.as_str()));
    if only.contains(&Feature::HiddenProbe) && !has_probe {
        bail!(
            "--features hidden_probe: the rows have no hidden_probe values; give --fit-probe FILE \
             (with the model file) to fit a probe"
        );
    }
    // A feature no row carries cannot be fitted (rows from live traffic carry what the
    // serving method computed, which may be fewer than `method` computes).
    let present = |f: Feature| rows.iter().all(|r| r.features.contains_key(f.as_str()));
    if let Some(f) = only.iter().find(|f| !present(**f)) {
        bail!(
            "--features {}: not every row has a value for it (rows from shadow samples carry \
             the features the serving policy's method computed)",
            f.as_str()
        );
    }
    let used: Vec<usize> = (0..FEATURES.len())
        .filter(|&i| {
            method.provides(FEATURES[i])
                && (only.is_empty() || only.contains(&FEATURES[i]))
                && present(FEATURES[i])
        })
        .collect();
    if used.is_empty() {
        bail!(
            "no feature that method {} computes is in every row: nothing to fit",
            method.as_str()
        );
    }
    let xs: Vec<Vec<f64>> = rows
        .iter()
        .map(|r| {
            let x = r.x();
            used.iter().map(|&i| x[i]).collect()
        })
        .collect();
    let cv = cross_val_scores(&xs, &labels, FOLDS, L2, SEED);
    let cv_auroc = auroc(&cv, &labels);
    let share = match target {
        Target::Escalation(r) if (0.0..=1.0).contains(&r) => r,
        Target::Escalation(r) => {
            bail!("--target-escalation: expected a share in [0, 1], found {r}")
        }
        Target::Quality(q) if !(0.0..=1.0).contains(&q) => {
            bail!("--target-quality: expected a share in [0, 1], found {q}")
        }
        Target::Quality(q) => {
            let large = large_right
                .filter(|l| l.len() == rows.len())
                .context("--target-quality needs the large model's answer for every row")?;
            let outcomes: Vec<Outcome> = (0..rows.len())
                .map(|i| Outcome {
                    score: cv[i],
                    local_right: labels[i],
                    large_right: large[i],
                    large_cost: 0.0,
                })
                .collect();
            let k = min_escalated_for_quality(&routing_curve(&outcomes), q)
                .context("no rows to calibrate on")?;
            k as f64 / rows.len() as f64
        }
    };
    let fit = fit_logistic(&xs, &labels, L2);
    let scores: Vec<f64> = xs.iter().map(|x| fit.predict(x)).collect();
    let threshold = threshold_for_escalation_rate(&scores, share);
    let escalated =
        scores.iter().filter(|s| **s < threshold).count() as f64 / scores.len().max(1) as f64;
    // The rows the held-out scores escalate at the chosen share: the lowest `k`.
    let k = (share * rows.len() as f64).round() as usize;
    let mut order: Vec<usize> = (0..rows.len()).collect();
    order.sort_by(|&a, &b| cv[a].total_cmp(&cv[b]));
    let mut second = vec![false; rows.len()];
    for &i in order.iter().take(k) {
        second[i] = true;
    }
    let routed = large_right.filter(|l| l.len() == rows.len()).map(|large| {
        let kept: Vec<bool> = second.iter().map(|e| !e).collect();
        routed(&kept, &labels, large)
    });
    // The cascade's first stage, cut on the held-out scores as the quality target was.
    let escalate_below = (method == ScoringMethod::Cascade).then(|| {
        let z: Vec<f64> = rows
            .iter()
            .map(|r| r.features.get("hidden_probe").copied().unwrap_or(0.0))
            .collect();
        probe::escalate_below(&z, &second)
    });
    Ok(Calibration {
        method,
        bias: fit.bias,
        weights: used
            .iter()
            .map(|&i| FEATURES[i].as_str())
            .zip(fit.weights)
            .collect(),
        threshold,
        cv_auroc,
        escalated,
        escalate_below,
        probe: None,
        routed,
    })
}

/// The policy text with its `scoring.method`, `threshold` and `weights` replaced (and
/// `escalate_below`, and `probe` when a new probe was fitted), everything else (comments
/// included) kept. Expects `threshold:` and `weights:` lines inside `scoring:`; a `weights: {`
/// flow mapping may span lines until its closing brace.
pub fn rewrite_policy(src: &str, c: &Calibration) -> anyhow::Result<String> {
    let mut weights = format!("{{ bias: {:.6}", c.bias);
    for (name, w) in &c.weights {
        let _ = write!(weights, ", {name}: {w:.6}");
    }
    weights.push_str(" }");
    let mut out = String::with_capacity(src.len());
    let (mut in_scoring, mut skipping, mut saw_threshold, mut saw_weights, mut saw_method) =
        (false, false, false, false, false);
    let mut added = String::new();
    for line in src.lines() {
        if skipping {
            if line.contains('}') {
                skipping = false;
            }
            continue;
        }
        let top_level = !line.starts_with(' ') && !line.starts_with('#') && !line.is_empty();
        if top_level {
            in_scoring = line.starts_with("scoring:");
            if in_scoring {
                out.push_str(line);
                out.push('\n');
                added = String::new();
                continue;
            }
        }
        let trimmed = line.trim_start();
        let indent = &line[..line.len() - trimmed.len()];
        if in_scoring && added.is_empty() && !trimmed.is_empty() && !trimmed.starts_with('#') {
            // The keys that may be new go right after `method:` (or first in the section).
            if let Some(p) = &c.probe {
                let _ = writeln!(added, "{indent}probe: {p}");
            }
            if let Some((cut, _)) = c.escalate_below {
                let _ = writeln!(
                    added,
                    "{indent}escalate_below: {cut:.6}   # set by sluice calibrate"
                );
            }
        }
        if in_scoring && trimmed.starts_with("method:") {
            let comment = trimmed.find(" #").map_or("", |i| &trimmed[i..]);
            let _ = writeln!(out, "{indent}method: {}{comment}", c.method.as_str());
            out.push_str(&added);
            saw_method = true;
        } else if in_scoring && trimmed.starts_with("threshold:") {
            let _ = writeln!(
                out,
                "{indent}threshold: {:.6}   # set by sluice calibrate",
                c.threshold
            );
            saw_threshold = true;
        } else if in_scoring && trimmed.starts_with("weights:") {
            let _ = writeln!(out, "{indent}weights: {weights}");
            saw_weights = true;
            skipping = trimmed.contains('{') && !trimmed.contains('}');
        } else if in_scoring
            && (trimmed.starts_with("escalate_below:")
                || (c.probe.is_some() && trimmed.starts_with("probe:")))
        {
            // Replaced by the lines added after `method:`.
        } else {
            out.push_str(line);
            out.push('\n');
        }
    }
    if !saw_threshold || !saw_weights || !saw_method {
        let missing: Vec<&str> = [
            (saw_method, "method"),
            (saw_threshold, "threshold"),
            (saw_weights, "weights"),
        ]
        .iter()
        .filter(|(saw, _)| !saw)
        .map(|(_, key)| *key)
        .collect();
        bail!(
            "expected `method:`, `threshold:` and `weights:` lines under `scoring:` in the policy, found no {}",
            missing.join(", no ")
        );
    }
    Ok(out)
}

/// `scoring.probe` as the policy file writes it, if it names one.
fn written_probe(src: &str) -> Option<String> {
    let doc: serde_norway::Value = serde_norway::from_str(src).ok()?;
    doc.get("scoring")?
        .get("probe")?
        .as_str()
        .map(str::to_owned)
}

/// Write the calibrated policy to `out` (or over `policy` with `write_in_place`) after checking
/// it parses back with exactly these numbers.
pub fn write(
    policy: &Path,
    c: &Calibration,
    out: Option<&Path>,
    write_in_place: bool,
) -> anyhow::Result<()> {
    let src = std::fs::read_to_string(policy)
        .with_context(|| format!("cannot read {}", policy.display()))?;
    // A probe path is relative to the policy file: written elsewhere, the policy must name
    // the same probe from there.
    let moved;
    let c = match (out, &c.probe, written_probe(&src)) {
        (Some(o), None, Some(p)) => {
            let from = policy.parent().unwrap_or(Path::new("")).join(p);
            moved = Calibration {
                probe: Some(probe::named_from(o, &from)?),
                ..c.clone()
            };
            &moved
        }
        _ => c,
    };
    let text = rewrite_policy(&src, c)?;
    let target = match (out, write_in_place) {
        (Some(o), false) => o.to_path_buf(),
        (None, true) => policy.to_path_buf(),
        (None, false) => {
            print!("{text}");
            return Ok(());
        }
        (Some(_), true) => bail!("give either --out FILE or --write, not both"),
    };
    sluice_policy::parse_policy(&text, &target, &|v| std::env::var(v).ok())
        .with_context(|| "the calibrated policy does not validate")?;
    let tmp = target.with_extension("yaml.tmp");
    std::fs::write(&tmp, &text).with_context(|| format!("cannot write {}", tmp.display()))?;
    std::fs::rename(&tmp, &target).with_context(|| format!("cannot write {}", target.display()))?;
    eprintln!("calibrate: wrote {}", target.display());
    Ok(())
}

#[cfg(test)]
mod tests;
