//! CPU kernels. Plain f32 loops written so LLVM vectorizes them; rows split over rayon tasks.

use rayon::prelude::*;

use std::cell::RefCell;

use super::pack::PACK;
use super::qdot::{NT, QAct, RowKernel};
use super::{CpuTensor, CpuWeight};
use crate::backend::{AttnShape, MoeShape, MoeWeights};

/// Rows per rayon task in mat-vec / mat-mat products.
const ROWS_PER_TASK: usize = 16;
/// Multiply-adds below which a product runs on the calling thread.
const MIN_TASK_WORK: usize = 1 << 16;

/// f32 dot product with eight independent accumulators (vectorizes well).
pub fn dot(a: &[f32], b: &[f32]) -> f32 {
    debug_assert_eq!(a.len(), b.len());
    let mut acc = [0f32; 8];
    let (ca, cb) = (a.chunks_exact(8), b.chunks_exact(8));
    let tail: f32 = ca
        .remainder()
        .iter()
        .zip(cb.remainder())
        .map(|(x, y)| x * y)
        .sum();
    for (x, y) in ca.zip(cb) {
        for i in 0..8 {
            acc[i] += x[i] * y[i];
        }
    }
    acc.iter().sum::<f32>() + tail
}

pub fn silu(x: f32) -> f32 {
    x / (1.0 + (-x).exp())
}

pub fn sigmoid(x: f32) -> f32 {
    1.0 / (1.0 + (-x).exp())
}

/// `out = x / sqrt(mean(x^2) + eps) * w` (sum of squares in f64, like ggml's CPU path).
pub fn rms_norm_row(x: &[f32], w: &[f32], eps: f32, out: &mut [f32]) {
    let ss: f64 = x.iter().map(|&v| (v as f64) * (v as f64)).sum();
    let scale = 1.0 / ((ss / x.len() as f64) as f32 + eps).sqrt();
    for ((o, &v), &wi) in out.iter_mut().zip(x).zip(w) {
        *o = v * scale * wi;
    }
}

/// [`rms_norm_row`] in place (same arithmetic, so the same bits).
pub fn rms_norm_in_place(x: &mut [f32], w: &[f32], eps: f32) {
    let ss: f64 = x.iter().map(|&v| (v as f64) * (v as f64)).sum();
    let scale = 1.0 / ((ss / x.len() as f64) as f32 + eps).sqrt();
    for (v, &wi) in x.iter_mut().zip(w) {
        *v = *v * scale * wi;
    }
}

/// NeoX (rotate-half) RoPE of one head at position `pos`: pairs (i, i + d/2).
pub fn rope_neox(head: &mut [f32], pos: usize, base: f32) {
    let half = head.len() / 2;
    for i in 0..half {
        let inv_freq = (base as f64).powf(-2.0 * i as f64 / head.len() as f64);
        let (sin, cos) = (pos as f64 * inv_freq).sin_cos();
        let (x0, x1) = (head[i] as f64, head[i + half] as f64);
        head[i] = (x0 * cos - x1 * sin) as f32;
        head[i + half] = (x0 * sin + x1 * cos) as f32;
    }
}

/// `W[row0..row0+nrows] · x_t` for `m` input rows of width `k`; result is `[m, nrows]`.
pub(super) fn gemm_rows(
    w: &CpuWeight,
    row0: usize,
    nrows: usize,
    x: &[f32],
    k: usize,
    m: usize,
) -> Vec<f32> {
    let mut out = vec![0f32; nrows * m];
    gemm_into(w, row0, nrows, x, k, m, &mut out);
    out
}

/// [`gemm_rows`] into `out` (`[m, nrows]`).
pub(super) fn gemm_into(
    w: &CpuWeight,
    row0: usize,
    nrows: usize,
    x: &[f32],
    k: usize,
    m: usize,
    out: &mut [f32],
) {
    debug_assert_eq!(w.k(), k);
    debug_assert_eq!(out.len(), nrows * m);
    match w.qdot {
        Some(kern) => with_act(|act| {
            act.quantize(x, k, kern.scale);
            gemm_q(w, row0, nrows, act, kern, m, out)
        }),
        None => gemm_f32(w, row0, nrows, x, k, m, out),
    }
}

