//! [sluice patch] A tiled Q8_0 × Q8_0 matmul for several rows at once: a prompt's tokens, or
//! sequences decoding together. See the Sluice repository's third_party/README.md.
//!
//! `vec_dot_q8_0_q8_0` computes one (row, column) pair per call: every 32-value block goes
//! through one accumulator, so each step waits for the previous fused multiply-add, and each
//! call reloads its row from memory. Here a tile of `RM` rows × `RN` columns is computed
//! together: each loaded block is used `RM` or `RN` times and the `RM·RN` accumulators are
//! independent. Every pair is computed with exactly the operations of `vec_dot_q8_0_q8_0`, in
//! the same order, so the result equals it bit for bit. Where the CPU has AVX-512 VNNI (found
//! at run time), one `vpdpbusd` replaces the two multiply-add steps; its 32-bit sums are the
//! same integers, so that result is identical too.

use super::avx::{hsum_float_8, mul_sum_i8_pairs_float};
use super::k_quants::BlockQ8_0;
use half::f16;
use rayon::prelude::*;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::OnceLock;

#[cfg(target_arch = "x86")]
use core::arch::x86::*;
#[cfg(target_arch = "x86_64")]
use core::arch::x86_64::*;

/// Rows per tile.
const RM: usize = 4;
/// Columns per tile.
const RN: usize = 4;
/// How many blocks ahead of the one in use a tile prefetches each weight column (8 × 34
/// bytes, about 4 cache lines).
const PREFETCH: usize = 8;

/// Which inner kernel runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kernel {
    /// AVX2: `maddubs` + `madd`, as `vec_dot_q8_0_q8_0`.
    Avx2,
    /// AVX-512 VNNI on 256-bit vectors: `vpdpbusd`.
    Vnni,
    /// No tiles: `matmul`'s per-pair loop (`vec_dot_q8_0_q8_0` per row and column), as
    /// before this module, kept so a benchmark can run both side by side.
    PerPair,
}

/// 0: detect; 1, 2, 3: Avx2, Vnni, PerPair forced by [`set_kernel`].
static FORCED: AtomicU8 = AtomicU8::new(0);
static DETECTED: OnceLock<Kernel> = OnceLock::new();

/// The kernel `matmul` uses: the fastest this CPU runs, unless [`set_kernel`] chose one.
pub fn kernel() -> Kernel {
    match FORCED.load(Ordering::Relaxed) {
        1 => Kernel::Avx2,
        2 => Kernel::Vnni,
        3 => Kernel::PerPair,
        _ => *DETECTED.get_or_init(Kernel::detect),
    }
}

/// Choose the kernel (`None`: detect), so tests can run each one this CPU has. Both give the
/// same results, so changing it while other threads multiply changes no result.
#[doc(hidden)]
pub fn set_kernel(kernel: Option<Kernel>) {
    let v = match kernel {
        None => 0,
        Some(Kernel::Avx2) => 1,
        Some(Kernel::Vnni) if Kernel::detect() == Kernel::Vnni => 2,
        Some(Kernel::Vnni) => 1,
        Some(Kernel::PerPair) => 3,
    };
    FORCED.store(v, Ordering::Relaxed);
}

impl Kernel {
    /// The fastest kernel this CPU runs.
    pub fn detect() -> Self {
        #[cfg(target_arch = "x86_64")]
        {
            if std::arch::is_x86_feature_detected!("avx512vnni")
                && std::arch::is_x86_feature_detected!("avx512vl")
            {
                return Kernel::Vnni;
            }
        }
        Kernel::Avx2
    }
}

#[derive(Clone, Copy)]
struct Dst(*mut f32);
// SAFETY: every task writes only its own columns of `dst`, disjoint from all others.
unsafe impl Send for Dst {}
unsafe impl Sync for Dst {}

/// `dst[r * n + c] = Σ lhs[r] · rhs[c]` for `m` rows of `lhs` and `n` rows of `rhs`
/// (the weight, stored transposed), each `kb` blocks long, with the AVX2 or the VNNI tiles.
/// (`Kernel::PerPair` never comes here: `matmul` keeps its own loop for it.)
pub(crate) fn matmul_q8_0(
    vnni: bool,
    (m, kb, n): (usize, usize, usize),
    lhs: &[BlockQ8_0],
    rhs: &[BlockQ8_0],
    dst: &mut [f32],
) {
    assert!(lhs.len() >= m * kb && rhs.len() >= n * kb && dst.len() >= m * n);
    let out = Dst(dst.as_mut_ptr());
    let col_tiles = n.div_ceil(RN);
    // Enough pairs per task that rayon's overhead stays small when there are few rows.
    let min_len = (128 / (m * RN)).max(1);
    (0..col_tiles)
        .into_par_iter()
        .with_min_len(min_len)
        .for_each(|t| {
            let out = out;
            let c0 = t * RN;
            let rn = RN.min(n - c0);
            let mut r0 = 0;
            while r0 < m {
                let rm = RM.min(m - r0);
                // SAFETY: the tile's blocks are in bounds (asserted above), and the tile's
                // outputs belong to this task's columns only.
                unsafe {
                    let lhs = lhs.as_ptr().add(r0 * kb);
                    let rhs = rhs.as_ptr().add(c0 * kb);
                    let dst = out.0.add(r0 * n + c0);
                    if vnni {
                        dispatch_vnni(rm, rn, kb, lhs, rhs, dst, n)
                    } else {
                        dispatch_avx2(rm, rn, kb, lhs, rhs, dst, n)
                    }
                }
                r0 += rm;
            }
        });
}

