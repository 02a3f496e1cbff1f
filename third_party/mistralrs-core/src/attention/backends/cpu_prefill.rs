//! [sluice patch] Prefill attention on the CPU in tiles (see the Sluice repository's
//! third_party/README.md).
//!
//! `flash_attn_cpu` walks every cached position for every query: one dot product, one
//! branch-heavy online-softmax step (rescaling the whole accumulator whenever the maximum
//! grows) and one mask lookup per (query, key), the causally masked half included. Here a
//! task takes `QB` consecutive queries of one head and walks the keys in tiles of `KB`:
//! each tile's keys are converted to f32 and transposed once for all the task's queries,
//! the scores of a query against the tile are `KB` accumulators kept in registers, the
//! softmax is rescaled once per tile, and tiles past the last unmasked key of every query
//! are never read. Results agree with softmax(q·kᵀ)·v to f32 rounding, not bit for bit with
//! the per-key kernel (the sums are taken in another order).

use super::{mask_offset, DowncastF32, UpcastF32};
use candle_core::{Device, Result, Tensor, WithDType};
use rayon::prelude::*;
use std::sync::atomic::{AtomicBool, Ordering};

/// Whether the tiled kernel runs where it applies; off only to benchmark the old one beside it.
static TILED: AtomicBool = AtomicBool::new(true);

pub(crate) fn set_tiled(on: bool) {
    TILED.store(on, Ordering::Relaxed);
}

/// Queries per task.
const QB: usize = 16;
/// Keys per tile.
const KB: usize = 64;

pub(super) struct Prefill<'a, T> {
    pub q: &'a [T],
    pub k: &'a [T],
    pub v: &'a [T],
    pub mask: Option<(&'a [f32], &'a [usize])>,
    pub qshape: &'a [usize],
    pub kshape: &'a [usize],
    pub vshape: &'a [usize],
    pub qstride: &'a [usize],
    pub kstride: &'a [usize],
    pub vstride: &'a [usize],
    pub scale: f32,
}

