//! ggml block formats: type table, CPU dequantization (the reference), quantizers for tests.

mod dequant;
mod quantize;
mod types;

pub(crate) use dequant::f16_at;
#[cfg(test)]
pub(crate) use dequant::scale_min_k4;
pub use dequant::{dequantize_row, dot_row};
pub use quantize::{quantize, quantize_q4_0, quantize_q4_k, quantize_q6_k, quantize_q8_0};
pub use types::GgmlType;
