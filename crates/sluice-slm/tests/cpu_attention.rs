//! The carried mistral.rs CPU attention (third_party/README.md) against a plain reference:
//! softmax(q·kᵀ·scale + mask)·v computed in f64. Before the batch fix, the batch-2 decode case
//! failed (`-0.042` where the reference gives `0.103`).

#![allow(clippy::unwrap_used)]

use candle_core::{Device, Tensor};
use mistralrs_core::sluice_cpu_attention::{attention_f32, dot_f32, SdpaParams};

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

#[test]
fn dot_products_of_every_length_match_f64() {
    for n in [0, 1, 7, 8, 9, 63, 64, 65, 200] {
        let (a, b) = (values(n, 1), values(n, 2));
        let want: f64 = a.iter().zip(&b).map(|(x, y)| *x as f64 * *y as f64).sum();
        let got = dot_f32(&a, &b);
        assert!((got as f64 - want).abs() < 1e-4, "n={n}: {got} vs {want}");
    }
}

/// q: (b, s, h, d); k, v: (b, kv, hk, d), as attention_f32 takes them.
fn reference(
    q: &[f32],
    k: &[f32],
    v: &[f32],
    (b, s, h, hk, kv, d): (usize, usize, usize, usize, usize, usize),
    causal: bool,
    scale: f32,
) -> Vec<f32> {
    // output (b, h, s, d)
    let mut out = vec![0f32; b * h * s * d];
    for bi in 0..b {
        for hi in 0..h {
            let kh = hi / (h / hk);
            for qi in 0..s {
                let qrow = &q[((bi * s + qi) * h + hi) * d..][..d];
                let mut w = Vec::with_capacity(kv);
                for ki in 0..kv {
                    // causal: query qi sits at position kv - s + qi
                    if causal && ki > kv - s + qi {
                        w.push(f64::NEG_INFINITY);
                        continue;
                    }
                    let krow = &k[((bi * kv + ki) * hk + kh) * d..][..d];
                    let dot: f64 = qrow
                        .iter()
                        .zip(krow)
                        .map(|(x, y)| *x as f64 * *y as f64)
                        .sum();
                    w.push(dot * scale as f64);
                }
                let m = w.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
                let z: f64 = w.iter().map(|x| (x - m).exp()).sum();
                for di in 0..d {
                    let mut acc = 0f64;
                    for ki in 0..kv {
                        let p = (w[ki] - m).exp() / z;
                        acc += p * v[((bi * kv + ki) * hk + kh) * d + di] as f64;
                    }
                    out[((bi * h + hi) * s + qi) * d + di] = acc as f32;
                }
            }
        }
    }
    out
}

fn check(b: usize, s: usize, h: usize, hk: usize, kv: usize, d: usize) {
    let scale = 1.0 / (d as f32).sqrt();
    let (q, k, v) = (
        values(b * s * h * d, 3),
        values(b * kv * hk * d, 4),
        values(b * kv * hk * d, 5),
    );
    let qt = Tensor::from_vec(q.clone(), (b, s, h, d), &Device::Cpu).unwrap();
    let kt = Tensor::from_vec(k.clone(), (b, kv, hk, d), &Device::Cpu).unwrap();
    let vt = Tensor::from_vec(v.clone(), (b, kv, hk, d), &Device::Cpu).unwrap();
    let causal = s > 1;
    let mask: Vec<f32> = (0..s)
        .flat_map(|qi| {
            (0..kv).map(move |ki| {
                if ki > kv - s + qi {
                    f32::NEG_INFINITY
                } else {
                    0.0
                }
            })
        })
        .collect();
    let mask = Tensor::from_vec(mask, (s, kv), &Device::Cpu).unwrap();
    let params = SdpaParams {
        n_kv_groups: h / hk,
        softcap: None,
        softmax_scale: scale,
        sliding_window: None,
        sinks: None,
    };
    let got = attention_f32(&qt, &kt, &vt, causal.then_some(&mask), &params)
        .unwrap()
        .flatten_all()
        .unwrap()
        .to_vec1::<f32>()
        .unwrap();
    let want = reference(&q, &k, &v, (b, s, h, hk, kv, d), causal, scale);
    assert_eq!(got.len(), want.len());
    for (i, (g, w)) in got.iter().zip(&want).enumerate() {
        assert!(
            (g - w).abs() < 1e-4,
            "b{b} s{s} h{h} kv{kv} d{d} [{i}]: {g} vs {w}"
        );
    }
}

#[test]
fn decode_attention_matches_the_reference() {
    // one query over many cached positions (tiles of 16, a partial last tile), grouped heads
    check(1, 1, 9, 3, 1, 64);
    check(1, 1, 9, 3, 37, 64);
    check(2, 1, 4, 4, 170, 64);
}

#[test]
fn prefill_attention_with_a_causal_mask_matches_the_reference() {
    // The per-key kernel (kept for side-by-side benchmarks), then the tiled one. Switching
    // cannot disturb a test running beside: both must match the reference.
    mistralrs_core::sluice_cpu_attention::set_tiled_prefill(false);
    prefill_cases();
    mistralrs_core::sluice_cpu_attention::set_tiled_prefill(true);
    prefill_cases();
}

fn prefill_cases() {
    check(1, 5, 9, 3, 5, 64);
    check(1, 40, 9, 3, 40, 64);
    check(2, 7, 4, 2, 12, 24);
    // the tiled kernel (head sizes 64 and 128): several key tiles of 64 and a partial one,
    // query blocks of 16 and a partial one, cached positions before the prompt, two sequences
    check(1, 150, 9, 3, 150, 64);
    check(1, 37, 9, 3, 200, 64);
    check(2, 20, 4, 2, 70, 64);
    check(1, 33, 4, 2, 33, 128);
}
