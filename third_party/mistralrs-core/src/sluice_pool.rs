//! [sluice patch] Where a model's forward pass runs on a CPU.
//!
//! Every quantized matmul of a step is its own rayon parallel loop (~200 per decode step of a
//! 30-layer model). Started from a thread outside rayon's pool (the engine's), each loop is
//! injected into the pool while the caller sleeps on a latch until it ends, so every loop costs
//! a wake-up of the workers and one of the caller, and between loops three threads (caller
//! and two idle workers yielding) share two cores. Running the whole pass on a worker makes each
//! loop a push to that worker's own queue, which it starts on at once while the other worker
//! steals.

use std::sync::atomic::{AtomicBool, Ordering};

/// Off only to benchmark the old way beside the new one.
static ON: AtomicBool = AtomicBool::new(true);

pub(crate) fn set(on: bool) {
    ON.store(on, Ordering::Relaxed);
}

/// Run `op` on one of the global pool's workers (on this thread if it already is one) and wait.
pub(crate) fn on_worker<R: Send>(op: impl FnOnce() -> R + Send) -> R {
    if ON.load(Ordering::Relaxed) && rayon::current_thread_index().is_none() {
        rayon::scope(|_| op())
    } else {
        op()
    }
}
