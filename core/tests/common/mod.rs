//! Shared helpers for the integration tests: fixture paths, .npy reading, reference prompts,
//! greedy decoding on any backend, a tiny PRNG, and the one mechanism that runs a test on every
//! backend (`backend_tests!` for model-level tests, `engine_tests!` for engine-level ones).
#![allow(dead_code, unused_macros)]

use std::path::PathBuf;
use std::sync::OnceLock;

use hearth::backend::Backend;
use hearth::backend::cpu::CpuBackend;
use hearth::backend::gpu::{GpuBackend, GpuOptions};
use hearth::models::lfm2::{Logits, Model, State};
use hearth::{BackendKind, Engine, EngineOptions, GenerateOptions, SamplingOptions};
use serde_json::Value;

/// Instantiates model-level tests once per backend, as candle's `test_device!` does: each
/// `name: |t| body;` becomes a module `name` with tests `cpu` (the exact f32 reference),
/// `gpu` (f16 KV caches + subgroups where the adapter has them) and `gpu_f32` (the f32 +
/// shared-memory fallback corner), `t` being a [`Target`] of that backend. The GPU instances
/// print SKIP and pass without an adapter that passes the self-test, and fail instead under
/// `HEARTH_REQUIRE_GPU=1` (see [`gpu_ready`]).
macro_rules! backend_tests {
    ($($name:ident: |$t:ident| $body:expr;)*) => {$(
        mod $name {
            #[allow(unused_imports)]
            use super::*;
            #[test]
            fn cpu() {
                let $t = &crate::common::Target::cpu();
                $body;
            }
            #[test]
            fn gpu() {
                if let Some($t) = &crate::common::Target::gpu(true) {
                    $body;
                }
            }
            #[test]
            fn gpu_f32() {
                if let Some($t) = &crate::common::Target::gpu(false) {
                    $body;
                }
            }
        }
    )*};
}

/// Instantiates engine-level tests (a function `fn name(kind: BackendKind)` each) on the CPU
/// engine path (quantized activations) and on the GPU: a module `name` with tests `cpu` and
/// `gpu`; the GPU instance skips like [`backend_tests!`]'s.
macro_rules! engine_tests {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            #[test]
            fn cpu() {
                super::$name(hearth::BackendKind::Cpu);
            }
            #[test]
            fn gpu() {
                if crate::common::gpu_ready() {
                    super::$name(hearth::BackendKind::Gpu);
                }
            }
        }
    )*};
}

/// Whether the GPU tests run: a Vulkan (or Metal, DX12) adapter opens with the default options
/// and passes the engine's numerical self-test (checked once per test binary). Without one it
/// prints SKIP and returns false, or panics under `HEARTH_REQUIRE_GPU=1` (CI installs lavapipe:
/// a missing adapter there is a broken install, not a reason to skip).
pub fn gpu_ready() -> bool {
    static READY: OnceLock<Result<(), String>> = OnceLock::new();
    let ready = READY.get_or_init(|| {
        let g = GpuBackend::new(GpuOptions::default()).map_err(|e| e.to_string())?;
        hearth::selftest::run(&g, None).map_err(|e| format!("self-test: {e}"))
    });
    match ready {
        Ok(()) => true,
        Err(e) if std::env::var("HEARTH_REQUIRE_GPU").is_err() => {
            eprintln!("SKIP: no GPU adapter passes the self-test ({e})");
            false
        }
        Err(e) => panic!("HEARTH_REQUIRE_GPU is set but no GPU adapter passes the self-test: {e}"),
    }
}

/// Logits vs a float32 reference on an f32 path: the fixtures README's bound (llama.cpp lands at
/// <= 4.8e-5).
pub const ATOL: f32 = 1e-3;
/// Logits on the GPU's f16 path (KV caches in f16, arithmetic f32): they move by up to ~4e-3
/// here (3e-4 of their range), so the bound is 1 % of max |logit|.
pub const F16_REL: f32 = 0.01;

/// A backend under test and the tolerances of the arithmetic it does.
pub struct Target<B> {
    pub be: B,
    /// `cpu`, or the GPU's name with its path.
    pub label: String,
    /// KV caches in f16 (the GPU where the adapter has `shader-f16`): looser logits, and greedy
    /// continuations not compared (a near-tie may flip).
    pub f16: bool,
    /// Bound on a decode row against the same row of one prefill on f32 paths.
    pub decode_atol: f32,
}

impl Target<CpuBackend> {
    /// The exact CPU backend: the reference every GPU kernel is tested against.
    pub fn cpu() -> Self {
        Target {
            be: CpuBackend,
            label: "cpu".into(),
            f16: false,
            decode_atol: 1e-4,
        }
    }
}

