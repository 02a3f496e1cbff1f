//! `sluice eval`: run the local model over labelled prompts, grade every draft, and measure
//! how well confidence separates right drafts from wrong ones.

use std::io::{BufRead, Write};
use std::path::Path;

use anyhow::{bail, Context};
use serde::Deserialize;
use sluice_policy::{Feature, Message, Policy, Role};
use sluice_router::eval::{auprc, auroc, cross_val_scores, fit_logistic, grade, GradeKind};
use sluice_router::{confidence, draft_features, LocalModel, LocalRequest};

/// One labelled prompt (the routing-dev JSONL format).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Item {
    id: String,
    task: String,
    prompt: String,
    answers: Vec<String>,
    grade: String,
    #[serde(default)]
    choices: Vec<String>,
}

fn read_items(path: &Path, limit: Option<usize>) -> anyhow::Result<Vec<Item>> {
    let file =
        std::fs::File::open(path).with_context(|| format!("cannot read {}", path.display()))?;
    let mut items = Vec::new();
    for (i, line) in std::io::BufReader::new(file).lines().enumerate() {
        let line =
            line.with_context(|| format!("{}: cannot read line {}", path.display(), i + 1))?;
        if line.trim().is_empty() {
            continue;
        }
        let item: Item = serde_json::from_str(&line).with_context(|| {
            format!(
                "{} line {}: expected a labelled item",
                path.display(),
                i + 1
            )
        })?;
        if !matches!(item.grade.as_str(), "contains" | "choice") {
            bail!(
                "{} line {}: grade: expected \"contains\" or \"choice\", found {:?}",
                path.display(),
                i + 1,
                item.grade
            );
        }
        items.push(item);
        if limit.is_some_and(|l| items.len() >= l) {
            break;
        }
    }
    Ok(items)
}

/// Features in a fixed order, for fitting.
pub const FEATURES: [Feature; 7] = Feature::ALL;

/// One graded item: features in `FEATURES` order, right or not, the policy's confidence, task.
pub type Row = (Vec<f64>, bool, f64, String);

/// Draft and grade every item; per-item rows go to `out` as JSON lines.
pub async fn collect(
    model: &dyn LocalModel,
    policy: &Policy,
    data: &Path,
    limit: Option<usize>,
    max_tokens: u32,
    out: Option<&Path>,
) -> anyhow::Result<Vec<Row>> {
    let items = read_items(data, limit)?;
    let mut rows: Vec<Row> = Vec::with_capacity(items.len());
    let mut out = match out {
        Some(p) => Some(std::io::BufWriter::new(
            std::fs::File::create(p).with_context(|| format!("cannot write {}", p.display()))?,
        )),
        None => None,
    };
    let started = std::time::Instant::now();
    for (n, item) in items.iter().enumerate() {
        let draft = model
            .draft(LocalRequest {
                messages: vec![Message::new(Role::User, &item.prompt)],
                max_tokens,
                temperature: None,
                top_p: None,
                stop: Vec::new(),
            })
            .await
            .with_context(|| format!("item {}", item.id))?;
        let kind = if item.grade == "choice" {
            GradeKind::Choice
        } else {
            GradeKind::Contains
        };
        let right = grade(&draft.text, kind, &item.answers, &item.choices);
        let features = draft_features(&draft);
        let conf = confidence(&policy.scoring.weights, &features);
        let x: Vec<f64> = FEATURES
            .iter()
            .map(|f| features.get(*f).unwrap_or(0.0))
            .collect();
        if let Some(w) = out.as_mut() {
            let row = serde_json::json!({
                "id": item.id, "task": item.task, "right": right, "confidence": conf,
                "features": FEATURES.iter().zip(&x).map(|(f, v)| (f.as_str(), *v)).collect::<std::collections::BTreeMap<_, _>>(),
                "draft": draft.text,
            });
            writeln!(w, "{row}")?;
        }
        rows.push((x, right, conf, item.task.clone()));
        if (n + 1) % 20 == 0 || n + 1 == items.len() {
            eprintln!(
                "eval: {}/{} items, {:.0} s",
                n + 1,
                items.len(),
                started.elapsed().as_secs_f64()
            );
        }
    }
    if let Some(mut w) = out {
        w.flush()?;
    }
    Ok(rows)
}

/// Print accuracy per task, AUROC/AUPRC of the policy and each feature, the length baseline,
/// cross-validated AUROC of a logistic fit and its weights.
pub fn report(policy: &Policy, rows: &[Row]) {
    let labels: Vec<bool> = rows.iter().map(|r| r.1).collect();
    let right = labels.iter().filter(|r| **r).count();
    println!(
        "items {}  local right {} ({:.1}%)",
        rows.len(),
        right,
        100.0 * right as f64 / rows.len().max(1) as f64
    );
    let mut tasks: std::collections::BTreeMap<&str, (usize, usize)> = Default::default();
    for r in rows {
        let e = tasks.entry(r.3.as_str()).or_default();
        e.0 += usize::from(r.1);
        e.1 += 1;
    }
    for (t, (ok, n)) in &tasks {
        println!("  {t:<16} {ok:>3}/{n:<3}");
    }
    let col = |i: usize| rows.iter().map(|r| r.0[i]).collect::<Vec<f64>>();
    let conf: Vec<f64> = rows.iter().map(|r| r.2).collect();
    println!("AUROC / AUPRC for \"the local answer is right\":");
    println!(
        "  policy {:<22} {:.3} / {:.3}",
        format!("{:?}", policy.name),
        auroc(&conf, &labels),
        auprc(&conf, &labels)
    );
    for (i, f) in FEATURES.iter().enumerate() {
        let s = col(i);
        println!(
            "  feature {:<21} {:.3} / {:.3}",
            f.as_str(),
            auroc(&s, &labels),
            auprc(&s, &labels)
        );
    }
    // length-only baseline: shorter prompts are easier
    let len: Vec<f64> = col(6).iter().map(|v| -v).collect();
    println!(
        "  baseline: -prompt_tokens         {:.3}",
        auroc(&len, &labels)
    );
    let xs: Vec<Vec<f64>> = rows.iter().map(|r| r.0.clone()).collect();
    let cv = cross_val_scores(&xs, &labels, 5, 1.0, 7);
    println!(
        "  logistic, all features, 5-fold CV {:.3} / {:.3}",
        auroc(&cv, &labels),
        auprc(&cv, &labels)
    );
    let fit = fit_logistic(&xs, &labels, 1.0);
    let mut w = format!("{{ bias: {:.4}", fit.bias);
    for (f, v) in FEATURES.iter().zip(&fit.weights) {
        w.push_str(&format!(", {}: {:.4}", f.as_str(), v));
    }
    w.push_str(" }");
    println!("fitted weights (all rows): {w}");
}
