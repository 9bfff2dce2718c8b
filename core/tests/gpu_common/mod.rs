//! GPU test helpers: opening the backend under each fallback combination (SKIP without an
//! adapter unless HEARTH_REQUIRE_GPU=1), error metrics.
#![allow(dead_code)]

use hearth::Error;
use hearth::backend::gpu::{GpuBackend, GpuOptions};

/// Opens the GPU, or returns `None` (after printing SKIP) when no adapter exists.
pub fn gpu(opts: GpuOptions) -> Option<GpuBackend> {
    match GpuBackend::new(opts) {
        Ok(g) => Some(g),
        Err(Error::GpuUnavailable(e)) if std::env::var("HEARTH_REQUIRE_GPU").is_err() => {
            eprintln!("SKIP: no GPU adapter ({e})");
            None
        }
        Err(e) => panic!("GPU required but unavailable: {e}"),
    }
}

/// Every combination of the f16 / subgroup fallbacks: (label, backend).
pub fn all_combos() -> Vec<(String, GpuBackend)> {
    let mut v = Vec::new();
    for no_f16 in [false, true] {
        for no_subgroups in [false, true] {
            let opts = GpuOptions {
                no_f16,
                no_subgroups,
                ..Default::default()
            };
            let Some(g) = gpu(opts) else {
                return Vec::new();
            };
            let c = g.caps();
            v.push((
                format!(
                    "{}+{}",
                    if c.f16 { "f16" } else { "f32" },
                    if c.subgroups { "subgroups" } else { "shared" }
                ),
                g,
            ));
        }
    }
    v
}

/// Normalized mean squared error of `got` against `want`.
pub fn nmse(got: &[f32], want: &[f32]) -> f64 {
    assert_eq!(got.len(), want.len(), "length mismatch");
    let (mut num, mut den) = (0f64, 0f64);
    for (&g, &w) in got.iter().zip(want) {
        num += ((g - w) as f64).powi(2);
        den += (w as f64).powi(2);
    }
    num / den.max(1e-30)
}
