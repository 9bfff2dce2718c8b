//! The streaming full-size synthetic models: llama.cpp's metadata keys and tensor names, the
//! Q4_K_M type recipe, loading in Hearth, and routing spread over the experts.

mod common;

use std::collections::BTreeSet;
use std::sync::Arc;

use hearth::backend::cpu::CpuBackend;
use hearth::gguf::GgufFile;
use hearth::gguf::synth::{ModelShape, SynthQuant, preset, tensor_plan, write_synthetic};
use hearth::models::lfm2::{Logits, Model, State};
use hearth::quant::GgmlType;
use hearth::{Engine, EngineOptions};

fn tiny(moe: bool) -> ModelShape {
    ModelShape {
        n_embd: 256,
        n_layer: 6,
        attn_layers: vec![2, 5],
        n_head: 4,
        n_head_kv: 2,
        n_ff: 512,
        vocab: 1200,
        moe: moe.then_some((8, 2, 256, 2)),
        rope_base: 1e6,
    }
}

fn write(s: &ModelShape, q: SynthQuant) -> Vec<u8> {
    let mut out = Vec::new();
    let n = write_synthetic(s, q, "tiny", 3, &mut out).unwrap();
    assert_eq!(n as usize, out.len());
    out
}

/// The shape of a fixture file, so its tensor list can be compared name by name.
fn shape_of(f: &GgufFile) -> ModelShape {
    let cfg = hearth::models::lfm2::Config::from_gguf(f).unwrap();
    let p = if cfg.moe.is_some() { "lfm2moe" } else { "lfm2" };
    let u = |k: &str| f.get_u32(&format!("{p}.{k}")).unwrap() as usize;
    let moe = cfg.moe.as_ref().map(|_| {
        (
            u("expert_count"),
            u("expert_used_count"),
            u("expert_feed_forward_length"),
            u("leading_dense_block_count"),
        )
    });
    ModelShape {
        n_embd: u("embedding_length"),
        n_layer: u("block_count"),
        attn_layers: (0..u("block_count"))
            .filter(|&il| cfg.is_attention(il))
            .collect(),
        n_head: u("attention.head_count"),
        n_head_kv: 1,
        n_ff: u("feed_forward_length"),
        vocab: u("vocab_size"),
        moe,
        rope_base: 1e6,
    }
}

#[test]
fn keys_and_tensor_names_match_llama_cpp_files() {
    for fixture in ["lfm2-dense-h64-q4_0", "lfm2moe-h64-e8k2-q4_0"] {
        let fx = GgufFile::open(common::gguf_path(fixture)).unwrap();
        let mut s = shape_of(&fx);
        // Q4_K / Q6_K rows need multiples of 256 (the fixtures fall back to other types).
        s.n_embd = 256;
        s.n_ff = 512;
        s.moe = s.moe.map(|(ne, nu, _, lead)| (ne, nu, 256, lead));
        let f = GgufFile::from_bytes(write(&s, SynthQuant::Q4KM)).unwrap();
        let keys = |g: &GgufFile| -> BTreeSet<String> {
            g.metadata().iter().map(|(k, _)| k.clone()).collect()
        };
        let missing: Vec<_> = keys(&fx).difference(&keys(&f)).cloned().collect();
        assert!(
            missing.is_empty(),
            "{fixture}: synthetic file lacks {missing:?}"
        );
        let names = |g: &GgufFile| -> BTreeSet<String> {
            g.tensors().iter().map(|t| t.name.clone()).collect()
        };
        assert_eq!(names(&fx), names(&f), "{fixture}: tensor names");
        for t in fx.tensors() {
            let ours = f.tensor_info(&t.name).unwrap();
            assert_eq!(t.ne.len(), ours.ne.len(), "{}", t.name);
        }
        // Shapes the block size cannot hold are an error, not a short file.
        let mut bad = s.clone();
        bad.n_ff = 300;
        assert!(write_synthetic(&bad, SynthQuant::Q4KM, "bad", 1, &mut Vec::new()).is_err());
    }
}

fn q6_layers(plan: &[(String, Vec<u64>, GgmlType)], tensor: &str) -> Vec<usize> {
    plan.iter()
        .filter(|(n, _, ty)| n.contains(tensor) && *ty == GgmlType::Q6_K)
        .map(|(n, _, _)| n.split('.').nth(1).unwrap().parse().unwrap())
        .collect()
}

