//! LFM2 (dense) and LFM2-MoE: configuration from GGUF metadata, weights, and the forward pass
//! written once over [`Backend`] ops. See `design/lfm2-spec.md` §7 for the math.

use std::sync::Arc;

use crate::backend::{AttnShape, Backend, MoeShape, MoeWeights, Rope, Tap, TapData, TapSink};
use crate::error::{Error, Result};
use crate::gguf::{GgufFile, TensorInfo};

/// Which of the two GGUF architectures a file is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Arch {
    Lfm2,
    Lfm2Moe,
}

impl Arch {
    pub fn key_prefix(self) -> &'static str {
        match self {
            Arch::Lfm2 => "lfm2",
            Arch::Lfm2Moe => "lfm2moe",
        }
    }
}

/// MoE hyper-parameters.
#[derive(Clone, Debug, PartialEq)]
pub struct MoeConfig {
    pub n_expert: usize,
    pub n_expert_used: usize,
    /// Hidden width of one expert.
    pub n_ff_exp: usize,
    /// Layers `il < n_dense_lead` use the dense FFN.
    pub n_dense_lead: usize,
    /// Optional scale applied to the routing weights (absent = 1).
    pub weights_scale: f32,
}

/// Hyper-parameters, all read from GGUF metadata.
#[derive(Clone, Debug, PartialEq)]
pub struct Config {
    pub arch: Arch,
    pub n_layer: usize,
    pub n_embd: usize,
    pub n_head: usize,
    /// Per layer: 0 for a short-conv layer, else the attention layer's KV-head count.
    pub n_head_kv: Vec<usize>,
    pub head_dim: usize,
    /// Dense FFN width.
    pub n_ff: usize,
    pub rope_base: f32,
    pub eps: f32,
    /// Short-conv kernel length (`L`); the state keeps `L - 1` steps.
    pub l_cache: usize,
    pub vocab: usize,
    pub context_length: usize,
    pub moe: Option<MoeConfig>,
}

fn usize_key(f: &GgufFile, key: &str) -> Result<usize> {
    Ok(f.get_u32(key)? as usize)
}

fn positive(key: &str, v: usize) -> Result<usize> {
    if v == 0 {
        Err(Error::metadata(key, "must be greater than zero"))
    } else {
        Ok(v)
    }
}

impl Config {
    pub fn from_gguf(f: &GgufFile) -> Result<Self> {
        let arch_name = f.get_str("general.architecture")?;
        let arch = match arch_name {
            "lfm2" => Arch::Lfm2,
            "lfm2moe" => Arch::Lfm2Moe,
            other => return Err(Error::UnknownArchitecture(other.to_string())),
        };
        let p = arch.key_prefix();
        let k = |s: &str| format!("{p}.{s}");
        let n_layer = positive(&k("block_count"), usize_key(f, &k("block_count"))?)?;
        let n_embd = positive(
            &k("embedding_length"),
            usize_key(f, &k("embedding_length"))?,
        )?;
        let n_head = positive(
            &k("attention.head_count"),
            usize_key(f, &k("attention.head_count"))?,
        )?;
        let n_head_kv = per_layer_kv_heads(f, &k("attention.head_count_kv"), n_layer, n_head)?;
        let head_dim = match f.get(&k("attention.key_length")) {
            Some(_) => usize_key(f, &k("attention.key_length"))?,
            None if n_embd % n_head == 0 => n_embd / n_head,
            None => {
                return Err(Error::metadata(
                    &k("attention.head_count"),
                    "does not divide embedding_length",
                ));
            }
        };
        if head_dim == 0 || head_dim % 2 != 0 {
            return Err(Error::metadata(
                &k("attention.key_length"),
                format!("head dim {head_dim} must be even and non-zero"),
            ));
        }
        if let Some(v) = f.get(&k("rope.dimension_count")) {
            if v.as_u32() != Some(head_dim as u32) {
                return Err(Error::metadata(
                    &k("rope.dimension_count"),
                    "partial rotary embeddings are not supported",
                ));
            }
        }
        let eps = f.get_f32(&k("attention.layer_norm_rms_epsilon"))?;
        if !(eps.is_finite() && eps > 0.0 && eps < 1.0) {
            return Err(Error::metadata(
                &k("attention.layer_norm_rms_epsilon"),
                format!("{eps} is not a finite value in (0, 1)"),
            ));
        }
        let rope_base = f.get_f32(&k("rope.freq_base")).unwrap_or(10_000.0);
        if !(rope_base.is_finite() && rope_base > 1.0) {
            return Err(Error::metadata(
                &k("rope.freq_base"),
                format!("{rope_base} is not a finite value above 1"),
            ));
        }
        let l_cache = usize_key(f, &k("shortconv.l_cache"))?;
        if !(2..=16).contains(&l_cache) {
            return Err(Error::metadata(
                &k("shortconv.l_cache"),
                format!("{l_cache} is outside 2..=16"),
            ));
        }
        let embd = f
            .tensor_info("token_embd.weight")
            .ok_or_else(|| Error::tensor("token_embd.weight", "missing"))?;
        let vocab = *embd.ne.get(1).unwrap_or(&0) as usize;
        if let Some(v) = f.get(&k("vocab_size"))
            && v.as_u32().map(|n| n as usize) != Some(vocab)
        {
            return Err(Error::metadata(
                &k("vocab_size"),
                format!("{v:?} disagrees with the {vocab} rows of token_embd.weight"),
            ));
        }
        let context_length = usize_key(f, &k("context_length"))?;
        let moe = match arch {
            Arch::Lfm2 => None,
            Arch::Lfm2Moe => Some(moe_config(f, p, n_layer)?),
        };
        let n_ff = usize_key(f, &k("feed_forward_length"))?;
        Ok(Config {
            arch,
            n_layer,
            n_embd,
            n_head,
            n_head_kv,
            head_dim,
            n_ff,
            rope_base,
            eps,
            l_cache,
            vocab,
            context_length,
            moe,
        })
    }

