//! Rough decode / prefill throughput, GPU vs CPU (not a test; `--ignored`). On lavapipe the
//! "GPU" is an LLVM CPU emulation, so these numbers only show overheads, not phone speed:
//! `cargo test --release -p hearth --test gpu_bench -- --ignored --nocapture --test-threads=1`

mod common;
mod gpu_common;

use std::sync::Arc;
use std::time::Instant;

use hearth::backend::Backend;
use hearth::backend::cpu::CpuBackend;
use hearth::backend::gpu::GpuOptions;
use hearth::backend::gpu::synth::{SynthSpec, synthetic_model};
use hearth::gguf::GgufFile;
use hearth::models::lfm2::{Logits, Model, State};
use hearth::quant::GgmlType;

fn run<B: Backend>(label: &str, f: &Arc<GgufFile>, be: B, prefill: usize, decode: usize) {
    let model = Model::load(f, be).unwrap();
    let prompt: Vec<u32> = (0..prefill as u32).map(|i| (i * 7 + 1) % 200).collect();
    // Warm-up (pipelines, bind groups, caches).
    let mut st = State::new(&model, prefill + decode + 8, prefill, false).unwrap();
    model.forward(&mut st, &prompt, Logits::Last).unwrap();
    model.forward(&mut st, &[3], Logits::Last).unwrap();
    let mut st = State::new(&model, prefill + decode + 8, prefill, false).unwrap();
    let t0 = Instant::now();
    model.forward(&mut st, &prompt, Logits::Last).unwrap();
    let tp = t0.elapsed().as_secs_f64();
    let t1 = Instant::now();
    for i in 0..decode {
        model
            .forward(&mut st, &[(i as u32 * 13) % 200], Logits::Last)
            .unwrap();
    }
    let td = t1.elapsed().as_secs_f64();
    eprintln!(
        "{label:<48} prefill {prefill}: {:>8.1} tok/s   decode: {:>7.1} tok/s",
        prefill as f64 / tp,
        decode as f64 / td
    );
}

#[test]
#[ignore]
fn bench_gpu_vs_cpu() {
    let Some(g) = gpu_common::gpu(GpuOptions::default()) else {
        return;
    };
    eprintln!("{}", g.caps());
    for name in ["lfm2-dense-h256-q4_k_m", "lfm2moe-h256-e8k2-q4_k_m"] {
        let f = Arc::new(GgufFile::open(common::gguf_path(name)).unwrap());
        run(&format!("{name} cpu"), &f, CpuBackend, 64, 32);
        run(&format!("{name} gpu"), &f, g.clone(), 64, 32);
    }
    // A wider synthetic MoE model: d 1024, 4 layers, 16 experts top-4, Q4_K.
    let spec = SynthSpec {
        n_embd: 1024,
        n_layer: 4,
        attn_layers: vec![1, 3],
        n_head: 16,
        n_head_kv: 4,
        n_ff: 2048,
        vocab: 8192,
        moe: Some((16, 4, 512, 1)),
        weight_type: GgmlType::Q4_K,
        embd_type: GgmlType::Q6_K,
        seed: 9,
    };
    let f = Arc::new(GgufFile::from_bytes(synthetic_model(&spec)).unwrap());
    run("synthetic d1024 moe16k4 q4_k cpu", &f, CpuBackend, 64, 16);
    run("synthetic d1024 moe16k4 q4_k gpu", &f, g.clone(), 64, 16);
}
