//! The engine: loads a model file onto a backend and hands out sequences (per-conversation state).
//!
//! Model code is generic over the backend; the engine erases the backend type behind
//! [`Sequence`] so the public API (and the FFI) has no type parameters.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::backend::Backend;
use crate::backend::cpu::CpuBackend;
use crate::backend::gpu::{GpuBackend, GpuOptions};
use crate::chat::ChatTemplate;
use crate::constrain::TokenIndex;
use crate::error::{Error, Result};
use crate::gguf::GgufFile;
use crate::memory::Footprint;
use crate::models::lfm2::{Config, Logits, Model, State};
use crate::tokenizer::Tokenizer;

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
    /// Context length the memory-fit check plans for (sessions may ask for less).
    pub context_length: usize,
    /// Bytes the engine may use; `None` = the memory the OS reports available (when it does).
    pub memory_budget: Option<u64>,
}

impl Default for EngineOptions {
    fn default() -> Self {
        EngineOptions {
            backend: BackendKind::Auto,
            context_length: crate::memory::DEFAULT_CONTEXT as usize,
            memory_budget: None,
        }
    }
}

impl EngineOptions {
    /// Default options on the given backend.
    pub fn with_backend(backend: BackendKind) -> Self {
        EngineOptions {
            backend,
            ..Default::default()
        }
    }
}

/// Estimated footprint of a model file at a context length (same estimator as the catalogue).
pub fn footprint(file: &GgufFile, config: &Config, context_length: usize) -> Footprint {
    let weights: u64 = file.tensors().iter().map(|t| t.n_bytes).sum();
    let ctx = context_length
        .min(config.context_length)
        .min(u32::MAX as usize) as u32;
    crate::memory::estimate(&config.shape(), weights, ctx, 64)
}

/// Refuses to load what cannot fit, instead of being killed by the OS mid-load.
fn check_fit(file: &GgufFile, config: &Config, options: &EngineOptions) -> Result<()> {
    let Some(available) = options.memory_budget.or_else(available_memory) else {
        return Ok(());
    };
    let fp = footprint(file, config, options.context_length);
    if fp.total_bytes > available {
        return Err(Error::InsufficientMemory {
            footprint: fp,
            available,
        });
    }
    Ok(())
}

