//! Golden tests of the GPU forward pass: every fixture model on the GPU backend against the
//! same references as the CPU backend (F32 files vs HF transformers float32, the others vs
//! dequant-HF), and greedy continuations of the F32 fixtures equal to HF's (= the CPU's).
//!
//! Tolerances: on the f32 path (`no_f16`) every kernel computes in f32, so atol 1e-3 like the
//! CPU. On the f16 path the KV caches hold f16 (k and v rounded to 11 bits; arithmetic stays
//! f32): the logits move by up to ~4e-3 here (3e-4 of their range), so the bound there is
//! max|Δ| <= 1 % of max|logit|, and greedy continuations are compared on the f32 path only (a
//! near-tie may flip).

mod common;
mod gpu_common;

use std::sync::Arc;

use hearth::backend::Backend;
use hearth::backend::gpu::{GpuBackend, GpuOptions};
use hearth::gguf::GgufFile;
use hearth::models::lfm2::Model;

const ATOL: f32 = 1e-3;
const F16_REL: f32 = 0.01;

/// The two corners of the fallback matrix: (f16 products + subgroups), (f32 + shared memory).
fn backends() -> Vec<GpuBackend> {
    [false, true]
        .into_iter()
        .filter_map(|fallback| {
            gpu_common::gpu(GpuOptions {
                no_f16: fallback,
                no_subgroups: fallback,
                ..Default::default()
            })
        })
        .collect()
}

fn load(file: &str, g: &GpuBackend) -> Model<GpuBackend> {
    let f = Arc::new(GgufFile::open(common::gguf_path(file)).unwrap());
    Model::load(&f, g.clone()).unwrap()
}

/// Asserts the tolerance of the path `g` computes on; returns max|Δ|.
fn assert_close(g: &GpuBackend, what: &str, got: &[f32], want: &[f32]) -> f32 {
    let diff = common::max_abs_diff(got, want);
    let max = want.iter().fold(0f32, |m, x| m.max(x.abs()));
    let tol = if g.caps().f16 { F16_REL * max } else { ATOL };
    eprintln!(
        "{what} [{}]: max |Δ| = {diff:.2e} (tol {tol:.1e})",
        g.name()
    );
    assert!(diff <= tol, "{what}: {diff} > {tol}");
    diff
}

fn check_f32_model(model_name: &str) {
    for g in backends() {
        let model = load(&format!("{model_name}-f32"), &g);
        for p in common::prompts(model_name) {
            let (seq, want) = common::hf_f32_logits(model_name, &p, model.config.vocab);
            let got = common::all_logits(&model, &seq);
            assert_close(
                &g,
                &format!("{model_name} {} vs HF f32", p.name),
                &got,
                &want,
            );

            // Prefill-then-decode reproduces the one-shot rows; on the f32 path the greedy
            // continuation equals HF's (and the CPU's).
            let (tokens, rows) = common::greedy(&model, &p.ids, p.greedy.len());
            if !g.caps().f16 {
                assert_eq!(tokens, p.greedy, "{model_name} {} greedy", p.name);
            }
            let v = model.config.vocab;
            for (i, row) in rows.iter().enumerate() {
                let r = p.ids.len() - 1 + i;
                if tokens[..i] != p.greedy[..i] {
                    break;
                }
                assert_close(
                    &g,
                    &format!("{model_name} {} decode row {r}", p.name),
                    row,
                    &got[r * v..(r + 1) * v],
                );
            }
        }
    }
}

#[test]
fn gpu_dense_h64_f32_matches_hf() {
    check_f32_model("lfm2-dense-h64");
}

#[test]
fn gpu_moe_h64_e8k2_f32_matches_hf() {
    check_f32_model("lfm2moe-h64-e8k2");
}

#[test]
fn gpu_moe_h64_e16k4_f32_matches_hf() {
    check_f32_model("lfm2moe-h64-e16k4");
}

fn check_dequant(model_name: &str, variant: &str) {
    for g in backends() {
        let model = load(&format!("{model_name}-{variant}"), &g);
        for (name, got_rows, want) in common::dequant_rows(&model, model_name, variant) {
            assert_close(
                &g,
                &format!("{model_name}-{variant} {name} vs dequant-HF"),
                &got_rows,
                &want,
            );
        }
    }
}

macro_rules! dequant_tests {
    ($($test:ident: $model:literal, $variant:literal;)*) => {$(
        #[test]
        fn $test() {
            check_dequant($model, $variant);
        }
    )*};
}

dequant_tests! {
    gpu_dense_h64_f16: "lfm2-dense-h64", "f16";
    gpu_dense_h64_bf16: "lfm2-dense-h64", "bf16";
    gpu_dense_h64_q8_0: "lfm2-dense-h64", "q8_0";
    gpu_dense_h64_q4_0: "lfm2-dense-h64", "q4_0";
    gpu_dense_h64_q4_k_m: "lfm2-dense-h64", "q4_k_m";
    gpu_dense_h64_q5_k_m: "lfm2-dense-h64", "q5_k_m";
    gpu_moe_h64_e8k2_f16: "lfm2moe-h64-e8k2", "f16";
    gpu_moe_h64_e8k2_bf16: "lfm2moe-h64-e8k2", "bf16";
    gpu_moe_h64_e8k2_q8_0: "lfm2moe-h64-e8k2", "q8_0";
    gpu_moe_h64_e8k2_q4_0: "lfm2moe-h64-e8k2", "q4_0";
    gpu_moe_h64_e8k2_q4_k_m: "lfm2moe-h64-e8k2", "q4_k_m";
    gpu_moe_h64_e8k2_q5_k_m: "lfm2moe-h64-e8k2", "q5_k_m";
    gpu_moe_h64_e16k4_q8_0: "lfm2moe-h64-e16k4", "q8_0";
    gpu_moe_h64_e16k4_q4_0: "lfm2moe-h64-e16k4", "q4_0";
    gpu_dense_h256_f16: "lfm2-dense-h256", "f16";
    gpu_dense_h256_q8_0: "lfm2-dense-h256", "q8_0";
    gpu_dense_h256_q4_k_m: "lfm2-dense-h256", "q4_k_m";
    gpu_dense_h256_q5_k_m: "lfm2-dense-h256", "q5_k_m";
    gpu_dense_h256_q6_k: "lfm2-dense-h256", "q6_k";
    gpu_moe_h256_q4_k_m: "lfm2moe-h256-e8k2", "q4_k_m";
    gpu_moe_h256_q5_k_m: "lfm2moe-h256-e8k2", "q5_k_m";
    gpu_moe_h256_q6_k: "lfm2moe-h256-e8k2", "q6_k";
}
