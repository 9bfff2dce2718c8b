//! The GPU's numerical self-test against the CPU reference, run by the engine's backend
//! selection before a model is loaded on the GPU (broken mobile drivers produce gibberish:
//! catch it before the user does).
//!
//! Two checks, both compared with [`compare`] (NaN, infinity and constant outputs fail, not
//! just large differences):
//! - a small random LFM2 model shaped like the model about to be loaded (dense or MoE, its
//!   head size, its weight and embedding types where a reference quantizer exists) run through a
//!   prefill and a few decode steps on both backends;
//! - for every weight type of the loaded model, rows of one of its real tensors through the
//!   mat-vec (decode), mat-mat (prefill) and embedding kernels of that type.
//!
//! It lives above `backend` (it needs the model and the CPU backend), so `backend::gpu` never
//! depends on either.

use std::sync::Arc;

use crate::backend::Backend;
use crate::backend::cpu::CpuBackend;
use crate::backend::gpu::GpuBackend;
use crate::error::{Error, Result};
use crate::gguf::synth::{SynthSpec, synthetic_model};
use crate::gguf::{GgufFile, GgufWriter, TensorInfo};
use crate::models::lfm2::{Config, Logits, Model, State};
use crate::numerics::compare;
use crate::quant::GgmlType;

/// Largest accepted max|Δ| relative to max|logit| (f32 paths agree to ~1e-5 relative; f16 KV
/// caches to ~1e-4).
const REL_TOL: f32 = 0.01;
/// Rows of a real tensor taken per weight type (enough for several workgroups and a partial
/// mat-mat tile).
const PROBE_ROWS: u64 = 40;
/// Tokens of the mat-mat probe (at least 4: the mat-mat path; not a multiple of the tile).
const PROBE_TOKENS: usize = 5;

/// Types the synthetic model can be built with (those with a reference quantizer).
const SYNTH_TYPES: [GgmlType; 7] = [
    GgmlType::F32,
    GgmlType::F16,
    GgmlType::BF16,
    GgmlType::Q8_0,
    GgmlType::Q4_0,
    GgmlType::Q4_K,
    GgmlType::Q6_K,
];

/// Runs the self-test, shaped after `file` (the model about to be loaded) when given. Every
/// failure is [`Error::GpuUnavailable`]: the engine then falls back to the CPU (or refuses an
/// explicit GPU request).
pub fn run(gpu: &GpuBackend, file: Option<&GgufFile>) -> Result<()> {
    let spec = match file {
        Some(f) => spec_for(f),
        None => default_spec(),
    };
    model_check(gpu, &spec).map_err(unavailable("model"))?;
    if let Some(f) = file {
        for info in probes(f) {
            probe(gpu, f, info).map_err(unavailable(&format!("{} ({})", info.name, info.ty)))?;
        }
    }
    Ok(())
}

fn unavailable(what: &str) -> impl Fn(Error) -> Error + '_ {
    move |e| match e {
        Error::GpuUnavailable(m) => Error::GpuUnavailable(format!("self-test, {what}: {m}")),
        other => Error::GpuUnavailable(format!("self-test, {what}: {other}")),
    }
}

/// A small MoE model with quantized weights, conv and attention layers (no model file given).
fn default_spec() -> SynthSpec {
    SynthSpec {
        vocab: 64,
        weight_type: GgmlType::Q4_K,
        embd_type: GgmlType::Q8_0,
        ..SynthSpec::default()
    }
}

/// The default spec with `file`'s architecture (dense or MoE, experts per token), head size
/// and dominant weight types, scaled down to a 256-wide model.
fn spec_for(file: &GgufFile) -> SynthSpec {
    let mut spec = default_spec();
    let Ok(c) = Config::from_gguf(file) else {
        return spec;
    };
    let d = spec.n_embd;
    if c.head_dim > 0 && d.is_multiple_of(c.head_dim) && c.head_dim <= 128 {
        spec.n_head = d / c.head_dim;
        let kv = c.n_head_kv.iter().copied().find(|&h| h > 0).unwrap_or(1);
        // Keep the GQA ratio where the scaled-down head count allows it.
        let ratio = (c.n_head / kv.max(1)).max(1);
        spec.n_head_kv = if spec.n_head.is_multiple_of(ratio) {
            spec.n_head / ratio
        } else {
            spec.n_head
        };
    }
    spec.moe = c.moe.as_ref().map(|m| {
        let used = m.n_expert_used.clamp(1, 8);
        (m.n_expert.clamp(used + 1, 2 * used + 2), used, 256, 1)
    });
    if let Some(t) = dominant_type(file).filter(|t| SYNTH_TYPES.contains(t)) {
        spec.weight_type = t;
    }
    if let Some(t) = file
        .tensor_info("token_embd.weight")
        .map(|i| i.ty)
        .filter(|t| SYNTH_TYPES.contains(t))
    {
        spec.embd_type = t;
    }
    spec
}

/// The 2-D/3-D weight type holding the most bytes (the embedding aside).
fn dominant_type(file: &GgufFile) -> Option<GgmlType> {
    let mut by_type: Vec<(GgmlType, u64)> = Vec::new();
    for t in file.tensors().iter().filter(|t| is_matrix(t)) {
        match by_type.iter_mut().find(|(ty, _)| *ty == t.ty) {
            Some((_, n)) => *n += t.n_bytes,
            None => by_type.push((t.ty, t.n_bytes)),
        }
    }
    by_type.into_iter().max_by_key(|&(_, n)| n).map(|(t, _)| t)
}

