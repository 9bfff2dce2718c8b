//! Synthetic LFM2 / LFM2-MoE models built in memory (GPU self-test, splitting tests, benchmarks).

use crate::gguf::{GgufWriter, MetaValue};
use crate::quant::{GgmlType, quantize};

/// Shape and encoding of a synthetic model.
#[derive(Clone, Debug)]
pub struct SynthSpec {
    pub n_embd: usize,
    pub n_layer: usize,
    /// Layers that are attention layers (the others are short-conv layers).
    pub attn_layers: Vec<usize>,
    pub n_head: usize,
    pub n_head_kv: usize,
    pub n_ff: usize,
    pub vocab: usize,
    /// `Some((n_expert, n_expert_used, n_ff_exp, n_dense_lead))` makes an LFM2-MoE model.
    pub moe: Option<(usize, usize, usize, usize)>,
    /// Type of the 2-D/3-D weights (F32, F16, BF16, Q8_0, Q4_0, Q4_K, Q6_K).
    pub weight_type: GgmlType,
    /// Type of the token embedding (tied LM head).
    pub embd_type: GgmlType,
    pub seed: u64,
}

impl Default for SynthSpec {
    fn default() -> Self {
        SynthSpec {
            n_embd: 256,
            n_layer: 3,
            attn_layers: vec![1],
            n_head: 4,
            n_head_kv: 2,
            n_ff: 512,
            vocab: 300,
            moe: Some((6, 2, 256, 1)),
            weight_type: GgmlType::Q8_0,
            embd_type: GgmlType::Q4_K,
            seed: 7,
        }
    }
}

struct Rng(u64);

impl Rng {
    fn f32(&mut self) -> f32 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 >> 40) as f32 / (1u64 << 23) as f32 - 1.0
    }
    fn vec(&mut self, n: usize, scale: f32) -> Vec<f32> {
        (0..n).map(|_| self.f32() * scale).collect()
    }
}

