//! Hearth: on-device inference for Liquid AI's LFM2 family (dense and MoE), from the GGUF files
//! users download, on a wgpu GPU backend or the CPU.
//!
//! The API an app uses is re-exported here: load an [`Engine`], open a [`Session`] (or an
//! owned, thread-safe [`SharedSession`] whose turns run on a worker thread), send [`Message`]s
//! and stream [`Event`]s; every failure is an [`Error`] whose [`ErrorKind`] says what to do.
//!
//! ```no_run
//! use hearth::{Engine, EngineOptions, Event, GenerateOptions, Message, Session, SessionOptions};
//!
//! let engine = Engine::load("LFM2-1.2B-Q4_K_M.gguf", EngineOptions::default())?;
//! let mut session = Session::new(&engine, SessionOptions::default())?;
//! for event in session.send(Message::user("Hello!"), &GenerateOptions::default())? {
//!     if let Event::Text(t) = event? {
//!         print!("{t}");
//!     }
//! }
//! # Ok::<(), hearth::Error>(())
//! ```
//!
//! Layers, bottom up (internal, not part of the stable surface): `gguf` and `quant` (bytes to
//! validated tensors), `tokenizer`, `backend` (the ops: CPU reference, wgpu GPU), `models` (the
//! forward pass written once over the ops), then `engine`, `session`, `chat`.

#![warn(missing_docs)]

mod cancel;
/// Loading a model onto a backend; per-conversation sequences.
pub mod engine;
/// The one error type and its classes.
pub mod error;
mod gpu_record;
/// Model files on the device: catalogue, resumable verified downloads, storage.
#[cfg(feature = "hub")]
pub mod hub;
/// Conversations: turns, exact cache reuse, cancel with rollback, save and restore.
pub mod session;

// Internals: public for the integration tests, benches and the CLI, not for apps.
#[doc(hidden)]
pub mod backend;
#[doc(hidden)]
pub mod chat;
#[doc(hidden)]
pub mod constrain;
#[doc(hidden)]
pub mod gguf;
#[doc(hidden)]
pub mod memory;
#[doc(hidden)]
pub mod models;
#[doc(hidden)]
pub mod numerics;
#[doc(hidden)]
pub mod quant;
#[doc(hidden)]
pub mod sampling;
#[doc(hidden)]
pub mod selftest;
#[doc(hidden)]
pub mod tokenizer;

pub use cancel::CancelToken;
pub use chat::{Message, Role, Tool, ToolCall};
pub use engine::{
    BackendKind, CacheState, Engine, EngineOptions, LoadPhase, LoadProgress, Logits, Sequence,
};
pub use error::{Error, ErrorKind, Footprint, Result};
pub use gpu_record::forget_gpu_failures;
pub use sampling::SamplingOptions;
pub use session::{
    Event, EventSink, GenerateOptions, Generation, OverflowPolicy, Request, Session,
    SessionOptions, SharedSession, StopReason, Turn, TurnStats,
};
pub use tokenizer::{Detokenizer, Tokenizer};
