pub(crate) mod cpu; // [sluice patch] was pub(super); see `sluice_cpu_attention` in lib.rs
mod flash;
mod naive;
mod sinks;

pub(crate) use flash::flash_attn;
pub(crate) use naive::{maybe_synchronize, naive_sdpa};
pub(crate) use sinks::sinks_attn;
