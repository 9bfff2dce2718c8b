//! Hearth: on-device inference for Liquid AI's LFM2 family.
//!
//! Layers, bottom up: [`gguf`] and [`quant`] (bytes to validated tensors), [`tokenizer`],
//! [`backend`] (the ops, CPU reference), [`models`] (the forward pass written once over the ops).

pub mod backend;
pub mod chat;
pub mod constrain;
pub mod engine;
pub mod error;
pub mod gguf;
#[cfg(feature = "hub")]
pub mod hub;
pub mod memory;
pub mod models;
pub mod numerics;
pub mod quant;
pub mod sampling;
pub mod selftest;
pub mod session;
pub mod tokenizer;

pub use engine::{BackendKind, CacheState, Engine, EngineOptions, Sequence};
pub use error::{Error, Result};
pub use tokenizer::{Detokenizer, Tokenizer};
