// Causal GQA attention of new queries over the KV cache (elements KT: f16 or f32) with an online
// softmax, one workgroup per (head, token, sequence split). Each tile of WG cache positions:
// scores (one position per thread), running max / sum rescaling, then V accumulation with
// threads over head dims; f32 arithmetic throughout.
// A dispatch covers one cache segment (KC/VC hold positions kv_base..kv_end) and tokens
// t0 + wid.y. With n_split > 1 (long-context decode, or a cache in several segments) each split
// writes (m, l, acc[hd]) to PART at split0 + wid.z, and `attn_merge` combines them.

struct Params {
    n_head: u32,
    n_kv: u32,
    hd: u32,
    q_cols: u32,
    kv_w: u32,
    o_cols: u32,
    pos0: u32,
    scale: f32,
    chunk: u32,
    n_split: u32,
    t0: u32,
    kv_base: u32,
    kv_end: u32,
    split0: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> Q: array<f32>;
@group(0) @binding(2) var<storage, read> KC: array<KT>;
@group(0) @binding(3) var<storage, read> VC: array<KT>;
@group(0) @binding(4) var<storage, read_write> O: array<f32>;
@group(0) @binding(5) var<storage, read_write> PART: array<f32>;

const MAXC: u32 = 8u;
var<workgroup> qs: array<f32, MAX_HD>;
var<workgroup> ps: array<f32, WG>;

@compute @workgroup_size(WG)
fn attn(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32 SG_ARGS) {
    SG_INIT
    let h = wid.x;
    let t = p.t0 + wid.y;
    let hd = p.hd;
    let pos = p.pos0 + t;
    let g = h / (p.n_head / p.n_kv);
    let qo = t * p.q_cols + h * hd;
    for (var i = lid; i < hd; i += WG) {
        qs[i] = Q[qo + i];
    }
    workgroupBarrier();
    let start = p.kv_base + wid.z * p.chunk;
    let end = min(min(start + p.chunk, p.kv_end), pos + 1u);
    var m = -1e30;
    var l = 0.0;
    var acc: array<f32, MAXC>;
    for (var j0 = start; j0 < end; j0 += WG) {
        let j = j0 + lid;
        let valid = j < end;
        var s = -1e30;
        if (valid) {
            let ko = (j - p.kv_base) * p.kv_w + g * hd;
            var d = 0.0;
            for (var i = 0u; i < hd; i++) {
                d += qs[i] * f32(KC[ko + i]);
            }
            s = d * p.scale;
        }
        let mn = max(m, wg_max(s, lid));
        var e = 0.0;
        if (valid) {
            e = exp(s - mn);
        }
        ps[lid] = e;
        let tsum = wg_sum(e, lid);
        let corr = exp(m - mn);
        l = l * corr + tsum;
        let cnt = min(WG, end - j0);
        for (var c = 0u; c < MAXC; c++) {
            let d = lid + c * WG;
            if (d < hd) {
                var a = acc[c] * corr;
                for (var i = 0u; i < cnt; i++) {
                    a += ps[i] * f32(VC[(j0 + i - p.kv_base) * p.kv_w + g * hd + d]);
                }
                acc[c] = a;
            }
        }
        m = mn;
        workgroupBarrier();
    }
    if (p.n_split == 1u) {
        for (var c = 0u; c < MAXC; c++) {
            let d = lid + c * WG;
            if (d < hd) {
                O[t * p.o_cols + h * hd + d] = acc[c] / l;
            }
        }
    } else {
        let po = ((wid.y * p.n_head + h) * p.n_split + p.split0 + wid.z) * (hd + 2u);
        if (lid == 0u) {
            PART[po] = m;
            PART[po + 1u] = l;
        }
        for (var c = 0u; c < MAXC; c++) {
            let d = lid + c * WG;
            if (d < hd) {
                PART[po + 2u + d] = acc[c];
            }
        }
    }
}

// Combines the n_split partial softmax states of one (head, token).
@compute @workgroup_size(WG)
fn attn_merge(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let h = wid.x;
    let t = p.t0 + wid.y;
    let hd = p.hd;
    let base = (wid.y * p.n_head + h) * p.n_split * (hd + 2u);
    var mx = -1e30;
    for (var s = 0u; s < p.n_split; s++) {
        mx = max(mx, PART[base + s * (hd + 2u)]);
    }
    var l = 0.0;
    for (var s = 0u; s < p.n_split; s++) {
        let o = base + s * (hd + 2u);
        l += PART[o + 1u] * exp(PART[o] - mx);
    }
    for (var d = lid; d < hd; d += WG) {
        var a = 0.0;
        for (var s = 0u; s < p.n_split; s++) {
            let o = base + s * (hd + 2u);
            a += PART[o + 2u + d] * exp(PART[o] - mx);
        }
        O[t * p.o_cols + h * hd + d] = a / l;
    }
}
