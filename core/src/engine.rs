//! The engine: loads a model file onto a backend and hands out sequences (per-conversation state).
//!
//! Model code is generic over the backend; the engine erases the backend type behind
//! [`Sequence`] so the public API (and the FFI) has no type parameters.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crate::backend::Backend;
use crate::backend::cpu::CpuBackend;
use crate::backend::gpu::{GpuBackend, GpuOptions};
use crate::cancel::CancelToken;
use crate::chat::ChatTemplate;
use crate::constrain::TokenIndex;
use crate::error::{Error, ErrorKind, Result};
use crate::gguf::GgufFile;
use crate::memory::Footprint;
pub use crate::models::lfm2::Logits;
use crate::models::lfm2::{Config, Model, State};
use crate::tokenizer::Tokenizer;

/// Which compute backend to run on.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum BackendKind {
    /// The GPU if an adapter exists and passes the numerical self-test, else the CPU.
    #[default]
    Auto,
    /// The GPU (after its self-test), or an error.
    Gpu,
    /// The CPU backend.
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
    /// Which backend to load the weights on (default `Auto`).
    pub backend: BackendKind,
    /// Context length the memory-fit check plans for (sessions may ask for less).
    pub context_length: usize,
    /// Bytes the engine may use; `None` = the memory the OS reports available (when it does).
    pub memory_budget: Option<u64>,
    /// A directory (the app's cache directory) where GPU failures are remembered per adapter
    /// and driver, so [`BackendKind::Auto`] picks the CPU at once on a GPU that failed before
    /// (see [`crate::forget_gpu_failures`]). `None`: nothing is remembered.
    pub gpu_failure_dir: Option<PathBuf>,
    /// Lets `Auto` take a software adapter (lavapipe, SwiftShader), which it otherwise passes
    /// over as slower than the CPU backend: for tests of the `Auto` path on machines without a
    /// GPU. Default `false`.
    pub accept_software_gpu: bool,
}

