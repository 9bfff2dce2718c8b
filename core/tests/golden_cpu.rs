//! Golden tests of the CPU forward pass against the fixtures' reference logits:
//! F32 files vs HF transformers float32 (all rows), every other file vs dequant-HF (8 rows).

mod common;

use std::sync::Arc;

use hearth::backend::cpu::CpuBackend;
use hearth::gguf::GgufFile;
use hearth::models::lfm2::Model;

const ATOL: f32 = 1e-3;

fn load(file: &str) -> Model<CpuBackend> {
    let f = Arc::new(GgufFile::open(common::gguf_path(file)).unwrap());
    Model::load(&f, CpuBackend).unwrap()
}

fn check_f32_model(model_name: &str) {
    let model = load(&format!("{model_name}-f32"));
    for p in common::prompts(model_name) {
        let (seq, want) = common::hf_f32_logits(model_name, &p, model.config.vocab);
        let got = common::all_logits(&model, &seq);
        let diff = common::max_abs_diff(&got, &want);
        eprintln!("{model_name} {}: max |Δ| vs HF f32 = {diff:.2e}", p.name);
        assert!(diff < ATOL, "{model_name} {}: {diff}", p.name);

        // Prefill-then-decode reproduces the one-shot rows and HF's greedy continuation.
        let (tokens, rows) = common::greedy(&model, &p.ids, p.greedy.len());
        assert_eq!(tokens, p.greedy, "{model_name} {} greedy", p.name);
        let v = model.config.vocab;
        for (i, row) in rows.iter().enumerate() {
            let r = p.ids.len() - 1 + i;
            let d = common::max_abs_diff(row, &got[r * v..(r + 1) * v]);
            assert!(
                d < 1e-4,
                "{model_name} {}: decode row {r} differs from prefill by {d}",
                p.name
            );
        }
    }
}

#[test]
fn dense_h64_f32_matches_hf() {
    check_f32_model("lfm2-dense-h64");
}

#[test]
fn moe_h64_e8k2_f32_matches_hf() {
    check_f32_model("lfm2moe-h64-e8k2");
}

#[test]
fn moe_h64_e16k4_f32_matches_hf() {
    check_f32_model("lfm2moe-h64-e16k4");
}

/// Every non-F32 file vs the dequant-HF reference rows (P-4 .. P+3 of prompt + HF greedy).
fn check_dequant(model_name: &str, variant: &str) {
    let model = load(&format!("{model_name}-{variant}"));
    for (name, got_rows, want) in common::dequant_rows(&model, model_name, variant) {
        let diff = common::max_abs_diff(&got_rows, &want);
        eprintln!("{model_name}-{variant} {name}: max |Δ| vs dequant-HF = {diff:.2e}");
        assert!(diff < ATOL, "{model_name}-{variant} {name}: {diff}");
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
    dense_h64_f16: "lfm2-dense-h64", "f16";
    dense_h64_bf16: "lfm2-dense-h64", "bf16";
    dense_h64_q8_0: "lfm2-dense-h64", "q8_0";
    dense_h64_q4_0: "lfm2-dense-h64", "q4_0";
    dense_h64_q4_k_m: "lfm2-dense-h64", "q4_k_m";
    dense_h64_q5_k_m: "lfm2-dense-h64", "q5_k_m";
    moe_h64_e8k2_f16: "lfm2moe-h64-e8k2", "f16";
    moe_h64_e8k2_bf16: "lfm2moe-h64-e8k2", "bf16";
    moe_h64_e8k2_q8_0: "lfm2moe-h64-e8k2", "q8_0";
    moe_h64_e8k2_q4_0: "lfm2moe-h64-e8k2", "q4_0";
    moe_h64_e8k2_q4_k_m: "lfm2moe-h64-e8k2", "q4_k_m";
    moe_h64_e8k2_q5_k_m: "lfm2moe-h64-e8k2", "q5_k_m";
    moe_h64_e16k4_q8_0: "lfm2moe-h64-e16k4", "q8_0";
    moe_h64_e16k4_q4_0: "lfm2moe-h64-e16k4", "q4_0";
    dense_h256_f16: "lfm2-dense-h256", "f16";
    dense_h256_q8_0: "lfm2-dense-h256", "q8_0";
    dense_h256_q4_k_m: "lfm2-dense-h256", "q4_k_m";
    dense_h256_q5_k_m: "lfm2-dense-h256", "q5_k_m";
    dense_h256_q6_k: "lfm2-dense-h256", "q6_k";
    moe_h256_q4_k_m: "lfm2moe-h256-e8k2", "q4_k_m";
    moe_h256_q5_k_m: "lfm2moe-h256-e8k2", "q5_k_m";
    moe_h256_q6_k: "lfm2moe-h256-e8k2", "q6_k";
}
