//! ggml block formats: bit-exact dequantization, dot products and reference quantizers,
//! checked against golden vectors from gguf-py, ggml and llama.cpp (tests/quant_vectors/).

use hearth::Error;
use hearth::quant::{
    GgmlType, dequantize_row, dot_row, quantize_q4_0, quantize_q4_k, quantize_q6_k, quantize_q8_0,
};

const ALL: [GgmlType; 13] = GgmlType::SUPPORTED;

/// A golden vector file: block bytes and f32 values (see quant_vectors/README.md).
struct Vector {
    ty: GgmlType,
    bytes: Vec<u8>,
    floats: Vec<f32>,
}

fn load(name: &str) -> Vector {
    let path = format!("{}/tests/quant_vectors/{name}", env!("CARGO_MANIFEST_DIR"));
    let raw = std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    assert_eq!(&raw[..4], b"HQV1", "{name}");
    let u32_at = |i: usize| u32::from_le_bytes(raw[i..i + 4].try_into().unwrap()) as usize;
    let (id, n, m) = (u32_at(4), u32_at(8), u32_at(12));
    let bytes = raw[16..16 + m].to_vec();
    let floats: Vec<f32> = raw[16 + m..]
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes(b.try_into().unwrap()))
        .collect();
    assert_eq!(floats.len(), n, "{name}");
    let ty = GgmlType::from_id(id as u32).unwrap();
    Vector { ty, bytes, floats }
}

fn file_stem(ty: GgmlType) -> String {
    ty.name().to_lowercase()
}

fn dequant(ty: GgmlType, bytes: &[u8], n: usize) -> Vec<f32> {
    let mut out = vec![0f32; n];
    dequantize_row(ty, bytes, &mut out).unwrap();
    out
}

/// Bit equality (NaN payloads may be quieted by the f16 conversion, so any NaN matches NaN).
fn assert_bits_eq(got: &[f32], want: &[f32], what: &str) {
    assert_eq!(got.len(), want.len(), "{what}");
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        let same = g.to_bits() == w.to_bits() || (g.is_nan() && w.is_nan());
        assert!(
            same,
            "{what}: element {i}: got {g:e} ({:#010x}), want {w:e} ({:#010x})",
            g.to_bits(),
            w.to_bits()
        );
    }
}

fn check_dequant_vector(name: &str) {
    let v = load(name);
    let got = dequant(v.ty, &v.bytes, v.floats.len());
    assert_bits_eq(&got, &v.floats, name);
}

#[test]
fn dequant_is_bit_exact_with_ggufpy_on_random_blocks() {
    for ty in ALL {
        check_dequant_vector(&format!("dequant_random_{}.bin", file_stem(ty)));
    }
}

#[test]
fn dequant_is_bit_exact_on_llama_cpp_written_blocks() {
    use GgmlType::*;
    for ty in [F16, BF16, Q4_0, Q5_0, Q5_1, Q8_0, Q4_K, Q5_K, Q6_K] {
        check_dequant_vector(&format!("dequant_fixture_{}.bin", file_stem(ty)));
    }
}

#[test]
fn block_scales_decode_every_f16_exactly() {
    // One Q8_0 block per f16 bit pattern, quant 1: element 0 is exactly the scale d.
    let mut blocks = Vec::with_capacity(34 << 16);
    for bits in 0..=u16::MAX {
        blocks.extend_from_slice(&bits.to_le_bytes());
        blocks.extend_from_slice(&[1; 32]);
    }
    let got = dequant(GgmlType::Q8_0, &blocks, 32 << 16);
    for bits in 0..=u16::MAX {
        let want = half::f16::from_bits(bits).to_f32();
        let g = got[32 * bits as usize];
        let same = g.to_bits() == want.to_bits() || (g.is_nan() && want.is_nan());
        assert!(same, "f16 {bits:#06x}: got {g:e}, want {want:e}");
    }
}

// ---------------------------------------------------------------- dot_row

/// xorshift64*: deterministic test data without a rand dependency.
struct Rng(u64);

impl Rng {
    fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    /// Uniform in [-1, 1).
    fn f32(&mut self) -> f32 {
        (self.next_u64() >> 40) as f32 / (1u64 << 23) as f32 - 1.0
    }
    fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next_u64() as u8).collect()
    }
}

/// Offsets of the f16 scale fields (d, dmin/m) per block, to keep random blocks finite.
fn f16_fields(ty: GgmlType) -> &'static [usize] {
    use GgmlType::*;
    match ty {
        Q4_0 | Q5_0 | Q8_0 => &[0],
        Q4_1 | Q5_1 | Q4_K | Q5_K => &[0, 2],
        Q2_K => &[80, 82],
        Q3_K => &[108],
        Q6_K => &[208],
        _ => &[],
    }
}

