//! The quantized CPU path: every SIMD row kernel against the scalar reference on odd sizes, the
//! scalar kernels against f32 math on the dequantized operands, the activation-quantization
//! error bound, and the quantized backend (SIMD and forced scalar) on the golden fixtures.
//!
//! `HEARTH_CPU_NO_SIMD=1 cargo test -p hearth --test cpu_kernels` runs the whole file with the
//! scalar kernels as the detected level.

mod common;

use std::sync::Arc;

use hearth::backend::cpu::CpuBackend;
use hearth::backend::cpu::pack::{PACK, pack, unpacked_row_of};
use hearth::backend::cpu::qdot::{ActScale, QAct, Simd, detected, kernel};
use hearth::gguf::GgufFile;
use hearth::models::lfm2::Model;
use hearth::quant::{GgmlType, dequantize_row, quantize};

const TYPES: [GgmlType; 4] = [
    GgmlType::Q4_0,
    GgmlType::Q8_0,
    GgmlType::Q4_K,
    GgmlType::Q6_K,
];

/// Random encoded rows: half from the float quantizer (realistic blocks), half raw random
/// bytes with a small f16 scale patched in (every quant and sub-scale value, e.g. Q8_0's -128,
/// Q6_K's negative scales: the saturation corners of the 16-bit SIMD intermediates).
fn random_row(ty: GgmlType, k: usize, rng: &mut common::Rng, raw: bool) -> Vec<u8> {
    if !raw {
        let v: Vec<f32> = (0..k).map(|_| rng.f32() * 2.0).collect();
        return quantize(ty, &v);
    }
    let (be, bb) = (ty.block_elems(), ty.block_bytes());
    let mut out: Vec<u8> = (0..k / be * bb).map(|_| rng.next_u64() as u8).collect();
    let scale = half::f16::from_f32(0.01).to_le_bytes();
    for b in out.chunks_exact_mut(bb) {
        let at: &[usize] = match ty {
            GgmlType::Q4_K => &[0, 2],
            GgmlType::Q6_K => &[208],
            _ => &[0],
        };
        for &i in at {
            b[i..i + 2].copy_from_slice(&scale);
        }
    }
    out
}

fn act_group(scale: ActScale) -> usize {
    match scale {
        ActScale::Block32 => 32,
        ActScale::Block256 => 256,
    }
}

/// The activation the integer kernels actually see: `qs * d`, as f32.
fn dequant_act(act: &QAct, k: usize) -> Vec<f32> {
    let a = act.row(0);
    (0..k).map(|i| a.qs[i] as f32 * a.d[i / 32]).collect()
}

#[test]
fn simd_kernels_match_scalar_and_f32_on_odd_sizes() {
    let simd = detected();
    eprintln!("detected SIMD level: {simd:?}");
    let mut rng = common::Rng::new(42);
    for ty in TYPES {
        let reference = kernel(ty, Simd::Scalar).unwrap();
        let fast = kernel(ty, simd).unwrap();
        let (scalar, scale) = (reference.dot, reference.scale);
        let group = ty.block_elems().max(act_group(scale));
        for (blocks, raw) in [(1, false), (3, true), (7, false), (37, true), (11, false)] {
            let k = group * blocks;
            let w = random_row(ty, k, &mut rng, raw);
            let x: Vec<f32> = (0..k).map(|_| rng.f32() * 3.0).collect();
            let mut act = QAct::default();
            act.quantize(&x, k, scale);
            let (s, f) = (scalar(&w, act.row(0)), (fast.dot)(&w, act.row(0)));

            // f32 math on the dequantized operands: what the integer sums must equal.
            let mut wf = vec![0f32; k];
            dequantize_row(ty, &w, &mut wf).unwrap();
            let xq = dequant_act(&act, k);
            let exact: f64 = wf.iter().zip(&xq).map(|(&a, &b)| a as f64 * b as f64).sum();
            let mag: f64 = wf.iter().zip(&xq).map(|(a, b)| (a * b).abs() as f64).sum();
            // f32 rounding of per-block partial sums: relative 1e-5 of Σ|w·x| is ~100 ulps.
            let tol = 1e-5 * mag + 1e-6;
            let label = format!("{ty} k={k} raw={raw}");
            assert!(s.is_finite() && f.is_finite(), "{label}: {s} {f}");
            assert!(
                (s as f64 - exact).abs() <= tol,
                "{label}: scalar {s} vs f32 {exact}"
            );
            assert!(
                (f as f64 - s as f64).abs() <= tol,
                "{label}: {simd:?} {f} vs {s}"
            );

            // Against the unquantized activation: each x_i moves by at most d/2.
            let truth: f64 = wf.iter().zip(&x).map(|(&a, &b)| a as f64 * b as f64).sum();
            let a = act.row(0);
            let bound: f64 = (0..k)
                .map(|i| wf[i].abs() as f64 * a.d[i / 32] as f64 * 0.5)
                .sum::<f64>()
                + tol;
            assert!(
                (s as f64 - truth).abs() <= bound,
                "{label}: {s} vs {truth} > {bound}"
            );
        }
    }
}

