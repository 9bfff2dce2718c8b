//! The ops the models are written over, and their implementations.
//!
//! A model calls ops on a [`Backend`] inside a *pass*: the CPU executes each op eagerly, the GPU
//! records dispatches and submits once when the pass is read. Activations are [`Backend::Tensor`]s
//! of `rows x cols` f32 allocated once per session; every op works on the first `n` rows.

pub mod cpu;
pub mod gpu;

use crate::error::Result;
use std::sync::Arc;

use crate::gguf::{GgufFile, TensorInfo};

/// Geometry of one attention layer's computation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AttnShape {
    pub n_head: usize,
    pub n_head_kv: usize,
    pub head_dim: usize,
}

/// Per-head norm and rotary embedding of one attention layer.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Rope {
    pub shape: AttnShape,
    /// RMSNorm epsilon of the q/k head norms.
    pub eps: f32,
    /// RoPE frequency base.
    pub base: f32,
}

/// Geometry of one MoE FFN.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MoeShape {
    pub n_expert: usize,
    pub n_expert_used: usize,
    /// Hidden width of one expert.
    pub n_ff: usize,
}

/// The three stacked expert tensors of one MoE layer (`[K, N, E]` in ggml order).
pub struct MoeWeights<'a, W> {
    pub gate: &'a W,
    pub up: &'a W,
    pub down: &'a W,
}

impl<W> Clone for MoeWeights<'_, W> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<W> Copy for MoeWeights<'_, W> {}

/// An intermediate of the forward pass a [`TapSink`] can observe, named as llama.cpp names its
/// tensors (`GGML_SCHED`/eval-callback dumps), so the two can be compared layer by layer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Tap {
    /// `inp_embd`: the token embeddings (`n x n_embd`).
    Embeddings,
    /// `l_out-{il}`: the residual stream after decoder layer `il` (`n x n_embd`).
    LayerOut(usize),
    /// `result_norm`: the final RMSNorm's output, the LM head's input (the rows the pass
    /// projects: one for last-token logits, all for every-position logits).
    ResultNorm,
    /// `ffn_moe_topk-{il}`: the experts the router of MoE layer `il` chose (`n x k` ids).
    ExpertIds(usize),
}

impl Tap {
    /// The llama.cpp-style name.
    pub fn name(self) -> String {
        match self {
            Tap::Embeddings => "inp_embd".into(),
            Tap::LayerOut(il) => format!("l_out-{il}"),
            Tap::ResultNorm => "result_norm".into(),
            Tap::ExpertIds(il) => format!("ffn_moe_topk-{il}"),
        }
    }
}

/// What a tap observed: row-major values with their width.
#[derive(Clone, Debug, PartialEq)]
pub enum TapData {
    /// `rows x cols` activations.
    F32 { cols: usize, data: Vec<f32> },
    /// `rows x k` expert ids.
    Ids { k: usize, data: Vec<u32> },
}

/// Receives the intermediates of every forward pass of a sequence (see
/// `models::lfm2::State::set_tap`). Without one the model reads nothing back.
pub type TapSink = Box<dyn FnMut(Tap, TapData) + Send>;

