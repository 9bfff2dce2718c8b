//! CPU dequantization, bit-exact with ggml's `dequantize_row_*`.
//!
//! Every block decoder evaluates the same f32 expressions in the same order as ggml's scalar
//! reference (e.g. Q4_K: `d1 = d * sc; m1 = dmin * m; y = d1 * q - m1`) and Rust never fuses
//! multiply-adds, so results are bit-identical to ggml built without FMA contraction (and to
//! gguf-py's numpy dequantizers). Block layouts: lfm2-spec.md §8.

use super::GgmlType;
use crate::error::{Error, Result};
use half::f16;
use half::slice::HalfFloatSliceExt;

/// Elements decoded at a time for the plain float types in [`dot_row`].
const PLAIN_CHUNK: usize = 64;
/// Independent accumulators of the dot product: enough lanes for LLVM to fill AVX-512 registers
/// and to hide add latency on narrower SIMD.
const LANES: usize = 16;

/// Dequantizes one row: `src` holds exactly `dst.len() / block_elems` blocks of type `ty`.
///
/// Errors: [`Error::UnsupportedType`] (with an empty tensor name, callers add context) for types
/// Hearth cannot decode, [`Error::InvalidArgument`] if `dst.len()` is not a whole number of
/// blocks or `src` is not exactly the bytes of those blocks.
pub fn dequantize_row(ty: GgmlType, src: &[u8], dst: &mut [f32]) -> Result<()> {
    ty.require_supported("")?;
    if ty.row_bytes(dst.len() as u64) != Some(src.len() as u64) {
        return Err(Error::InvalidArgument(format!(
            "{ty} row of {} elements needs {} bytes (whole blocks of {}), got {}",
            dst.len(),
            ty.row_bytes(dst.len() as u64)
                .map_or("an invalid number of".to_string(), |n| n.to_string()),
            ty.block_elems(),
            src.len()
        )));
    }
    match ty {
        GgmlType::F32 => plain(src, dst, 4, f32_chunk),
        GgmlType::F16 => plain(src, dst, 2, f16_chunk),
        GgmlType::BF16 => plain(src, dst, 2, bf16_chunk),
        GgmlType::Q4_0 => blocks(src, dst, q4_0),
        GgmlType::Q4_1 => blocks(src, dst, q4_1),
        GgmlType::Q5_0 => blocks(src, dst, q5_0),
        GgmlType::Q5_1 => blocks(src, dst, q5_1),
        GgmlType::Q8_0 => blocks(src, dst, q8_0),
        GgmlType::Q2_K => blocks(src, dst, q2_k),
        GgmlType::Q3_K => blocks(src, dst, q3_k),
        GgmlType::Q4_K => blocks(src, dst, q4_k),
        GgmlType::Q5_K => blocks(src, dst, q5_k),
        GgmlType::Q6_K => blocks(src, dst, q6_k),
        GgmlType::Other { .. } => unreachable!("rejected by require_supported"),
    }
    Ok(())
}

/// Dot product of one quantized row with `x`: equal, up to f32 summation order, to
/// dequantizing the row with [`dequantize_row`] and summing `w[i] * x[i]`.
///
/// This is the CPU matvec inner loop, so it does not validate: the caller guarantees that `ty`
/// is supported and `src` is exactly the bytes of `x.len()` elements (the model checks types
/// and shapes at load). Violations are caught by `debug_assert!`; in release builds they give a
/// meaningless result (0.0 for an unsupported type), never undefined behaviour.
pub fn dot_row(ty: GgmlType, src: &[u8], x: &[f32]) -> f32 {
    debug_assert_eq!(
        ty.row_bytes(x.len() as u64),
        Some(src.len() as u64),
        "dot_row: {ty} bytes do not match {} elements",
        x.len()
    );
    match ty {
        GgmlType::F32 => dot_plain(src, x, 4, f32_chunk),
        GgmlType::F16 => dot_plain(src, x, 2, f16_chunk),
        GgmlType::BF16 => dot_plain(src, x, 2, bf16_chunk),
        GgmlType::Q4_0 => dot_blocks(src, x, q4_0),
        GgmlType::Q4_1 => dot_blocks(src, x, q4_1),
        GgmlType::Q5_0 => dot_blocks(src, x, q5_0),
        GgmlType::Q5_1 => dot_blocks(src, x, q5_1),
        GgmlType::Q8_0 => dot_blocks(src, x, q8_0),
        GgmlType::Q2_K => dot_blocks(src, x, q2_k),
        GgmlType::Q3_K => dot_blocks(src, x, q3_k),
        GgmlType::Q4_K => dot_blocks(src, x, q4_k),
        GgmlType::Q5_K => dot_blocks(src, x, q5_k),
        GgmlType::Q6_K => dot_blocks(src, x, q6_k),
        GgmlType::Other { .. } => {
            debug_assert!(false, "dot_row on unsupported type {ty}");
            0.0
        }
    }
}

