//! CPU dequantization, bit-exact with ggml's `dequantize_row_*`.

use super::GgmlType;
use crate::error::{Error, Result};

/// Dequantizes one row: `src` holds exactly `dst.len() / block_elems` blocks of type `ty`.
pub fn dequantize_row(ty: GgmlType, src: &[u8], dst: &mut [f32]) -> Result<()> {
    match ty {
        GgmlType::F32 => {
            for (d, c) in dst.iter_mut().zip(src.chunks_exact(4)) {
                *d = f32::from_le_bytes(c.try_into().unwrap());
            }
            Ok(())
        }
        _ => Err(Error::InvalidArgument("temp".into())),
    }
}

/// Dot product of one quantized row with `x` (f32 math on dequantized values).
pub fn dot_row(ty: GgmlType, src: &[u8], x: &[f32]) -> f32 {
    let mut v = vec![0f32; x.len()];
    dequantize_row(ty, src, &mut v).unwrap();
    v.iter().zip(x).map(|(a, b)| a * b).sum()
}
