//! Hearth's mobile SDK surface, exported with uniffi (proc-macros only) to Kotlin and Swift.
//!
//! This crate only converts: types in, a call into the `hearth` crate, types out. Behaviour and
//! its tests live in `core/`; the Kotlin/JVM tests (`scripts/test-kotlin.sh`) check the bridge.

mod convert;
mod error;
mod logging;
mod model;
mod session;
#[cfg(feature = "store")]
mod store;

pub use error::HearthError;
pub use logging::{LogLevel, set_log_level};
pub use model::{CancelHandle, HearthModel};
pub use session::{ChatSession, GenerationHandle};

uniffi::setup_scaffolding!();

/// The SDK's version (the Cargo package version of the engine and its bindings).
#[uniffi::export]
pub fn sdk_version() -> String {
    env!("CARGO_PKG_VERSION").to_string()
}

/// What a GGUF model file declares, read from its header without loading the weights.
#[derive(Debug, Clone, PartialEq, uniffi::Record)]
pub struct ModelInfo {
    /// GGUF architecture name: `lfm2` or `lfm2moe`.
    pub architecture: String,
    pub n_layer: u32,
    pub vocab: u32,
    /// The context length the model was trained for, in tokens.
    pub context_length: u32,
    pub file_size_bytes: u64,
    /// Total parameter count (all experts of a MoE model).
    #[uniffi(default = 0)]
    pub parameters: u64,
    /// The tensor type holding most of the weights, e.g. `Q4_0`.
    #[uniffi(default = "")]
    pub quant: String,
    /// For a loaded model: the backend in use and why it was chosen.
    #[uniffi(default = None)]
    pub backend: Option<String>,
}

/// Opens the GGUF at `path` (memory-mapped, header and tensor table validated) and describes it.
#[uniffi::export]
pub fn model_info(path: String) -> Result<ModelInfo, HearthError> {
    let file = hearth::gguf::GgufFile::open(&path)?;
    let config = hearth::models::lfm2::Config::from_gguf(&file)?;
    Ok(ModelInfo::of_file(&file, &config))
}

/// Header values are read as u32 by the core; saturate rather than wrap if that ever changes.
fn to_u32(v: usize) -> u32 {
    u32::try_from(v).unwrap_or(u32::MAX)
}

/// Forgets the GPU failures recorded under `cacheDir` (see `ModelOptions.cacheDir`), so the
/// next `Auto` load tests the GPU again, e.g. after an OS update.
#[uniffi::export]
pub fn forget_gpu_failures(cache_dir: String) -> Result<(), HearthError> {
    Ok(hearth::forget_gpu_failures(cache_dir)?)
}
