//! The `eval` and `calibrate` commands: read the items, get the local drafts (model or saved
//! rows) and the large answers (tier or saved file), then report or calibrate.

use std::path::Path;
use std::process::ExitCode;

use anyhow::{bail, Context};
use sluice_policy::{Policy, PromptStates, Tier};
use sluice_slm::SlmModel;

use super::large::{ask_tier, read_answers, LargeAnswer};
use super::report::LargeSide;
use super::{collect, collect_states, data, read_rows, report, table, Row};
use crate::calibrate::Target;
use crate::cli::{DraftRun, LargeArgs};

/// Files `eval` writes besides its printed report.
pub struct Outputs<'a> {
    pub rows: Option<&'a Path>,
    pub report: Option<&'a Path>,
    pub plot: Option<&'a Path>,
}

struct Prepared {
    policy: Policy,
    rows: Vec<Row>,
    large: Option<(Tier, Vec<LargeAnswer>, Vec<bool>)>,
    /// Each item's hidden states, when the model was there to give them.
    states: Option<Vec<PromptStates>>,
    /// The model file's SHA-256, when it was read.
    model_sha256: Option<String>,
}

impl Prepared {
    fn large_side(&self) -> Option<LargeSide<'_>> {
        self.large.as_ref().map(|(tier, answers, right)| LargeSide {
            tier,
            answers,
            right: right.clone(),
        })
    }
}

/// `--data`, which every use but calibrating on traffic needs.
fn data_file(run: &DraftRun) -> anyhow::Result<&Path> {
    run.data.as_deref().context(
        "--data FILE is needed: the labelled prompts (or, for calibrate, --rows DIR alone: \
         the shadow samples `sluice serve --samples-dir` wrote)",
    )
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")
}

fn prepare(run: &DraftRun, large: &LargeArgs, rows_out: Option<&Path>) -> anyhow::Result<Prepared> {
    let policy = sluice_policy::load_policy_file(&run.policy)?;
    let items = data::read_items(data_file(run)?, run.limit)?;
    // Settle every argument before the long part starts.
    let tier = if large.large.is_some() || large.save_large.is_some() {
        Some(pick_tier(&policy, large.large_tier.as_deref())?)
    } else {
        if let Some(name) = &large.large_tier {
            bail!("--large-tier {name}: give --large FILE or --save-large FILE as well");
        }
        None
    };
    if run.rows.is_none() && !run.model.is_file() {
        bail!(
            "model file {} does not exist; fetch the default model with `scripts/fetch-model`",
            run.model.display()
        );
    }
    runtime()?.block_on(async {
        // The large side first: a misconfigured tier fails before the long local run.
        let large = match (tier, &large.large, &large.save_large) {
            (Some(tier), Some(file), _) => {
                let answers = read_answers(file, &items)?;
                Some((tier, answers))
            }
            (Some(tier), None, Some(save)) => {
                let answers = ask_tier(&tier, &items, large.large_max_tokens, Some(save)).await?;
                eprintln!("eval: saved the large answers to {}", save.display());
                Some((tier, answers))
            }
            _ => None,
        };
        // The model, when its file is there: to draft, or (with --rows) for the hidden
        // states only, one prefill per item.
        let slm = match run.model.is_file() {
            true => {
                let slm = SlmModel::load(&run.model).await?;
                policy.check_model(slm.sha256())?;
                Some(slm)
            }
            false => None,
        };
        let model_sha256 = slm.as_ref().map(|m| m.sha256().to_owned());
        let (rows, states) = match (&run.rows, &slm) {
            (Some(path), Some(slm)) => {
                let probe = policy.scoring.probe.as_deref();
                let mut rows = read_rows(path, &items, &policy, probe.is_some())?;
                let prompts: Vec<super::Prompt> = items.iter().map(Into::into).collect();
                let (states, scored) = collect_states(slm, &prompts, probe).await?;
                if let Some(z) = scored {
                    super::set_hidden_probe(&mut rows, &z, &policy);
                }
                (rows, states)
            }
            (Some(path), None) => (read_rows(path, &items, &policy, false)?, None),
            (None, Some(slm)) => {
                let max_tokens = run.max_tokens.unwrap_or(policy.local.max_tokens);
                collect(slm, &policy, &items, max_tokens, rows_out).await?
            }
            (None, None) => bail!("model file {} does not exist", run.model.display()),
        };
        let large = large.map(|(tier, answers)| {
            let right = items
                .iter()
                .zip(&answers)
                .map(|(it, a)| it.is_right(&a.text))
                .collect();
            (tier, answers, right)
        });
        Ok(Prepared {
            policy,
            rows,
            large,
            states,
            model_sha256,
        })
    })
}

