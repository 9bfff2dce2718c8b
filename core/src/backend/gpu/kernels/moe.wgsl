// LFM2-MoE on the GPU: the router (sigmoid, bias for selection only, top-k, renormalize) writes
// expert ids and weights; the expert kernels read the ids themselves, so only the routed
// experts' weights are streamed and the CPU never sees the routing.

struct Params {
    // route: n_exp, k, n, logit_cols, w_cols, has_bias
    // gate_up: k_in, n_groups, row_bytes_a, row_bytes_b, n_ff, e0, e1, ea0, eb0, k_used, x_cols, h_cols,
    //          tpr
    // down: k_in, n_groups, row_bytes_a, -, d, e0, e1, ea0, -, k_used, h_cols, out_cols, w_cols, accumulate,
    //       tpr
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
// slots whose expert lies in [e0, e1) (the experts held by this pair of weight chunks). Like the
// mat-vec: tpr lanes per row, WG / tpr rows per workgroup.
@compute @workgroup_size(WG)
fn gate_up(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32 SG_ARGS) {
    SG_INIT
    g_k = p.a0;
    let tpr = p.a12;
    let tl = lid % tpr;
    let f = (wid.x + wid.y * 65535u) * (WG / tpr) + lid / tpr;
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
        for (var j = tl; j < p.a1; j += tpr) {
            sg += visit_A(ba, j, xo + 32u * j);
            su += visit_B(bb, j, xo + 32u * j);
        }
    }
    let g = seg_sum(sg, lid, tpr);
    let u = seg_sum(su, lid, tpr);
    if (live && tl == 0u) {
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
    let tpr = p.a14;
    let tl = lid % tpr;
    let o = (wid.x + wid.y * 65535u) * (WG / tpr) + lid / tpr;
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
                for (var j = tl; j < p.a1; j += tpr) {
                    part += visit_A(ba, j, ho + 32u * j);
                }
                acc += RW[t * p.a12 + s] * part;
            }
        }
    }
    let y = seg_sum(acc, lid, tpr);
    if (o < d && tl == 0u) {
        let yo = t * p.a11 + o;
        if (p.a13 != 0u) {
            Y[yo] += y;
        } else {
            Y[yo] = y;
        }
    }
}

//@ group
@group(0) @binding(1) var<storage, read_write> IDS: array<u32>;

// Grouped prefill, step 1: for expert e (one thread each), the slots routed to it, in order:
// IDS[lists + e * (cap + 1)] = count, then the slot indices. Slots are t * k + s.
// a0: slots (n * k), a1: experts, a2: list base (rows * k), a3: cap (rows).
@compute @workgroup_size(WG)
fn moe_group(@builtin(global_invocation_id) gid: vec3<u32>) {
    let e = gid.x;
    if (e >= p.a1) {
        return;
    }
    let base = p.a2 + e * (p.a3 + 1u);
    var count = 0u;
    for (var slot = 0u; slot < p.a0; slot++) {
        if (IDS[slot] == e) {
            count++;
            IDS[base + count] = slot;
        }
    }
    IDS[base] = count;
}

//@ gate_up_tiled
@group(0) @binding(1) var<storage, read> A: array<u32>;
@group(0) @binding(2) var<storage, read> B: array<u32>;
@group(0) @binding(3) var<storage, read> X: array<f32>;
@group(0) @binding(4) var<storage, read> IDS: array<u32>;
@group(0) @binding(5) var<storage, read_write> H: array<f32>;

