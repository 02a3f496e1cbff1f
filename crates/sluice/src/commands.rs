//! What each command does.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{bail, Context};
use futures::FutureExt;
use sluice_policy::{load_tenants, PolicySet};
use sluice_router::LocalModel;
use sluice_server::auth::Auth;
use sluice_server::serve::{LocalLoader, ServeConfig};
use sluice_server::PolicyStore;
use sluice_slm::SlmModel;

use crate::cli::{BenchCommand, Cli, Command, DistillCommand, ModelCommand, PolicyCommand};

pub fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Serve {
            policy,
            grpc_listen,
            admin_listen,
            http_listen,
            model,
            tenants,
            redis_url,
            redis_ca,
            policy_watch_secs,
            drain_secs,
            http_max_connections,
            samples_dir,
            samples_max_mb,
            distill_dir,
            distill_max_mb,
            otlp_endpoint,
            trace_content,
        } => serve(
            &policy,
            tenants.as_deref(),
            ServeConfig {
                grpc_listen,
                admin_listen,
                http_listen: (http_listen != "off").then_some(http_listen),
                auth: sluice_server::auth::Auth::default(),
                redis_url,
                // Read from the environment only: a password on the command line shows in
                // process lists.
                redis_username: std::env::var("SLUICE_REDIS_USERNAME").ok(),
                redis_password: std::env::var("SLUICE_REDIS_PASSWORD").ok(),
                redis_ca,
                watch_interval: (policy_watch_secs > 0.0)
                    .then(|| std::time::Duration::from_secs_f64(policy_watch_secs)),
                drain: std::time::Duration::from_secs_f64(drain_secs),
                http_max_connections: Some(http_max_connections as usize),
                samples: samples_dir.map(|dir| sluice_server::records::RecordsConfig {
                    dir,
                    max_tenant_bytes: samples_max_mb.saturating_mul(1 << 20),
                }),
                distill: distill_dir.map(|dir| sluice_server::records::RecordsConfig {
                    dir,
                    max_tenant_bytes: distill_max_mb.saturating_mul(1 << 20),
                }),
                trace_content,
            },
            model,
            otlp_endpoint,
        ),
        Command::Policy {
            command: PolicyCommand::Check { paths },
        } => policy_check(&paths),
        Command::Policy {
            command: PolicyCommand::Schema,
        } => policy_schema(),
        Command::Model {
            command:
                ModelCommand::Prepare {
                    input,
                    output,
                    quant,
                },
        } => model_prepare(&input, &output, &quant),
        Command::Bench {
            command: BenchCommand::Local(args),
        } => crate::bench::run(&args),
        Command::Distill {
            command:
                DistillCommand::Export {
                    dir,
                    tenant,
                    since,
                    out,
                    validation,
                    validation_share,
                },
        } => {
            let r = crate::distill::export(&crate::distill::Export {
                dir: &dir,
                tenant: tenant.as_deref(),
                since: since.as_deref(),
                train: &out,
                validation: validation.as_deref(),
                validation_share,
            })?;
            eprintln!(
                "distill: {} examples from {} files: {} to train ({}), {} to validate; left out: \
                 {} repeats, {} invalid lines{}",
                r.train + r.validation,
                r.files,
                r.train,
                out.display(),
                r.validation,
                r.repeated,
                r.invalid,
                r.first_invalid
                    .map(|w| format!(" (first: {w})"))
                    .unwrap_or_default()
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::Bench {
            command: BenchCommand::Burst(args),
        } => crate::bench::burst::run(&args),
        Command::Bench {
            command: BenchCommand::Gateway(args),
        } => crate::bench::overhead::run(&args),
        Command::Bench {
            command: BenchCommand::Shadow(args),
        } => crate::bench::shadow::run(&args),
        Command::Explain {
            policy,
            prompt,
            tenant,
            tags,
            model,
            rules_only,
        } => {
            let q = crate::explain::Question {
                policy: &policy,
                prompt: &prompt,
                tenant: &tenant,
                tags: &tags,
                model: &model,
                rules_only,
            };
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()
                .context("cannot start the async runtime")?;
            print!("{}", runtime.block_on(crate::explain::explain(&q))?);
            Ok(ExitCode::SUCCESS)
        }
        Command::Eval {
            run,
            large,
            out,
            report,
            plot,
        } => crate::eval::run::eval(
            &run,
            &large,
            crate::eval::run::Outputs {
                rows: out.as_deref(),
                report: report.as_deref(),
                plot: plot.as_deref(),
            },
        ),
        Command::Calibrate {
            run,
            large,
            target_escalation,
            target_quality,
            features,
            method,
            fit_probe,
            out,
            write,
        } => {
            let target = match (target_escalation, target_quality) {
                (Some(r), None) => crate::calibrate::Target::Escalation(r),
                (None, Some(q)) => crate::calibrate::Target::Quality(q),
                _ => bail!("give one of --target-escalation or --target-quality"),
            };
            let features = crate::calibrate::parse_features(&features)?;
            let how = crate::eval::run::CalibrateArgs {
                target,
                features: &features,
                method,
                fit_probe: fit_probe.as_deref(),
                out: out.as_deref(),
                write_in_place: write,
            };
            crate::eval::run::calibrate(&run, &large, how)
        }
    }
}

