//! `sluice eval`: run the local model over labelled prompts, grade every draft, and measure
//! how well confidence separates right drafts from wrong ones and what routing on it achieves
//! against the large model's answers.

pub mod data;
pub mod jsonl;
pub mod large;
pub mod methods;
pub mod progress;
pub mod report;
pub mod run;
pub mod table;
pub mod traffic;

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{bail, Context};
use serde::{Deserialize, Serialize};
use std::time::Instant;

use sluice_policy::{Feature, Message, Policy, PromptStates, Role};
use sluice_router::eval::probe_fit::probe_inputs;
use sluice_router::{
    all_prefill_features, confidence, request_features, FeatureValues, LocalModel, LocalRequest,
};

use data::Item;
use progress::Progress;

/// Features in a fixed order, for fitting.
pub const FEATURES: [Feature; Feature::ALL.len()] = Feature::ALL;

/// One graded item: the local draft, its features, whether it is right, the policy's
/// confidence. A JSON line of the `--out` file, which `--rows` reads back.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Row {
    pub id: String,
    pub task: String,
    pub right: bool,
    pub confidence: f64,
    #[serde(deserialize_with = "exact_floats")]
    pub features: BTreeMap<String, f64>,
    pub draft: String,
    /// Time of the prompt's prefill (the pre-route methods' and the probe's cost), ms.
    #[serde(default)]
    pub prefill_ms: f64,
    /// Time of the greedy draft (what `answer_confidence` waits for), ms.
    #[serde(default)]
    pub draft_ms: f64,
}

/// Feature values read back bit for bit: serde_json's default float parsing may be off by an
/// ulp, and a report from saved rows must equal the report from the run that wrote them.
fn exact_floats<'de, D: serde::Deserializer<'de>>(d: D) -> Result<BTreeMap<String, f64>, D::Error> {
    let raw: BTreeMap<String, Box<serde_json::value::RawValue>> = Deserialize::deserialize(d)?;
    raw.into_iter()
        .map(|(k, v)| match v.get().parse::<f64>() {
            Ok(x) => Ok((k, x)),
            Err(_) => Err(serde::de::Error::custom(format!(
                "feature {k}: expected a number, found {}",
                v.get()
            ))),
        })
        .collect()
}

impl Row {
    /// Feature values in `FEATURES` order.
    pub fn x(&self) -> Vec<f64> {
        FEATURES
            .iter()
            .map(|f| self.features.get(f.as_str()).copied().unwrap_or(0.0))
            .collect()
    }

    pub(crate) fn feature_values(&self) -> FeatureValues {
        FeatureValues(FEATURES.iter().copied().zip(self.x()).collect())
    }
}

/// Draft and grade every item; each row also goes to `out` as a JSON line as it is made.
/// Also returns each prompt's hidden states (the probe's inputs only) when the model gives them.
pub async fn collect(
    model: &dyn LocalModel,
    policy: &Policy,
    items: &[Item],
    max_tokens: u32,
    out: Option<&Path>,
) -> anyhow::Result<(Vec<Row>, Option<Vec<PromptStates>>)> {
    let mut rows: Vec<Row> = Vec::with_capacity(items.len());
    let mut states = Some(Vec::with_capacity(items.len()));
    let mut out = jsonl::Writer::create(out)?;
    let mut progress = Progress::new("local", items.len());
    for item in items {
        let messages = vec![Message::new(Role::User, &item.prompt)];
        let started = Instant::now();
        let draft = model
            .draft(LocalRequest {
                messages: messages.clone(),
                max_tokens,
                temperature: None,
                top_p: None,
                stop: Vec::new(),
            })
            .await
            .with_context(|| format!("item {}", item.id))?;
        let draft_ms = started.elapsed().as_secs_f64() * 1e3;
        let prefill = all_prefill_features(model, &messages, policy.scoring.probe.as_deref())
            .await
            .with_context(|| format!("item {}", item.id))?;
        keep_probe_inputs(&mut states, prefill.states);
        let features = request_features(&messages, Some(&draft), prefill.values);
        let row = Row {
            id: item.id.clone(),
            task: item.task.clone(),
            right: item.is_right(&draft.text),
            confidence: confidence(&policy.scoring.weights, &features),
            features: features
                .0
                .iter()
                .map(|(f, v)| (f.as_str().to_owned(), *v))
                .collect(),
            draft: draft.text,
            prefill_ms: round_ms(prefill.prefill_ms),
            draft_ms: round_ms(draft_ms),
        };
        if let Some(w) = out.as_mut() {
            w.write(&row)?;
        }
        rows.push(row);
        progress.step();
    }
    progress.finish();
    Ok((rows, states))
}