/// Weight rows per rayon task: at least `ROWS_PER_TASK`, and at least ~64K multiply-adds
/// (smaller tasks cost more in scheduling than they save); whole packed groups.
fn rows_per_task(k: usize, m: usize) -> usize {
    ROWS_PER_TASK
        .max(MIN_TASK_WORK / (k * m).max(1))
        .next_multiple_of(PACK)
}

/// Splits the `nrows` results of a one-input product (`out[r]` for row `r`) over rayon tasks,
/// or runs them on the calling thread when the product is small: `work(r0, chunk)`.
fn for_row_chunks(
    out: &mut [f32],
    nrows: usize,
    k: usize,
    work: impl Fn(usize, &mut [f32]) + Sync,
) {
    let per_task = rows_per_task(k, 1);
    let run = |(ci, chunk): (usize, &mut [f32])| work(ci * per_task, chunk);
    if nrows * k <= MIN_TASK_WORK {
        out.chunks_mut(per_task).enumerate().for_each(run);
    } else {
        out.par_chunks_mut(per_task).enumerate().for_each(run);
    }
}

/// Splits `nrows` weight rows over rayon tasks (or the calling thread, for a small product)
/// for `m > 1` inputs: `work(r0, tile)` fills `tile` (`[rows, m]`, transposed: each task's
/// results contiguous) for rows `r0..`, and the tile goes straight into its columns of `out`
/// (`[m, nrows]`), from the task's own cache, instead of a serial transpose afterwards.
fn for_row_tiles(
    out: &mut [f32],
    nrows: usize,
    k: usize,
    m: usize,
    work: impl Fn(usize, &mut [f32]) + Sync,
) {
    let per_task = rows_per_task(k, m);
    let cols = Columns::new(out, nrows, m);
    let run = |task: usize| {
        let r0 = task * per_task;
        let rows = per_task.min(nrows - r0);
        with_scratch(rows * m, |tile| {
            work(r0, tile);
            // SAFETY: each task owns rows `r0..r0 + rows`, disjoint from every other task's.
            unsafe { cols.put(r0, tile) };
        });
    };
    let tasks = nrows.div_ceil(per_task);
    if nrows * k * m <= MIN_TASK_WORK {
        (0..tasks).for_each(run);
    } else {
        (0..tasks).into_par_iter().for_each(run);
    }
}

/// A `[m, nrows]` result that tasks owning disjoint row ranges write concurrently.
struct Columns<'a> {
    ptr: *mut f32,
    nrows: usize,
    m: usize,
    _out: std::marker::PhantomData<&'a mut [f32]>,
}

// SAFETY: `put`'s contract (disjoint rows per concurrent caller) makes shared writes sound.
unsafe impl Send for Columns<'_> {}
unsafe impl Sync for Columns<'_> {}

impl<'a> Columns<'a> {
    fn new(out: &'a mut [f32], nrows: usize, m: usize) -> Self {
        assert_eq!(out.len(), nrows * m, "a [m, nrows] result");
        Columns {
            ptr: out.as_mut_ptr(),
            nrows,
            m,
            _out: std::marker::PhantomData,
        }
    }

    /// Writes the `[rows, m]` tile `t` as rows `r0..r0 + rows` of every output row.
    ///
    /// # Safety
    /// No concurrent `put` may write any of the same rows.
    unsafe fn put(&self, r0: usize, t: &[f32]) {
        let rows = t.len() / self.m;
        assert!(r0 + rows <= self.nrows, "rows inside the result");
        for j in 0..self.m {
            // SAFETY: in bounds (asserted above); rows `r0..r0 + rows` are this caller's alone.
            let dst =
                unsafe { std::slice::from_raw_parts_mut(self.ptr.add(j * self.nrows + r0), rows) };
            for (i, d) in dst.iter_mut().enumerate() {
                *d = t[i * self.m + j];
            }
        }
    }
}

fn gemm_f32(
    w: &CpuWeight,
    row0: usize,
    nrows: usize,
    x: &[f32],
    k: usize,
    m: usize,
    out: &mut [f32],
) {
    let work = |r0: usize, chunk: &mut [f32]| {
        let mut row = if m > 1 { vec![0f32; k] } else { Vec::new() };
        for (i, res) in chunk.chunks_exact_mut(m).enumerate() {
            let r = row0 + r0 + i;
            if m == 1 {
                res[0] = w.dot_row(r, &x[..k]);
            } else {
                w.row_f32(r, &mut row);
                for (j, o) in res.iter_mut().enumerate() {
                    *o = dot(&row, &x[j * k..(j + 1) * k]);
                }
            }
        }
    };
    if m == 1 {
        return for_row_chunks(out, nrows, k, work);
    }
    for_row_tiles(out, nrows, k, m, work);
}