    pub fn is_attention(&self, il: usize) -> bool {
        self.n_head_kv[il] > 0
    }

    pub fn n_attention_layers(&self) -> usize {
        self.n_head_kv.iter().filter(|&&h| h > 0).count()
    }

    /// The numbers the memory estimator needs.
    pub fn shape(&self) -> crate::memory::ModelShape {
        let u = |v: usize| v.min(u32::MAX as usize) as u32;
        let ffn = self
            .moe
            .as_ref()
            .map_or(self.n_ff, |m| self.n_ff.max(m.n_expert_used * m.n_ff_exp));
        crate::memory::ModelShape {
            n_layer: u(self.n_layer),
            n_attn_layers: u(self.n_attention_layers()),
            n_embd: u(self.n_embd),
            n_head: u(self.n_head),
            n_head_kv: u(self.n_head_kv.iter().copied().max().unwrap_or(0)),
            head_dim: u(self.head_dim),
            vocab: u(self.vocab),
            conv_l_cache: u(self.l_cache),
            ffn_width: u(ffn),
        }
    }

    /// Widest KV row of any attention layer.
    pub fn max_kv_width(&self) -> usize {
        self.n_head_kv.iter().max().copied().unwrap_or(0) * self.head_dim
    }
}

fn per_layer_kv_heads(
    f: &GgufFile,
    key: &str,
    n_layer: usize,
    n_head: usize,
) -> Result<Vec<usize>> {
    let v = f.get(key).ok_or_else(|| Error::metadata(key, "missing"))?;
    let heads: Vec<usize> = match v.as_array() {
        Some(items) => items
            .iter()
            .map(|x| x.as_u32().map(|h| h as usize))
            .collect::<Option<_>>()
            .ok_or_else(|| Error::metadata(key, "expected non-negative integers"))?,
        // A scalar means every layer is an attention layer with that many KV heads.
        None => vec![
            v.as_u32()
                .ok_or_else(|| Error::metadata(key, "expected an integer array"))?
                as usize;
            n_layer
        ],
    };
    if heads.len() != n_layer {
        return Err(Error::metadata(
            key,
            format!("{} entries for {n_layer} layers", heads.len()),
        ));
    }
    if let Some(&h) = heads.iter().find(|&&h| h > 0 && !n_head.is_multiple_of(h)) {
        return Err(Error::metadata(
            key,
            format!("{h} KV heads do not divide {n_head} heads"),
        ));
    }
    Ok(heads)
}

