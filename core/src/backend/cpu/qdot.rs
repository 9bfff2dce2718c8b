//! Integer dot products of quantized weight rows with int8-quantized activations, the way
//! llama.cpp's CPU backend computes them: the activation row is quantized once per product
//! (per 32 values for Q4_0/Q8_0, per 256 for the K-quants) and each block's product is an
//! exact integer sum, scaled once. A portable scalar version of every kernel is the reference;
//! AVX2 (x86-64) and NEON dot-product (aarch64) versions are picked at run time.

use std::sync::OnceLock;

use rayon::prelude::*;

use super::pack::{self, PACK, PACKED_BLOCK, PACKED_Q4_K_BLOCK, PACKED_Q6_K_BLOCK};
use crate::quant::{GgmlType, f16_at};

const QK: usize = 32;
const QK_K: usize = 256;

/// The instruction set the kernels use.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Simd {
    /// Portable Rust (the reference).
    Scalar,
    /// x86-64 AVX2 + FMA + F16C.
    Avx2,
    /// aarch64 NEON with the `dotprod` extension (`sdot`).
    NeonDot,
}

/// The best instruction set of this CPU, detected once; `HEARTH_CPU_NO_SIMD=1` forces scalar.
pub fn detected() -> Simd {
    static LEVEL: OnceLock<Simd> = OnceLock::new();
    *LEVEL.get_or_init(|| {
        if std::env::var("HEARTH_CPU_NO_SIMD").is_ok_and(|v| v == "1") {
            return Simd::Scalar;
        }
        best_simd()
    })
}

#[cfg(target_arch = "x86_64")]
fn best_simd() -> Simd {
    if is_x86_feature_detected!("avx2")
        && is_x86_feature_detected!("fma")
        && is_x86_feature_detected!("f16c")
    {
        Simd::Avx2
    } else {
        Simd::Scalar
    }
}

#[cfg(target_arch = "aarch64")]
fn best_simd() -> Simd {
    if std::arch::is_aarch64_feature_detected!("dotprod") {
        Simd::NeonDot
    } else {
        Simd::Scalar
    }
}

#[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
fn best_simd() -> Simd {
    Simd::Scalar
}

/// How an activation row is scaled for a weight type.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ActScale {
    /// One scale per 32 values (ggml's Q8_0), for Q4_0 / Q8_0 weights.
    Block32,
    /// One scale per 256 values (ggml's Q8_K), for the K-quants.
    Block256,
}

/// int8 activation rows: `qs[i] * d[i / 32]` ≈ x[i]; `bsums` are sums of 16 consecutive `qs`.
/// With [`ActScale::Block256`] the eight `d` of a 256-group are equal. With
/// [`ActScale::Block32`], `pair8[l] = 8 * (qs[2l] + qs[2l + 1])`: what the Q4_0 kernels
/// subtract to turn products with the unsigned nibbles `q` into products with `q - 8`.
#[derive(Clone, Debug, Default)]
pub struct QAct {
    qs: Vec<i8>,
    d: Vec<f32>,
    bsums: Vec<i16>,
    pair8: Vec<i16>,
    k: usize,
}

/// One row of a [`QAct`].
#[derive(Clone, Copy, Debug)]
pub struct ActRow<'a> {
    pub qs: &'a [i8],
    pub d: &'a [f32],
    pub bsums: &'a [i16],
    /// `8 * (qs[2l] + qs[2l + 1])` ([`ActScale::Block32`] only; empty otherwise).
    pub pair8: &'a [i16],
}

impl QAct {
    /// Quantizes rows of length `k` (a multiple of the scale's group), reusing the buffers.
    /// A NaN in a group makes its scale NaN, so NaN still reaches the output.
    pub fn quantize(&mut self, x: &[f32], k: usize, scale: ActScale) {
        let group = match scale {
            ActScale::Block32 => QK,
            ActScale::Block256 => QK_K,
        };
        debug_assert!(k.is_multiple_of(group) && x.len().is_multiple_of(k));
        let n = x.len() / group * group;
        self.k = k;
        self.qs.resize(n, 0);
        self.d.resize(n / QK, 0.0);
        self.bsums.resize(n / 16, 0);
        let pairs = if scale == ActScale::Block32 { n / 2 } else { 0 };
        self.pair8.resize(pairs, 0);
        if n == 0 {
            return;
        }
        let (x, qs, d, bs) = (
            &x[..n],
            &mut self.qs[..],
            &mut self.d[..],
            &mut self.bsums[..],
        );
        if n <= PAR_QUANTIZE_VALUES {
            quantize_groups(x, group, qs, d, bs);
            pair_sums(&mut self.pair8, &self.qs);
            return;
        }
        // A prefill's rows, split over the threads in whole rows (serial, this is a few % of a
        // 2-thread prefill).
        let rows = (PAR_QUANTIZE_VALUES / k).max(1);
        x.par_chunks(rows * k)
            .zip(qs.par_chunks_mut(rows * k))
            .zip(d.par_chunks_mut(rows * k / QK))
            .zip(bs.par_chunks_mut(rows * k / 16))
            .for_each(|(((x, qs), d), bs)| quantize_groups(x, group, qs, d, bs));
        if pairs > 0 {
            self.pair8
                .par_chunks_mut(rows * k / 2)
                .zip(self.qs.par_chunks(rows * k))
                .for_each(|(p, q)| pair_sums(p, q));
        }
    }

    /// Row `j` (of length `k`).
    pub fn row(&self, j: usize) -> ActRow<'_> {
        let k = self.k;
        ActRow {
            qs: &self.qs[j * k..(j + 1) * k],
            d: &self.d[j * k / QK..(j + 1) * k / QK],
            bsums: &self.bsums[j * k / 16..(j + 1) * k / 16],
            pair8: self.pair8.get(j * k / 2..(j + 1) * k / 2).unwrap_or(&[]),
        }
    }
}

/// Values quantized on one thread; longer activations are split over rayon tasks.
const PAR_QUANTIZE_VALUES: usize = 1 << 14;

/// `x` in groups of `group` values: int8 `qs`, one scale per 32 values in `d` (a group's scale
/// repeated), and the sum of every 16 `qs` in `bsums`. A NaN in a group makes its scale NaN, so
/// NaN still reaches the output.
fn quantize_groups(x: &[f32], group: usize, qs: &mut [i8], d: &mut [f32], bsums: &mut [i16]) {
    for ((xs, qs), ds) in x
        .chunks_exact(group)
        .zip(qs.chunks_exact_mut(group))
        .zip(d.chunks_exact_mut(group / QK))
    {
        let amax = xs.iter().fold(0f32, |m, v| m.max(v.abs()));
        let nan = xs.iter().any(|v| v.is_nan());
        let d = if nan { f32::NAN } else { amax / 127.0 };
        let id = if d > 0.0 { 1.0 / d } else { 0.0 };
        for (q, &v) in qs.iter_mut().zip(xs) {
            *q = (v * id).round() as i8;
        }
        ds.fill(d);
    }
    for (b, q) in bsums.iter_mut().zip(qs.chunks_exact(16)) {
        *b = q.iter().map(|&v| v as i16).sum();
    }
}

/// `p[l] = 8 * (q[2l] + q[2l + 1])` (empty `p`: nothing).
fn pair_sums(p: &mut [i16], q: &[i8]) {
    for (p, q) in p.iter_mut().zip(q.chunks_exact(2)) {
        *p = 8 * (q[0] as i16 + q[1] as i16);
    }
}

