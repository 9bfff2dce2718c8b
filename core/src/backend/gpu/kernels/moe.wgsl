// LFM2-MoE on the GPU: the router (sigmoid, bias for selection only, top-k, renormalize) writes
// expert ids and weights; the expert kernels read the ids themselves, so only the routed
// experts' weights are streamed and the CPU never sees the routing.
// Each kernel's section declares its `Params` (mirrored by the host's structs in ops/moe.rs), the
// two gate/up kernels share theirs (`gate_up_params`).

@group(0) @binding(0) var<uniform> p: Params;

//@ route
struct Params {
    n_exp: u32,
    k: u32,
    n: u32,
    logit_cols: u32,
    w_cols: u32,
    has_bias: u32,
}

@group(0) @binding(1) var<storage, read> LOG: array<f32>;
@group(0) @binding(2) var<storage, read> BIAS: array<f32>;
@group(0) @binding(3) var<storage, read_write> IDS: array<u32>;
@group(0) @binding(4) var<storage, read_write> RW: array<f32>;

// One thread per token. Ties go to the lower expert index (like the CPU's stable sort).
@compute @workgroup_size(WG)
fn route(@builtin(global_invocation_id) gid: vec3<u32>) {
    let n_exp = p.n_exp;
    let k = p.k;
    let t = gid.x;
    if (t >= p.n) {
        return;
    }
    let lo = t * p.logit_cols;
    var sel: array<u32, MAX_K>;
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
            if (p.has_bias != 0u) {
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
        RW[t * p.w_cols + s] = sigmoid(LOG[lo + sel[s]]) / (sum + 1e-6);
    }
}

//@ gate_up_params
// Params and bindings of both expert gate/up kernels (spliced in front of `gate_up` and
// `gate_up_tiled`): the chunks hold experts from `ea0` (gate) and `eb0` (up). The decode kernel
// computes the slots of experts [e0, e1) with `tpr` lanes per hidden row; the grouped prefill
// kernel `tiles` tiles of TT slots per expert from e0, its lists of `cap + 1` words from word
// `lists`.
struct Params {
    k_in: u32,
    n_groups: u32,
    row_bytes_a: u32,
    row_bytes_b: u32,
    n_ff: u32,
    e0: u32,
    e1: u32,
    ea0: u32,
    eb0: u32,
    k_used: u32,
    x_cols: u32,
    h_cols: u32,
    tpr: u32,
    tiles: u32,
    lists: u32,
    cap: u32,
}

@group(0) @binding(1) var<storage, read> A: array<u32>;
@group(0) @binding(2) var<storage, read> B: array<u32>;
@group(0) @binding(3) var<storage, read> X: array<f32>;
@group(0) @binding(4) var<storage, read> IDS: array<u32>;
@group(0) @binding(5) var<storage, read_write> H: array<f32>;

//@ gate_up
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
    g_k = p.k_in;
    let tpr = p.tpr;
    let tl = lid % tpr;
    let f = (wid.x + wid.y * 65535u) * (WG / tpr) + lid / tpr;
    let slot = wid.z;
    let n_ff = p.n_ff;
    let e = IDS[slot];
    let live = f < n_ff && e >= p.e0 && e < p.e1;
    var sg = 0.0;
    var su = 0.0;
    if (live) {
        let ba = ((e - p.ea0) * n_ff + f) * p.row_bytes_a;
        let bb = ((e - p.eb0) * n_ff + f) * p.row_bytes_b;
        let xo = (slot / p.k_used) * p.x_cols;
        for (var j = tl; j < p.n_groups; j += tpr) {
            sg += visit_A(ba, j, xo + 32u * j);
            su += visit_B(bb, j, xo + 32u * j);
        }
    }
    let g = seg_sum(sg, lid, tpr);
    let u = seg_sum(su, lid, tpr);
    if (live && tl == 0u) {
        H[slot * p.h_cols + f] = silu(g) * u;
    }
}