/// A random row of `n` finite elements of type `ty`.
fn random_row(rng: &mut Rng, ty: GgmlType, n: usize) -> Vec<u8> {
    let f16 = |v: f32| half::f16::from_f32(v).to_le_bytes();
    match ty {
        GgmlType::F32 => (0..n)
            .flat_map(|_| (rng.f32() * 4.0).to_le_bytes())
            .collect(),
        GgmlType::F16 => (0..n).flat_map(|_| f16(rng.f32() * 4.0)).collect(),
        GgmlType::BF16 => (0..n)
            .flat_map(|_| half::bf16::from_f32(rng.f32() * 4.0).to_le_bytes())
            .collect(),
        _ => {
            let mut row = rng.bytes(ty.row_bytes(n as u64).unwrap() as usize);
            for block in row.chunks_exact_mut(ty.block_bytes()) {
                for &off in f16_fields(ty) {
                    block[off..off + 2].copy_from_slice(&f16(rng.f32() * 0.05));
                }
            }
            row
        }
    }
}

#[test]
fn dot_row_equals_dequantize_then_dot() {
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    for ty in ALL {
        let be = ty.block_elems();
        // Plain types: lengths around the 64-element decode chunk; blocks: 1 to 13 blocks.
        let lengths: Vec<usize> = if be == 1 {
            vec![1, 7, 63, 64, 65, 200, 1000]
        } else {
            [1, 2, 3, 5, 13].iter().map(|b| b * be).collect()
        };
        for n in lengths {
            for _ in 0..4 {
                let row = random_row(&mut rng, ty, n);
                let x: Vec<f32> = (0..n).map(|_| rng.f32()).collect();
                let w = dequant(ty, &row, n);
                let exact: f64 = w.iter().zip(&x).map(|(&a, &b)| a as f64 * b as f64).sum();
                let scale: f64 = w
                    .iter()
                    .zip(&x)
                    .map(|(&a, &b)| (a as f64 * b as f64).abs())
                    .sum();
                let got = dot_row(ty, &row, &x) as f64;
                assert!(
                    (got - exact).abs() <= 1e-5 * scale + 1e-30,
                    "{ty} n={n}: dot_row {got} vs dequant+dot {exact} (sum |w x| = {scale})"
                );
            }
        }
    }
}

/// dot_row trusts its caller: a violated precondition trips a debug assertion, and in
/// release builds yields a meaningless value instead of a panic or out-of-bounds access.
#[test]
#[cfg_attr(debug_assertions, should_panic)]
fn dot_row_on_unsupported_type_is_zero_in_release() {
    let ty = GgmlType::from_id(23).unwrap(); // IQ4_XS
    assert_eq!(dot_row(ty, &[0; 136], &[1.0; 256]), 0.0);
}

#[test]
#[cfg_attr(debug_assertions, should_panic)]
fn dot_row_with_mismatched_lengths_does_not_panic_in_release() {
    for ty in ALL {
        let be = ty.block_elems();
        let bytes = vec![0x11u8; ty.block_bytes() * 3];
        for n in [0, be, 2 * be + be / 2, 4 * be + 1] {
            assert!(dot_row(ty, &bytes, &vec![1.0; n]).is_finite(), "{ty} n={n}");
        }
    }
}

#[test]
fn dot_row_of_empty_row_is_zero() {
    for ty in ALL {
        assert_eq!(dot_row(ty, &[], &[]), 0.0, "{ty}");
    }
}

// ---------------------------------------------------------------- quantizers

fn quantize(ty: GgmlType, x: &[f32]) -> Vec<u8> {
    match ty {
        GgmlType::Q4_0 => quantize_q4_0(x),
        GgmlType::Q8_0 => quantize_q8_0(x),
        GgmlType::Q4_K => quantize_q4_k(x),
        GgmlType::Q6_K => quantize_q6_k(x),
        _ => unreachable!("no quantizer for {ty}"),
    }
}

fn check_quantize_vector(name: &str) {
    let v = load(name);
    let got = quantize(v.ty, &v.floats);
    assert_eq!(got.len(), v.bytes.len(), "{name}");
    let bb = v.ty.block_bytes();
    for (i, (g, w)) in got.chunks(bb).zip(v.bytes.chunks(bb)).enumerate() {
        assert_eq!(g, w, "{name}: block {i} differs");
    }
}

#[test]
fn quantizers_match_ggufpy_bytes() {
    check_quantize_vector("quantize_ggufpy_q4_0.bin");
    check_quantize_vector("quantize_ggufpy_q8_0.bin");
}

#[test]
fn quantizers_match_llama_quantize_bytes_on_fixture_weights() {
    check_quantize_vector("quantize_llamacpp_q4_0.bin");
    check_quantize_vector("quantize_llamacpp_q8_0.bin");
}

#[test]
fn quantizers_match_ggml_reference_bytes() {
    for ty in [
        GgmlType::Q4_0,
        GgmlType::Q8_0,
        GgmlType::Q4_K,
        GgmlType::Q6_K,
    ] {
        check_quantize_vector(&format!("quantize_ggml_{}.bin", file_stem(ty)));
    }
}

