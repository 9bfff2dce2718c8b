// Embedding-row lookup from a (possibly quantized, possibly row-split) table:
// out[t] = dequant(table[tokens[t]]) for the tokens whose id falls in this chunk.

struct Params {
    k: u32,
    n_groups: u32,
    row_bytes: u32,
    r0: u32,
    rows: u32,
    out_cols: u32,
    tok_off: u32,
    n_tok: u32,
}

// p, W and Y: the `weight_io` section of common.wgsl.
@group(0) @binding(2) var<storage, read> TOK: array<u32>;

fn take_W(i: u32, v: f32) -> f32 {
    Y[i] = v;
    return 0.0;
}

@compute @workgroup_size(WG)
fn embed(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    g_k = p.k;
    let j = wid.x * WG + lid;
    let t = wid.y;
    let tok = TOK[p.tok_off + t];
    if (j >= p.n_groups || tok < p.r0 || tok - p.r0 >= p.rows) {
        return;
    }
    visit_W((tok - p.r0) * p.row_bytes, j, t * p.out_cols + 32u * j);
}
