//! A linear probe on the local model's hidden states: from one prefill of the prompt to the
//! log-odds that the local model answers it correctly. The file a policy names
//! (`scoring.probe`) holds its weights and the SHA-256 of the model file they were fitted on.

use serde::{Deserialize, Serialize};

/// Format version of probe files; only 1 exists.
pub const PROBE_VERSION: u32 = 1;

/// How a layer's hidden states over the prompt become one vector.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Pool {
    /// The state at the prompt's last token (the one the answer's first token is read from).
    Last,
    /// The mean of the states over the last user message's tokens.
    Mean,
}

/// The hidden states of one prompt, pooled: `last[k]` and `mean[k]` for state `k`, where state
/// 0 is the token embedding, state `i` the residual stream after block `i`, and the last one
/// the final norm's output.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PromptStates {
    pub last: Vec<Vec<f32>>,
    pub mean: Vec<Vec<f32>>,
}

impl PromptStates {
    /// The pooled vector of `state`, if the model has that state.
    pub fn get(&self, state: usize, pool: Pool) -> Option<&[f32]> {
        let pooled = match pool {
            Pool::Last => &self.last,
            Pool::Mean => &self.mean,
        };
        pooled.get(state).map(Vec::as_slice)
    }
}

/// One logistic model on one pooled state; its weights apply to the raw state (any
/// standardisation used in fitting is folded into them).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProbeComponent {
    pub state: usize,
    pub pool: Pool,
    pub bias: f64,
    pub weights: Vec<f64>,
}

/// A probe file: an ensemble whose log-odds is the mean of its components' log-odds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HiddenProbe {
    pub version: u32,
    /// SHA-256 (lowercase hex) of the GGUF file the probe was fitted on.
    pub model_sha256: String,
    /// Width of each hidden state.
    pub hidden_size: usize,
    /// How it was fitted (data, rows, regularisation): for the people reading the file.
    #[serde(default)]
    pub fitted: String,
    pub components: Vec<ProbeComponent>,
}

impl HiddenProbe {
    /// Parses and checks a probe file's JSON; the error says what is wrong and where.
    pub fn parse(text: &str) -> Result<Self, String> {
        let probe: HiddenProbe = serde_json::from_str(text).map_err(|e| e.to_string())?;
        if probe.version != PROBE_VERSION {
            return Err(format!(
                "expected version {PROBE_VERSION}, found {}",
                probe.version
            ));
        }
        let sha = &probe.model_sha256;
        if sha.len() != 64 || !sha.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
            return Err(format!(
                "expected model_sha256 as 64 lowercase hex digits, found {sha:?}"
            ));
        }
        if probe.components.is_empty() {
            return Err("expected at least one component, found none".into());
        }
        for (i, c) in probe.components.iter().enumerate() {
            if c.weights.len() != probe.hidden_size {
                return Err(format!(
                    "components[{i}]: expected {} weights (hidden_size), found {}",
                    probe.hidden_size,
                    c.weights.len()
                ));
            }
            if !c.bias.is_finite() || c.weights.iter().any(|w| !w.is_finite()) {
                return Err(format!("components[{i}]: expected finite numbers"));
            }
        }
        Ok(probe)
    }

    /// Log-odds that the local model answers the prompt correctly, clamped to ±50; an error
    /// names a state the model did not return.
    pub fn log_odds(&self, states: &PromptStates) -> Result<f64, String> {
        let mut sum = 0.0;
        for c in &self.components {
            let x = states.get(c.state, c.pool).ok_or_else(|| {
                format!(
                    "the probe reads hidden state {} but the model returned {}",
                    c.state,
                    states.last.len()
                )
            })?;
            if x.len() != c.weights.len() {
                return Err(format!(
                    "the probe expects hidden states of width {}, the model's are {}",
                    c.weights.len(),
                    x.len()
                ));
            }
            let dot: f64 = c
                .weights
                .iter()
                .zip(x)
                .map(|(w, v)| w * f64::from(*v))
                .sum();
            sum += c.bias + dot;
        }
        let z = sum / self.components.len() as f64;
        Ok(if z.is_nan() {
            0.0
        } else {
            z.clamp(-50.0, 50.0)
        })
    }

    /// The (state, pool) pairs the probe reads.
    pub fn inputs(&self) -> impl Iterator<Item = (usize, Pool)> + '_ {
        self.components.iter().map(|c| (c.state, c.pool))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn probe() -> HiddenProbe {
        HiddenProbe {
            version: 1,
            model_sha256: "ab".repeat(32),
            hidden_size: 2,
            fitted: String::new(),
            components: vec![
                ProbeComponent {
                    state: 0,
                    pool: Pool::Last,
                    bias: 1.0,
                    weights: vec![1.0, 0.0],
                },
                ProbeComponent {
                    state: 1,
                    pool: Pool::Mean,
                    bias: -1.0,
                    weights: vec![0.0, 2.0],
                },
            ],
        }
    }

    fn states() -> PromptStates {
        PromptStates {
            last: vec![vec![3.0, 5.0], vec![7.0, 11.0]],
            mean: vec![vec![0.5, 0.25], vec![0.5, 4.0]],
        }
    }

    #[test]
    fn log_odds_is_the_mean_of_the_components() {
        // (1 + 3) and (-1 + 2 * 4) → mean 5.5
        assert_eq!(probe().log_odds(&states()).unwrap(), 5.5);
    }

    #[test]
    fn missing_state_or_width_is_an_error() {
        let mut s = states();
        s.mean.truncate(1);
        let e = probe().log_odds(&s).unwrap_err();
        assert!(e.contains("hidden state 1"), "{e}");
        let s = PromptStates {
            last: vec![vec![1.0]; 2],
            mean: vec![vec![1.0]; 2],
        };
        let e = probe().log_odds(&s).unwrap_err();
        assert!(e.contains("width 2"), "{e}");
    }

    #[test]
    fn parse_round_trips_and_checks() {
        let text = serde_json::to_string(&probe()).unwrap();
        assert_eq!(HiddenProbe::parse(&text).unwrap(), probe());
        let bad_sha = text.replace(&"ab".repeat(32), "xyz");
        assert!(HiddenProbe::parse(&bad_sha)
            .unwrap_err()
            .contains("64 lowercase hex"));
        let mut p = probe();
        p.hidden_size = 3;
        let e = HiddenProbe::parse(&serde_json::to_string(&p).unwrap()).unwrap_err();
        assert!(e.contains("components[0]: expected 3 weights"), "{e}");
        let e = HiddenProbe::parse("{}").unwrap_err();
        assert!(e.contains("missing field"), "{e}");
    }
}
