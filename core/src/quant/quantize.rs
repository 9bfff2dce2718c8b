//! Reference quantizers (ggml's `quantize_row_*_ref`), for tests and synthetic bench models.
//!
//! Same algorithms and the same f32 operation order as ggml's scalar reference code (no fused
//! multiply-adds), so the bytes match ggml built without FMA contraction (x86-64 baseline).
//! Inputs whose length is not a multiple of the block size get a zero-padded last block.

use half::f16;

use super::GgmlType;

const QK: usize = 32;
const QK_K: usize = 256;
/// ggml's `GROUP_MAX_EPS`: a group whose largest |x| is below this is treated as all zeros.
const GROUP_MAX_EPS: f32 = 1e-15;

/// Quantizes `src` (a multiple of 32 values; a shorter last block is zero-padded) to Q4_0 blocks.
pub fn quantize_q4_0(src: &[f32]) -> Vec<u8> {
    quantize_blocks(src, q4_0_block)
}

/// Quantizes `src` (a multiple of 32 values; a shorter last block is zero-padded) to Q8_0 blocks.
pub fn quantize_q8_0(src: &[f32]) -> Vec<u8> {
    quantize_blocks(src, q8_0_block)
}

/// Quantizes `src` (a multiple of 256 values; a shorter last block is zero-padded) to Q4_K
/// super-blocks.
pub fn quantize_q4_k(src: &[f32]) -> Vec<u8> {
    quantize_blocks(src, q4_k_block)
}

/// Quantizes `src` (a multiple of 256 values; a shorter last block is zero-padded) to Q6_K
/// super-blocks.
pub fn quantize_q6_k(src: &[f32]) -> Vec<u8> {
    quantize_blocks(src, q6_k_block)
}

fn quantize_blocks<const E: usize, const B: usize>(
    src: &[f32],
    block: impl Fn(&[f32; E]) -> [u8; B],
) -> Vec<u8> {
    let mut out = Vec::with_capacity(src.len().div_ceil(E) * B);
    for chunk in src.chunks(E) {
        let mut x = [0f32; E];
        x[..chunk.len()].copy_from_slice(chunk);
        out.extend_from_slice(&block(&x));
    }
    out
}

/// ggml's `nearest_int`: round half to even via the 1.5 * 2^23 trick (valid for |v| < 2^22;
/// kept verbatim so out-of-range inputs wrap exactly like ggml's).
fn nearest_int(v: f32) -> i32 {
    ((v + 12_582_912.0).to_bits() & 0x007f_ffff) as i32 - 0x0040_0000
}

fn f16_bytes(v: f32) -> [u8; 2] {
    f16::from_f32(v).to_bits().to_le_bytes()
}

/// The f32 value a scale has after being stored as f16 (ggml re-reads `y.d` when requantizing).
fn f16_round(v: f32) -> f32 {
    f16::from_f32(v).to_f32()
}

/// First element with the largest magnitude, sign kept (ggml's "max" scan with a strict `<`).
fn signed_absmax(x: &[f32]) -> f32 {
    let (mut amax, mut max) = (0f32, 0f32);
    for &v in x {
        if amax < v.abs() {
            amax = v.abs();
            max = v;
        }
    }
    max
}

// ---------------------------------------------------------------- 32-element blocks

/// `d = max / -8` so the largest-magnitude value maps exactly to quant 0 (value -8 d).
fn q4_0_block(x: &[f32; QK]) -> [u8; 18] {
    let d = signed_absmax(x) / -8.0;
    let id = if d != 0.0 { 1.0 / d } else { 0.0 };
    let q = |v: f32| ((v * id + 8.5) as i8).min(15) as u8;
    let mut out = [0u8; 18];
    out[..2].copy_from_slice(&f16_bytes(d));
    for j in 0..QK / 2 {
        out[2 + j] = q(x[j]) | (q(x[j + QK / 2]) << 4);
    }
    out
}

fn q8_0_block(x: &[f32; QK]) -> [u8; 34] {
    let amax = x.iter().fold(0f32, |a, v| a.max(v.abs()));
    let d = amax / 127.0;
    let id = if d != 0.0 { 1.0 / d } else { 0.0 };
    let mut out = [0u8; 34];
    out[..2].copy_from_slice(&f16_bytes(d));
    for (o, &v) in out[2..].iter_mut().zip(x) {
        // `roundf`: half away from zero, like Rust's `round`.
        *o = (v * id).round() as i8 as u8;
    }
    out
}

