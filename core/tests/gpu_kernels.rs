//! Every GPU kernel against the CPU reference backend on random inputs with odd sizes
//! (K = 1792, odd row counts, ragged tails), normalized MSE per op, under every fallback
//! combination (f16 / f32 products x subgroup / workgroup-memory reductions).
//!
//! Inputs reach both backends through the trait only: activations are rows of an F32
//! "input" table loaded with `embed`.
// The CPU backend's pass is `()`: the shared op sequences bind and pass unit values.
#![allow(clippy::let_unit_value, clippy::unit_arg)]

mod common;
mod gpu_common;

use std::sync::Arc;

use common::Rng;
use gpu_common::{all_combos, nmse};
use hearth::backend::cpu::CpuBackend;
use hearth::backend::gpu::{GpuBackend, GpuOptions};
use hearth::backend::{AttnShape, Backend, MoeShape, MoeWeights, Rope};
use hearth::gguf::{GgufFile, GgufWriter};
use hearth::quant::GgmlType;
use hearth::quant::quantize as encode;

/// Random blocks of `ty` with sane f16 scales (works for every block type).
fn random_quant(ty: GgmlType, n: usize, rng: &mut Rng) -> Vec<u8> {
    if matches!(ty, GgmlType::F32 | GgmlType::F16 | GgmlType::BF16) {
        return encode(ty, &rng.vec_f32(n));
    }
    let (be, bb) = (ty.block_elems(), ty.block_bytes());
    let mut out = Vec::with_capacity(n / be * bb);
    let scale_at: &[usize] = match ty {
        GgmlType::Q4_0 | GgmlType::Q5_0 | GgmlType::Q8_0 => &[0],
        GgmlType::Q4_1 | GgmlType::Q5_1 | GgmlType::Q4_K | GgmlType::Q5_K => &[0, 2],
        GgmlType::Q2_K => &[80, 82],
        GgmlType::Q3_K => &[108],
        GgmlType::Q6_K => &[208],
        _ => unreachable!(),
    };
    for _ in 0..n / be {
        let mut b: Vec<u8> = (0..bb).map(|_| rng.next_u64() as u8).collect();
        for &o in scale_at {
            let s = half::f16::from_f32(0.01 + 0.02 * rng.f32().abs());
            b[o..o + 2].copy_from_slice(&s.to_le_bytes());
        }
        out.extend(b);
    }
    out
}

/// A GGUF image from (name, ne, type, data) tensors.
fn file(tensors: Vec<(&str, Vec<u64>, GgmlType, Vec<u8>)>) -> Arc<GgufFile> {
    let mut w = GgufWriter::new();
    for (name, ne, ty, data) in tensors {
        w.tensor(name, &ne, ty, data);
    }
    Arc::new(GgufFile::from_bytes(w.to_bytes()).unwrap())
}

fn f32_tensor<'a>(
    name: &'a str,
    rows: usize,
    cols: usize,
    rng: &mut Rng,
    scale: f32,
) -> (&'a str, Vec<u64>, GgmlType, Vec<u8>) {
    let v: Vec<f32> = rng.vec_f32(rows * cols).iter().map(|x| x * scale).collect();
    (
        name,
        vec![cols as u64, rows as u64],
        GgmlType::F32,
        encode(GgmlType::F32, &v),
    )
}

fn w<B: Backend>(be: &B, f: &Arc<GgufFile>, name: &str) -> B::Weight {
    be.upload(f, f.tensor_info(name).unwrap()).unwrap()
}

/// A tensor of `rows x cols` filled with rows `0..rows` of the F32 table `table`.
fn input<B: Backend>(
    be: &B,
    pass: &mut B::Pass,
    table: &B::Weight,
    rows: usize,
    cols: usize,
) -> B::Tensor {
    let mut t = be.tensor(rows, cols).unwrap();
    let toks: Vec<u32> = (0..rows as u32).collect();
    be.embed(pass, table, &toks, &mut t);
    t
}

fn check(label: &str, got: &[f32], want: &[f32], tol: f64) {
    let e = nmse(got, want);
    eprintln!("{label}: nmse {e:.2e}");
    assert!(e <= tol, "{label}: nmse {e:.3e} > {tol:.0e}");
}

/// NMSE bound for products: f16 rounding of each product on the f16 path.
fn prod_tol(g: &GpuBackend) -> f64 {
    if g.caps().f16 { 2e-6 } else { 1e-9 }
}

