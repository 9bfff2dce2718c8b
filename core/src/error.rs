//! The one public error type of the engine. Every fallible public function returns [`Result`].

use serde::{Deserialize, Serialize};

/// Everything that can go wrong in Hearth, with enough context to act on it.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The operating system refused a file operation.
    #[error("I/O error on {path}: {source}")]
    Io {
        /// The file or directory concerned.
        path: String,
        /// The operating system's error.
        #[source]
        source: std::io::Error,
    },

    /// The GGUF container is malformed; `offset` is the byte position where reading failed.
    #[error("malformed GGUF at byte {offset}: {reason}")]
    Gguf {
        /// Byte offset in the file where reading failed.
        offset: u64,
        /// What is wrong, in words.
        reason: String,
    },

    /// A tensor uses a ggml type that Hearth cannot compute with.
    #[error("tensor '{tensor}' has unsupported type {type_name}")]
    UnsupportedType {
        /// The tensor's name.
        tensor: String,
        /// The ggml type's name.
        type_name: String,
    },

    /// The file is a valid GGUF but not a model Hearth understands.
    #[error("unsupported model architecture '{0}' (expected lfm2 or lfm2moe)")]
    UnknownArchitecture(String),

    /// A metadata key the model needs is absent or has the wrong type.
    #[error("metadata key '{key}': {reason}")]
    Metadata {
        /// The metadata key.
        key: String,
        /// What is wrong, in words.
        reason: String,
    },

    /// A tensor the model needs is absent or has the wrong shape.
    #[error("tensor '{name}': {reason}")]
    Tensor {
        /// The tensor's name.
        name: String,
        /// What is wrong, in words.
        reason: String,
    },

    /// The tokenizer could not be built or used.
    #[error("tokenizer: {0}")]
    Tokenizer(String),

    /// An argument or option is out of its valid range.
    #[error("invalid argument: {0}")]
    InvalidArgument(String),

    /// The model at the requested context would not fit in the memory available.
    #[error(
        "model needs about {} MiB (weights {} MiB, KV cache {} MiB, scratch {} MiB) but only {} MiB are available",
        footprint.total_bytes >> 20, footprint.weights_bytes >> 20, footprint.kv_cache_bytes >> 20,
        (footprint.activation_bytes + footprint.conv_state_bytes) >> 20, available >> 20
    )]
    InsufficientMemory {
        /// What the model and the session would need.
        footprint: Footprint,
        /// Bytes available to Hearth.
        available: u64,
    },

    /// The request does not fit in the context window of the session.
    #[error("context overflow: {needed} tokens needed, context holds {capacity}")]
    ContextOverflow {
        /// Tokens the request needs (prompt plus reserved output).
        needed: usize,
        /// Tokens the session's context holds.
        capacity: usize,
    },

    // hub: model downloads and local model storage (feature `hub`).
    /// The network could not be reached or the connection failed (after the configured retries).
    #[error("network error for {url}: {reason}")]
    Network {
        /// The URL requested.
        url: String,
        /// What is wrong, in words.
        reason: String,
    },

    /// The TLS handshake or certificate verification failed.
    #[error("TLS failure for {url}: {reason}")]
    Tls {
        /// The URL requested.
        url: String,
        /// What is wrong, in words.
        reason: String,
    },

    /// The server answered with an HTTP error status (5xx after the configured retries).
    #[error("HTTP {status} for {url}: {}", http_status_hint(*status))]
    Http {
        /// The HTTP status code.
        status: u16,
        /// The URL requested.
        url: String,
    },

    /// The server's answer is inconsistent (length, range, redirect) and cannot be trusted.
    #[error("bad response from {url}: {reason}")]
    BadResponse {
        /// The URL requested.
        url: String,
        /// What is wrong, in words.
        reason: String,
    },

    /// The downloaded or stored file does not have the expected SHA-256.
    #[error("SHA-256 mismatch for {file}: expected {expected}, got {actual}")]
    HashMismatch {
        /// The file's name.
        file: String,
        /// The SHA-256 expected (hex).
        expected: String,
        /// The SHA-256 of the bytes received (hex).
        actual: String,
    },

    /// No SHA-256 is known for a download (none given, none announced by the server) and
    /// unverified downloads are not allowed.
    #[error("no SHA-256 known for {file}: give one, or allow unverified downloads explicitly")]
    NoChecksum {
        /// The file's name.
        file: String,
    },

    /// The operation was cancelled by the caller.
    #[error("cancelled")]
    Cancelled,

    /// Not enough free disk space (`available` is 0 when the OS reported the disk full mid-write).
    #[error("not enough disk space in {path}: {needed} bytes needed, {available} available")]
    InsufficientDisk {
        /// The file or directory concerned.
        path: String,
        /// Bytes the download needs.
        needed: u64,
        /// Bytes free on the disk.
        available: u64,
    },

    /// No model with this name in the models directory.
    #[error("no model named '{0}' in the models directory")]
    ModelNotFound(String),

    // chat
    /// A chat template failed to compile or to render (syntax error, `raise_exception`, …).
    #[error("chat template: {0}")]
    Template(String),

    // gpu
    /// No usable GPU adapter (or it failed its self-test).
    #[error("GPU unavailable: {0}")]
    GpuUnavailable(String),

    /// A GPU operation failed (kernel compilation, validation, readback).
    #[error("GPU error: {0}")]
    Gpu(String),

    /// The model (or a session) does not fit in the GPU's memory or binding limits.
    #[error("GPU out of memory: {needed} bytes needed, {available} available")]
    GpuOutOfMemory {
        /// Bytes needed.
        needed: u64,
        /// Bytes the GPU allows.
        available: u64,
    },

    /// The GPU device was lost (driver reset, app backgrounded); the backend must be recreated.
    #[error("GPU device lost: {0}")]
    GpuDeviceLost(String),

    /// A saved session, cache file or other stored state is corrupt or from another format.
    #[error("corrupt {what}: {reason}")]
    Corrupt {
        /// What kind of stored state it is.
        what: String,
        /// What is wrong, in words.
        reason: String,
    },

    /// A bug in Hearth: an invariant did not hold. Please report it.
    #[error("internal error: {0}")]
    Internal(String),
}

