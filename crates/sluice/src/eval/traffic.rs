//! Live traffic as calibration data: the shadow samples `sluice serve --samples-dir` wrote,
//! read back as rows. A row's label is whether the local answer agreed with the tier's, and
//! the tier's answer is the reference (right on every row), so "quality" on traffic is the
//! routed answers' agreement with what the tier alone would have answered.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use sluice_policy::Policy;
use sluice_router::eval::agree::Agreement;
use sluice_router::eval::sample::{SampleRoute, ShadowSample};
use sluice_router::{confidence, FeatureValues};

use super::large::LargeAnswer;
use super::{jsonl, Prompt, Row, FEATURES};

/// Untagged requests are one task.
pub const UNTAGGED: &str = "untagged";

/// The samples of one policy, as rows.
#[derive(Debug)]
pub struct Traffic {
    pub rows: Vec<Row>,
    /// Each row's conversation (for the probe's hidden states).
    pub prompts: Vec<Prompt>,
    /// Each row's tier answer.
    pub answers: Vec<LargeAnswer>,
    /// Samples of the route the caller got: (kept local, escalated).
    pub routes: (usize, usize),
    /// Samples left out: of other policies, judged `unknown`, and repeated ids.
    pub other_policy: usize,
    pub unknown: usize,
    pub repeated: usize,
    pub files: usize,
}

/// The `*.jsonl` files at `path` (the file itself, or every one under the directory, at any
/// depth), in name order.
fn sample_files(path: &Path) -> anyhow::Result<Vec<PathBuf>> {
    if !path.is_dir() {
        return Ok(vec![path.to_path_buf()]);
    }
    let mut out = Vec::new();
    let mut dirs = vec![path.to_path_buf()];
    while let Some(dir) = dirs.pop() {
        for entry in
            std::fs::read_dir(&dir).with_context(|| format!("cannot read {}", dir.display()))?
        {
            let p = entry
                .with_context(|| format!("cannot read {}", dir.display()))?
                .path();
            if p.is_dir() {
                dirs.push(p);
            } else if p.extension().is_some_and(|e| e == "jsonl") {
                out.push(p);
            }
        }
    }
    out.sort();
    if out.is_empty() {
        bail!(
            "{}: no *.jsonl samples files (written by `sluice serve --samples-dir`)",
            path.display()
        );
    }
    Ok(out)
}

/// Every sample of `policy` under `path` that was judged, as a row with its confidence under
/// `policy`.
pub fn read_samples(path: &Path, policy: &Policy) -> anyhow::Result<Traffic> {
    let files = sample_files(path)?;
    let mut t = Traffic {
        rows: Vec::new(),
        prompts: Vec::new(),
        answers: Vec::new(),
        routes: (0, 0),
        other_policy: 0,
        unknown: 0,
        repeated: 0,
        files: files.len(),
    };
    let mut seen = HashSet::new();
    let what = "a shadow sample written by `sluice serve --samples-dir`";
    for file in &files {
        for (_, s) in jsonl::read::<ShadowSample>(file, what)? {
            if s.policy != policy.name {
                t.other_policy += 1;
                continue;
            }
            if s.agree == Agreement::Unknown {
                t.unknown += 1;
                continue;
            }
            if !seen.insert(s.id.clone()) {
                t.repeated += 1;
                continue;
            }
            match s.route {
                SampleRoute::Local => t.routes.0 += 1,
                SampleRoute::Remote => t.routes.1 += 1,
            }
            t.rows.push(row(&s, policy));
            t.prompts.push(Prompt {
                id: s.id.clone(),
                messages: s.messages,
            });
            t.answers.push(LargeAnswer {
                id: s.id,
                model: s.large_model,
                text: s.large,
                prompt_tokens: s.prompt_tokens,
                completion_tokens: s.completion_tokens,
            });
        }
    }
    if t.rows.is_empty() {
        bail!(
            "{}: no judged samples of policy {:?} in {} files ({} of other policies, {} judged \
             unknown)",
            path.display(),
            policy.name,
            t.files,
            t.other_policy,
            t.unknown
        );
    }
    Ok(t)
}

fn row(s: &ShadowSample, policy: &Policy) -> Row {
    let values = FeatureValues(
        FEATURES
            .iter()
            .map(|f| (*f, s.features.get(f.as_str()).copied().unwrap_or(0.0)))
            .collect(),
    );
    Row {
        id: s.id.clone(),
        task: if s.task.is_empty() {
            UNTAGGED.into()
        } else {
            s.task.clone()
        },
        right: s.agree == Agreement::Agree,
        confidence: confidence(&policy.scoring.weights, &values),
        features: s.features.clone(),
        draft: s.local.clone(),
        prefill_ms: 0.0,
        draft_ms: 0.0,
    }
}

#[cfg(test)]
mod tests;
