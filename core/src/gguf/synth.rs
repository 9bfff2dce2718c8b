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

// ---------------------------------------------------------------------------------------------
// Full-size synthetic models, written streaming (a 4.7 GiB model never sits in memory).

/// Weight encodings of the released GGUFs (tensor types as llama-quantize assigns them, §8.5).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SynthQuant {
    /// Q4_0 everywhere, token embedding Q6_K.
    Q4_0,
    /// Q4_K base, Q6_K for the embedding and the "more bits" attn_v / ffn_down tensors.
    Q4KM,
    Q8_0,
    F16,
}

impl SynthQuant {
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s.to_ascii_lowercase().as_str() {
            "q4_0" => SynthQuant::Q4_0,
            "q4_k_m" => SynthQuant::Q4KM,
            "q8_0" => SynthQuant::Q8_0,
            "f16" => SynthQuant::F16,
            _ => return None,
        })
    }

    /// llama.cpp's `general.file_type` (LLAMA_FTYPE_*).
    fn file_type(self) -> u32 {
        match self {
            SynthQuant::F16 => 1,
            SynthQuant::Q4_0 => 2,
            SynthQuant::Q8_0 => 7,
            SynthQuant::Q4KM => 15,
        }
    }

    fn base(self) -> GgmlType {
        match self {
            SynthQuant::Q4_0 => GgmlType::Q4_0,
            SynthQuant::Q4KM => GgmlType::Q4_K,
            SynthQuant::Q8_0 => GgmlType::Q8_0,
            SynthQuant::F16 => GgmlType::F16,
        }
    }

    fn embd(self) -> GgmlType {
        match self {
            SynthQuant::Q4_0 | SynthQuant::Q4KM => GgmlType::Q6_K,
            other => other.base(),
        }
    }

    /// Type of a "more bits" tensor (attn_v / ffn_down picked by `use_more_bits`).
    fn more_bits(self, more: bool) -> GgmlType {
        if more && self == SynthQuant::Q4KM {
            GgmlType::Q6_K
        } else {
            self.base()
        }
    }
}

/// llama.cpp's `use_more_bits(i, n)` (llama-quant.cpp).
fn use_more_bits(i: usize, n: usize) -> bool {
    // Past the first clause i >= n / 8, so the subtraction cannot underflow.
    i < n / 8 || i >= 7 * n / 8 || (i - n / 8) % 3 == 2
}

/// The shape of a released model (lfm2-spec §2), for the full-size synthetic files.
#[derive(Clone, Debug)]
pub struct ModelShape {
    pub n_embd: usize,
    pub n_layer: usize,
    pub attn_layers: Vec<usize>,
    pub n_head: usize,
    pub n_head_kv: usize,
    pub n_ff: usize,
    pub vocab: usize,
    /// `(n_expert, n_expert_used, n_ff_exp, n_dense_lead)` for LFM2-MoE.
    pub moe: Option<(usize, usize, usize, usize)>,
    pub rope_base: f32,
}

/// Preset names accepted by [`preset`].
pub const PRESETS: [&str; 4] = ["lfm2-350m", "lfm2.5-1.2b", "lfm2-8b-a1b", "lfm2.5-8b-a1b"];

/// The shape of a released model by name (see [`PRESETS`]).
pub fn preset(name: &str) -> Option<ModelShape> {
    let dense16 = vec![2, 5, 8, 10, 12, 14];
    let moe24 = vec![2, 6, 10, 14, 18, 21];
    let moe = |vocab, rope_base| ModelShape {
        n_embd: 2048,
        n_layer: 24,
        attn_layers: moe24.clone(),
        n_head: 32,
        n_head_kv: 8,
        n_ff: 7168,
        vocab,
        moe: Some((32, 4, 1792, 2)),
        rope_base,
    };
    Some(match name {
        "lfm2-350m" => ModelShape {
            n_embd: 1024,
            n_layer: 16,
            attn_layers: dense16,
            n_head: 16,
            n_head_kv: 8,
            n_ff: 4608,
            vocab: 65536,
            moe: None,
            rope_base: 1e6,
        },
        "lfm2.5-1.2b" => ModelShape {
            n_embd: 2048,
            n_layer: 16,
            attn_layers: dense16,
            n_head: 32,
            n_head_kv: 8,
            n_ff: 8192,
            vocab: 65536,
            moe: None,
            rope_base: 1e6,
        },
        "lfm2-8b-a1b" => moe(65536, 1e6),
        "lfm2.5-8b-a1b" => moe(128_000, 5e6),
        _ => return None,
    })
}

