//! Weight products (`matvec.wgsl` for decode, `matmul.wgsl` tiles for prefill) and embedding
//! lookups (`embed.wgsl`), once per weight chunk.

use super::grid;
use crate::backend::gpu::context::{Ctx, GpuPass};
use crate::backend::gpu::kernels::Kernel;
use crate::backend::gpu::layout::{GpuTensor, GpuWeight};

params! {
    /// `matvec.wgsl` and `matmul.wgsl` (common.wgsl's `product`): rows `row0..row0 + rows` of
    /// one weight chunk; the mat-vec runs `tpr` lanes per output row, the mat-mat tiles of `TR`
    /// rows x `TT` of the `n_tok` tokens.
    ProductParams {
        k: u32,
        n_groups: u32,
        row_bytes: u32,
        rows: u32,
        row0: u32,
        out_cols: u32,
        x_cols: u32,
        tpr: u32,
        n_tok: u32,
    }
}

params! {
    /// `embed.wgsl`: rows `r0..r0 + rows` of the table held by one chunk.
    EmbedParams {
        k: u32,
        n_groups: u32,
        row_bytes: u32,
        r0: u32,
        rows: u32,
        out_cols: u32,
        tok_off: u32,
        n_tok: u32,
    }
}

/// `out[t, o] = W[o] . x[t]` for rows `[0, n)`, one weight chunk (a column range) at a time:
/// tiles of `TR` rows x `TT` tokens for prefill batches, else `tpr` lanes per row and token.
pub(crate) fn matmul(
    ctx: &Ctx,
    pass: &mut GpuPass,
    w: &GpuWeight,
    x: &GpuTensor,
    n: usize,
    out: &GpuTensor,
) {
    let t = &ctx.tuning;
    let tiled = t.tiled(n);
    let tpr = t.lanes(w.n_groups());
    for c in &w.chunks {
        let params = ProductParams {
            k: w.k as u32,
            n_groups: w.n_groups(),
            row_bytes: w.row_bytes as u32,
            rows: c.rows as u32,
            row0: c.row0 as u32,
            out_cols: out.cols as u32,
            x_cols: x.cols as u32,
            tpr,
            n_tok: n as u32,
        };
        let (kernel, groups) = if tiled {
            let (gx, gy) = grid(c.rows.div_ceil(t.tile_rows as usize));
            let gz = n.div_ceil(t.tile_tokens as usize) as u32;
            (Kernel::Matmul(w.ty), [gx, gy, gz])
        } else {
            let (gx, gy) = grid(c.rows.div_ceil((t.workgroup / tpr) as usize));
            (Kernel::Matvec(w.ty), [gx, gy, n as u32])
        };
        let bufs = [&*c.buf, x.buf(), out.buf()];
        ctx.dispatch(pass, kernel, &bufs, &params, groups);
    }
}

/// `out[t] = table[tokens[t]]`: the token ids go to the parameter arena, and each chunk writes
/// the rows it holds.
pub(crate) fn embed(
    ctx: &Ctx,
    pass: &mut GpuPass,
    table: &GpuWeight,
    tokens: &[u32],
    out: &GpuTensor,
) {
    let Some(off) = ctx.push_data(pass, tokens) else {
        return;
    };
    let wg = ctx.tuning.workgroup;
    for c in &table.chunks {
        let params = EmbedParams {
            k: table.k as u32,
            n_groups: table.n_groups(),
            row_bytes: table.row_bytes as u32,
            r0: c.row0 as u32,
            rows: c.rows as u32,
            out_cols: out.cols as u32,
            tok_off: (off / 4) as u32,
            n_tok: tokens.len() as u32,
        };
        let groups = [table.n_groups().div_ceil(wg), tokens.len() as u32, 1];
        let bufs = [&*c.buf, &*ctx.arena, out.buf()];
        ctx.dispatch(pass, Kernel::Embed(table.ty), &bufs, &params, groups);
    }
}