/// The mat-mat kernels must give each activation row exactly what the single-row kernel gives
/// it, bit for bit: prefill batches tokens 4 at a time (the rest one by one), so any difference
/// makes a token's logits depend on its batch, and a reused-cache prefill then differs from a
/// fresh one (a disabled fused Q4_0 kernel did: 0.053 on lfm2-dense-h64-q4_0, tests/session.rs).
#[test]
fn fused_four_row_kernels_equal_single_rows_bit_for_bit() {
    let simd = detected();
    let mut rng = common::Rng::new(9);
    for ty in TYPES {
        for level in [Simd::Scalar, simd] {
            let kern = kernel(ty, level).unwrap();
            let group = ty.block_elems().max(act_group(kern.scale));
            for (blocks, raw) in [(1, true), (2, false), (3, true), (5, false), (37, true)] {
                let k = group * blocks;
                let w = random_row(ty, k, &mut rng, raw);
                // Rows of different magnitudes, one all-zero: the scales differ per row.
                let x: Vec<f32> = (0..4 * k)
                    .map(|i| match i / k {
                        2 => 0.0,
                        r => rng.f32() * (1 + 7 * r) as f32,
                    })
                    .collect();
                let mut act = QAct::default();
                act.quantize(&x, k, kern.scale);
                let rows = std::array::from_fn(|j| act.row(j));
                let four = (kern.dot4)(&w, &rows);
                for (j, &got) in four.iter().enumerate() {
                    let one = (kern.dot)(&w, act.row(j));
                    assert!(one.is_finite(), "{ty} {level:?} k={k} row {j}: {one}");
                    assert_eq!(
                        got.to_bits(),
                        one.to_bits(),
                        "{ty} {level:?} k={k} raw={raw} row {j}: x4 {got} vs single {one}"
                    );
                }
            }
        }
    }
}

/// The kernels over Q4_0, Q4_K and Q6_K rows packed in groups of eight: each lane within the
/// SIMD-vs-scalar bound of the scalar row kernel on the unpacked row, and bit-identical across
/// the group kernel, its four-row form and the one-lane kernel (a row's result must not depend
/// on whether it was computed in a whole group or alone, nor on its batch).
#[test]
fn packed_kernels_match_row_kernels_and_agree_bit_for_bit() {
    for ty in [GgmlType::Q4_0, GgmlType::Q4_K, GgmlType::Q6_K] {
        check_packed(ty);
    }
}