// ---------------------------------------------------------------- Q4_K

/// ggml `quantize_row_q4_K_ref`: per 32-element sub-block an asymmetric (scale, min) fit by
/// `make_qkx2_quants`, both quantized to 6 bits against the super-block maxima, then every
/// value is requantized with the stored (rounded) scales.
fn q4_k_block(x: &[f32; QK_K]) -> [u8; 144] {
    let mut l = [0u8; QK_K];
    let mut scales = [0f32; 8];
    let mut mins = [0f32; 8];
    let (mut max_scale, mut max_min) = (0f32, 0f32);
    for (j, (xs, ls)) in x.chunks_exact(32).zip(l.chunks_exact_mut(32)).enumerate() {
        let sum_x2 = xs.iter().fold(0f32, |s, &v| s + v * v);
        let av_x = (sum_x2 / 32.0).sqrt();
        let weights: [f32; 32] = std::array::from_fn(|i| av_x + xs[i].abs());
        (scales[j], mins[j]) = make_qkx2_quants(15, xs, &weights, ls, -1.0, 0.1, 20);
        max_scale = if scales[j] > max_scale {
            scales[j]
        } else {
            max_scale
        };
        max_min = if mins[j] > max_min { mins[j] } else { max_min };
    }

    let mut out = [0u8; 144];
    let inv_scale = if max_scale > 0.0 {
        63.0 / max_scale
    } else {
        0.0
    };
    let inv_min = if max_min > 0.0 { 63.0 / max_min } else { 0.0 };
    let packed = &mut out[4..16];
    for j in 0..8 {
        // ggml stores nearest_int into a uint8_t before clamping: keep the wrap-around.
        let ls = (nearest_int(inv_scale * scales[j]) as u8).min(63);
        let lm = (nearest_int(inv_min * mins[j]) as u8).min(63);
        if j < 4 {
            packed[j] = ls;
            packed[j + 4] = lm;
        } else {
            packed[j + 4] = (ls & 0xF) | ((lm & 0xF) << 4);
            packed[j - 4] |= (ls >> 4) << 6;
            packed[j] |= (lm >> 4) << 6;
        }
    }
    out[0..2].copy_from_slice(&f16_bytes(max_scale / 63.0));
    out[2..4].copy_from_slice(&f16_bytes(max_min / 63.0));

    let (d, dmin) = (f16_round(max_scale / 63.0), f16_round(max_min / 63.0));
    for (j, (xs, ls)) in x.chunks_exact(32).zip(l.chunks_exact_mut(32)).enumerate() {
        let (sc, m) = scale_min_k4(j, &out[4..16]);
        let d = d * sc as f32;
        if d == 0.0 {
            continue; // ggml keeps make_qkx2_quants' levels here
        }
        let dm = dmin * m as f32;
        for (l, &v) in ls.iter_mut().zip(xs) {
            *l = nearest_int((v + dm) / d).clamp(0, 15) as u8;
        }
    }
    for (q, ls) in out[16..].chunks_exact_mut(32).zip(l.chunks_exact(64)) {
        for i in 0..32 {
            q[i] = ls[i] | (ls[i + 32] << 4);
        }
    }
    out
}

/// Same unpacking as the Q4_K dequantizer (ggml `get_scale_min_k4`).
fn scale_min_k4(j: usize, s: &[u8]) -> (u8, u8) {
    if j < 4 {
        (s[j] & 63, s[j + 4] & 63)
    } else {
        (
            (s[j + 4] & 0xF) | ((s[j - 4] >> 6) << 4),
            (s[j + 4] >> 4) | ((s[j] >> 6) << 4),
        )
    }
}

