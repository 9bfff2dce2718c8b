//! RMSNorm of rows and the fused per-head norm + RoPE of q (in place) and k (straight into the
//! KV cache, v beside it): `norm.wgsl`.

use crate::backend::gpu::context::{Ctx, GpuPass};
use crate::backend::gpu::kernels::Kernel;
use crate::backend::gpu::layout::{GpuTensor, GpuWeight};
use crate::backend::{AttnShape, Rope};
use crate::error::Error;

params! {
    /// `norm.wgsl` (all three kernels).
    NormParams {
        cols: u32,
        x_cols: u32,
        y_cols: u32,
        eps: f32,
        /// Norm + RoPE only.
        heads: u32,
        pos0: u32,
        rope_base: f32,
        /// `k_norm_rope_store`: first token of this dispatch, the cache row it goes to, v's
        /// row width.
        t0: u32,
        y_row0: u32,
        v_cols: u32,
    }
}

/// One workgroup per row.
pub(crate) fn rms_norm(
    ctx: &Ctx,
    pass: &mut GpuPass,
    x: &GpuTensor,
    w: &GpuWeight,
    eps: f32,
    n: usize,
    out: &GpuTensor,
) {
    let params = NormParams {
        cols: w.k as u32,
        x_cols: x.cols as u32,
        y_cols: out.cols as u32,
        eps,
        ..Default::default()
    };
    let bufs = [x.buf(), w.whole(), out.buf()];
    ctx.dispatch(pass, Kernel::RmsNorm, &bufs, &params, [n as u32, 1, 1]);
}

/// The q and k/v tensors and their head norms, for [`qk_norm_rope_store`].
pub(crate) struct QkvIn<'a> {
    pub q: &'a GpuTensor,
    pub k: &'a GpuTensor,
    pub v: &'a GpuTensor,
    pub q_norm: &'a GpuWeight,
    pub k_norm: &'a GpuWeight,
}

/// q normed and rotated in place (one workgroup per head and token); k normed, rotated and
/// stored with v into the cache segments holding positions `pos0..pos0 + n`.
pub(crate) fn qk_norm_rope_store(
    ctx: &Ctx,
    pass: &mut GpuPass,
    qkv: QkvIn<'_>,
    (k_cache, v_cache): (&GpuTensor, &GpuTensor),
    rope: Rope,
    pos0: usize,
    n: usize,
) {
    let AttnShape {
        n_head,
        n_head_kv,
        head_dim: hd,
    } = rope.shape;
    if hd > ctx.tuning.max_head_dim {
        return ctx.fail(
            pass,
            Error::Gpu(format!("head_dim {hd} > {}", ctx.tuning.max_head_dim)),
        );
    }
    let base = NormParams {
        cols: hd as u32,
        eps: rope.eps,
        pos0: pos0 as u32,
        rope_base: rope.base,
        v_cols: qkv.v.cols as u32,
        ..Default::default()
    };
    let qp = NormParams {
        y_cols: qkv.q.cols as u32,
        heads: n_head as u32,
        ..base
    };
    let bufs = [&*ctx.dummy, qkv.q_norm.whole(), qkv.q.buf()];
    let groups = [n_head as u32, n as u32, 1];
    ctx.dispatch(pass, Kernel::QkNormRope, &bufs, &qp, groups);
    for sp in k_cache.spans(pos0, n) {
        let kp = NormParams {
            x_cols: qkv.k.cols as u32,
            y_cols: (n_head_kv * hd) as u32,
            heads: n_head_kv as u32,
            t0: sp.offset as u32,
            y_row0: sp.row as u32,
            ..base
        };
        let bufs = [
            qkv.k.buf(),
            qkv.k_norm.whole(),
            &*k_cache.segs[sp.seg],
            qkv.v.buf(),
            &*v_cache.segs[sp.seg],
        ];
        let groups = [n_head_kv as u32, sp.rows as u32, 1];
        ctx.dispatch(pass, Kernel::KNormRopeStore, &bufs, &kp, groups);
    }
}