fn check_packed(ty: GgmlType) {
    let kern = kernel(ty, detected()).unwrap();
    let Some(pk) = kern.packed else {
        assert!(kernel(ty, Simd::Scalar).unwrap().packed.is_none());
        eprintln!("SKIP: no packed {ty} kernel at {:?}", detected());
        return;
    };
    let scalar = kernel(ty, Simd::Scalar).unwrap().dot;
    let be = ty.block_elems();
    let mut rng = common::Rng::new(77);
    for (blocks, raw) in [(1, true), (3, false), (7, true), (37, false), (64, true)] {
        let blocks = if be == 256 { blocks.min(9) } else { blocks };
        let k = be * blocks;
        let rows: Vec<u8> = (0..2 * PACK)
            .flat_map(|_| random_row(ty, k, &mut rng, raw))
            .collect();
        let rb = rows.len() / (2 * PACK);
        let packed = pack(ty, &rows, 2 * PACK, rb);
        let x: Vec<f32> = (0..4 * k)
            .map(|i| match i / k {
                1 => 0.0,
                r => rng.f32() * (1 + 5 * r) as f32,
            })
            .collect();
        let mut act = QAct::default();
        act.quantize(&x, k, kern.scale);
        let acts = std::array::from_fn(|t| act.row(t));
        for (gi, g) in packed.chunks_exact(packed.len() / 2).enumerate() {
            let four = (pk.dot8x4)(g, &acts);
            for (t, four_t) in four.iter().enumerate() {
                let eight = (pk.dot8)(g, act.row(t));
                for l in 0..PACK {
                    let label = format!("{ty} k={k} raw={raw} group {gi} lane {l} act {t}");
                    let row = &rows[(gi * PACK + l) * rb..(gi * PACK + l + 1) * rb];
                    assert_eq!(unpacked_row_of(ty, g, l), row, "{label}: layout");
                    let lane = (pk.lane)(g, l, act.row(t));
                    assert!(eight[l].is_finite(), "{label}: {}", eight[l]);
                    assert_eq!(eight[l].to_bits(), lane.to_bits(), "{label}: group vs lane");
                    assert_eq!(four_t[l].to_bits(), lane.to_bits(), "{label}: x4 vs lane");
                    let s = scalar(row, act.row(t));
                    let mut wf = vec![0f32; k];
                    dequantize_row(ty, row, &mut wf).unwrap();
                    let a = act.row(t);
                    let mag: f32 = (0..k)
                        .map(|i| (wf[i] * a.qs[i] as f32 * a.d[i / 32]).abs())
                        .sum();
                    assert!(
                        (lane - s).abs() <= 1e-5 * mag + 1e-6,
                        "{label}: packed {lane} vs scalar {s}"
                    );
                }
            }
        }
    }
}

#[test]
fn batched_activation_quantization_equals_each_row_alone() {
    // Long activations (a prefill's) are quantized in parallel in whole-row chunks: every row
    // must come out as it does quantized on its own (70 rows: chunks of 32 and a partial one).
    let mut rng = common::Rng::new(5);
    for scale in [ActScale::Block32, ActScale::Block256] {
        let (k, m) = (512, 70);
        let mut x: Vec<f32> = (0..k * m).map(|_| rng.f32() * 3.0).collect();
        x[7 * k + 100] = f32::NAN;
        x[40 * k..41 * k].fill(0.0);
        let mut all = QAct::default();
        all.quantize(&x, k, scale);
        let mut one = QAct::default();
        for j in 0..m {
            one.quantize(&x[j * k..(j + 1) * k], k, scale);
            let (a, b) = (all.row(j), one.row(0));
            assert_eq!(a.qs, b.qs, "{scale:?} row {j}: qs");
            let bits = |d: &[f32]| d.iter().map(|v| v.to_bits()).collect::<Vec<_>>();
            assert_eq!(bits(a.d), bits(b.d), "{scale:?} row {j}: scales");
            assert_eq!(a.bsums, b.bsums, "{scale:?} row {j}: block sums");
            assert_eq!(a.pair8, b.pair8, "{scale:?} row {j}: pair sums");
        }
    }
}

#[test]
fn activation_quantization_keeps_nan_and_zero_rows() {
    for ty in TYPES {
        let kern = kernel(ty, detected()).unwrap();
        let (f, scale) = (kern.dot, kern.scale);
        let k = 256;
        let w = random_row(ty, k, &mut common::Rng::new(1), false);
        let mut act = QAct::default();
        act.quantize(&vec![0.0; k], k, scale);
        assert_eq!(f(&w, act.row(0)), 0.0, "{ty}: zero activations");
        let mut x = vec![0.5f32; k];
        x[77] = f32::NAN;
        act.quantize(&x, k, scale);
        assert!(
            f(&w, act.row(0)).is_nan(),
            "{ty}: NaN must reach the output"
        );
    }
}

fn load(file: &str, be: CpuBackend) -> Model<CpuBackend> {
    let f = Arc::new(GgufFile::open(common::gguf_path(file)).unwrap());
    Model::load(&f, be).unwrap()
}

