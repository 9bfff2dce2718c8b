//! Decode-loop discipline (one submit per token, no buffer or bind-group creation), the
//! self-test, tensor splitting under the default binding limit, and typed refusals.

mod common;
mod gpu_common;

use std::sync::Arc;

use hearth::Error;
use hearth::backend::cpu::CpuBackend;
use hearth::backend::gpu::{GpuBackend, GpuOptions};
use hearth::gguf::GgufFile;
use hearth::gguf::synth::{SynthSpec, synthetic_model};
use hearth::models::lfm2::{Logits, Model, State};
use hearth::quant::GgmlType;

#[test]
fn decode_submits_once_per_token_and_creates_nothing() {
    let Some(g) = gpu_common::gpu(GpuOptions::default()) else {
        return;
    };
    for name in ["lfm2moe-h64-e8k2-q4_k_m", "lfm2-dense-h64-f32"] {
        let f = Arc::new(GgufFile::open(common::gguf_path(name)).unwrap());
        let model = Model::load(&f, g.clone()).unwrap();
        let mut st = State::new(&model, 128, 16, false).unwrap();
        let mut logits = model
            .forward(&mut st, &[1, 392, 1846, 1901, 1345], Logits::Last)
            .unwrap();
        // Two warm-up tokens: pipelines and bind groups of the decode shapes get created.
        for _ in 0..2 {
            let t = common::argmax(&logits);
            logits = model.forward(&mut st, &[t], Logits::Last).unwrap();
        }
        let (created, submitted) = (g.resource_creations(), g.submissions());
        for _ in 0..10 {
            let t = common::argmax(&logits);
            logits = model.forward(&mut st, &[t], Logits::Last).unwrap();
            assert_eq!(logits.len(), model.config.vocab);
        }
        assert_eq!(
            g.resource_creations(),
            created,
            "{name}: buffers or bind groups created inside the decode loop"
        );
        assert_eq!(
            g.submissions(),
            submitted + 10,
            "{name}: one submit per token"
        );
    }
}

#[test]
fn self_test_passes_under_every_fallback() {
    for (label, g) in gpu_common::all_combos() {
        g.self_test().unwrap_or_else(|e| panic!("{label}: {e}"));
        eprintln!("{label}: self-test ok\n{}", g.caps());
    }
}

/// Bound on max|Δ| / max|logit| against the CPU: f32 paths agree to rounding; f16 KV caches
/// (the default where `shader-f16` exists) round k and v to 11 bits, ~1e-4 of the logits here.
/// A splitting bug (wrong rows or experts) moves the logits by O(1).
fn tolerance(g: &GpuBackend) -> f32 {
    if g.caps().f16 { 1e-3 } else { 1e-4 }
}

/// Logits of `tokens` (prefill, then two decode steps) on both backends.
fn compare_with_cpu(g: &GpuBackend, f: &Arc<GgufFile>, tokens: &[u32]) -> f32 {
    let cpu = Model::load(f, CpuBackend).unwrap();
    let dev = Model::load(f, g.clone()).unwrap();
    let mut cs = State::new(&cpu, 32, tokens.len(), false).unwrap();
    let mut gs = State::new(&dev, 32, tokens.len(), false).unwrap();
    let mut worst = 0f32;
    let mut step: Vec<u32> = tokens.to_vec();
    for _ in 0..3 {
        let a = cpu.forward(&mut cs, &step, Logits::Last).unwrap();
        let b = dev.forward(&mut gs, &step, Logits::Last).unwrap();
        let d = common::max_abs_diff(&a, &b);
        let max = a.iter().fold(0f32, |m, x| m.max(x.abs()));
        worst = worst.max(d / max);
        step = vec![common::argmax(&a)];
    }
    worst
}

#[test]
fn embedding_over_128_mib_is_split_under_default_limits() {
    let Some(g) = gpu_common::gpu(GpuOptions::default()) else {
        return;
    };
    // 140 000 x 256 F32 = 143 MB > 128 MiB: the tied embedding / LM head must be split by rows.
    let spec = SynthSpec {
        n_embd: 256,
        n_layer: 2,
        attn_layers: vec![1],
        n_ff: 256,
        vocab: 140_000,
        moe: None,
        weight_type: GgmlType::Q8_0,
        embd_type: GgmlType::F32,
        seed: 3,
        ..SynthSpec::default()
    };
    let f = Arc::new(GgufFile::from_bytes(synthetic_model(&spec)).unwrap());
    let bytes = f.tensor_info("token_embd.weight").unwrap().n_bytes;
    assert!(bytes > 128 << 20);
    assert!(
        g.caps().max_binding < bytes,
        "adapter binding limit {} holds the whole table: nothing to prove",
        g.caps().max_binding
    );
    let dev = Model::load(&f, g.clone()).unwrap();
    assert!(dev.token_embd.n_chunks() >= 2);
    drop(dev);
    // Token ids on both sides of the chunk boundary.
    let rel = compare_with_cpu(&g, &f, &[5, 139_999, 70_000, 131_071]);
    eprintln!("split embedding: max |Δ| / max |logit| = {rel:.2e}");
    assert!(rel < tolerance(&g), "{rel}");
}

