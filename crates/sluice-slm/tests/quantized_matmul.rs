//! The quantized CPU matmul, which this workspace carries a patched copy of (candle-core,
//! third_party/README.md): several rows at once must give exactly what each row gives alone,
//! and what the dequantized weights give in f32 up to the activations' 8-bit quantization.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use candle_core::quantized::{GgmlDType, QMatMul, QTensor};
use candle_core::{Device, Module, Tensor};

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

fn check(dtype: GgmlDType, rows: usize, k: usize, n: usize) {
    let w = Tensor::from_vec(values(n * k, 3), (n, k), &Device::Cpu).unwrap();
    let q = QTensor::quantize(&w, dtype).unwrap();
    let wd = q.dequantize(&Device::Cpu).unwrap();
    let mm = QMatMul::from_qtensor(q).unwrap();
    let x = Tensor::from_vec(values(rows * k, 11), (rows, k), &Device::Cpu).unwrap();

    let all = mm.forward(&x).unwrap().to_vec2::<f32>().unwrap();
    let reference = x
        .matmul(&wd.t().unwrap())
        .unwrap()
        .to_vec2::<f32>()
        .unwrap();
    assert_eq!((all.len(), all[0].len()), (rows, n));
    for r in 0..rows {
        let one = mm
            .forward(&x.narrow(0, r, 1).unwrap())
            .unwrap()
            .to_vec2::<f32>()
            .unwrap();
        assert_eq!(
            all[r], one[0],
            "{dtype:?} row {r} of {rows}: batched != alone"
        );
        for c in 0..n {
            let (got, want) = (all[r][c], reference[r][c]);
            // The activations are quantized to 8 bits per 32 values: a relative error of
            // about 1/127 per term, far below this bound for sums of k terms in [-1, 1].
            assert!(
                (got - want).abs() <= 0.02 * (k as f32).sqrt(),
                "{dtype:?} [{r},{c}]: {got} vs f32 {want}"
            );
        }
    }
}

#[test]
fn batched_rows_equal_single_rows_for_q8_0_and_q4_0() {
    for dtype in [GgmlDType::Q8_0, GgmlDType::Q4_0] {
        for rows in [1, 2, 3, 8, 17, 130] {
            check(dtype, rows, 576, 200);
        }
    }
}

/// Q8_0 runs the tiled kernel (tiles of 4 rows × 4 columns; one row: tiles of 4 columns):
/// every kernel this CPU has, at every remainder of rows and columns, gives bit for bit what
/// the per-pair path (`vec_dot_q8_0_q8_0` per row and column) gives, and agrees with f32.
/// Forcing a kernel cannot disturb the other tests: all give the same results.
#[cfg(target_feature = "avx2")]
#[test]
fn tiled_q8_0_kernels_equal_the_per_pair_path_at_every_tile_edge() {
    use candle_core::quantized::tiled::{self, Kernel};
    let mut kernels = vec![Kernel::Avx2];
    if Kernel::detect() == Kernel::Vnni {
        kernels.push(Kernel::Vnni);
    }
    let shapes: Vec<(usize, usize, usize)> = [1, 2, 3, 4, 5, 6, 7, 9]
        .iter()
        .flat_map(|&rows| [1, 2, 3, 4, 5, 7, 13].map(|cols| (rows, 64, cols)))
        .chain([(1, 576, 200), (33, 1536, 37)])
        .collect();
    for (rows, k, n) in shapes {
        let w = Tensor::from_vec(values(n * k, 3), (n, k), &Device::Cpu).unwrap();
        let mm = QMatMul::from_qtensor(QTensor::quantize(&w, GgmlDType::Q8_0).unwrap()).unwrap();
        let x = Tensor::from_vec(values(rows * k, 11), (rows, k), &Device::Cpu).unwrap();
        tiled::set_kernel(Some(Kernel::PerPair));
        let per_pair = mm.forward(&x).unwrap().to_vec2::<f32>().unwrap();
        for &kernel in &kernels {
            tiled::set_kernel(Some(kernel));
            assert_eq!(tiled::kernel(), kernel);
            let got = mm.forward(&x).unwrap().to_vec2::<f32>().unwrap();
            assert_eq!(
                got, per_pair,
                "{kernel:?}, {rows} rows × {n} columns, k {k}"
            );
            check(GgmlDType::Q8_0, rows, k, n);
        }
    }
    tiled::set_kernel(None);
}

#[test]
fn k_quants_still_agree() {
    check(GgmlDType::Q4K, 5, 512, 96);
    check(GgmlDType::Q6K, 9, 256, 40);
}