fn moe_config(f: &GgufFile, p: &str, n_layer: usize) -> Result<MoeConfig> {
    let k = |s: &str| format!("{p}.{s}");
    let n_expert = positive(&k("expert_count"), usize_key(f, &k("expert_count"))?)?;
    let n_expert_used = positive(
        &k("expert_used_count"),
        usize_key(f, &k("expert_used_count"))?,
    )?;
    if n_expert_used > n_expert {
        return Err(Error::metadata(
            &k("expert_used_count"),
            format!("{n_expert_used} > expert_count {n_expert}"),
        ));
    }
    let n_ff_exp = positive(
        &k("expert_feed_forward_length"),
        usize_key(f, &k("expert_feed_forward_length"))?,
    )?;
    let n_dense_lead = usize_key(f, &k("leading_dense_block_count"))?.min(n_layer);
    if let Some(v) = f.get(&k("expert_gating_func")) {
        if v.as_u32() != Some(2) {
            return Err(Error::metadata(
                &k("expert_gating_func"),
                "only sigmoid gating (2) is supported",
            ));
        }
    }
    // Absent or 0 means "no scaling" (llama.cpp's convention); anything else but 1 is refused.
    let weights_scale = match f.get_f32(&k("expert_weights_scale")) {
        Ok(s) if s != 0.0 => s,
        _ => 1.0,
    };
    if weights_scale != 1.0 {
        return Err(Error::metadata(
            &k("expert_weights_scale"),
            format!("scale {weights_scale} is not supported (only 1)"),
        ));
    }
    Ok(MoeConfig {
        n_expert,
        n_expert_used,
        n_ff_exp,
        n_dense_lead,
        weights_scale,
    })
}

/// The token mixer of one layer.
pub enum Operator<W> {
    Conv(ConvWeights<W>),
    Attention(AttnWeights<W>),
}

/// `blk.{il}.shortconv.*`.
pub struct ConvWeights<W> {
    pub in_proj: W,
    pub kernel: W,
    pub out_proj: W,
}

/// `blk.{il}.attn_*`.
pub struct AttnWeights<W> {
    pub q: W,
    pub k: W,
    pub v: W,
    pub out: W,
    pub q_norm: W,
    pub k_norm: W,
    pub shape: AttnShape,
}

/// The feed-forward block of one layer.
pub enum Ffn<W> {
    Dense {
        gate: W,
        up: W,
        down: W,
    },
    Moe {
        router: W,
        bias: Option<W>,
        gate_exps: W,
        up_exps: W,
        down_exps: W,
        shape: MoeShape,
    },
}

pub struct Layer<W> {
    pub attn_norm: W,
    pub ffn_norm: W,
    pub op: Operator<W>,
    pub ffn: Ffn<W>,
}

/// Loaded weights of an LFM2 model on backend `B`.
pub struct Model<B: Backend> {
    pub config: Config,
    pub backend: B,
    pub token_embd: B::Weight,
    /// `output.weight` if the file has one, else the LM head is tied to `token_embd`.
    pub output: Option<B::Weight>,
    pub output_norm: B::Weight,
    pub layers: Vec<Layer<B::Weight>>,
}

/// Loads tensors with shape checks; errors name the tensor.
struct Loader<'a, B: Backend> {
    file: &'a Arc<GgufFile>,
    backend: &'a B,
    /// Called after each tensor is loaded (progress, cancel).
    on_tensor: &'a dyn Fn(&TensorInfo) -> Result<()>,
}

impl<B: Backend> Loader<'_, B> {
    fn get(&self, name: &str, ne: &[usize]) -> Result<B::Weight> {
        let info = self
            .file
            .tensor_info(name)
            .ok_or_else(|| Error::tensor(name, "missing"))?;
        let got: Vec<usize> = info.ne.iter().map(|&d| d as usize).collect();
        if got != ne {
            return Err(Error::tensor(
                name,
                format!("shape {got:?}, expected {ne:?}"),
            ));
        }
        info.ty.require_supported(name)?;
        let weight = self.backend.upload(self.file, info)?;
        (self.on_tensor)(info)?;
        Ok(weight)
    }

    fn has(&self, name: &str) -> bool {
        self.file.tensor_info(name).is_some()
    }
}

impl<B: Backend> Model<B> {
    pub fn load(file: &Arc<GgufFile>, backend: B) -> Result<Self> {
        Self::load_observed(file, backend, &|_| Ok(()))
    }