/// The class of an [`Error`]: what a caller (or a binding's exception hierarchy) acts on.
/// Every error maps to exactly one class; see [`Error::kind`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The model file (or a saved session, a cache file) is corrupt, truncated or hostile.
    InvalidModel,
    /// A valid file of a model, architecture or tensor type Hearth does not run.
    UnsupportedModel,
    /// Not enough memory (RAM or GPU) for the model or the session at this context.
    InsufficientMemory,
    /// The conversation or request does not fit the context window.
    ContextOverflow,
    /// The caller passed an invalid option or argument.
    InvalidArgument,
    /// The caller cancelled the operation.
    Cancelled,
    /// The GPU failed (no usable adapter, a kernel failed, the device was lost).
    GpuFault,
    /// The operating system refused a file operation (missing file, permissions, disk full).
    Io,
    /// A download failed (network, TLS, HTTP status, checksum).
    Download,
    /// A bug in Hearth.
    Internal,
}

/// A short explanation of an HTTP error status, for [`Error::Http`] messages.
fn http_status_hint(status: u16) -> &'static str {
    match status {
        401 | 403 => {
            "access denied: the repository may be gated or private (accept its license on the hub and provide a token)"
        }
        404 => "not found: check the repository and file names",
        416 => "range not satisfiable: the partial download does not match the file on the server",
        429 => "rate limited by the server",
        500..=599 => "server error",
        _ => "unexpected status",
    }
}

/// `Result` with Hearth's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// The class of this error (one `match` in a binding maps every error).
    pub fn kind(&self) -> ErrorKind {
        use Error::*;
        match self {
            Gguf { .. } | Metadata { .. } | Tensor { .. } | Tokenizer(_) | Template(_) => {
                ErrorKind::InvalidModel
            }
            Corrupt { .. } => ErrorKind::InvalidModel,
            UnsupportedType { .. } | UnknownArchitecture(_) => ErrorKind::UnsupportedModel,
            InsufficientMemory { .. } | GpuOutOfMemory { .. } => ErrorKind::InsufficientMemory,
            ContextOverflow { .. } => ErrorKind::ContextOverflow,
            InvalidArgument(_) => ErrorKind::InvalidArgument,
            Cancelled => ErrorKind::Cancelled,
            GpuUnavailable(_) | Gpu(_) | GpuDeviceLost(_) => ErrorKind::GpuFault,
            Io { .. } | InsufficientDisk { .. } | ModelNotFound(_) => ErrorKind::Io,
            Network { .. }
            | Tls { .. }
            | Http { .. }
            | BadResponse { .. }
            | HashMismatch { .. }
            | NoChecksum { .. } => ErrorKind::Download,
            Internal(_) => ErrorKind::Internal,
        }
    }

    pub(crate) fn corrupt(what: &str, reason: impl Into<String>) -> Self {
        Error::Corrupt {
            what: what.to_string(),
            reason: reason.into(),
        }
    }

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

/// Bytes needed to run a model, by part. `total_bytes` is the sum of the others.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Footprint {
    /// The model's weights on the backend.
    pub weights_bytes: u64,
    /// Attention key/value caches at the planned context.
    pub kv_cache_bytes: u64,
    /// Short-convolution states of the conv layers.
    pub conv_state_bytes: u64,
    /// Scratch activations of one batch.
    pub activation_bytes: u64,
    /// All of the above.
    pub total_bytes: u64,
}
