//! The only crate that links mistral.rs: loads a GGUF model in-process, drafts answers with
//! real log-softmax statistics per token, and streams answers.

mod engine;
mod prompt;
mod stats;

pub use engine::{SlmError, SlmModel};
pub use stats::{step_stats, StatsRecorder, StepStats};