// ---------------------------------------------------------------- row drivers

/// Plain float types, `width` bytes per element, decoded `PLAIN_CHUNK` elements at a time.
fn plain(src: &[u8], dst: &mut [f32], width: usize, decode: fn(&[u8], &mut [f32])) {
    for (b, y) in src
        .chunks(width * PLAIN_CHUNK)
        .zip(dst.chunks_mut(PLAIN_CHUNK))
    {
        decode(b, y);
    }
}

/// Decodes whole blocks; the fixed-size arrays let LLVM drop bounds checks and vectorize.
///
/// Kept out of line (one instance per block size, each with its decoder inlined): inlined into
/// `dequantize_row`'s big `match`, several decoders lost their vectorization (up to 5x slower).
#[inline(never)]
fn blocks<const B: usize, const E: usize>(
    src: &[u8],
    dst: &mut [f32],
    decode: fn(&[u8; B], &mut [f32; E]),
) {
    for (b, y) in src.chunks_exact(B).zip(dst.chunks_exact_mut(E)) {
        decode(b.try_into().unwrap(), y.try_into().unwrap());
    }
}

/// Decodes each block into a stack buffer and accumulates it against `x`: no allocation, one
/// block of L1 traffic, and the decode and the dot loops both vectorize.
///
/// Inlined into each `match` arm of [`dot_row`], where `decode` is a constant and the
/// `#[inline(always)]` decoder is inlined into the loop: an out-of-line call per block would
/// spill the SIMD accumulators every time.
#[inline(always)]
fn dot_blocks<const B: usize, const E: usize>(
    src: &[u8],
    x: &[f32],
    decode: fn(&[u8; B], &mut [f32; E]),
) -> f32 {
    let mut acc = [0f32; LANES];
    let mut buf = [0f32; E];
    for (b, xs) in src.chunks_exact(B).zip(x.chunks_exact(E)) {
        decode(b.try_into().unwrap(), &mut buf);
        accumulate(&mut acc, &buf, xs.try_into().unwrap());
    }
    reduce(acc)
}

/// [`dot_blocks`] for the plain types, plus a short tail (any row length is valid).
#[inline(always)]
fn dot_plain(src: &[u8], x: &[f32], width: usize, decode: fn(&[u8], &mut [f32])) -> f32 {
    let mut acc = [0f32; LANES];
    let mut buf = [0f32; PLAIN_CHUNK];
    let src_chunks = src.chunks_exact(width * PLAIN_CHUNK);
    let x_chunks = x.chunks_exact(PLAIN_CHUNK);
    let (src_tail, x_tail) = (src_chunks.remainder(), x_chunks.remainder());
    for (b, xs) in src_chunks.zip(x_chunks) {
        decode(b, &mut buf);
        accumulate(&mut acc, &buf, xs.try_into().unwrap());
    }
    let w = &mut buf[..x_tail.len()];
    decode(src_tail, w);
    reduce(acc) + w.iter().zip(x_tail).map(|(w, x)| w * x).sum::<f32>()
}

/// `acc[k] += w[i] * x[i]` for `i % LANES == k`; the compile-time length lets LLVM unroll it
/// into whole SIMD registers.
#[inline(always)]
fn accumulate<const E: usize>(acc: &mut [f32; LANES], w: &[f32; E], x: &[f32; E]) {
    for i in (0..E).step_by(LANES) {
        for k in 0..LANES {
            acc[k] += w[i + k] * x[i + k];
        }
    }
}

/// Sums the lanes. Deliberately a plain sequential sum: a pairwise tree here made LLVM's SLP
/// vectorizer split the accumulators into 2-wide vectors for the whole loop (3x slower).
fn reduce(acc: [f32; LANES]) -> f32 {
    acc.iter().sum()
}

