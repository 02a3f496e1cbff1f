#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::fs::File;
use std::io::BufReader;
use std::path::Path;

use candle_core::quantized::{gguf_file, GgmlDType, QTensor};
use candle_core::{Device, Tensor};

use super::{prepare, tensor_types, PrepareError, Target};

/// Deterministic values in [-1, 1) (a linear congruential sequence).
fn values(n: usize, seed: u64) -> Vec<f32> {
    let mut s = seed;
    (0..n)
        .map(|_| {
            s = s
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((s >> 33) as f32 / (1u64 << 31) as f32) * 2.0 - 1.0
        })
        .collect()
}

fn write_model(path: &Path) -> (Tensor, Tensor) {
    let w = Tensor::from_vec(values(64 * 96, 7), (64, 96), &Device::Cpu).unwrap();
    let norm = Tensor::from_vec(values(96, 9), 96, &Device::Cpu).unwrap();
    let q41 = QTensor::quantize(&w, GgmlDType::Q4_1).unwrap();
    let qn = QTensor::quantize(&norm, GgmlDType::F32).unwrap();
    let arch = gguf_file::Value::String("llama".into());
    let ctx = gguf_file::Value::U32(2048);
    let mut f = File::create(path).unwrap();
    gguf_file::write(
        &mut f,
        &[
            ("general.architecture", &arch),
            ("llama.context_length", &ctx),
        ],
        &[
            ("blk.0.attn_q.weight", &q41),
            ("blk.0.attn_norm.weight", &qn),
        ],
    )
    .unwrap();
    (q41.dequantize(&Device::Cpu).unwrap(), norm)
}

fn read(path: &Path, name: &str) -> QTensor {
    let mut r = BufReader::new(File::open(path).unwrap());
    let c = gguf_file::Content::read(&mut r).unwrap();
    c.tensor(&mut r, name, &Device::Cpu).unwrap()
}

fn max_abs_diff(a: &Tensor, b: &Tensor) -> f32 {
    let a = a.flatten_all().unwrap().to_vec1::<f32>().unwrap();
    let b = b.flatten_all().unwrap().to_vec1::<f32>().unwrap();
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(&b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

#[test]
fn q4_1_weights_become_q8_0_with_the_same_values_and_the_rest_is_copied() {
    let dir = tempdir();
    let (src, dst) = (dir.join("m.Q4_1.gguf"), dir.join("m.Q8_0.gguf"));
    let (w, norm) = write_model(&src);
    let done = prepare(&src, &dst, Target::Q8_0).unwrap();
    assert_eq!(done.converted.get("Q4_1"), Some(&1));
    assert_eq!(done.kept, 1);

    let q = read(&dst, "blk.0.attn_q.weight");
    assert_eq!(q.dtype(), GgmlDType::Q8_0);
    assert_eq!(q.shape().dims(), &[64, 96]);
    // Q8_0's step d is max|x|/127 per 32 values (values in [-1, 1): d <= 1/127). Rounding
    // costs half a step, storing d as f16 up to 127·d·2^-11 more: about 0.0044 in all.
    // Q4_1's own step here is about 2/15 = 0.13, thirty times coarser.
    let err = max_abs_diff(&q.dequantize(&Device::Cpu).unwrap(), &w);
    let d = 1.0 / 127.0;
    assert!(err <= d * (0.5 + 127.0 / 2048.0) + 1e-6, "max error {err}");
    assert!(
        err > 0.0,
        "the values were requantized, not copied bit for bit"
    );

    let n = read(&dst, "blk.0.attn_norm.weight");
    assert_eq!(n.dtype(), GgmlDType::F32);
    assert_eq!(
        max_abs_diff(&n.dequantize(&Device::Cpu).unwrap(), &norm),
        0.0
    );

    let mut r = BufReader::new(File::open(&dst).unwrap());
    let c = gguf_file::Content::read(&mut r).unwrap();
    assert_eq!(
        c.metadata
            .get("llama.context_length")
            .unwrap()
            .to_u32()
            .unwrap(),
        2048
    );
    assert_eq!(
        c.metadata
            .get("general.architecture")
            .unwrap()
            .to_string()
            .unwrap(),
        "llama"
    );
    let types = tensor_types(&dst).unwrap();
    assert_eq!(types.get("Q8_0"), Some(&1));
    assert_eq!(types.get("F32"), Some(&1));
    assert!(!dir.join("m.Q8_0.gguf.partial").exists());
}

#[test]
fn q4_0_is_also_written() {
    let dir = tempdir();
    let (src, dst) = (dir.join("a.gguf"), dir.join("b.gguf"));
    let (w, _) = write_model(&src);
    prepare(&src, &dst, Target::Q4_0).unwrap();
    let q = read(&dst, "blk.0.attn_q.weight");
    assert_eq!(q.dtype(), GgmlDType::Q4_0);
    // ggml's Q4_0 maps the block's signed extreme to -8 with step max|x|/8; the other sign
    // clips at 7 steps, so the error reaches a whole step (1/8 here) but not more.
    let err = max_abs_diff(&q.dequantize(&Device::Cpu).unwrap(), &w);
    assert!(err <= 1.0 / 8.0 + 1e-3, "max error {err}");
}

#[test]
fn errors_name_the_file_and_what_was_expected() {
    let dir = tempdir();
    let missing = dir.join("nope.gguf");
    let e = prepare(&missing, &dir.join("out.gguf"), Target::Q8_0).unwrap_err();
    assert!(matches!(e, PrepareError::Read { .. }), "{e}");
    assert!(e.to_string().contains("nope.gguf"), "{e}");

    let junk = dir.join("junk.gguf");
    std::fs::write(&junk, b"not a gguf file at all").unwrap();
    let e = prepare(&junk, &dir.join("out.gguf"), Target::Q8_0).unwrap_err();
    assert!(e.to_string().contains("junk.gguf"), "{e}");
    assert!(!dir.join("out.gguf").exists());

    let e = Target::parse("q4_1").unwrap_err();
    assert_eq!(
        e.to_string(),
        "unknown quantization \"q4_1\"; expected one of q8_0, q4_0"
    );
    assert_eq!(Target::parse("Q8_0").unwrap(), Target::Q8_0);
}

fn tempdir() -> std::path::PathBuf {
    use std::sync::atomic::{AtomicUsize, Ordering};
    static N: AtomicUsize = AtomicUsize::new(0);
    let d = std::env::temp_dir().join(format!(
        "sluice-prepare-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ));
    std::fs::create_dir_all(&d).unwrap();
    d
}