/// How a tensor's values are made.
#[derive(Clone, Copy, Debug)]
enum Fill {
    /// Random weights with standard deviation ~`scale`.
    Weight(f32),
    /// 1 ± 0.2 (norm gains).
    Norm,
    /// Uniform in ±scale, F32 (conv taps, router, expert bias).
    Plain(f32),
}

struct Planned {
    name: String,
    ne: Vec<u64>,
    ty: GgmlType,
    fill: Fill,
}

/// Every tensor of the model in llama.cpp's order and naming (lfm2-spec §5).
fn plan(s: &ModelShape, q: SynthQuant) -> Vec<Planned> {
    let d = s.n_embd as u64;
    let hd = d / s.n_head as u64;
    let sc = |k: u64| 1.7 / (k as f32).sqrt();
    let mut out = Vec::new();
    let mut t = |name: String, ne: &[u64], ty: GgmlType, fill: Fill| {
        out.push(Planned {
            name,
            ne: ne.to_vec(),
            ty,
            fill,
        })
    };
    let f32t = GgmlType::F32;
    t(
        "token_embd.weight".into(),
        &[d, s.vocab as u64],
        q.embd(),
        Fill::Weight(1.0),
    );
    t("token_embd_norm.weight".into(), &[d], f32t, Fill::Norm);
    let n_attn = s.attn_layers.len();
    for il in 0..s.n_layer {
        let n = |x: &str| format!("blk.{il}.{x}.weight");
        t(n("attn_norm"), &[d], f32t, Fill::Norm);
        t(n("ffn_norm"), &[d], f32t, Fill::Norm);
        if let Some(ord) = s.attn_layers.iter().position(|&a| a == il) {
            let kvw = s.n_head_kv as u64 * hd;
            t(n("attn_q"), &[d, d], q.base(), Fill::Weight(sc(d)));
            t(n("attn_k"), &[d, kvw], q.base(), Fill::Weight(sc(d)));
            let v_ty = q.more_bits(use_more_bits(ord, n_attn));
            t(n("attn_v"), &[d, kvw], v_ty, Fill::Weight(sc(d)));
            t(n("attn_output"), &[d, d], q.base(), Fill::Weight(sc(d)));
            t(n("attn_q_norm"), &[hd], f32t, Fill::Norm);
            t(n("attn_k_norm"), &[hd], f32t, Fill::Norm);
        } else {
            t(
                n("shortconv.in_proj"),
                &[d, 3 * d],
                q.base(),
                Fill::Weight(sc(d)),
            );
            t(n("shortconv.conv"), &[3, d], f32t, Fill::Plain(0.6));
            t(
                n("shortconv.out_proj"),
                &[d, d],
                q.base(),
                Fill::Weight(sc(d)),
            );
        }
        let down_ty = q.more_bits(use_more_bits(il, s.n_layer));
        match s.moe {
            Some((ne, _, ffe, lead)) if il >= lead => {
                let (ne, ffe) = (ne as u64, ffe as u64);
                // Uniform ±sc(d) router rows: random activations spread over all experts.
                t(n("ffn_gate_inp"), &[d, ne], f32t, Fill::Plain(sc(d)));
                let bias = format!("blk.{il}.exp_probs_b.bias");
                t(bias, &[ne], f32t, Fill::Plain(0.1));
                let w = Fill::Weight(sc(d));
                t(n("ffn_gate_exps"), &[d, ffe, ne], q.base(), w);
                t(n("ffn_up_exps"), &[d, ffe, ne], q.base(), w);
                let wd = Fill::Weight(sc(ffe));
                t(n("ffn_down_exps"), &[ffe, d, ne], down_ty, wd);
            }
            _ => {
                let ff = s.n_ff as u64;
                t(n("ffn_gate"), &[d, ff], q.base(), Fill::Weight(sc(d)));
                t(n("ffn_up"), &[d, ff], q.base(), Fill::Weight(sc(d)));
                t(n("ffn_down"), &[ff, d], down_ty, Fill::Weight(sc(ff)));
            }
        }
    }
    out
}

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn fill(&mut self, out: &mut [u8]) {
        for c in out.chunks_mut(8) {
            let v = self.next().to_le_bytes();
            c.copy_from_slice(&v[..c.len()]);
        }
    }
    /// Uniform in `lo..=hi` (small ranges).
    fn range(&mut self, lo: u8, hi: u8) -> u8 {
        lo + (self.next() >> 40) as u8 % (hi - lo + 1)
    }
}