    /// [`Model::load`] calling `on_tensor` after each tensor; its error stops the load.
    pub fn load_observed(
        file: &Arc<GgufFile>,
        backend: B,
        on_tensor: &dyn Fn(&TensorInfo) -> Result<()>,
    ) -> Result<Self> {
        let config = Config::from_gguf(file)?;
        let c = &config;
        let ld = Loader {
            file,
            backend: &backend,
            on_tensor,
        };
        let token_embd = ld.get("token_embd.weight", &[c.n_embd, c.vocab])?;
        let output = if ld.has("output.weight") {
            Some(ld.get("output.weight", &[c.n_embd, c.vocab])?)
        } else {
            None
        };
        let output_norm = if ld.has("token_embd_norm.weight") {
            ld.get("token_embd_norm.weight", &[c.n_embd])?
        } else {
            ld.get("output_norm.weight", &[c.n_embd])?
        };
        let layers = (0..c.n_layer)
            .map(|il| load_layer(&ld, c, il))
            .collect::<Result<_>>()?;
        Ok(Model {
            config,
            backend,
            token_embd,
            output,
            output_norm,
            layers,
        })
    }
}

fn load_layer<B: Backend>(ld: &Loader<'_, B>, c: &Config, il: usize) -> Result<Layer<B::Weight>> {
    let d = c.n_embd;
    let name = |s: &str| format!("blk.{il}.{s}.weight");
    let op = if c.is_attention(il) {
        let shape = AttnShape {
            n_head: c.n_head,
            n_head_kv: c.n_head_kv[il],
            head_dim: c.head_dim,
        };
        let (qw, kvw) = (c.n_head * c.head_dim, shape.n_head_kv * c.head_dim);
        Operator::Attention(AttnWeights {
            q: ld.get(&name("attn_q"), &[d, qw])?,
            k: ld.get(&name("attn_k"), &[d, kvw])?,
            v: ld.get(&name("attn_v"), &[d, kvw])?,
            out: ld.get(&name("attn_output"), &[qw, d])?,
            q_norm: ld.get(&name("attn_q_norm"), &[c.head_dim])?,
            k_norm: ld.get(&name("attn_k_norm"), &[c.head_dim])?,
            shape,
        })
    } else {
        Operator::Conv(ConvWeights {
            in_proj: ld.get(&name("shortconv.in_proj"), &[d, 3 * d])?,
            kernel: ld.get(&name("shortconv.conv"), &[c.l_cache, d])?,
            out_proj: ld.get(&name("shortconv.out_proj"), &[d, d])?,
        })
    };
    let ffn = match &c.moe {
        Some(m) if il >= m.n_dense_lead => {
            let bias_name = format!("blk.{il}.exp_probs_b.bias");
            Ffn::Moe {
                router: ld.get(&name("ffn_gate_inp"), &[d, m.n_expert])?,
                bias: if ld.has(&bias_name) {
                    Some(ld.get(&bias_name, &[m.n_expert])?)
                } else {
                    None
                },
                gate_exps: ld.get(&name("ffn_gate_exps"), &[d, m.n_ff_exp, m.n_expert])?,
                up_exps: ld.get(&name("ffn_up_exps"), &[d, m.n_ff_exp, m.n_expert])?,
                down_exps: ld.get(&name("ffn_down_exps"), &[m.n_ff_exp, d, m.n_expert])?,
                shape: MoeShape {
                    n_expert: m.n_expert,
                    n_expert_used: m.n_expert_used,
                    n_ff: m.n_ff_exp,
                },
            }
        }
        _ => Ffn::Dense {
            gate: ld.get(&name("ffn_gate"), &[d, c.n_ff])?,
            up: ld.get(&name("ffn_up"), &[d, c.n_ff])?,
            down: ld.get(&name("ffn_down"), &[c.n_ff, d])?,
        },
    };
    Ok(Layer {
        attn_norm: ld.get(&name("attn_norm"), &[d])?,
        ffn_norm: ld.get(&name("ffn_norm"), &[d])?,
        op,
        ffn,
    })
}

/// Which rows of logits a forward pass returns.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Logits {
    /// Only the last token's (generation).
    Last,
    /// Every token's (evaluation); the state must be created with `all_logits`.
    All,
    /// None: the caches advance, nothing is projected to the vocabulary (middle prefill chunks).
    None,
}

