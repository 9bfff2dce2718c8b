//! Memory-fit estimator: how many bytes a model needs at a given context length.
//!
//! The engine runs [`estimate`] before loading a model and refuses with a typed error when the
//! total does not fit; the model catalogue (feature `hub`) uses the same function to show how much
//! RAM each download will need. Everything is computed in `u64` with saturating arithmetic, so
//! absurd inputs give a huge number, never a wrap-around or a panic.
//!
//! The estimate counts what Hearth itself allocates or maps:
//!
//! | Part | Formula (bytes) |
//! |---|---|
//! | weights | the GGUF tensor data as stored (quantized), given by the caller |
//! | KV cache | `n_attn_layers · context · 2 (K and V) · n_head_kv · head_dim · kv_elem_bytes` (4 for f32 caches, 2 for the GPU's f16) |
//! | conv state | `(n_layer − n_attn_layers) · (conv_l_cache − 1) · n_embd · 4` (f32) |
//! | activations | `4 · (batch · row + vocab + batch · context · n_head)` |
//!
//! where `row = 2·n_embd + 3·n_embd + (n_head + 2·n_head_kv)·head_dim + n_head·head_dim +
//! 2·ffn_width` is the f32 scratch one token needs in flight: residual stream and normed input
//! (2·n_embd), the short-conv input projection B/C/x (3·n_embd), q/k/v, the attention output, and
//! the FFN gate and up projections (2·ffn_width, where `ffn_width` is the widest FFN: the dense
//! width, or for MoE `expert_used_count · expert_ffn_width` when that is larger). `vocab` is one
//! row of logits (only the last position is projected to the vocabulary), and
//! `batch · context · n_head` is the attention score matrix of one layer for a full prefill chunk.
//! The buffers are summed, not overlapped, so the result is an upper bound on the scratch a
//! straightforward implementation keeps alive at once.

use serde::{Deserialize, Serialize};

/// Context length used when a size must be quoted without a session (catalogue, CLI listings).
pub const DEFAULT_CONTEXT: u32 = 4096;

/// Tokens per prefill chunk of a session by default (`SessionOptions::batch_size`).
pub const DEFAULT_SESSION_BATCH: u32 = 64;

/// Tokens per prefill chunk assumed by planning estimates.
pub const DEFAULT_BATCH: u32 = 512;

/// The hyper-parameters that decide a model's memory footprint beyond its weights.
///
/// Read them from the GGUF metadata (`{arch}.block_count`, `{arch}.embedding_length`, the
/// per-layer `head_count_kv` array for `n_attn_layers`, …) or, for planning, from a catalogue.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModelShape {
    /// Number of blocks (conv + attention).
    pub n_layer: u32,
    /// How many of the blocks are attention layers (the rest are short-conv layers).
    pub n_attn_layers: u32,
    /// Hidden size `d`.
    pub n_embd: u32,
    /// Query heads.
    pub n_head: u32,
    /// Key/value heads of an attention layer.
    pub n_head_kv: u32,
    /// Size of one head.
    pub head_dim: u32,
    /// Vocabulary size (rows of the tied embedding / LM head).
    pub vocab: u32,
    /// Short-conv kernel length `L` (the state keeps `L − 1` positions).
    pub conv_l_cache: u32,
    /// Widest FFN: the dense width, or `expert_used_count · expert_ffn_width` for MoE if larger.
    pub ffn_width: u32,
}

pub use crate::error::Footprint;

const F32: u64 = 4;

/// Estimates the memory a model needs with `context_len` positions of KV cache and prefill
/// chunks of `batch` tokens (a `batch` of 0 counts as 1), with KV-cache elements of
/// `kv_elem_bytes`. See the module docs for the formula.
pub fn estimate(
    shape: &ModelShape,
    weights_bytes: u64,
    context_len: u32,
    batch: u32,
    kv_elem_bytes: u64,
) -> Footprint {
    let s = |v: u32| u64::from(v);
    let ctx = s(context_len);
    let batch = s(batch.max(1));
    let n_attn = s(shape.n_attn_layers.min(shape.n_layer));
    let n_conv = s(shape.n_layer) - n_attn;
    let d = s(shape.n_embd);
    let (h, hkv, dh) = (s(shape.n_head), s(shape.n_head_kv), s(shape.head_dim));

    let kv_cache_bytes = mul(&[n_attn, ctx, 2, hkv, dh, kv_elem_bytes]);
    let conv_state_bytes = mul(&[n_conv, s(shape.conv_l_cache.saturating_sub(1)), d, F32]);

    let row = [
        mul(&[2, d]),                          // residual + normed input
        mul(&[3, d]),                          // short-conv in_proj: B, C, x
        mul(&[h.saturating_add(2 * hkv), dh]), // q, k, v
        mul(&[h, dh]),                         // attention output
        mul(&[2, s(shape.ffn_width)]),         // FFN gate and up
    ]
    .iter()
    .fold(0u64, |a, &b| a.saturating_add(b));
    let activation_elems = mul(&[batch, row])
        .saturating_add(s(shape.vocab))
        .saturating_add(mul(&[batch, ctx, h]));
    let activation_bytes = activation_elems.saturating_mul(F32);

    let total_bytes = weights_bytes
        .saturating_add(kv_cache_bytes)
        .saturating_add(conv_state_bytes)
        .saturating_add(activation_bytes);
    Footprint {
        weights_bytes,
        kv_cache_bytes,
        conv_state_bytes,
        activation_bytes,
        total_bytes,
    }
}

