//! `sluice calibrate`: fit the policy's logistic weights on labelled prompts, pick the threshold
//! for a target escalation rate, and write the policy with them.

use std::fmt::Write as _;
use std::path::Path;

use anyhow::{bail, Context};
use sluice_router::eval::{auroc, cross_val_scores, fit_logistic, threshold_for_escalation_rate};

use crate::eval::{Row, FEATURES};

/// Regularisation of the fit (summed log-loss + l2/2·‖w‖² on standardised features).
const L2: f64 = 1.0;

/// What calibration found.
#[derive(Debug, Clone, PartialEq)]
pub struct Calibration {
    pub bias: f64,
    pub weights: Vec<(&'static str, f64)>,
    pub threshold: f64,
    pub cv_auroc: f64,
    pub escalated: f64,
}

/// Fit on every row, report held-out AUROC from 5-fold cross-validation, pick the threshold
/// that escalates `target_escalation` of these rows.
pub fn calibrate(rows: &[Row], target_escalation: f64) -> anyhow::Result<Calibration> {
    if !(0.0..=1.0).contains(&target_escalation) {
        bail!("--target-escalation: expected a share in [0, 1], found {target_escalation}");
    }
    let labels: Vec<bool> = rows.iter().map(|r| r.1).collect();
    if labels.iter().all(|l| *l) || labels.iter().all(|l| !*l) {
        bail!("the data has only right or only wrong local answers: nothing to separate");
    }
    let xs: Vec<Vec<f64>> = rows.iter().map(|r| r.0.clone()).collect();
    let cv_auroc = auroc(&cross_val_scores(&xs, &labels, 5, L2, 7), &labels);
    let fit = fit_logistic(&xs, &labels, L2);
    let scores: Vec<f64> = xs.iter().map(|x| fit.predict(x)).collect();
    let threshold = threshold_for_escalation_rate(&scores, target_escalation);
    let escalated =
        scores.iter().filter(|s| **s < threshold).count() as f64 / scores.len().max(1) as f64;
    Ok(Calibration {
        bias: fit.bias,
        weights: FEATURES
            .iter()
            .map(|f| f.as_str())
            .zip(fit.weights)
            .collect(),
        threshold,
        cv_auroc,
        escalated,
    })
}

/// The policy text with its `scoring.threshold` and `scoring.weights` replaced, everything
/// else (comments included) kept. Expects `threshold:` and `weights:` lines inside `scoring:`;
/// a `weights: {` flow mapping may span lines until its closing brace.
pub fn rewrite_policy(src: &str, c: &Calibration) -> anyhow::Result<String> {
    let mut weights = format!("{{ bias: {:.6}", c.bias);
    for (name, w) in &c.weights {
        let _ = write!(weights, ", {name}: {w:.6}");
    }
    weights.push_str(" }");
    let mut out = String::with_capacity(src.len());
    let (mut in_scoring, mut skipping, mut saw_threshold, mut saw_weights) =
        (false, false, false, false);
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
        }
        let trimmed = line.trim_start();
        let indent = &line[..line.len() - trimmed.len()];
        if in_scoring && trimmed.starts_with("threshold:") {
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
        } else {
            out.push_str(line);
            out.push('\n');
        }
    }
    if !saw_threshold || !saw_weights {
        bail!(
            "expected `threshold:` and `weights:` lines under `scoring:` in the policy, found {}",
            match (saw_threshold, saw_weights) {
                (false, false) => "neither",
                (false, true) => "no threshold",
                _ => "no weights",
            }
        );
    }
    Ok(out)
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
mod tests {
    use super::*;
    use std::path::Path;

    fn calib() -> Calibration {
        Calibration {
            bias: -1.5,
            weights: vec![("mean_logprob", 2.0), ("stopped", 0.5)],
            threshold: 0.3,
            cv_auroc: 0.7,
            escalated: 0.8,
        }
    }

    #[test]
    fn rewrites_threshold_and_weights_and_keeps_the_rest() {
        let src = "# a comment that stays\nversion: 1\nname: fitted\n\
                   local: { model: m, max_tokens: 32 }\ntiers: []\nscoring:\n  \
                   method: answer_confidence\n  threshold: 0.5   # old\n  \
                   # weights follow\n  weights: { bias: 1.0, mean_logprob: 2.0,\n             \
                   stopped: 3.0 }\non_upstream_failure: local\n";
        let text = rewrite_policy(src, &calib()).unwrap();
        let env = |_: &str| None;
        let p = sluice_policy::parse_policy(&text, Path::new("x.yaml"), &env).unwrap();
        assert_eq!(p.scoring.threshold, 0.3);
        assert_eq!(p.scoring.weights.bias, -1.5);
        assert_eq!(p.scoring.weights.terms.len(), 2);
        assert_eq!(p.name, "fitted");
        assert!(text.contains("# a comment that stays"));
        assert!(text.contains("  # weights follow"));
        assert!(text.contains("on_upstream_failure: local"));
        assert!(
            !text.contains("stopped: 3.0"),
            "the old continuation line is gone"
        );
        assert_eq!(text.lines().count() + 1, src.lines().count());
    }

    #[test]
    fn the_shipped_fitted_policy_can_be_rewritten() {
        let src = std::fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../../policies/smollm2-fitted.yaml"),
        )
        .unwrap();
        let text = rewrite_policy(&src, &calib()).unwrap();
        let env = |_: &str| None;
        let p = sluice_policy::parse_policy(&text, Path::new("x.yaml"), &env).unwrap();
        assert_eq!(p.scoring.threshold, 0.3);
        assert!(text.contains("# Weights fitted for SmolLM2"));
    }

    #[test]
    fn a_policy_without_scoring_lines_is_refused() {
        let err = rewrite_policy("version: 1\nname: x\n", &calib()).unwrap_err();
        assert!(err.to_string().contains("neither"), "{err}");
    }

    #[test]
    fn calibration_separates_what_it_can() {
        // right answers have high first feature
        let rows: Vec<Row> = (0..100)
            .map(|i| {
                let right = i % 4 == 0;
                let mut x = vec![0.0; FEATURES.len()];
                x[0] = if right { -0.1 } else { -1.0 } + (i % 7) as f64 * 0.01;
                (x, right, 0.5, "t".to_string())
            })
            .collect();
        let c = calibrate(&rows, 0.75).unwrap();
        assert!(c.cv_auroc > 0.95, "{}", c.cv_auroc);
        assert!((c.escalated - 0.75).abs() < 0.02, "{}", c.escalated);
        assert!(c.weights[0].1 > 0.0);
        assert!(calibrate(&rows, 1.5).is_err());
    }
}
