//! Reference quantizers (ggml's `quantize_row_*_ref`), for tests and synthetic bench models.

/// Quantizes `src` (a multiple of 32 values) to Q4_0 blocks.
pub fn quantize_q4_0(src: &[f32]) -> Vec<u8> {
    let _ = src;
    todo!("quant helper")
}

/// Quantizes `src` (a multiple of 32 values) to Q8_0 blocks.
pub fn quantize_q8_0(src: &[f32]) -> Vec<u8> {
    let _ = src;
    todo!("quant helper")
}

/// Quantizes `src` (a multiple of 256 values) to Q4_K super-blocks.
pub fn quantize_q4_k(src: &[f32]) -> Vec<u8> {
    let _ = src;
    todo!("quant helper")
}

/// Quantizes `src` (a multiple of 256 values) to Q6_K super-blocks.
pub fn quantize_q6_k(src: &[f32]) -> Vec<u8> {
    let _ = src;
    todo!("quant helper")
}