/// Per-sequence state on the backend: KV caches, conv states, and the activation scratch,
/// all allocated once when the state is created.
pub struct State<B: Backend> {
    /// Tokens already in the caches.
    pub n_past: usize,
    /// Context length (KV rows).
    pub capacity: usize,
    /// Most tokens one forward call takes.
    pub batch: usize,
    all_logits: bool,
    kv: Vec<Option<(B::Tensor, B::Tensor)>>,
    conv: Vec<Option<B::Tensor>>,
    s: Scratch<B>,
    /// Observer of the intermediates (tests); `None`: nothing is read back.
    tap: Option<TapSink>,
}

struct Scratch<B: Backend> {
    x: B::Tensor,
    cur: B::Tensor,
    op_out: B::Tensor,
    bcx: B::Tensor,
    q: B::Tensor,
    k: B::Tensor,
    v: B::Tensor,
    attn: B::Tensor,
    gate: B::Tensor,
    up: B::Tensor,
    act: B::Tensor,
    router: B::Tensor,
    route_w: B::Tensor,
    ids: B::Ids,
    moe_hidden: B::Tensor,
    last: B::Tensor,
    last_norm: B::Tensor,
    logits: B::Tensor,
}

impl<B: Backend> State<B> {
    /// Allocates caches for `capacity` tokens and scratch for forward calls of up to `batch` tokens.
    pub fn new(model: &Model<B>, capacity: usize, batch: usize, all_logits: bool) -> Result<Self> {
        let c = &model.config;
        let be = &model.backend;
        if capacity == 0 || batch == 0 {
            return Err(Error::InvalidArgument(
                "context and batch must be positive".into(),
            ));
        }
        let kv = (0..c.n_layer)
            .map(|il| {
                let w = c.n_head_kv[il] * c.head_dim;
                Ok(if c.is_attention(il) {
                    Some((be.cache(capacity, w)?, be.cache(capacity, w)?))
                } else {
                    None
                })
            })
            .collect::<Result<_>>()?;
        let conv = (0..c.n_layer)
            .map(|il| {
                Ok(if c.is_attention(il) {
                    None
                } else {
                    Some(be.tensor(c.l_cache - 1, c.n_embd)?)
                })
            })
            .collect::<Result<_>>()?;
        let d = c.n_embd;
        let (n_exp, k_used, ff_exp) = c
            .moe
            .as_ref()
            .map_or((1, 1, 1), |m| (m.n_expert, m.n_expert_used, m.n_ff_exp));
        let ff = c.n_ff.max(1);
        let qw = c.n_head * c.head_dim;
        let kvw = c.max_kv_width().max(1);
        let t = |rows: usize, cols: usize| be.tensor(rows, cols);
        let s = Scratch {
            x: t(batch, d)?,
            cur: t(batch, d)?,
            op_out: t(batch, d)?,
            bcx: t(batch, 3 * d)?,
            q: t(batch, qw)?,
            k: t(batch, kvw)?,
            v: t(batch, kvw)?,
            attn: t(batch, qw)?,
            gate: t(batch, ff)?,
            up: t(batch, ff)?,
            act: t(batch, ff)?,
            router: t(batch, n_exp)?,
            route_w: t(batch, k_used)?,
            ids: be.ids(batch, k_used, n_exp)?,
            moe_hidden: t(batch * k_used, ff_exp + d)?,
            last: t(1, d)?,
            last_norm: t(1, d)?,
            logits: t(if all_logits { batch } else { 1 }, c.vocab)?,
        };
        Ok(State {
            n_past: 0,
            capacity,
            batch,
            all_logits,
            kv,
            conv,
            s,
            tap: None,
        })
    }

    /// Installs (or with `None` removes) an observer of every later forward pass's
    /// intermediates ([`Tap`]): the GPU then reads each back, a test-only cost.
    pub fn set_tap(&mut self, sink: Option<TapSink>) {
        self.tap = sink;
    }

    /// Forgets the sequence: the next forward starts at position 0 with zero conv states.
    pub fn reset(&mut self, model: &Model<B>) -> Result<()> {
        let be = &model.backend;
        let mut pass = be.begin();
        for st in self.conv.iter_mut().flatten() {
            be.zero(&mut pass, st);
        }
        be.finish(pass)?;
        self.n_past = 0;
        Ok(())
    }

    /// The conv states of every conv layer (for checkpoints).
    pub fn conv_states(&self) -> impl Iterator<Item = &B::Tensor> {
        self.conv.iter().flatten()
    }

