//! Fitting the hidden-state probe: one L2 logistic model per (state, pool) input on the local
//! model's pooled hidden states, averaged on the log-odds scale, and its held-out scores.

use sluice_policy::{HiddenProbe, Pool, ProbeComponent, PromptStates, PROBE_VERSION};

use super::logistic::{fit_logistic, scores_by_folds};

/// Regularisation of each component (summed log-loss + l2/2·‖w‖² on standardised states):
/// strong, because a state is hundreds wide and calibration sets are hundreds of rows.
pub const PROBE_L2: f64 = 100.0;

/// Depths, in fifteenths of the model's blocks, whose residual streams the probe reads: mid
/// and upper layers (for SmolLM2-135M's 30 blocks: after blocks 8, 12, 16, 20 and 24).
const DEPTHS: [usize; 5] = [4, 6, 8, 10, 12];

/// The probe's inputs for a model returning `state_count` states (embedding, one per block,
/// final norm): each chosen depth, at the last prompt token and as the mean over the user's.
pub fn probe_inputs(state_count: usize) -> Vec<(usize, Pool)> {
    let blocks = state_count.saturating_sub(2);
    let mut out = Vec::new();
    for k in DEPTHS {
        let state = ((blocks * k) as f64 / 15.0).round() as usize;
        for pool in [Pool::Last, Pool::Mean] {
            if !out.contains(&(state, pool)) {
                out.push((state, pool));
            }
        }
    }
    out
}

/// Fits one component per input on these rows; a row missing an input is an error naming it.
pub fn fit_probe(
    states: &[&PromptStates],
    right: &[bool],
    inputs: &[(usize, Pool)],
    l2: f64,
) -> Result<Vec<ProbeComponent>, String> {
    inputs
        .iter()
        .map(|&(state, pool)| {
            let xs = column(states, state, pool)?;
            let fit = fit_logistic(&xs, right, l2);
            Ok(ProbeComponent {
                state,
                pool,
                bias: fit.bias,
                weights: fit.weights,
            })
        })
        .collect()
}

/// A whole probe file for the model with this digest.
pub fn probe_file(
    model_sha256: &str,
    components: Vec<ProbeComponent>,
    fitted: String,
) -> HiddenProbe {
    HiddenProbe {
        version: PROBE_VERSION,
        model_sha256: model_sha256.to_owned(),
        hidden_size: components.first().map_or(0, |c| c.weights.len()),
        fitted,
        components,
    }
}

/// Held-out probe log-odds of every row: for each fold, the probe fitted on the other folds.
pub fn held_out_log_odds(
    states: &[&PromptStates],
    right: &[bool],
    inputs: &[(usize, Pool)],
    l2: f64,
    fold_of: &[usize],
) -> Result<Vec<f64>, String> {
    // Check every input once, so the folds below cannot fail.
    for &(state, pool) in inputs {
        column(states, state, pool)?;
    }
    let rows: Vec<&PromptStates> = states.to_vec();
    Ok(scores_by_folds(&rows, right, fold_of, |train, y| {
        let components = fit_probe(train, y, inputs, l2).unwrap_or_default();
        let probe = probe_file(&"0".repeat(64), components, String::new());
        move |s: &&PromptStates| probe.log_odds(s).unwrap_or(0.0)
    }))
}

fn column(states: &[&PromptStates], state: usize, pool: Pool) -> Result<Vec<Vec<f64>>, String> {
    states
        .iter()
        .enumerate()
        .map(|(i, s)| {
            s.get(state, pool)
                .map(|v| v.iter().map(|x| f64::from(*x)).collect())
                .ok_or_else(|| format!("row {i} has no hidden state {state} ({pool:?})"))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::eval::auroc;
    use crate::eval::logistic::kfold_assignment;

    #[test]
    fn inputs_are_mid_and_upper_layers_both_pooled() {
        let got = probe_inputs(32);
        let states: Vec<usize> = got.iter().map(|(s, _)| *s).collect();
        assert_eq!(states, [8, 8, 12, 12, 16, 16, 20, 20, 24, 24]);
        assert_eq!(got[0].1, Pool::Last);
        assert_eq!(got[1].1, Pool::Mean);
    }

    /// States where dimension 0 of state 1 carries the label, with noise elsewhere.
    fn data(rows: usize) -> (Vec<PromptStates>, Vec<bool>) {
        let mut seed = 1u64;
        let mut noise = move || {
            seed = seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((seed >> 33) as f32 / (1u64 << 31) as f32) - 0.5
        };
        let mut states = Vec::new();
        let mut right = Vec::new();
        for i in 0..rows {
            let y = i % 3 == 0;
            let mut v: Vec<f32> = (0..8).map(|_| noise()).collect();
            v[0] += if y { 0.6 } else { -0.6 };
            let other: Vec<f32> = (0..8).map(|_| noise()).collect();
            states.push(PromptStates {
                last: vec![other.clone(), v.clone()],
                mean: vec![other, v],
            });
            right.push(y);
        }
        (states, right)
    }

    #[test]
    fn a_fitted_probe_ranks_held_out_rows() {
        let (states, right) = data(120);
        let refs: Vec<&PromptStates> = states.iter().collect();
        let inputs = [(1, Pool::Last), (1, Pool::Mean)];
        let folds = kfold_assignment(refs.len(), 5, 3);
        let held_out = held_out_log_odds(&refs, &right, &inputs, 1.0, &folds).unwrap();
        let a = auroc(&held_out, &right);
        assert!(a > 0.85, "held-out AUROC {a}");
        // noise alone does not rank
        let held_out = held_out_log_odds(&refs, &right, &[(0, Pool::Last)], 1.0, &folds).unwrap();
        let a = auroc(&held_out, &right);
        assert!(a < 0.7, "noise AUROC {a}");
        // the whole fit, as a probe file
        let components = fit_probe(&refs, &right, &inputs, 1.0).unwrap();
        let probe = probe_file(&"ab".repeat(32), components, "test".into());
        assert_eq!((probe.hidden_size, probe.components.len()), (8, 2));
        assert!(probe.log_odds(&states[0]).unwrap() > probe.log_odds(&states[1]).unwrap());
    }

    #[test]
    fn a_missing_state_is_named() {
        let (states, right) = data(10);
        let refs: Vec<&PromptStates> = states.iter().collect();
        let e = fit_probe(&refs, &right, &[(5, Pool::Mean)], 1.0).unwrap_err();
        assert!(e.contains("hidden state 5"), "{e}");
    }
}