impl Target<GpuBackend> {
    /// A corner of the GPU's fallback matrix: `fast` = f16 + subgroups (where the adapter has
    /// them), else f32 + workgroup-memory reductions. `None` after [`gpu_ready`] said SKIP.
    pub fn gpu(fast: bool) -> Option<Self> {
        if !gpu_ready() {
            return None;
        }
        let be = GpuBackend::new(GpuOptions {
            no_f16: !fast,
            no_subgroups: !fast,
            ..Default::default()
        })
        .expect("the adapter that passed the self-test opens");
        Some(Target {
            label: be.name(),
            f16: be.caps().f16,
            be,
            decode_atol: ATOL,
        })
    }
}

impl<B: Backend + Clone> Target<B> {
    /// Loads a fixture model (`gguf/<file>.gguf`) on this backend.
    pub fn load(&self, file: &str) -> Model<B> {
        let f = std::sync::Arc::new(hearth::gguf::GgufFile::open(gguf_path(file)).unwrap());
        Model::load(&f, self.be.clone()).unwrap()
    }

    /// Bound on max |Δ| of logits against `want`.
    pub fn logits_tol(&self, want: &[f32]) -> f32 {
        if self.f16 {
            F16_REL * max_abs(want)
        } else {
            ATOL
        }
    }

    /// Asserts max |Δ| of logits within [`Target::logits_tol`]; returns it.
    pub fn assert_close(&self, what: &str, got: &[f32], want: &[f32]) -> f32 {
        self.assert_within(what, got, want, self.logits_tol(want))
    }

    /// Asserts a decode row against the prefill row: `decode_atol` on f32 paths.
    pub fn assert_decode_close(&self, what: &str, got: &[f32], want: &[f32]) -> f32 {
        let tol = if self.f16 {
            self.logits_tol(want)
        } else {
            self.decode_atol
        };
        self.assert_within(what, got, want, tol)
    }

    fn assert_within(&self, what: &str, got: &[f32], want: &[f32], tol: f32) -> f32 {
        let diff = max_abs_diff(got, want);
        eprintln!(
            "{what} [{}]: max |Δ| = {diff:.2e} (tol {tol:.1e})",
            self.label
        );
        assert!(diff < tol, "{what} [{}]: {diff} >= {tol}", self.label);
        diff
    }
}

/// max |x| (NaN-proof callers compare first with [`max_abs_diff`]).
pub fn max_abs(v: &[f32]) -> f32 {
    v.iter().fold(0f32, |m, x| m.max(x.abs()))
}

/// An engine on the fixture `gguf/<name>.gguf` on backend `kind`.
pub fn engine(kind: BackendKind, name: &str) -> Engine {
    Engine::load(gguf_path(name), EngineOptions::with_backend(kind)).unwrap()
}

/// Sampling at temperature 0.9 with `seed`, up to `max_tokens`.
pub fn seeded(seed: u64, max_tokens: usize) -> GenerateOptions {
    GenerateOptions {
        sampling: SamplingOptions {
            temperature: 0.9,
            seed,
            ..SamplingOptions::default()
        },
        max_tokens,
        ..Default::default()
    }
}

pub fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

pub fn gguf_path(name: &str) -> PathBuf {
    fixtures().join("gguf").join(format!("{name}.gguf"))
}

/// All fixture GGUF files, sorted.
pub fn all_ggufs() -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(fixtures().join("gguf"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "gguf"))
        .collect();
    v.sort();
    v
}

/// Reads a little-endian float32 .npy file: (shape, data).
pub fn read_npy_f32(path: &std::path::Path) -> (Vec<usize>, Vec<f32>) {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    assert_eq!(&bytes[..6], b"\x93NUMPY", "not an npy file");
    let (hlen, hstart) = if bytes[6] == 1 {
        (u16::from_le_bytes([bytes[8], bytes[9]]) as usize, 10)
    } else {
        (
            u32::from_le_bytes(bytes[8..12].try_into().unwrap()) as usize,
            12,
        )
    };
    let header = std::str::from_utf8(&bytes[hstart..hstart + hlen]).unwrap();
    assert!(header.contains("'<f4'"), "expected float32: {header}");
    assert!(header.contains("'fortran_order': False"));
    let shape_str = header
        .split("'shape': (")
        .nth(1)
        .unwrap()
        .split(')')
        .next()
        .unwrap();
    let shape: Vec<usize> = shape_str
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| s.parse().unwrap())
        .collect();
    let data: Vec<f32> = bytes[hstart + hlen..]
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes(c.try_into().unwrap()))
        .collect();
    assert_eq!(data.len(), shape.iter().product::<usize>());
    (shape, data)
}

/// xorshift64*: deterministic randomness without a dependency.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }
    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n.max(1) as u64) as usize
    }
    /// Uniform in [-1, 1).
    pub fn f32(&mut self) -> f32 {
        (self.next_u64() >> 40) as f32 / (1u64 << 23) as f32 - 1.0
    }
    pub fn vec_f32(&mut self, n: usize) -> Vec<f32> {
        (0..n).map(|_| self.f32()).collect()
    }
}