fn matmul_case(g: &GpuBackend, label: &str, ty: GgmlType, k: usize, rows: usize, ns: &[usize]) {
    let mut rng = Rng::new(k as u64 * 31 + rows as u64);
    let nmax = *ns.iter().max().unwrap();
    let f = file(vec![
        (
            "w",
            vec![k as u64, rows as u64],
            ty,
            random_quant(ty, k * rows, &mut rng),
        ),
        f32_tensor("x", nmax, k, &mut rng, 1.0),
    ]);
    for &n in ns {
        let run = |be: &dyn Fn() -> Vec<f32>| be();
        let cpu = run(&|| {
            let be = CpuBackend;
            let (wt, xt) = (w(&be, &f, "w"), w(&be, &f, "x"));
            let mut p = be.begin();
            let x = input(&be, &mut p, &xt, n, k);
            let mut out = be.tensor(n, rows).unwrap();
            be.matmul(&mut p, &wt, &x, n, &mut out);
            be.read(p, &out, n).unwrap()
        });
        let (wt, xt) = (w(g, &f, "w"), w(g, &f, "x"));
        let mut p = g.begin();
        let x = input(g, &mut p, &xt, n, k);
        let mut out = g.tensor(n, rows).unwrap();
        g.matmul(&mut p, &wt, &x, n, &mut out);
        let got = g.read(p, &out, n).unwrap();
        check(
            &format!("{label} matmul {ty} k{k} rows{rows} n{n}"),
            &got,
            &cpu,
            prod_tol(g),
        );
    }
}

#[test]
fn matmul_every_type_matches_cpu() {
    for (label, g) in all_combos() {
        for ty in hearth::backend::gpu::kernels::WEIGHT_TYPES {
            // K = 1792 = 7 super-blocks (the LFM2-MoE expert down-projection width).
            let k = 1792;
            matmul_case(&g, &label, ty, k, 37, &[1, 5]);
        }
        // Plain types with a ragged K (not a multiple of 32), mat-mat tails in rows and tokens.
        matmul_case(&g, &label, GgmlType::F32, 1000, 45, &[1, 3, 19]);
        matmul_case(&g, &label, GgmlType::F16, 70, 33, &[1, 17]);
        matmul_case(&g, &label, GgmlType::Q4_K, 256, 67, &[1, 40]);
    }
}

#[test]
fn matmul_split_weights_match_cpu() {
    // A binding limit of 64 KiB splits a 37-row x 1792 Q8_0 weight (1904 B/row) into 2 chunks
    // and an F32 one into 7.
    let Some(g) = gpu_common::gpu(GpuOptions {
        max_binding: Some(64 << 10),
        ..Default::default()
    }) else {
        return;
    };
    matmul_case(&g, "split", GgmlType::Q8_0, 1792, 37, &[1, 6]);
    matmul_case(&g, "split", GgmlType::F32, 1792, 37, &[1, 6]);
}

#[test]
fn embed_every_type_matches_cpu() {
    for (label, g) in all_combos() {
        for ty in hearth::backend::gpu::kernels::WEIGHT_TYPES {
            let (k, vocab) = (512, 41);
            let mut rng = Rng::new(5);
            let f = file(vec![(
                "t",
                vec![k, vocab],
                ty,
                random_quant(ty, (k * vocab) as usize, &mut rng),
            )]);
            let toks = [3u32, 40, 0, 17, 3];
            let go = |be: &dyn Fn(&[u32]) -> Vec<f32>| be(&toks);
            let cpu = go(&|t| {
                let be = CpuBackend;
                let tw = w(&be, &f, "t");
                let mut p = be.begin();
                let mut out = be.tensor(t.len(), k as usize).unwrap();
                be.embed(&mut p, &tw, t, &mut out);
                be.read(p, &out, t.len()).unwrap()
            });
            let tw = w(&g, &f, "t");
            let mut p = g.begin();
            let mut out = g.tensor(toks.len(), k as usize).unwrap();
            g.embed(&mut p, &tw, &toks, &mut out);
            let got = g.read(p, &out, toks.len()).unwrap();
            check(&format!("{label} embed {ty}"), &got, &cpu, 1e-12);
        }
    }
}