fn f16le(v: f32) -> [u8; 2] {
    half::f16::from_f32(v).to_le_bytes()
}

/// Packs eight 6-bit (scale, min) pairs the way `get_scale_min_k4` reads them.
fn pack_scale_min_k4(sc: &[u8; 8], m: &[u8; 8]) -> [u8; 12] {
    let mut q = [0u8; 12];
    for j in 0..4 {
        q[j] = sc[j] | ((sc[j + 4] >> 4) << 6);
        q[j + 4] = m[j] | ((m[j + 4] >> 4) << 6);
        q[j + 8] = (sc[j + 4] & 0xF) | ((m[j + 4] & 0xF) << 4);
    }
    q
}

/// One random block of `ty` whose values have standard deviation ~`scale` and mean ~0.
/// Blocks are drawn directly (no float quantizer): gigabytes take seconds, not hours.
fn random_block(rng: &mut Rng, ty: GgmlType, scale: f32, out: &mut [u8]) {
    let jitter = 0.75 + 0.5 * (rng.f32() * 0.5 + 0.5);
    match ty {
        GgmlType::Q4_0 => {
            out[..2].copy_from_slice(&f16le(scale * jitter / 4.6));
            rng.fill(&mut out[2..]);
        }
        GgmlType::Q8_0 => {
            out[..2].copy_from_slice(&f16le(scale * jitter / 74.0));
            rng.fill(&mut out[2..]);
        }
        GgmlType::Q4_K => {
            // value = d*sc*q - dmin*m with q in 0..16; m = sc/2 and dmin = 15d centre it.
            let d = scale * jitter / (4.6 * 48.0);
            out[..2].copy_from_slice(&f16le(d));
            out[2..4].copy_from_slice(&f16le(15.0 * d));
            let sc: [u8; 8] = std::array::from_fn(|_| rng.range(32, 63));
            let m = sc.map(|s| s / 2);
            out[4..16].copy_from_slice(&pack_scale_min_k4(&sc, &m));
            rng.fill(&mut out[16..]);
        }
        GgmlType::Q6_K => {
            // value = d*sc*(q-32), q 6-bit; ql/qh random, positive 6-bit scales.
            rng.fill(&mut out[..192]);
            for s in &mut out[192..208] {
                *s = rng.range(32, 63);
            }
            out[208..].copy_from_slice(&f16le(scale * jitter / (18.5 * 48.0)));
        }
        GgmlType::F16 => {
            for c in out.chunks_exact_mut(2) {
                c.copy_from_slice(&f16le(rng.f32() * scale * 1.73));
            }
        }
        _ => unreachable!("synthetic weights are only planned in Q4_0/Q8_0/Q4_K/Q6_K/F16"),
    }
}

