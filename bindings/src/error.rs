//! The one error type of the SDK: a small, stable set of cases an app can act on. The core's
//! detailed error is kept as the message text.

use hearth::Error as E;

/// Every SDK call that can fail throws this (Kotlin `HearthException`, Swift `HearthError`).
///
/// Flat: only the case and its message cross the FFI. A field named `message` in a non-flat
/// error makes uniffi 0.32's Kotlin clash with `Throwable.message` (does not compile); flat, it
/// becomes the exception's message (Kotlin `e.message`, Swift `case Io(message:)`).
#[derive(Debug, uniffi::Error, thiserror::Error)]
#[uniffi(flat_error)]
#[non_exhaustive]
pub enum HearthError {
    /// The file is not a readable model (malformed GGUF, missing metadata or tensors, tokenizer).
    #[error("{message}")]
    InvalidModel { message: String },
    /// A valid file, but an architecture or tensor type Hearth cannot run.
    #[error("{message}")]
    UnsupportedModel { message: String },
    /// The model or context does not fit in the memory available (RAM or GPU).
    #[error("{message}")]
    InsufficientMemory { message: String },
    /// The prompt and requested output do not fit in the session's context window.
    #[error("{message}")]
    ContextOverflow { message: String },
    #[error("{message}")]
    InvalidArgument { message: String },
    /// The GPU is unavailable, failed, or was lost; the CPU backend still works.
    #[error("{message}")]
    GpuFault { message: String },
    /// A file operation failed (open, map, disk full).
    #[error("{message}")]
    Io { message: String },
    /// A model download failed (network, TLS, HTTP status, checksum).
    #[error("{message}")]
    Download { message: String },
    #[error("{message}")]
    Cancelled { message: String },
    /// A bug: please report it with the message.
    #[error("{message}")]
    Internal { message: String },
}

impl From<E> for HearthError {
    /// The one conversion: the core's error class picks the case.
    fn from(e: E) -> Self {
        use hearth::ErrorKind as K;
        let message = e.to_string();
        match e.kind() {
            K::InvalidModel => Self::InvalidModel { message },
            K::UnsupportedModel => Self::UnsupportedModel { message },
            K::InsufficientMemory => Self::InsufficientMemory { message },
            K::ContextOverflow => Self::ContextOverflow { message },
            K::InvalidArgument => Self::InvalidArgument { message },
            K::Cancelled => Self::Cancelled { message },
            K::GpuFault => Self::GpuFault { message },
            K::Io => Self::Io { message },
            K::Download => Self::Download { message },
            // `ErrorKind` is non-exhaustive: a new class is Internal until mapped here.
            _ => Self::Internal { message },
        }
    }
}