// Grouped prefill, step 2: a workgroup computes TR hidden rows of one expert for up to TT of its
// slots (a tile of its list), so each weight tile is decoded once for all of them:
// H[slot, f] = silu(gate_e[f] . x_t) * (up_e[f] . x_t).
// a0: k_in, a1: n_groups, a2/a3: row bytes of A/B, a4: n_ff, a5: e0, a6: tiles per expert,
// a7/a8: first expert of the A/B chunks, a9: k_used, a10: x_cols, a11: h_cols, a12: list base,
// a13: cap.
var<workgroup> wa: array<array<WT_A, 33>, TR>;
var<workgroup> wb: array<array<WT_B, 33>, TR>;
var<workgroup> xt: array<array<f32, 33>, TT>;
var<workgroup> tile_count: u32;
var<private> g_row: u32;

fn take_A(i: u32, v: f32) -> f32 {
    wa[g_row][i] = WT_A(v);
    return 0.0;
}
fn take_B(i: u32, v: f32) -> f32 {
    wb[g_row][i] = WT_B(v);
    return 0.0;
}

@compute @workgroup_size(WG)
fn gate_up_tiled(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    g_k = p.a0;
    let n_ff = p.a4;
    let e = p.a5 + wid.z / p.a6;
    let c0 = (wid.z % p.a6) * TT;
    let list = p.a12 + e * (p.a13 + 1u);
    if (lid == 0u) {
        tile_count = min(IDS[list], c0 + TT) - min(IDS[list], c0);
    }
    let cnt = workgroupUniformLoad(&tile_count);
    if (cnt == 0u) {
        return;
    }
    let f0 = (wid.x + wid.y * 65535u) * TR;
    let tg = lid % TG;
    let rg = lid / TG;
    var ag: array<f32, TM * TN>;
    var au: array<f32, TM * TN>;
    for (var j = 0u; j < p.a1; j++) {
        for (var r = lid; r < TR; r += WG) {
            let f = f0 + r;
            if (f >= n_ff || 32u * j + 32u > p.a0) {
                for (var i = 0u; i < 32u; i++) {
                    wa[r][i] = WT_A(0.0);
                    wb[r][i] = WT_B(0.0);
                }
            }
            if (f < n_ff) {
                g_row = r;
                visit_A(((e - p.a7) * n_ff + f) * p.a2, j, 0u);
                visit_B(((e - p.a8) * n_ff + f) * p.a3, j, 0u);
            }
        }
        for (var q = lid; q < TT * 32u; q += WG) {
            let c = q / 32u;
            let i = 32u * j + q % 32u;
            var v = 0.0;
            if (c < cnt && i < p.a0) {
                let t = IDS[list + 1u + c0 + c] / p.a9;
                v = X[t * p.a10 + i];
            }
            xt[c][q % 32u] = v;
        }
        workgroupBarrier();
        for (var i = 0u; i < 32u; i++) {
            var xs: array<f32, TN>;
            for (var n = 0u; n < TN; n++) {
                xs[n] = xt[tg + TG * n][i];
            }
            for (var m = 0u; m < TM; m++) {
                let g = f32(wa[rg + RS * m][i]);
                let u = f32(wb[rg + RS * m][i]);
                for (var n = 0u; n < TN; n++) {
                    ag[m * TN + n] += g * xs[n];
                    au[m * TN + n] += u * xs[n];
                }
            }
        }
        workgroupBarrier();
    }
    for (var m = 0u; m < TM; m++) {
        let f = f0 + rg + RS * m;
        for (var n = 0u; n < TN; n++) {
            let c = tg + TG * n;
            if (f < n_ff && c < cnt) {
                let slot = IDS[list + 1u + c0 + c];
                H[slot * p.a11 + f] = silu(ag[m * TN + n]) * au[m * TN + n];
            }
        }
    }
}

//@ down_tiled
@group(0) @binding(1) var<storage, read> A: array<u32>;
@group(0) @binding(2) var<storage, read> IDS: array<u32>;
@group(0) @binding(3) var<storage, read_write> H: array<f32>;