/// The ops of the LFM2 forward pass. Shapes are validated by the model at load time, so the ops
/// assume consistent inputs (they may panic in debug builds on a programming error).
pub trait Backend: Send + Sync + 'static {
    /// A weight tensor (possibly quantized, possibly split across buffers).
    type Weight: Send + Sync;
    /// An f32 activation buffer of `rows x cols`.
    type Tensor: Send;
    /// Per-token expert ids chosen by the router (`rows x n_expert_used`).
    type Ids: Send;
    /// State of one forward pass (the GPU's command encoder).
    type Pass;

    /// Short description for logs and `hearth info`.
    fn name(&self) -> String;
    /// Bytes of one KV-cache element (4 for f32 caches, 2 where the backend keeps f16).
    fn kv_elem_bytes(&self) -> usize {
        4
    }
    /// Bytes a weight takes on this backend (the GGUF bytes, or more where a type is expanded).
    fn weight_bytes(&self, info: &TensorInfo) -> u64 {
        info.n_bytes
    }

    /// Makes a weight from a tensor of the model file (the CPU keeps it in the memory map).
    fn upload(&self, file: &Arc<GgufFile>, info: &TensorInfo) -> Result<Self::Weight>;
    /// A zeroed activation tensor.
    fn tensor(&self, rows: usize, cols: usize) -> Result<Self::Tensor>;
    /// A zeroed KV cache of `rows` positions. It may be split across buffers (a long context
    /// exceeds one binding on phones): only the cache ops, `read_rows`, `write_rows`, `copy` and
    /// `zero` accept it.
    fn cache(&self, rows: usize, cols: usize) -> Result<Self::Tensor> {
        self.tensor(rows, cols)
    }
    /// Router decisions for up to `rows` tokens choosing `k` of `n_expert` experts (the GPU keeps
    /// its per-expert token lists for grouped prefill beside them).
    fn ids(&self, rows: usize, k: usize, n_expert: usize) -> Result<Self::Ids>;

    fn begin(&self) -> Self::Pass;
    /// Ends the pass and returns the first `rows` rows of `t` (the GPU submits here).
    fn read(&self, pass: Self::Pass, t: &Self::Tensor, rows: usize) -> Result<Vec<f32>>;
    /// Ends the pass without reading anything back.
    fn finish(&self, pass: Self::Pass) -> Result<()>;
    /// Copies rows `start..start+n` of a tensor to the host (outside any pass; state snapshots:
    /// conv states, KV rows about to be overwritten, saved sessions).
    fn read_rows(&self, t: &Self::Tensor, start: usize, n: usize) -> Result<Vec<f32>>;
    /// Overwrites rows from `start` with `data` (a whole number of rows; outside any pass).
    fn write_rows(&self, t: &mut Self::Tensor, start: usize, data: &[f32]) -> Result<()>;
    /// Reads the first `n` rows of `t` in the middle of a pass, for a [`TapSink`]. The model
    /// calls it only while a sink is installed (tests), so its cost never reaches inference.
    /// The default suits backends that execute each op when it is called (the CPU); the GPU
    /// submits what the pass recorded so far and continues in a fresh one.
    fn tap(&self, pass: &mut Self::Pass, t: &Self::Tensor, n: usize) -> Result<Vec<f32>> {
        let _ = pass;
        self.read_rows(t, 0, n)
    }
    /// The router's expert ids of the first `n` tokens (`n x k`, the order `moe_route` chose
    /// them in), in the middle of a pass, for a [`TapSink`].
    fn tap_ids(
        &self,
        pass: &mut Self::Pass,
        ids: &Self::Ids,
        n: usize,
        k: usize,
    ) -> Result<Vec<u32>>;

    /// `out[t] = table[tokens[t]]` (dequantized rows).
    fn embed(
        &self,
        pass: &mut Self::Pass,
        table: &Self::Weight,
        tokens: &[u32],
        out: &mut Self::Tensor,
    );
    /// RMSNorm of each row of `x` (width = `w` length): `x / sqrt(mean(x^2) + eps) * w`.
    fn rms_norm(
        &self,
        pass: &mut Self::Pass,
        x: &Self::Tensor,
        w: &Self::Weight,
        eps: f32,
        n: usize,
        out: &mut Self::Tensor,
    );
    /// `out[t, o] = sum_i W[o, i] x[t, i]`.
    fn matmul(
        &self,
        pass: &mut Self::Pass,
        w: &Self::Weight,
        x: &Self::Tensor,
        n: usize,
        out: &mut Self::Tensor,
    );
    /// `acc += x` over the first `n` rows.
    fn add(&self, pass: &mut Self::Pass, acc: &mut Self::Tensor, x: &Self::Tensor, n: usize);
    /// Copies row `src_row` of `src` into row 0 of `dst`.
    fn copy_row(
        &self,
        pass: &mut Self::Pass,
        src: &Self::Tensor,
        src_row: usize,
        dst: &mut Self::Tensor,
    );
    /// Copies a whole tensor (state checkpoints).
    fn copy(&self, pass: &mut Self::Pass, src: &Self::Tensor, dst: &mut Self::Tensor);
    /// Zeroes a whole tensor.
    fn zero(&self, pass: &mut Self::Pass, t: &mut Self::Tensor);

    /// Gated short conv: `bcx` rows are `[B | C | X]` (3d), `kernel` is `[L, d]` (taps of a channel
    /// contiguous), `state` holds the last `L-1` values of `B*X` (rows = time, oldest first).
    /// Writes `C * conv(B*X)` to `out` and advances the state.
    fn short_conv(
        &self,
        pass: &mut Self::Pass,
        bcx: &Self::Tensor,
        kernel: &Self::Weight,
        state: &mut Self::Tensor,
        n: usize,
        out: &mut Self::Tensor,
    );

    /// Per-head RMSNorm (weights of length head_dim) and NeoX RoPE at positions
    /// `pos0..pos0+n`: `q` in place, `k` written straight into rows `pos0..pos0+n` of
    /// `k_cache`, with `v` copied into the same rows of `v_cache`.
    #[allow(clippy::too_many_arguments)]
    fn qk_norm_rope_store(
        &self,
        pass: &mut Self::Pass,
        q: &mut Self::Tensor,
        k: &Self::Tensor,
        v: &Self::Tensor,
        norms: (&Self::Weight, &Self::Weight),
        k_cache: &mut Self::Tensor,
        v_cache: &mut Self::Tensor,
        rope: Rope,
        pos0: usize,
        n: usize,
    );

    /// Causal GQA attention of `q` (positions `pos0..pos0+n`) over cache rows `0..pos0+n` with
    /// scale `1/sqrt(head_dim)`.
    #[allow(clippy::too_many_arguments)]
    fn attention(
        &self,
        pass: &mut Self::Pass,
        q: &Self::Tensor,
        k_cache: &Self::Tensor,
        v_cache: &Self::Tensor,
        shape: AttnShape,
        pos0: usize,
        n: usize,
        out: &mut Self::Tensor,
    );

    /// `out = silu(gate) * up`.
    fn swiglu(
        &self,
        pass: &mut Self::Pass,
        gate: &Self::Tensor,
        up: &Self::Tensor,
        n: usize,
        out: &mut Self::Tensor,
    );

    /// Router: `p = sigmoid(logits)`; choose the top `k` of `p + bias`; weights = chosen `p`
    /// renormalized to sum 1.
    #[allow(clippy::too_many_arguments)]
    fn moe_route(
        &self,
        pass: &mut Self::Pass,
        logits: &Self::Tensor,
        bias: Option<&Self::Weight>,
        k: usize,
        n: usize,
        ids: &mut Self::Ids,
        weights: &mut Self::Tensor,
    );

    /// `out[t] = sum_j weights[t, j] * Expert_{ids[t, j]}(x[t])` reading only the chosen experts.
    /// `hidden` is scratch of at least `n * n_expert_used` rows of `n_ff + out.cols` (the GPU's
    /// grouped prefill keeps each slot's expert output after its hidden activations).
    #[allow(clippy::too_many_arguments)]
    fn moe_ffn(
        &self,
        pass: &mut Self::Pass,
        x: &Self::Tensor,
        experts: MoeWeights<'_, Self::Weight>,
        ids: &Self::Ids,
        weights: &Self::Tensor,
        shape: MoeShape,
        n: usize,
        hidden: &mut Self::Tensor,
        out: &mut Self::Tensor,
    );
}