impl Default for EngineOptions {
    fn default() -> Self {
        EngineOptions {
            backend: BackendKind::Auto,
            context_length: crate::memory::DEFAULT_CONTEXT as usize,
            memory_budget: None,
            gpu_failure_dir: None,
            accept_software_gpu: false,
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

/// Estimated footprint of a model file at a context length on the CPU backend (f32 KV,
/// weights as stored; same estimator as the catalogue and the engine's fit checks).
pub fn footprint(file: &GgufFile, config: &Config, context_length: usize) -> Footprint {
    let weights: u64 = file.tensors().iter().map(|t| t.n_bytes).sum();
    plan(
        config,
        weights,
        context_length,
        crate::memory::DEFAULT_SESSION_BATCH as usize,
        4,
    )
}

fn plan(config: &Config, weights: u64, context: usize, batch: usize, kv_elem: usize) -> Footprint {
    let ctx = context.min(config.context_length).min(u32::MAX as usize) as u32;
    let batch = batch.min(u32::MAX as usize) as u32;
    crate::memory::estimate(&config.shape(), weights, ctx, batch, kv_elem as u64)
}

/// Memory the engine may still hand out: the caller's budget, else what the OS reports free.
fn memory_left(budget: Option<u64>, in_use: u64) -> Option<u64> {
    match budget {
        Some(b) => Some(b.saturating_sub(in_use)),
        None => available_memory(),
    }
}

fn refuse_unless_fits(footprint: Footprint, available: Option<u64>) -> Result<()> {
    match available {
        Some(available) if footprint.total_bytes > available => Err(Error::InsufficientMemory {
            footprint,
            available,
        }),
        _ => Ok(()),
    }
}

/// `MemAvailable` on Linux and Android; `None` where the OS does not say.
pub fn available_memory() -> Option<u64> {
    if !cfg!(any(target_os = "linux", target_os = "android")) {
        return None;
    }
    let info = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = info.lines().find(|l| l.starts_with("MemAvailable:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

/// What an engine load is doing, for progress reports.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum LoadPhase {
    /// Opening and validating the GGUF file.
    Reading,
    /// Building the tokenizer and the chat template.
    Tokenizer,
    /// Opening the GPU and checking its kernels against the CPU reference.
    SelfTest,
    /// Making the weights available to the backend (uploading them to the GPU).
    Weights,
    /// Compiling the GPU kernels the model needs.
    WarmUp,
    /// Loaded.
    Ready,
}

/// A progress report of [`Engine::load_with`]: the phase and the fraction of the whole load
/// done (0 to 1, never decreasing).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct LoadProgress {
    /// The step the load is in.
    pub phase: LoadPhase,
    /// Overall progress, 0 to 1, never decreasing.
    pub fraction: f32,
}

/// Reports progress and checks for a cancel between steps of a load.
struct LoadObserver<'a> {
    progress: &'a dyn Fn(LoadProgress),
    cancel: &'a CancelToken,
}

impl LoadObserver<'_> {
    fn report(&self, phase: LoadPhase, fraction: f32) -> Result<()> {
        self.cancel.check()?;
        (self.progress)(LoadProgress { phase, fraction });
        Ok(())
    }
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
    /// The backend in use: `Cpu` or `Gpu`, never `Auto`.
    backend: BackendKind,
    load_time: Duration,
    /// Bytes of the weights on the backend and of every live session's caches and scratch.
    weights_bytes: u64,
    reserved: Arc<AtomicU64>,
    /// Where a GPU fault of this engine is remembered: (directory, device key).
    gpu_record: Option<(PathBuf, String)>,
    /// The file and options it was loaded with, for [`Engine::reload`].
    path: PathBuf,
    options: EngineOptions,
    /// The GPU backend when the model runs on it (test hooks: fault injection, device loss).
    gpu: Option<GpuBackend>,
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
        Self::load_with(path, options, &|_| {}, &CancelToken::new())
    }

    /// [`Engine::load`] with progress reports and a cancel token, checked between steps
    /// (a cancelled load returns [`Error::Cancelled`] and frees everything it made).
    pub fn load_with(
        path: impl AsRef<Path>,
        options: EngineOptions,
        progress: &dyn Fn(LoadProgress),
        cancel: &CancelToken,
    ) -> Result<Engine> {
        let obs = LoadObserver { progress, cancel };
        let start = Instant::now();
        let path = path.as_ref();
        obs.report(LoadPhase::Reading, 0.0)?;
        let file = Arc::new(GgufFile::open(path)?);
        let config = Config::from_gguf(&file)?;
        let fp = footprint(&file, &config, options.context_length);
        refuse_unless_fits(fp, memory_left(options.memory_budget, 0))?;
        obs.report(LoadPhase::Tokenizer, 0.02)?;
        let tokenizer = Arc::new(Tokenizer::for_model(path)?);
        let template = Arc::new(ChatTemplate::from_gguf(&file)?);
        let vocab = config.vocab;
        if tokenizer.vocab_size() > vocab {
            return Err(Error::Tokenizer(format!(
                "tokenizer has {} tokens but the model's embedding only {vocab}",
                tokenizer.vocab_size()
            )));
        }
        let loaded = load_on_backend(&file, &options, &obs)?;
        let (model, backend_reason, backend) = (loaded.model, loaded.why, loaded.kind);
        obs.report(LoadPhase::Ready, 1.0)?;
        Ok(Engine {
            weights_bytes: model.weights_bytes(&file),
            model,
            file,
            tokenizer,
            template,
            token_index: Default::default(),
            backend_reason,
            backend,
            load_time: start.elapsed(),
            reserved: Default::default(),
            gpu_record: options.gpu_failure_dir.clone().zip(loaded.device),
            path: path.to_path_buf(),
            gpu: loaded.gpu,
            options,
        })
    }

    /// Loads the same file again on `backend` with the same options — after a
    /// [`ErrorKind::GpuFault`], `reload(BackendKind::Cpu)` continues on the CPU. Sessions move
    /// with [`crate::session::Session::move_to`] (or a save and a restore).
    pub fn reload(&self, backend: BackendKind) -> Result<Engine> {
        let options = EngineOptions {
            backend,
            ..self.options.clone()
        };
        Engine::load(&self.path, options)
    }

    /// The GPU backend this engine runs on (`None` on the CPU): tests inject faults and
    /// device loss through it.
    #[doc(hidden)]
    pub fn gpu_backend(&self) -> Option<&GpuBackend> {
        self.gpu.as_ref()
    }

    /// Remembers a GPU fault of a turn (see [`EngineOptions::gpu_failure_dir`]) so the next
    /// `Auto` load on this device picks the CPU. Other errors are not the device's fault.
    pub(crate) fn note_failure(&self, e: &Error) {
        if let (Some((dir, device)), ErrorKind::GpuFault) = (&self.gpu_record, e.kind()) {
            crate::gpu_record::remember(dir, device, &e.to_string());
        }
    }

    /// The footprint of a session of `context` tokens run in `batch`-token chunks on this
    /// engine's backend (its KV caches, conv states and scratch; `weights_bytes` is 0).
    pub fn session_footprint(&self, context: usize, batch: usize) -> Footprint {
        plan(self.config(), 0, context, batch, self.model.kv_elem_bytes())
    }

    /// Books a session's memory, refusing with [`Error::InsufficientMemory`] what does not
    /// fit next to the weights and the live sessions.
    pub(crate) fn reserve_session(&self, context: usize, batch: usize) -> Result<Reservation> {
        let fp = self.session_footprint(context, batch);
        let in_use = self.weights_bytes + self.reserved.load(Ordering::SeqCst);
        refuse_unless_fits(fp, memory_left(self.options.memory_budget, in_use))?;
        self.reserved.fetch_add(fp.total_bytes, Ordering::SeqCst);
        Ok(Reservation {
            bytes: fp.total_bytes,
            pool: self.reserved.clone(),
        })
    }

    /// The model's hyper-parameters as read from the file.
    pub fn config(&self) -> &Config {
        self.model.config()
    }

    /// The backend in use: [`BackendKind::Cpu`] or [`BackendKind::Gpu`].
    pub fn backend(&self) -> BackendKind {
        self.backend
    }

    /// The backend in use and why it was chosen.
    pub fn backend_description(&self) -> String {
        format!("{} ({})", self.model.backend_name(), self.backend_reason)
    }

    /// How long [`Engine::load`] took.
    pub fn load_time(&self) -> Duration {
        self.load_time
    }

    /// The model's tokenizer.
    pub fn tokenizer(&self) -> &Arc<Tokenizer> {
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

/// A model on its backend, with why that backend and (on the GPU) the device's key.
struct Loaded {
    model: Arc<dyn DynModel>,
    why: String,
    kind: BackendKind,
    device: Option<String>,
    gpu: Option<GpuBackend>,
}

/// Loads the weights on the requested backend; `Auto` takes the GPU only when an adapter
/// exists, has not failed before (per `gpu_failure_dir`) and passes the numerical self-test
/// against the CPU reference.
fn load_on_backend(
    file: &Arc<GgufFile>,
    options: &EngineOptions,
    obs: &LoadObserver<'_>,
) -> Result<Loaded> {
    match options.backend {
        BackendKind::Cpu => load_on_cpu(file, obs, "requested".into()),
        BackendKind::Gpu => {
            obs.report(LoadPhase::SelfTest, 0.05)?;
            let gpu = open_gpu(options)?;
            self_test(&gpu, file)?;
            let device = gpu_device_key(&gpu);
            load_on_gpu(file, gpu, device, obs, "requested; self-test passed")
        }
        BackendKind::Auto => load_auto(file, options, obs),
    }
}

fn load_on_cpu(file: &Arc<GgufFile>, obs: &LoadObserver<'_>, why: String) -> Result<Loaded> {
    let model = load_model(file, CpuBackend::quantized(), obs)?;
    Ok(Loaded {
        model: Arc::new(model),
        why,
        kind: BackendKind::Cpu,
        device: None,
        gpu: None,
    })
}

fn load_on_gpu(
    file: &Arc<GgufFile>,
    gpu: GpuBackend,
    device: String,
    obs: &LoadObserver<'_>,
    why: &str,
) -> Result<Loaded> {
    let model = load_model(file, gpu.clone(), obs)?;
    obs.report(LoadPhase::WarmUp, 0.95)?;
    gpu.warm_up(file)?;
    Ok(Loaded {
        model: Arc::new(model),
        why: why.into(),
        kind: BackendKind::Gpu,
        device: Some(device),
        gpu: Some(gpu),
    })
}

fn gpu_device_key(gpu: &GpuBackend) -> String {
    let c = gpu.caps();
    crate::gpu_record::device_key(&c.adapter, &c.backend, &c.driver)
}

fn load_auto(
    file: &Arc<GgufFile>,
    options: &EngineOptions,
    obs: &LoadObserver<'_>,
) -> Result<Loaded> {
    obs.report(LoadPhase::SelfTest, 0.05)?;
    let gpu = match open_gpu(options) {
        Ok(gpu) => gpu,
        Err(e) => return load_on_cpu(file, obs, format!("{e}")),
    };
    // A software rasterizer (lavapipe, SwiftShader) is far slower than the CPU backend.
    if gpu.caps().device_type == "Cpu" && !options.accept_software_gpu {
        let why = format!(
            "the only GPU adapter is a CPU emulation ({})",
            gpu.caps().adapter
        );
        return load_on_cpu(file, obs, why);
    }
    let device = gpu_device_key(&gpu);
    let dir = options.gpu_failure_dir.as_deref();
    if let Some(reason) = dir.and_then(|d| crate::gpu_record::lookup(d, &device)) {
        return load_on_cpu(file, obs, format!("{device} failed before: {reason}"));
    }
    let remember = |why: &str| {
        if let Some(d) = dir {
            crate::gpu_record::remember(d, &device, why);
        }
    };
    if let Err(e) = self_test(&gpu, file) {
        remember(&e.to_string());
        return load_on_cpu(file, obs, format!("{e}"));
    }
    match load_on_gpu(file, gpu, device.clone(), obs, "GPU passed its self-test") {
        Ok(loaded) => Ok(loaded),
        Err(Error::Cancelled) => Err(Error::Cancelled),
        Err(e) => {
            remember(&e.to_string());
            load_on_cpu(file, obs, format!("GPU could not hold the model: {e}"))
        }
    }
}

/// Loads the weights, reporting progress by bytes (phase `Weights`, fractions 0.1 to 0.95).
fn load_model<B: Backend>(
    file: &Arc<GgufFile>,
    backend: B,
    obs: &LoadObserver<'_>,
) -> Result<Model<B>> {
    let total: u64 = file.tensors().iter().map(|t| t.n_bytes).sum::<u64>().max(1);
    let done = AtomicU64::new(0);
    Model::load_observed(file, backend, &|info| {
        let d = done.fetch_add(info.n_bytes, Ordering::Relaxed) + info.n_bytes;
        // Capped: f32 rounding must not step past the warm-up's 0.95.
        let fraction = (0.1 + 0.85 * (d as f32 / total as f32)).min(0.95);
        obs.report(LoadPhase::Weights, fraction)
    })
}

fn open_gpu(options: &EngineOptions) -> Result<GpuBackend> {
    GpuBackend::new(GpuOptions {
        memory_budget: options.memory_budget,
        ..Default::default()
    })
}

/// Checks the GPU's kernels against the CPU reference (broken mobile drivers produce
/// gibberish; catch it before the user does).
fn self_test(gpu: &GpuBackend, file: &GgufFile) -> Result<()> {
    crate::selftest::run(gpu, Some(file))
        .map_err(|e| Error::GpuUnavailable(format!("self-test failed: {e}")))
}

/// A session's share of the engine's memory budget, given back when the session is dropped.
pub(crate) struct Reservation {
    bytes: u64,
    pool: Arc<AtomicU64>,
}

impl Drop for Reservation {
    fn drop(&mut self) {
        self.pool.fetch_sub(self.bytes, Ordering::SeqCst);
    }
}

/// Backend-erased model.
trait DynModel: Send + Sync {
    fn config(&self) -> &Config;
    fn backend_name(&self) -> String;
    fn kv_elem_bytes(&self) -> usize;
    fn weights_bytes(&self, file: &GgufFile) -> u64;
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
    fn kv_elem_bytes(&self) -> usize {
        self.backend.kv_elem_bytes()
    }
    fn weights_bytes(&self, file: &GgufFile) -> u64 {
        file.tensors()
            .iter()
            .map(|t| self.backend.weight_bytes(t))
            .sum()
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
    /// Tokens the state covers.
    pub n_past: usize,
    /// First position the state covers (0 for a full state; later for a delta since a checkpoint).
    pub from: usize,
    pub(crate) conv: Vec<Vec<f32>>,
    /// Per attention layer: (K rows, V rows).
    pub(crate) kv: Vec<(Vec<f32>, Vec<f32>)>,
}

impl CacheState {
    /// Host memory held by this copy.
    pub fn bytes(&self) -> usize {
        let conv: usize = self.conv.iter().map(Vec::len).sum();
        let kv: usize = self.kv.iter().map(|(k, v)| k.len() + v.len()).sum();
        (conv + kv) * 4
    }
}

/// One sequence's state on the backend: KV caches, conv states, activation scratch.
pub trait Sequence: Send {
    /// Tokens in the caches.
    fn n_past(&self) -> usize;
    /// Context length.
    fn capacity(&self) -> usize;
    /// Runs `tokens` after the cached ones (in chunks of the batch size) and returns the last
    /// token's logits, every token's with [`Logits::All`], or none with [`Logits::None`].
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
        let chunks = tokens.chunks(self.state.batch);
        let last = chunks.len() - 1;
        for (i, chunk) in chunks.enumerate() {
            // Last-token logits come from the final chunk only: the others skip the LM head.
            let chunk_mode = match mode {
                Logits::Last if i < last => Logits::None,
                m => m,
            };
            let logits = self.model.forward(&mut self.state, chunk, chunk_mode)?;
            out.extend_from_slice(&logits);
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
            return Err(Error::corrupt(
                "cache state",
                "it does not fit this model or context",
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