/// Tokens per tile in the quantized mat-mat: a tile's int8 rows (~2.3 KB each at k = 2048)
/// stay in L1/L2 while a task's weight rows stream past them.
const TOKEN_TILE: usize = 16;

fn gemm_q(
    w: &CpuWeight,
    row0: usize,
    nrows: usize,
    act: &QAct,
    kern: RowKernel,
    m: usize,
    out: &mut [f32],
) {
    let k = w.k();
    if m == 1 {
        let a = act.row(0);
        return for_row_chunks(out, nrows, k, |r0, chunk| {
            w.qdot_rows(kern, row0 + r0, a, chunk);
        });
    }
    for_row_tiles(out, nrows, k, m, |r0, chunk| {
        let rows = chunk.len() / m;
        for j0 in (0..m).step_by(TOKEN_TILE) {
            let j1 = (j0 + TOKEN_TILE).min(m);
            let mut i = 0;
            while i < rows {
                let r = row0 + r0 + i;
                let res = &mut chunk[i * m..];
                i += match kern.packed.zip(w.group(r / PACK)) {
                    Some((pk, g)) if r.is_multiple_of(PACK) && i + PACK <= rows => {
                        group_tile(pk, g, act, j0, j1, m, res);
                        PACK
                    }
                    _ => {
                        row_tile(w, kern, r, act, j0, j1, &mut res[..m]);
                        1
                    }
                };
            }
        }
    });
}

/// Tokens `j0..j1` against weight row `r`: `res[j]` (`NT` tokens at a time, each weight block
/// decoded once for all of them).
fn row_tile(
    w: &CpuWeight,
    kern: RowKernel,
    r: usize,
    act: &QAct,
    j0: usize,
    j1: usize,
    res: &mut [f32],
) {
    let mut j = j0;
    while j + NT <= j1 {
        let rows4 = std::array::from_fn(|u| act.row(j + u));
        res[j..j + NT].copy_from_slice(&w.qdot_row4(kern, r, &rows4));
        j += NT;
    }
    for jj in j..j1 {
        w.qdot_rows(kern, r, act.row(jj), &mut res[jj..jj + 1]);
    }
}

/// Tokens `j0..j1` against the packed group `g` (eight rows): `res[l * m + j]` for row `l`.
fn group_tile(
    pk: super::qdot::PackedKernel,
    g: &[u8],
    act: &QAct,
    j0: usize,
    j1: usize,
    m: usize,
    res: &mut [f32],
) {
    let mut put = |j: usize, v: [f32; PACK]| {
        for (l, x) in v.into_iter().enumerate() {
            res[l * m + j] = x;
        }
    };
    let mut j = j0;
    while j + NT <= j1 {
        let rows4 = std::array::from_fn(|u| act.row(j + u));
        for (u, v) in (pk.dot8x4)(g, &rows4).into_iter().enumerate() {
            put(j + u, v);
        }
        j += NT;
    }
    for jj in j..j1 {
        put(jj, (pk.dot8)(g, act.row(jj)));
    }
}

thread_local! {
    /// The calling thread's activation buffer (reused: no allocation per decode step).
    static ACT: RefCell<QAct> = RefCell::new(QAct::default());
    /// This thread's f32 scratch for attention scores and the short-conv sequence.
    static SCRATCH: RefCell<Vec<f32>> = const { RefCell::new(Vec::new()) };
    /// The calling thread's MoE decode buffers.
    static MOE: std::cell::Cell<MoeScratch> = std::cell::Cell::new(MoeScratch::default());
}

/// Runs `f` with `n` zeroed f32s of this thread's scratch (grown, never shrunk: after the first
/// steps at a context length, no allocation), or a fresh buffer if it is already in use.
fn with_scratch<R>(n: usize, f: impl FnOnce(&mut [f32]) -> R) -> R {
    SCRATCH.with(|cell| match cell.try_borrow_mut() {
        Ok(mut v) => {
            v.clear();
            v.resize(n, 0.0);
            f(&mut v)
        }
        Err(_) => f(&mut vec![0f32; n]),
    })
}

