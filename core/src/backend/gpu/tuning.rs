//! Every threshold and tile size of the GPU backend in one place, chosen from [`DeviceCaps`].
//! The WGSL constants that must agree with the host (`WG`, `TR`, `TT`) are generated from it
//! ([`super::kernels::source`]), so a change here reaches both sides.

use super::caps::DeviceCaps;

/// The backend's dispatch and memory-layout choices for one device.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Tuning {
    /// Threads per workgroup of every kernel (`WG`).
    pub workgroup: u32,
    /// Batches of fewer tokens take the per-token mat-vec kernels (decode); larger ones the
    /// tiled mat-mat kernels, and MoE prefill its grouped-by-expert path.
    pub matmul_min_tokens: usize,
    /// Weight rows per mat-mat tile (`TR`).
    pub tile_rows: u32,
    /// Tokens per mat-mat tile (`TT`).
    pub tile_tokens: u32,
    /// Decode attention over more positions than this is split across workgroups...
    pub attn_split_above: usize,
    /// ...into pieces of about this many positions...
    pub attn_split_len: usize,
    /// ...but at most this many.
    pub attn_max_splits: usize,
    /// KV caches allowing at least this many rows per binding are segmented in whole
    /// attention splits ([`Tuning::attn_split_len`]) per segment.
    pub kv_seg_min_rows: u64,
    /// Largest head size the attention and norm kernels hold in workgroup memory.
    pub max_head_dim: usize,
    /// Most experts per token the router kernel selects (its private array).
    pub max_experts_used: usize,
    /// Parameter arena: enough for every dispatch of one forward pass of the largest models.
    pub arena_bytes: u64,
    /// Attention split partials: heads x splits x (head_dim + 2) floats.
    pub part_floats: u64,
    /// Weight uploads go through the queue in pieces of this size...
    pub upload_piece: usize,
    /// ...and are flushed (staging freed) after this many bytes, bounding host memory at load.
    pub upload_flush: usize,
}

impl Tuning {
    pub fn for_caps(caps: &DeviceCaps) -> Tuning {
        Tuning::for_workgroup(caps.workgroup_size)
    }

    /// The table for kernels of `workgroup` threads (no other device property changes it yet).
    pub fn for_workgroup(workgroup: u32) -> Tuning {
        Tuning {
            workgroup,
            matmul_min_tokens: 4,
            tile_rows: 32,
            tile_tokens: 32,
            attn_split_above: 512,
            attn_split_len: 256,
            attn_max_splits: 32,
            kv_seg_min_rows: 1024,
            max_head_dim: 512,
            max_experts_used: 32,
            arena_bytes: 4 << 20,
            part_floats: 1 << 20,
            upload_piece: 8 << 20,
            upload_flush: 32 << 20,
        }
    }

    /// Whether an `n`-token batch takes the tiled (prefill) kernels.
    pub fn tiled(&self, n: usize) -> bool {
        n >= self.matmul_min_tokens
    }

    /// Threads per output row of the mat-vec kernels for rows of `n_groups` 32-value groups:
    /// short rows (K = 256: 8 groups) share a workgroup instead of leaving most lanes idle.
    pub fn lanes(&self, n_groups: u32) -> u32 {
        n_groups.next_power_of_two().min(self.workgroup)
    }
}