/// Weights the GPU keeps quantized (the dense-at-upload ones run as F32 products).
fn is_matrix(t: &TensorInfo) -> bool {
    t.ne.len() >= 2
        && !t.name.ends_with("shortconv.conv.weight")
        && !t.name.ends_with("ffn_gate_inp.weight")
        && t.name != "token_embd.weight"
}

/// The synthetic model's logits on both backends: a prefill, then decode steps.
fn model_check(gpu: &GpuBackend, spec: &SynthSpec) -> Result<()> {
    let file = Arc::new(GgufFile::from_bytes(synthetic_model(spec))?);
    let cpu = Model::load(&file, CpuBackend)?;
    let dev = Model::load(&file, gpu.clone())?;
    let v = spec.vocab as u32;
    let prompt = [1u32, 5 % v, 9 % v, 33 % v, 2, 60 % v];
    let mut cs = State::new(&cpu, 16, prompt.len(), false)?;
    let mut gs = State::new(&dev, 16, prompt.len(), false)?;
    let mut tok = prompt.to_vec();
    for step in 0..3 {
        let want = cpu.forward(&mut cs, &tok, Logits::Last)?;
        let got = dev.forward(&mut gs, &tok, Logits::Last)?;
        check(&got, &want).map_err(|m| Error::GpuUnavailable(format!("step {step}: {m}")))?;
        let next = want
            .iter()
            .enumerate()
            .max_by(|x, y| x.1.total_cmp(y.1))
            .map_or(0, |(i, _)| i as u32);
        tok = vec![next];
    }
    Ok(())
}

/// `Err` (a message) unless `got` is finite, not constant, and within [`REL_TOL`] of `want`.
fn check(got: &[f32], want: &[f32]) -> std::result::Result<(), String> {
    let d = compare(got, want).map_err(|e| e.to_string())?;
    if d.relative() > REL_TOL {
        return Err(format!(
            "max |Δ| {} vs max |reference| {}",
            d.max_abs, d.max_ref
        ));
    }
    Ok(())
}

/// One tensor per weight type of `file` (the embedding's type included).
fn probes(file: &GgufFile) -> Vec<&TensorInfo> {
    let mut out: Vec<&TensorInfo> = Vec::new();
    let embd = file.tensor_info("token_embd.weight").into_iter();
    for t in embd.chain(file.tensors().iter().filter(|t| is_matrix(t))) {
        if t.ty.require_supported(&t.name).is_ok() && !out.iter().any(|o| o.ty == t.ty) {
            out.push(t);
        }
    }
    out
}

/// The first rows of `info` (its real quantized bytes) through mat-vec, mat-mat and embedding
/// on both backends.
fn probe(gpu: &GpuBackend, file: &GgufFile, info: &TensorInfo) -> Result<()> {
    let k = info.ne[0];
    let rows = info.n_rows().min(PROBE_ROWS);
    let bytes = (rows * info.row_bytes()) as usize;
    let data = file.tensor_data(info)[..bytes].to_vec();
    let mut w = GgufWriter::new();
    w.tensor("probe.weight", &[k, rows], info.ty, data);
    let small = Arc::new(GgufFile::from_bytes(w.to_bytes())?);
    let pinfo = small
        .tensor_info("probe.weight")
        .ok_or_else(|| Error::Gpu("probe tensor missing".into()))?;
    let x: Vec<f32> = (0..PROBE_TOKENS * k as usize)
        .map(|i| ((i * 7919 % 2003) as f32 / 1001.5 - 1.0) * 0.5)
        .collect();
    let tokens: Vec<u32> = (0..PROBE_TOKENS as u32)
        .map(|t| (t * 7) % rows as u32)
        .collect();
    let want = probe_outputs(&CpuBackend, &small, pinfo, &x, &tokens)?;
    let got = probe_outputs(gpu, &small, pinfo, &x, &tokens)?;
    for (what, (g, w)) in ["mat-vec", "mat-mat", "embedding"]
        .iter()
        .zip(got.iter().zip(&want))
    {
        check(g, w).map_err(|m| Error::GpuUnavailable(format!("{what}: {m}")))?;
    }
    Ok(())
}

/// (one-token product, [`PROBE_TOKENS`]-token product, embedding rows) of a weight on `be`.
fn probe_outputs<B: Backend>(
    be: &B,
    file: &Arc<GgufFile>,
    info: &TensorInfo,
    x: &[f32],
    tokens: &[u32],
) -> Result<[Vec<f32>; 3]> {
    let (k, rows) = (info.ne[0] as usize, info.n_rows() as usize);
    let w = be.upload(file, info)?;
    let mut xt = be.tensor(PROBE_TOKENS, k)?;
    be.write_rows(&mut xt, 0, x)?;
    let mut out = be.tensor(PROBE_TOKENS, rows)?;
    let mut product = |n: usize| -> Result<Vec<f32>> {
        let mut pass = be.begin();
        be.matmul(&mut pass, &w, &xt, n, &mut out);
        be.read(pass, &out, n)
    };
    let (one, many) = (product(1)?, product(PROBE_TOKENS)?);
    let mut emb = be.tensor(tokens.len(), k)?;
    let mut pass = be.begin();
    be.embed(&mut pass, &w, tokens, &mut emb);
    let rows_out = be.read(pass, &emb, tokens.len())?;
    Ok([one, many, rows_out])
}
