//! Shared helpers for the integration tests: fixture paths, .npy reading, reference prompts,
//! greedy decoding on any backend, a tiny PRNG.
#![allow(dead_code)]

use std::path::PathBuf;

use hearth::backend::Backend;
use hearth::models::lfm2::{Logits, Model, State};
use serde_json::Value;

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