/// A conversation to prefill, and the id that names it in errors.
#[derive(Debug, Clone)]
pub struct Prompt {
    pub id: String,
    pub messages: Vec<Message>,
}

impl From<&Item> for Prompt {
    fn from(item: &Item) -> Self {
        Self {
            id: item.id.clone(),
            messages: vec![Message::new(Role::User, &item.prompt)],
        }
    }
}

/// Each prompt's hidden states (the probe's inputs only), from one prefill per prompt; `None`
/// when the model returns no states.
/// With the policy's `probe`, also each item's `hidden_probe` under it.
pub async fn collect_states(
    model: &dyn LocalModel,
    prompts: &[Prompt],
    probe: Option<&sluice_policy::HiddenProbe>,
) -> anyhow::Result<(Option<Vec<PromptStates>>, Option<Vec<f64>>)> {
    let mut states = Some(Vec::with_capacity(prompts.len()));
    let mut scored = probe.map(|_| Vec::with_capacity(prompts.len()));
    let mut progress = Progress::new("hidden states", prompts.len());
    for item in prompts {
        let stats = model
            .prompt_stats(&item.messages)
            .await
            .with_context(|| format!("item {}", item.id))?;
        if let (Some(p), Some(out)) = (probe, scored.as_mut()) {
            let s = stats.states.as_ref().with_context(|| {
                format!(
                    "item {}: the model returned no hidden states for the probe",
                    item.id
                )
            })?;
            let z = p
                .log_odds(s)
                .map_err(|e| anyhow::anyhow!("item {}: {e}", item.id))?;
            out.push(z);
        }
        keep_probe_inputs(&mut states, stats.states);
        if states.is_none() {
            break;
        }
        progress.step();
    }
    progress.finish();
    Ok((states, scored))
}

/// Each row's `hidden_probe` set to the policy's probe's log-odds `z[i]`, and its confidence
/// recomputed under the policy.
pub fn set_hidden_probe(rows: &mut [Row], z: &[f64], policy: &Policy) {
    for (row, z) in rows.iter_mut().zip(z) {
        row.features
            .insert(Feature::HiddenProbe.as_str().to_owned(), *z);
        row.confidence = confidence(&policy.scoring.weights, &row.feature_values());
    }
}

/// Appends the probe's inputs of `got` (the other states emptied, to save memory); one row
/// without states makes the whole set `None`.
fn keep_probe_inputs(states: &mut Option<Vec<PromptStates>>, got: Option<PromptStates>) {
    let (Some(all), Some(mut s)) = (states.as_mut(), got) else {
        *states = None;
        return;
    };
    let inputs = probe_inputs(s.last.len());
    for (k, (last, mean)) in s.last.iter_mut().zip(s.mean.iter_mut()).enumerate() {
        if !inputs.iter().any(|(state, _)| *state == k) {
            *last = Vec::new();
            *mean = Vec::new();
        }
    }
    all.push(s);
}

/// Milliseconds to 0.1 ms, so rows stay short.
fn round_ms(ms: f64) -> f64 {
    (ms * 10.0).round() / 10.0
}

/// Rows an earlier run wrote with `--out`, for exactly these items and in their order, with
/// the confidence recomputed under `policy`. Rows missing a feature (written before it
/// existed) or an item are errors: drafting again is the fix.
/// `probe_scored`: the caller sets `hidden_probe` afterwards (the model is there to compute
/// it), so rows written without a probe are read too.
pub fn read_rows(
    path: &Path,
    items: &[Item],
    policy: &Policy,
    probe_scored: bool,
) -> anyhow::Result<Vec<Row>> {
    let mut by_id = std::collections::HashMap::new();
    for (line, mut row) in jsonl::read::<Row>(path, "a row written by `sluice eval --out`")? {
        // `hidden_probe` exists only where a probe was given; the others always.
        let needed = |f: &Feature| {
            *f != Feature::HiddenProbe
                || (!probe_scored && policy.scoring.weights.uses_feature(Feature::HiddenProbe))
        };
        if needed(&Feature::HiddenProbe) && !row.features.contains_key("hidden_probe") {
            bail!(
                "{} line {line}: feature hidden_probe is missing (the rows were written without a probe); give the model file (--model) so the policy's probe scores them",
                path.display()
            );
        }
        if let Some(f) = FEATURES
            .iter()
            .filter(|f| needed(f))
            .find(|f| !row.features.contains_key(f.as_str()))
        {
            bail!(
                "{} line {line}: feature {} is missing (written by an older sluice); run eval again with --out",
                path.display(),
                f.as_str()
            );
        }
        row.confidence = confidence(&policy.scoring.weights, &row.feature_values());
        by_id.insert(row.id.clone(), row);
    }
    jsonl::for_items(
        by_id,
        items,
        path,
        "draft them again with `sluice eval --out FILE`",
    )
}
