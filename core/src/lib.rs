//! Hearth: on-device inference for Liquid AI's LFM2 family.
//!
//! Layers, bottom up: [`gguf`] and [`quant`] (bytes to validated tensors), [`tokenizer`],
//! [`backend`] (the ops, CPU reference), [`models`] (the forward pass written once over the ops).

pub mod error;
pub mod gguf;
#[cfg(feature = "hub")]
pub mod hub;
pub mod memory;
pub mod quant;

pub use error::{Error, Result};