/// The tiled kernel when it applies (head size 64 or 128, keys and values of the same size,
/// no ALiBi bias, no logit soft-capping, a mask whose rows are contiguous over all keys);
/// `None` leaves the call to the per-key kernel.
pub(super) fn run<T>(p: &Prefill<'_, T>, max_bias: f32, logit_softcap: f32) -> Option<Result<Tensor>>
where
    T: WithDType + Copy + UpcastF32 + DowncastF32,
{
    let d = p.qshape[3];
    let kv_len = p.kshape[1];
    if !TILED.load(Ordering::Relaxed) {
        return None;
    }
    if max_bias != 0.0 || logit_softcap != 0.0 || p.kshape[3] != d || p.vshape[3] != d {
        return None;
    }
    if p.qstride[3] != 1 || p.kstride[3] != 1 || p.vstride[3] != 1 {
        return None;
    }
    if let Some((_, dims)) = p.mask {
        if dims.last().is_none_or(|&last| last < kv_len) {
            return None;
        }
    }
    match d {
        64 => Some(run_d::<T, 64>(p)),
        128 => Some(run_d::<T, 128>(p)),
        _ => None,
    }
}

fn run_d<T, const D: usize>(p: &Prefill<'_, T>) -> Result<Tensor>
where
    T: WithDType + Copy + UpcastF32 + DowncastF32,
{
    let (b, q_len, h) = (p.qshape[0], p.qshape[1], p.qshape[2]);
    let k_h = p.kshape[2];
    let v_h = p.vshape[2];
    let mut out = vec![T::cast(0.0); b * h * q_len * D];
    out.par_chunks_mut(q_len * D)
        .enumerate()
        .for_each(|(bh, head_out)| {
            let (b_i, h_i) = (bh / h, bh % h);
            head_out
                .par_chunks_mut(QB * D)
                .enumerate()
                .for_each(|(blk, rows)| {
                    query_block::<T, D>(p, b_i, h_i, h_i / (h / k_h), h_i / (h / v_h), blk * QB, rows)
                });
        });
    Tensor::from_vec(out, (b, h, q_len, D), &Device::Cpu)
}

/// Queries `q0..q0 + rows.len() / D` of head `h_i` in batch entry `b_i`.
fn query_block<T, const D: usize>(
    p: &Prefill<'_, T>,
    b_i: usize,
    h_i: usize,
    k_head: usize,
    v_head: usize,
    q0: usize,
    rows: &mut [T],
) where
    T: WithDType + Copy + UpcastF32 + DowncastF32,
{
    let (b, h) = (p.qshape[0], p.qshape[2]);
    let kv_len = p.kshape[1];
    let qb = rows.len() / D;

    let mut q = [[0f32; D]; QB];
    let mut mask_rows: [&[f32]; QB] = [&[]; QB];
    // One past the last key each query may see.
    let mut end = [kv_len; QB];
    for i in 0..qb {
        let base = b_i * p.qstride[0] + (q0 + i) * p.qstride[1] + h_i * p.qstride[2];
        for (dst, src) in q[i].iter_mut().zip(&p.q[base..base + D]) {
            *dst = src.to_f32();
        }
        if let Some((data, dims)) = p.mask {
            let start = mask_offset(dims, b, h, b_i, h_i, q0 + i, 0).unwrap_or(data.len());
            let row = &data[start.min(data.len())..(start + kv_len).min(data.len())];
            // Positions past the stored row read as 0.0, as in the per-key kernel.
            end[i] = if row.len() < kv_len {
                kv_len
            } else {
                row.iter().rposition(|&m| m != f32::NEG_INFINITY).map_or(0, |j| j + 1)
            };
            mask_rows[i] = row;
        }
    }
    let kv_end = end[..qb].iter().copied().max().unwrap_or(0);

    let mut m = [f32::NEG_INFINITY; QB];
    let mut l = [0f32; QB];
    let mut o = [[0f32; D]; QB];
    let mut kt = [[0f32; KB]; D];
    let mut vt = [[0f32; D]; KB];
    let mut s = [0f32; KB];

    for t0 in (0..kv_end).step_by(KB) {
        let kb = KB.min(kv_end - t0);
        for j in 0..KB {
            if j < kb {
                let kbase = b_i * p.kstride[0] + (t0 + j) * p.kstride[1] + k_head * p.kstride[2];
                for (c, x) in p.k[kbase..kbase + D].iter().enumerate() {
                    kt[c][j] = x.to_f32();
                }
                let vbase = b_i * p.vstride[0] + (t0 + j) * p.vstride[1] + v_head * p.vstride[2];
                for (dst, x) in vt[j].iter_mut().zip(&p.v[vbase..vbase + D]) {
                    *dst = x.to_f32();
                }
            } else {
                for row in kt.iter_mut() {
                    row[j] = 0.0;
                }
                vt[j] = [0.0; D];
            }
        }
        for i in 0..qb {
            if t0 >= end[i] {
                continue;
            }
            // Scores of query i against the tile: KB accumulators, one broadcast per dimension.
            let mut acc = [0f32; KB];
            for (qc, ktc) in q[i].iter().zip(kt.iter()) {
                for (a, k) in acc.iter_mut().zip(ktc.iter()) {
                    *a += qc * k;
                }
            }
            let valid = kb.min(end[i] - t0);
            let mut tile_max = f32::NEG_INFINITY;
            for j in 0..KB {
                let mut v = f32::NEG_INFINITY;
                if j < valid {
                    let mv = mask_rows[i].get(t0 + j).copied().unwrap_or(0.0);
                    v = acc[j] * p.scale + mv;
                }
                s[j] = v;
                tile_max = tile_max.max(v);
            }
            if tile_max == f32::NEG_INFINITY {
                continue;
            }
            let m_new = m[i].max(tile_max);
            let corr = (m[i] - m_new).exp();
            let mut sum = 0f32;
            for x in s.iter_mut() {
                *x = (*x - m_new).exp();
                sum += *x;
            }
            l[i] = l[i] * corr + sum;
            m[i] = m_new;
            let mut acc = o[i];
            for a in acc.iter_mut() {
                *a *= corr;
            }
            for (pj, vj) in s[..valid].iter().zip(vt.iter()) {
                for (a, v) in acc.iter_mut().zip(vj.iter()) {
                    *a += pj * v;
                }
            }
            o[i] = acc;
        }
    }

    for (i, row) in rows.chunks_exact_mut(D).enumerate() {
        // A query with no visible key gets zeros, not the per-key kernel's 0/0.
        let inv = if l[i] > 0.0 { 1.0 / l[i] } else { 0.0 };
        for (dst, x) in row.iter_mut().zip(o[i].iter()) {
            *dst = T::cast(x * inv);
        }
    }
}