/// A reference prompt of the fixtures (`refs/<model>/hf_f32/meta.json`) and HF's greedy
/// continuation of it.
pub struct Prompt {
    pub name: String,
    pub ids: Vec<u32>,
    pub greedy: Vec<u32>,
}

pub fn prompts(model: &str) -> Vec<Prompt> {
    let path = fixtures().join(format!("refs/{model}/hf_f32/meta.json"));
    let meta: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let ids = |v: &Value| {
        v.as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_u64().unwrap() as u32)
            .collect()
    };
    meta["prompts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| Prompt {
            name: p["name"].as_str().unwrap().to_string(),
            ids: ids(&p["prompt_ids"]),
            greedy: ids(&p["greedy"]),
        })
        .collect()
}

pub fn argmax(v: &[f32]) -> u32 {
    v.iter()
        .enumerate()
        .max_by(|a, b| a.1.total_cmp(b.1))
        .unwrap()
        .0 as u32
}

/// Logits of every position of `tokens` in one prefill.
pub fn all_logits<B: Backend>(model: &Model<B>, tokens: &[u32]) -> Vec<f32> {
    let mut st = State::new(model, 256, tokens.len(), true).unwrap();
    model.forward(&mut st, tokens, Logits::All).unwrap()
}

/// Greedy decode: prefill the prompt, then one token at a time; (tokens, logits before each).
pub fn greedy<B: Backend>(model: &Model<B>, prompt: &[u32], n: usize) -> (Vec<u32>, Vec<Vec<f32>>) {
    let mut st = State::new(model, 256, prompt.len(), false).unwrap();
    let mut logits = model.forward(&mut st, prompt, Logits::Last).unwrap();
    let (mut out, mut rows) = (Vec::new(), Vec::new());
    for _ in 0..n {
        let t = argmax(&logits);
        out.push(t);
        rows.push(logits.clone());
        logits = model.forward(&mut st, &[t], Logits::Last).unwrap();
    }
    (out, rows)
}

/// max |a − b|, failing the test on any NaN or infinity (a plain `f32::max` fold drops NaN)
/// or on a constant `a` against a varying reference `b`.
pub fn max_abs_diff(a: &[f32], b: &[f32]) -> f32 {
    match hearth::numerics::compare(a, b) {
        Ok(d) => d.max_abs,
        Err(e) => panic!("outputs not comparable: {e}"),
    }
}

/// HF float32 reference logits of every position of `p`'s prompt + greedy continuation:
/// (that token sequence, `[seq.len() x vocab]` logits).
pub fn hf_f32_logits(model_name: &str, p: &Prompt, vocab: usize) -> (Vec<u32>, Vec<f32>) {
    let seq: Vec<u32> = p.ids.iter().chain(&p.greedy).copied().collect();
    let path = fixtures().join(format!("refs/{model_name}/hf_f32/{}_logits.npy", p.name));
    let (shape, want) = read_npy_f32(&path);
    assert_eq!(shape, vec![seq.len(), vocab]);
    (seq, want)
}

/// For each reference prompt of a quantized fixture: (prompt name, `model`'s logits at the rows
/// the dequant-HF reference holds, those reference rows).
pub fn dequant_rows<B: Backend>(
    model: &Model<B>,
    model_name: &str,
    variant: &str,
) -> Vec<(String, Vec<f32>, Vec<f32>)> {
    let meta_path = fixtures().join(format!("refs/{model_name}/{variant}/dequant_meta.json"));
    let meta: Value = serde_json::from_str(&std::fs::read_to_string(meta_path).unwrap()).unwrap();
    let v = model.config.vocab;
    prompts(model_name)
        .iter()
        .zip(meta["prompts"].as_array().unwrap())
        .map(|(p, pm)| {
            assert_eq!(pm["name"], p.name.as_str());
            let rows: Vec<usize> = pm["rows"]
                .as_array()
                .unwrap()
                .iter()
                .map(|r| r.as_u64().unwrap() as usize)
                .collect();
            let seq: Vec<u32> = p
                .ids
                .iter()
                .chain(&p.greedy)
                .copied()
                .take(rows.last().unwrap() + 1)
                .collect();
            let got = all_logits(model, &seq);
            let path = fixtures().join(format!(
                "refs/{model_name}/{variant}/dequant_hf_{}_logits.npy",
                p.name
            ));
            let (_, want) = read_npy_f32(&path);
            let got_rows: Vec<f32> = rows
                .iter()
                .flat_map(|&r| got[r * v..(r + 1) * v].iter().copied())
                .collect();
            (p.name.clone(), got_rows, want)
        })
        .collect()
}

/// This process's resident memory in MiB (Linux `/proc/self/statm`; 0 elsewhere).
pub fn rss_mb() -> f64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let pages: f64 = statm
        .split_whitespace()
        .nth(1)
        .and_then(|p| p.parse().ok())
        .unwrap_or(0.0);
    pages * 4096.0 / (1024.0 * 1024.0)
}
