//! Start-up and shutdown: load policies, bind listeners, load the model in the background,
//! serve gRPC and admin HTTP until asked to stop, then drain.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use sluice_cache::{RedisClient, RedisOptions};
use sluice_proto::v1::admin_server::AdminServer;
use sluice_proto::v1::router_server::{RouterServer, SERVICE_NAME};
use sluice_router::LocalModel;
use sluice_upstream::{TierGuards, UpstreamClient};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio_stream::wrappers::TcpListenerStream;
use tonic_health::server::HealthReporter;

use crate::admin_http;
use crate::auth::Auth;
use crate::gateway::Caches;
use crate::gateway::{Gateway, PolicyStore};
use crate::grpc::{AdminService, RouterService};
use crate::metrics::Metrics;

/// Where to listen, who may call, and where the shared cache tier lives.
#[derive(Debug, Clone, Default)]
pub struct ServeConfig {
    pub grpc_listen: String,
    pub admin_listen: String,
    /// The OpenAI-compatible HTTP API's address; `None`: not served.
    pub http_listen: Option<String>,
    /// API keys → tenants; off when it holds no tenants file.
    pub auth: Auth,
    /// `redis://host:port` (or `rediss://` for TLS) of the cache tier and spend ledger shared
    /// by replicas.
    pub redis_url: Option<String>,
    /// AUTH user name and password when the URL carries none.
    pub redis_username: Option<String>,
    pub redis_password: Option<String>,
    /// PEM file of the CA that signed the Redis server's certificate, for `rediss://` with a
    /// private CA; `None`: the built-in web roots.
    pub redis_ca: Option<std::path::PathBuf>,
    /// Poll the policy file or directory this often and reload when it changed; `None`: only
    /// on `Admin.ReloadPolicy`.
    pub watch_interval: Option<Duration>,
    /// How long to go on serving after a stop signal while reporting not ready.
    pub drain: Duration,
    /// Most HTTP API connections open at once (`None`: `DEFAULT_HTTP_MAX_CONNECTIONS`).
    pub http_max_connections: Option<usize>,
    /// Where judged shadow samples are written, per tenant; `None`: only counted.
    pub samples: Option<crate::records::RecordsConfig>,
    /// Where distillation examples are written, per tenant; `None`: nowhere.
    pub distill: Option<crate::records::RecordsConfig>,
    /// Put prompts and answers into trace spans (off: routing, usage and timing only).
    pub trace_content: bool,
}

/// The HTTP API's default bound on open connections.
pub const DEFAULT_HTTP_MAX_CONNECTIONS: usize = 4096;

/// Bound on each Redis operation: past it the request goes on without the shared tier.
const REDIS_TIMEOUT: Duration = Duration::from_millis(100);

/// The shared tier's client, when a URL is configured. The CA file is read here, so a wrong
/// path stops the start with its name rather than failing every handshake later.
fn redis_client(config: &ServeConfig) -> Result<Option<RedisClient>, ServeError> {
    let Some(url) = config.redis_url.as_deref() else {
        return Ok(None);
    };
    let ca_pem = config
        .redis_ca
        .as_ref()
        .map(|path| {
            std::fs::read(path).map_err(|e| {
                ServeError::Redis(format!("cannot read the CA file {}: {e}", path.display()))
            })
        })
        .transpose()?;
    let options = RedisOptions {
        op_timeout: REDIS_TIMEOUT,
        username: config.redis_username.clone(),
        password: config.redis_password.clone(),
        ca_pem,
    };
    RedisClient::open(url, options)
        .map(Some)
        .map_err(|e| ServeError::Redis(e.to_string()))
}

/// Loads the local model; runs in the background after the listeners are up.
pub type LocalLoader =
    Box<dyn FnOnce() -> BoxFuture<'static, Result<Arc<dyn LocalModel>, String>> + Send>;

