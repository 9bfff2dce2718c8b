//! LFM2-MoE on the GPU (`moe.wgsl`): the router, then per-slot expert products for decode, or
//! for prefill the grouped path (slot lists per expert, tiled products per expert, a weighted
//! combine).

use super::grid;
use crate::backend::gpu::context::{Buf, Ctx, GpuPass};
use crate::backend::gpu::kernels::Kernel;
use crate::backend::gpu::layout::{Chunk, GpuIds, GpuTensor, GpuWeight};
use crate::backend::{MoeShape, MoeWeights};
use crate::error::Error;

params! {
    /// `route`: one thread per token.
    RouteParams {
        n_exp: u32,
        k: u32,
        n: u32,
        logit_cols: u32,
        w_cols: u32,
        has_bias: u32,
    }
}

params! {
    /// `gate_up` and `gate_up_tiled` (moe.wgsl's `gate_up_params`): the chunks hold experts
    /// from `ea0` (gate) and `eb0` (up). Decode: the slots of experts `[e0, e1)`, `tpr` lanes
    /// per hidden row, one slot per `z`. Grouped prefill: `tiles` tiles of `TT` slots per expert
    /// from `e0`, the expert lists of `cap + 1` words from word `lists`.
    GateUpParams {
        k_in: u32,
        n_groups: u32,
        row_bytes_a: u32,
        row_bytes_b: u32,
        n_ff: u32,
        e0: u32,
        e1: u32,
        ea0: u32,
        eb0: u32,
        k_used: u32,
        x_cols: u32,
        h_cols: u32,
        tpr: u32,
        tiles: u32,
        lists: u32,
        cap: u32,
    }
}

params! {
    /// `down` and `down_tiled` (moe.wgsl's `down_params`): the chunk holds experts from `ea0`.
    /// Decode: the slots of experts `[e0, e1)`, `tpr` lanes per output row, one token per `z`,
    /// later chunks `accumulate`. Grouped prefill: `tiles` tiles of `TT` slots per expert from
    /// `e0`, the expert lists of `cap + 1` words from word `lists`; each slot's result after
    /// its hidden values.
    DownParams {
        k_in: u32,
        n_groups: u32,
        row_bytes: u32,
        d: u32,
        e0: u32,
        e1: u32,
        ea0: u32,
        k_used: u32,
        h_cols: u32,
        out_cols: u32,
        w_cols: u32,
        accumulate: u32,
        tpr: u32,
        tiles: u32,
        lists: u32,
        cap: u32,
    }
}

params! {
    /// `moe_group`: one thread per expert; lists of `cap + 1` words from word `lists`.
    GroupParams {
        slots: u32,
        n_expert: u32,
        lists: u32,
        cap: u32,
    }
}

params! {
    /// `moe_combine`: one thread per output value.
    CombineParams {
        n_ff: u32,
        d: u32,
        k_used: u32,
        h_cols: u32,
        w_cols: u32,
        out_cols: u32,
        n: u32,
    }
}

/// The router's output: per-token expert ids and their weights.
pub(crate) struct Routing<'a> {
    pub ids: &'a GpuIds,
    pub weights: &'a GpuTensor,
}

/// Sigmoid scores, top `k` of score + bias, renormalized weights: one thread per token.
#[allow(clippy::too_many_arguments)]
pub(crate) fn route(
    ctx: &Ctx,
    pass: &mut GpuPass,
    logits: &GpuTensor,
    bias: Option<&GpuWeight>,
    k: usize,
    n: usize,
    out: Routing<'_>,
) {
    if k > ctx.tuning.max_experts_used {
        return ctx.fail(pass, Error::Gpu(format!("{k} experts per token > 32")));
    }
    let params = RouteParams {
        n_exp: logits.cols as u32,
        k: k as u32,
        n: n as u32,
        logit_cols: logits.cols as u32,
        w_cols: out.weights.cols as u32,
        has_bias: bias.is_some() as u32,
    };
    let b = bias.map_or(&*ctx.dummy, |b| b.whole());
    let bufs = [logits.buf(), b, &*out.ids.buf, out.weights.buf()];
    let groups = [n.div_ceil(ctx.tuning.workgroup as usize) as u32, 1, 1];
    ctx.dispatch(pass, Kernel::Route, &bufs, &params, groups);
}

/// Everything an expert FFN call reads and writes.
pub(crate) struct MoeIo<'a> {
    pub x: &'a GpuTensor,
    pub routing: Routing<'a>,
    pub hidden: &'a GpuTensor,
    pub out: &'a GpuTensor,
}