// ---------------------------------------------------------------- plain types

#[inline(always)]
fn f32_chunk(src: &[u8], dst: &mut [f32]) {
    for (y, b) in dst.iter_mut().zip(src.chunks_exact(4)) {
        *y = f32::from_le_bytes([b[0], b[1], b[2], b[3]]);
    }
}

/// bf16 is the top half of an f32: exact, NaN payloads included.
#[inline(always)]
fn bf16_chunk(src: &[u8], dst: &mut [f32]) {
    for (y, b) in dst.iter_mut().zip(src.chunks_exact(2)) {
        *y = f32::from_bits(u32::from(u16::from_le_bytes([b[0], b[1]])) << 16);
    }
}

/// F16 through half's slice conversion, which uses F16C/NEON when the CPU has it (detected at
/// run time); the scalar `to_f32` pays that detection on every element (6x slower).
#[inline(always)]
fn f16_chunk(src: &[u8], dst: &mut [f32]) {
    let mut h = [f16::ZERO; PLAIN_CHUNK];
    let h = &mut h[..dst.len()];
    for (h, b) in h.iter_mut().zip(src.chunks_exact(2)) {
        *h = f16::from_bits(u16::from_le_bytes([b[0], b[1]]));
    }
    h.convert_to_f32_slice(dst);
}

// ---------------------------------------------------------------- block scales

/// A little-endian f16 block scale, converted exactly without `half`: its scalar `to_f32`
/// checks the CPU for F16C and calls out of line on every value, which cost up to a third of
/// the Q4_0 dot product. Shifting the exponent and mantissa into place and scaling by 2^112
/// rebiases normals and subnormals alike, exactly (in the default FP environment, i.e. without
/// denormals-are-zero); inf/NaN keep an all-ones exponent.
#[inline(always)]
pub(crate) fn f16_at(b: &[u8], at: usize) -> f32 {
    let h = u32::from(u16::from_le_bytes([b[at], b[at + 1]]));
    let (sign, em) = ((h & 0x8000) << 16, h & 0x7FFF);
    let bits = if em >= 0x7C00 {
        0x7F80_0000 | ((em & 0x3FF) << 13)
    } else {
        (f32::from_bits(em << 13) * f32::from_bits(0x7780_0000)).to_bits()
    };
    f32::from_bits(sign | bits)
}

/// 6-bit scale and min of sub-block `j` of a Q4_K/Q5_K `scales[12]` (ggml `get_scale_min_k4`).
#[inline(always)]
pub(crate) fn scale_min_k4(j: usize, s: &[u8]) -> (u8, u8) {
    if j < 4 {
        (s[j] & 63, s[j + 4] & 63)
    } else {
        (
            (s[j + 4] & 0xF) | ((s[j - 4] >> 6) << 4),
            (s[j + 4] >> 4) | ((s[j] >> 6) << 4),
        )
    }
}

// ---------------------------------------------------------------- 32-element blocks

/// Q4_0: `d` f16, `qs[16]`; low nibbles are elements 0..16, high nibbles 16..32.
#[inline(always)]
fn q4_0(b: &[u8; 18], y: &mut [f32; 32]) {
    let d = f16_at(b, 0);
    let qs = &b[2..18];
    for j in 0..16 {
        y[j] = ((qs[j] & 0xF) as i32 - 8) as f32 * d;
        y[j + 16] = ((qs[j] >> 4) as i32 - 8) as f32 * d;
    }
}

/// Q4_1: `d`, `m` f16, `qs[16]`; value `q * d + m`.
#[inline(always)]
fn q4_1(b: &[u8; 20], y: &mut [f32; 32]) {
    let (d, m) = (f16_at(b, 0), f16_at(b, 2));
    let qs = &b[4..20];
    for j in 0..16 {
        y[j] = (qs[j] & 0xF) as f32 * d + m;
        y[j + 16] = (qs[j] >> 4) as f32 * d + m;
    }
}

/// The 5-bit quants of Q5_0/Q5_1: bit `i` of the little-endian `qh` is the 5th bit of element i.
#[inline(always)]
fn q5_values(qh: &[u8], qs: &[u8]) -> [u8; 32] {
    let qh = u32::from_le_bytes([qh[0], qh[1], qh[2], qh[3]]);
    // `qh & (1 << i)` (not `qh >> i`): constant masks vectorize, per-lane shifts do not on SSE2.
    let high = |i: usize| if qh & (1 << i) != 0 { 16 } else { 0 };
    let mut q = [0u8; 32];
    for j in 0..16 {
        q[j] = (qs[j] & 0xF) | high(j);
        q[j + 16] = (qs[j] >> 4) | high(j + 16);
    }
    q
}