/// Logs to stderr (`RUST_LOG`, default info), and spans to `traces` when given.
fn init_logging_and_traces(traces: Option<&sluice_server::telemetry::Tracing>) {
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,mistralrs_core=warn"));
    let logs = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()));
    tracing_subscriber::registry()
        .with(filter)
        .with(logs)
        .with(traces.map(|t| t.layer()))
        .init();
}

fn serve(
    policy: &Path,
    tenants: Option<&Path>,
    config: ServeConfig,
    model: PathBuf,
    otlp_endpoint: Option<String>,
) -> anyhow::Result<ExitCode> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    // The OTLP exporter's gRPC channel needs the runtime.
    let traces = {
        let _in_runtime = runtime.enter();
        otlp_endpoint
            .filter(|e| !e.trim().is_empty())
            .map(|endpoint| sluice_server::telemetry::Tracing::start(endpoint.trim(), "sluice"))
            .transpose()?
    };
    init_logging_and_traces(traces.as_ref());
    if traces.is_some() {
        tracing::info!("traces are exported over OTLP");
    }
    // Fail before binding anything on a bad policy or tenants file, or a missing model (the
    // commonest set-up slip).
    let policies = PolicyStore::load(policy)?;
    let tenants = tenants.map(load_tenants).transpose()?;
    if let Some(t) = &tenants {
        t.check_policies(&policies.snapshot())?;
    }
    let config = ServeConfig {
        auth: Auth::new(tenants),
        ..config
    };
    if !model.is_file() {
        bail!(
            "model file {} does not exist; fetch the default model with `scripts/fetch-model`, \
             or pass --model PATH (env SLUICE_MODEL) to a GGUF file",
            model.display()
        );
    }
    let digest = sluice_slm::sha256_file(&model)
        .with_context(|| format!("cannot read model file {}", model.display()))?;
    let policies = policies.for_model(digest)?;
    let served = runtime.block_on(async move {
        sluice_server::run(config, policies, loader(model), shutdown_signal())
            .await
            .map_err(anyhow::Error::from)
    });
    if let Some(t) = &traces {
        // The last batch, after the last request.
        let _in_runtime = runtime.enter();
        t.shutdown();
    }
    served?;
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

fn policy_schema() -> anyhow::Result<ExitCode> {
    use std::io::Write as _;
    let schema = serde_json::to_string_pretty(&sluice_policy::schema::policy_schema())?;
    match writeln!(std::io::stdout().lock(), "{schema}") {
        // `sluice policy schema | head` is not an error
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(e.into()),
        _ => Ok(ExitCode::SUCCESS),
    }
}

fn check_one(path: &Path) -> Result<Vec<String>, sluice_policy::PolicyError> {
    PolicySet::load(path).map(|s| s.names())
}

fn model_prepare(input: &Path, output: &Path, quant: &str) -> anyhow::Result<ExitCode> {
    let target = sluice_slm::Target::parse(quant)?;
    if input == output {
        bail!(
            "--in and --out are the same file ({}); write the prepared model elsewhere",
            input.display()
        );
    }
    let started = std::time::Instant::now();
    let done = sluice_slm::prepare(input, output, target)?;
    let converted: Vec<String> = done
        .converted
        .iter()
        .map(|(from, n)| format!("{n} {from}"))
        .collect();
    eprintln!(
        "prepared {} from {} in {:.1} s: converted {} tensors to {quant}, copied {}",
        output.display(),
        input.display(),
        started.elapsed().as_secs_f64(),
        if converted.is_empty() {
            "no".to_owned()
        } else {
            converted.join(", ")
        },
        done.kept,
    );
    Ok(ExitCode::SUCCESS)
}