/// (RMSE, ggml test-quantize-fns' "total error" = sqrt(sum of squares) / n) of a round trip.
fn round_trip_error(ty: GgmlType, x: &[f32]) -> (f64, f64) {
    let y = dequant(ty, &quantize(ty, x), x.len());
    let sq: f64 = x
        .iter()
        .zip(&y)
        .map(|(&a, &b)| (a as f64 - b as f64).powi(2))
        .sum();
    ((sq / x.len() as f64).sqrt(), sq.sqrt() / x.len() as f64)
}

#[test]
fn quantizer_round_trip_error_is_within_ggml_bounds() {
    // ggml test-quantize-fns data: 0.1 + 2 cos(i + offset), 4096 values, total error < 0.002.
    let cosine: Vec<f32> = (0..4096)
        .map(|i| 0.1 + 2.0 * (i as f32 + 0.1).cos())
        .collect();
    let mut rng = Rng(7);
    // Weight-like data: sum of uniforms ~ Gaussian, std 0.02.
    let gauss: Vec<f32> = (0..4096)
        .map(|_| (0..4).map(|_| rng.f32()).sum::<f32>() * 0.017)
        .collect();
    // Relative RMSE bounds, ~1.2-2x what these (deterministic) inputs give: Q8_0 is at the
    // theoretical step/sqrt(12) of uniform rounding, the others in line with ggml's tests.
    let bounds = [
        (GgmlType::Q4_0, 0.10),
        (GgmlType::Q8_0, 0.007),
        (GgmlType::Q4_K, 0.085),
        (GgmlType::Q6_K, 0.022),
    ];
    for (ty, rel_bound) in bounds {
        let (rmse, total) = round_trip_error(ty, &cosine);
        let (g_rmse, _) = round_trip_error(ty, &gauss);
        let g_rms = (gauss.iter().map(|&v| (v as f64).powi(2)).sum::<f64>() / 4096.0).sqrt();
        println!(
            "{ty}: cosine rmse {rmse:.5} (ggml total error {total:.6}); gaussian rel rmse {:.5}",
            g_rmse / g_rms
        );
        assert!(total < 0.002, "{ty}: ggml total error {total}");
        assert!(
            rmse / 1.42 < rel_bound,
            "{ty}: cosine relative rmse {}",
            rmse / 1.42
        );
        assert!(
            g_rmse / g_rms < rel_bound,
            "{ty}: gaussian relative rmse {}",
            g_rmse / g_rms
        );
    }
}

#[test]
fn quantizers_zero_pad_a_partial_last_block() {
    let x: Vec<f32> = (0..300).map(|i| (i as f32 * 0.37).sin()).collect();
    for ty in [
        GgmlType::Q4_0,
        GgmlType::Q8_0,
        GgmlType::Q4_K,
        GgmlType::Q6_K,
    ] {
        let be = ty.block_elems();
        let mut padded = x.clone();
        padded.resize(x.len().div_ceil(be) * be, 0.0);
        assert_eq!(quantize(ty, &x), quantize(ty, &padded), "{ty}");
    }
}

#[test]
fn quantizers_handle_all_zero_input() {
    let zeros = vec![0f32; 512];
    for ty in [
        GgmlType::Q4_0,
        GgmlType::Q8_0,
        GgmlType::Q4_K,
        GgmlType::Q6_K,
    ] {
        let y = dequant(ty, &quantize(ty, &zeros), zeros.len());
        assert!(y.iter().all(|&v| v == 0.0), "{ty}");
    }
}

// ---------------------------------------------------------------- bad input

#[test]
fn bad_lengths_and_unsupported_types_are_errors() {
    for ty in ALL {
        let n = ty.block_elems() * 2;
        let bytes = vec![0u8; ty.block_bytes() * 2];
        let mut dst = vec![0f32; n];
        assert!(dequantize_row(ty, &bytes, &mut dst).is_ok(), "{ty}");
        assert!(dequantize_row(ty, &[], &mut []).is_ok(), "{ty}: empty row");
        for bad in [&bytes[..bytes.len() - 1], &bytes[..0]] {
            let err = dequantize_row(ty, bad, &mut dst).unwrap_err();
            assert!(matches!(err, Error::InvalidArgument(_)), "{ty}: {err}");
        }
        let long = vec![0u8; bytes.len() + 1];
        assert!(
            matches!(
                dequantize_row(ty, &long, &mut dst),
                Err(Error::InvalidArgument(_))
            ),
            "{ty}"
        );
        if ty.block_elems() > 1 {
            // Not a whole number of blocks.
            let err = dequantize_row(ty, &bytes, &mut dst[..n - 1]).unwrap_err();
            assert!(matches!(err, Error::InvalidArgument(_)), "{ty}: {err}");
        }
    }
    for id in [9, 15, 16, 20, 23, 39] {
        let ty = GgmlType::from_id(id).unwrap();
        let mut dst = vec![0f32; ty.block_elems()];
        let err = dequantize_row(ty, &vec![0u8; ty.block_bytes()], &mut dst).unwrap_err();
        assert!(
            matches!(&err, Error::UnsupportedType { tensor, .. } if tensor.is_empty()),
            "{ty}: {err}"
        );
    }
}
