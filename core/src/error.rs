//! The one public error type of the engine. Every fallible public function returns [`Result`].

/// Everything that can go wrong in Hearth, with enough context to act on it.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The operating system refused a file operation.
    #[error("I/O error on {path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },

    /// The GGUF container is malformed; `offset` is the byte position where reading failed.
    #[error("malformed GGUF at byte {offset}: {reason}")]
    Gguf { offset: u64, reason: String },

    /// A tensor uses a ggml type that Hearth cannot compute with.
    #[error("tensor '{tensor}' has unsupported type {type_name}")]
    UnsupportedType { tensor: String, type_name: String },

    /// The file is a valid GGUF but not a model Hearth understands.
    #[error("unsupported model architecture '{0}' (expected lfm2 or lfm2moe)")]
    UnknownArchitecture(String),

    /// A metadata key the model needs is absent or has the wrong type.
    #[error("metadata key '{key}': {reason}")]
    Metadata { key: String, reason: String },

    /// A tensor the model needs is absent or has the wrong shape.
    #[error("tensor '{name}': {reason}")]
    Tensor { name: String, reason: String },

    /// The tokenizer could not be built or used.
    #[error("tokenizer: {0}")]
    Tokenizer(String),

    /// An argument or option is out of its valid range.
    #[error("invalid argument: {0}")]
    InvalidArgument(String),

    /// The request does not fit in the context window of the session.
    #[error("context overflow: {needed} tokens needed, context holds {capacity}")]
    ContextOverflow { needed: usize, capacity: usize },

    // gpu
    /// No usable GPU adapter (or it failed its self-test).
    #[error("GPU unavailable: {0}")]
    GpuUnavailable(String),

    /// A GPU operation failed (kernel compilation, validation, readback).
    #[error("GPU error: {0}")]
    Gpu(String),

    /// The model (or a session) does not fit in the GPU's memory or binding limits.
    #[error("GPU out of memory: {needed} bytes needed, {available} available")]
    GpuOutOfMemory { needed: u64, available: u64 },

    /// The GPU device was lost (driver reset, app backgrounded); the backend must be recreated.
    #[error("GPU device lost: {0}")]
    GpuDeviceLost(String),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub(crate) fn gguf(offset: u64, reason: impl Into<String>) -> Self {
        Error::Gguf {
            offset,
            reason: reason.into(),
        }
    }

    pub(crate) fn metadata(key: &str, reason: impl Into<String>) -> Self {
        Error::Metadata {
            key: key.to_string(),
            reason: reason.into(),
        }
    }

    pub(crate) fn tensor(name: &str, reason: impl Into<String>) -> Self {
        Error::Tensor {
            name: name.to_string(),
            reason: reason.into(),
        }
    }
}