fn pick_tier(policy: &Policy, name: Option<&str>) -> anyhow::Result<Tier> {
    let names = || {
        policy
            .tiers
            .iter()
            .map(|t| t.name.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    };
    match name {
        None => policy.tiers.first().cloned().with_context(|| {
            format!(
                "policy {:?} has no tier to take large answers and prices from",
                policy.name
            )
        }),
        Some(n) => policy
            .tiers
            .iter()
            .find(|t| t.name == n)
            .cloned()
            .with_context(|| {
                format!(
                    "--large-tier: policy {:?} has no tier {n:?}; its tiers: {}",
                    policy.name,
                    names()
                )
            }),
    }
}

fn write(path: &Path, text: &str, what: &str) -> anyhow::Result<()> {
    std::fs::write(path, text).with_context(|| format!("cannot write {}", path.display()))?;
    eprintln!("eval: wrote the {what} to {}", path.display());
    Ok(())
}

pub fn eval(run: &DraftRun, large: &LargeArgs, out: Outputs<'_>) -> anyhow::Result<ExitCode> {
    if out.plot.is_some() && large.large.is_none() && large.save_large.is_none() {
        bail!("--plot needs the large model's answers: give --large FILE or --save-large FILE");
    }
    let p = prepare(run, large, out.rows)?;
    let r = report::build(
        &p.policy,
        &p.rows,
        p.large_side().as_ref(),
        p.states.as_deref(),
    );
    print!("{}", table::render(&r));
    if let Some(path) = out.report {
        write(path, &(serde_json::to_string_pretty(&r)? + "\n"), "report")?;
    }
    if let (Some(path), Some(svg)) = (out.plot, table::plot(&r)) {
        write(path, &svg, "plot")?;
    }
    Ok(ExitCode::SUCCESS)
}

/// What `sluice calibrate` is asked for beyond the prompts and the large model's answers.
pub struct CalibrateArgs<'a> {
    pub target: Target,
    pub features: &'a [sluice_policy::Feature],
    pub method: Option<sluice_policy::ScoringMethod>,
    pub fit_probe: Option<&'a Path>,
    pub out: Option<&'a Path>,
    pub write_in_place: bool,
}

pub fn calibrate(
    run: &DraftRun,
    large: &LargeArgs,
    how: CalibrateArgs<'_>,
) -> anyhow::Result<ExitCode> {
    let traffic = run.data.is_none();
    if traffic && run.rows.is_none() {
        data_file(run)?;
    }
    if matches!(how.target, Target::Quality(_))
        && !traffic
        && large.large.is_none()
        && large.save_large.is_none()
    {
        bail!("--target-quality needs the large model's answers: give --large FILE or --save-large FILE");
    }
    if how.out.is_some() && how.write_in_place {
        bail!("give either --out FILE or --write, not both");
    }
    let policy = sluice_policy::load_policy_file(&run.policy)?;
    let method = how.method.unwrap_or(policy.scoring.method);
    crate::calibrate::check_features(method, how.features)?;
    if how.fit_probe.is_some() && !run.model.is_file() {
        bail!(
            "--fit-probe needs the model file for the hidden states; {} does not exist",
            run.model.display()
        );
    }
    let p = if traffic {
        prepare_traffic(run, large, how.fit_probe.is_some())?
    } else {
        prepare(run, large, None)?
    };
    let large_right = p.large.as_ref().map(|(_, _, right)| right.as_slice());
    let fitted = match how.fit_probe {
        None => None,
        Some(path) => {
            let (Some(states), Some(sha)) = (p.states.as_deref(), p.model_sha256.as_deref()) else {
                bail!("--fit-probe: the model returned no hidden states to fit on");
            };
            Some((
                path,
                crate::calibrate::probe::fit(
                    &p.rows,
                    states,
                    sha,
                    data_file(run).or_else(|_| rows_file(run))?,
                )?,
            ))
        }
    };
    let mut c = crate::calibrate::calibrate(
        &p.rows,
        method,
        how.features,
        how.target,
        large_right,
        fitted.as_ref().map(|(_, f)| f.held_out.as_slice()),
    )?;
    eprintln!(
        "calibrate: {} rows, method {}, 5-fold CV AUROC {:.3}, threshold {:.4} escalates {:.1}%",
        p.rows.len(),
        method.as_str(),
        c.cv_auroc,
        c.threshold,
        100.0 * c.escalated
    );
    if let (Some(after), Some(large)) = (c.routed, large_right) {
        let before = as_it_is(&p.policy, &p.rows, large);
        let of = if traffic {
            "agreement with the tier"
        } else {
            "the large model's accuracy"
        };
        eprintln!(
            "calibrate: the policy as it is keeps {:.1}% local at {:.1}% of {of}; calibrated: \
             {:.1}% at {:.1}% (held out)",
            100.0 * before.kept,
            100.0 * before.quality,
            100.0 * after.kept,
            100.0 * after.quality
        );
    }
    if let Some((cut, share)) = c.escalate_below {
        eprintln!(
            "calibrate: cascade first stage: escalate_below {cut:.4} sends {:.1}% on without a draft",
            100.0 * share
        );
    }
    if let Some((path, f)) = &fitted {
        let loto = match f.loto_auroc {
            Some(a) => format!("{a:.3} (leave-one-task-out)"),
            None => "no leave-one-task-out: every row is one task (tag requests with `task` \
                     to have one)"
                .to_owned(),
        };
        eprintln!(
            "calibrate: probe held-out AUROC {:.3} (5-fold), {loto}",
            f.kfold_auroc
        );
        // Where the policy is written is where it names the probe from.
        let policy_path = how.out.unwrap_or(&run.policy);
        c.probe = Some(crate::calibrate::probe::named_from(policy_path, path)?);
        crate::calibrate::probe::write(path, &f.file)?;
    }
    crate::calibrate::write(&run.policy, &c, how.out, how.write_in_place)?;
    Ok(ExitCode::SUCCESS)
}