/// llama.cpp's logits at the dequant-HF rows (same 8 rows of the same teacher-forced sequence).
fn llama_rows(model: &str, variant: &str, prompt: &str) -> Vec<f32> {
    let path = common::fixtures().join(format!("refs/{model}/{variant}/{prompt}_logits.npy"));
    common::read_npy_f32(&path).1
}

const GOLDEN: [(&str, &str); 10] = [
    ("lfm2-dense-h64", "q8_0"),
    ("lfm2-dense-h64", "q4_0"),
    ("lfm2moe-h64-e8k2", "q8_0"),
    ("lfm2moe-h64-e8k2", "q4_0"),
    ("lfm2moe-h64-e16k4", "q4_0"),
    ("lfm2-dense-h256", "q8_0"),
    ("lfm2-dense-h256", "q4_k_m"),
    ("lfm2-dense-h256", "q6_k"),
    ("lfm2moe-h256-e8k2", "q4_k_m"),
    ("lfm2moe-h256-e8k2", "q6_k"),
];

/// The quantized backend quantizes activations as llama.cpp does, so the fixtures' llama.cpp
/// logits measure the error that scheme has on each file: over a file's three prompts, ours
/// must stay within 1.5x llama.cpp's largest distance from the exact (dequant-HF) logits, plus
/// 1 % of the largest logit. Per prompt the two differ more (on these unit-scale random nets an
/// MoE routing flip moves a row by ~10 %, and which rows flip depends on rounding details).
fn check_quantized_golden(be: CpuBackend) {
    for (name, variant) in GOLDEN {
        let model = load(&format!("{name}-{variant}"), be);
        let (mut ours, mut theirs, mut scale) = (0f32, 0f32, 0f32);
        for (prompt, got, want) in common::dequant_rows(&model, name, variant) {
            let llama = llama_rows(name, variant, &prompt);
            assert_eq!(
                llama.len(),
                want.len(),
                "{name}-{variant} {prompt}: row count"
            );
            let o = hearth::numerics::compare(&got, &want).unwrap();
            let t = hearth::numerics::compare(&llama, &want).unwrap();
            (ours, theirs, scale) = (
                ours.max(o.max_abs),
                theirs.max(t.max_abs),
                scale.max(o.max_ref),
            );
        }
        eprintln!(
            "{name}-{variant} ({:?}): max |Δ| vs dequant-HF: ours {ours:.3} ({:.4} of max \
             |logit|), llama.cpp {theirs:.3} ({:.4})",
            be.simd(),
            ours / scale,
            theirs / scale
        );
        let bound = 1.5 * theirs + 0.01 * scale;
        assert!(ours <= bound, "{name}-{variant}: {ours} > {bound}");
    }
}

#[test]
fn quantized_backend_golden_within_llama_cpp_error() {
    check_quantized_golden(CpuBackend::quantized());
}

/// The fallback the packed Q4_0 kernels replace (`HEARTH_CPU_NO_REPACK=1`), forced.
#[test]
fn unpacked_backend_golden_within_llama_cpp_error() {
    check_quantized_golden(CpuBackend::quantized().without_repack());
}

#[test]
fn forced_scalar_backend_golden_within_llama_cpp_error() {
    check_quantized_golden(CpuBackend::quantized_with(Simd::Scalar));
}