/// Q5_0: `d` f16, `qh` u32, `qs[16]`; value `(q - 16) * d`.
#[inline(always)]
fn q5_0(b: &[u8; 22], y: &mut [f32; 32]) {
    let d = f16_at(b, 0);
    for (y, q) in y.iter_mut().zip(q5_values(&b[2..6], &b[6..22])) {
        *y = (q as i32 - 16) as f32 * d;
    }
}

/// Q5_1: `d`, `m` f16, `qh` u32, `qs[16]`; value `q * d + m`.
#[inline(always)]
fn q5_1(b: &[u8; 24], y: &mut [f32; 32]) {
    let (d, m) = (f16_at(b, 0), f16_at(b, 2));
    for (y, q) in y.iter_mut().zip(q5_values(&b[4..8], &b[8..24])) {
        *y = q as f32 * d + m;
    }
}

/// Q8_0: `d` f16, `qs[32]` int8; value `q * d`.
#[inline(always)]
fn q8_0(b: &[u8; 34], y: &mut [f32; 32]) {
    let d = f16_at(b, 0);
    for (y, &q) in y.iter_mut().zip(&b[2..34]) {
        *y = q as i8 as f32 * d;
    }
}

// ---------------------------------------------------------------- 256-element super-blocks

/// Q2_K: `scales[16]` (low nibble scale, high nibble min), `qs[64]` 2-bit, `d`, `dmin` f16.
/// Element `128n + 32j + l` is bits `2j..2j+2` of `qs[32n + l]`; sub-block of 16 = element / 16.
#[inline(always)]
fn q2_k(b: &[u8; 84], y: &mut [f32; 256]) {
    let (scales, qs) = (&b[0..16], &b[16..80]);
    let (d, dmin) = (f16_at(b, 80), f16_at(b, 82));
    for (s, (y, &sc)) in y.chunks_exact_mut(16).zip(scales).enumerate() {
        let dl = d * (sc & 0xF) as f32;
        let ml = dmin * (sc >> 4) as f32;
        let (n, j, half) = (s / 8, (s / 2) % 4, s % 2);
        let q = &qs[32 * n + 16 * half..][..16];
        for (y, &q) in y.iter_mut().zip(q) {
            *y = dl * ((q >> (2 * j)) & 3) as f32 - ml;
        }
    }
}

/// Signed 6-bit scale `s` of a Q3_K `scales[12]`: low nibbles in bytes 0..8, 2-bit highs in 8..12.
#[inline(always)]
fn q3_k_scale(s: usize, sc: &[u8]) -> i32 {
    let low = if s < 8 { sc[s] & 0xF } else { sc[s - 8] >> 4 };
    let high = (sc[8 + s % 4] >> (2 * (s / 4))) & 3;
    (low | (high << 4)) as i32 - 32
}

/// Q3_K: `hmask[32]`, `qs[64]` 2-bit, `scales[12]`, `d` f16. Element `128n + 32j + l`: low bits
/// `2j..2j+2` of `qs[32n + l]`, high bit `4n + j` of `hmask[l]`; value `d*sc * (q - (h ? 0 : 4))`.
#[inline(always)]
fn q3_k(b: &[u8; 110], y: &mut [f32; 256]) {
    let (hmask, qs, scales) = (&b[0..32], &b[32..96], &b[96..108]);
    let d = f16_at(b, 108);
    for (s, y) in y.chunks_exact_mut(16).enumerate() {
        let dl = d * q3_k_scale(s, scales) as f32;
        let (n, j, half) = (s / 8, (s / 2) % 4, s % 2);
        let q = &qs[32 * n + 16 * half..][..16];
        let h = &hmask[16 * half..][..16];
        let bit = 1u8 << (4 * n + j);
        for ((y, &q), &h) in y.iter_mut().zip(q).zip(h) {
            let q = ((q >> (2 * j)) & 3) as i32 - if h & bit != 0 { 0 } else { 4 };
            *y = dl * q as f32;
        }
    }
}