/// Why the server could not start or stopped.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: String,
        source: std::io::Error,
    },
    #[error("cannot write {what}: {message}")]
    Records { what: &'static str, message: String },
    #[error("cannot use the Redis cache: {0}")]
    Redis(String),
    #[error("cannot start the upstream client: {0}")]
    Upstream(String),
    #[error("loading the local model failed: {0}")]
    Model(String),
    #[error("{what} server failed: {message}")]
    Serve { what: &'static str, message: String },
}

/// A running server.
#[derive(Debug)]
pub struct RunningServer {
    pub grpc_addr: SocketAddr,
    pub admin_addr: SocketAddr,
    /// Where the OpenAI-compatible HTTP API listens, when it is served.
    pub http_addr: Option<SocketAddr>,
    pub gateway: Gateway,
    health: HealthReporter,
    stop: watch::Sender<bool>,
    task: JoinHandle<Result<(), ServeError>>,
}

impl RunningServer {
    /// Stop accepting, let in-flight requests finish, and return.
    pub async fn shutdown(self) -> Result<(), ServeError> {
        let _ = self.stop.send(true);
        let gateway = self.gateway.clone();
        let result = self.wait().await;
        // Shadow calls are samples, not answers anyone waits for: not worth delaying a stop.
        let aborted = gateway.stop_shadows();
        if aborted > 0 {
            tracing::info!(
                aborted,
                "stopped: shadow calls still running were abandoned"
            );
        }
        result
    }

    /// Stop taking traffic gracefully: report not ready at once, go on serving for `drain`
    /// so load balancers stop sending, then stop accepting and let in-flight requests finish.
    /// A server that fails during the drain returns that failure at once.
    pub async fn drain_and_shutdown(mut self, drain: Duration) -> Result<(), ServeError> {
        begin_drain(&self.gateway, &self.health, drain).await;
        tokio::select! {
            r = &mut self.task => return joined(r),
            _ = tokio::time::sleep(drain) => {}
        }
        tracing::info!("shutting down: no new connections, finishing in-flight requests");
        self.shutdown().await
    }

    /// Wait until the server stops by itself (a fatal error) or is shut down.
    pub async fn wait(self) -> Result<(), ServeError> {
        joined(self.task.await)
    }
}

fn joined(r: Result<Result<(), ServeError>, tokio::task::JoinError>) -> Result<(), ServeError> {
    match r {
        Ok(r) => r,
        Err(e) => Err(ServeError::Serve {
            what: "gateway",
            message: e.to_string(),
        }),
    }
}

/// `/readyz` 503 and gRPC health NOT_SERVING from now on, while everything still answers.
async fn begin_drain(gw: &Gateway, health: &HealthReporter, drain: Duration) {
    tracing::info!(
        drain_secs = drain.as_secs_f64(),
        "stopping: reporting not ready, serving on for the drain period"
    );
    gw.set_draining();
    for service in [SERVICE_NAME, ""] {
        health
            .set_service_status(service, tonic_health::ServingStatus::NotServing)
            .await;
    }
}

async fn bind(addr: &str) -> Result<TcpListener, ServeError> {
    TcpListener::bind(addr)
        .await
        .map_err(|source| ServeError::Bind {
            addr: addr.to_string(),
            source,
        })
}

/// Bind both listeners and start serving; the model loads in the background.
pub async fn start(
    config: ServeConfig,
    policies: PolicyStore,
    loader: LocalLoader,
) -> Result<RunningServer, ServeError> {
    // One circuit breaker and retry budget per tier, shared by every request.
    let upstream = UpstreamClient::new()
        .map_err(|e| ServeError::Upstream(e.to_string()))?
        .with_guard(Arc::new(TierGuards::new()))
        // Each tier call carries its attempt span's `traceparent` (nothing when tracing is off).
        .with_header_hook(Arc::new(crate::telemetry::inject_current));
    let redis = redis_client(&config)?;
    let gw = Gateway::new(
        policies,
        upstream,
        Caches::new(redis),
        Arc::new(Metrics::new()),
    );
    let open = |config: &Option<crate::records::RecordsConfig>, what: &'static str| {
        config
            .clone()
            .map(|c| {
                let log = crate::records::RecordLog::open(c).map_err(|e| ServeError::Records {
                    what,
                    message: e.to_string(),
                })?;
                tracing::info!(dir = %log.dir().display(), "{what} are written per tenant");
                Ok(Arc::new(log))
            })
            .transpose()
    };
    if let Some(log) = open(&config.samples, "shadow samples")? {
        gw.set_samples_log(log);
    }
    if let Some(log) = open(&config.distill, "distillation examples")? {
        gw.set_distill_log(log);
    }
    gw.set_trace_content(config.trace_content);
    crate::gateway::warn_missing_keys(&gw.policies().snapshot());
    if !config.auth.is_enabled() {
        tracing::warn!(
            "no tenants file: authentication is off, every caller is tenant \"default\" \
             and the Admin service is open to anyone who can reach the gRPC port"
        );
    } else if !config.auth.admin_reachable() {
        tracing::warn!(
            "the tenants file names no `admins`: the Admin service (GetPolicy, ReloadPolicy) \
             refuses every call"
        );
    }
    let grpc_listener = bind(&config.grpc_listen).await?;
    let admin_listener = bind(&config.admin_listen).await?;
    let local_addr = |l: &TcpListener, addr: &str| {
        l.local_addr().map_err(|source| ServeError::Bind {
            addr: addr.to_string(),
            source,
        })
    };
    let grpc_addr = local_addr(&grpc_listener, &config.grpc_listen)?;
    let admin_addr = local_addr(&admin_listener, &config.admin_listen)?;
    let http_listener = match &config.http_listen {
        Some(addr) => Some((bind(addr).await?, addr)),
        None => None,
    };
    let http_addr = http_listener
        .as_ref()
        .map(|(l, addr)| local_addr(l, addr))
        .transpose()?;

    let (health, health_service) = tonic_health::server::health_reporter();
    let drain_health = health.clone();
    health
        .set_service_status(SERVICE_NAME, tonic_health::ServingStatus::NotServing)
        .await;
    health
        .set_service_status("", tonic_health::ServingStatus::NotServing)
        .await;
    // Both reflection versions: grpcurl before 1.9 and many other tools speak only v1alpha.
    let reflection = || {
        tonic_reflection::server::Builder::configure()
            .register_encoded_file_descriptor_set(sluice_proto::FILE_DESCRIPTOR_SET)
            .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
    };
    let reflection_error = |e: tonic_reflection::server::Error| ServeError::Serve {
        what: "reflection",
        message: e.to_string(),
    };
    let reflection_v1 = reflection().build_v1().map_err(reflection_error)?;
    let reflection_v1alpha = reflection().build_v1alpha().map_err(reflection_error)?;

    let (stop, stop_rx) = watch::channel(false);
    let stopped = |mut rx: watch::Receiver<bool>| async move {
        let _ = rx.wait_for(|s| *s).await;
    };

    let grpc = tonic::transport::Server::builder()
        // Bound every call, so a stuck tier or client cannot hold a slot forever; callers'
        // grpc-timeout deadlines apply on top of this.
        .timeout(Duration::from_secs(600))
        // Answers are small and latency matters more than packet count.
        .tcp_nodelay(true)
        .add_service(health_service)
        .add_service(reflection_v1)
        .add_service(reflection_v1alpha)
        // Authentication wraps the API services only: health and reflection stay open for
        // load balancers and tools.
        .add_service(RouterServer::with_interceptor(
            RouterService::new(gw.clone()),
            intercept(config.auth.clone()),
        ))
        .add_service(AdminServer::with_interceptor(
            AdminService::new(gw.clone()),
            intercept_admin(config.auth.clone()),
        ))
        .serve_with_incoming_shutdown(
            TcpListenerStream::new(grpc_listener),
            stopped(stop_rx.clone()),
        );
    let admin = axum::serve(admin_listener, admin_http::router(gw.clone()))
        .with_graceful_shutdown(stopped(stop_rx.clone()));
    let max_connections = config
        .http_max_connections
        .unwrap_or(DEFAULT_HTTP_MAX_CONNECTIONS);
    let http = http_listener.map(|(listener, _)| {
        axum::serve(
            crate::http_api::limit::BoundedListener::new(listener, max_connections),
            crate::http_api::router(gw.clone(), config.auth.clone()),
        )
        .with_graceful_shutdown(stopped(stop_rx.clone()))
    });
    if let Some(interval) = config.watch_interval {
        let watching = gw.clone();
        crate::watch::spawn_watcher(
            gw.policies().path().to_path_buf(),
            interval,
            move || {
                let _ = watching.reload_policies("watch");
            },
            stopped(stop_rx.clone()),
        );
    }

    // The model loads while the listeners already answer health checks as NOT_SERVING.
    let (load_failed_tx, load_failed_rx) = tokio::sync::oneshot::channel::<String>();
    let loading_gw = gw.clone();
    let loader_task = tokio::spawn(async move {
        match loader().await {
            Ok(model) => {
                tracing::info!(model = model.model_id(), "local model loaded");
                loading_gw.set_local(model);
                if loading_gw.is_draining() {
                    return;
                }
                health
                    .set_service_status(SERVICE_NAME, tonic_health::ServingStatus::Serving)
                    .await;
                health
                    .set_service_status("", tonic_health::ServingStatus::Serving)
                    .await;
            }
            Err(e) => {
                let _ = load_failed_tx.send(e);
            }
        }
    });

    let stop_on_failure = stop.clone();
    let task = tokio::spawn(async move {
        let grpc = tokio::spawn(grpc);
        let admin = tokio::spawn(async move { admin.await });
        let http = http.map(|h| tokio::spawn(async move { h.await }));
        let load_error = async move {
            match load_failed_rx.await {
                Ok(e) => Some(e),
                // The loader finished without error: wait for shutdown instead.
                Err(_) => std::future::pending().await,
            }
        };
        let mut result = Ok(());
        tokio::select! {
            e = load_error => {
                if let Some(e) = e {
                    result = Err(ServeError::Model(e));
                }
                let _ = stop_on_failure.send(true);
            }
            _ = stopped(stop_rx) => {}
        }
        loader_task.abort();
        match grpc.await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => result = result.and(Err(serve_error("gRPC", e))),
            Err(e) => result = result.and(Err(serve_error("gRPC", e))),
        }
        match admin.await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => result = result.and(Err(serve_error("admin HTTP", e))),
            Err(e) => result = result.and(Err(serve_error("admin HTTP", e))),
        }
        if let Some(http) = http {
            match http.await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => result = result.and(Err(serve_error("HTTP API", e))),
                Err(e) => result = result.and(Err(serve_error("HTTP API", e))),
            }
        }
        result
    });

    Ok(RunningServer {
        grpc_addr,
        admin_addr,
        http_addr,
        gateway: gw,
        health: drain_health,
        stop,
        task,
    })
}

