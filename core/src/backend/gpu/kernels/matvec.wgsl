// Matrix-vector / per-token matrix products with dequantization fused in (decode path, and the
// fallback for small batches): one workgroup per (output row, token); each thread decodes
// 32-element groups of the row and dots them with the activations; f32 accumulation.
// out[t, row0 + r] = sum_i W[r, i] * x[t, i] for the rows of one weight chunk.

struct Params {
    k: u32,
    n_groups: u32,
    row_bytes: u32,
    rows: u32,
    row0: u32,
    out_cols: u32,
    x_cols: u32,
    pad: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> W: array<u32>;
@group(0) @binding(2) var<storage, read> X: array<f32>;
@group(0) @binding(3) var<storage, read_write> Y: array<f32>;

@compute @workgroup_size(WG)
fn matvec(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32 SG_ARGS) {
    SG_INIT
    g_k = p.k;
    let r = wid.x + wid.y * 65535u;
    let t = wid.z;
    let valid = r < p.rows;
    var acc = 0.0;
    if (valid) {
        let base = r * p.row_bytes;
        let xo = t * p.x_cols;
        for (var j = lid; j < p.n_groups; j += WG) {
            let w = deq_W(base, j);
            let n = min(32u, p.k - 32u * j);
            for (var i = 0u; i < n; i++) {
                acc += mul_W(w[i], X[xo + 32u * j + i]);
            }
        }
    }
    let s = wg_sum(acc, lid);
    if (valid && lid == 0u) {
        Y[t * p.out_cols + p.row0 + r] = s;
    }
}