/// `out[t] = sum_j w[t, j] * Expert_{ids[t, j]}(x[t])`: grouped by expert for prefill batches
/// (when `hidden` has room for each slot's output), per slot otherwise.
pub(crate) fn ffn(
    ctx: &Ctx,
    pass: &mut GpuPass,
    experts: MoeWeights<'_, GpuWeight>,
    io: MoeIo<'_>,
    shape: MoeShape,
    n: usize,
) {
    let grouped = ctx.tuning.tiled(n)
        && io.hidden.cols >= shape.n_ff + io.out.cols
        && io.routing.ids.n_expert == shape.n_expert;
    if grouped {
        group(ctx, pass, &io, shape, n);
        gate_up_tiled(ctx, pass, experts, &io, shape, n);
        down_tiled(ctx, pass, experts.down, &io, n);
        combine(ctx, pass, &io, shape, n);
    } else {
        gate_up(ctx, pass, experts, &io, shape, n);
        down(ctx, pass, experts.down, &io, shape, n);
    }
}

/// Pairs of gate and up chunks holding common experts: (gate chunk, up chunk, first expert of
/// each chunk, the shared expert range [e0, e1)).
fn expert_pairs<'a>(
    g: &'a GpuWeight,
    u: &'a GpuWeight,
) -> impl Iterator<Item = (&'a Chunk, &'a Chunk, u32, u32, u32, u32)> {
    g.chunks.iter().flat_map(move |gc| {
        u.chunks.iter().filter_map(move |uc| {
            let (ga, gb) = g.experts(gc);
            let (ua, ub) = u.experts(uc);
            let (e0, e1) = (ga.max(ua), gb.min(ub));
            (e0 < e1).then_some((gc, uc, ga, ua, e0, e1))
        })
    })
}

