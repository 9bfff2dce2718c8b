// Fused dequantization of ggml blocks, read straight from a weight buffer (`array<u32>`).
// Not a standalone shader: the host splices the `common` section plus one type section per
// weight binding, replacing BUF with the binding's name. `visit_BUF(base, j, o)` decodes the 32
// values of group `j` (elements 32j..32j+31) of the row starting at byte `base`, with the same
// f32 expressions as the CPU reference (`quant/dequant.rs`), and hands each to the kernel's
// `take_BUF(o + i, value) -> f32`, summing what it returns: a product with the activation
// (mat-vec: the sum is the group's dot product) or a store (embedding rows, mat-mat tiles).
// Values never land in a private array, which GPUs (and llvmpipe) spill to memory.

//@ common
fn rd8_BUF(off: u32) -> u32 {
    return (BUF[off >> 2u] >> ((off & 3u) * 8u)) & 0xFFu;
}
fn rd16_BUF(off: u32) -> u32 {
    if ((off & 3u) == 3u) {
        return rd8_BUF(off) | (rd8_BUF(off + 1u) << 8u);
    }
    return (BUF[off >> 2u] >> ((off & 3u) * 8u)) & 0xFFFFu;
}
fn rd32_BUF(off: u32) -> u32 {
    let s = (off & 3u) * 8u;
    let w = off >> 2u;
    if (s == 0u) {
        return BUF[w];
    }
    return (BUF[w] >> s) | (BUF[w + 1u] << (32u - s));
}
fn byte_BUF(w: u32, c: u32) -> u32 {
    return (w >> (8u * c)) & 0xFFu;
}
// 6-bit (scale, min) of sub-block j of a Q4_K / Q5_K super-block at byte b.
fn scale_min_k4_BUF(b: u32, j: u32) -> vec2<u32> {
    if (j < 4u) {
        return vec2<u32>(rd8_BUF(b + 4u + j) & 63u, rd8_BUF(b + 8u + j) & 63u);
    }
    let s = rd8_BUF(b + 8u + j);
    return vec2<u32>((s & 0xFu) | ((rd8_BUF(b + j) >> 6u) << 4u), (s >> 4u) | ((rd8_BUF(b + 4u + j) >> 6u) << 4u));
}
fn h16_BUF(off: u32) -> f32 {
    return unpack2x16float(rd16_BUF(off)).x;
}
// Weight times activation. On the f16 path WT_BUF is f16 for F16 weights (exact: the tiles of
// the mat-mat kernel hold them in half precision); activations and accumulation stay f32.
fn mul_BUF(w: f32, x: f32) -> f32 {
    return f32(WT_BUF(w)) * x;
}

//@ F32
fn visit_BUF(base: u32, j: u32, o: u32) -> f32 {
    var acc = 0.0;
    for (var i = 0u; i < 32u; i++) {
        let e = j * 32u + i;
        if (e < g_k) {
            acc += take_BUF(o + i, bitcast<f32>(BUF[(base >> 2u) + e]));
        }
    }
    return acc;
}

//@ F16
fn visit_BUF(base: u32, j: u32, o: u32) -> f32 {
    var acc = 0.0;
    if ((base & 3u) == 0u && 32u * j + 32u <= g_k) {
        // Two values per word.
        let w0 = (base >> 2u) + 16u * j;
        for (var w = 0u; w < 16u; w++) {
            let v = unpack2x16float(BUF[w0 + w]);
            acc += take_BUF(o + 2u * w, v.x);
            acc += take_BUF(o + 2u * w + 1u, v.y);
        }
        return acc;
    }
    for (var i = 0u; i < 32u; i++) {
        let e = j * 32u + i;
        if (e < g_k) {
            acc += take_BUF(o + i, h16_BUF(base + 2u * e));
        }
    }
    return acc;
}

//@ BF16
fn visit_BUF(base: u32, j: u32, o: u32) -> f32 {
    var acc = 0.0;
    if ((base & 3u) == 0u && 32u * j + 32u <= g_k) {
        let w0 = (base >> 2u) + 16u * j;
        for (var w = 0u; w < 16u; w++) {
            let v = BUF[w0 + w];
            acc += take_BUF(o + 2u * w, bitcast<f32>(v << 16u));
            acc += take_BUF(o + 2u * w + 1u, bitcast<f32>(v & 0xFFFF0000u));
        }
        return acc;
    }
    for (var i = 0u; i < 32u; i++) {
        let e = j * 32u + i;
        if (e < g_k) {
            acc += take_BUF(o + i, bitcast<f32>(rd16_BUF(base + 2u * e) << 16u));
        }
    }
    return acc;
}

