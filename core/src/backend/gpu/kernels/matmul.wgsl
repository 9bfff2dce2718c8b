// Tiled matrix-matrix product for prefill: a workgroup computes a TR x TT tile of
// out[t, row0 + r] = sum_i W[r, i] x[t, i]. Each K step dequantizes TR rows x 32 values of W
// and TT tokens x 32 values of x into workgroup memory (the weight tile is f16 on the f16 path),
// then every thread accumulates its TM x TN register tile in f32 (the shared `tile` section).
// Params and the W / X / Y bindings: the `weight_io` and `product` sections of common.wgsl.

var<workgroup> wt: array<array<WT_W, 33>, TR>;
// First token of this workgroup's tile.
var<private> g_t0: u32;

fn take_W(i: u32, v: f32) -> f32 {
    wt[g_row][i] = WT_W(v);
    return 0.0;
}

fn tile_zero(r: u32) {
    for (var i = 0u; i < 32u; i++) {
        wt[r][i] = WT_W(0.0);
    }
}

fn tile_visit(row: u32, j: u32) {
    visit_W(row * p.row_bytes, j, 0u);
}

fn tile_x(c: u32, i: u32) -> f32 {
    let t = g_t0 + c;
    if (t < p.n_tok && i < p.k) {
        return X[t * p.x_cols + i];
    }
    return 0.0;
}

@compute @workgroup_size(WG)
fn matmul(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    g_k = p.k;
    let r0 = (wid.x + wid.y * 65535u) * TR;
    let t0 = wid.z * TT;
    g_t0 = t0;
    let n_rows = p.rows;
    let k_in = p.k;
    let n_groups = p.n_groups;
    let tg = lid % TG;
    let rg = lid / TG;
    var acc: array<f32, TM * TN>;
    //% tile_loop wt:acc
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
