// RMSNorm of rows, and the fused per-head RMSNorm + NeoX RoPE of attention q (in place) and k
// (written straight into the KV cache, with v copied beside it).

struct Params {
    cols: u32,
    x_cols: u32,
    y_cols: u32,
    eps: f32,
    // norm + rope only
    heads: u32,
    pos0: u32,
    rope_base: f32,
    // k_norm_rope_store: first token of this dispatch, the cache row it goes to, v's row width
    t0: u32,
    y_row0: u32,
    v_cols: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(2) var<storage, read> NW: array<f32>;

// One head: its input (hv) and its normalized, rotated values (ov).
var<workgroup> hv: array<f32, MAX_HD>;
var<workgroup> ov: array<f32, MAX_HD>;

// Normalizes the head in `hv` (`ss`: each thread's sum of squares) and rotates it to `pos` into
// `ov`; ends with a barrier so every thread may read all of `ov`.
fn norm_rope(lid: u32, ss: f32, pos: f32) {
    let hd = p.cols;
    let tot = wg_sum(ss, lid);
    let scale = 1.0 / sqrt(tot / f32(hd) + p.eps);
    let half = hd / 2u;
    for (var i = lid; i < half; i += WG) {
        let x0 = hv[i] * scale * NW[i];
        let x1 = hv[i + half] * scale * NW[i + half];
        let inv_freq = pow(p.rope_base, -2.0 * f32(i) / f32(hd));
        let a = pos * inv_freq;
        let c = cos(a);
        let s = sin(a);
        ov[i] = x0 * c - x1 * s;
        ov[i + half] = x0 * s + x1 * c;
    }
    workgroupBarrier();
}

//@ rows
@group(0) @binding(1) var<storage, read> X: array<f32>;
@group(0) @binding(3) var<storage, read_write> Y: array<f32>;

// y = x / sqrt(mean(x^2) + eps) * w, one workgroup per row.
@compute @workgroup_size(WG)
fn rms_norm(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32 SG_ARGS) {
    SG_INIT
    let xo = wid.x * p.x_cols;
    let yo = wid.x * p.y_cols;
    var ss = 0.0;
    for (var i = lid; i < p.cols; i += WG) {
        let v = X[xo + i];
        ss += v * v;
    }
    let tot = wg_sum(ss, lid);
    let scale = 1.0 / sqrt(tot / f32(p.cols) + p.eps);
    for (var i = lid; i < p.cols; i += WG) {
        Y[yo + i] = X[xo + i] * scale * NW[i];
    }
}

// In place on Y (rows of `heads` heads of `cols` = head_dim): per-head RMSNorm, then NeoX
// RoPE at position pos0 + token. One workgroup per (head, token). X is unused.
@compute @workgroup_size(WG)
fn qk_norm_rope(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32 SG_ARGS) {
    SG_INIT
    let o = wid.y * p.y_cols + wid.x * p.cols;
    var ss = 0.0;
    for (var i = lid; i < p.cols; i += WG) {
        let v = Y[o + i];
        hv[i] = v;
        ss += v * v;
    }
    norm_rope(lid, ss, f32(p.pos0 + wid.y));
    for (var i = lid; i < p.cols; i += WG) {
        Y[o + i] = ov[i];
    }
}

//@ store
@group(0) @binding(1) var<storage, read> X: array<f32>;
@group(0) @binding(3) var<storage, read_write> KC: array<KT>;
@group(0) @binding(4) var<storage, read> V: array<f32>;
@group(0) @binding(5) var<storage, read_write> VC: array<KT>;

// Token t0 + wid.y of X (k rows): per-head RMSNorm and RoPE written to cache row
// y_row0 + wid.y of KC, and the same head of V copied to VC. One workgroup per (head, token).
@compute @workgroup_size(WG)
fn k_norm_rope_store(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32 SG_ARGS) {
    SG_INIT
    let t = p.t0 + wid.y;
    let xo = t * p.x_cols + wid.x * p.cols;
    var ss = 0.0;
    for (var i = lid; i < p.cols; i += WG) {
        let v = X[xo + i];
        hv[i] = v;
        ss += v * v;
    }
    norm_rope(lid, ss, f32(p.pos0 + t));
    let yo = (p.y_row0 + wid.y) * p.y_cols + wid.x * p.cols;
    let vo = t * p.v_cols + wid.x * p.cols;
    for (var i = lid; i < p.cols; i += WG) {
        KC[yo + i] = KT(ov[i]);
        VC[yo + i] = KT(V[vo + i]);
    }
}