//@ Q4_0
fn visit_BUF(base: u32, j: u32, o: u32) -> f32 {
    var acc = 0.0;
    let b = base + 18u * j;
    let d = h16_BUF(b);
    for (var w = 0u; w < 4u; w++) {
        let qw = rd32_BUF(b + 2u + 4u * w);
        for (var c = 0u; c < 4u; c++) {
            let q = byte_BUF(qw, c);
            let l = 4u * w + c;
            acc += take_BUF(o + l, f32(i32(q & 0xFu) - 8) * d);
            acc += take_BUF(o + l + 16u, f32(i32(q >> 4u) - 8) * d);
        }
    }
    return acc;
}

//@ Q4_1
fn visit_BUF(base: u32, j: u32, o: u32) -> f32 {
    var acc = 0.0;
    let b = base + 20u * j;
    let d = h16_BUF(b);
    let m = h16_BUF(b + 2u);
    for (var w = 0u; w < 4u; w++) {
        let qw = rd32_BUF(b + 4u + 4u * w);
        for (var c = 0u; c < 4u; c++) {
            let q = byte_BUF(qw, c);
            let l = 4u * w + c;
            acc += take_BUF(o + l, f32(q & 0xFu) * d + m);
            acc += take_BUF(o + l + 16u, f32(q >> 4u) * d + m);
        }
    }
    return acc;
}

//@ Q5_0
fn visit_BUF(base: u32, j: u32, o: u32) -> f32 {
    var acc = 0.0;
    let b = base + 22u * j;
    let d = h16_BUF(b);
    let qh = rd32_BUF(b + 2u);
    for (var w = 0u; w < 4u; w++) {
        let qw = rd32_BUF(b + 6u + 4u * w);
        for (var c = 0u; c < 4u; c++) {
            let q = byte_BUF(qw, c);
            let l = 4u * w + c;
            let lo = (q & 0xFu) | (((qh >> l) & 1u) << 4u);
            let hi = (q >> 4u) | (((qh >> (l + 16u)) & 1u) << 4u);
            acc += take_BUF(o + l, f32(i32(lo) - 16) * d);
            acc += take_BUF(o + l + 16u, f32(i32(hi) - 16) * d);
        }
    }
    return acc;
}

//@ Q5_1
fn visit_BUF(base: u32, j: u32, o: u32) -> f32 {
    var acc = 0.0;
    let b = base + 24u * j;
    let d = h16_BUF(b);
    let m = h16_BUF(b + 2u);
    let qh = rd32_BUF(b + 4u);
    for (var w = 0u; w < 4u; w++) {
        let qw = rd32_BUF(b + 8u + 4u * w);
        for (var c = 0u; c < 4u; c++) {
            let q = byte_BUF(qw, c);
            let l = 4u * w + c;
            let lo = (q & 0xFu) | (((qh >> l) & 1u) << 4u);
            let hi = (q >> 4u) | (((qh >> (l + 16u)) & 1u) << 4u);
            acc += take_BUF(o + l, f32(lo) * d + m);
            acc += take_BUF(o + l + 16u, f32(hi) * d + m);
        }
    }
    return acc;
}

//@ Q8_0
fn visit_BUF(base: u32, j: u32, o: u32) -> f32 {
    var acc = 0.0;
    let b = base + 34u * j;
    let d = h16_BUF(b);
    for (var w = 0u; w < 8u; w++) {
        let qw = rd32_BUF(b + 2u + 4u * w);
        for (var c = 0u; c < 4u; c++) {
            let q = i32(qw << (24u - 8u * c)) >> 24u;
            acc += take_BUF(o + 4u * w + c, f32(q) * d);
        }
    }
    return acc;
}

//@ Q2_K
fn visit_BUF(base: u32, j: u32, o: u32) -> f32 {
    var acc = 0.0;
    let b = base + 84u * (j / 8u);
    let sub = j % 8u;
    let d = h16_BUF(b + 80u);
    let dmin = h16_BUF(b + 82u);
    let n = sub / 4u;
    let sh = 2u * (sub % 4u);
    for (var h = 0u; h < 2u; h++) {
        let sc = rd8_BUF(b + 2u * sub + h);
        let dl = d * f32(sc & 0xFu);
        let ml = dmin * f32(sc >> 4u);
        for (var w = 0u; w < 4u; w++) {
            let l = 16u * h + 4u * w;
            let qw = rd32_BUF(b + 16u + 32u * n + l);
            for (var c = 0u; c < 4u; c++) {
                acc += take_BUF(o + l + c, dl * f32((byte_BUF(qw, c) >> sh) & 3u) - ml);
            }
        }
    }
    return acc;
}

