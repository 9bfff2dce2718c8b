//! Hearth: on-device inference for Liquid AI's LFM2 family.
//!
//! Layers, bottom up: [`gguf`] and [`quant`] (bytes to validated tensors), [`tokenizer`],
//! [`backend`] (the ops, CPU reference), [`models`] (the forward pass written once over the ops).

pub mod backend;
pub mod constrain;
pub mod engine;
pub mod error;
pub mod gguf;
pub mod models;
pub mod quant;
pub mod sampling;
pub mod tokenizer;

pub use engine::{BackendKind, CacheState, Engine, EngineOptions, Sequence};
pub use error::{Error, Result};
pub use tokenizer::{Detokenizer, Tokenizer};
