// Matrix-vector / per-token matrix products with dequantization fused in (decode path, and the
// fallback for small batches): `tpr` threads per output row (a power of two sized to the row's
// 32-element groups, so short rows such as K = 256 do not leave most lanes idle) and WG / tpr
// rows per workgroup; each thread decodes groups of its row and dots them with the activations;
// f32 accumulation, one reduction per row.
// out[t, row0 + r] = sum_i W[r, i] * x[t, i] for the rows of one weight chunk. Params and the
// W / X / Y bindings: the `weight_io` and `product` sections of common.wgsl.

fn take_W(i: u32, v: f32) -> f32 {
    return mul_W(v, X[i]);
}

@compute @workgroup_size(WG)
fn matvec(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32 SG_ARGS) {
    SG_INIT
    g_k = p.k;
    let tpr = p.tpr;
    let sub = lid / tpr;
    let tl = lid % tpr;
    let r = (wid.x + wid.y * 65535u) * (WG / tpr) + sub;
    let t = wid.z;
    let valid = r < p.rows;
    var acc = 0.0;
    if (valid) {
        let base = r * p.row_bytes;
        let xo = t * p.x_cols;
        for (var j = tl; j < p.n_groups; j += tpr) {
            acc += visit_W(base, j, xo + 32u * j);
        }
    }
    let s = seg_sum(acc, lid, tpr);
    if (valid && tl == 0u) {
        Y[t * p.out_cols + p.row0 + r] = s;
    }
}
