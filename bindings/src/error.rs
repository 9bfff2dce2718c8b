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
    fn from(e: E) -> Self {
        let message = e.to_string();
        match e {
            E::Io { .. } | E::InsufficientDisk { .. } => Self::Io { message },
            E::Gguf { .. } | E::Metadata { .. } | E::Tensor { .. } => {
                Self::InvalidModel { message }
            }
            E::Tokenizer(_) | E::Template(_) => Self::InvalidModel { message },
            E::UnsupportedType { .. } | E::UnknownArchitecture(_) => {
                Self::UnsupportedModel { message }
            }
            E::InvalidArgument(_) | E::ModelNotFound(_) => Self::InvalidArgument { message },
            E::InsufficientMemory { .. } | E::GpuOutOfMemory { .. } => {
                Self::InsufficientMemory { message }
            }
            E::ContextOverflow { .. } => Self::ContextOverflow { message },
            E::Network { .. }
            | E::Tls { .. }
            | E::Http { .. }
            | E::BadResponse { .. }
            | E::HashMismatch { .. }
            | E::NoChecksum { .. } => Self::Download { message },
            E::Cancelled => Self::Cancelled { message },
            E::GpuUnavailable(_) | E::Gpu(_) | E::GpuDeviceLost(_) => Self::GpuFault { message },
            // `hearth::Error` is non-exhaustive: a new core case is Internal until mapped here.
            _ => Self::Internal { message },
        }
    }
}
