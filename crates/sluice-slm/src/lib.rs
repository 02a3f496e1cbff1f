//! The only crate that links mistral.rs: loads a GGUF model in-process, drafts answers with
//! real log-softmax statistics per token, and streams answers; prepares a model file for
//! this build's CPU kernels.

mod engine;
mod load;
mod prepare;
mod prompt;
mod states;
mod stats;
mod timed;

pub use engine::{SlmError, SlmModel};
pub use prepare::{prepare, tensor_types, PrepareError, Prepared, Target};
pub use states::{sha256_file, state_shape, StateShape};
pub use stats::{step_stats, StatsRecorder, StepStats};
pub use timed::Timed;
