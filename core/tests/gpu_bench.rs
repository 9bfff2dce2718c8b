//! Rough decode / prefill throughput and per-op times, GPU vs CPU (not tests; `--ignored`). On
//! lavapipe the "GPU" is an LLVM CPU emulation, so these numbers only show overheads, not phone
//! speed: `cargo test --release -p hearth --test gpu_bench -- --ignored --nocapture --test-threads=1`

mod common;
mod gpu_common;

use std::sync::Arc;
use std::time::Instant;

use hearth::backend::cpu::CpuBackend;
use hearth::backend::gpu::GpuOptions;
use hearth::backend::{Backend, MoeShape, MoeWeights};
use hearth::gguf::synth::{SynthSpec, synthetic_model};
use hearth::gguf::{GgufFile, GgufWriter};
use hearth::models::lfm2::{Logits, Model, State};
use hearth::quant::GgmlType;
use hearth::quant::quantize as encode;

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

/// Mean time of `op` over `reps` recordings in one pass (after one warm-up pass).
fn time_op<B: Backend>(
    label: &str,
    be: &B,
    reps: usize,
    sync: &B::Tensor,
    mut op: impl FnMut(&mut B::Pass),
) {
    let mut p = be.begin();
    op(&mut p);
    be.read(p, sync, 1).unwrap();
    let t = Instant::now();
    let mut p = be.begin();
    for _ in 0..reps {
        op(&mut p);
    }
    be.read(p, sync, 1).unwrap();
    let ms = t.elapsed().as_secs_f64() * 1e3 / reps as f64;
    eprintln!("{label:<44} {ms:>9.3} ms");
}

fn ops<B: Backend>(tag: &str, be: B, f: &Arc<GgufFile>) {
    let w = |n: &str| be.upload(f, f.tensor_info(n).unwrap()).unwrap();
    let mut p = be.begin();
    let mut x = be.tensor(64, 1024).unwrap();
    be.embed(&mut p, &w("x"), &(0..64).collect::<Vec<u32>>(), &mut x);
    be.finish(p).unwrap();
    let mut acc = be.tensor(64, 1024).unwrap();
    time_op(&format!("{tag} add 64x1024"), &be, 50, &x, |p| {
        be.add(p, &mut acc, &x, 64)
    });
    let nw = w("nw");
    time_op(&format!("{tag} rms_norm 64x1024"), &be, 50, &x, |p| {
        be.rms_norm(p, &x, &nw, 1e-5, 64, &mut acc)
    });
    for ty in ["q4_k", "q6_k", "q8_0", "f16"] {
        let wt = w(ty);
        let mut out = be.tensor(64, 4096).unwrap();
        time_op(&format!("{tag} mat-vec {ty} 4096x1024"), &be, 20, &x, |p| {
            be.matmul(p, &wt, &x, 1, &mut out)
        });
        time_op(
            &format!("{tag} mat-mat {ty} 4096x1024, 64 tokens"),
            &be,
            3,
            &x,
            |p| be.matmul(p, &wt, &x, 64, &mut out),
        );
    }
    let (g, u, d) = (w("gate"), w("up"), w("down"));
    let experts = MoeWeights {
        gate: &g,
        up: &u,
        down: &d,
    };
    let shape = MoeShape {
        n_expert: 16,
        n_expert_used: 4,
        n_ff: 512,
    };
    let router = w("router");
    let (mut logits, mut wts) = (be.tensor(64, 16).unwrap(), be.tensor(64, 4).unwrap());
    let mut ids = be.ids(64, 4, 16).unwrap();
    let (mut hidden, mut out) = (
        be.tensor(256, 512 + 1024).unwrap(),
        be.tensor(64, 1024).unwrap(),
    );
    for n in [1usize, 64] {
        let mut p = be.begin();
        be.matmul(&mut p, &router, &x, n, &mut logits);
        be.moe_route(&mut p, &logits, None, 4, n, &mut ids, &mut wts);
        be.finish(p).unwrap();
        let reps = if n == 1 { 20 } else { 3 };
        time_op(
            &format!("{tag} moe_ffn q4_k 16 experts top-4, {n} tok"),
            &be,
            reps,
            &x,
            |p| be.moe_ffn(p, &x, experts, &ids, &wts, shape, n, &mut hidden, &mut out),
        );
    }
}

#[test]
#[ignore]
fn bench_ops_gpu_vs_cpu() {
    let Some(g) = gpu_common::gpu(GpuOptions::default()) else {
        return;
    };
    let mut rng = common::Rng::new(5);
    let mut wr = GgufWriter::new();
    let mut put = |name: &str, ne: &[u64], ty: GgmlType| {
        let n = ne.iter().product::<u64>() as usize;
        wr.tensor(name, ne, ty, encode(ty, &rng.vec_f32(n)));
    };
    put("x", &[1024, 64], GgmlType::F32);
    put("nw", &[1024], GgmlType::F32);
    put("q4_k", &[1024, 4096], GgmlType::Q4_K);
    put("q6_k", &[1024, 4096], GgmlType::Q6_K);
    put("q8_0", &[1024, 4096], GgmlType::Q8_0);
    put("f16", &[1024, 4096], GgmlType::F16);
    put("router", &[1024, 16], GgmlType::F32);
    put("gate", &[1024, 512, 16], GgmlType::Q4_K);
    put("up", &[1024, 512, 16], GgmlType::Q4_K);
    put("down", &[512, 1024, 16], GgmlType::Q4_K);
    let f = Arc::new(GgufFile::from_bytes(wr.to_bytes()).unwrap());
    ops("cpu", CpuBackend, &f);
    ops("gpu", g, &f);
}