fn intercept(
    auth: Auth,
) -> impl FnMut(tonic::Request<()>) -> Result<tonic::Request<()>, tonic::Status> + Clone {
    move |req| auth.intercept(req)
}

fn intercept_admin(
    auth: Auth,
) -> impl FnMut(tonic::Request<()>) -> Result<tonic::Request<()>, tonic::Status> + Clone {
    move |req| auth.intercept_admin(req)
}

fn serve_error(what: &'static str, e: impl std::fmt::Display) -> ServeError {
    ServeError::Serve {
        what,
        message: e.to_string(),
    }
}

/// Serve until `shutdown` resolves, then drain in-flight requests.
pub async fn run(
    config: ServeConfig,
    policies: PolicyStore,
    loader: LocalLoader,
    shutdown: impl Future<Output = ()>,
) -> Result<(), ServeError> {
    let drain = config.drain;
    let mut server = start(config, policies, loader).await?;
    let http = server
        .http_addr
        .map_or_else(|| "off".to_owned(), |a| a.to_string());
    tracing::info!(grpc = %server.grpc_addr, admin = %server.admin_addr, http = %http, "sluice listening");
    tokio::select! {
        r = &mut server.task => return joined(r),
        _ = shutdown => {}
    }
    server.drain_and_shutdown(drain).await
}