/// A row kernel: `Σ w[i] * x[i]` for one encoded weight row and one activation row.
pub type DotFn = fn(&[u8], ActRow<'_>) -> f32;

/// Activation rows one weight row meets at once in the mat-mat kernels.
pub const NT: usize = 4;

/// [`DotFn`] for [`NT`] activation rows: each weight block is decoded once for all of them.
pub type Dot4Fn = fn(&[u8], &[ActRow<'_>; NT]) -> [f32; NT];

/// Eight rows of a packed group (`pack.rs`) against one activation row; row `l` in `[l]`.
pub type Dot8Fn = fn(&[u8], ActRow<'_>) -> [f32; PACK];

/// [`Dot8Fn`] for [`NT`] activation rows; `[t][l]` is row `l` against activation row `t`.
pub type Dot8x4Fn = fn(&[u8], &[ActRow<'_>; NT]) -> [[f32; PACK]; NT];

/// Row `lane` of a packed group against one activation row, bit-identical to lane `lane` of
/// the group kernels (rows outside whole groups of a task must not round differently).
pub type LaneFn = fn(&[u8], usize, ActRow<'_>) -> f32;

/// Kernels over weights packed in groups of [`PACK`] rows (`pack.rs`).
#[derive(Clone, Copy, Debug)]
pub struct PackedKernel {
    pub dot8: Dot8Fn,
    pub dot8x4: Dot8x4Fn,
    pub lane: LaneFn,
}

/// The kernels for one weight type.
#[derive(Clone, Copy, Debug)]
pub struct RowKernel {
    pub dot: DotFn,
    pub dot4: Dot4Fn,
    /// How activations must be quantized for these kernels.
    pub scale: ActScale,
    /// Kernels over row groups, where this type and instruction set have them (Q4_0, Q4_K and
    /// Q6_K on AVX2 and NEON-dotprod):
    /// the weight is then repacked at load.
    pub packed: Option<PackedKernel>,
}

macro_rules! four {
    ($name:ident, $one:path) => {
        /// [`NT`] single-row calls (the reference for the fused mat-mat kernels).
        pub fn $name(w: &[u8], a: &[ActRow<'_>; NT]) -> [f32; NT] {
            (*a).map(|r| $one(w, r))
        }
    };
}
four!(q4_0_scalar4, q4_0_scalar);
four!(q8_0_scalar4, q8_0_scalar);
four!(q4_k_scalar4, q4_k_scalar);
four!(q6_k_scalar4, q6_k_scalar);

/// The kernels for weights of type `ty` with the instruction set `simd`, or `None` for types
/// that keep the f32 path (float types and the rarer quants).
pub fn kernel(ty: GgmlType, simd: Simd) -> Option<RowKernel> {
    let (dot, dot4, scale): (DotFn, Dot4Fn, ActScale) = match ty {
        GgmlType::Q4_0 => (q4_0_scalar, q4_0_scalar4, ActScale::Block32),
        GgmlType::Q8_0 => (q8_0_scalar, q8_0_scalar4, ActScale::Block32),
        GgmlType::Q4_K => (q4_k_scalar, q4_k_scalar4, ActScale::Block256),
        GgmlType::Q6_K => (q6_k_scalar, q6_k_scalar4, ActScale::Block256),
        _ => return None,
    };
    let fast: Option<(DotFn, Dot4Fn)> = match simd {
        Simd::Scalar => None,
        #[cfg(target_arch = "x86_64")]
        Simd::Avx2 => avx2::kernel(ty),
        #[cfg(target_arch = "aarch64")]
        Simd::NeonDot => neon::kernel(ty),
        #[allow(unreachable_patterns)]
        _ => None,
    };
    let (dot, dot4) = fast.unwrap_or((dot, dot4));
    let packed = match (ty, simd) {
        #[cfg(target_arch = "x86_64")]
        (GgmlType::Q4_0, Simd::Avx2) => Some(avx2::PACKED_Q4_0),
        #[cfg(target_arch = "x86_64")]
        (GgmlType::Q4_K, Simd::Avx2) => Some(avx2::PACKED_Q4_K),
        #[cfg(target_arch = "x86_64")]
        (GgmlType::Q6_K, Simd::Avx2) => Some(avx2::PACKED_Q6_K),
        #[cfg(target_arch = "aarch64")]
        (GgmlType::Q4_0, Simd::NeonDot) => Some(neon::PACKED_Q4_0),
        #[cfg(target_arch = "aarch64")]
        (GgmlType::Q4_K, Simd::NeonDot) => Some(neon::PACKED_Q4_K),
        #[cfg(target_arch = "aarch64")]
        (GgmlType::Q6_K, Simd::NeonDot) => Some(neon::PACKED_Q6_K),
        _ => None,
    };
    Some(RowKernel {
        dot,
        dot4,
        scale,
        packed,
    })
}

/// All eight (scale, min) pairs of a Q4_K block's 12 packed bytes: the values of
/// `scale_min_k4(j)`, unpacked with four 32-bit masks at once (ggml's `utmp` trick).
#[inline(always)]
fn scales_mins_k4(s: &[u8]) -> ([u8; 8], [u8; 8]) {
    const LOW6: u32 = 0x3F3F_3F3F;
    const LOW4: u32 = 0x0F0F_0F0F;
    const LOW2: u32 = 0x0303_0303;
    let word = |k: usize| u32::from_le_bytes([s[4 * k], s[4 * k + 1], s[4 * k + 2], s[4 * k + 3]]);
    let (u0, u1, u2) = (word(0), word(1), word(2));
    let scales_lo = u0 & LOW6;
    let mins_lo = u1 & LOW6;
    let scales_hi = (u2 & LOW4) | (((u0 >> 6) & LOW2) << 4);
    let mins_hi = ((u2 >> 4) & LOW4) | (((u1 >> 6) & LOW2) << 4);
    let join = |lo: u32, hi: u32| (u64::from(lo) | (u64::from(hi) << 32)).to_le_bytes();
    (join(scales_lo, scales_hi), join(mins_lo, mins_hi))
}

#[cfg(test)]
mod tests {
    #[test]
    fn scales_mins_k4_unpacks_as_scale_min_k4() {
        let mut state = 0x9E37_79B9_7F4A_7C15u64;
        for _ in 0..10_000 {
            let mut s = [0u8; 12];
            for b in &mut s {
                state = state
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                *b = (state >> 56) as u8;
            }
            let (sc, m) = super::scales_mins_k4(&s);
            for j in 0..8 {
                assert_eq!(
                    (sc[j], m[j]),
                    crate::quant::scale_min_k4(j, &s),
                    "{s:?} j={j}"
                );
            }
        }
    }
}

/// Blocks of the packed Q4_0 group `g` that the activation row covers.
fn packed_blocks(g: &[u8], a: ActRow<'_>) -> usize {
    (g.len() / PACKED_BLOCK)
        .min(a.d.len())
        .min(a.qs.len() / QK)
        .min(a.bsums.len() / 2)
}

/// `8 · Σ y` over activation block `b`: what turns `Σ q·y` into `Σ (q - 8)·y` for Q4_0's
/// unsigned nibbles `q`.
fn q4_0_offset(a: ActRow<'_>, b: usize) -> i32 {
    8 * (i32::from(a.bsums[2 * b]) + i32::from(a.bsums[2 * b + 1]))
}

/// `Σ_j m_j * (sum of the 32 activations of sub-block j)`: the Q4_K min term.
#[inline(always)]
fn q4_k_min_sum(m: &[u8; 8], bsums: &[i16]) -> i32 {
    (0..8)
        .map(|j| m[j] as i32 * (bsums[2 * j] as i32 + bsums[2 * j + 1] as i32))
        .sum()
}

// ---------------------------------------------------------------- scalar reference kernels

/// Q4_0: `d` f16, `qs[16]`; low nibbles are elements 0..16, high nibbles 16..32, value `q - 8`.
pub fn q4_0_scalar(w: &[u8], a: ActRow<'_>) -> f32 {
    let mut acc = 0f32;
    for ((b, aq), &da) in w.chunks_exact(18).zip(a.qs.chunks_exact(QK)).zip(a.d) {
        let qs = &b[2..18];
        let mut s = 0i32;
        for j in 0..16 {
            s += ((qs[j] & 0xF) as i32 - 8) * aq[j] as i32;
            s += ((qs[j] >> 4) as i32 - 8) * aq[j + 16] as i32;
        }
        acc += f16_at(b, 0) * da * s as f32;
    }
    acc
}

/// Q8_0: `d` f16, `qs[32]` int8.
pub fn q8_0_scalar(w: &[u8], a: ActRow<'_>) -> f32 {
    let mut acc = 0f32;
    for ((b, aq), &da) in w.chunks_exact(34).zip(a.qs.chunks_exact(QK)).zip(a.d) {
        let s: i32 = b[2..34]
            .iter()
            .zip(aq)
            .map(|(&q, &y)| q as i8 as i32 * y as i32)
            .sum();
        acc += f16_at(b, 0) * da * s as f32;
    }
    acc
}

/// Q4_K: `d`, `dmin` f16, `scales[12]`, `qs[128]`; value `d*sc*q - dmin*m` per 32-sub-block.
pub fn q4_k_scalar(w: &[u8], a: ActRow<'_>) -> f32 {
    let mut acc = 0f32;
    for (i, b) in w.chunks_exact(144).enumerate() {
        let Some(aq) = a.qs.get(QK_K * i..QK_K * (i + 1)) else {
            break;
        };
        let (s, ms) = q4_k_block_sums(b, aq, &a.bsums[16 * i..16 * (i + 1)]);
        let da = a.d[8 * i];
        acc += f16_at(b, 0) * da * s as f32 - f16_at(b, 2) * da * ms as f32;
    }
    acc
}

/// One Q4_K block against its 256 activations: the exact `(Σ sc_j Σ q·y, Σ m_j Σ y)`.
fn q4_k_block_sums(b: &[u8], aq: &[i8], bsums: &[i16]) -> (i32, i32) {
    let (sc, m) = scales_mins_k4(&b[4..16]);
    let mut s = 0i32;
    for (c, q) in b[16..144].chunks_exact(32).enumerate() {
        let (mut lo, mut hi) = (0i32, 0i32);
        for l in 0..32 {
            lo += (q[l] & 0xF) as i32 * aq[64 * c + l] as i32;
            hi += (q[l] >> 4) as i32 * aq[64 * c + 32 + l] as i32;
        }
        s += sc[2 * c] as i32 * lo + sc[2 * c + 1] as i32 * hi;
    }
    (s, q4_k_min_sum(&m, bsums))
}

/// Blocks of the packed Q4_K group `g` that the activation row covers.
fn packed_q4_k_blocks(g: &[u8], a: ActRow<'_>) -> usize {
    (g.len() / PACKED_Q4_K_BLOCK)
        .min(a.qs.len() / QK_K)
        .min(a.bsums.len() / 16)
        .min(a.d.len() / 8)
}

/// Row `lane` of a packed Q4_K group (`pack.rs`) against one activation row. Per block the
/// exact integer sums, then `acc = fma(isum, d·da, acc)` and `mins = fma(msum, dmin·da, mins)`;
/// the result is `acc - mins`. Every packed Q4_K kernel computes each of its lanes exactly so,
/// which makes this the [`LaneFn`] of all of them (portable: rows outside whole groups only).
pub fn q4_k_packed_lane(g: &[u8], lane: usize, a: ActRow<'_>) -> f32 {
    let (mut acc, mut mins) = (0f32, 0f32);
    let mut blk = [0u8; 144];
    for b in 0..packed_q4_k_blocks(g, a) {
        pack::unpack_block(GgmlType::Q4_K, g, b, lane, &mut blk);
        let (isum, msum) = q4_k_block_sums(
            &blk,
            &a.qs[QK_K * b..QK_K * (b + 1)],
            &a.bsums[16 * b..16 * (b + 1)],
        );
        let da = a.d[8 * b];
        acc = (isum as f32).mul_add(f16_at(&blk, 0) * da, acc);
        mins = (msum as f32).mul_add(f16_at(&blk, 2) * da, mins);
    }
    acc - mins
}

/// Q6_K: `ql[128]`, `qh[64]`, `scales[16]` int8, `d` f16; value `d * sc * (q - 32)`.
pub fn q6_k_scalar(w: &[u8], a: ActRow<'_>) -> f32 {
    let mut acc = 0f32;
    for (i, b) in w.chunks_exact(210).enumerate() {
        let Some(aq) = a.qs.get(QK_K * i..QK_K * (i + 1)) else {
            break;
        };
        acc += f16_at(b, 208) * a.d[8 * i] * q6_k_block_sum(b, aq) as f32;
    }
    acc
}

/// One Q6_K block against its 256 activations: the exact `Σ sc_j Σ (q - 32)·y`.
fn q6_k_block_sum(b: &[u8], aq: &[i8]) -> i32 {
    let mut s = 0i32;
    for n in 0..2 {
        let (ql, qh, sc) = (
            &b[64 * n..][..64],
            &b[128 + 32 * n..][..32],
            &b[192 + 8 * n..],
        );
        let aq = &aq[128 * n..][..128];
        let mut part = [0i32; 8];
        for l in 0..32 {
            let (x, y, h) = (ql[l], ql[l + 32], qh[l]);
            let q = [
                (x & 0xF) | ((h & 3) << 4),
                (y & 0xF) | (((h >> 2) & 3) << 4),
                (x >> 4) | (((h >> 4) & 3) << 4),
                (y >> 4) | ((h >> 6) << 4),
            ];
            for g in 0..4 {
                part[2 * g + l / 16] += (q[g] as i32 - 32) * aq[32 * g + l] as i32;
            }
        }
        for (j, p) in part.iter().enumerate() {
            s += sc[j] as i8 as i32 * p;
        }
    }
    s
}

/// Blocks of the packed Q6_K group `g` that the activation row covers.
fn packed_q6_k_blocks(g: &[u8], a: ActRow<'_>) -> usize {
    (g.len() / PACKED_Q6_K_BLOCK)
        .min(a.qs.len() / QK_K)
        .min(a.bsums.len() / 16)
        .min(a.d.len() / 8)
}

/// Row `lane` of a packed Q6_K group (`pack.rs`) against one activation row: per block the
/// exact integer sum, then `acc = fma(isum, d·da, acc)`, as every packed Q6_K kernel computes
/// each lane (their [`LaneFn`]).
pub fn q6_k_packed_lane(g: &[u8], lane: usize, a: ActRow<'_>) -> f32 {
    let mut acc = 0f32;
    let mut blk = [0u8; 210];
    for b in 0..packed_q6_k_blocks(g, a) {
        pack::unpack_block(GgmlType::Q6_K, g, b, lane, &mut blk);
        let isum = q6_k_block_sum(&blk, &a.qs[QK_K * b..QK_K * (b + 1)]);
        acc = (isum as f32).mul_add(f16_at(&blk, 208) * a.d[8 * b], acc);
    }
    acc
}

// ---------------------------------------------------------------- x86-64 AVX2

#[cfg(target_arch = "x86_64")]
mod avx2 {
    use std::arch::x86_64::*;

    use super::{
        ActRow, Dot4Fn, DotFn, NT, PACK, PACKED_BLOCK, PACKED_Q4_K_BLOCK, PACKED_Q6_K_BLOCK,
        PackedKernel, QK, QK_K, packed_blocks, q4_0_offset, scales_mins_k4,
    };
    use crate::backend::cpu::pack::{Q4_K_QUANTS, Q4_K_SCALES, Q6_K_SCALES, q6_k_half};
    use crate::quant::GgmlType;

    pub(super) fn kernel(ty: GgmlType) -> Option<(DotFn, Dot4Fn)> {
        Some(match ty {
            GgmlType::Q4_0 => (q4_0, q4_0_4),
            GgmlType::Q8_0 => (q8_0, q8_0_4),
            GgmlType::Q4_K => (q4_k, q4_k_4),
            GgmlType::Q6_K => (q6_k, q6_k_4),
            _ => return None,
        })
    }

    // Safe entry points: `kernel` hands these out only after `detected()` found AVX2 + FMA.
    // Every x4 kernel is bit-identical to its single-row kernel per row (tests/cpu_kernels.rs).
    fn q4_0_4(w: &[u8], a: &[ActRow<'_>; NT]) -> [f32; NT] {
        // SAFETY: as above.
        unsafe { q4_0_x4(w, a) }
    }
    fn q8_0_4(w: &[u8], a: &[ActRow<'_>; NT]) -> [f32; NT] {
        // SAFETY: as above.
        unsafe { q8_0_x4(w, a) }
    }
    fn q4_k_4(w: &[u8], a: &[ActRow<'_>; NT]) -> [f32; NT] {
        // SAFETY: as above.
        unsafe { q4_k_x4(w, a) }
    }
    fn q6_k_4(w: &[u8], a: &[ActRow<'_>; NT]) -> [f32; NT] {
        // SAFETY: as above.
        unsafe { q6_k_x4(w, a) }
    }
    fn q4_0(w: &[u8], a: ActRow<'_>) -> f32 {
        // SAFETY: selected only when the CPU has AVX2 and FMA.
        unsafe { q4_0_impl(w, a) }
    }
    fn q8_0(w: &[u8], a: ActRow<'_>) -> f32 {
        // SAFETY: as above.
        unsafe { q8_0_impl(w, a) }
    }
    fn q4_k(w: &[u8], a: ActRow<'_>) -> f32 {
        // SAFETY: as above.
        unsafe { q4_k_impl(w, a) }
    }
    fn q6_k(w: &[u8], a: ActRow<'_>) -> f32 {
        // SAFETY: as above.
        unsafe { q6_k_impl(w, a) }
    }

    #[target_feature(enable = "avx2,fma,f16c")]
    fn hsum(v: __m256) -> f32 {
        let s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
        let s = _mm_add_ps(s, _mm_movehl_ps(s, s));
        _mm_cvtss_f32(_mm_add_ss(s, _mm_shuffle_ps(s, s, 1)))
    }

    /// The f16 at byte `at` of `b` as f32 (one `vcvtph2ps`; exact, like `f16_at`).
    #[target_feature(enable = "avx2,fma,f16c")]
    #[inline]
    fn f16_at(b: &[u8], at: usize) -> f32 {
        let h = u16::from_le_bytes([b[at], b[at + 1]]);
        _mm_cvtss_f32(_mm_cvtph_ps(_mm_cvtsi32_si128(i32::from(h))))
    }

    /// `q4_k_min_sum` as one 16-lane multiply-add: `m_j` meets both 16-sums of sub-block j.
    #[target_feature(enable = "avx2,fma,f16c")]
    #[inline]
    unsafe fn q4_k_min_sum(m: &[u8; 8], bsums: &[i16]) -> i32 {
        debug_assert!(bsums.len() >= 16);
        // SAFETY: 8 bytes of `m`, 16 i16 of `bsums`.
        let (m8, b16) = unsafe {
            (
                _mm_loadl_epi64(m.as_ptr() as *const __m128i),
                _mm256_loadu_si256(bsums.as_ptr() as *const __m256i),
            )
        };
        let m16 = _mm256_cvtepu8_epi16(_mm_unpacklo_epi8(m8, m8));
        let p = _mm256_madd_epi16(m16, b16);
        let s = _mm_add_epi32(_mm256_castsi256_si128(p), _mm256_extracti128_si256(p, 1));
        let s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0b01_00_11_10));
        _mm_cvtsi128_si32(_mm_add_epi32(s, _mm_shuffle_epi32(s, 0b10_11_00_01)))
    }

    /// Eight i32 sums of four i8×i8 products (signed × signed through `maddubs`'s u8 × i8).
    #[target_feature(enable = "avx2,fma,f16c")]
    fn dot_i8(x: __m256i, y: __m256i) -> __m256i {
        let p = _mm256_maddubs_epi16(_mm256_sign_epi8(x, x), _mm256_sign_epi8(y, x));
        _mm256_madd_epi16(p, _mm256_set1_epi16(1))
    }

    #[target_feature(enable = "avx2,fma,f16c")]
    unsafe fn load(p: &[u8]) -> __m256i {
        debug_assert!(p.len() >= 32);
        unsafe { _mm256_loadu_si256(p.as_ptr() as *const __m256i) }
    }

    #[target_feature(enable = "avx2,fma,f16c")]
    unsafe fn load_i8(p: &[i8]) -> __m256i {
        debug_assert!(p.len() >= 32);
        unsafe { _mm256_loadu_si256(p.as_ptr() as *const __m256i) }
    }

    /// Q4_0 block `b`'s 32 nibbles, unsigned (0..16): [`block_dot`] folds the `- 8` into the
    /// activations' `pair8`, saving the `- 8` and both sign flips of [`dot_i8`].
    #[target_feature(enable = "avx2,fma,f16c")]
    unsafe fn q4_0_nibbles(b: &[u8]) -> __m256i {
        debug_assert!(b.len() >= 18);
        // SAFETY: the 16 quant bytes at offset 2 of an 18-byte block.
        unsafe { nibbles_at(&b[2..18]) }
    }

    /// Eight i32 sums of four products: block values `x` (from [`values`]) times the 32
    /// activations of block `i`. For Q4_0, `(q - 8)·y = q·y - 8·(y0 + y1)` per lane pair: the
    /// same integers as the signed path, so the results are bit-identical to it.
    #[target_feature(enable = "avx2,fma,f16c")]
    #[inline]
    unsafe fn block_dot<const BB: usize>(x: __m256i, a: ActRow<'_>, i: usize) -> __m256i {
        // SAFETY: the caller's nb bounds block i of `qs` (and of `pair8` for Q4_0).
        let y = unsafe { load_i8(&a.qs[QK * i..]) };
        if BB == 18 {
            debug_assert!(a.pair8.len() >= 16 * (i + 1));
            // SAFETY: as above; 16 i16 at 16i.
            let p8 = unsafe { _mm256_loadu_si256(a.pair8.as_ptr().add(16 * i) as *const __m256i) };
            let p = _mm256_sub_epi16(_mm256_maddubs_epi16(x, y), p8);
            _mm256_madd_epi16(p, _mm256_set1_epi16(1))
        } else {
            dot_i8(x, y)
        }
    }

    /// Blocks of `w` that every activation row covers (`pair8` too, for Q4_0).
    fn blocks_in<const BB: usize>(w: &[u8], a: ActRow<'_>) -> usize {
        let n = (w.len() / BB).min(a.d.len()).min(a.qs.len() / QK);
        if BB == 18 {
            n.min(a.pair8.len() / 16)
        } else {
            n
        }
    }

    /// Shared body of the Q4_0 / Q8_0 row kernels: two accumulators (the FMA latency chain of
    /// one block per step would bound the loop).
    #[target_feature(enable = "avx2,fma,f16c")]
    unsafe fn blocks32<const BB: usize>(w: &[u8], a: ActRow<'_>) -> f32 {
        let nb = blocks_in::<BB>(w, a);
        let (mut acc0, mut acc1) = (_mm256_setzero_ps(), _mm256_setzero_ps());
        let mut i = 0;
        while i + 2 <= nb {
            // SAFETY: blocks i, i + 1 < nb.
            let ((d0, p0), (d1, p1)) =
                unsafe { (block_term::<BB>(w, a, i), block_term::<BB>(w, a, i + 1)) };
            acc0 = _mm256_fmadd_ps(d0, p0, acc0);
            acc1 = _mm256_fmadd_ps(d1, p1, acc1);
            i += 2;
        }
        if i < nb {
            // SAFETY: block i < nb.
            let (d0, p0) = unsafe { block_term::<BB>(w, a, i) };
            acc0 = _mm256_fmadd_ps(d0, p0, acc0);
        }
        hsum(_mm256_add_ps(acc0, acc1))
    }

    /// Block `i`'s scale `d_w * d_a` (broadcast) and its eight integer partial sums as f32.
    #[target_feature(enable = "avx2,fma,f16c")]
    #[inline]
    unsafe fn block_term<const BB: usize>(w: &[u8], a: ActRow<'_>, i: usize) -> (__m256, __m256) {
        let b = &w[BB * i..BB * (i + 1)];
        // SAFETY: `values` reads within the block; the caller's nb bounds block i.
        let p = unsafe { block_dot::<BB>(values::<BB>(b), a, i) };
        (_mm256_set1_ps(f16_at(b, 0) * a.d[i]), _mm256_cvtepi32_ps(p))
    }

    /// Block `$i` against [`NT`] activation rows: `$acc[t] += d_w * d_t * (block · row t)`, each
    /// term computed exactly as [`block_term`] computes it. A macro, not a function: as a call
    /// (not inlined) the four accumulators went through memory on every block.
    macro_rules! block_x4 {
        ($bb:expr, $w:expr, $a:expr, $i:expr, $acc:expr) => {{
            let b = &$w[$bb * $i..$bb * ($i + 1)];
            // SAFETY: `values` reads within the block.
            let x = unsafe { values::<{ $bb }>(b) };
            let dw = f16_at(b, 0);
            for t in 0..NT {
                // SAFETY: the caller's nb bounds block i of every row.
                let p = unsafe { block_dot::<{ $bb }>(x, $a[t], $i) };
                let d = _mm256_set1_ps(dw * $a[t].d[$i]);
                $acc[t] = _mm256_fmadd_ps(d, _mm256_cvtepi32_ps(p), $acc[t]);
            }
        }};
    }

    /// [`blocks32`] for [`NT`] activation rows: one decode per block. Each row keeps
    /// [`blocks32`]'s two accumulators (even blocks, odd blocks) and the same operations in the
    /// same order, so every result is bit-identical to the single-row kernel's: a token's
    /// logits must not depend on which tokens it was batched with (exact cache reuse).
    #[target_feature(enable = "avx2,fma,f16c")]
    unsafe fn blocks32_x4<const BB: usize>(w: &[u8], a: &[ActRow<'_>; NT]) -> [f32; NT] {
        let nb = a
            .iter()
            .fold(usize::MAX, |n, &r| n.min(blocks_in::<BB>(w, r)));
        let mut acc0 = [_mm256_setzero_ps(); NT];
        let mut acc1 = [_mm256_setzero_ps(); NT];
        let mut i = 0;
        while i + 2 <= nb {
            block_x4!(BB, w, a, i, acc0);
            block_x4!(BB, w, a, i + 1, acc1);
            i += 2;
        }
        if i < nb {
            block_x4!(BB, w, a, i, acc0);
        }
        let mut out = [0f32; NT];
        for t in 0..NT {
            out[t] = hsum(_mm256_add_ps(acc0[t], acc1[t]));
        }
        out
    }

    /// The 32 values of a Q4_0 (`BB` = 18; unsigned nibbles) or Q8_0 (`BB` = 34) block.
    #[target_feature(enable = "avx2,fma,f16c")]
    unsafe fn values<const BB: usize>(b: &[u8]) -> __m256i {
        if BB == 18 {
            // SAFETY: an 18-byte Q4_0 block.
            unsafe { q4_0_nibbles(b) }
        } else {
            // SAFETY: 32 bytes at offset 2 of a 34-byte Q8_0 block.
            unsafe { load(&b[2..]) }
        }
    }

    #[target_feature(enable = "avx2,fma,f16c")]
    unsafe fn q4_0_impl(w: &[u8], a: ActRow<'_>) -> f32 {
        // SAFETY: features as the caller's.
        unsafe { blocks32::<18>(w, a) }
    }

    #[target_feature(enable = "avx2,fma,f16c")]
    unsafe fn q8_0_impl(w: &[u8], a: ActRow<'_>) -> f32 {
        // SAFETY: features as the caller's.
        unsafe { blocks32::<34>(w, a) }
    }

    #[target_feature(enable = "avx2,fma,f16c")]
    unsafe fn q4_0_x4(w: &[u8], a: &[ActRow<'_>; NT]) -> [f32; NT] {
        // SAFETY: features as the caller's.
        unsafe { blocks32_x4::<18>(w, a) }
    }

    #[target_feature(enable = "avx2,fma,f16c")]
    unsafe fn q8_0_x4(w: &[u8], a: &[ActRow<'_>; NT]) -> [f32; NT] {
        // SAFETY: features as the caller's.
        unsafe { blocks32_x4::<34>(w, a) }
    }

    // ------------------------------------------------ Q4_0 packed in groups of eight rows

    /// The packed Q4_0 kernels (`pack.rs` layout).
    pub(super) const PACKED_Q4_0: PackedKernel = PackedKernel {
        dot8: q4_0_p8,
        dot8x4: q4_0_p8x4,
        lane: q4_0_lane,
    };

    // Safe entry points: `kernel` hands these out only for `Simd::Avx2`.
    fn q4_0_p8(g: &[u8], a: ActRow<'_>) -> [f32; PACK] {
        // SAFETY: as above.
        unsafe { q4_0_p8_impl(g, a) }
    }
    fn q4_0_p8x4(g: &[u8], a: &[ActRow<'_>; NT]) -> [[f32; PACK]; NT] {
        // SAFETY: as above.
        unsafe { q4_0_p8x4_impl(g, a) }
    }
    fn q4_0_lane(g: &[u8], lane: usize, a: ActRow<'_>) -> f32 {
        // SAFETY: as above.
        unsafe { q4_0_lane_impl(g, lane, a) }
    }

    /// The 32 unsigned nibbles of the 16 quant bytes at `q`: low nibbles are values 0..16,
    /// high nibbles 16..32.
    #[target_feature(enable = "avx2,fma,f16c")]
    #[inline]
    unsafe fn nibbles_at(q: &[u8]) -> __m256i {
        debug_assert!(q.len() >= 16);
        // SAFETY: 16 readable bytes.
        let v = unsafe { _mm_loadu_si128(q.as_ptr() as *const __m128i) };
        nibbles_of(v)
    }

    #[target_feature(enable = "avx2,fma,f16c")]
    #[inline]
    fn nibbles_of(v: __m128i) -> __m256i {
        let both = _mm256_set_m128i(_mm_srli_epi16(v, 4), v);
        _mm256_and_si256(both, _mm256_set1_epi8(0x0F))
    }

    /// A packed block's four quads as unsigned nibbles: `(low, high)` per quad (values
    /// `4c..4c + 4` and `16 + 4c..20 + 4c` of each row, row `l` in 32-bit lane `l`).
    #[target_feature(enable = "avx2,fma,f16c")]
    #[inline]
    unsafe fn quads(blk: &[u8]) -> [(__m256i, __m256i); 4] {
        debug_assert!(blk.len() >= PACKED_BLOCK);
        let m = _mm256_set1_epi8(0x0F);
        std::array::from_fn(|c| {
            // SAFETY: quad c lies at 16 + 32c..48 + 32c of the block.
            let v = unsafe { _mm256_loadu_si256(blk.as_ptr().add(16 + 32 * c) as *const __m256i) };
            (
                _mm256_and_si256(v, m),
                _mm256_and_si256(_mm256_srli_epi16(v, 4), m),
            )
        })
    }

    /// The eight rows' exact integer block sums `Σ (q - 8)·y` against activation block `b`,
    /// row `l` in lane `l`. The 16-bit sums cannot overflow: eight products of pairs, each
    /// at most 2·15·127 in size, stay under 2^15.
    #[target_feature(enable = "avx2,fma,f16c")]
    #[inline]
    unsafe fn group_sums(q: &[(__m256i, __m256i); 4], a: ActRow<'_>, b: usize) -> __m256i {
        debug_assert!(a.qs.len() >= QK * (b + 1));
        let y = a.qs[QK * b..QK * (b + 1)].as_ptr();
        let mut s = _mm256_setzero_si256();
        for (c, &(lo, hi)) in q.iter().enumerate() {
            // SAFETY: activations 4c..4c + 4 and 16 + 4c..20 + 4c of the block's 32.
            let (ylo, yhi) = unsafe {
                (
                    _mm256_set1_epi32(std::ptr::read_unaligned(y.add(4 * c) as *const i32)),
                    _mm256_set1_epi32(std::ptr::read_unaligned(y.add(16 + 4 * c) as *const i32)),
                )
            };
            s = _mm256_add_epi16(s, _mm256_maddubs_epi16(lo, ylo));
            s = _mm256_add_epi16(s, _mm256_maddubs_epi16(hi, yhi));
        }
        let s = _mm256_madd_epi16(s, _mm256_set1_epi16(1));
        _mm256_sub_epi32(s, _mm256_set1_epi32(q4_0_offset(a, b)))
    }

    /// The eight f16 row scales of packed block `blk`, times the activation scale `da`.
    #[target_feature(enable = "avx2,fma,f16c")]
    #[inline]
    unsafe fn block_scales(blk: &[u8], da: f32) -> __m256 {
        debug_assert!(blk.len() >= 16);
        // SAFETY: 16 readable bytes.
        let h = unsafe { _mm_loadu_si128(blk.as_ptr() as *const __m128i) };
        _mm256_mul_ps(_mm256_cvtph_ps(h), _mm256_set1_ps(da))
    }

    /// The sum of the eight i32 lanes of `v`.
    #[target_feature(enable = "avx2,fma,f16c")]
    #[inline]
    fn hsum_i32(v: __m256i) -> i32 {
        let s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
        let s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0b01_00_11_10));
        _mm_cvtsi128_si32(_mm_add_epi32(s, _mm_shuffle_epi32(s, 0b10_11_00_01)))
    }

    /// Every lane `l` computes `acc_l = fma(isum_l(b) as f32, d_l(b) * d_a(b), acc_l)` over the
    /// blocks in order: [`q4_0_lane_impl`] does exactly that for one row, and
    /// [`q4_0_p8x4_impl`] for each activation row.
    #[target_feature(enable = "avx2,fma,f16c")]
    unsafe fn q4_0_p8_impl(g: &[u8], a: ActRow<'_>) -> [f32; PACK] {
        let mut acc = _mm256_setzero_ps();
        for b in 0..packed_blocks(g, a) {
            let blk = &g[b * PACKED_BLOCK..(b + 1) * PACKED_BLOCK];
            // SAFETY: b < packed_blocks; every read lies within `blk`.
            unsafe {
                let isum = group_sums(&quads(blk), a, b);
                let d = block_scales(blk, a.d[b]);
                acc = _mm256_fmadd_ps(_mm256_cvtepi32_ps(isum), d, acc);
            }
        }
        let mut out = [0f32; PACK];
        // SAFETY: eight f32.
        unsafe { _mm256_storeu_ps(out.as_mut_ptr(), acc) };
        out
    }

    /// [`q4_0_p8_impl`] for [`NT`] activation rows, decoding each block's nibbles once.
    #[target_feature(enable = "avx2,fma,f16c")]
    unsafe fn q4_0_p8x4_impl(g: &[u8], a: &[ActRow<'_>; NT]) -> [[f32; PACK]; NT] {
        let nb = a
            .iter()
            .fold(usize::MAX, |n, &r| n.min(packed_blocks(g, r)));
        let mut acc = [_mm256_setzero_ps(); NT];
        for b in 0..nb {
            let blk = &g[b * PACKED_BLOCK..(b + 1) * PACKED_BLOCK];
            // SAFETY: b < nb for every row; every read lies within `blk`.
            unsafe {
                let q = quads(blk);
                for t in 0..NT {
                    let isum = group_sums(&q, a[t], b);
                    let d = block_scales(blk, a[t].d[b]);
                    acc[t] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(isum), d, acc[t]);
                }
            }
        }
        let mut out = [[0f32; PACK]; NT];
        for t in 0..NT {
            // SAFETY: eight f32.
            unsafe { _mm256_storeu_ps(out[t].as_mut_ptr(), acc[t]) };
        }
        out
    }

    /// Lane `lane` of [`q4_0_p8_impl`], computed alone: the row's 16 quant bytes gathered from
    /// the quads (file order), the same exact integer sum, the same product and FMA.
    #[target_feature(enable = "avx2,fma,f16c")]
    unsafe fn q4_0_lane_impl(g: &[u8], lane: usize, a: ActRow<'_>) -> f32 {
        debug_assert!(lane < PACK);
        let mut acc = 0f32;
        for b in 0..packed_blocks(g, a) {
            let blk = &g[b * PACKED_BLOCK..(b + 1) * PACKED_BLOCK];
            let word = |c: usize| {
                let at = 16 + 32 * c + 4 * lane;
                i32::from_le_bytes([blk[at], blk[at + 1], blk[at + 2], blk[at + 3]])
            };
            let v = _mm_set_epi32(word(3), word(2), word(1), word(0));
            // SAFETY: 32 activations of block b < packed_blocks.
            let y = unsafe { load_i8(&a.qs[QK * b..QK * (b + 1)]) };
            let p = _mm256_madd_epi16(_mm256_maddubs_epi16(nibbles_of(v), y), _mm256_set1_epi16(1));
            let isum = hsum_i32(p) - q4_0_offset(a, b);
            acc = (isum as f32).mul_add(f16_at(blk, 2 * lane) * a.d[b], acc);
        }
        acc
    }

    // ------------------------------------------------ Q4_K packed in groups of eight rows

    /// The packed Q4_K kernels (`pack.rs` layout); lanes as [`super::q4_k_packed_lane`].
    pub(super) const PACKED_Q4_K: PackedKernel = PackedKernel {
        dot8: q4_k_p8,
        dot8x4: q4_k_p8x4,
        lane: super::q4_k_packed_lane,
    };

    // Safe entry points: `kernel` hands these out only for `Simd::Avx2`.
    fn q4_k_p8(g: &[u8], a: ActRow<'_>) -> [f32; PACK] {
        // SAFETY: as above.
        unsafe { q4_k_p8x_impl::<1>(g, &[a])[0] }
    }
    fn q4_k_p8x4(g: &[u8], a: &[ActRow<'_>; NT]) -> [[f32; PACK]; NT] {
        // SAFETY: as above.
        unsafe { q4_k_p8x_impl::<NT>(g, a) }
    }

    /// The eight rows' 6-bit sub-block scales and mins of a packed Q4_K block, unpacked with
    /// ggml's 32-bit masks in every lane at once: `[scales 0..4, scales 4..8, mins 0..4,
    /// mins 4..8]`, byte `j` of lane `l` holding row `l`'s value.
    #[target_feature(enable = "avx2,fma,f16c")]
    #[inline]
    unsafe fn q4_k_scales(blk: &[u8]) -> [__m256i; 4] {
        debug_assert!(blk.len() >= Q4_K_QUANTS);
        // SAFETY: the three scale words of the eight rows lie at 32..128.
        let [u0, u1, u2] = std::array::from_fn(|w| unsafe { load(&blk[Q4_K_SCALES + 32 * w..]) });
        let (low6, low4, low2) = (
            _mm256_set1_epi32(0x3F3F_3F3F),
            _mm256_set1_epi32(0x0F0F_0F0F),
            _mm256_set1_epi32(0x0303_0303),
        );
        let top2 =
            |u: __m256i| _mm256_slli_epi32(_mm256_and_si256(_mm256_srli_epi32(u, 6), low2), 4);
        [
            _mm256_and_si256(u0, low6),
            _mm256_or_si256(_mm256_and_si256(u2, low4), top2(u0)),
            _mm256_and_si256(u1, low6),
            _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi32(u2, 4), low4), top2(u1)),
        ]
    }

    /// Byte `k` of every 32-bit lane of `v`, as the same 16-bit value twice (a `madd` factor).
    #[target_feature(enable = "avx2,fma,f16c")]
    #[inline]
    fn byte_twice(v: __m256i, k: i8) -> __m256i {
        let z = -128;
        let base = _mm256_setr_epi8(
            0, z, 0, z, 4, z, 4, z, 8, z, 8, z, 12, z, 12, z, 0, z, 0, z, 4, z, 4, z, 8, z, 8, z,
            12, z, 12, z,
        );
        // Adding k keeps the zeroing bytes' top bit set.
        _mm256_shuffle_epi8(v, _mm256_add_epi8(base, _mm256_set1_epi8(k)))
    }

    /// Bytes `k` and `k + 1` of every 32-bit lane of `v` as two 16-bit values.
    #[target_feature(enable = "avx2,fma,f16c")]
    #[inline]
    fn byte_pair(v: __m256i, k: i8) -> __m256i {
        let z = -128;
        let base = _mm256_setr_epi8(
            0, z, 1, z, 4, z, 5, z, 8, z, 9, z, 12, z, 13, z, 0, z, 1, z, 4, z, 5, z, 8, z, 9, z,
            12, z, 13, z,
        );
        _mm256_shuffle_epi8(v, _mm256_add_epi8(base, _mm256_set1_epi8(k)))
    }

    /// The eight rows' `Σ_j m_j · (Σ y over sub-block j)` for block `b` of `a`, row `l` in lane
    /// `l` (pairs of sub-blocks per `madd`; a sub-block's activation sum fits 16 bits).
    #[target_feature(enable = "avx2,fma,f16c")]
    #[inline]
    fn q4_k_mins(mins: [__m256i; 2], a: ActRow<'_>, b: usize) -> __m256i {
        let bs = &a.bsums[16 * b..16 * (b + 1)];
        let sub = |j: usize| (i32::from(bs[2 * j]) + i32::from(bs[2 * j + 1])) as u16 as u32;
        let pair = |j: usize| _mm256_set1_epi32((sub(j) | (sub(j + 1) << 16)) as i32);
        let mut s = _mm256_setzero_si256();
        for (h, &m) in mins.iter().enumerate() {
            s = _mm256_add_epi32(s, _mm256_madd_epi16(byte_pair(m, 0), pair(4 * h)));
            s = _mm256_add_epi32(s, _mm256_madd_epi16(byte_pair(m, 2), pair(4 * h + 2)));
        }
        s
    }

    /// Eight packed Q4_K rows against `T` activation rows; each lane computes what
    /// [`super::q4_k_packed_lane`] computes. Per 64-value chunk and quant word, the nibbles are
    /// decoded once for all `T` rows; a sub-block's eight `maddubs` pair sums stay under 2^15
    /// (8 · 2 · 15 · 127), then `madd` applies the row's scale in its lane.
    #[target_feature(enable = "avx2,fma,f16c")]
    unsafe fn q4_k_p8x_impl<const T: usize>(g: &[u8], a: &[ActRow<'_>; T]) -> [[f32; PACK]; T] {
        let nb = a
            .iter()
            .fold(usize::MAX, |n, &r| n.min(super::packed_q4_k_blocks(g, r)));
        let m4 = _mm256_set1_epi8(0x0F);
        let mut acc = [_mm256_setzero_ps(); T];
        let mut mins = [_mm256_setzero_ps(); T];
        for b in 0..nb {
            let blk = &g[b * PACKED_Q4_K_BLOCK..(b + 1) * PACKED_Q4_K_BLOCK];
            // SAFETY: b < nb for every row: 256 activations at 256b; reads lie within `blk`.
            unsafe {
                let [sl, sh, ml, mh] = q4_k_scales(blk);
                let mut isum = [_mm256_setzero_si256(); T];
                for c in 0..4 {
                    let mut s = [[_mm256_setzero_si256(); 2]; T];
                    for e in 0..8 {
                        let v = load(&blk[Q4_K_QUANTS + 32 * (8 * c + e)..]);
                        let lo = _mm256_and_si256(v, m4);
                        let hi = _mm256_and_si256(_mm256_srli_epi16(v, 4), m4);
                        for t in 0..T {
                            let y = a[t].qs[QK_K * b + 64 * c + 4 * e..].as_ptr();
                            let ylo = _mm256_set1_epi32(std::ptr::read_unaligned(y as *const i32));
                            let yhi = _mm256_set1_epi32(std::ptr::read_unaligned(
                                y.add(32) as *const i32
                            ));
                            s[t][0] = _mm256_add_epi16(s[t][0], _mm256_maddubs_epi16(lo, ylo));
                            s[t][1] = _mm256_add_epi16(s[t][1], _mm256_maddubs_epi16(hi, yhi));
                        }
                    }
                    let (src, k) = (if c < 2 { sl } else { sh }, 2 * (c as i8 % 2));
                    let (f0, f1) = (byte_twice(src, k), byte_twice(src, k + 1));
                    for t in 0..T {
                        let p = _mm256_add_epi32(
                            _mm256_madd_epi16(s[t][0], f0),
                            _mm256_madd_epi16(s[t][1], f1),
                        );
                        isum[t] = _mm256_add_epi32(isum[t], p);
                    }
                }
                let d = _mm256_cvtph_ps(_mm_loadu_si128(blk.as_ptr() as *const __m128i));
                let dm = _mm256_cvtph_ps(_mm_loadu_si128(blk.as_ptr().add(16) as *const __m128i));
                for t in 0..T {
                    let da = _mm256_set1_ps(a[t].d[8 * b]);
                    let msum = q4_k_mins([ml, mh], a[t], b);
                    acc[t] =
                        _mm256_fmadd_ps(_mm256_cvtepi32_ps(isum[t]), _mm256_mul_ps(d, da), acc[t]);
                    mins[t] =
                        _mm256_fmadd_ps(_mm256_cvtepi32_ps(msum), _mm256_mul_ps(dm, da), mins[t]);
                }
            }
        }
        let mut out = [[0f32; PACK]; T];
        for t in 0..T {
            // SAFETY: eight f32.
            unsafe { _mm256_storeu_ps(out[t].as_mut_ptr(), _mm256_sub_ps(acc[t], mins[t])) };
        }
        out
    }

    // ------------------------------------------------ Q6_K packed in groups of eight rows

    /// The packed Q6_K kernels (`pack.rs` layout); lanes as [`super::q6_k_packed_lane`].
    pub(super) const PACKED_Q6_K: PackedKernel = PackedKernel {
        dot8: q6_k_p8,
        dot8x4: q6_k_p8x4,
        lane: super::q6_k_packed_lane,
    };

    // Safe entry points: `kernel` hands these out only for `Simd::Avx2`.
    fn q6_k_p8(g: &[u8], a: ActRow<'_>) -> [f32; PACK] {
        // SAFETY: as above.
        unsafe { q6_k_p8x_impl::<1>(g, &[a])[0] }
    }
    fn q6_k_p8x4(g: &[u8], a: &[ActRow<'_>; NT]) -> [[f32; PACK]; NT] {
        // SAFETY: as above.
        unsafe { q6_k_p8x_impl::<NT>(g, a) }
    }

    /// Signed byte `k` of every 32-bit lane of `v`, as the same 16-bit value twice.
    #[target_feature(enable = "avx2,fma,f16c")]
    #[inline]
    fn sbyte_twice(v: __m256i, k: i8) -> __m256i {
        let z = -128;
        let base = _mm256_setr_epi8(
            z, 0, z, 0, z, 4, z, 4, z, 8, z, 8, z, 12, z, 12, z, 0, z, 0, z, 4, z, 4, z, 8, z, 8,
            z, 12, z, 12,
        );
        // The byte lands in the high half of each 16-bit value; the shift sign-extends it.
        _mm256_srai_epi16(
            _mm256_shuffle_epi8(v, _mm256_add_epi8(base, _mm256_set1_epi8(k))),
            8,
        )
    }

    /// Signed bytes `k` and `k + 1` of every 32-bit lane of `v` as two 16-bit values.
    #[target_feature(enable = "avx2,fma,f16c")]
    #[inline]
    fn sbyte_pair(v: __m256i, k: i8) -> __m256i {
        let z = -128;
        let base = _mm256_setr_epi8(
            z, 0, z, 1, z, 4, z, 5, z, 8, z, 9, z, 12, z, 13, z, 0, z, 1, z, 4, z, 5, z, 8, z, 9,
            z, 12, z, 13,
        );
        _mm256_srai_epi16(
            _mm256_shuffle_epi8(v, _mm256_add_epi8(base, _mm256_set1_epi8(k))),
            8,
        )
    }

    /// Values `4e..4e + 4` of the four quarters of half `n` of a packed Q6_K block: the eight
    /// rows' unsigned 6-bit quants, row `l` in lane `l` (one load of each `ql` and `qh` word;
    /// each quarter's two high bits moved to bits 4-5 with one shift and one mask).
    #[target_feature(enable = "avx2,fma,f16c")]
    #[inline]
    unsafe fn q6_k_quads(blk: &[u8], n: usize, e: usize) -> [__m256i; 4] {
        let at = q6_k_half(n);
        // SAFETY: the half's ql words e and 8 + e (< 16) and qh word e (< 8) lie within `blk`.
        let (ql0, ql1, qh) = unsafe {
            (
                load(&blk[at + 32 * e..]),
                load(&blk[at + 32 * (8 + e)..]),
                load(&blk[at + 32 * (16 + e)..]),
            )
        };
        let (m4, m30) = (_mm256_set1_epi8(0x0F), _mm256_set1_epi8(0x30));
        // Shifts are per 16-bit lane; the masks drop the bits that crossed a byte.
        [
            _mm256_or_si256(
                _mm256_and_si256(ql0, m4),
                _mm256_and_si256(_mm256_slli_epi16(qh, 4), m30),
            ),
            _mm256_or_si256(
                _mm256_and_si256(ql1, m4),
                _mm256_and_si256(_mm256_slli_epi16(qh, 2), m30),
            ),
            _mm256_or_si256(
                _mm256_and_si256(_mm256_srli_epi16(ql0, 4), m4),
                _mm256_and_si256(qh, m30),
            ),
            _mm256_or_si256(
                _mm256_and_si256(_mm256_srli_epi16(ql1, 4), m4),
                _mm256_and_si256(_mm256_srli_epi16(qh, 2), m30),
            ),
        ]
    }

    /// Eight packed Q6_K rows against `T` activation rows; each lane computes what
    /// [`super::q6_k_packed_lane`] computes. The unsigned quants meet the activations in
    /// `maddubs` (two quads' pair sums stay under 2^15: 2 · 2 · 63 · 127), `madd` applies the
    /// row's int8 scale in its lane, and the `- 32` comes back as `32 Σ_j sc_j Σ y_j`.
    #[target_feature(enable = "avx2,fma,f16c")]
    unsafe fn q6_k_p8x_impl<const T: usize>(g: &[u8], a: &[ActRow<'_>; T]) -> [[f32; PACK]; T] {
        let nb = a
            .iter()
            .fold(usize::MAX, |n, &r| n.min(super::packed_q6_k_blocks(g, r)));
        let mut acc = [_mm256_setzero_ps(); T];
        for b in 0..nb {
            let blk = &g[b * PACKED_Q6_K_BLOCK..(b + 1) * PACKED_Q6_K_BLOCK];
            // SAFETY: b < nb for every row: 256 activations at 256b; reads lie within `blk`.
            unsafe {
                let sc: [__m256i; 4] = std::array::from_fn(|w| load(&blk[Q6_K_SCALES + 32 * w..]));
                let mut isum = [_mm256_setzero_si256(); T];
                for n in 0..2 {
                    for p in 0..4 {
                        let (q0, q1) = (q6_k_quads(blk, n, 2 * p), q6_k_quads(blk, n, 2 * p + 1));
                        for q in 0..4 {
                            // Sub-block j = 8n + 2q + p / 2: scale byte j % 4 of word j / 4.
                            let f = sbyte_twice(sc[2 * n + q / 2], (2 * (q % 2) + p / 2) as i8);
                            for t in 0..T {
                                let y = a[t].qs[QK_K * b + 128 * n + 32 * q + 8 * p..].as_ptr();
                                let y0 =
                                    _mm256_set1_epi32(std::ptr::read_unaligned(y as *const i32));
                                let y1 = _mm256_set1_epi32(std::ptr::read_unaligned(
                                    y.add(4) as *const i32
                                ));
                                let s16 = _mm256_add_epi16(
                                    _mm256_maddubs_epi16(q0[q], y0),
                                    _mm256_maddubs_epi16(q1[q], y1),
                                );
                                isum[t] = _mm256_add_epi32(isum[t], _mm256_madd_epi16(s16, f));
                            }
                        }
                    }
                }
                let d = _mm256_cvtph_ps(_mm_loadu_si128(blk.as_ptr() as *const __m128i));
                for t in 0..T {
                    let bs = &a[t].bsums[16 * b..16 * (b + 1)];
                    let pair = |j: usize| {
                        _mm256_set1_epi32(
                            (bs[j] as u16 as u32 | (bs[j + 1] as u16 as u32) << 16) as i32,
                        )
                    };
                    let mut off = _mm256_setzero_si256();
                    for (w, &v) in sc.iter().enumerate() {
                        off =
                            _mm256_add_epi32(off, _mm256_madd_epi16(sbyte_pair(v, 0), pair(4 * w)));
                        off = _mm256_add_epi32(
                            off,
                            _mm256_madd_epi16(sbyte_pair(v, 2), pair(4 * w + 2)),
                        );
                    }
                    let isum = _mm256_sub_epi32(isum[t], _mm256_slli_epi32(off, 5));
                    let da = _mm256_set1_ps(a[t].d[8 * b]);
                    acc[t] =
                        _mm256_fmadd_ps(_mm256_cvtepi32_ps(isum), _mm256_mul_ps(d, da), acc[t]);
                }
            }
        }
        let mut out = [[0f32; PACK]; T];
        for t in 0..T {
            // SAFETY: eight f32.
            unsafe { _mm256_storeu_ps(out[t].as_mut_ptr(), acc[t]) };
        }
        out
    }

    #[target_feature(enable = "avx2,fma,f16c")]
    unsafe fn q4_k_impl(w: &[u8], a: ActRow<'_>) -> f32 {
        let mask = _mm256_set1_epi8(0x0F);
        let mut acc = _mm256_setzero_ps();
        let mut mins = 0f32;
        for (i, b) in w.chunks_exact(144).enumerate() {
            let Some(aq) = a.qs.get(QK_K * i..QK_K * (i + 1)) else {
                break;
            };
            let (sc, m) = scales_mins_k4(&b[4..16]);
            let mut s = _mm256_setzero_si256();
            for c in 0..4 {
                // SAFETY: 32 bytes of `qs` at 16 + 32c < 144; 64 activations at 64c < 256.
                unsafe {
                    let q = load(&b[16 + 32 * c..]);
                    let lo = _mm256_and_si256(q, mask);
                    let hi = _mm256_and_si256(_mm256_srli_epi16(q, 4), mask);
                    let p_lo = _mm256_maddubs_epi16(lo, load_i8(&aq[64 * c..]));
                    let p_hi = _mm256_maddubs_epi16(hi, load_i8(&aq[64 * c + 32..]));
                    let s_lo = _mm256_madd_epi16(p_lo, _mm256_set1_epi16(sc[2 * c] as i16));
                    let s_hi = _mm256_madd_epi16(p_hi, _mm256_set1_epi16(sc[2 * c + 1] as i16));
                    s = _mm256_add_epi32(s, _mm256_add_epi32(s_lo, s_hi));
                }
            }
            let da = a.d[8 * i];
            // SAFETY: 16 bsums of block i.
            let ms = unsafe { q4_k_min_sum(&m, &a.bsums[16 * i..16 * (i + 1)]) };
            mins += f16_at(b, 2) * da * ms as f32;
            let d = _mm256_set1_ps(f16_at(b, 0) * da);
            acc = _mm256_fmadd_ps(d, _mm256_cvtepi32_ps(s), acc);
        }
        hsum(acc) - mins
    }

    /// The four 32-value quarters of one Q6_K half as unsigned 6-bit values.
    #[target_feature(enable = "avx2,fma,f16c")]
    fn q6_quarters(ql0: __m256i, ql1: __m256i, qh: __m256i) -> [__m256i; 4] {
        let m4 = _mm256_set1_epi8(0x0F);
        let m2 = _mm256_set1_epi8(3);
        // Shifts are per 16-bit lane; the masks drop the bits that crossed a byte.
        let h0 = _mm256_slli_epi16(_mm256_and_si256(qh, m2), 4);
        let h1 = _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(qh, 2), m2), 4);
        let h2 = _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(qh, 4), m2), 4);
        let h3 = _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(qh, 6), m2), 4);
        [
            _mm256_or_si256(_mm256_and_si256(ql0, m4), h0),
            _mm256_or_si256(_mm256_and_si256(ql1, m4), h1),
            _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(ql0, 4), m4), h2),
            _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(ql1, 4), m4), h3),
        ]
    }

    #[target_feature(enable = "avx2,fma,f16c")]
    unsafe fn q6_k_impl(w: &[u8], a: ActRow<'_>) -> f32 {
        let mut acc = _mm256_setzero_ps();
        for (i, b) in w.chunks_exact(210).enumerate() {
            let Some(aq) = a.qs.get(QK_K * i..QK_K * (i + 1)) else {
                break;
            };
            let bs = &a.bsums[16 * i..16 * (i + 1)];
            let mut s = _mm256_setzero_si256();
            for n in 0..2 {
                // SAFETY: ql at 64n..64n+64, qh at 128+32n..+32 (< 192); activations < 256.
                unsafe {
                    let q = q6_quarters(
                        load(&b[64 * n..]),
                        load(&b[64 * n + 32..]),
                        load(&b[128 + 32 * n..]),
                    );
                    for (g, qg) in q.iter().enumerate() {
                        let j = 192 + 8 * n + 2 * g;
                        let scale = _mm256_set_m128i(
                            _mm_set1_epi16(b[j + 1] as i8 as i16),
                            _mm_set1_epi16(b[j] as i8 as i16),
                        );
                        let p = _mm256_maddubs_epi16(*qg, load_i8(&aq[128 * n + 32 * g..]));
                        s = _mm256_add_epi32(s, _mm256_madd_epi16(p, scale));
                    }
                }
            }
            // The -32 offset: Σ_i sc_i * bsum_i * 32, as one 16-lane multiply-add.
            // SAFETY: 16 scale bytes at 192, 16 bsums.
            unsafe {
                let sc16 = _mm256_cvtepi8_epi16(_mm_loadu_si128(b.as_ptr().add(192) as *const _));
                let b16 = _mm256_loadu_si256(bs.as_ptr() as *const __m256i);
                let off = _mm256_slli_epi32(_mm256_madd_epi16(sc16, b16), 5);
                s = _mm256_sub_epi32(s, off);
            }
            let d = _mm256_set1_ps(f16_at(b, 208) * a.d[8 * i]);
            acc = _mm256_fmadd_ps(d, _mm256_cvtepi32_ps(s), acc);
        }
        hsum(acc)
    }

    /// Q4_K for [`NT`] activation rows: nibbles and scales decoded once per block.
    #[target_feature(enable = "avx2,fma,f16c")]
    unsafe fn q4_k_x4(w: &[u8], a: &[ActRow<'_>; NT]) -> [f32; NT] {
        let nb = a.iter().fold(w.len() / 144, |n, r| {
            n.min(r.qs.len() / QK_K).min(r.bsums.len() / 16)
        });
        let mask = _mm256_set1_epi8(0x0F);
        let mut acc = [_mm256_setzero_ps(); NT];
        let mut mins = [0f32; NT];
        for i in 0..nb {
            let b = &w[144 * i..144 * (i + 1)];
            let (sc, m) = scales_mins_k4(&b[4..16]);
            let mut s = [_mm256_setzero_si256(); NT];
            for c in 0..4 {
                // SAFETY: 32 quant bytes at 16 + 32c < 144.
                let q = unsafe { load(&b[16 + 32 * c..]) };
                let lo = _mm256_and_si256(q, mask);
                let hi = _mm256_and_si256(_mm256_srli_epi16(q, 4), mask);
                let (s_lo, s_hi) = (
                    _mm256_set1_epi16(sc[2 * c] as i16),
                    _mm256_set1_epi16(sc[2 * c + 1] as i16),
                );
                for t in 0..NT {
                    let y = &a[t].qs[QK_K * i + 64 * c..];
                    // SAFETY: 64 activations at 256i + 64c (nb bounds every row).
                    let (y0, y1) = unsafe { (load_i8(y), load_i8(&y[32..])) };
                    let p_lo = _mm256_madd_epi16(_mm256_maddubs_epi16(lo, y0), s_lo);
                    let p_hi = _mm256_madd_epi16(_mm256_maddubs_epi16(hi, y1), s_hi);
                    s[t] = _mm256_add_epi32(s[t], _mm256_add_epi32(p_lo, p_hi));
                }
            }
            let (d, dmin) = (f16_at(b, 0), f16_at(b, 2));
            for t in 0..NT {
                let da = a[t].d[8 * i];
                // SAFETY: 16 bsums of block i (nb bounds every row).
                let ms = unsafe { q4_k_min_sum(&m, &a[t].bsums[16 * i..16 * (i + 1)]) };
                mins[t] += dmin * da * ms as f32;
                let dv = _mm256_set1_ps(d * da);
                acc[t] = _mm256_fmadd_ps(dv, _mm256_cvtepi32_ps(s[t]), acc[t]);
            }
        }
        let mut out = [0f32; NT];
        for t in 0..NT {
            out[t] = hsum(acc[t]) - mins[t];
        }
        out
    }

    /// Q6_K for [`NT`] activation rows: 6-bit values and scales decoded once per block.
    #[target_feature(enable = "avx2,fma,f16c")]
    unsafe fn q6_k_x4(w: &[u8], a: &[ActRow<'_>; NT]) -> [f32; NT] {
        let nb = a.iter().fold(w.len() / 210, |n, r| {
            n.min(r.qs.len() / QK_K).min(r.bsums.len() / 16)
        });
        let mut acc = [_mm256_setzero_ps(); NT];
        for i in 0..nb {
            let b = &w[210 * i..210 * (i + 1)];
            let mut s = [_mm256_setzero_si256(); NT];
            for n in 0..2 {
                // SAFETY: ql at 64n..64n+64, qh at 128+32n..+32, all < 192.
                let q = unsafe {
                    q6_quarters(
                        load(&b[64 * n..]),
                        load(&b[64 * n + 32..]),
                        load(&b[128 + 32 * n..]),
                    )
                };
                for (g, qg) in q.iter().enumerate() {
                    let j = 192 + 8 * n + 2 * g;
                    let scale = _mm256_set_m128i(
                        _mm_set1_epi16(b[j + 1] as i8 as i16),
                        _mm_set1_epi16(b[j] as i8 as i16),
                    );
                    for t in 0..NT {
                        // SAFETY: 32 activations at 256i + 128n + 32g.
                        let y = unsafe { load_i8(&a[t].qs[QK_K * i + 128 * n + 32 * g..]) };
                        let p = _mm256_maddubs_epi16(*qg, y);
                        s[t] = _mm256_add_epi32(s[t], _mm256_madd_epi16(p, scale));
                    }
                }
            }
            // SAFETY: 16 scale bytes at 192.
            let sc = unsafe { _mm_loadu_si128(b.as_ptr().add(192) as *const __m128i) };
            let sc16 = _mm256_cvtepi8_epi16(sc);
            let d = f16_at(b, 208);
            for t in 0..NT {
                let bs = &a[t].bsums[16 * i..16 * (i + 1)];
                // SAFETY: 16 bsums.
                let b16 = unsafe { _mm256_loadu_si256(bs.as_ptr() as *const __m256i) };
                let off = _mm256_slli_epi32(_mm256_madd_epi16(sc16, b16), 5);
                let dv = _mm256_set1_ps(d * a[t].d[8 * i]);
                let v = _mm256_cvtepi32_ps(_mm256_sub_epi32(s[t], off));
                acc[t] = _mm256_fmadd_ps(dv, v, acc[t]);
            }
        }
        let mut out = [0f32; NT];
        for t in 0..NT {
            out[t] = hsum(acc[t]);
        }
        out
    }
}

#[cfg(target_arch = "aarch64")]
mod neon {
    use std::arch::aarch64::*;
    use std::arch::asm;

    use super::{
        ActRow, Dot4Fn, DotFn, NT, PACK, PACKED_BLOCK, PACKED_Q4_K_BLOCK, PACKED_Q6_K_BLOCK,
        PackedKernel, QK, QK_K, f16_at, packed_blocks, q4_0_offset, q4_k_min_sum, scales_mins_k4,
    };
    use crate::backend::cpu::pack::{Q4_K_QUANTS, Q4_K_SCALES, Q6_K_SCALES, q6_k_half};
    use crate::quant::GgmlType;

    pub(super) fn kernel(ty: GgmlType) -> Option<(DotFn, Dot4Fn)> {
        Some(match ty {
            GgmlType::Q4_0 => (q4_0, q4_0_4),
            GgmlType::Q8_0 => (q8_0, q8_0_4),
            GgmlType::Q4_K => (q4_k, q4_k_4),
            GgmlType::Q6_K => (q6_k, q6_k_4),
            _ => return None,
        })
    }

    // The mat-mat entry points call the row kernel per activation row (no fused NEON x4 yet).
    four!(q4_0_4, q4_0);
    four!(q8_0_4, q8_0);
    four!(q4_k_4, q4_k);
    four!(q6_k_4, q6_k);

    // Safe entry points: `kernel` hands these out only after `detected()` found `dotprod`.
    fn q4_0(w: &[u8], a: ActRow<'_>) -> f32 {
        // SAFETY: selected only when the CPU has NEON dotprod.
        unsafe { q4_0_impl(w, a) }
    }
    fn q8_0(w: &[u8], a: ActRow<'_>) -> f32 {
        // SAFETY: as above.
        unsafe { q8_0_impl(w, a) }
    }
    fn q4_k(w: &[u8], a: ActRow<'_>) -> f32 {
        // SAFETY: as above.
        unsafe { q4_k_impl(w, a) }
    }
    fn q6_k(w: &[u8], a: ActRow<'_>) -> f32 {
        // SAFETY: as above.
        unsafe { q6_k_impl(w, a) }
    }

    /// `acc + Σ a·b` per group of four i8 (`sdot`; its intrinsic is not stable Rust yet).
    /// Inlined only into `dotprod`-enabled functions.
    #[inline(always)]
    unsafe fn sdot(mut acc: int32x4_t, a: int8x16_t, b: int8x16_t) -> int32x4_t {
        // SAFETY: register-only instruction; callers enable `dotprod`.
        unsafe {
            asm!("sdot {acc:v}.4s, {a:v}.16b, {b:v}.16b", acc = inout(vreg) acc,
                 a = in(vreg) a, b = in(vreg) b, options(pure, nomem, nostack));
        }
        acc
    }

    #[inline(always)]
    unsafe fn ld_u8(p: &[u8]) -> uint8x16_t {
        debug_assert!(p.len() >= 16);
        // SAFETY: 16 readable bytes.
        unsafe { vld1q_u8(p.as_ptr()) }
    }

    #[inline(always)]
    unsafe fn ld_i8(p: &[i8]) -> int8x16_t {
        debug_assert!(p.len() >= 16);
        // SAFETY: 16 readable bytes.
        unsafe { vld1q_s8(p.as_ptr()) }
    }

    #[target_feature(enable = "neon,dotprod")]
    unsafe fn q4_0_impl(w: &[u8], a: ActRow<'_>) -> f32 {
        let mut acc = vdupq_n_f32(0.0);
        for ((b, aq), &da) in w.chunks_exact(18).zip(a.qs.chunks_exact(QK)).zip(a.d) {
            // SAFETY: 16 quant bytes at 2..18, 32 activations.
            unsafe {
                let v = ld_u8(&b[2..]);
                let eight = vdupq_n_s8(8);
                let lo = vsubq_s8(vreinterpretq_s8_u8(vandq_u8(v, vdupq_n_u8(0x0F))), eight);
                let hi = vsubq_s8(vreinterpretq_s8_u8(vshrq_n_u8(v, 4)), eight);
                let p = sdot(sdot(vdupq_n_s32(0), lo, ld_i8(aq)), hi, ld_i8(&aq[16..]));
                acc = vmlaq_n_f32(acc, vcvtq_f32_s32(p), f16_at(b, 0) * da);
            }
        }
        vaddvq_f32(acc)
    }

    // ------------------------------------------------ Q4_0 packed in groups of eight rows

    /// The packed Q4_0 kernels (`pack.rs` quad layout): a quad's 16-byte half is four rows'
    /// four bytes, so `sdot` against the matching four activation bytes (broadcast) leaves
    /// row `l`'s partial sum in lane `l`.
    pub(super) const PACKED_Q4_0: PackedKernel = PackedKernel {
        dot8: q4_0_p8,
        dot8x4: q4_0_p8x4,
        lane: q4_0_lane,
    };

    // Safe entry points: `kernel` hands these out only for `Simd::NeonDot`.
    fn q4_0_p8(g: &[u8], a: ActRow<'_>) -> [f32; PACK] {
        // SAFETY: as above.
        unsafe { q4_0_p8_impl(g, a) }
    }
    fn q4_0_p8x4(g: &[u8], a: &[ActRow<'_>; NT]) -> [[f32; PACK]; NT] {
        // SAFETY: as above.
        unsafe { q4_0_p8x4_impl(g, a) }
    }
    fn q4_0_lane(g: &[u8], lane: usize, a: ActRow<'_>) -> f32 {
        // SAFETY: as above.
        unsafe { q4_0_lane_impl(g, lane, a) }
    }

    /// The eight f16 at the start of `p` as f32 (`fcvtl`/`fcvtl2`, base AArch64; exact).
    #[inline(always)]
    unsafe fn f16x8(p: &[u8]) -> (float32x4_t, float32x4_t) {
        debug_assert!(p.len() >= 16);
        // SAFETY: 16 readable bytes; the conversions are register-only.
        unsafe {
            let h = vld1q_u8(p.as_ptr());
            let (lo, hi): (float32x4_t, float32x4_t);
            asm!("fcvtl {lo:v}.4s, {h:v}.4h", "fcvtl2 {hi:v}.4s, {h:v}.8h", h = in(vreg) h,
                 lo = out(vreg) lo, hi = out(vreg) hi, options(pure, nomem, nostack));
            (lo, hi)
        }
    }

    /// A packed block's quads as unsigned nibbles, `[c][half][low, high]`: half 0 holds rows
    /// 0..4, half 1 rows 4..8, one row per 32-bit lane.
    #[target_feature(enable = "neon,dotprod")]
    #[inline]
    unsafe fn quads(blk: &[u8]) -> [[[int8x16_t; 2]; 2]; 4] {
        debug_assert!(blk.len() >= PACKED_BLOCK);
        std::array::from_fn(|c| {
            std::array::from_fn(|h| {
                // SAFETY: half h of quad c lies at 16 + 32c + 16h..32 + 32c + 16h; NEON is
                // enabled here.
                unsafe {
                    let v = ld_u8(&blk[16 + 32 * c + 16 * h..]);
                    [
                        vreinterpretq_s8_u8(vandq_u8(v, vdupq_n_u8(0x0F))),
                        vreinterpretq_s8_u8(vshrq_n_u8(v, 4)),
                    ]
                }
            })
        })
    }

    /// The eight rows' exact block sums `Σ (q - 8)·y` against activation block `b`: rows 0..4
    /// and 4..8, one per lane.
    #[target_feature(enable = "neon,dotprod")]
    unsafe fn group_sums(
        q: &[[[int8x16_t; 2]; 2]; 4],
        a: ActRow<'_>,
        b: usize,
    ) -> (int32x4_t, int32x4_t) {
        debug_assert!(a.qs.len() >= QK * (b + 1));
        let y = a.qs[QK * b..QK * (b + 1)].as_ptr();
        let (mut s0, mut s1) = (vdupq_n_s32(0), vdupq_n_s32(0));
        for (c, [h0, h1]) in q.iter().enumerate() {
            // SAFETY: activations 4c..4c + 4 and 16 + 4c..20 + 4c of the block's 32.
            unsafe {
                let ylo = vreinterpretq_s8_s32(vld1q_dup_s32(y.add(4 * c) as *const i32));
                let yhi = vreinterpretq_s8_s32(vld1q_dup_s32(y.add(16 + 4 * c) as *const i32));
                s0 = sdot(sdot(s0, h0[0], ylo), h0[1], yhi);
                s1 = sdot(sdot(s1, h1[0], ylo), h1[1], yhi);
            }
        }
        let off = vdupq_n_s32(q4_0_offset(a, b));
        (vsubq_s32(s0, off), vsubq_s32(s1, off))
    }

    /// Every lane `l`: `acc_l = fma(isum_l(b) as f32, d_l(b) * d_a(b), acc_l)` over the blocks
    /// in order, as [`q4_0_lane_impl`] computes it for one row.
    #[target_feature(enable = "neon,dotprod")]
    unsafe fn accumulate(
        acc: &mut (float32x4_t, float32x4_t),
        blk: &[u8],
        isum: (int32x4_t, int32x4_t),
        da: f32,
    ) {
        // SAFETY: the block's 16 scale bytes.
        let (d0, d1) = unsafe { f16x8(blk) };
        acc.0 = vfmaq_f32(acc.0, vcvtq_f32_s32(isum.0), vmulq_n_f32(d0, da));
        acc.1 = vfmaq_f32(acc.1, vcvtq_f32_s32(isum.1), vmulq_n_f32(d1, da));
    }

    #[target_feature(enable = "neon,dotprod")]
    unsafe fn q4_0_p8_impl(g: &[u8], a: ActRow<'_>) -> [f32; PACK] {
        let mut acc = (vdupq_n_f32(0.0), vdupq_n_f32(0.0));
        for b in 0..packed_blocks(g, a) {
            let blk = &g[b * PACKED_BLOCK..(b + 1) * PACKED_BLOCK];
            // SAFETY: b < packed_blocks; every read lies within `blk`.
            unsafe {
                let isum = group_sums(&quads(blk), a, b);
                accumulate(&mut acc, blk, isum, a.d[b]);
            }
        }
        // SAFETY: register-only stores into an array.
        unsafe { store8(acc) }
    }

    #[target_feature(enable = "neon,dotprod")]
    unsafe fn q4_0_p8x4_impl(g: &[u8], a: &[ActRow<'_>; NT]) -> [[f32; PACK]; NT] {
        let nb = a
            .iter()
            .fold(usize::MAX, |n, &r| n.min(packed_blocks(g, r)));
        let mut acc = [(vdupq_n_f32(0.0), vdupq_n_f32(0.0)); NT];
        for b in 0..nb {
            let blk = &g[b * PACKED_BLOCK..(b + 1) * PACKED_BLOCK];
            // SAFETY: b < nb for every row; every read lies within `blk`.
            unsafe {
                let q = quads(blk);
                for t in 0..NT {
                    let isum = group_sums(&q, a[t], b);
                    accumulate(&mut acc[t], blk, isum, a[t].d[b]);
                }
            }
        }
        acc.map(|v| {
            // SAFETY: register-only stores into an array.
            unsafe { store8(v) }
        })
    }

    #[inline(always)]
    unsafe fn store8(v: (float32x4_t, float32x4_t)) -> [f32; PACK] {
        let mut out = [0f32; PACK];
        // SAFETY: eight f32.
        unsafe {
            vst1q_f32(out.as_mut_ptr(), v.0);
            vst1q_f32(out.as_mut_ptr().add(4), v.1);
        }
        out
    }

    /// Lane `lane` of [`q4_0_p8_impl`] alone: the row's 16 quant bytes gathered from the quads
    /// (file order), the same exact integer sum, product and FMA.
    #[target_feature(enable = "neon,dotprod")]
    unsafe fn q4_0_lane_impl(g: &[u8], lane: usize, a: ActRow<'_>) -> f32 {
        debug_assert!(lane < PACK);
        let mut acc = 0f32;
        for b in 0..packed_blocks(g, a) {
            let blk = &g[b * PACKED_BLOCK..(b + 1) * PACKED_BLOCK];
            let mut row = [0u8; 16];
            for (c, w) in row.chunks_exact_mut(4).enumerate() {
                let at = 16 + 32 * c + 4 * lane;
                w.copy_from_slice(&blk[at..at + 4]);
            }
            let y = &a.qs[QK * b..QK * (b + 1)];
            // SAFETY: 16 bytes of `row`, 32 activations.
            let isum = unsafe {
                let v = ld_u8(&row);
                let lo = vreinterpretq_s8_u8(vandq_u8(v, vdupq_n_u8(0x0F)));
                let hi = vreinterpretq_s8_u8(vshrq_n_u8(v, 4));
                vaddvq_s32(sdot(
                    sdot(vdupq_n_s32(0), lo, ld_i8(y)),
                    hi,
                    ld_i8(&y[16..]),
                ))
            } - q4_0_offset(a, b);
            acc = (isum as f32).mul_add(f16_at(blk, 2 * lane) * a.d[b], acc);
        }
        acc
    }

    // ------------------------------------------------ Q4_K packed in groups of eight rows

    /// The packed Q4_K kernels (`pack.rs` layout); lanes as [`super::q4_k_packed_lane`].
    pub(super) const PACKED_Q4_K: PackedKernel = PackedKernel {
        dot8: q4_k_p8,
        dot8x4: q4_k_p8x4,
        lane: super::q4_k_packed_lane,
    };

    // Safe entry points: `kernel` hands these out only for `Simd::NeonDot`.
    fn q4_k_p8(g: &[u8], a: ActRow<'_>) -> [f32; PACK] {
        // SAFETY: as above.
        unsafe { q4_k_p8x_impl::<1>(g, &[a])[0] }
    }
    fn q4_k_p8x4(g: &[u8], a: &[ActRow<'_>; NT]) -> [[f32; PACK]; NT] {
        // SAFETY: as above.
        unsafe { q4_k_p8x_impl::<NT>(g, a) }
    }

    /// Half `h` (rows `4h..4h + 4`) of a packed Q4_K block's 6-bit scales and mins, unpacked
    /// with ggml's 32-bit masks in every lane: `[scales 0..4, scales 4..8, mins 0..4,
    /// mins 4..8]`, byte `j` of lane `l` holding row `4h + l`'s value.
    #[target_feature(enable = "neon,dotprod")]
    #[inline]
    unsafe fn q4_k_scales(blk: &[u8], h: usize) -> [uint32x4_t; 4] {
        debug_assert!(blk.len() >= Q4_K_QUANTS);
        // SAFETY: the scale words of rows 4h..4h + 4 lie within 32..128.
        let [u0, u1, u2] = std::array::from_fn(|w| unsafe {
            vreinterpretq_u32_u8(ld_u8(&blk[Q4_K_SCALES + 32 * w + 16 * h..]))
        });
        let (low6, low4, low2) = (
            vdupq_n_u32(0x3F3F_3F3F),
            vdupq_n_u32(0x0F0F_0F0F),
            vdupq_n_u32(0x0303_0303),
        );
        let top2 = |u: uint32x4_t| vshlq_n_u32::<4>(vandq_u32(vshrq_n_u32::<6>(u), low2));
        [
            vandq_u32(u0, low6),
            vorrq_u32(vandq_u32(u2, low4), top2(u0)),
            vandq_u32(u1, low6),
            vorrq_u32(vandq_u32(vshrq_n_u32::<4>(u2), low4), top2(u1)),
        ]
    }

    /// Byte `k` of every 32-bit lane of `v`, as an i32.
    #[target_feature(enable = "neon,dotprod")]
    #[inline]
    fn byte_of(v: uint32x4_t, k: usize) -> int32x4_t {
        let shifted = vshlq_u32(v, vdupq_n_s32(-8 * k as i32));
        vreinterpretq_s32_u32(vandq_u32(shifted, vdupq_n_u32(0xFF)))
    }

    /// Eight packed Q4_K rows against `T` activation rows; each lane computes what
    /// [`super::q4_k_packed_lane`] computes (`sdot` sums in 32 bits; exact integers).
    #[target_feature(enable = "neon,dotprod")]
    unsafe fn q4_k_p8x_impl<const T: usize>(g: &[u8], a: &[ActRow<'_>; T]) -> [[f32; PACK]; T] {
        let nb = a
            .iter()
            .fold(usize::MAX, |n, &r| n.min(super::packed_q4_k_blocks(g, r)));
        let zf = vdupq_n_f32(0.0);
        let mut acc = [[zf; 2]; T];
        let mut mins = [[zf; 2]; T];
        for b in 0..nb {
            let blk = &g[b * PACKED_Q4_K_BLOCK..(b + 1) * PACKED_Q4_K_BLOCK];
            // SAFETY: b < nb for every row: 256 activations at 256b; reads lie within `blk`.
            unsafe {
                let sc = [q4_k_scales(blk, 0), q4_k_scales(blk, 1)];
                let mut isum = [[vdupq_n_s32(0); 2]; T];
                for c in 0..4 {
                    let mut s = [[[vdupq_n_s32(0); 2]; 2]; T];
                    for e in 0..8 {
                        let at = Q4_K_QUANTS + 32 * (8 * c + e);
                        let q: [[int8x16_t; 2]; 2] = std::array::from_fn(|h| {
                            let v = ld_u8(&blk[at + 16 * h..]);
                            [
                                vreinterpretq_s8_u8(vandq_u8(v, vdupq_n_u8(0x0F))),
                                vreinterpretq_s8_u8(vshrq_n_u8(v, 4)),
                            ]
                        });
                        for t in 0..T {
                            let y = a[t].qs[QK_K * b + 64 * c + 4 * e..].as_ptr();
                            let ylo = vreinterpretq_s8_s32(vld1q_dup_s32(y as *const i32));
                            let yhi = vreinterpretq_s8_s32(vld1q_dup_s32(y.add(32) as *const i32));
                            for h in 0..2 {
                                s[t][h][0] = sdot(s[t][h][0], q[h][0], ylo);
                                s[t][h][1] = sdot(s[t][h][1], q[h][1], yhi);
                            }
                        }
                    }
                    let (w, k) = (c / 2, 2 * (c % 2));
                    for h in 0..2 {
                        let (f0, f1) = (byte_of(sc[h][w], k), byte_of(sc[h][w], k + 1));
                        for t in 0..T {
                            isum[t][h] = vmlaq_s32(isum[t][h], s[t][h][0], f0);
                            isum[t][h] = vmlaq_s32(isum[t][h], s[t][h][1], f1);
                        }
                    }
                }
                let d = f16x8(blk);
                let dm = f16x8(&blk[16..]);
                for t in 0..T {
                    let bs = &a[t].bsums[16 * b..16 * (b + 1)];
                    let da = a[t].d[8 * b];
                    for h in 0..2 {
                        let mut msum = vdupq_n_s32(0);
                        for j in 0..8 {
                            let sub = i32::from(bs[2 * j]) + i32::from(bs[2 * j + 1]);
                            let m = byte_of(sc[h][2 + j / 4], j % 4);
                            msum = vmlaq_n_s32(msum, m, sub);
                        }
                        let (dh, dmh) = if h == 0 { (d.0, dm.0) } else { (d.1, dm.1) };
                        acc[t][h] =
                            vfmaq_f32(acc[t][h], vcvtq_f32_s32(isum[t][h]), vmulq_n_f32(dh, da));
                        mins[t][h] =
                            vfmaq_f32(mins[t][h], vcvtq_f32_s32(msum), vmulq_n_f32(dmh, da));
                    }
                }
            }
        }
        std::array::from_fn(|t| {
            let v = (
                vsubq_f32(acc[t][0], mins[t][0]),
                vsubq_f32(acc[t][1], mins[t][1]),
            );
            // SAFETY: register-only stores into an array.
            unsafe { store8(v) }
        })
    }

    // ------------------------------------------------ Q6_K packed in groups of eight rows

    /// The packed Q6_K kernels (`pack.rs` layout); lanes as [`super::q6_k_packed_lane`].
    pub(super) const PACKED_Q6_K: PackedKernel = PackedKernel {
        dot8: q6_k_p8,
        dot8x4: q6_k_p8x4,
        lane: super::q6_k_packed_lane,
    };

    // Safe entry points: `kernel` hands these out only for `Simd::NeonDot`.
    fn q6_k_p8(g: &[u8], a: ActRow<'_>) -> [f32; PACK] {
        // SAFETY: as above.
        unsafe { q6_k_p8x_impl::<1>(g, &[a])[0] }
    }
    fn q6_k_p8x4(g: &[u8], a: &[ActRow<'_>; NT]) -> [[f32; PACK]; NT] {
        // SAFETY: as above.
        unsafe { q6_k_p8x_impl::<NT>(g, a) }
    }

    /// Signed byte `k` of every 32-bit lane of `v`, as an i32.
    #[target_feature(enable = "neon,dotprod")]
    #[inline]
    fn sbyte_of(v: uint32x4_t, k: usize) -> int32x4_t {
        let up = vshlq_s32(vreinterpretq_s32_u32(v), vdupq_n_s32(24 - 8 * k as i32));
        vshrq_n_s32::<24>(up)
    }

    /// Quarter `g` of half `n`, values `4e..4e + 4`, of rows `4h..4h + 4` of a packed Q6_K
    /// block as signed `q - 32`, row `4h + l` in lane `l`.
    #[target_feature(enable = "neon,dotprod")]
    #[inline]
    unsafe fn q6_k_quad(blk: &[u8], n: usize, g: usize, e: usize, h: usize) -> int8x16_t {
        // SAFETY: the half's ql word 8(g % 2) + e < 16 and qh word e < 8 lie within `blk`.
        let (ql, qh) = unsafe {
            (
                ld_u8(&blk[q6_k_half(n) + 32 * (8 * (g % 2) + e) + 16 * h..]),
                ld_u8(&blk[q6_k_half(n) + 32 * (16 + e) + 16 * h..]),
            )
        };
        let lo = if g < 2 {
            vandq_u8(ql, vdupq_n_u8(0x0F))
        } else {
            vshrq_n_u8::<4>(ql)
        };
        let hi = vandq_u8(vshlq_u8(qh, vdupq_n_s8(-2 * g as i8)), vdupq_n_u8(3));
        let q = vorrq_u8(lo, vshlq_n_u8::<4>(hi));
        vsubq_s8(vreinterpretq_s8_u8(q), vdupq_n_s8(32))
    }

    /// Eight packed Q6_K rows against `T` activation rows; each lane computes what
    /// [`super::q6_k_packed_lane`] computes (`q - 32` in int8, `sdot` sums in 32 bits).
    #[target_feature(enable = "neon,dotprod")]
    unsafe fn q6_k_p8x_impl<const T: usize>(g: &[u8], a: &[ActRow<'_>; T]) -> [[f32; PACK]; T] {
        let nb = a
            .iter()
            .fold(usize::MAX, |n, &r| n.min(super::packed_q6_k_blocks(g, r)));
        let zf = vdupq_n_f32(0.0);
        let mut acc = [[zf; 2]; T];
        for b in 0..nb {
            let blk = &g[b * PACKED_Q6_K_BLOCK..(b + 1) * PACKED_Q6_K_BLOCK];
            // SAFETY: b < nb for every row: 256 activations at 256b; reads lie within `blk`.
            unsafe {
                let sc: [[uint32x4_t; 4]; 2] = std::array::from_fn(|h| {
                    std::array::from_fn(|w| {
                        vreinterpretq_u32_u8(ld_u8(&blk[Q6_K_SCALES + 32 * w + 16 * h..]))
                    })
                });
                let mut isum = [[vdupq_n_s32(0); 2]; T];
                for n in 0..2 {
                    for q in 0..4 {
                        for sb in 0..2 {
                            let mut s = [[vdupq_n_s32(0); 2]; T];
                            for e in 4 * sb..4 * sb + 4 {
                                let v = [q6_k_quad(blk, n, q, e, 0), q6_k_quad(blk, n, q, e, 1)];
                                for t in 0..T {
                                    let y = a[t].qs[QK_K * b + 128 * n + 32 * q + 4 * e..].as_ptr();
                                    let y = vreinterpretq_s8_s32(vld1q_dup_s32(y as *const i32));
                                    s[t][0] = sdot(s[t][0], v[0], y);
                                    s[t][1] = sdot(s[t][1], v[1], y);
                                }
                            }
                            // Sub-block j = 8n + 2q + sb: scale byte j % 4 of word j / 4.
                            for h in 0..2 {
                                let f = sbyte_of(sc[h][2 * n + q / 2], 2 * (q % 2) + sb);
                                for t in 0..T {
                                    isum[t][h] = vmlaq_s32(isum[t][h], s[t][h], f);
                                }
                            }
                        }
                    }
                }
                let d = f16x8(blk);
                for t in 0..T {
                    let da = a[t].d[8 * b];
                    for (h, dh) in [d.0, d.1].into_iter().enumerate() {
                        acc[t][h] =
                            vfmaq_f32(acc[t][h], vcvtq_f32_s32(isum[t][h]), vmulq_n_f32(dh, da));
                    }
                }
            }
        }
        std::array::from_fn(|t| {
            // SAFETY: register-only stores into an array.
            unsafe { store8((acc[t][0], acc[t][1])) }
        })
    }

    #[target_feature(enable = "neon,dotprod")]
    unsafe fn q8_0_impl(w: &[u8], a: ActRow<'_>) -> f32 {
        let mut acc = vdupq_n_f32(0.0);
        for ((b, aq), &da) in w.chunks_exact(34).zip(a.qs.chunks_exact(QK)).zip(a.d) {
            // SAFETY: 32 quant bytes at 2..34, 32 activations.
            unsafe {
                let w0 = vreinterpretq_s8_u8(ld_u8(&b[2..]));
                let w1 = vreinterpretq_s8_u8(ld_u8(&b[18..]));
                let p = sdot(sdot(vdupq_n_s32(0), w0, ld_i8(aq)), w1, ld_i8(&aq[16..]));
                acc = vmlaq_n_f32(acc, vcvtq_f32_s32(p), f16_at(b, 0) * da);
            }
        }
        vaddvq_f32(acc)
    }

    #[target_feature(enable = "neon,dotprod")]
    unsafe fn q4_k_impl(w: &[u8], a: ActRow<'_>) -> f32 {
        let mut acc = vdupq_n_f32(0.0);
        let mut mins = 0f32;
        for (i, b) in w.chunks_exact(144).enumerate() {
            let Some(aq) = a.qs.get(QK_K * i..QK_K * (i + 1)) else {
                break;
            };
            let (sc, m) = scales_mins_k4(&b[4..16]);
            let mut s = vdupq_n_s32(0);
            for c in 0..4 {
                // SAFETY: 32 quant bytes at 16 + 32c, 64 activations at 64c.
                unsafe {
                    let (q0, q1) = (ld_u8(&b[16 + 32 * c..]), ld_u8(&b[32 + 32 * c..]));
                    let mask = vdupq_n_u8(0x0F);
                    let lo0 = vreinterpretq_s8_u8(vandq_u8(q0, mask));
                    let lo1 = vreinterpretq_s8_u8(vandq_u8(q1, mask));
                    let hi0 = vreinterpretq_s8_u8(vshrq_n_u8(q0, 4));
                    let hi1 = vreinterpretq_s8_u8(vshrq_n_u8(q1, 4));
                    let y = &aq[64 * c..];
                    let p_lo = sdot(sdot(vdupq_n_s32(0), lo0, ld_i8(y)), lo1, ld_i8(&y[16..]));
                    let p_hi = sdot(
                        sdot(vdupq_n_s32(0), hi0, ld_i8(&y[32..])),
                        hi1,
                        ld_i8(&y[48..]),
                    );
                    s = vmlaq_n_s32(s, p_lo, sc[2 * c] as i32);
                    s = vmlaq_n_s32(s, p_hi, sc[2 * c + 1] as i32);
                }
            }
            let da = a.d[8 * i];
            let ms = q4_k_min_sum(&m, &a.bsums[16 * i..16 * (i + 1)]);
            mins += f16_at(b, 2) * da * ms as f32;
            acc = vmlaq_n_f32(acc, vcvtq_f32_s32(s), f16_at(b, 0) * da);
        }
        vaddvq_f32(acc) - mins
    }

    #[target_feature(enable = "neon,dotprod")]
    unsafe fn q6_k_impl(w: &[u8], a: ActRow<'_>) -> f32 {
        let mut acc = vdupq_n_f32(0.0);
        for (i, b) in w.chunks_exact(210).enumerate() {
            let Some(aq) = a.qs.get(QK_K * i..QK_K * (i + 1)) else {
                break;
            };
            let mut s = vdupq_n_s32(0);
            for n in 0..2 {
                for h in 0..2 {
                    // SAFETY: ql at 64n + 16h (+32), qh at 128 + 32n + 16h, all < 192.
                    unsafe {
                        let ql0 = ld_u8(&b[64 * n + 16 * h..]);
                        let ql1 = ld_u8(&b[64 * n + 32 + 16 * h..]);
                        let qh = ld_u8(&b[128 + 32 * n + 16 * h..]);
                        let (m4, m2) = (vdupq_n_u8(0x0F), vdupq_n_u8(3));
                        let q = [
                            vorrq_u8(vandq_u8(ql0, m4), vshlq_n_u8(vandq_u8(qh, m2), 4)),
                            vorrq_u8(
                                vandq_u8(ql1, m4),
                                vshlq_n_u8(vandq_u8(vshrq_n_u8(qh, 2), m2), 4),
                            ),
                            vorrq_u8(
                                vshrq_n_u8(ql0, 4),
                                vshlq_n_u8(vandq_u8(vshrq_n_u8(qh, 4), m2), 4),
                            ),
                            vorrq_u8(vshrq_n_u8(ql1, 4), vshlq_n_u8(vshrq_n_u8(qh, 6), 4)),
                        ];
                        for (g, qg) in q.iter().enumerate() {
                            let v = vsubq_s8(vreinterpretq_s8_u8(*qg), vdupq_n_s8(32));
                            let y = ld_i8(&aq[128 * n + 32 * g + 16 * h..]);
                            let p = sdot(vdupq_n_s32(0), v, y);
                            let sc = b[192 + 8 * n + 2 * g + h] as i8 as i32;
                            s = vmlaq_n_s32(s, p, sc);
                        }
                    }
                }
            }
            acc = vmlaq_n_f32(acc, vcvtq_f32_s32(s), f16_at(b, 208) * a.d[8 * i]);
        }
        vaddvq_f32(acc)
    }
}
