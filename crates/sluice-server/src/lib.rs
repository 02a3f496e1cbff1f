//! The gateway service: tonic services, proto↔domain conversion, the request path that joins
//! policy, local model and tiers, the metrics registry and the admin HTTP endpoints.

pub mod admin_http;
pub mod auth;
pub mod budget;
pub mod convert;
pub mod error;
pub mod gateway;
pub mod grpc;
pub mod http_api;
pub mod metrics;
pub mod records;
pub mod serve;
pub mod telemetry;
pub mod watch;

pub use error::GatewayError;
pub use gateway::{Gateway, PolicyStore};
pub use serve::{run, ServeConfig};