/// Splits the results `chunk` (global indices from `r0`) of matrices of `rows` rows each into
/// runs within one matrix: `f(matrix, first row in it, results)`.
fn for_runs(
    r0: usize,
    chunk: &mut [f32],
    rows: usize,
    mut f: impl FnMut(usize, usize, &mut [f32]),
) {
    let mut i = 0;
    while i < chunk.len() {
        let (mat, first) = ((r0 + i) / rows, (r0 + i) % rows);
        let n = (rows - first).min(chunk.len() - i);
        f(mat, first, &mut chunk[i..i + n]);
        i += n;
    }
}

/// Buffers of the one-token MoE path, reused across layers and steps.
#[derive(Default)]
struct MoeScratch {
    ag: QAct,
    au: QAct,
    ah: QAct,
    gu: Vec<f32>,
    h: Vec<f32>,
    y: Vec<f32>,
}

/// Runs `f` with this thread's activation buffer, or a fresh one if it is already in use.
fn with_act<R>(f: impl FnOnce(&mut QAct) -> R) -> R {
    ACT.with(|cell| match cell.try_borrow_mut() {
        Ok(mut act) => f(&mut act),
        Err(_) => f(&mut QAct::default()),
    })
}

/// Gated short conv over `n` tokens with a rolling state of the last `L-1` values of `B*X`.
pub(super) fn short_conv(
    bcx: &CpuTensor,
    kernel: &[f32],
    l: usize,
    state: &mut CpuTensor,
    n: usize,
    out: &mut CpuTensor,
) {
    let d = out.cols;
    let hist = l - 1;
    debug_assert_eq!(state.data.len(), hist * d);
    let len = (hist + n) * d;
    if n == 1 {
        // Decode: this thread's scratch (no allocation per token).
        with_scratch(len, |seq| {
            short_conv_with(bcx, kernel, l, state, n, out, seq)
        });
    } else {
        // Prefill: a buffer of its own, not kept as a thread-local the size of the batch.
        short_conv_with(bcx, kernel, l, state, n, out, &mut vec![0f32; len]);
    }
}

fn short_conv_with(
    bcx: &CpuTensor,
    kernel: &[f32],
    l: usize,
    state: &mut CpuTensor,
    n: usize,
    out: &mut CpuTensor,
    seq: &mut [f32],
) {
    let d = out.cols;
    let hist = l - 1;
    // The sequence of B*X, oldest first: the state's `hist` rows, then the `n` new ones.
    seq[..hist * d].copy_from_slice(&state.data[..hist * d]);
    par_rows(&mut seq[hist * d..(hist + n) * d], d, |t, row| {
        let x = bcx.row(t);
        for (c, s) in row.iter_mut().enumerate() {
            *s = x[c] * x[2 * d + c];
        }
    });
    // Each output row reads only the sequence, so tokens are independent.
    let seq = &seq[..(hist + n) * d];
    par_rows(&mut out.data[..n * d], d, |t, row| {
        let c_gate = &bcx.row(t)[d..2 * d];
        for (c, o) in row.iter_mut().enumerate() {
            let taps = &kernel[c * l..(c + 1) * l];
            let v: f32 = taps
                .iter()
                .enumerate()
                .map(|(i, k)| k * seq[(t + i) * d + c])
                .sum();
            *o = c_gate[c] * v;
        }
    });
    state.data[..hist * d].copy_from_slice(&seq[n * d..(n + hist) * d]);
}

/// Values below which a per-row op runs on the calling thread (a decoded token's rows).
const PAR_ROW_VALUES: usize = 1 << 14;

/// `f(row index, row)` over the rows of width `cols` in `data`, split over the threads when
/// there is enough work (a prefill's rows).
pub(super) fn par_rows(data: &mut [f32], cols: usize, f: impl Fn(usize, &mut [f32]) + Sync) {
    if data.len() <= PAR_ROW_VALUES || data.len() <= cols {
        data.chunks_exact_mut(cols)
            .enumerate()
            .for_each(|(t, r)| f(t, r));
    } else {
        let rows = (PAR_ROW_VALUES / cols).max(1);
        data.par_chunks_mut(rows * cols)
            .enumerate()
            .for_each(|(ci, chunk)| {
                for (i, r) in chunk.chunks_exact_mut(cols).enumerate() {
                    f(ci * rows + i, r);
                }
            });
    }
}