/// ggml `make_qkx2_quants` (squared error, no MAD): fits `x ≈ scale * l + min` with
/// `l` in `0..=nmax` and `min <= 0`, searching `nstep + 1` candidate inverse scales around
/// `nmax / (max - min)` and solving weighted least squares for each. Writes the levels to `l`
/// and returns `(scale, -min)`.
fn make_qkx2_quants(
    nmax: i32,
    x: &[f32],
    w: &[f32],
    l: &mut [u8],
    rmin: f32,
    rdelta: f32,
    nstep: i32,
) -> (f32, f32) {
    let (mut min, mut max) = (x[0], x[0]);
    let mut sum_w = w[0];
    let mut sum_x = sum_w * x[0];
    for (&xi, &wi) in x.iter().zip(w).skip(1) {
        min = if xi < min { xi } else { min };
        max = if xi > max { xi } else { max };
        sum_w += wi;
        sum_x += wi * xi;
    }
    if min > 0.0 {
        min = 0.0;
    }
    if max == min {
        l.fill(0);
        return (0.0, -min);
    }
    let level =
        |iscale: f32, min: f32, v: f32| nearest_int(iscale * (v - min)).clamp(0, nmax) as u8;

    let mut iscale = nmax as f32 / (max - min);
    let mut scale = 1.0 / iscale;
    let mut best_error = 0f32;
    for ((li, &xi), &wi) in l.iter_mut().zip(x).zip(w) {
        *li = level(iscale, min, xi);
        let diff = scale * *li as f32 + min - xi;
        best_error += wi * (diff * diff);
    }

    let mut laux = [0u8; 32];
    let laux = &mut laux[..x.len()];
    for is in 0..=nstep {
        iscale = (rmin + rdelta * is as f32 + nmax as f32) / (max - min);
        let (mut sum_l, mut sum_l2, mut sum_xl) = (0f32, 0f32, 0f32);
        for ((la, &xi), &wi) in laux.iter_mut().zip(x).zip(w) {
            *la = level(iscale, min, xi);
            let lf = *la as f32;
            sum_l += wi * lf;
            sum_l2 += wi * lf * lf;
            sum_xl += wi * lf * xi;
        }
        let Some((this_scale, this_min)) = fit_scale_min(sum_w, sum_x, sum_l, sum_l2, sum_xl)
        else {
            continue;
        };
        let mut cur_error = 0f32;
        for ((&la, &xi), &wi) in laux.iter().zip(x).zip(w) {
            let diff = this_scale * la as f32 + this_min - xi;
            cur_error += wi * (diff * diff);
        }
        if cur_error < best_error {
            l.copy_from_slice(laux);
            best_error = cur_error;
            scale = this_scale;
            min = this_min;
        }
    }
    (scale, -min)
}

/// Weighted least-squares `x ≈ scale * l + min` from the sums, with `min` clamped to <= 0;
/// `None` when the system is singular (ggml's `if (D > 0)`, which also rejects NaN).
fn fit_scale_min(
    sum_w: f32,
    sum_x: f32,
    sum_l: f32,
    sum_l2: f32,
    sum_xl: f32,
) -> Option<(f32, f32)> {
    let det = sum_w * sum_l2 - sum_l * sum_l;
    (det > 0.0).then(|| {
        let min = (sum_l2 * sum_x - sum_l * sum_xl) / det;
        if min > 0.0 {
            (sum_xl / sum_l2, 0.0)
        } else {
            ((sum_w * sum_xl - sum_x * sum_l) / det, min)
        }
    })
}

// ---------------------------------------------------------------- Q6_K

/// ggml `quantize_row_q6_K_ref`: per 16-element sub-block a symmetric scale from
/// `make_qx_quants`, scales quantized to int8 against the largest, then requantization.
fn q6_k_block(x: &[f32; QK_K]) -> [u8; 210] {
    let mut l = [0u8; QK_K];
    let mut scales = [0f32; 16];
    let (mut max_scale, mut max_abs_scale) = (0f32, 0f32);
    for (ib, (xs, ls)) in x.chunks_exact(16).zip(l.chunks_exact_mut(16)).enumerate() {
        scales[ib] = make_qx_quants(32, xs, ls);
        if scales[ib].abs() > max_abs_scale {
            max_abs_scale = scales[ib].abs();
            max_scale = scales[ib];
        }
    }
    let mut out = [0u8; 210];
    if max_abs_scale < GROUP_MAX_EPS {
        return out; // all zeros, d = +0
    }

    let iscale = -128.0 / max_scale;
    out[208..210].copy_from_slice(&f16_bytes(1.0 / iscale));
    for (o, &s) in out[192..208].iter_mut().zip(&scales) {
        *o = nearest_int(iscale * s).min(127) as i8 as u8;
    }
    let d = f16_round(1.0 / iscale);
    for (j, (xs, ls)) in x.chunks_exact(16).zip(l.chunks_exact_mut(16)).enumerate() {
        let dj = d * (out[192 + j] as i8) as f32;
        if dj == 0.0 {
            continue; // ggml keeps make_qx_quants' levels here
        }
        for (li, &v) in ls.iter_mut().zip(xs) {
            *li = (nearest_int(v / dj).clamp(-32, 31) + 32) as u8;
        }
    }
    pack_q6_k(&l, &mut out);
    out
}

