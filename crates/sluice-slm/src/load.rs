//! Building the mistral.rs engine for a GGUF file, as `GgufModelBuilder::build` does but with
//! the activation dtype chosen by us: the builder always asks for `ModelDType::Auto`, which on
//! a CPU picks BF16 (the first type a test matmul succeeds with), and BF16 activations on a
//! CPU without native BF16 arithmetic convert every element of every operation.

use mistralrs::core::{
    AddModelConfig, AutoDeviceMapParams, DefaultSchedulerMethod, DeviceMapSetting, EngineConfig,
    GGUFLoaderBuilder, GGUFSpecificConfig, ModelDType, SchedulerConfig, TokenSource,
};
use mistralrs::model_builder_trait::build_model_from_pipeline;
use mistralrs::{Device, Model};

/// Sequences the scheduler runs at once (the builder's default).
const MAX_NUM_SEQS: usize = 32;

/// The activation dtype: `SLUICE_SLM_DTYPE` (auto, f32, bf16, f16), default auto (BF16 on a
/// CPU, what `GgufModelBuilder` uses). F32 is about 10% faster here (BENCHMARKS.md); it was
/// the default until drafts turned out not to be reproducible under load, which later showed
/// with BF16 too, so the type is not the cause. The default stays what it was.
fn dtype() -> Result<ModelDType, String> {
    match std::env::var("SLUICE_SLM_DTYPE").ok().as_deref() {
        None | Some("auto") => Ok(ModelDType::Auto),
        Some("f32") => Ok(ModelDType::F32),
        Some("bf16") => Ok(ModelDType::BF16),
        Some("f16") => Ok(ModelDType::F16),
        Some(other) => Err(format!(
            "SLUICE_SLM_DTYPE={other:?}: expected one of auto, f32, bf16, f16"
        )),
    }
}

/// The engine's CPU kernels: `SLUICE_SLM_KERNELS` = `tiled` (the default: tiled Q8_0 matmul,
/// tiled prefill attention and forward passes run on rayon's workers, third_party/README.md)
/// or `reference` (the per-pair matmul, per-key prefill attention and passes run on the
/// engine's thread that they replaced), so a benchmark can run both side by side.
/// Process-wide: the setting of the last model loaded holds.
fn select_kernels() -> Result<(), String> {
    let tiled = match std::env::var("SLUICE_SLM_KERNELS").ok().as_deref() {
        None | Some("tiled") => true,
        Some("reference") => false,
        Some(other) => {
            return Err(format!(
                "SLUICE_SLM_KERNELS={other:?}: expected tiled or reference"
            ))
        }
    };
    mistralrs::core::sluice_cpu_attention::set_tiled_prefill(tiled);
    mistralrs::core::sluice_cpu_attention::set_forward_on_pool(tiled);
    #[cfg(target_feature = "avx2")]
    candle_core::quantized::tiled::set_kernel(
        (!tiled).then_some(candle_core::quantized::tiled::Kernel::PerPair),
    );
    Ok(())
}

/// Load `dir/file` on the CPU, never touching the network.
pub(crate) async fn build(dir: String, file: String) -> Result<Model, String> {
    select_kernels()?;
    let loader = GGUFLoaderBuilder::new(
        None,
        None,
        dir,
        vec![file],
        GGUFSpecificConfig { topology: None },
        false,
        None,
    )
    .build();
    let pipeline = loader
        .load_model_from_hf(
            None,
            TokenSource::None,
            &dtype()?,
            &Device::Cpu,
            true,
            DeviceMapSetting::Auto(AutoDeviceMapParams::default_text()),
            None,
            None,
        )
        .map_err(|e| format!("{e:#}"))?;
    let scheduler = SchedulerConfig::DefaultScheduler {
        method: DefaultSchedulerMethod::Fixed(
            MAX_NUM_SEQS.try_into().map_err(|_| "bad max_num_seqs")?,
        ),
    };
    let engine = EngineConfig {
        // The prefix cache would answer a raw-logits prefill (prompt_nll, the probe) from an
        // earlier request's prefix and return logits only for the rest, so features would
        // depend on what ran before. Off: every prompt is prefilled whole.
        no_prefix_cache: true,
        throughput_logging_enabled: false,
        ..EngineConfig::default()
    };
    Ok(build_model_from_pipeline(pipeline, scheduler, AddModelConfig::new(engine)).await)
}
