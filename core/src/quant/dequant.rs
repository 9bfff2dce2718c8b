//! CPU dequantization, bit-exact with ggml's `dequantize_row_*`.

use super::GgmlType;
use crate::error::Result;

/// Dequantizes one row: `src` holds exactly `dst.len() / block_elems` blocks of type `ty`.
pub fn dequantize_row(ty: GgmlType, src: &[u8], dst: &mut [f32]) -> Result<()> {
    let _ = (ty, src, dst);
    todo!("quant helper")
}

/// Dot product of one quantized row with `x` (f32 math on dequantized values).
pub fn dot_row(ty: GgmlType, src: &[u8], x: &[f32]) -> f32 {
    let _ = (ty, src, x);
    todo!("quant helper")
}
