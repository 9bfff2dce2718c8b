// Tiled matrix-matrix product for prefill: a workgroup computes a TR x TT tile of
// out[t, row0 + r] = sum_i W[r, i] x[t, i]. Each K step dequantizes TR rows x 32 values of W
// and TT tokens x 32 values of x into workgroup memory (the weight tile is f16 on the f16 path),
// then every thread accumulates its TM x TN register tile in f32.

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

var<workgroup> wt: array<array<WT_W, 33>, TR>;
var<workgroup> xt: array<array<f32, 33>, TT>;

// Tile row being filled by this thread's visit_W.
var<private> g_row: u32;

fn take_W(i: u32, v: f32) -> f32 {
    wt[g_row][i] = WT_W(v);
    return 0.0;
}


@compute @workgroup_size(WG)
fn matmul(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    g_k = p.k;
    let r0 = (wid.x + wid.y * 65535u) * TR;
    let t0 = wid.z * TT;
    let tg = lid % TG;
    let rg = lid / TG;
    var acc: array<f32, TM * TN>;
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
        for (var i = 0u; i < 32u; i++) {
            var xs: array<f32, TN>;
            for (var n = 0u; n < TN; n++) {
                xs[n] = xt[tg + TG * n][i];
            }
            for (var m = 0u; m < TM; m++) {
                let wv = f32(wt[rg + RS * m][i]);
                for (var n = 0u; n < TN; n++) {
                    acc[m * TN + n] += wv * xs[n];
                }
            }
        }
        workgroupBarrier();
    }
    for (var m = 0u; m < TM; m++) {
        let row = r0 + rg + RS * m;
        for (var n = 0u; n < TN; n++) {
            let t = t0 + tg + TG * n;
            if (row < p.rows && t < p.n_tok) {
                Y[t * p.out_cols + p.row0 + row] = acc[m * TN + n];
            }
        }
    }
}
