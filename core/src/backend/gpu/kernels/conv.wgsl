// Gated short conv with its rolling state, one thread per channel c:
// u_t = B_t * X_t; y_t = C_t * sum_i kernel[c, i] * u_{t - L + 1 + i}; the state keeps the last
// L - 1 values of u (rows = time, oldest first) and is advanced in place.

struct Params {
    d: u32,
    l: u32,
    n: u32,
    bcx_cols: u32,
    out_cols: u32,
    pad0: u32,
    pad1: u32,
    pad2: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> BCX: array<f32>;
@group(0) @binding(2) var<storage, read> KER: array<f32>;
@group(0) @binding(3) var<storage, read_write> ST: array<f32>;
@group(0) @binding(4) var<storage, read_write> Y: array<f32>;

@compute @workgroup_size(WG)
fn short_conv(@builtin(global_invocation_id) gid: vec3<u32>) {
    let c = gid.x;
    if (c >= p.d) {
        return;
    }
    let hist = p.l - 1u;
    var win: array<f32, 16>;
    for (var j = 0u; j < hist; j++) {
        win[j] = ST[j * p.d + c];
    }
    for (var t = 0u; t < p.n; t++) {
        let row = t * p.bcx_cols;
        win[hist] = BCX[row + c] * BCX[row + 2u * p.d + c];
        var v = 0.0;
        for (var i = 0u; i < p.l; i++) {
            v += KER[c * p.l + i] * win[i];
        }
        Y[t * p.out_cols + c] = BCX[row + p.d + c] * v;
        for (var j = 0u; j < hist; j++) {
            win[j] = win[j + 1u];
        }
    }
    for (var j = 0u; j < hist; j++) {
        ST[j * p.d + c] = win[j];
    }
}