/// Q4_K: `d`, `dmin` f16, `scales[12]` (6-bit scale/min pairs), `qs[128]`. Chunk `c` of 64:
/// low nibbles of `qs[32c..]` use pair `2c`, high nibbles pair `2c + 1`.
#[inline(always)]
fn q4_k(b: &[u8; 144], y: &mut [f32; 256]) {
    let (d, dmin) = (f16_at(b, 0), f16_at(b, 2));
    let (scales, qs) = (&b[4..16], &b[16..144]);
    for (c, (y, q)) in y.chunks_exact_mut(64).zip(qs.chunks_exact(32)).enumerate() {
        let (y_lo, y_hi) = y.split_at_mut(32);
        let (sc, m) = scale_min_k4(2 * c, scales);
        let (d1, m1) = (d * sc as f32, dmin * m as f32);
        let (sc, m) = scale_min_k4(2 * c + 1, scales);
        let (d2, m2) = (d * sc as f32, dmin * m as f32);
        for ((lo, hi), &q) in y_lo.iter_mut().zip(y_hi).zip(q) {
            *lo = d1 * (q & 0xF) as f32 - m1;
            *hi = d2 * (q >> 4) as f32 - m2;
        }
    }
}

/// Q5_K: like Q4_K plus `qh[32]` at byte 16 (`qs` at 48): chunk `c`'s 5th bits are bits `2c`
/// (low half) and `2c + 1` (high half) of `qh[l]`.
#[inline(always)]
fn q5_k(b: &[u8; 176], y: &mut [f32; 256]) {
    let (d, dmin) = (f16_at(b, 0), f16_at(b, 2));
    let (scales, qh, qs) = (&b[4..16], &b[16..48], &b[48..176]);
    for (c, (y, ql)) in y.chunks_exact_mut(64).zip(qs.chunks_exact(32)).enumerate() {
        let (y_lo, y_hi) = y.split_at_mut(32);
        let (sc, m) = scale_min_k4(2 * c, scales);
        let (d1, m1) = (d * sc as f32, dmin * m as f32);
        let (sc, m) = scale_min_k4(2 * c + 1, scales);
        let (d2, m2) = (d * sc as f32, dmin * m as f32);
        let (u1, u2) = (1u8 << (2 * c), 2u8 << (2 * c));
        for (((lo, hi), &q), &h) in y_lo.iter_mut().zip(y_hi).zip(ql).zip(qh) {
            let q_lo = (q & 0xF) + if h & u1 != 0 { 16 } else { 0 };
            let q_hi = (q >> 4) + if h & u2 != 0 { 16 } else { 0 };
            *lo = d1 * q_lo as f32 - m1;
            *hi = d2 * q_hi as f32 - m2;
        }
    }
}

/// Q6_K: `ql[128]` low nibbles, `qh[64]` 2-bit highs, `scales[16]` int8, `d` f16.
/// Half `n` (128 elements), lane `l` in 0..32: `ql[64n + l]` holds quarters 0 (low nibble) and
/// 2 (high), `ql[64n + 32 + l]` quarters 1 and 3, `qh[32n + l]` their high bits `2g..2g+2`;
/// value `d * sc * (q - 32)` with scale `i / 16`.
#[inline(always)]
fn q6_k(b: &[u8; 210], y: &mut [f32; 256]) {
    let d = f16_at(b, 208);
    for n in 0..2 {
        let (ql, qh, sc) = (
            &b[64 * n..][..64],
            &b[128 + 32 * n..][..32],
            &b[192 + 8 * n..][..8],
        );
        let y = &mut y[128 * n..][..128];
        for half in 0..2 {
            let dl: [f32; 4] = std::array::from_fn(|g| d * (sc[half + 2 * g] as i8) as f32);
            for l in 16 * half..16 * half + 16 {
                let (a, c, h) = (ql[l], ql[l + 32], qh[l]);
                let q = [
                    (a & 0xF) | ((h & 3) << 4),
                    (c & 0xF) | (((h >> 2) & 3) << 4),
                    (a >> 4) | (((h >> 4) & 3) << 4),
                    (c >> 4) | ((h >> 6) << 4),
                ];
                for g in 0..4 {
                    y[l + 32 * g] = dl[g] * (q[g] as i32 - 32) as f32;
                }
            }
        }
    }
}