// Grouped prefill, step 3: TR output rows of one expert for up to TT of its slots; each slot's
// result goes after its hidden activations: H[slot, n_ff + o] = down_e[o] . H[slot, :n_ff].
// a0: k_in (n_ff), a1: n_groups, a2: row bytes, a4: d, a5: e0, a6: tiles per expert,
// a7: first expert of the chunk, a11: h_cols, a12: list base, a13: cap.
var<workgroup> wa: array<array<WT_A, 33>, TR>;
var<workgroup> xt: array<array<f32, 33>, TT>;
var<workgroup> tile_count: u32;
var<private> g_row: u32;

fn take_A(i: u32, v: f32) -> f32 {
    wa[g_row][i] = WT_A(v);
    return 0.0;
}

@compute @workgroup_size(WG)
fn down_tiled(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    g_k = p.a0;
    let d = p.a4;
    let e = p.a5 + wid.z / p.a6;
    let c0 = (wid.z % p.a6) * TT;
    let list = p.a12 + e * (p.a13 + 1u);
    if (lid == 0u) {
        tile_count = min(IDS[list], c0 + TT) - min(IDS[list], c0);
    }
    let cnt = workgroupUniformLoad(&tile_count);
    if (cnt == 0u) {
        return;
    }
    let o0 = (wid.x + wid.y * 65535u) * TR;
    let tg = lid % TG;
    let rg = lid / TG;
    var acc: array<f32, TM * TN>;
    for (var j = 0u; j < p.a1; j++) {
        for (var r = lid; r < TR; r += WG) {
            let o = o0 + r;
            if (o >= d || 32u * j + 32u > p.a0) {
                for (var i = 0u; i < 32u; i++) {
                    wa[r][i] = WT_A(0.0);
                }
            }
            if (o < d) {
                g_row = r;
                visit_A(((e - p.a7) * d + o) * p.a2, j, 0u);
            }
        }
        for (var q = lid; q < TT * 32u; q += WG) {
            let c = q / 32u;
            let i = 32u * j + q % 32u;
            var v = 0.0;
            if (c < cnt && i < p.a0) {
                v = H[IDS[list + 1u + c0 + c] * p.a11 + i];
            }
            xt[c][q % 32u] = v;
        }
        workgroupBarrier();
        for (var i = 0u; i < 32u; i++) {
            var xs: array<f32, TN>;
            for (var n = 0u; n < TN; n++) {
                xs[n] = xt[tg + TG * n][i];
            }
            for (var m = 0u; m < TM; m++) {
                let w = f32(wa[rg + RS * m][i]);
                for (var n = 0u; n < TN; n++) {
                    acc[m * TN + n] += w * xs[n];
                }
            }
        }
        workgroupBarrier();
    }
    for (var m = 0u; m < TM; m++) {
        let o = o0 + rg + RS * m;
        for (var n = 0u; n < TN; n++) {
            let c = tg + TG * n;
            if (o < d && c < cnt) {
                H[IDS[list + 1u + c0 + c] * p.a11 + p.a0 + o] = acc[m * TN + n];
            }
        }
    }
}

//@ combine
@group(0) @binding(1) var<storage, read> H: array<f32>;
@group(0) @binding(2) var<storage, read> RW: array<f32>;
@group(0) @binding(3) var<storage, read_write> Y: array<f32>;

// Grouped prefill, step 4: Y[t, o] = sum_s w[t, s] * H[t * k + s, n_ff + o], one thread per
// output. a0: n_ff, a4: d, a9: k_used, a11: h_cols, a12: w_cols, a13: out_cols, a14: n.
@compute @workgroup_size(WG)
fn moe_combine(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let i = (wid.x + wid.y * 65535u) * WG + lid;
    let t = i / p.a4;
    let o = i % p.a4;
    if (t >= p.a14) {
        return;
    }
    var y = 0.0;
    for (var s = 0u; s < p.a9; s++) {
        y += RW[t * p.a12 + s] * H[(t * p.a9 + s) * p.a11 + p.a0 + o];
    }
    Y[t * p.a13 + o] = y;
}