/// Byte-level BPE vocabulary of `n` tokens: LFM2's control tokens at their ids (bos 1, eos 7),
/// the 256 byte symbols, lowercase-pair merges, then filler tokens up to the model's vocab.
fn tokenizer_meta(w: &mut GgufWriter, n: usize) {
    const SPECIALS: [&str; 8] = [
        "<|pad|>",
        "<|startoftext|>",
        "<|endoftext|>",
        "<|fim_pre|>",
        "<|fim_mid|>",
        "<|fim_suf|>",
        "<|im_start|>",
        "<|im_end|>",
    ];
    let mut tokens: Vec<String> = SPECIALS.iter().map(|s| s.to_string()).collect();
    let mut types = vec![3i32; SPECIALS.len()];
    tokens.extend((0..=255u8).map(|b| byte_symbol(b).to_string()));
    let mut merges = Vec::new();
    for a in b'a'..=b'z' {
        for b in b'a'..=b'z' {
            merges.push(format!("{} {}", a as char, b as char));
            tokens.push(format!("{}{}", a as char, b as char));
        }
    }
    let mut i = 0;
    while tokens.len() < n {
        tokens.push(format!("<|synth_{i}|>"));
        i += 1;
    }
    tokens.truncate(n);
    merges.retain(|m| tokens.contains(&m.replace(' ', "")));
    types.resize(tokens.len(), 1);
    let strs = |v: Vec<String>| MetaValue::Array(v.into_iter().map(MetaValue::String).collect());
    w.meta("tokenizer.ggml.model", MetaValue::String("gpt2".into()));
    w.meta("tokenizer.ggml.pre", MetaValue::String("lfm2".into()));
    w.meta("tokenizer.ggml.tokens", strs(tokens));
    let types = types.into_iter().map(MetaValue::I32).collect();
    w.meta("tokenizer.ggml.token_type", MetaValue::Array(types));
    w.meta("tokenizer.ggml.merges", strs(merges));
    w.meta("tokenizer.ggml.bos_token_id", MetaValue::U32(1));
    w.meta("tokenizer.ggml.eos_token_id", MetaValue::U32(7));
    w.meta("tokenizer.ggml.padding_token_id", MetaValue::U32(0));
    w.meta("tokenizer.ggml.add_bos_token", MetaValue::Bool(true));
    w.meta("tokenizer.ggml.add_eos_token", MetaValue::Bool(false));
    let template = "{{- bos_token -}}{%- for m in messages -%}{{- '<|im_start|>' + m['role'] + \
                    '\\n' + m['content'] + '<|im_end|>\\n' -}}{%- endfor -%}\
                    {%- if add_generation_prompt -%}{{- '<|im_start|>assistant\\n' -}}{%- endif -%}";
    w.meta(
        "tokenizer.chat_template",
        MetaValue::String(template.into()),
    );
}

/// GPT-2's byte-to-unicode map (printable Latin-1 stays, the rest moves to U+0100..).
fn byte_symbol(b: u8) -> char {
    let printable = |c: u8| (b'!'..=b'~').contains(&c) || (0xA1..=0xAC).contains(&c) || c >= 0xAE;
    if printable(b) {
        return b as char;
    }
    let shift = (0..b).filter(|&c| !printable(c)).count() as u32;
    char::from_u32(256 + shift).expect("U+0100..U+0143 are chars")
}

/// Model metadata as llama.cpp's converter writes it (lfm2-spec §4).
fn model_meta(s: &ModelShape, q: SynthQuant, name: &str) -> GgufWriter {
    let p = if s.moe.is_some() { "lfm2moe" } else { "lfm2" };
    let mut w = GgufWriter::new();
    let k = |x: &str| format!("{p}.{x}");
    let u = |v: usize| MetaValue::U32(v as u32);
    w.meta("general.architecture", MetaValue::String(p.into()));
    w.meta("general.type", MetaValue::String("model".into()));
    w.meta(
        "general.name",
        MetaValue::String(format!("synthetic {name}")),
    );
    w.meta("general.size_label", MetaValue::String(name.into()));
    w.meta(&k("block_count"), u(s.n_layer));
    w.meta(&k("context_length"), u(128_000));
    w.meta(&k("embedding_length"), u(s.n_embd));
    w.meta(&k("feed_forward_length"), u(s.n_ff));
    w.meta(&k("attention.head_count"), u(s.n_head));
    let kv = (0..s.n_layer)
        .map(|il| {
            MetaValue::I32(if s.attn_layers.contains(&il) {
                s.n_head_kv as i32
            } else {
                0
            })
        })
        .collect();
    w.meta(&k("attention.head_count_kv"), MetaValue::Array(kv));
    w.meta(&k("rope.freq_base"), MetaValue::F32(s.rope_base));
    w.meta(&k("attention.layer_norm_rms_epsilon"), MetaValue::F32(1e-5));
    if let Some((ne, nu, ffe, lead)) = s.moe {
        w.meta(&k("expert_count"), u(ne));
        w.meta(&k("expert_used_count"), u(nu));
        w.meta(&k("expert_feed_forward_length"), u(ffe));
        w.meta(&k("leading_dense_block_count"), u(lead));
        w.meta(&k("expert_gating_func"), u(2));
    }
    w.meta(&k("vocab_size"), u(s.vocab));
    w.meta(&k("shortconv.l_cache"), u(3));
    tokenizer_meta(&mut w, s.vocab);
    w.meta("general.quantization_version", u(2));
    w.meta("general.file_type", u(q.file_type() as usize));
    w
}