fn rows_file(run: &DraftRun) -> anyhow::Result<&Path> {
    run.rows
        .as_deref()
        .context("--rows DIR is needed: the shadow samples")
}

/// What the policy as written does with the rows: kept where the cascade's first stage lets
/// the row through and the confidence reaches the threshold.
fn as_it_is(policy: &Policy, rows: &[Row], large_right: &[bool]) -> crate::calibrate::Routed {
    let kept: Vec<bool> = rows
        .iter()
        .map(|r| {
            sluice_router::prescreen(policy, &r.feature_values()).is_none()
                && r.confidence >= policy.scoring.threshold
        })
        .collect();
    let local: Vec<bool> = rows.iter().map(|r| r.right).collect();
    crate::calibrate::routed(&kept, &local, large_right)
}

/// Calibrating on live traffic: the policy's shadow samples are the rows, the tier's answers
/// in them the reference. The model is loaded only to fit a probe.
fn prepare_traffic(run: &DraftRun, large: &LargeArgs, fit_probe: bool) -> anyhow::Result<Prepared> {
    if large.large.is_some() || large.save_large.is_some() {
        bail!(
            "the shadow samples carry the tier's answers: --large and --save-large go with --data"
        );
    }
    let policy = sluice_policy::load_policy_file(&run.policy)?;
    let tier = pick_tier(&policy, large.large_tier.as_deref())?;
    let path = rows_file(run)?;
    let mut t = super::traffic::read_samples(path, &policy)?;
    if let Some(limit) = run.limit {
        t.rows.truncate(limit);
        t.prompts.truncate(limit);
        t.answers.truncate(limit);
    }
    eprintln!(
        "calibrate: {} samples of policy {:?} from {} files: {} kept local, {} escalated \
         (left out: {} of other policies, {} judged unknown, {} repeated ids)",
        t.rows.len(),
        policy.name,
        t.files,
        t.routes.0,
        t.routes.1,
        t.other_policy,
        t.unknown,
        t.repeated
    );
    let (states, model_sha256) = if fit_probe {
        runtime()?.block_on(async {
            let slm = SlmModel::load(&run.model).await?;
            let (states, _) = collect_states(&slm, &t.prompts, None).await?;
            anyhow::Ok((states, Some(slm.sha256().to_owned())))
        })?
    } else {
        (None, None)
    };
    let right = vec![true; t.rows.len()];
    Ok(Prepared {
        policy,
        rows: t.rows,
        large: Some((tier, t.answers, right)),
        states,
        model_sha256,
    })
}