//@ down_params
// Params of both expert down kernels (spliced in front of `down` and `down_tiled`): the chunk
// holds experts from `ea0`. The decode kernel computes the slots of experts [e0, e1) with `tpr`
// lanes per output row, later chunks `accumulate`; the grouped prefill kernel `tiles` tiles of
// TT slots per expert from e0, its lists of `cap + 1` words from word `lists`.
struct Params {
    k_in: u32,
    n_groups: u32,
    row_bytes: u32,
    d: u32,
    e0: u32,
    e1: u32,
    ea0: u32,
    k_used: u32,
    h_cols: u32,
    out_cols: u32,
    w_cols: u32,
    accumulate: u32,
    tpr: u32,
    tiles: u32,
    lists: u32,
    cap: u32,
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
    g_k = p.k_in;
    let tpr = p.tpr;
    let tl = lid % tpr;
    let o = (wid.x + wid.y * 65535u) * (WG / tpr) + lid / tpr;
    let t = wid.z;
    let d = p.d;
    let k = p.k_used;
    var acc = 0.0;
    if (o < d) {
        for (var s = 0u; s < k; s++) {
            let e = IDS[t * k + s];
            if (e >= p.e0 && e < p.e1) {
                let ba = ((e - p.ea0) * d + o) * p.row_bytes;
                let ho = (t * k + s) * p.h_cols;
                var part = 0.0;
                for (var j = tl; j < p.n_groups; j += tpr) {
                    part += visit_A(ba, j, ho + 32u * j);
                }
                acc += RW[t * p.w_cols + s] * part;
            }
        }
    }
    let y = seg_sum(acc, lid, tpr);
    if (o < d && tl == 0u) {
        let yo = t * p.out_cols + o;
        if (p.accumulate != 0u) {
            Y[yo] += y;
        } else {
            Y[yo] = y;
        }
    }
}

//@ group
struct Params {
    slots: u32,
    n_expert: u32,
    lists: u32,
    cap: u32,
}

@group(0) @binding(1) var<storage, read_write> IDS: array<u32>;

// Grouped prefill, step 1: for expert e (one thread each), the slots routed to it, in order:
// IDS[lists + e * (cap + 1)] = count, then the slot indices. Slots are t * k + s.
@compute @workgroup_size(WG)
fn moe_group(@builtin(global_invocation_id) gid: vec3<u32>) {
    let e = gid.x;
    if (e >= p.n_expert) {
        return;
    }
    let base = p.lists + e * (p.cap + 1u);
    var count = 0u;
    for (var slot = 0u; slot < p.slots; slot++) {
        if (IDS[slot] == e) {
            count++;
            IDS[base + count] = slot;
        }
    }
    IDS[base] = count;
}

//@ expert_tile
// Shared by both grouped prefill kernels: workgroup z takes tile z % tiles (TT slots) of the
// slot list of expert e0 + z / tiles.
var<workgroup> tile_count: u32;
// This workgroup's expert, the word before its first slot, and its slot count.
var<private> g_e: u32;
var<private> g_slots: u32;
var<private> g_cnt: u32;

// Sets g_e and g_slots for workgroup z; thread 0 stores the tile's slot count in tile_count,
// which the caller reads with workgroupUniformLoad (in uniform control flow) into g_cnt.
fn tile_start(z: u32, lid: u32) {
    let e = p.e0 + z / p.tiles;
    let c0 = (z % p.tiles) * TT;
    let list = p.lists + e * (p.cap + 1u);
    if (lid == 0u) {
        tile_count = min(IDS[list], c0 + TT) - min(IDS[list], c0);
    }
    g_e = e;
    g_slots = list + 1u + c0;
}

//@ gate_up_tiled
// Grouped prefill, step 2: a workgroup computes TR hidden rows of one expert for up to TT of its
// slots (a tile of its list), so each weight tile is decoded once for all of them:
// H[slot, f] = silu(gate_e[f] . x_t) * (up_e[f] . x_t).
var<workgroup> wa: array<array<WT_A, 33>, TR>;
var<workgroup> wb: array<array<WT_B, 33>, TR>;

fn take_A(i: u32, v: f32) -> f32 {
    wa[g_row][i] = WT_A(v);
    return 0.0;
}
fn take_B(i: u32, v: f32) -> f32 {
    wb[g_row][i] = WT_B(v);
    return 0.0;
}

fn tile_zero(r: u32) {
    for (var i = 0u; i < 32u; i++) {
        wa[r][i] = WT_A(0.0);
        wb[r][i] = WT_B(0.0);
    }
}