/// Runs `op` on both backends over the same inputs and returns (gpu, cpu) results.
macro_rules! both {
    ($g:expr, $f:expr, |$be:ident, $p:ident, $t:ident| $body:block) => {{
        let cpu = {
            let $be = CpuBackend;
            let $t = |n: &str| w(&$be, $f, n);
            let mut $p = $be.begin();
            let r: (Vec<f32>,) = $body;
            r.0
        };
        let gpu = {
            let $be = ($g).clone();
            let $t = |n: &str| w(&$be, $f, n);
            let mut $p = $be.begin();
            let r: (Vec<f32>,) = $body;
            r.0
        };
        (gpu, cpu)
    }};
}

#[test]
fn norm_elementwise_conv_match_cpu() {
    let mut rng = Rng::new(11);
    let (n, d) = (7usize, 1000usize);
    let f = file(vec![
        f32_tensor("a", n, 3 * d, &mut rng, 2.0),
        f32_tensor("b", n, d, &mut rng, 1.0),
        (
            "nw",
            vec![d as u64],
            GgmlType::F32,
            encode(GgmlType::F32, &rng.vec_f32(d)),
        ),
        (
            "ker",
            vec![3, d as u64],
            GgmlType::F32,
            encode(GgmlType::F32, &rng.vec_f32(3 * d)),
        ),
        f32_tensor("st", 2, d, &mut rng, 1.0),
    ]);
    for (label, g) in all_combos() {
        let (got, want) = both!(&g, &f, |be, p, t| {
            let b = input(&be, &mut p, &t("b"), n, d);
            let mut out = be.tensor(n, d).unwrap();
            be.rms_norm(&mut p, &b, &t("nw"), 1e-5, n, &mut out);
            (be.read(p, &out, n).unwrap(),)
        });
        check(&format!("{label} rms_norm"), &got, &want, 1e-11);

        let (got, want) = both!(&g, &f, |be, p, t| {
            let a = input(&be, &mut p, &t("a"), n, 3 * d);
            let b = input(&be, &mut p, &t("b"), n, d);
            let mut out = be.tensor(n, d).unwrap();
            let mut g2 = be.tensor(n, d).unwrap();
            be.copy_row(&mut p, &a, 2, &mut g2);
            be.swiglu(&mut p, &b, &b, n, &mut out);
            be.add(&mut p, &mut out, &b, n);
            be.add(&mut p, &mut out, &g2, 1);
            let mut c = be.tensor(n, d).unwrap();
            be.copy(&mut p, &out, &mut c);
            be.zero(&mut p, &mut out);
            be.add(&mut p, &mut c, &out, n);
            (be.read(p, &c, n).unwrap(),)
        });
        check(&format!("{label} swiglu/add/copy/zero"), &got, &want, 1e-12);

        // Short conv over two calls (prefill of 5, then 1 token) with a non-zero initial state.
        let (got, want) = both!(&g, &f, |be, p, t| {
            let a = input(&be, &mut p, &t("a"), n, 3 * d);
            let mut st = input(&be, &mut p, &t("st"), 2, d);
            let mut out = be.tensor(n, d).unwrap();
            be.short_conv(&mut p, &a, &t("ker"), &mut st, 5, &mut out);
            let mut one = be.tensor(1, 3 * d).unwrap();
            be.copy_row(&mut p, &a, 6, &mut one);
            let mut out1 = be.tensor(1, d).unwrap();
            be.short_conv(&mut p, &one, &t("ker"), &mut st, 1, &mut out1);
            let mut r = be.read(p, &out, 5).unwrap();
            let p2 = be.begin();
            r.extend(be.read(p2, &out1, 1).unwrap());
            let p3 = be.begin();
            r.extend(be.read(p3, &st, 2).unwrap());
            (r,)
        });
        check(&format!("{label} short_conv"), &got, &want, 1e-12);
    }
}