//@ Q3_K
fn q3_scale_BUF(b: u32, s: u32) -> i32 {
    var low: u32;
    if (s < 8u) {
        low = rd8_BUF(b + 96u + s) & 0xFu;
    } else {
        low = rd8_BUF(b + 96u + s - 8u) >> 4u;
    }
    let high = (rd8_BUF(b + 104u + s % 4u) >> (2u * (s / 4u))) & 3u;
    return i32(low | (high << 4u)) - 32;
}
fn visit_BUF(base: u32, j: u32, o: u32) -> f32 {
    var acc = 0.0;
    let b = base + 110u * (j / 8u);
    let sub = j % 8u;
    let d = h16_BUF(b + 108u);
    let n = sub / 4u;
    let jj = sub % 4u;
    let bit = 1u << (4u * n + jj);
    for (var h = 0u; h < 2u; h++) {
        let dl = d * f32(q3_scale_BUF(b, 2u * sub + h));
        for (var w = 0u; w < 4u; w++) {
            let l = 16u * h + 4u * w;
            let qw = rd32_BUF(b + 32u + 32u * n + l);
            let hw = rd32_BUF(b + l);
            for (var c = 0u; c < 4u; c++) {
                var v = i32((byte_BUF(qw, c) >> (2u * jj)) & 3u);
                if ((byte_BUF(hw, c) & bit) == 0u) {
                    v -= 4;
                }
                acc += take_BUF(o + l + c, dl * f32(v));
            }
        }
    }
    return acc;
}

//@ Q4_K
fn visit_BUF(base: u32, j: u32, o: u32) -> f32 {
    var acc = 0.0;
    let b = base + 144u * (j / 8u);
    let sub = j % 8u;
    let d = h16_BUF(b);
    let dmin = h16_BUF(b + 2u);
    let sm = scale_min_k4_BUF(b, sub);
    let d1 = d * f32(sm.x);
    let m1 = dmin * f32(sm.y);
    let sh = 4u * (sub % 2u);
    let q0 = b + 16u + 32u * (sub / 2u);
    for (var w = 0u; w < 8u; w++) {
        let qw = rd32_BUF(q0 + 4u * w) >> sh;
        for (var c = 0u; c < 4u; c++) {
            acc += take_BUF(o + 4u * w + c, d1 * f32(byte_BUF(qw, c) & 0xFu) - m1);
        }
    }
    return acc;
}

//@ Q5_K
fn visit_BUF(base: u32, j: u32, o: u32) -> f32 {
    var acc = 0.0;
    let b = base + 176u * (j / 8u);
    let sub = j % 8u;
    let d = h16_BUF(b);
    let dmin = h16_BUF(b + 2u);
    let sm = scale_min_k4_BUF(b, sub);
    let d1 = d * f32(sm.x);
    let m1 = dmin * f32(sm.y);
    let sh = 4u * (sub % 2u);
    let q0 = b + 48u + 32u * (sub / 2u);
    for (var w = 0u; w < 8u; w++) {
        let qw = rd32_BUF(q0 + 4u * w) >> sh;
        let hw = rd32_BUF(b + 16u + 4u * w) >> sub;
        for (var c = 0u; c < 4u; c++) {
            let q = (byte_BUF(qw, c) & 0xFu) + 16u * (byte_BUF(hw, c) & 1u);
            acc += take_BUF(o + 4u * w + c, d1 * f32(q) - m1);
        }
    }
    return acc;
}

//@ Q6_K
fn visit_BUF(base: u32, j: u32, o: u32) -> f32 {
    var acc = 0.0;
    let b = base + 210u * (j / 8u);
    let sub = j % 8u;
    let d = h16_BUF(b + 208u);
    let n = sub / 4u;
    let g = sub % 4u;
    let shift = select(0u, 4u, g >= 2u);
    for (var h = 0u; h < 2u; h++) {
        let sc = i32(rd8_BUF(b + 192u + 2u * sub + h) << 24u) >> 24u;
        let dl = d * f32(sc);
        for (var w = 0u; w < 4u; w++) {
            let l = 16u * h + 4u * w;
            let lw = rd32_BUF(b + 64u * n + 32u * (g & 1u) + l) >> shift;
            let hw = rd32_BUF(b + 128u + 32u * n + l) >> (2u * g);
            for (var c = 0u; c < 4u; c++) {
                let q = (byte_BUF(lw, c) & 0xFu) | ((byte_BUF(hw, c) & 3u) << 4u);
                acc += take_BUF(o + l + c, dl * f32(i32(q) - 32));
            }
        }
    }
    return acc;
}
