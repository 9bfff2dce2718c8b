//! Flat element-wise ops (`elementwise.wgsl`: add, SwiGLU, copies, zero) and the gated short
//! conv (`conv.wgsl`).

use super::grid;
use crate::backend::gpu::context::{Buf, Ctx, GpuPass};
use crate::backend::gpu::kernels::Kernel;
use crate::backend::gpu::layout::{GpuTensor, GpuWeight};
use crate::error::Error;

params! {
    /// `elementwise.wgsl`: `count` values; copies move rows of `width` values `a_stride` /
    /// `c_stride` apart.
    ElementwiseParams {
        count: u32,
        a_off: u32,
        c_off: u32,
        width: u32,
        a_stride: u32,
        c_stride: u32,
        pad0: u32,
        pad1: u32,
    }
}

params! {
    /// `conv.wgsl`: `d` channels, kernel length `l`, `n` tokens.
    ConvParams {
        d: u32,
        l: u32,
        n: u32,
        bcx_cols: u32,
        out_cols: u32,
        pad0: u32,
        pad1: u32,
        pad2: u32,
    }
}

/// A flat op over `count` values: one thread each.
fn flat(ctx: &Ctx, pass: &mut GpuPass, k: Kernel, bufs: [&Buf; 3], params: ElementwiseParams) {
    let (x, y) = grid((params.count as usize).div_ceil(ctx.tuning.workgroup as usize));
    ctx.dispatch(pass, k, &bufs, &params, [x, y, 1]);
}

/// Parameters of a flat op without row strides (`width` 1: every index is its own row).
fn count(count: u32) -> ElementwiseParams {
    ElementwiseParams {
        count,
        width: 1,
        ..Default::default()
    }
}

pub(crate) fn add(ctx: &Ctx, pass: &mut GpuPass, acc: &GpuTensor, x: &GpuTensor, n: usize) {
    let params = count((n * acc.cols) as u32);
    flat(
        ctx,
        pass,
        Kernel::Add,
        [x.buf(), &*ctx.dummy, acc.buf()],
        params,
    );
}

pub(crate) fn swiglu(
    ctx: &Ctx,
    pass: &mut GpuPass,
    gate: &GpuTensor,
    up: &GpuTensor,
    n: usize,
    out: &GpuTensor,
) {
    let params = count((n * out.cols) as u32);
    let bufs = [gate.buf(), up.buf(), out.buf()];
    flat(ctx, pass, Kernel::Swiglu, bufs, params);
}

pub(crate) fn copy_row(
    ctx: &Ctx,
    pass: &mut GpuPass,
    src: &GpuTensor,
    src_row: usize,
    dst: &GpuTensor,
) {
    let c = src.cols as u32;
    let params = ElementwiseParams {
        count: c,
        a_off: src_row as u32 * c,
        width: c,
        ..Default::default()
    };
    let bufs = [src.buf(), &*ctx.dummy, dst.buf()];
    flat(ctx, pass, Kernel::Copy, bufs, params);
}

/// Whole-tensor copy (state checkpoints), segment by segment.
pub(crate) fn copy(ctx: &Ctx, pass: &mut GpuPass, src: &GpuTensor, dst: &GpuTensor) {
    if src.half || dst.half || src.seg_rows != dst.seg_rows || src.segs.len() != dst.segs.len() {
        // Only f32 single-layout copies exist (state checkpoints); caches are never copied.
        let e = Error::Gpu("copy between KV caches or differently laid out tensors".into());
        return ctx.fail(pass, e);
    }
    for sp in src.spans(0, src.rows) {
        let n = (sp.rows * src.cols) as u32;
        let params = ElementwiseParams {
            count: n,
            width: n.max(1),
            ..Default::default()
        };
        let bufs = [&*src.segs[sp.seg], &*ctx.dummy, &*dst.segs[sp.seg]];
        flat(ctx, pass, Kernel::Copy, bufs, params);
    }
}

pub(crate) fn zero(ctx: &Ctx, pass: &mut GpuPass, t: &GpuTensor) {
    for sp in t.spans(0, t.rows) {
        // In 4-byte words: zero bits are 0.0 in f16 and f32 alike.
        let params = count((sp.rows * t.row_bytes() / 4) as u32);
        let bufs = [&*ctx.dummy, &*ctx.dummy, &*t.segs[sp.seg]];
        flat(ctx, pass, Kernel::Zero, bufs, params);
    }
}

/// One thread per channel, advancing the rolling state in place.
pub(crate) fn short_conv(
    ctx: &Ctx,
    pass: &mut GpuPass,
    bcx: &GpuTensor,
    kernel: &GpuWeight,
    state: &GpuTensor,
    n: usize,
    out: &GpuTensor,
) {
    let d = out.cols;
    let params = ConvParams {
        d: d as u32,
        l: kernel.k as u32,
        n: n as u32,
        bcx_cols: bcx.cols as u32,
        out_cols: out.cols as u32,
        ..Default::default()
    };
    let bufs = [bcx.buf(), kernel.whole(), state.buf(), out.buf()];
    let groups = [d.div_ceil(ctx.tuning.workgroup as usize) as u32, 1, 1];
    ctx.dispatch(pass, Kernel::ShortConv, &bufs, &params, groups);
}
