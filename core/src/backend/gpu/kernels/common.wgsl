// Shared prelude spliced in front of every kernel. The host picks one `wg_sum`/`wg_max`
// section (subgroup or workgroup-memory reduction) and defines FT (f16 or f32), WG and the
// tuning constants TR, TT, MAX_HD, MAX_K.
// SG_ARGS / SG_INIT in entry points are replaced by the subgroup builtins (or nothing).

//@ base
var<workgroup> red: array<f32, WG>;
var<private> g_k: u32;
var<private> g_sg_lid: u32;
var<private> g_sg_id: u32;
var<private> g_nsg: u32;

// Mat-mat tiles (matmul.wgsl and the grouped MoE kernels): TR weight rows x TT tokens per
// workgroup (both from the host's tuning table). Register tile: each thread owns TM rows (RS
// apart) x TN tokens (TG apart), so one weight and one activation read from workgroup memory
// feed TN and TM products.
const TN: u32 = 4u;
const TG: u32 = TT / TN;
const RS: u32 = WG / TG;
const TM: u32 = TR / RS;

fn sigmoid(x: f32) -> f32 {
    return 1.0 / (1.0 + exp(-x));
}

fn silu(x: f32) -> f32 {
    return x / (1.0 + exp(-x));
}

// Sum of `v` over each segment of `tpr` consecutive lanes (one output row per segment; tpr a
// power of two <= WG, the same for the whole workgroup); every lane gets its segment's sum.
fn seg_sum(v: f32, lid: u32, tpr: u32) -> f32 {
    if (tpr == WG) {
        return wg_sum(v, lid);
    }
    red[lid] = v;
    workgroupBarrier();
    for (var h = tpr / 2u; h > 0u; h >>= 1u) {
        if (lid % tpr < h) {
            red[lid] += red[lid + h];
        }
        workgroupBarrier();
    }
    let s = red[lid / tpr * tpr];
    workgroupBarrier();
    return s;
}

//@ reduce_shared
fn wg_sum(v: f32, lid: u32) -> f32 {
    red[lid] = v;
    workgroupBarrier();
    for (var s = WG / 2u; s > 0u; s >>= 1u) {
        if (lid < s) {
            red[lid] += red[lid + s];
        }
        workgroupBarrier();
    }
    let t = red[0];
    workgroupBarrier();
    return t;
}
fn wg_max(v: f32, lid: u32) -> f32 {
    red[lid] = v;
    workgroupBarrier();
    for (var s = WG / 2u; s > 0u; s >>= 1u) {
        if (lid < s) {
            red[lid] = max(red[lid], red[lid + s]);
        }
        workgroupBarrier();
    }
    let t = red[0];
    workgroupBarrier();
    return t;
}

//@ reduce_subgroup
fn wg_sum(v: f32, lid: u32) -> f32 {
    let s = subgroupAdd(v);
    if (g_sg_lid == 0u) {
        red[g_sg_id] = s;
    }
    workgroupBarrier();
    var t = 0.0;
    for (var i = 0u; i < g_nsg; i++) {
        t += red[i];
    }
    workgroupBarrier();
    return t;
}
fn wg_max(v: f32, lid: u32) -> f32 {
    let s = subgroupMax(v);
    if (g_sg_lid == 0u) {
        red[g_sg_id] = s;
    }
    workgroupBarrier();
    var t = red[0];
    for (var i = 1u; i < g_nsg; i++) {
        t = max(t, red[i]);
    }
    workgroupBarrier();
    return t;
}

//@ tile
// The shared mat-mat tile (matmul.wgsl and the grouped MoE kernels), spliced by the host in
// front of them. A kernel defines the hooks `tile_zero(r)` (zero row r of its weight tiles),
// `tile_visit(row, j)` (decode group j of weight row `row` through its take_ functions, which
// write tile row g_row) and `tile_x(c, i) -> f32` (activation i of tile column c; 0 outside),
// and writes `//% tile_loop TILE:ACC ...` where the loop goes: the host expands it from the
// `tile_loop` section below (WGSL cannot pass workgroup arrays to functions), with the locals
// lid, r0, n_rows, k_in, n_groups, tg and rg in scope.
var<workgroup> xt: array<array<f32, 33>, TT>;
// Tile row being filled by this thread's visit.
var<private> g_row: u32;

//@ tile_loop
    for (var j = 0u; j < n_groups; j++) {
        for (var r = lid; r < TR; r += WG) {
            let row = r0 + r;
            // Rows past the end, and a ragged last group, read as zeros.
            if (row >= n_rows || 32u * j + 32u > k_in) {
                tile_zero(r);
            }
            if (row < n_rows) {
                g_row = r;
                tile_visit(row, j);
            }
        }
        for (var q = lid; q < TT * 32u; q += WG) {
            xt[q / 32u][q % 32u] = tile_x(q / 32u, 32u * j + q % 32u);
        }
        workgroupBarrier();
        for (var i = 0u; i < 32u; i++) {
            var xs: array<f32, TN>;
            for (var n = 0u; n < TN; n++) {
                xs[n] = xt[tg + TG * n][i];
            }
            for (var m = 0u; m < TM; m++) {
                let w_ACC = f32(TILE[rg + RS * m][i]);
                for (var n = 0u; n < TN; n++) {
                    ACC[m * TN + n] += w_ACC * xs[n];
                }
            }
        }
        workgroupBarrier();
    }

//@ weight_io
// The uniform block, weight matrix and output of the weight kernels (matvec.wgsl, matmul.wgsl,
// embed.wgsl), spliced by the host in front of them.
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> W: array<u32>;
@group(0) @binding(3) var<storage, read_write> Y: array<f32>;

//@ product
// The parameters and activations of both weight products: out[t, row0 + r] = W[r] . x[t] for
// the rows of one weight chunk; the mat-vec (matvec.wgsl) runs `tpr` lanes per row, the mat-mat
// (matmul.wgsl) tiles `n_tok` tokens.
struct Params {
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

@group(0) @binding(2) var<storage, read> X: array<f32>;