/// Writes a full-size random model of shape `s` in encoding `q` to `out`, one row at a time.
/// Returns the bytes written.
pub fn write_synthetic(
    s: &ModelShape,
    q: SynthQuant,
    name: &str,
    seed: u64,
    out: &mut impl std::io::Write,
) -> std::io::Result<u64> {
    let align = crate::gguf::DEFAULT_ALIGNMENT as usize;
    let tensors = plan(s, q);
    if let Some(t) = tensors
        .iter()
        .find(|t| !t.ne[0].is_multiple_of(t.ty.block_elems() as u64))
    {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            format!(
                "{}: rows of {} are not whole {} blocks",
                t.name, t.ne[0], t.ty
            ),
        ));
    }
    let meta = model_meta(s, q, name);
    // The writer's metadata encoding, without its tensor section; tensor count patched in.
    let (mut head, layout) = meta.to_bytes_with_layout();
    head.truncate(layout.infos_end);
    head[8..16].copy_from_slice(&(tensors.len() as u64).to_le_bytes());
    let mut offset = 0u64;
    for t in &tensors {
        head.extend_from_slice(&(t.name.len() as u64).to_le_bytes());
        head.extend_from_slice(t.name.as_bytes());
        head.extend_from_slice(&(t.ne.len() as u32).to_le_bytes());
        for d in &t.ne {
            head.extend_from_slice(&d.to_le_bytes());
        }
        head.extend_from_slice(&t.ty.id().to_le_bytes());
        head.extend_from_slice(&offset.to_le_bytes());
        offset = (offset + tensor_bytes(t)).div_ceil(align as u64) * align as u64;
    }
    head.resize(head.len().div_ceil(align) * align, 0);
    out.write_all(&head)?;
    let mut written = head.len() as u64;
    let mut rng = Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
    let mut row = Vec::new();
    for t in &tensors {
        let (k, rows) = (
            t.ne[0] as usize,
            (t.ne.iter().product::<u64>() / t.ne[0]) as usize,
        );
        for _ in 0..rows {
            encode_row(&mut rng, t, k, &mut row);
            out.write_all(&row)?;
        }
        let n = tensor_bytes(t) as usize;
        let pad = n.div_ceil(align) * align - n;
        out.write_all(&vec![0u8; pad])?;
        written += (n + pad) as u64;
    }
    out.flush()?;
    Ok(written)
}

fn tensor_bytes(t: &Planned) -> u64 {
    let n: u64 = t.ne.iter().product();
    n / t.ty.block_elems() as u64 * t.ty.block_bytes() as u64
}

fn encode_row(rng: &mut Rng, t: &Planned, k: usize, row: &mut Vec<u8>) {
    row.clear();
    match t.fill {
        Fill::Norm => row.extend((0..k).flat_map(|_| (1.0 + 0.2 * rng.f32()).to_le_bytes())),
        Fill::Plain(a) => row.extend((0..k).flat_map(|_| (a * rng.f32()).to_le_bytes())),
        Fill::Weight(scale) => {
            let (be, bb) = (t.ty.block_elems(), t.ty.block_bytes());
            row.resize(k / be * bb, 0);
            for b in row.chunks_exact_mut(bb) {
                random_block(rng, t.ty, scale, b);
            }
        }
    }
}

/// `(name, ne, type)` of every tensor [`write_synthetic`] writes for `s` in `q`.
pub fn tensor_plan(s: &ModelShape, q: SynthQuant) -> Vec<(String, Vec<u64>, GgmlType)> {
    plan(s, q)
        .into_iter()
        .map(|t| (t.name, t.ne, t.ty))
        .collect()
}
