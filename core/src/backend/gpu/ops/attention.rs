//! Causal GQA attention over the (possibly segmented) KV cache, split across workgroups for
//! long-context decode and merged: `attention.wgsl`.

use crate::backend::AttnShape;
use crate::backend::gpu::context::{Ctx, GpuPass};
use crate::backend::gpu::kernels::Kernel;
use crate::backend::gpu::layout::GpuTensor;
use crate::backend::gpu::tuning::Tuning;
use crate::error::Error;

params! {
    /// `attention.wgsl` (`attn` and `attn_merge`).
    AttnParams {
        n_head: u32,
        n_kv: u32,
        hd: u32,
        q_cols: u32,
        kv_w: u32,
        o_cols: u32,
        pos0: u32,
        scale: f32,
        chunk: u32,
        n_split: u32,
        t0: u32,
        kv_base: u32,
        kv_end: u32,
        split0: u32,
    }
}

/// How attention over `len` cached positions is cut into workgroups: splits of `chunk`
/// positions (never across a cache segment), merged when there is more than one, for blocks of
/// `tokens_per_block` queries whose partials fit the shared partials buffer.
struct AttnPlan {
    chunk: usize,
    n_split: usize,
    tokens_per_block: usize,
}

impl AttnPlan {
    fn new(t: &Tuning, shape: AttnShape, n: usize, len: usize, seg_rows: usize) -> AttnPlan {
        // Long-context decode: cut the sequence so enough workgroups share it.
        let chunk = if n == 1 && len > t.attn_split_above {
            len.div_ceil(len.div_ceil(t.attn_split_len).min(t.attn_max_splits))
        } else {
            len
        }
        .min(seg_rows)
        .max(1);
        let n_split: usize = (0..len.div_ceil(seg_rows))
            .map(|i| (len - i * seg_rows).min(seg_rows).div_ceil(chunk))
            .sum();
        let per_token = (shape.n_head * n_split * (shape.head_dim + 2)) as u64;
        let tokens_per_block = if n_split == 1 {
            n
        } else {
            (t.part_floats / per_token).min(n as u64) as usize
        };
        AttnPlan {
            chunk,
            n_split,
            tokens_per_block,
        }
    }
}

/// The caches and the output of one attention call.
pub(crate) struct AttnIo<'a> {
    pub q: &'a GpuTensor,
    pub k_cache: &'a GpuTensor,
    pub v_cache: &'a GpuTensor,
    pub out: &'a GpuTensor,
}

/// Queries `pos0..pos0 + n` over cache rows `0..pos0 + n`: per block of tokens, one `attn`
/// dispatch per cache segment, then `attn_merge` once all splits are written.
pub(crate) fn attention(
    ctx: &Ctx,
    pass: &mut GpuPass,
    io: AttnIo<'_>,
    shape: AttnShape,
    pos0: usize,
    n: usize,
) {
    let t = &ctx.tuning;
    let hd = shape.head_dim;
    if hd > t.max_head_dim || hd > 8 * t.workgroup as usize {
        let e = Error::Gpu(format!("head_dim {hd} beyond the attention kernel"));
        return ctx.fail(pass, e);
    }
    let len = pos0 + n;
    let plan = AttnPlan::new(t, shape, n, len, io.k_cache.seg_rows);
    if plan.tokens_per_block == 0 {
        let e = Error::Gpu(format!(
            "attention over {len} positions needs too many splits"
        ));
        return ctx.fail(pass, e);
    }
    let base = AttnParams {
        n_head: shape.n_head as u32,
        n_kv: shape.n_head_kv as u32,
        hd: hd as u32,
        q_cols: io.q.cols as u32,
        kv_w: (shape.n_head_kv * hd) as u32,
        o_cols: io.out.cols as u32,
        pos0: pos0 as u32,
        scale: 1.0 / (hd as f32).sqrt(),
        chunk: plan.chunk as u32,
        n_split: plan.n_split as u32,
        ..Default::default()
    };
    for t0 in (0..n).step_by(plan.tokens_per_block) {
        let nb = plan.tokens_per_block.min(n - t0) as u32;
        let mut split0 = 0;
        for sp in io.k_cache.spans(0, len) {
            let kv_base = sp.seg * io.k_cache.seg_rows;
            let splits = sp.rows.div_ceil(plan.chunk);
            let params = AttnParams {
                t0: t0 as u32,
                kv_base: kv_base as u32,
                kv_end: (kv_base + sp.rows) as u32,
                split0: split0 as u32,
                ..base
            };
            let bufs = [
                io.q.buf(),
                &*io.k_cache.segs[sp.seg],
                &*io.v_cache.segs[sp.seg],
                io.out.buf(),
                &*ctx.part,
            ];
            let groups = [shape.n_head as u32, nb, splits as u32];
            ctx.dispatch(pass, Kernel::Attn, &bufs, &params, groups);
            split0 += splits;
            if split0 == plan.n_split && plan.n_split > 1 {
                let groups = [shape.n_head as u32, nb, 1];
                ctx.dispatch(pass, Kernel::AttnMerge, &bufs, &params, groups);
            }
        }
    }
}