/// q/k norm + RoPE into the cache, then attention, over `steps` forward calls (a prefill of
/// `steps[0]` tokens, ...) with a cache of `cap` rows; then the cache rows are read back, and
/// rows written over and read again (the rollback path).
fn attention_case(g: &GpuBackend, label: &str, steps: &[usize], cap: usize) {
    let shape = AttnShape {
        n_head: 6,
        n_head_kv: 2,
        head_dim: 64,
    };
    let (qw, kvw) = (
        shape.n_head * shape.head_dim,
        shape.n_head_kv * shape.head_dim,
    );
    let total: usize = steps.iter().sum();
    let mut rng = Rng::new(total as u64);
    let f = file(vec![
        f32_tensor("q", total, qw, &mut rng, 1.0),
        f32_tensor("k", total, kvw, &mut rng, 1.0),
        f32_tensor("v", total, kvw, &mut rng, 1.0),
        (
            "qn",
            vec![64],
            GgmlType::F32,
            encode(GgmlType::F32, &rng.vec_f32(64)),
        ),
        (
            "kn",
            vec![64],
            GgmlType::F32,
            encode(GgmlType::F32, &rng.vec_f32(64)),
        ),
    ]);
    let rope = Rope {
        shape,
        eps: 1e-5,
        base: 10000.0,
    };
    let (got, want) = both!(g, &f, |be, p, t| {
        let (mut kc, mut vc) = (be.cache(cap, kvw).unwrap(), be.cache(cap, kvw).unwrap());
        let (qa, ka, va) = (t("q"), t("k"), t("v"));
        let (qn, kn) = (t("qn"), t("kn"));
        let mut res = Vec::new();
        let mut pos = 0;
        for &step in steps {
            let toks: Vec<u32> = (pos as u32..(pos + step) as u32).collect();
            let mut q = be.tensor(step, qw).unwrap();
            let mut k = be.tensor(step, kvw).unwrap();
            let mut v = be.tensor(step, kvw).unwrap();
            be.embed(&mut p, &qa, &toks, &mut q);
            be.embed(&mut p, &ka, &toks, &mut k);
            be.embed(&mut p, &va, &toks, &mut v);
            let (kc, vc) = (&mut kc, &mut vc);
            be.qk_norm_rope_store(&mut p, &mut q, &k, &v, (&qn, &kn), kc, vc, rope, pos, step);
            let mut out = be.tensor(step, qw).unwrap();
            be.attention(&mut p, &q, kc, vc, shape, pos, step, &mut out);
            let done = std::mem::replace(&mut p, be.begin());
            res.extend(be.read(done, &out, step).unwrap());
            pos += step;
        }
        res.extend(be.read_rows(&kc, 0, total).unwrap());
        res.extend(be.read_rows(&vc, 0, total).unwrap());
        let head = be.read_rows(&vc, 0, 10).unwrap();
        be.write_rows(&mut vc, total - 12, &head).unwrap();
        let tail = total.saturating_sub(20);
        res.extend(be.read_rows(&vc, tail, total - tail).unwrap());
        (res,)
    });
    // f16 caches round k and v (relative 2^-11): nmse ~1e-7 against the f32 reference.
    let tol = if g.caps().f16 { 1e-6 } else { 1e-9 };
    check(
        &format!("{label} norm+rope+attention steps {steps:?} cache {cap}"),
        &got,
        &want,
        tol,
    );
}

#[test]
fn attention_matches_cpu() {
    for (label, g) in all_combos() {
        attention_case(&g, &label, &[13, 1, 1, 1], 19);
        attention_case(&g, &label, &[70, 1, 1], 75);
    }
}

#[test]
fn attention_split_over_sequence_matches_cpu() {
    // Decode at positions > 512 splits the cache over workgroups and merges the partials.
    for (label, g) in all_combos().into_iter().take(2) {
        attention_case(&g, &label, &[700, 1, 1], 705);
    }
}

#[test]
fn attention_over_a_segmented_cache_matches_cpu() {
    // A 32 KiB binding limit holds 64 f32 (128 f16) cache rows of 128 values: the caches span
    // several buffers, prefill chunks and decode steps straddle segment boundaries, and
    // long-context decode merges splits from every segment.
    for no_f16 in [true, false] {
        let opts = GpuOptions {
            max_binding: Some(64 * 128 * 4),
            no_f16,
            ..Default::default()
        };
        let Some(g) = gpu_common::gpu(opts) else {
            return;
        };
        let seg_rows = if g.caps().f16 { 128 } else { 64 };
        let cache = g.cache(200, 128).unwrap();
        assert_eq!(cache.segments(), 200usize.div_ceil(seg_rows));
        assert_eq!(cache.is_half(), g.caps().f16);
        assert!(g.read_rows(&cache, 70, 0).unwrap().is_empty());
        let label = format!("segmented f16={}", g.caps().f16);
        attention_case(&g, &label, &[13, 20, 20, 20, 1, 1, 1], 200);
        let mut steps = vec![20; 35];
        steps.extend([1, 1, 1]);
        attention_case(&g, &format!("{label} long"), &steps, 710);
    }
}