#[test]
fn forced_small_bindings_split_every_weight() {
    // 80 KiB bindings (one 68 KiB Q8_0 expert each) split every large projection by rows and
    // the expert tensors by expert groups.
    let Some(g) = gpu_common::gpu(GpuOptions {
        max_binding: Some(80 << 10),
        ..Default::default()
    }) else {
        return;
    };
    let spec = SynthSpec::default();
    let f = Arc::new(GgufFile::from_bytes(synthetic_model(&spec)).unwrap());
    let rel = compare_with_cpu(&g, &f, &[1, 2, 3, 250, 299]);
    eprintln!("split model: max |Δ| / max |logit| = {rel:.2e}");
    assert!(rel < tolerance(&g), "{rel}");
}

#[test]
fn kv_cache_beyond_one_binding_is_split_and_matches_cpu() {
    // 80 KiB bindings hold 160 f32 (320 f16) cache rows of 128 values: a 600-position cache
    // takes 4 (2) buffers per tensor, and a 330-token prompt fed 16 at a time crosses them.
    let Some(g) = gpu_common::gpu(GpuOptions {
        max_binding: Some(80 << 10),
        ..Default::default()
    }) else {
        return;
    };
    let f = Arc::new(GgufFile::from_bytes(synthetic_model(&SynthSpec::default())).unwrap());
    let cpu = Model::load(&f, CpuBackend).unwrap();
    let dev = Model::load(&f, g.clone()).unwrap();
    let (cap, batch) = (600, 16);
    let mut cs = State::new(&cpu, cap, batch, false).unwrap();
    let mut gs = State::new(&dev, cap, batch, false).unwrap();
    let (k, _) = gs.kv_caches().next().unwrap();
    let rows_per_segment = (80 << 10) / (128 * if k.is_half() { 2 } else { 4 });
    assert_eq!(k.segments(), cap.div_ceil(rows_per_segment));
    assert!(k.segments() >= 2);
    let prompt: Vec<u32> = (0..330u32).map(|i| (i * 37 + 11) % 300).collect();
    let mut worst = 0f32;
    let mut compare = |a: &[f32], b: &[f32]| {
        let max = a.iter().fold(0f32, |m, x| m.max(x.abs()));
        worst = worst.max(common::max_abs_diff(a, b) / max);
    };
    let mut a = Vec::new();
    for chunk in prompt.chunks(batch) {
        a = cpu.forward(&mut cs, chunk, Logits::Last).unwrap();
        let b = dev.forward(&mut gs, chunk, Logits::Last).unwrap();
        compare(&a, &b);
    }
    for _ in 0..3 {
        let t = common::argmax(&a);
        a = cpu.forward(&mut cs, &[t], Logits::Last).unwrap();
        let b = dev.forward(&mut gs, &[t], Logits::Last).unwrap();
        compare(&a, &b);
    }
    eprintln!("segmented KV cache: max |Δ| / max |logit| = {worst:.2e}");
    assert!(worst < tolerance(&g), "{worst}");
}

#[test]
fn footprint_over_budget_is_refused() {
    let Some(g) = gpu_common::gpu(GpuOptions {
        memory_budget: Some(1 << 20),
        ..Default::default()
    }) else {
        return;
    };
    let f = GgufFile::open(common::gguf_path("lfm2-dense-h256-q8_0")).unwrap();
    let (w, s) = g.estimate(&f, 4096, 64).unwrap();
    assert!(w + s > 1 << 20);
    assert!(matches!(
        g.check_fits(&f, 4096, 64),
        Err(Error::GpuOutOfMemory { .. })
    ));
}

#[test]
fn a_lost_device_is_an_error_not_a_crash() {
    let Some(g) = gpu_common::gpu(GpuOptions::default()) else {
        return;
    };
    let f = Arc::new(GgufFile::from_bytes(synthetic_model(&SynthSpec::default())).unwrap());
    let model = Model::load(&f, g.clone()).unwrap();
    let mut st = State::new(&model, 64, 8, false).unwrap();
    model.forward(&mut st, &[1, 2, 3], Logits::Last).unwrap();
    g.simulate_device_loss();
    for tokens in [&[4u32][..], &[5, 6, 7]] {
        match model.forward(&mut st, tokens, Logits::Last) {
            Err(Error::GpuDeviceLost(_) | Error::Gpu(_)) => {}
            other => panic!("expected a device error, got {other:?}"),
        }
    }
    assert!(State::new(&model, 64, 8, false).is_err());
    assert!(Model::load(&f, g.clone()).is_err());
}

#[test]
fn warm_up_compiles_every_kernel_the_model_dispatches() {
    for name in [
        "lfm2moe-h64-e8k2-q4_k_m",
        "lfm2moe-h64-e16k4-q8_0",
        "lfm2-dense-h256-q5_k_m",
    ] {
        // A fresh device per model: nothing compiled by an earlier one.
        let Some(g) = gpu_common::gpu(GpuOptions::default()) else {
            return;
        };
        let f = Arc::new(GgufFile::open(common::gguf_path(name)).unwrap());
        let model = Model::load(&f, g.clone()).unwrap();
        g.warm_up(&f).unwrap();
        let built = g.pipelines_built();
        let mut st = State::new(&model, 64, 8, false).unwrap();
        // Prefill (mat-mat), decode (mat-vec), and a long-enough prompt for every path.
        let logits = model
            .forward(&mut st, &[1, 392, 1846, 1901, 1345, 7, 8], Logits::Last)
            .unwrap();
        model
            .forward(&mut st, &[common::argmax(&logits)], Logits::Last)
            .unwrap();
        assert_eq!(
            g.pipelines_built(),
            built,
            "{name}: kernels compiled after warm-up"
        );
    }
}