/// `MemAvailable` on Linux and Android; `None` where the OS does not say.
fn available_memory() -> Option<u64> {
    if !cfg!(any(target_os = "linux", target_os = "android")) {
        return None;
    }
    let info = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = info.lines().find(|l| l.starts_with("MemAvailable:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

/// A loaded model, cheap to clone and shareable across threads; each conversation gets its own
/// [`Sequence`] (or [`crate::session::Session`]).
#[derive(Clone)]
pub struct Engine {
    model: Arc<dyn DynModel>,
    file: Arc<GgufFile>,
    tokenizer: Arc<Tokenizer>,
    template: Arc<ChatTemplate>,
    /// Token byte trie for JSON-schema constraints, built on first use.
    token_index: Arc<std::sync::OnceLock<Arc<TokenIndex>>>,
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
        let path = path.as_ref();
        let file = Arc::new(GgufFile::open(path)?);
        let config = Config::from_gguf(&file)?;
        check_fit(&file, &config, &options)?;
        let tokenizer = Arc::new(Tokenizer::for_model(path)?);
        let template = Arc::new(ChatTemplate::from_gguf(&file)?);
        let vocab = config.vocab;
        if tokenizer.vocab_size() > vocab {
            return Err(Error::Tokenizer(format!(
                "tokenizer has {} tokens but the model's embedding only {vocab}",
                tokenizer.vocab_size()
            )));
        }
        let (model, backend_reason) = load_on_backend(&file, &options)?;
        Ok(Engine {
            model,
            file,
            tokenizer,
            template,
            token_index: Default::default(),
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

    pub fn tokenizer(&self) -> &Tokenizer {
        &self.tokenizer
    }

    /// The model's own chat template.
    pub fn template(&self) -> &ChatTemplate {
        &self.template
    }

    /// The vocabulary index shared by every JSON-schema constraint of this engine.
    pub fn token_index(&self) -> Arc<TokenIndex> {
        self.token_index
            .get_or_init(|| Arc::new(TokenIndex::new(&self.tokenizer)))
            .clone()
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

/// Loads the weights on the requested backend; `Auto` takes the GPU only when an adapter
/// exists and passes the numerical self-test against the CPU reference.
fn load_on_backend(
    file: &Arc<GgufFile>,
    options: &EngineOptions,
) -> Result<(Arc<dyn DynModel>, String)> {
    let cpu = |why: String| -> Result<(Arc<dyn DynModel>, String)> {
        Ok((Arc::new(Model::load(file, CpuBackend::quantized())?), why))
    };
    match options.backend {
        BackendKind::Cpu => cpu("requested".into()),
        BackendKind::Gpu => {
            let gpu = open_gpu(options)?;
            self_test(&gpu)?;
            let model = Model::load(file, gpu.clone())?;
            gpu.warm_up(file)?;
            Ok((Arc::new(model), "requested; self-test passed".into()))
        }
        BackendKind::Auto => {
            let gpu = match open_gpu(options) {
                Ok(gpu) => gpu,
                Err(e) => return cpu(format!("{e}")),
            };
            // A software rasterizer (lavapipe, SwiftShader) is far slower than the CPU backend.
            if gpu.caps().device_type == "Cpu" {
                return cpu(format!(
                    "the only GPU adapter is a CPU emulation ({})",
                    gpu.caps().adapter
                ));
            }
            if let Err(e) = self_test(&gpu) {
                return cpu(format!("{e}"));
            }
            match Model::load(file, gpu.clone()).and_then(|m| gpu.warm_up(file).map(|_| m)) {
                Ok(model) => Ok((Arc::new(model), "GPU passed its self-test".into())),
                Err(e) => cpu(format!("GPU could not hold the model: {e}")),
            }
        }
    }
}

fn open_gpu(options: &EngineOptions) -> Result<GpuBackend> {
    GpuBackend::new(GpuOptions {
        memory_budget: options.memory_budget,
        ..Default::default()
    })
}

/// Checks the GPU's kernels against the CPU reference (broken mobile drivers produce
/// gibberish; catch it before the user does).
fn self_test(gpu: &GpuBackend) -> Result<()> {
    gpu.self_test()
        .map_err(|e| Error::GpuUnavailable(format!("self-test failed: {e}")))
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

/// A copy of a sequence's cache state on the host: the conv states at `n_past` and the KV rows
/// `from..n_past`. With `from == n_past` it is a cheap checkpoint (conv states only); with
/// `from == 0` it is the whole cache (saved sessions).
#[derive(Clone, Debug, PartialEq)]
pub struct CacheState {
    pub n_past: usize,
    pub from: usize,
    conv: Vec<Vec<f32>>,
    /// Per attention layer: (K rows, V rows).
    kv: Vec<(Vec<f32>, Vec<f32>)>,
}

impl CacheState {
    /// Host memory held by this copy.
    pub fn bytes(&self) -> usize {
        let conv: usize = self.conv.iter().map(Vec::len).sum();
        let kv: usize = self.kv.iter().map(|(k, v)| k.len() + v.len()).sum();
        (conv + kv) * 4
    }

    /// Serializes to little-endian bytes (for saved sessions).
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        let put = |out: &mut Vec<u8>, v: u64| out.extend_from_slice(&v.to_le_bytes());
        put(&mut out, self.n_past as u64);
        put(&mut out, self.from as u64);
        let mut arrays: Vec<&Vec<f32>> = self.conv.iter().collect();
        arrays.extend(self.kv.iter().flat_map(|(k, v)| [k, v]));
        put(&mut out, self.conv.len() as u64);
        put(&mut out, self.kv.len() as u64);
        for a in arrays {
            put(&mut out, a.len() as u64);
            out.extend(a.iter().flat_map(|x| x.to_le_bytes()));
        }
        out
    }

    /// Parses [`CacheState::to_bytes`] output; malformed input is an error, never a panic.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self> {
        let bad = || Error::InvalidArgument("corrupt cache state".into());
        let mut pos = 0usize;
        let u64_at = |pos: &mut usize| -> Result<u64> {
            let b = bytes.get(*pos..*pos + 8).ok_or_else(bad)?;
            *pos += 8;
            Ok(u64::from_le_bytes(b.try_into().expect("8 bytes")))
        };
        let n_past = u64_at(&mut pos)? as usize;
        let from = u64_at(&mut pos)? as usize;
        let n_conv = u64_at(&mut pos)? as usize;
        let n_kv = u64_at(&mut pos)? as usize;
        if n_conv > 4096 || n_kv > 4096 || from > n_past {
            return Err(bad());
        }
        let mut arrays = Vec::new();
        for _ in 0..n_conv + 2 * n_kv {
            let len = u64_at(&mut pos)? as usize;
            let end = len
                .checked_mul(4)
                .and_then(|b| b.checked_add(pos))
                .filter(|&e| e <= bytes.len())
                .ok_or_else(bad)?;
            arrays.push(
                bytes[pos..end]
                    .chunks_exact(4)
                    .map(|c| f32::from_le_bytes(c.try_into().expect("4 bytes")))
                    .collect::<Vec<f32>>(),
            );
            pos = end;
        }
        let kv_arrays = arrays.split_off(n_conv);
        let mut it = kv_arrays.into_iter();
        let kv = (0..n_kv)
            .map(|_| (it.next().unwrap_or_default(), it.next().unwrap_or_default()))
            .collect();
        Ok(CacheState {
            n_past,
            from,
            conv: arrays,
            kv,
        })
    }
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
    /// Copies the conv states and the KV rows `from..n_past` to the host.
    fn save(&self, from: usize) -> Result<CacheState>;
    /// Restores a saved state. KV rows before `state.from` must still hold what they held when
    /// it was saved (the caller guarantees it: they belong to the shared token prefix).
    fn load(&mut self, state: &CacheState) -> Result<()>;
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

    fn save(&self, from: usize) -> Result<CacheState> {
        let be = &self.model.backend;
        let n_past = self.state.n_past;
        if from > n_past {
            return Err(Error::InvalidArgument(format!(
                "save from {from} beyond {n_past} cached tokens"
            )));
        }
        let conv = self
            .state
            .conv_states()
            .map(|t| be.read_rows(t, 0, self.model.config.l_cache - 1))
            .collect::<Result<_>>()?;
        let kv = self
            .state
            .kv_caches()
            .map(|(k, v)| {
                Ok((
                    be.read_rows(k, from, n_past - from)?,
                    be.read_rows(v, from, n_past - from)?,
                ))
            })
            .collect::<Result<_>>()?;
        Ok(CacheState {
            n_past,
            from,
            conv,
            kv,
        })
    }

    fn load(&mut self, st: &CacheState) -> Result<()> {
        let c = &self.model.config;
        let conv_len = (c.l_cache - 1) * c.n_embd;
        let kv_widths: Vec<usize> = (0..c.n_layer)
            .filter(|&il| c.is_attention(il))
            .map(|il| c.n_head_kv[il] * c.head_dim)
            .collect();
        let rows = st.n_past - st.from;
        let mismatch = st.conv.len() != self.state.conv_states().count()
            || st.conv.iter().any(|v| v.len() != conv_len)
            || st.kv.len() != kv_widths.len()
            || st
                .kv
                .iter()
                .zip(&kv_widths)
                .any(|((k, v), w)| k.len() != rows * w || v.len() != rows * w)
            || st.n_past > self.state.capacity
            || st.from > self.state.n_past;
        if mismatch {
            return Err(Error::InvalidArgument(
                "cache state does not fit this model or context".into(),
            ));
        }
        let be = &self.model.backend;
        for (t, data) in self.state.conv_states_mut().zip(&st.conv) {
            be.write_rows(t, 0, data)?;
        }
        for ((k, v), (kd, vd)) in self.state.kv_caches_mut().zip(&st.kv) {
            be.write_rows(k, st.from, kd)?;
            be.write_rows(v, st.from, vd)?;
        }
        self.state.n_past = st.n_past;
        Ok(())
    }
}
