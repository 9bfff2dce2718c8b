//! The engine: loads a model file onto a backend and hands out sequences (per-conversation state).
//!
//! Model code is generic over the backend; the engine erases the backend type behind
//! [`Sequence`] so the public API (and the FFI) has no type parameters.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::backend::Backend;
use crate::backend::cpu::CpuBackend;
use crate::error::{Error, Result};
use crate::gguf::GgufFile;
use crate::models::lfm2::{Config, Logits, Model, State};

/// Which compute backend to run on.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum BackendKind {
    /// The GPU if an adapter exists and passes the numerical self-test, else the CPU.
    #[default]
    Auto,
    Gpu,
    Cpu,
}

impl std::str::FromStr for BackendKind {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s.to_ascii_lowercase().as_str() {
            "auto" => Ok(BackendKind::Auto),
            "gpu" => Ok(BackendKind::Gpu),
            "cpu" => Ok(BackendKind::Cpu),
            other => Err(Error::InvalidArgument(format!(
                "unknown backend '{other}' (auto, gpu, cpu)"
            ))),
        }
    }
}

/// Options for [`Engine::load`].
#[derive(Clone, Debug)]
pub struct EngineOptions {
    pub backend: BackendKind,
}

impl Default for EngineOptions {
    fn default() -> Self {
        EngineOptions {
            backend: BackendKind::Auto,
        }
    }
}

/// A loaded model, shareable across threads; create one [`Sequence`] per conversation.
pub struct Engine {
    model: Arc<dyn DynModel>,
    file: Arc<GgufFile>,
    backend_reason: String,
    load_time: Duration,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("backend", &self.model.backend_name())
            .finish()
    }
}

impl Engine {
    /// Opens and validates a GGUF file and loads its weights onto the chosen backend.
    pub fn load(path: impl AsRef<Path>, options: EngineOptions) -> Result<Engine> {
        let start = Instant::now();
        let file = Arc::new(GgufFile::open(path.as_ref())?);
        Config::from_gguf(&file)?;
        let (model, backend_reason): (Arc<dyn DynModel>, String) = match options.backend {
            BackendKind::Cpu => (
                Arc::new(Model::load(&file, CpuBackend)?),
                "requested".into(),
            ),
            BackendKind::Auto => (
                Arc::new(Model::load(&file, CpuBackend)?),
                "no GPU backend in this build".into(),
            ),
            BackendKind::Gpu => {
                return Err(Error::InvalidArgument(
                    "the GPU backend is not available in this build".into(),
                ));
            }
        };
        Ok(Engine {
            model,
            file,
            backend_reason,
            load_time: start.elapsed(),
        })
    }

    pub fn config(&self) -> &Config {
        self.model.config()
    }

    /// The backend in use and why it was chosen.
    pub fn backend_description(&self) -> String {
        format!("{} ({})", self.model.backend_name(), self.backend_reason)
    }

    pub fn load_time(&self) -> Duration {
        self.load_time
    }

    /// The parsed model file (metadata, tensor index).
    pub fn file(&self) -> &Arc<GgufFile> {
        &self.file
    }

    /// New per-conversation state holding `context` tokens, run in chunks of up to `batch`.
    pub fn new_sequence(&self, context: usize, batch: usize) -> Result<Box<dyn Sequence>> {
        self.model.clone().new_sequence(context, batch, false)
    }

    /// Like [`Engine::new_sequence`] but able to return logits of every position (evaluation).
    pub fn new_eval_sequence(&self, context: usize, batch: usize) -> Result<Box<dyn Sequence>> {
        self.model.clone().new_sequence(context, batch, true)
    }
}

/// Backend-erased model.
trait DynModel: Send + Sync {
    fn config(&self) -> &Config;
    fn backend_name(&self) -> String;
    fn new_sequence(
        self: Arc<Self>,
        context: usize,
        batch: usize,
        all_logits: bool,
    ) -> Result<Box<dyn Sequence>>;
}

impl<B: Backend> DynModel for Model<B> {
    fn config(&self) -> &Config {
        &self.config
    }
    fn backend_name(&self) -> String {
        self.backend.name()
    }
    fn new_sequence(
        self: Arc<Self>,
        context: usize,
        batch: usize,
        all_logits: bool,
    ) -> Result<Box<dyn Sequence>> {
        let context = context.min(self.config.context_length.max(1));
        let state = State::new(&self, context, batch, all_logits)?;
        Ok(Box::new(Seq { model: self, state }))
    }
}

/// Snapshot of the recurrent (short-conv) state of a sequence, taken on the host.
#[derive(Clone, Debug, PartialEq)]
pub struct ConvSnapshot {
    /// Token count at which it was taken.
    pub n_past: usize,
    states: Vec<Vec<f32>>,
}

/// One sequence's state on the backend: KV caches, conv states, activation scratch.
pub trait Sequence: Send {
    /// Tokens in the caches.
    fn n_past(&self) -> usize;
    /// Context length.
    fn capacity(&self) -> usize;
    /// Runs `tokens` after the cached ones (in chunks of the batch size) and returns the last
    /// token's logits, or every token's with [`Logits::All`].
    fn forward(&mut self, tokens: &[u32], mode: Logits) -> Result<Vec<f32>>;
    /// Empties the sequence.
    fn reset(&mut self) -> Result<()>;
    /// Copies the conv states to the host.
    fn snapshot(&self) -> Result<ConvSnapshot>;
    /// Rewinds to a snapshot: KV entries past `snapshot.n_past` are dropped, conv states restored.
    fn restore(&mut self, snapshot: &ConvSnapshot) -> Result<()>;
}

struct Seq<B: Backend> {
    model: Arc<Model<B>>,
    state: State<B>,
}

impl<B: Backend> Sequence for Seq<B> {
    fn n_past(&self) -> usize {
        self.state.n_past
    }

    fn capacity(&self) -> usize {
        self.state.capacity
    }

    fn forward(&mut self, tokens: &[u32], mode: Logits) -> Result<Vec<f32>> {
        if tokens.is_empty() {
            return Err(Error::InvalidArgument(
                "forward needs at least one token".into(),
            ));
        }
        let needed = self.state.n_past + tokens.len();
        if needed > self.state.capacity {
            return Err(Error::ContextOverflow {
                needed,
                capacity: self.state.capacity,
            });
        }
        let mut out = Vec::new();
        for chunk in tokens.chunks(self.state.batch) {
            let logits = self.model.forward(&mut self.state, chunk, mode)?;
            match mode {
                Logits::Last => out = logits,
                Logits::All => out.extend_from_slice(&logits),
            }
        }
        Ok(out)
    }

    fn reset(&mut self) -> Result<()> {
        self.state.reset(&self.model)
    }

    fn snapshot(&self) -> Result<ConvSnapshot> {
        let be = &self.model.backend;
        let states = self
            .state
            .conv_states()
            .map(|t| be.download(t))
            .collect::<Result<_>>()?;
        Ok(ConvSnapshot {
            n_past: self.state.n_past,
            states,
        })
    }

    fn restore(&mut self, snapshot: &ConvSnapshot) -> Result<()> {
        if snapshot.n_past > self.state.n_past
            || snapshot.states.len() != self.state.conv_states().count()
        {
            return Err(Error::InvalidArgument(
                "snapshot does not belong to this sequence's history".into(),
            ));
        }
        let be = &self.model.backend;
        for (t, data) in self.state.conv_states_mut().zip(&snapshot.states) {
            be.upload_tensor(t, data)?;
        }
        self.state.n_past = snapshot.n_past;
        Ok(())
    }
}