/// Splits 6-bit levels into `ql` (low nibbles, two quarters per byte) and `qh` (2 bits x 4).
fn pack_q6_k(l: &[u8; QK_K], out: &mut [u8; 210]) {
    let (ql, rest) = out.split_at_mut(128);
    let qh = &mut rest[..64];
    for ((ql, qh), l) in ql
        .chunks_exact_mut(64)
        .zip(qh.chunks_exact_mut(32))
        .zip(l.chunks_exact(128))
    {
        for i in 0..32 {
            let [a, b, c, d] = [l[i], l[i + 32], l[i + 64], l[i + 96]];
            ql[i] = (a & 0xF) | ((c & 0xF) << 4);
            ql[i + 32] = (b & 0xF) | ((d & 0xF) << 4);
            qh[i] = (a >> 4) | ((b >> 4) << 2) | ((c >> 4) << 4) | ((d >> 4) << 6);
        }
    }
}

/// ggml `make_qx_quants` with `rmse_type = 1` and no importance weights: symmetric levels
/// `l` in `-nmax..nmax` (stored `+ nmax`), trying 19 inverse scales around `-nmax / max` and
/// keeping the one with the best x²-weighted least-squares fit. Returns the scale.
fn make_qx_quants(nmax: i32, x: &[f32], l: &mut [u8]) -> f32 {
    let max = signed_absmax(x);
    if max.abs() < GROUP_MAX_EPS {
        l.fill(0);
        return 0.0;
    }
    let level = |iscale: f32, v: f32| nearest_int(iscale * v).clamp(-nmax, nmax - 1);
    let sums = |iscale: f32| {
        x.iter().fold((0f32, 0f32), |(sumlx, suml2), &v| {
            let (w, lf) = (v * v, level(iscale, v) as f32);
            (sumlx + w * v * lf, suml2 + w * lf * lf)
        })
    };
    let store = |l: &mut [u8], iscale: f32| {
        for (li, &v) in l.iter_mut().zip(x) {
            *li = (level(iscale, v) + nmax) as u8;
        }
    };

    let iscale = -(nmax as f32) / max;
    store(l, iscale);
    let (sumlx, suml2) = sums(iscale);
    let mut scale = if suml2 != 0.0 { sumlx / suml2 } else { 0.0 };
    let mut best = scale * sumlx;
    for is in (-9..=9).filter(|&is| is != 0) {
        let iscale = -(nmax as f32 + 0.1 * is as f32) / max;
        let (sumlx, suml2) = sums(iscale);
        if suml2 > 0.0 && sumlx * sumlx > best * suml2 {
            store(l, iscale);
            scale = sumlx / suml2;
            best = scale * sumlx;
        }
    }
    scale
}

/// Encodes f32 values as `ty` with the reference quantizers (tests, synthetic models).
///
/// Panics on a type without a reference quantizer (a programming error, never user input).
pub fn quantize(ty: GgmlType, v: &[f32]) -> Vec<u8> {
    match ty {
        GgmlType::F32 => v.iter().flat_map(|x| x.to_le_bytes()).collect(),
        GgmlType::F16 => v
            .iter()
            .flat_map(|&x| half::f16::from_f32(x).to_le_bytes())
            .collect(),
        GgmlType::BF16 => v
            .iter()
            .flat_map(|&x| half::bf16::from_f32(x).to_le_bytes())
            .collect(),
        GgmlType::Q8_0 => quantize_q8_0(v),
        GgmlType::Q4_0 => quantize_q4_0(v),
        GgmlType::Q4_K => quantize_q4_k(v),
        GgmlType::Q6_K => quantize_q6_k(v),
        other => panic!("no reference quantizer for {other}"),
    }
}
