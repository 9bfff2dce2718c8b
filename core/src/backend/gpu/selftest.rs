//! A short numerical check of every kernel family against the CPU reference: a small random
//! LFM2-MoE model (quantized weights, conv + attention layers, routed experts) run through a
//! prefill and a few decode steps on both backends.

use std::sync::Arc;

use super::GpuBackend;
use crate::backend::cpu::CpuBackend;
use crate::error::{Error, Result};
use crate::gguf::GgufFile;
use crate::gguf::synth::{SynthSpec, synthetic_model};
use crate::models::lfm2::{Logits, Model, State};

/// Largest accepted max|Δ| relative to max|logit| (f32 paths agree to ~1e-5 relative).
const REL_TOL: f32 = 0.01;

pub(super) fn run(gpu: &GpuBackend) -> Result<()> {
    let spec = SynthSpec {
        vocab: 64,
        weight_type: crate::quant::GgmlType::Q4_K,
        embd_type: crate::quant::GgmlType::Q8_0,
        ..SynthSpec::default()
    };
    let file = Arc::new(GgufFile::from_bytes(synthetic_model(&spec))?);
    let cpu = Model::load(&file, CpuBackend)?;
    let dev = Model::load(&file, gpu.clone())?;
    let prompt = [1u32, 5, 9, 33, 2, 60];
    let mut cs = State::new(&cpu, 16, prompt.len(), false)?;
    let mut gs = State::new(&dev, 16, prompt.len(), false)?;
    let mut tok = prompt.to_vec();
    for step in 0..3 {
        let a = cpu.forward(&mut cs, &tok, Logits::Last)?;
        let b = dev.forward(&mut gs, &tok, Logits::Last)?;
        let max = a.iter().fold(0f32, |m, x| m.max(x.abs())).max(1e-6);
        let diff = a
            .iter()
            .zip(&b)
            .fold(0f32, |m, (x, y)| m.max((x - y).abs()));
        if diff.is_nan() || diff > REL_TOL * max {
            return Err(Error::GpuUnavailable(format!(
                "self-test step {step}: max |Δ| {diff} vs max |logit| {max}"
            )));
        }
        let next = a
            .iter()
            .enumerate()
            .max_by(|x, y| x.1.total_cmp(y.1))
            .map_or(0, |(i, _)| i as u32);
        tok = vec![next];
    }
    Ok(())
}
