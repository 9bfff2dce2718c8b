// Tiled matrix-matrix product for prefill: a workgroup computes a TR x TT tile of
// out[t, row0 + r] = sum_i W[r, i] x[t, i]. Each K step dequantizes TR rows x 32 values of W
// and TT tokens x 32 values of x into workgroup memory (the weight tile is f16 on the f16 path),
// then every thread accumulates its outputs in f32.

struct Params {
    k: u32,
    n_groups: u32,
    row_bytes: u32,
    rows: u32,
    row0: u32,
    out_cols: u32,
    x_cols: u32,
    n_tok: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> W: array<u32>;
@group(0) @binding(2) var<storage, read> X: array<f32>;
@group(0) @binding(3) var<storage, read_write> Y: array<f32>;

const TR: u32 = 32u;
const TT: u32 = 16u;
var<workgroup> wt: array<array<WT_W, 33>, TR>;
var<workgroup> xt: array<array<f32, 33>, TT>;

// Tile row being filled by this thread's visit_W.
var<private> g_row: u32;

fn take_W(i: u32, v: f32) -> f32 {
    wt[g_row][i] = WT_W(v);
    return 0.0;
}

// Outputs per thread: TR rows strided by WG / TT, for one token.
const OPT: u32 = TR * TT / WG;

@compute @workgroup_size(WG)
fn matmul(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    g_k = p.k;
    let r0 = (wid.x + wid.y * 65535u) * TR;
    let t0 = wid.z * TT;
    // Thread -> outputs: (TR * TT) / WG outputs each, rows strided by WG / TT.
    let tt = lid % TT;
    let rr = lid / TT;
    let rstep = WG / TT;
    var acc: array<f32, OPT>;
    for (var j = 0u; j < p.n_groups; j++) {
        for (var r = lid; r < TR; r += WG) {
            let row = r0 + r;
            // Rows past the end, and a ragged last group, read as zeros.
            if (row >= p.rows || 32u * j + 32u > p.k) {
                for (var i = 0u; i < 32u; i++) {
                    wt[r][i] = WT_W(0.0);
                }
            }
            if (row < p.rows) {
                g_row = r;
                visit_W(row * p.row_bytes, j, 0u);
            }
        }
        for (var e = lid; e < TT * 32u; e += WG) {
            let t = t0 + e / 32u;
            let i = 32u * j + e % 32u;
            var v = 0.0;
            if (t < p.n_tok && i < p.k) {
                v = X[t * p.x_cols + i];
            }
            xt[e / 32u][e % 32u] = v;
        }
        workgroupBarrier();
        for (var o = 0u; o < OPT; o++) {
            let r = rr + o * rstep;
            var s = 0.0;
            for (var i = 0u; i < 32u; i++) {
                s += f32(wt[r][i]) * xt[tt][i];
            }
            acc[o] += s;
        }
        workgroupBarrier();
    }
    let t = t0 + tt;
    for (var o = 0u; o < OPT; o++) {
        let row = r0 + rr + o * rstep;
        if (row < p.rows && t < p.n_tok) {
            Y[t * p.out_cols + p.row0 + row] = acc[o];
        }
    }
}