fn moe_case(g: &GpuBackend, label: &str, ty: GgmlType, n: usize) {
    let (d, ff, ne, k) = (256usize, 256usize, 6usize, 2usize);
    let mut rng = Rng::new(ne as u64 + n as u64);
    let f = file(vec![
        f32_tensor("x", n, d, &mut rng, 1.0),
        f32_tensor("router", ne, d, &mut rng, 0.3),
        (
            "bias",
            vec![ne as u64],
            GgmlType::F32,
            encode(GgmlType::F32, &rng.vec_f32(ne)),
        ),
        (
            "gate",
            vec![d as u64, ff as u64, ne as u64],
            ty,
            random_quant(ty, d * ff * ne, &mut rng),
        ),
        (
            "up",
            vec![d as u64, ff as u64, ne as u64],
            ty,
            random_quant(ty, d * ff * ne, &mut rng),
        ),
        (
            "down",
            vec![ff as u64, d as u64, ne as u64],
            ty,
            random_quant(ty, d * ff * ne, &mut rng),
        ),
    ]);
    let shape = MoeShape {
        n_expert: ne,
        n_expert_used: k,
        n_ff: ff,
    };
    let (got, want) = both!(g, &f, |be, p, t| {
        let x = input(&be, &mut p, &t("x"), n, d);
        let mut logits = be.tensor(n, ne).unwrap();
        be.matmul(&mut p, &t("router"), &x, n, &mut logits);
        let mut ids = be.ids(n, k, ne).unwrap();
        let mut wts = be.tensor(n, k).unwrap();
        let bias = t("bias");
        be.moe_route(&mut p, &logits, Some(&bias), k, n, &mut ids, &mut wts);
        let (gw, uw, dw) = (t("gate"), t("up"), t("down"));
        let experts = MoeWeights {
            gate: &gw,
            up: &uw,
            down: &dw,
        };
        let mut hidden = be.tensor(n * k, ff + d).unwrap();
        let mut out = be.tensor(n, d).unwrap();
        be.moe_ffn(
            &mut p,
            &x,
            experts,
            &ids,
            &wts,
            shape,
            n,
            &mut hidden,
            &mut out,
        );
        let mut r = be.read(p, &wts, n).unwrap();
        let p2 = be.begin();
        r.extend(be.read(p2, &out, n).unwrap());
        (r,)
    });
    check(
        &format!("{label} moe route+ffn {ty} n{n}"),
        &got,
        &want,
        prod_tol(g) * 10.0,
    );
}

#[test]
fn moe_matches_cpu() {
    for (label, g) in all_combos() {
        for ty in [
            GgmlType::F32,
            GgmlType::Q8_0,
            GgmlType::Q4_K,
            GgmlType::Q6_K,
            GgmlType::Q5_K,
        ] {
            moe_case(&g, &label, ty, 1);
        }
        // Prefill is grouped by expert: 9 tokens (one tile per expert), and 120 tokens (tiles
        // of 32 slots, several per expert).
        moe_case(&g, &label, GgmlType::Q4_0, 9);
        moe_case(&g, &label, GgmlType::Q4_K, 120);
    }
}

#[test]
fn moe_split_by_expert_groups_matches_cpu() {
    // 80 KiB bindings hold 1 expert (256 x 256 Q8_0 = 68 KiB) per chunk: 6 chunks per tensor.
    let Some(g) = gpu_common::gpu(GpuOptions {
        max_binding: Some(80 << 10),
        ..Default::default()
    }) else {
        return;
    };
    moe_case(&g, "split", GgmlType::Q8_0, 1);
    moe_case(&g, "split", GgmlType::Q8_0, 5);
}

#[test]
fn read_and_write_rows_round_trip() {
    let Some(g) = gpu_common::gpu(GpuOptions::default()) else {
        return;
    };
    let mut t = g.tensor(5, 7).unwrap();
    let rows: Vec<f32> = (0..14).map(|i| i as f32 * 0.5 - 3.0).collect();
    g.write_rows(&mut t, 2, &rows).unwrap();
    assert_eq!(g.read_rows(&t, 2, 2).unwrap(), rows);
    assert_eq!(g.read_rows(&t, 0, 1).unwrap(), vec![0.0; 7]);
    // A pass sees the written rows; out-of-range and ragged requests are errors.
    let mut c = g.tensor(5, 7).unwrap();
    let mut p = g.begin();
    g.copy(&mut p, &t, &mut c);
    assert_eq!(g.read(p, &c, 5).unwrap()[14..28], rows[..]);
    assert!(g.read_rows(&t, 4, 2).is_err());
    assert!(g.write_rows(&mut t, 0, &[1.0; 5]).is_err());
    assert!(g.write_rows(&mut t, 4, &rows).is_err());
}