fn tile_visit(f: u32, j: u32) {
    visit_A(((g_e - p.ea0) * p.n_ff + f) * p.row_bytes_a, j, 0u);
    visit_B(((g_e - p.eb0) * p.n_ff + f) * p.row_bytes_b, j, 0u);
}

fn tile_x(c: u32, i: u32) -> f32 {
    if (c < g_cnt && i < p.k_in) {
        let t = IDS[g_slots + c] / p.k_used;
        return X[t * p.x_cols + i];
    }
    return 0.0;
}

@compute @workgroup_size(WG)
fn gate_up_tiled(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    g_k = p.k_in;
    let n_ff = p.n_ff;
    tile_start(wid.z, lid);
    let cnt = workgroupUniformLoad(&tile_count);
    if (cnt == 0u) {
        return;
    }
    g_cnt = cnt;
    let r0 = (wid.x + wid.y * 65535u) * TR;
    let n_rows = n_ff;
    let k_in = p.k_in;
    let n_groups = p.n_groups;
    let tg = lid % TG;
    let rg = lid / TG;
    var ag: array<f32, TM * TN>;
    var au: array<f32, TM * TN>;
    //% tile_loop wa:ag wb:au
    for (var m = 0u; m < TM; m++) {
        let f = r0 + rg + RS * m;
        for (var n = 0u; n < TN; n++) {
            let c = tg + TG * n;
            if (f < n_ff && c < cnt) {
                let slot = IDS[g_slots + c];
                H[slot * p.h_cols + f] = silu(ag[m * TN + n]) * au[m * TN + n];
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
var<workgroup> wa: array<array<WT_A, 33>, TR>;

fn take_A(i: u32, v: f32) -> f32 {
    wa[g_row][i] = WT_A(v);
    return 0.0;
}

fn tile_zero(r: u32) {
    for (var i = 0u; i < 32u; i++) {
        wa[r][i] = WT_A(0.0);
    }
}

fn tile_visit(o: u32, j: u32) {
    visit_A(((g_e - p.ea0) * p.d + o) * p.row_bytes, j, 0u);
}

fn tile_x(c: u32, i: u32) -> f32 {
    if (c < g_cnt && i < p.k_in) {
        return H[IDS[g_slots + c] * p.h_cols + i];
    }
    return 0.0;
}

@compute @workgroup_size(WG)
fn down_tiled(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    g_k = p.k_in;
    let d = p.d;
    tile_start(wid.z, lid);
    let cnt = workgroupUniformLoad(&tile_count);
    if (cnt == 0u) {
        return;
    }
    g_cnt = cnt;
    let r0 = (wid.x + wid.y * 65535u) * TR;
    let n_rows = d;
    let k_in = p.k_in;
    let n_groups = p.n_groups;
    let tg = lid % TG;
    let rg = lid / TG;
    var acc: array<f32, TM * TN>;
    //% tile_loop wa:acc
    for (var m = 0u; m < TM; m++) {
        let o = r0 + rg + RS * m;
        for (var n = 0u; n < TN; n++) {
            let c = tg + TG * n;
            if (o < d && c < cnt) {
                H[IDS[g_slots + c] * p.h_cols + p.k_in + o] = acc[m * TN + n];
            }
        }
    }
}

//@ combine
struct Params {
    n_ff: u32,
    d: u32,
    k_used: u32,
    h_cols: u32,
    w_cols: u32,
    out_cols: u32,
    n: u32,
}

@group(0) @binding(1) var<storage, read> H: array<f32>;
@group(0) @binding(2) var<storage, read> RW: array<f32>;
@group(0) @binding(3) var<storage, read_write> Y: array<f32>;

// Grouped prefill, step 4: Y[t, o] = sum_s w[t, s] * H[t * k + s, n_ff + o], one thread per
@compute @workgroup_size(WG)
fn moe_combine(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let i = (wid.x + wid.y * 65535u) * WG + lid;
    let t = i / p.d;
    let o = i % p.d;
    if (t >= p.n) {
        return;
    }
    var y = 0.0;
    for (var s = 0u; s < p.k_used; s++) {
        y += RW[t * p.w_cols + s] * H[(t * p.k_used + s) * p.h_cols + p.n_ff + o];
    }
    Y[t * p.out_cols + o] = y;
}