#[test]
fn quantized_prefill_equals_decode_rows_bit_for_bit() {
    // Each token's activation is quantized on its own and every batched kernel gives a row what
    // the one-row kernel gives it, so a prefill row equals the decode row exactly (the property
    // exact cache reuse rests on); MoE decode takes its own one-token path, same order.
    for (file, be) in [
        ("lfm2-dense-h64-q4_0", CpuBackend::quantized()),
        (
            "lfm2-dense-h64-q4_0",
            CpuBackend::quantized().without_repack(),
        ),
        ("lfm2-dense-h64-q8_0", CpuBackend::quantized()),
        ("lfm2-dense-h256-q4_k_m", CpuBackend::quantized()),
        ("lfm2-dense-h256-q6_k", CpuBackend::quantized()),
        ("lfm2moe-h64-e8k2-q8_0", CpuBackend::quantized()),
        ("lfm2moe-h256-e8k2-q4_k_m", CpuBackend::quantized()),
        ("lfm2moe-h64-e16k4-q4_0", CpuBackend::quantized()),
        (
            "lfm2moe-h64-e16k4-q4_0",
            CpuBackend::quantized_with(Simd::Scalar),
        ),
    ] {
        let simd = be.simd();
        let model = load(file, be);
        let v = model.config.vocab;
        // The h256 prompts are long enough (72 x 256 values) for the parallel activation
        // quantization.
        let n = if file.contains("h256") { 72 } else { 9 };
        let toks: Vec<u32> = (0..n).map(|i| (20 + 37 * i) % v as u32).collect();
        let all = common::all_logits(&model, &toks);
        let mut st = hearth::models::lfm2::State::new(&model, 128, 16, false).unwrap();
        for (t, &tok) in toks.iter().enumerate() {
            let row = model
                .forward(&mut st, &[tok], hearth::models::lfm2::Logits::Last)
                .unwrap();
            let d = hearth::numerics::compare(&row, &all[t * v..(t + 1) * v]).unwrap();
            assert!(d.max_abs == 0.0, "{file} {simd:?} token {t}: {d:?}");
        }
    }
}

/// Not a test: a timing harness for real-size files when the CLI cannot be built (it asserts
/// nothing about speed). `HEARTH_BENCH_MODEL=file.gguf [HEARTH_BENCH_SYNTH=preset:quant]
/// [HEARTH_BENCH_PP=128 HEARTH_BENCH_TG=32] RAYON_NUM_THREADS=T cargo test --test cpu_kernels
/// bench_real_size -- --ignored --nocapture` prints `prefill decode` tok/s like `hearth bench`
/// (same token sequence, one prefill call, then one token per call); with `HEARTH_BENCH_SYNTH`
/// a missing file is first written by `hearth::gguf::synth`.
#[test]
#[ignore]
fn bench_real_size() {
    use hearth::{BackendKind, Engine, EngineOptions, Logits};
    let Ok(path) = std::env::var("HEARTH_BENCH_MODEL") else {
        eprintln!("HEARTH_BENCH_MODEL not set");
        return;
    };
    let path = std::path::PathBuf::from(path);
    if let (false, Ok(spec)) = (path.exists(), std::env::var("HEARTH_BENCH_SYNTH")) {
        use hearth::gguf::synth::{SynthQuant, preset, write_synthetic};
        let (name, quant) = spec.split_once(':').expect("preset:quant");
        let shape = preset(name).expect("known preset");
        let q = SynthQuant::parse(quant).expect("known quant");
        let tmp = path.with_extension("part");
        let mut w =
            std::io::BufWriter::with_capacity(1 << 20, std::fs::File::create(&tmp).unwrap());
        write_synthetic(&shape, q, name, 1, &mut w).unwrap();
        std::io::Write::flush(&mut w).unwrap();
        drop(w);
        std::fs::rename(&tmp, &path).unwrap();
    }
    let num = |k: &str, d: usize| std::env::var(k).map_or(d, |v| v.parse().unwrap());
    let (pp, tg) = (num("HEARTH_BENCH_PP", 128), num("HEARTH_BENCH_TG", 32));
    let engine = Engine::load(&path, EngineOptions::with_backend(BackendKind::Cpu)).unwrap();
    let vocab = engine.config().vocab as u64;
    let mut x = 0x2545_F491_4F6C_DD1Du64;
    let tokens: Vec<u32> = (0..pp + tg)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (64 + x % (vocab - 64)) as u32
        })
        .collect();
    let mut seq = engine.new_sequence(tokens.len() + 1, 64).unwrap();
    let t0 = std::time::Instant::now();
    seq.forward(&tokens[..pp], Logits::Last).unwrap();
    let prefill = pp as f64 / t0.elapsed().as_secs_f64();
    let t1 = std::time::Instant::now();
    for &t in &tokens[pp..] {
        seq.forward(&[t], Logits::Last).unwrap();
    }
    let decode = tg as f64 / t1.elapsed().as_secs_f64();
    println!(
        "{} ({}) pp{pp} tg{tg}: {prefill:.2} {decode:.2}",
        path.display(),
        engine.backend_description()
    );
}