    pub fn conv_states_mut(&mut self) -> impl Iterator<Item = &mut B::Tensor> {
        self.conv.iter_mut().flatten()
    }

    /// The (K, V) caches of every attention layer.
    pub fn kv_caches(&self) -> impl Iterator<Item = &(B::Tensor, B::Tensor)> {
        self.kv.iter().flatten()
    }

    pub fn kv_caches_mut(&mut self) -> impl Iterator<Item = &mut (B::Tensor, B::Tensor)> {
        self.kv.iter_mut().flatten()
    }
}

impl<B: Backend> Model<B> {
    /// Runs `tokens` (at most `state.batch`) at positions `state.n_past..` and returns logits:
    /// one row for [`Logits::Last`], `tokens.len()` rows for [`Logits::All`].
    pub fn forward(&self, state: &mut State<B>, tokens: &[u32], mode: Logits) -> Result<Vec<f32>> {
        let n = tokens.len();
        self.check_batch(state, tokens, mode)?;
        let be = &self.backend;
        let c = &self.config;
        let pos0 = state.n_past;
        let mut pass = be.begin();
        let p = &mut pass;
        let s = &mut state.s;
        let tap = &mut state.tap;
        be.embed(p, &self.token_embd, tokens, &mut s.x);
        self.observe(p, tap, Tap::Embeddings, &s.x, n)?;
        for (il, layer) in self.layers.iter().enumerate() {
            be.rms_norm(p, &s.x, &layer.attn_norm, c.eps, n, &mut s.cur);
            match &layer.op {
                Operator::Conv(w) => {
                    let st = state.conv[il].as_mut().expect("conv layer has a state");
                    self.short_conv_block(p, w, st, s, n);
                }
                Operator::Attention(w) => {
                    let kv = state.kv[il].as_mut().expect("attention layer has a cache");
                    self.attention_block(p, w, kv, s, pos0, n);
                }
            }
            be.add(p, &mut s.x, &s.op_out, n);
            be.rms_norm(p, &s.x, &layer.ffn_norm, c.eps, n, &mut s.cur);
            self.ffn_block(p, &layer.ffn, s, n);
            if let (Some(sink), Ffn::Moe { shape, .. }) = (tap.as_mut(), &layer.ffn) {
                let k = shape.n_expert_used;
                let data = be.tap_ids(p, &s.ids, n, k)?;
                sink(Tap::ExpertIds(il), TapData::Ids { k, data });
            }
            be.add(p, &mut s.x, &s.op_out, n);
            self.observe(p, tap, Tap::LayerOut(il), &s.x, n)?;
        }
        let rows = self.output_head(p, s, mode, n);
        if rows > 0 {
            let normed = if mode == Logits::Last {
                &s.last_norm
            } else {
                &s.cur
            };
            self.observe(p, tap, Tap::ResultNorm, normed, rows)?;
        }
        let logits = if rows == 0 {
            be.finish(pass)?;
            Vec::new()
        } else {
            be.read(pass, &s.logits, rows)?
        };
        state.n_past += n;
        Ok(logits)
    }

    /// Hands the first `n` rows of `t` to the sink, if one is installed (else costs a branch).
    fn observe(
        &self,
        p: &mut B::Pass,
        sink: &mut Option<TapSink>,
        tap: Tap,
        t: &B::Tensor,
        n: usize,
    ) -> Result<()> {
        if let Some(sink) = sink {
            let data = self.backend.tap(p, t, n)?;
            sink(
                tap,
                TapData::F32 {
                    cols: data.len() / n,
                    data,
                },
            );
        }
        Ok(())
    }

    /// `blk.{il}.shortconv.*`: in_proj → causal conv with the rolling state → out_proj.
    fn short_conv_block(
        &self,
        p: &mut B::Pass,
        w: &ConvWeights<B::Weight>,
        conv_state: &mut B::Tensor,
        s: &mut Scratch<B>,
        n: usize,
    ) {
        let be = &self.backend;
        be.matmul(p, &w.in_proj, &s.cur, n, &mut s.bcx);
        be.short_conv(p, &s.bcx, &w.kernel, conv_state, n, &mut s.cur);
        be.matmul(p, &w.out_proj, &s.cur, n, &mut s.op_out);
    }