/// Causal GQA attention over the caches for query rows `0..n` at positions `pos0..`. Tasks are
/// (row, head) pairs, so a single decoded token still spreads its heads over the threads.
pub(super) fn attention(
    q: &CpuTensor,
    k_cache: &CpuTensor,
    v_cache: &CpuTensor,
    s: AttnShape,
    pos0: usize,
    n: usize,
    out: &mut CpuTensor,
) {
    let (hd, out_cols) = (s.head_dim, out.cols);
    out.data[..n * out_cols]
        .par_chunks_mut(out_cols)
        .enumerate()
        .flat_map(|(t, row)| {
            row[..s.n_head * hd]
                .par_chunks_mut(hd)
                .enumerate()
                .map(move |(h, oh)| (t, h, oh))
        })
        .for_each(|(t, h, oh)| {
            with_scratch(pos0 + t + 1, |scores| {
                attend_head(q, k_cache, v_cache, s, t, h, scores, oh)
            });
        });
}

/// Head `h` of query row `t` over `scores.len()` cached positions.
#[allow(clippy::too_many_arguments)]
fn attend_head(
    q: &CpuTensor,
    k_cache: &CpuTensor,
    v_cache: &CpuTensor,
    s: AttnShape,
    t: usize,
    h: usize,
    scores: &mut [f32],
    oh: &mut [f32],
) {
    let hd = s.head_dim;
    let g = h / (s.n_head / s.n_head_kv);
    let kv_w = s.n_head_kv * hd;
    let scale = 1.0 / (hd as f32).sqrt();
    let qh = &q.row(t)[h * hd..(h + 1) * hd];
    for (j, sc) in scores.iter_mut().enumerate() {
        *sc = dot(
            qh,
            &k_cache.data[j * kv_w + g * hd..j * kv_w + (g + 1) * hd],
        ) * scale;
    }
    let max = scores.iter().fold(f32::NEG_INFINITY, |a, &b| a.max(b));
    let mut sum = 0f32;
    for sc in scores.iter_mut() {
        *sc = (*sc - max).exp();
        sum += *sc;
    }
    oh.fill(0.0);
    for (j, &p) in scores.iter().enumerate() {
        let vj = &v_cache.data[j * kv_w + g * hd..j * kv_w + (g + 1) * hd];
        for (o, &vv) in oh.iter_mut().zip(vj) {
            *o += p * vv;
        }
    }
    for o in oh.iter_mut() {
        *o /= sum;
    }
}

/// Sigmoid router: top `k` of `sigmoid(logits) + bias`, weights = unbiased sigmoids renormalized.
pub fn route(logits: &[f32], bias: Option<&[f32]>, k: usize) -> (Vec<u32>, Vec<f32>) {
    let (mut sel, mut w) = (vec![0u32; k], vec![0f32; k]);
    route_into(logits, bias, &mut sel, &mut w);
    (sel, w)
}

/// [`route`] into `sel` and `w` (`k` each), without allocating: `k` passes of an arg-max in
/// `f32::total_cmp` order, ties to the lower expert index (what a stable descending sort
/// gives).
pub(super) fn route_into(logits: &[f32], bias: Option<&[f32]>, sel: &mut [u32], w: &mut [f32]) {
    let score = |e: usize| sigmoid(logits[e]) + bias.map_or(0.0, |b| b[e]);
    for j in 0..sel.len() {
        let mut best: Option<(usize, f32)> = None;
        for e in (0..logits.len()).filter(|&e| !sel[..j].contains(&(e as u32))) {
            let sc = score(e);
            if best.is_none_or(|(_, b)| sc.total_cmp(&b).is_gt()) {
                best = Some((e, sc));
            }
        }
        sel[j] = best.expect("k <= n_expert").0 as u32;
    }
    let sum: f32 = sel.iter().map(|&e| sigmoid(logits[e as usize])).sum();
    for (wt, &e) in w.iter_mut().zip(sel.iter()) {
        *wt = sigmoid(logits[e as usize]) / (sum + 1e-6);
    }
}