/// Each pair of gate/up chunks holding common experts: the buffers both gate/up kernels bind
/// and the parameters they share (the caller adds its own: `tpr`, or `tiles`, `lists`, `cap`).
fn gate_up_launches<'a>(
    experts: MoeWeights<'a, GpuWeight>,
    io: &'a MoeIo<'a>,
    shape: MoeShape,
) -> impl Iterator<Item = ([&'a Buf; 5], GateUpParams)> + 'a {
    let (g, u) = (experts.gate, experts.up);
    expert_pairs(g, u).map(move |(gc, uc, ea0, eb0, e0, e1)| {
        let params = GateUpParams {
            k_in: g.k as u32,
            n_groups: g.n_groups(),
            row_bytes_a: g.row_bytes as u32,
            row_bytes_b: u.row_bytes as u32,
            n_ff: shape.n_ff as u32,
            e0,
            e1,
            ea0,
            eb0,
            k_used: shape.n_expert_used as u32,
            x_cols: io.x.cols as u32,
            h_cols: io.hidden.cols as u32,
            ..Default::default()
        };
        let ids = &*io.routing.ids.buf;
        (
            [&*gc.buf, &*uc.buf, io.x.buf(), ids, io.hidden.buf()],
            params,
        )
    })
}

/// Decode: `H[slot] = silu(gate . x) * (up . x)`, one slot per `z`.
fn gate_up(
    ctx: &Ctx,
    pass: &mut GpuPass,
    experts: MoeWeights<'_, GpuWeight>,
    io: &MoeIo<'_>,
    shape: MoeShape,
    n: usize,
) {
    let tpr = ctx.tuning.lanes(experts.gate.n_groups());
    let (fx, fy) = grid(shape.n_ff.div_ceil((ctx.tuning.workgroup / tpr) as usize));
    let slots = (n * shape.n_expert_used) as u32;
    let kernel = Kernel::GateUp(experts.gate.ty, experts.up.ty);
    for (bufs, base) in gate_up_launches(experts, io, shape) {
        let params = GateUpParams { tpr, ..base };
        ctx.dispatch(pass, kernel, &bufs, &params, [fx, fy, slots]);
    }
}

/// Decode: `Y[t] (+)= sum_s w[t, s] * (down . H[slot])`, one token per `z`.
fn down(ctx: &Ctx, pass: &mut GpuPass, dn: &GpuWeight, io: &MoeIo<'_>, shape: MoeShape, n: usize) {
    let d = io.out.cols;
    let tpr = ctx.tuning.lanes(dn.n_groups());
    let (ox, oy) = grid(d.div_ceil((ctx.tuning.workgroup / tpr) as usize));
    let Routing { ids, weights } = io.routing;
    for (i, c) in dn.chunks.iter().enumerate() {
        let (e0, e1) = dn.experts(c);
        let params = DownParams {
            k_in: dn.k as u32,
            n_groups: dn.n_groups(),
            row_bytes: dn.row_bytes as u32,
            d: d as u32,
            e0,
            e1,
            ea0: e0,
            k_used: shape.n_expert_used as u32,
            h_cols: io.hidden.cols as u32,
            out_cols: io.out.cols as u32,
            w_cols: weights.cols as u32,
            accumulate: (i > 0) as u32,
            tpr,
            ..DownParams::default()
        };
        let bufs = [
            &*c.buf,
            io.hidden.buf(),
            &*ids.buf,
            weights.buf(),
            io.out.buf(),
        ];
        ctx.dispatch(
            pass,
            Kernel::Down(dn.ty),
            &bufs,
            &params,
            [ox, oy, n as u32],
        );
    }
}

/// Grouped prefill, step 1: each expert's list of slots.
fn group(ctx: &Ctx, pass: &mut GpuPass, io: &MoeIo<'_>, shape: MoeShape, n: usize) {
    let ids = io.routing.ids;
    let params = GroupParams {
        slots: (n * shape.n_expert_used) as u32,
        n_expert: shape.n_expert as u32,
        lists: ids.lists(),
        cap: ids.rows as u32,
    };
    let groups = [(shape.n_expert as u32).div_ceil(ctx.tuning.workgroup), 1, 1];
    ctx.dispatch(pass, Kernel::MoeGroup, &[&ids.buf], &params, groups);
}

/// Tiles of `TT` slots per expert of an `n`-token batch.
fn tiles(ctx: &Ctx, n: usize) -> u32 {
    n.div_ceil(ctx.tuning.tile_tokens as usize) as u32
}

/// Grouped prefill, step 2: per expert, `TR` hidden rows x `TT` of its slots per workgroup.
fn gate_up_tiled(
    ctx: &Ctx,
    pass: &mut GpuPass,
    experts: MoeWeights<'_, GpuWeight>,
    io: &MoeIo<'_>,
    shape: MoeShape,
    n: usize,
) {
    let ids = io.routing.ids;
    let tiles = tiles(ctx, n);
    let (fx, fy) = grid(shape.n_ff.div_ceil(ctx.tuning.tile_rows as usize));
    let kernel = Kernel::GateUpTiled(experts.gate.ty, experts.up.ty);
    for (bufs, base) in gate_up_launches(experts, io, shape) {
        let params = GateUpParams {
            tiles,
            lists: ids.lists(),
            cap: ids.rows as u32,
            ..base
        };
        let groups = [fx, fy, (base.e1 - base.e0) * tiles];
        ctx.dispatch(pass, kernel, &bufs, &params, groups);
    }
}

/// Grouped prefill, step 3: each slot's expert output after its hidden values.
fn down_tiled(ctx: &Ctx, pass: &mut GpuPass, dn: &GpuWeight, io: &MoeIo<'_>, n: usize) {
    let ids = io.routing.ids;
    let tiles = tiles(ctx, n);
    let d = io.out.cols;
    let (ox, oy) = grid(d.div_ceil(ctx.tuning.tile_rows as usize));
    for c in &dn.chunks {
        let (e0, e1) = dn.experts(c);
        let params = DownParams {
            k_in: dn.k as u32,
            n_groups: dn.n_groups(),
            row_bytes: dn.row_bytes as u32,
            d: d as u32,
            e0,
            e1,
            ea0: e0,
            h_cols: io.hidden.cols as u32,
            tiles,
            lists: ids.lists(),
            cap: ids.rows as u32,
            ..DownParams::default()
        };
        let bufs = [&*c.buf, &*ids.buf, io.hidden.buf()];
        let groups = [ox, oy, (e1 - e0) * tiles];
        ctx.dispatch(pass, Kernel::DownTiled(dn.ty), &bufs, &params, groups);
    }
}

/// Grouped prefill, step 4: the weighted sum of each token's slots.
fn combine(ctx: &Ctx, pass: &mut GpuPass, io: &MoeIo<'_>, shape: MoeShape, n: usize) {
    let d = io.out.cols;
    let params = CombineParams {
        n_ff: shape.n_ff as u32,
        d: d as u32,
        k_used: shape.n_expert_used as u32,
        h_cols: io.hidden.cols as u32,
        w_cols: io.routing.weights.cols as u32,
        out_cols: io.out.cols as u32,
        n: n as u32,
    };
    let (cx, cy) = grid((n * d).div_ceil(ctx.tuning.workgroup as usize));
    let bufs = [io.hidden.buf(), io.routing.weights.buf(), io.out.buf()];
    ctx.dispatch(pass, Kernel::MoeCombine, &bufs, &params, [cx, cy, 1]);
}
