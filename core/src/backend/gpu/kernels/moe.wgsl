// LFM2-MoE on the GPU: the router (sigmoid, bias for selection only, top-k, renormalize) writes
// expert ids and weights; the expert kernels read the ids themselves, so only the routed
// experts' weights are streamed and the CPU never sees the routing.

struct Params {
    // route: n_exp, k, n, logit_cols, w_cols, has_bias
    // gate_up: k_in, n_groups, row_bytes_a, row_bytes_b, n_ff, e0, e1, ea0, eb0, k_used, x_cols, h_cols
    // down: k_in, n_groups, row_bytes_a, -, d, e0, e1, ea0, -, k_used, h_cols, out_cols, w_cols, accumulate
    a0: u32,
    a1: u32,
    a2: u32,
    a3: u32,
    a4: u32,
    a5: u32,
    a6: u32,
    a7: u32,
    a8: u32,
    a9: u32,
    a10: u32,
    a11: u32,
    a12: u32,
    a13: u32,
    a14: u32,
    a15: u32,
}

@group(0) @binding(0) var<uniform> p: Params;

//@ route
@group(0) @binding(1) var<storage, read> LOG: array<f32>;
@group(0) @binding(2) var<storage, read> BIAS: array<f32>;
@group(0) @binding(3) var<storage, read_write> IDS: array<u32>;
@group(0) @binding(4) var<storage, read_write> RW: array<f32>;

// One thread per token. Ties go to the lower expert index (like the CPU's stable sort).
@compute @workgroup_size(WG)
fn route(@builtin(global_invocation_id) gid: vec3<u32>) {
    let n_exp = p.a0;
    let k = p.a1;
    let t = gid.x;
    if (t >= p.a2) {
        return;
    }
    let lo = t * p.a3;
    var sel: array<u32, 32>;
    var sum = 0.0;
    for (var s = 0u; s < k; s++) {
        var best = -3.0e38;
        var be = 0u;
        for (var e = 0u; e < n_exp; e++) {
            var taken = false;
            for (var q = 0u; q < s; q++) {
                taken = taken || sel[q] == e;
            }
            var sc = sigmoid(LOG[lo + e]);
            if (p.a5 != 0u) {
                sc += BIAS[e];
            }
            if (!taken && sc > best) {
                best = sc;
                be = e;
            }
        }
        sel[s] = be;
        sum += sigmoid(LOG[lo + be]);
    }
    for (var s = 0u; s < k; s++) {
        IDS[t * k + s] = sel[s];
        RW[t * p.a4 + s] = sigmoid(LOG[lo + sel[s]]) / (sum + 1e-6);
    }
}

//@ gate_up
@group(0) @binding(1) var<storage, read> A: array<u32>;
@group(0) @binding(2) var<storage, read> B: array<u32>;
@group(0) @binding(3) var<storage, read> X: array<f32>;
@group(0) @binding(4) var<storage, read> IDS: array<u32>;
@group(0) @binding(5) var<storage, read_write> H: array<f32>;

fn take_A(i: u32, v: f32) -> f32 {
    return mul_A(v, X[i]);
}
fn take_B(i: u32, v: f32) -> f32 {
    return mul_B(v, X[i]);
}

// H[slot, f] = silu(gate_e[f] . x_t) * (up_e[f] . x_t), e = ids[slot], t = slot / k, for the
// slots whose expert lies in [e0, e1) (the experts held by this pair of weight chunks).
@compute @workgroup_size(WG)
fn gate_up(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32 SG_ARGS) {
    SG_INIT
    g_k = p.a0;
    let f = wid.x + wid.y * 65535u;
    let slot = wid.z;
    let n_ff = p.a4;
    let e = IDS[slot];
    let live = f < n_ff && e >= p.a5 && e < p.a6;
    var sg = 0.0;
    var su = 0.0;
    if (live) {
        let ba = ((e - p.a7) * n_ff + f) * p.a2;
        let bb = ((e - p.a8) * n_ff + f) * p.a3;
        let xo = (slot / p.a9) * p.a10;
        for (var j = lid; j < p.a1; j += WG) {
            sg += visit_A(ba, j, xo + 32u * j);
            su += visit_B(bb, j, xo + 32u * j);
        }
    }
    let g = wg_sum(sg, lid);
    let u = wg_sum(su, lid);
    if (live && lid == 0u) {
        H[slot * p.a11 + f] = silu(g) * u;
    }
}

//@ down
@group(0) @binding(1) var<storage, read> A: array<u32>;
@group(0) @binding(2) var<storage, read> H: array<f32>;
@group(0) @binding(3) var<storage, read> IDS: array<u32>;
@group(0) @binding(4) var<storage, read> RW: array<f32>;
@group(0) @binding(5) var<storage, read_write> Y: array<f32>;

fn take_A(i: u32, v: f32) -> f32 {
    return mul_A(v, H[i]);
}

// Y[t, o] (+)= sum_s w[t, s] * (down_e[o] . H[t * k + s]) over the token's slots whose expert
// lies in this chunk; the first chunk overwrites, later chunks accumulate.
@compute @workgroup_size(WG)
fn down(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32 SG_ARGS) {
    SG_INIT
    g_k = p.a0;
    let o = wid.x + wid.y * 65535u;
    let t = wid.z;
    let d = p.a4;
    let k = p.a9;
    var acc = 0.0;
    if (o < d) {
        for (var s = 0u; s < k; s++) {
            let e = IDS[t * k + s];
            if (e >= p.a5 && e < p.a6) {
                let ba = ((e - p.a7) * d + o) * p.a2;
                let ho = (t * k + s) * p.a10;
                var part = 0.0;
                for (var j = lid; j < p.a1; j += WG) {
                    part += visit_A(ba, j, ho + 32u * j);
                }
                acc += RW[t * p.a12 + s] * part;
            }
        }
    }
    let y = wg_sum(acc, lid);
    if (o < d && lid == 0u) {
        let yo = t * p.a11 + o;
        if (p.a13 != 0u) {
            Y[yo] += y;
        } else {
            Y[yo] = y;
        }
    }
}