/// Routed experts, grouped: each used expert runs once over all the tokens that chose it.
pub(super) fn moe_ffn(
    x: &CpuTensor,
    w: MoeWeights<'_, CpuWeight>,
    ids: &[u32],
    weights: &CpuTensor,
    s: MoeShape,
    n: usize,
    out: &mut CpuTensor,
) {
    let d = x.cols;
    let k = s.n_expert_used;
    out.data[..n * d].fill(0.0);
    if n == 1
        && moe_decode_q(
            x.row(0),
            w,
            &ids[..k],
            &weights.row(0)[..k],
            s,
            &mut out.data[..d],
        )
    {
        return;
    }
    // Each (token, slot)'s expert output, `[n, k, d]`.
    let mut ys = vec![0f32; n * k * d];
    for e in 0..s.n_expert {
        // (token, slot) pairs routed to expert e, in token order.
        let users: Vec<(usize, usize)> = (0..n)
            .flat_map(|t| (0..k).map(move |j| (t, j)))
            .filter(|&(t, j)| ids[t * k + j] as usize == e)
            .collect();
        if users.is_empty() {
            continue;
        }
        let m = users.len();
        let xs: Vec<f32> = users
            .iter()
            .flat_map(|&(t, _)| x.row(t).iter().copied())
            .collect();
        let gate = gemm_rows(w.gate, e * s.n_ff, s.n_ff, &xs, d, m);
        let up = gemm_rows(w.up, e * s.n_ff, s.n_ff, &xs, d, m);
        let h: Vec<f32> = gate.iter().zip(&up).map(|(&g, &u)| silu(g) * u).collect();
        let y = gemm_rows(w.down, e * d, d, &h, s.n_ff, m);
        for (i, &(t, j)) in users.iter().enumerate() {
            ys[(t * k + j) * d..(t * k + j + 1) * d].copy_from_slice(&y[i * d..(i + 1) * d]);
        }
    }
    // Combined per token in slot order, as the one-token path does: a token's result must not
    // depend on the other tokens of its batch (exact cache reuse).
    for t in 0..n {
        combine(
            &ys[t * k * d..(t + 1) * k * d],
            &weights.row(t)[..k],
            &mut out.data[t * d..(t + 1) * d],
        );
    }
}

/// `out += Σ_slot wts[slot] * y[slot]`, slots in order (`y` is `[slots, d]`).
fn combine(y: &[f32], wts: &[f32], out: &mut [f32]) {
    for (ys, &wt) in y.chunks_exact(out.len()).zip(wts) {
        for (o, &v) in out.iter_mut().zip(ys) {
            *o += wt * v;
        }
    }
}

/// One token's routed experts on the quantized path: gate and up of all `k` experts in one
/// parallel pass over (expert, row), then down likewise, so threads split `k`x more rows per
/// synchronisation than one expert at a time. `false` (nothing done) without integer kernels.
fn moe_decode_q(
    x: &[f32],
    w: MoeWeights<'_, CpuWeight>,
    sel: &[u32],
    wts: &[f32],
    s: MoeShape,
    out: &mut [f32],
) -> bool {
    let (Some(kg), Some(ku), Some(kd)) = (w.gate.qdot, w.up.qdot, w.down.qdot) else {
        return false;
    };
    let (d, ff, k) = (x.len(), s.n_ff, sel.len());
    let mut cell = MOE.with(|c| c.take());
    let MoeScratch {
        ag,
        au,
        ah,
        gu,
        h,
        y,
    } = &mut cell;
    ag.quantize(x, d, kg.scale);
    au.quantize(x, d, ku.scale);
    // Rows [slot][gate | up][r], flattened.
    gu.resize(2 * k * ff, 0.0);
    for_row_chunks(gu, 2 * k * ff, d, |r0, chunk| {
        // Runs of rows of one (slot, gate | up) matrix: contiguous rows of one expert.
        for_runs(r0, chunk, ff, |run, first, out| {
            let (slot, up) = (run / 2, run % 2 == 1);
            let row = sel[slot] as usize * ff + first;
            if up {
                w.up.qdot_rows(ku, row, au.row(0), out);
            } else {
                w.gate.qdot_rows(kg, row, ag.row(0), out);
            }
        });
    });
    h.clear();
    h.extend(
        gu.chunks_exact(2 * ff)
            .flat_map(|c| c[..ff].iter().zip(&c[ff..]).map(|(&g, &u)| silu(g) * u)),
    );
    ah.quantize(h, ff, kd.scale);
    y.resize(k * d, 0.0);
    for_row_chunks(y, k * d, ff, |r0, chunk| {
        for_runs(r0, chunk, d, |slot, first, out| {
            w.down
                .qdot_rows(kd, sel[slot] as usize * d + first, ah.row(slot), out);
        });
    });
    combine(y, wts, out);
    MOE.with(|c| c.replace(cell));
    true
}