/// One pair's products of a block, as 8 partial sums in f32: `vec_dot_q8_0_q8_0`'s steps.
macro_rules! dot_avx2 {
    ($x:expr, $y:expr) => {
        mul_sum_i8_pairs_float($x, $y)
    };
}

/// The same integers through `vpdpbusd`: |x| (unsigned) times y with x's sign, four products
/// per 32-bit lane, as `maddubs` followed by `madd` with ones gives them.
macro_rules! dot_vnni {
    ($x:expr, $y:expr) => {{
        let ax = _mm256_sign_epi8($x, $x);
        let sy = _mm256_sign_epi8($y, $x);
        _mm256_cvtepi32_ps(_mm256_dpbusd_epi32(_mm256_setzero_si256(), ax, sy))
    }};
}

macro_rules! tile_kernel {
    ($tile:ident, $dispatch:ident, $features:literal, $dot:ident) => {
        #[target_feature(enable = $features)]
        unsafe fn $tile<const M: usize, const N: usize>(
            kb: usize,
            lhs: *const BlockQ8_0,
            rhs: *const BlockQ8_0,
            dst: *mut f32,
            ldd: usize,
        ) {
            let mut acc = [[_mm256_setzero_ps(); N]; M];
            for b in 0..kb {
                let mut wx = [_mm256_setzero_si256(); N];
                let mut dx = [0f32; N];
                for j in 0..N {
                    let blk = &*rhs.add(j * kb + b);
                    // Ask for the block PREFETCH ahead in this column now: the columns are
                    // read interleaved, which the hardware prefetcher does not follow well.
                    // A hint only (never faults), so past the column's end it is harmless.
                    let ahead = rhs.wrapping_add(j * kb + b + PREFETCH);
                    _mm_prefetch::<_MM_HINT_T0>(ahead as *const i8);
                    wx[j] = _mm256_loadu_si256(blk.qs.as_ptr() as *const __m256i);
                    dx[j] = f16::to_f32(blk.d);
                }
                for i in 0..M {
                    let blk = &*lhs.add(i * kb + b);
                    let y = _mm256_loadu_si256(blk.qs.as_ptr() as *const __m256i);
                    let dy = f16::to_f32(blk.d);
                    for j in 0..N {
                        let d = _mm256_set1_ps(dx[j] * dy);
                        let q = $dot!(wx[j], y);
                        acc[i][j] = _mm256_fmadd_ps(d, q, acc[i][j]);
                    }
                }
            }
            for i in 0..M {
                for j in 0..N {
                    *dst.add(i * ldd + j) = hsum_float_8(acc[i][j]);
                }
            }
        }

        #[target_feature(enable = $features)]
        unsafe fn $dispatch(
            rm: usize,
            rn: usize,
            kb: usize,
            lhs: *const BlockQ8_0,
            rhs: *const BlockQ8_0,
            dst: *mut f32,
            ldd: usize,
        ) {
            match (rm, rn) {
                (4, 4) => $tile::<4, 4>(kb, lhs, rhs, dst, ldd),
                (4, 3) => $tile::<4, 3>(kb, lhs, rhs, dst, ldd),
                (4, 2) => $tile::<4, 2>(kb, lhs, rhs, dst, ldd),
                (4, 1) => $tile::<4, 1>(kb, lhs, rhs, dst, ldd),
                (3, 4) => $tile::<3, 4>(kb, lhs, rhs, dst, ldd),
                (3, 3) => $tile::<3, 3>(kb, lhs, rhs, dst, ldd),
                (3, 2) => $tile::<3, 2>(kb, lhs, rhs, dst, ldd),
                (3, 1) => $tile::<3, 1>(kb, lhs, rhs, dst, ldd),
                (2, 4) => $tile::<2, 4>(kb, lhs, rhs, dst, ldd),
                (2, 3) => $tile::<2, 3>(kb, lhs, rhs, dst, ldd),
                (2, 2) => $tile::<2, 2>(kb, lhs, rhs, dst, ldd),
                (2, 1) => $tile::<2, 1>(kb, lhs, rhs, dst, ldd),
                (1, 4) => $tile::<1, 4>(kb, lhs, rhs, dst, ldd),
                (1, 3) => $tile::<1, 3>(kb, lhs, rhs, dst, ldd),
                (1, 2) => $tile::<1, 2>(kb, lhs, rhs, dst, ldd),
                _ => $tile::<1, 1>(kb, lhs, rhs, dst, ldd),
            }
        }
    };
}

tile_kernel!(tile_avx2, dispatch_avx2, "avx2,fma", dot_avx2);
tile_kernel!(tile_vnni, dispatch_vnni, "avx2,fma,avx512f,avx512vl,avx512vnni", dot_vnni);
