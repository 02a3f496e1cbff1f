//! What each command does.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{bail, Context};
use futures::FutureExt;
use sluice_policy::{load_tenants, Policy, PolicySet};
use sluice_router::LocalModel;
use sluice_server::auth::Auth;
use sluice_server::serve::{LocalLoader, ServeConfig};
use sluice_server::PolicyStore;
use sluice_slm::SlmModel;

use crate::cli::{Cli, Command, DraftRun, PolicyCommand};

pub fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Serve {
            policy,
            grpc_listen,
            admin_listen,
            model,
            tenants,
            redis_url,
        } => serve(
            &policy,
            tenants.as_deref(),
            grpc_listen,
            admin_listen,
            redis_url,
            model,
        ),
        Command::Policy {
            command: PolicyCommand::Check { paths },
        } => policy_check(&paths),
        Command::Eval { run, out } => eval(&run, out.as_deref()),
        Command::Calibrate {
            run,
            target_escalation,
            out,
            write,
        } => calibrate(&run, target_escalation, out.as_deref(), write),
    }
}

fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,mistralrs_core=warn"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
}

fn serve(
    policy: &Path,
    tenants: Option<&Path>,
    grpc_listen: String,
    admin_listen: String,
    redis_url: Option<String>,
    model: PathBuf,
) -> anyhow::Result<ExitCode> {
    init_logging();
    // Fail before binding anything on a bad policy or tenants file, or a missing model (the
    // commonest set-up slip).
    let policies = PolicyStore::load(policy)?;
    let tenants = tenants.map(load_tenants).transpose()?;
    if let Some(t) = &tenants {
        t.check_policies(&policies.snapshot())?;
    }
    let config = ServeConfig {
        grpc_listen,
        admin_listen,
        auth: Auth::new(tenants),
        redis_url,
    };
    if !model.is_file() {
        bail!(
            "model file {} does not exist; fetch the default model with `scripts/fetch-model`, \
             or pass --model PATH (env SLUICE_MODEL) to a GGUF file",
            model.display()
        );
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(async move {
        sluice_server::run(config, policies, loader(model), shutdown_signal())
            .await
            .map_err(anyhow::Error::from)
    })?;
    Ok(ExitCode::SUCCESS)
}

fn loader(path: PathBuf) -> LocalLoader {
    Box::new(move || {
        async move {
            tracing::info!(path = %path.display(), "loading the local model");
            SlmModel::load(&path)
                .await
                .map(|m| Arc::new(m) as Arc<dyn LocalModel>)
                .map_err(|e| e.to_string())
        }
        .boxed()
    })
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {}
        _ = term => {}
    }
}

/// Load the policy and the model, then draft and grade every item.
fn draft_rows(
    run: &DraftRun,
    out: Option<&Path>,
) -> anyhow::Result<(Policy, Vec<crate::eval::Row>)> {
    let policy = sluice_policy::load_policy_file(&run.policy)?;
    if !run.model.is_file() {
        bail!(
            "model file {} does not exist; fetch the default model with `scripts/fetch-model`",
            run.model.display()
        );
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let rows = runtime.block_on(async {
        let slm = SlmModel::load(&run.model).await?;
        let max_tokens = run.max_tokens.unwrap_or(policy.local.max_tokens);
        crate::eval::collect(&slm, &policy, &run.data, run.limit, max_tokens, out).await
    })?;
    Ok((policy, rows))
}

fn eval(run: &DraftRun, out: Option<&Path>) -> anyhow::Result<ExitCode> {
    let (policy, rows) = draft_rows(run, out)?;
    crate::eval::report(&policy, &rows);
    Ok(ExitCode::SUCCESS)
}

fn calibrate(
    run: &DraftRun,
    target_escalation: f64,
    out: Option<&Path>,
    write: bool,
) -> anyhow::Result<ExitCode> {
    let (_, rows) = draft_rows(run, None)?;
    let c = crate::calibrate::calibrate(&rows, target_escalation)?;
    eprintln!(
        "calibrate: {} items, 5-fold CV AUROC {:.3}, threshold {:.4} escalates {:.1}%",
        rows.len(),
        c.cv_auroc,
        c.threshold,
        100.0 * c.escalated
    );
    crate::calibrate::write(&run.policy, &c, out, write)?;
    Ok(ExitCode::SUCCESS)
}

fn policy_check(paths: &[PathBuf]) -> anyhow::Result<ExitCode> {
    let mut failed = false;
    for path in paths {
        match check_one(path) {
            Ok(names) => println!("ok: {} ({})", path.display(), names.join(", ")),
            Err(e) => {
                eprintln!("invalid: {e}");
                failed = true;
            }
        }
    }
    Ok(if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

fn check_one(path: &Path) -> Result<Vec<String>, sluice_policy::PolicyError> {
    PolicySet::load(path).map(|s| s.names())
}