fn mul(factors: &[u64]) -> u64 {
    factors.iter().fold(1u64, |a, &b| a.saturating_mul(b))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// LFM2-1.2B (lfm2-spec.md §2.2): 16 layers, 6 attention, d 2048, 32/8 heads, n_ff 8192.
    fn lfm2_1_2b() -> ModelShape {
        ModelShape {
            n_layer: 16,
            n_attn_layers: 6,
            n_embd: 2048,
            n_head: 32,
            n_head_kv: 8,
            head_dim: 64,
            vocab: 65536,
            conv_l_cache: 3,
            ffn_width: 8192,
        }
    }

    #[test]
    fn parts_follow_the_documented_formula() {
        let f = estimate(&lfm2_1_2b(), 700_000_000, 4096, 512, 4);
        // 6 layers · 4096 positions · (K + V) · 8 heads · 64 · 4 bytes = 96 MiB
        assert_eq!(f.kv_cache_bytes, 6 * 4096 * 2 * 8 * 64 * 4);
        assert_eq!(f.kv_cache_bytes, 96 << 20);
        // 10 conv layers · 2 positions · 2048 · 4 bytes = 160 KiB
        assert_eq!(f.conv_state_bytes, 10 * 2 * 2048 * 4);
        let row = 2 * 2048 + 3 * 2048 + (32 + 16) * 64 + 32 * 64 + 2 * 8192;
        assert_eq!(
            f.activation_bytes,
            4 * (512 * row + 65536 + 512 * 4096 * 32)
        );
        assert_eq!(f.weights_bytes, 700_000_000);
        assert_eq!(
            f.total_bytes,
            f.weights_bytes + f.kv_cache_bytes + f.conv_state_bytes + f.activation_bytes
        );
    }

    #[test]
    fn kv_cache_grows_linearly_with_context_and_conv_state_does_not() {
        let shape = lfm2_1_2b();
        let a = estimate(&shape, 0, 1024, 1, 4);
        let b = estimate(&shape, 0, 2048, 1, 4);
        assert_eq!(b.kv_cache_bytes, 2 * a.kv_cache_bytes);
        assert_eq!(a.conv_state_bytes, b.conv_state_bytes);
        assert!(b.total_bytes > a.total_bytes);
    }

    #[test]
    fn batch_zero_counts_as_one_and_zero_context_has_no_kv() {
        let shape = lfm2_1_2b();
        assert_eq!(estimate(&shape, 1, 10, 0, 4), estimate(&shape, 1, 10, 1, 4));
        let f = estimate(&shape, 0, 0, 1, 4);
        assert_eq!(f.kv_cache_bytes, 0);
        assert!(f.activation_bytes > 0);
    }

    #[test]
    fn hostile_shapes_saturate_instead_of_overflowing() {
        let shape = ModelShape {
            n_layer: u32::MAX,
            n_attn_layers: u32::MAX,
            n_embd: u32::MAX,
            n_head: u32::MAX,
            n_head_kv: u32::MAX,
            head_dim: u32::MAX,
            vocab: u32::MAX,
            conv_l_cache: 0,
            ffn_width: u32::MAX,
        };
        let f = estimate(&shape, u64::MAX, u32::MAX, u32::MAX, 4);
        assert_eq!(f.total_bytes, u64::MAX);
        assert_eq!(f.conv_state_bytes, 0);
        // More attention layers than layers: clamped, no underflow.
        let odd = ModelShape {
            n_attn_layers: 40,
            ..lfm2_1_2b()
        };
        let f = estimate(&odd, 0, 8, 1, 4);
        assert_eq!(f.conv_state_bytes, 0);
        assert_eq!(f.kv_cache_bytes, 16 * 8 * 2 * 8 * 64 * 4);
    }

    #[test]
    fn moe_8b_at_default_context_is_plausible() {
        // LFM2-8B-A1B: 24 layers, 6 attention, d 2048, 32/8 heads, ffn max(7168, 4·1792).
        let shape = ModelShape {
            n_layer: 24,
            n_attn_layers: 6,
            ffn_width: 7168,
            ..lfm2_1_2b()
        };
        let f = estimate(&shape, 5_000_000_000, DEFAULT_CONTEXT, DEFAULT_BATCH, 4);
        assert!(f.total_bytes > 5_000_000_000 && f.total_bytes < 6_000_000_000);
    }
}
