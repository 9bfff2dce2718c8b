//! A loaded model: [`HearthModel`] wraps the core's `Engine` (cheap to clone, thread-safe).

use std::sync::Arc;

use hearth::{CancelToken, Engine};

use crate::convert::{LoadProgress, ModelOptions, SessionOptions};
use crate::session::{CallbackError, ChatSession};
use crate::{HearthError, ModelInfo};

/// Stops a long operation (a model load, a download) from another thread.
#[derive(uniffi::Object, Default)]
pub struct CancelHandle {
    pub(crate) token: CancelToken,
}

#[uniffi::export]
impl CancelHandle {
    #[uniffi::constructor]
    pub fn new() -> Arc<Self> {
        Arc::default()
    }

    /// Idempotent; the operation then fails with `Cancelled`.
    pub fn cancel(&self) {
        self.token.cancel();
    }

    pub fn is_cancelled(&self) -> bool {
        self.token.is_cancelled()
    }
}

/// Receives a model load's progress, on the loading thread.
#[uniffi::export(foreign)]
pub trait LoadListener: Send + Sync {
    /// An error (e.g. an exception in the listener) cancels the load.
    fn on_progress(&self, progress: LoadProgress) -> Result<(), CallbackError>;
}

/// A model loaded onto a backend. Sessions of one model run concurrently. Releasing it
/// (Kotlin `close()`, Swift's last reference) frees the weights once its sessions are gone too.
#[derive(uniffi::Object)]
pub struct HearthModel {
    pub(crate) engine: Engine,
}

#[uniffi::export]
impl HearthModel {
    /// Loads the GGUF at `path` (blocking: call it off the main thread; the platform wrappers
    /// do). `progress` is called on this thread; `cancel` stops the load between its steps.
    #[uniffi::constructor]
    pub fn open(
        path: String,
        options: ModelOptions,
        progress: Option<Arc<dyn LoadListener>>,
        cancel: Option<Arc<CancelHandle>>,
    ) -> Result<Arc<Self>, HearthError> {
        let token = cancel.map(|c| c.token.clone()).unwrap_or_default();
        let report = |p: hearth::LoadProgress| {
            if let Some(l) = &progress
                && l.on_progress(p.into()).is_err()
            {
                token.cancel();
            }
        };
        let engine = Engine::load_with(&path, options.to_core()?, &report, &token)?;
        Ok(Arc::new(HearthModel { engine }))
    }

    /// What the model is and where it runs.
    pub fn info(&self) -> Result<ModelInfo, HearthError> {
        Ok(ModelInfo::of_engine(&self.engine))
    }

    /// The token ids of `text`. With `special`, control-token strings such as
    /// `<|tool_call_start|>` become their ids (as in a rendered prompt); without, they are
    /// tokenized as plain text (as user messages are). For `GenerateOptions.logit_bias`.
    #[uniffi::method(default(special = true))]
    pub fn tokenize(&self, text: String, special: bool) -> Result<Vec<i32>, HearthError> {
        let tokenizer = self.engine.tokenizer();
        let ids = match special {
            true => tokenizer.encode(&text, false)?,
            false => tokenizer.encode_plain(&text)?,
        };
        // Vocabularies are far below 2^31 ids.
        Ok(ids.into_iter().map(|t| t as i32).collect())
    }

    /// A new conversation with its own caches.
    pub fn new_session(&self, options: SessionOptions) -> Result<Arc<ChatSession>, HearthError> {
        ChatSession::create(&self.engine, options)
    }
}

impl ModelInfo {
    /// The file's header facts; `backend` is filled by a loaded model.
    pub(crate) fn of_file(
        file: &hearth::gguf::GgufFile,
        config: &hearth::models::lfm2::Config,
    ) -> Self {
        let tensors = file.tensors();
        // The quantization is the type of most weight matrices (not of the embedding, which
        // is often kept wider, nor of the f32 norms and conv kernels).
        let mut by_type: Vec<(String, u64)> = Vec::new();
        for t in tensors.iter().filter(|t| t.ne.len() >= 2) {
            let name = format!("{:?}", t.ty);
            if name == "F32" {
                continue;
            }
            match by_type.iter_mut().find(|(n, _)| *n == name) {
                Some((_, c)) => *c += 1,
                None => by_type.push((name, 1)),
            }
        }
        let quant = by_type.into_iter().max_by_key(|(_, b)| *b).map(|(n, _)| n);
        ModelInfo {
            architecture: config.arch.key_prefix().to_string(),
            n_layer: crate::to_u32(config.n_layer),
            vocab: crate::to_u32(config.vocab),
            context_length: crate::to_u32(config.context_length),
            file_size_bytes: file.file_size(),
            parameters: tensors.iter().map(|t| t.n_elements()).sum(),
            quant: quant.unwrap_or_default(),
            backend: None,
        }
    }

    fn of_engine(engine: &Engine) -> Self {
        ModelInfo {
            backend: Some(engine.backend_description()),
            ..Self::of_file(engine.file(), engine.config())
        }
    }
}