    /// `blk.{il}.attn_*`: q/k/v, q/k norm + RoPE (k, v stored into the cache), attention, out.
    fn attention_block(
        &self,
        p: &mut B::Pass,
        w: &AttnWeights<B::Weight>,
        (kc, vc): &mut (B::Tensor, B::Tensor),
        s: &mut Scratch<B>,
        pos0: usize,
        n: usize,
    ) {
        let be = &self.backend;
        be.matmul(p, &w.q, &s.cur, n, &mut s.q);
        be.matmul(p, &w.k, &s.cur, n, &mut s.k);
        be.matmul(p, &w.v, &s.cur, n, &mut s.v);
        let rope = Rope {
            shape: w.shape,
            eps: self.config.eps,
            base: self.config.rope_base,
        };
        let norms = (&w.q_norm, &w.k_norm);
        be.qk_norm_rope_store(p, &mut s.q, &s.k, &s.v, norms, kc, vc, rope, pos0, n);
        be.attention(p, &s.q, kc, vc, w.shape, pos0, n, &mut s.attn);
        be.matmul(p, &w.out, &s.attn, n, &mut s.op_out);
    }

    /// `blk.{il}.ffn_*`: dense SwiGLU, or router → top-k → the routed experts only.
    fn ffn_block(&self, p: &mut B::Pass, ffn: &Ffn<B::Weight>, s: &mut Scratch<B>, n: usize) {
        let be = &self.backend;
        match ffn {
            Ffn::Dense { gate, up, down } => {
                be.matmul(p, gate, &s.cur, n, &mut s.gate);
                be.matmul(p, up, &s.cur, n, &mut s.up);
                be.swiglu(p, &s.gate, &s.up, n, &mut s.act);
                be.matmul(p, down, &s.act, n, &mut s.op_out);
            }
            Ffn::Moe {
                router,
                bias,
                gate_exps,
                up_exps,
                down_exps,
                shape,
            } => {
                be.matmul(p, router, &s.cur, n, &mut s.router);
                let k = shape.n_expert_used;
                be.moe_route(
                    p,
                    &s.router,
                    bias.as_ref(),
                    k,
                    n,
                    &mut s.ids,
                    &mut s.route_w,
                );
                let experts = MoeWeights {
                    gate: gate_exps,
                    up: up_exps,
                    down: down_exps,
                };
                let (ids, w) = (&s.ids, &s.route_w);
                be.moe_ffn(
                    p,
                    &s.cur,
                    experts,
                    ids,
                    w,
                    *shape,
                    n,
                    &mut s.moe_hidden,
                    &mut s.op_out,
                );
            }
        }
    }

    /// Final norm and LM head for the rows `mode` asks for; returns how many rows.
    fn output_head(&self, p: &mut B::Pass, s: &mut Scratch<B>, mode: Logits, n: usize) -> usize {
        let be = &self.backend;
        let (c, head) = (
            &self.config,
            self.output.as_ref().unwrap_or(&self.token_embd),
        );
        match mode {
            Logits::Last => {
                be.copy_row(p, &s.x, n - 1, &mut s.last);
                be.rms_norm(p, &s.last, &self.output_norm, c.eps, 1, &mut s.last_norm);
                be.matmul(p, head, &s.last_norm, 1, &mut s.logits);
                1
            }
            Logits::All => {
                be.rms_norm(p, &s.x, &self.output_norm, c.eps, n, &mut s.cur);
                be.matmul(p, head, &s.cur, n, &mut s.logits);
                n
            }
            Logits::None => 0,
        }
    }

    fn check_batch(&self, state: &State<B>, tokens: &[u32], mode: Logits) -> Result<()> {
        let n = tokens.len();
        if n == 0 || n > state.batch {
            return Err(Error::InvalidArgument(format!(
                "forward takes 1..={} tokens, got {n}",
                state.batch
            )));
        }
        if mode == Logits::All && !state.all_logits {
            return Err(Error::InvalidArgument(
                "this state was created for last-token logits only".into(),
            ));
        }
        if state.n_past + n > state.capacity {
            return Err(Error::ContextOverflow {
                needed: state.n_past + n,
                capacity: state.capacity,
            });
        }
        if let Some(&bad) = tokens.iter().find(|&&t| t as usize >= self.config.vocab) {
            return Err(Error::InvalidArgument(format!(
                "token id {bad} is outside the vocabulary ({})",
                self.config.vocab
            )));
        }
        Ok(())
    }
}