/// The GGUF image of a random model with `spec`'s shapes.
pub fn synthetic_model(spec: &SynthSpec) -> Vec<u8> {
    let mut rng = Rng(spec.seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
    let p = if spec.moe.is_some() {
        "lfm2moe"
    } else {
        "lfm2"
    };
    let d = spec.n_embd;
    let hd = d / spec.n_head;
    let mut w = GgufWriter::new();
    let k = |s: &str| format!("{p}.{s}");
    w.meta("general.architecture", MetaValue::String(p.into()));
    w.meta(&k("block_count"), MetaValue::U32(spec.n_layer as u32));
    w.meta(&k("embedding_length"), MetaValue::U32(d as u32));
    w.meta(
        &k("attention.head_count"),
        MetaValue::U32(spec.n_head as u32),
    );
    let kv: Vec<MetaValue> = (0..spec.n_layer)
        .map(|il| {
            MetaValue::U32(if spec.attn_layers.contains(&il) {
                spec.n_head_kv as u32
            } else {
                0
            })
        })
        .collect();
    w.meta(&k("attention.head_count_kv"), MetaValue::Array(kv));
    w.meta(&k("attention.layer_norm_rms_epsilon"), MetaValue::F32(1e-5));
    w.meta(&k("rope.freq_base"), MetaValue::F32(1_000_000.0));
    w.meta(&k("shortconv.l_cache"), MetaValue::U32(3));
    w.meta(&k("context_length"), MetaValue::U32(4096));
    w.meta(&k("feed_forward_length"), MetaValue::U32(spec.n_ff as u32));
    if let Some((ne, nu, ffe, lead)) = spec.moe {
        w.meta(&k("expert_count"), MetaValue::U32(ne as u32));
        w.meta(&k("expert_used_count"), MetaValue::U32(nu as u32));
        w.meta(&k("expert_feed_forward_length"), MetaValue::U32(ffe as u32));
        w.meta(&k("leading_dense_block_count"), MetaValue::U32(lead as u32));
        w.meta(&k("expert_gating_func"), MetaValue::U32(2));
    }
    let mat =
        |rng: &mut Rng, w: &mut GgufWriter, name: &str, ne: &[usize], ty: GgmlType, scale: f32| {
            let n: usize = ne.iter().product();
            let v = rng.vec(n, scale);
            let ne64: Vec<u64> = ne.iter().map(|&x| x as u64).collect();
            w.tensor(name, &ne64, ty, quantize(ty, &v));
        };
    let wt = spec.weight_type;
    let sc = |kdim: usize| 1.7 / (kdim as f32).sqrt();
    mat(
        &mut rng,
        &mut w,
        "token_embd.weight",
        &[d, spec.vocab],
        spec.embd_type,
        1.0,
    );
    let norm =
        |rng: &mut Rng, n: usize| -> Vec<f32> { (0..n).map(|_| 1.0 + 0.2 * rng.f32()).collect() };
    let v = norm(&mut rng, d);
    w.tensor_f32("token_embd_norm.weight", &[d as u64], &v);
    for il in 0..spec.n_layer {
        let n = |s: &str| format!("blk.{il}.{s}.weight");
        let v = norm(&mut rng, d);
        w.tensor_f32(&n("attn_norm"), &[d as u64], &v);
        let v = norm(&mut rng, d);
        w.tensor_f32(&n("ffn_norm"), &[d as u64], &v);
        if spec.attn_layers.contains(&il) {
            let kvw = spec.n_head_kv * hd;
            mat(&mut rng, &mut w, &n("attn_q"), &[d, d], wt, sc(d));
            mat(&mut rng, &mut w, &n("attn_k"), &[d, kvw], wt, sc(d));
            mat(&mut rng, &mut w, &n("attn_v"), &[d, kvw], wt, sc(d));
            mat(&mut rng, &mut w, &n("attn_output"), &[d, d], wt, sc(d));
            let v = norm(&mut rng, hd);
            w.tensor_f32(&n("attn_q_norm"), &[hd as u64], &v);
            let v = norm(&mut rng, hd);
            w.tensor_f32(&n("attn_k_norm"), &[hd as u64], &v);
        } else {
            mat(
                &mut rng,
                &mut w,
                &n("shortconv.in_proj"),
                &[d, 3 * d],
                wt,
                sc(d),
            );
            mat(
                &mut rng,
                &mut w,
                &n("shortconv.conv"),
                &[3, d],
                GgmlType::F32,
                0.6,
            );
            mat(
                &mut rng,
                &mut w,
                &n("shortconv.out_proj"),
                &[d, d],
                wt,
                sc(d),
            );
        }
        match spec.moe {
            Some((ne, _, ffe, lead)) if il >= lead => {
                mat(
                    &mut rng,
                    &mut w,
                    &n("ffn_gate_inp"),
                    &[d, ne],
                    GgmlType::F32,
                    sc(d),
                );
                let b = rng.vec(ne, 0.1);
                w.tensor_f32(&format!("blk.{il}.exp_probs_b.bias"), &[ne as u64], &b);
                mat(
                    &mut rng,
                    &mut w,
                    &n("ffn_gate_exps"),
                    &[d, ffe, ne],
                    wt,
                    sc(d),
                );
                mat(
                    &mut rng,
                    &mut w,
                    &n("ffn_up_exps"),
                    &[d, ffe, ne],
                    wt,
                    sc(d),
                );
                mat(
                    &mut rng,
                    &mut w,
                    &n("ffn_down_exps"),
                    &[ffe, d, ne],
                    wt,
                    sc(ffe),
                );
            }
            _ => {
                mat(&mut rng, &mut w, &n("ffn_gate"), &[d, spec.n_ff], wt, sc(d));
                mat(&mut rng, &mut w, &n("ffn_up"), &[d, spec.n_ff], wt, sc(d));
                mat(
                    &mut rng,
                    &mut w,
                    &n("ffn_down"),
                    &[spec.n_ff, d],
                    wt,
                    sc(spec.n_ff),
                );
            }
        }
    }
    w.to_bytes()
}