#[test]
fn q4_k_m_recipe_matches_llama_quantize() {
    // lfm2-spec §8.5, "Resulting maps".
    let moe = tensor_plan(&preset("lfm2-8b-a1b").unwrap(), SynthQuant::Q4KM);
    assert_eq!(q6_layers(&moe, "attn_v"), [10, 21]);
    let down = [0, 1, 2, 5, 8, 11, 14, 17, 20, 21, 22, 23];
    assert_eq!(q6_layers(&moe, "ffn_down"), down);
    let dense = tensor_plan(&preset("lfm2.5-1.2b").unwrap(), SynthQuant::Q4KM);
    assert_eq!(q6_layers(&dense, "attn_v"), [8, 14]);
    assert_eq!(q6_layers(&dense, "ffn_down"), [0, 1, 4, 7, 10, 13, 14, 15]);
    assert_eq!(moe.len(), 256, "lfm2-spec §5.2 tensor count");
    let q40 = tensor_plan(&preset("lfm2.5-1.2b").unwrap(), SynthQuant::Q4_0);
    for (name, _, ty) in &q40 {
        let want = match name.as_str() {
            "token_embd.weight" => GgmlType::Q6_K,
            n if n.ends_with("norm.weight") || n.contains("conv.weight") => GgmlType::F32,
            _ => GgmlType::Q4_0,
        };
        assert_eq!(*ty, want, "{name}");
    }
}

#[test]
fn tiny_presets_load_and_run_in_hearth() {
    let dir = std::env::temp_dir().join(format!("hearth-synth-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    for (moe, q) in [
        (false, SynthQuant::Q4_0),
        (false, SynthQuant::Q8_0),
        (true, SynthQuant::Q4KM),
        (true, SynthQuant::F16),
    ] {
        let path = dir.join(format!("tiny-{moe}-{q:?}.gguf"));
        std::fs::write(&path, write(&tiny(moe), q)).unwrap();
        let engine = Engine::load(&path, EngineOptions::default()).unwrap();
        assert_eq!(engine.config().vocab, 1200);
        let ids = engine.tokenizer().encode("hello world", true).unwrap();
        assert!(ids.len() >= 3, "{ids:?}");
        let f = Arc::new(GgufFile::open(&path).unwrap());
        let model = Model::load(&f, CpuBackend).unwrap();
        let mut st = State::new(&model, 16, 16, false).unwrap();
        let logits = model
            .forward(&mut st, &[1, 300, 301, 900], Logits::Last)
            .unwrap();
        let spread = logits.iter().fold(0f32, |m, x| m.max(x.abs()));
        assert!(logits.iter().all(|x| x.is_finite()), "{moe} {q:?}");
        assert!(
            spread > 0.1 && spread < 1e4,
            "{moe} {q:?}: max |logit| {spread}"
        );
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn router_spreads_tokens_over_the_experts() {
    let f = GgufFile::from_bytes(write(&tiny(true), SynthQuant::Q4_0)).unwrap();
    let (info, data) = f.tensor("blk.3.ffn_gate_inp.weight").unwrap();
    let (d, ne) = (info.ne[0] as usize, info.ne[1] as usize);
    let w: Vec<f32> = data
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes(c.try_into().unwrap()))
        .collect();
    let mut rng = common::Rng::new(11);
    let mut counts = vec![0usize; ne];
    let trials = 400;
    for _ in 0..trials {
        let x: Vec<f32> = (0..d).map(|_| rng.f32()).collect();
        let logits: Vec<f32> = (0..ne)
            .map(|e| {
                w[e * d..(e + 1) * d]
                    .iter()
                    .zip(&x)
                    .map(|(a, b)| a * b)
                    .sum()
            })
            .collect();
        let (sel, _) = hearth::backend::cpu::route(&logits, None, 2);
        for e in sel {
            counts[e as usize] += 1;
        }
    }
    let fair = 2 * trials / ne;
    for (e, &c) in counts.iter().enumerate() {
        assert!(
            c > fair / 3 && c < fair * 3,
            "expert {e}: {c} of ~{fair} ({counts:?})"
        );
    }
}
