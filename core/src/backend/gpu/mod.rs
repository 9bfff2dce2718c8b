//! The wgpu backend: every op of [`Backend`] as WGSL compute kernels (`kernels/*.wgsl`), so
//! `models/lfm2.rs` runs unchanged on Metal (iOS), Vulkan (Android) and lavapipe (CI).
//!
//! - Weights are uploaded once, streamed from the memory map in bounded pieces, and stay
//!   quantized; tensors larger than the binding limit are split by rows (expert tensors by whole
//!   experts) and every kernel runs once per chunk. KV caches beyond one binding (long contexts)
//!   are segments of rows; attention runs per segment and merges the partial softmax states.
//! - RoPE writes k straight into the KV cache (`k_norm_rope_store`).
//! - A forward pass is one compute pass in one command buffer, submitted once by `read`; the only
//!   readback is the requested logits rows. Per-dispatch parameters go to one arena written once
//!   per submit; bind groups are cached, so the steady-state decode loop creates no buffer and
//!   no bind group ([`GpuBackend::resource_creations`]).
//! - [`DeviceCaps`] picks the kernel variants (f16 or f32 products, subgroup or workgroup-memory
//!   reductions, workgroup size); `HEARTH_GPU_NO_F16` / `HEARTH_GPU_NO_SUBGROUPS` force fallbacks.

pub mod caps;
mod context;
pub mod kernels;
mod layout;
pub mod ops;
mod plan;
pub mod tuning;

use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};

use crate::backend::{AttnShape, Backend, MoeShape, MoeWeights, Rope};
use crate::error::{Error, Result};
use crate::gguf::{GgufFile, TensorInfo};

pub use caps::DeviceCaps;
use context::Ctx;
pub use context::GpuPass;
pub use layout::{GpuIds, GpuTensor, GpuWeight};
pub use ops::params_fields;
pub use tuning::Tuning;

/// How to open the GPU.
#[derive(Clone, Debug, Default)]
pub struct GpuOptions {
    /// Use f32 products even if the adapter has `shader-f16` (also `HEARTH_GPU_NO_F16=1`).
    pub no_f16: bool,
    /// Use workgroup-memory reductions even if subgroups exist (also `HEARTH_GPU_NO_SUBGROUPS=1`).
    pub no_subgroups: bool,
    /// Lower the binding/buffer limit (tests force tensor splitting with it).
    pub max_binding: Option<u64>,
    /// Memory the model may use; `None`: available system memory on unified-memory and CPU
    /// adapters, unchecked on discrete GPUs (wgpu cannot query VRAM).
    pub memory_budget: Option<u64>,
}

fn env_flag(name: &str) -> bool {
    std::env::var(name).is_ok_and(|v| !v.is_empty() && v != "0")
}

/// The GPU backend (cheap to clone; clones share the device).
#[derive(Clone)]
pub struct GpuBackend {
    ctx: Arc<Ctx>,
    budget: Option<u64>,
    /// A [`Fault`] applied to every [`Backend::read`] (0: none); shared by clones.
    fault: Arc<AtomicU8>,
}

/// Corruptions of the logits readbacks, so tests can prove the self-test rejects broken
/// drivers' typical outputs.
#[doc(hidden)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    Nan = 1,
    Inf,
    Zero,
    /// Finite, non-constant values unrelated to the input.
    Garbage,
}

impl Fault {
    const ALL: [Fault; 4] = [Fault::Nan, Fault::Inf, Fault::Zero, Fault::Garbage];

    fn apply(self, v: &mut [f32]) {
        let mut s = 0x9E37_79B9u32;
        for x in v {
            *x = match self {
                Fault::Nan => f32::NAN,
                Fault::Inf => f32::INFINITY,
                Fault::Zero => 0.0,
                Fault::Garbage => {
                    s = s.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
                    (s >> 8) as f32 / (1u32 << 21) as f32 - 4.0
                }
            };
        }
    }
}

impl GpuBackend {
    /// Opens the default high-performance adapter. Errors with [`Error::GpuUnavailable`] when
    /// there is none (no driver, headless CI without lavapipe).
    pub fn new(opts: GpuOptions) -> Result<Self> {
        let no_f16 = opts.no_f16 || env_flag("HEARTH_GPU_NO_F16");
        let no_subgroups = opts.no_subgroups || env_flag("HEARTH_GPU_NO_SUBGROUPS");
        let mut desc = wgpu::InstanceDescriptor::new_without_display_handle();
        desc.backends = wgpu::Backends::PRIMARY;
        let instance = wgpu::Instance::new(desc);
        let adapter = pollster::block_on(instance.request_adapter(&wgpu::RequestAdapterOptions {
            power_preference: wgpu::PowerPreference::HighPerformance,
            force_fallback_adapter: false,
            compatible_surface: None,
            apply_limit_buckets: false,
        }))
        .map_err(|e| Error::GpuUnavailable(e.to_string()))?;
        let info = adapter.get_info();
        let mut features = wgpu::Features::empty();
        if !no_f16 {
            features |= adapter.features() & wgpu::Features::SHADER_F16;
        }
        if !no_subgroups {
            features |= adapter.features() & wgpu::Features::SUBGROUP;
        }
        let limits = adapter.limits();
        let (device, queue) = pollster::block_on(adapter.request_device(&wgpu::DeviceDescriptor {
            label: Some("hearth"),
            required_features: features,
            required_limits: limits.clone(),
            experimental_features: wgpu::ExperimentalFeatures::disabled(),
            memory_hints: wgpu::MemoryHints::Performance,
            trace: wgpu::Trace::Off,
        }))
        .map_err(|e| Error::GpuUnavailable(format!("{}: {e}", info.name)))?;
        let caps = DeviceCaps::from_adapter(
            &info,
            adapter.features()
                & device
                    .features()
                    .union(wgpu::Features::SHADER_F16 | wgpu::Features::SUBGROUP),
            &limits,
            no_f16,
            no_subgroups,
            opts.max_binding,
        );
        log::info!("gpu: {caps}");
        let budget = opts.memory_budget.or_else(|| {
            matches!(
                info.device_type,
                wgpu::DeviceType::Cpu | wgpu::DeviceType::IntegratedGpu
            )
            .then(available_memory)
            .flatten()
        });
        Ok(GpuBackend {
            ctx: Ctx::new(device, queue, caps)?,
            budget,
            fault: Arc::default(),
        })
    }

    pub fn caps(&self) -> &DeviceCaps {
        &self.ctx.caps
    }

    /// The thresholds and tile sizes chosen for this device.
    pub fn tuning(&self) -> &Tuning {
        &self.ctx.tuning
    }

    /// Buffers and bind groups created so far (the decode loop must not add any).
    pub fn resource_creations(&self) -> u64 {
        self.ctx.creations()
    }

    /// Compute pipelines compiled so far (all at load once [`GpuBackend::warm_up`] ran).
    pub fn pipelines_built(&self) -> usize {
        self.ctx.pipelines_built()
    }

    /// Command buffers submitted so far (one per forward pass).
    pub fn submissions(&self) -> u64 {
        self.ctx.submits()
    }

    /// Destroys the device as a driver reset would (tests of the device-lost path): every later
    /// call returns an error.
    #[doc(hidden)]
    pub fn simulate_device_loss(&self) {
        self.ctx.device.destroy();
    }

    /// Corrupts every later logits readback ([`Backend::read`]) with `fault` (`None`: stop);
    /// tests of the self-test only.
    #[doc(hidden)]
    pub fn inject_fault(&self, fault: Option<Fault>) {
        self.fault
            .store(fault.map_or(0, |f| f as u8), Ordering::Relaxed);
    }

    /// Compiles every kernel the model in `file` uses, so the first token compiles nothing
    /// (the engine calls it at load; a phone driver takes a noticeable time per pipeline).
    pub fn warm_up(&self, file: &GgufFile) -> Result<()> {
        self.ctx.warm(plan::kernels_for(file))
    }

    /// Memory the model may use (from [`GpuOptions::memory_budget`] or the system's available
    /// memory on unified-memory adapters); `None` where unknown.
    pub fn memory_budget(&self) -> Option<u64> {
        self.budget
    }
}

/// MemAvailable from /proc/meminfo (Linux/Android), else unknown.
fn available_memory() -> Option<u64> {
    let s = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = s.lines().find(|l| l.starts_with("MemAvailable:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

impl Backend for GpuBackend {
    type Weight = GpuWeight;
    type Tensor = GpuTensor;
    type Ids = GpuIds;
    type Pass = GpuPass;

    fn name(&self) -> String {
        let c = &self.ctx.caps;
        format!(
            "gpu ({}, {}{}{})",
            c.adapter,
            c.backend,
            if c.f16 { ", f16" } else { "" },
            if c.subgroups { ", subgroups" } else { "" }
        )
    }

    /// f16 where the adapter has `shader-f16`.
    fn kv_elem_bytes(&self) -> usize {
        if self.ctx.caps.f16 { 2 } else { 4 }
    }

    /// Dense-at-upload tensors ([`plan::needs_dense`]) become F32.
    fn weight_bytes(&self, info: &TensorInfo) -> u64 {
        if plan::needs_dense(info) {
            info.n_elements() * 4
        } else {
            info.n_bytes
        }
    }

    fn upload(&self, file: &Arc<GgufFile>, info: &TensorInfo) -> Result<GpuWeight> {
        layout::upload(&self.ctx, file, info)
    }

    fn tensor(&self, rows: usize, cols: usize) -> Result<GpuTensor> {
        layout::tensor(&self.ctx, rows, cols)
    }

    fn cache(&self, rows: usize, cols: usize) -> Result<GpuTensor> {
        layout::cache(&self.ctx, rows, cols)
    }

    fn ids(&self, rows: usize, k: usize, n_expert: usize) -> Result<GpuIds> {
        layout::ids(&self.ctx, rows, k, n_expert)
    }

    fn begin(&self) -> GpuPass {
        self.ctx.begin()
    }

    fn read(&self, pass: GpuPass, t: &GpuTensor, rows: usize) -> Result<Vec<f32>> {
        let bytes = (rows.min(t.rows) * t.cols * 4) as u64;
        let mut out = self.ctx.submit(pass, Some((t.buf(), 0, bytes)))?;
        let fault = self.fault.load(Ordering::Relaxed);
        if let Some(f) = Fault::ALL.into_iter().find(|&f| f as u8 == fault) {
            f.apply(&mut out);
        }
        Ok(out)
    }

    fn read_rows(&self, t: &GpuTensor, start: usize, n: usize) -> Result<Vec<f32>> {
        layout::read_rows(&self.ctx, t, start, n)
    }

    /// Submits what the pass holds, reads `t` back, and continues in a fresh pass (tests only:
    /// the model taps only while a sink is installed).
    fn tap(&self, pass: &mut GpuPass, t: &GpuTensor, n: usize) -> Result<Vec<f32>> {
        let done = std::mem::replace(pass, self.ctx.begin());
        let bytes = (n.min(t.rows) * t.cols * 4) as u64;
        self.ctx.submit(done, Some((t.buf(), 0, bytes)))
    }

    fn tap_ids(&self, pass: &mut GpuPass, ids: &GpuIds, n: usize, k: usize) -> Result<Vec<u32>> {
        let done = std::mem::replace(pass, self.ctx.begin());
        let bytes = (n.min(ids.rows) * k * 4) as u64;
        self.ctx
            .submit_with(done, Some((&*ids.buf, 0, bytes)), |b| {
                bytemuck::cast_slice::<u8, u32>(b).to_vec()
            })
    }

    fn write_rows(&self, t: &mut GpuTensor, start: usize, data: &[f32]) -> Result<()> {
        layout::write_rows(&self.ctx, t, start, data)
    }

    fn finish(&self, pass: GpuPass) -> Result<()> {
        self.ctx.submit(pass, None).map(|_| ())
    }

    fn embed(&self, pass: &mut GpuPass, table: &GpuWeight, tokens: &[u32], out: &mut GpuTensor) {
        ops::matmul::embed(&self.ctx, pass, table, tokens, out);
    }

    fn rms_norm(
        &self,
        pass: &mut GpuPass,
        x: &GpuTensor,
        w: &GpuWeight,
        eps: f32,
        n: usize,
        out: &mut GpuTensor,
    ) {
        ops::norm::rms_norm(&self.ctx, pass, x, w, eps, n, out);
    }

    fn matmul(
        &self,
        pass: &mut GpuPass,
        w: &GpuWeight,
        x: &GpuTensor,
        n: usize,
        out: &mut GpuTensor,
    ) {
        ops::matmul::matmul(&self.ctx, pass, w, x, n, out);
    }

    fn add(&self, pass: &mut GpuPass, acc: &mut GpuTensor, x: &GpuTensor, n: usize) {
        ops::elementwise::add(&self.ctx, pass, acc, x, n);
    }

    fn copy_row(&self, pass: &mut GpuPass, src: &GpuTensor, src_row: usize, dst: &mut GpuTensor) {
        ops::elementwise::copy_row(&self.ctx, pass, src, src_row, dst);
    }

    fn copy(&self, pass: &mut GpuPass, src: &GpuTensor, dst: &mut GpuTensor) {
        ops::elementwise::copy(&self.ctx, pass, src, dst);
    }

    fn zero(&self, pass: &mut GpuPass, t: &mut GpuTensor) {
        ops::elementwise::zero(&self.ctx, pass, t);
    }

    fn short_conv(
        &self,
        pass: &mut GpuPass,
        bcx: &GpuTensor,
        kernel: &GpuWeight,
        state: &mut GpuTensor,
        n: usize,
        out: &mut GpuTensor,
    ) {
        ops::elementwise::short_conv(&self.ctx, pass, bcx, kernel, state, n, out);
    }

    fn qk_norm_rope_store(
        &self,
        pass: &mut GpuPass,
        q: &mut GpuTensor,
        k: &GpuTensor,
        v: &GpuTensor,
        (q_norm, k_norm): (&GpuWeight, &GpuWeight),
        k_cache: &mut GpuTensor,
        v_cache: &mut GpuTensor,
        rope: Rope,
        pos0: usize,
        n: usize,
    ) {
        let qkv = ops::norm::QkvIn {
            q,
            k,
            v,
            q_norm,
            k_norm,
        };
        let caches = (&*k_cache, &*v_cache);
        ops::norm::qk_norm_rope_store(&self.ctx, pass, qkv, caches, rope, pos0, n);
    }

    fn attention(
        &self,
        pass: &mut GpuPass,
        q: &GpuTensor,
        k_cache: &GpuTensor,
        v_cache: &GpuTensor,
        shape: AttnShape,
        pos0: usize,
        n: usize,
        out: &mut GpuTensor,
    ) {
        let io = ops::attention::AttnIo {
            q,
            k_cache,
            v_cache,
            out,
        };
        ops::attention::attention(&self.ctx, pass, io, shape, pos0, n);
    }

    fn swiglu(
        &self,
        pass: &mut GpuPass,
        gate: &GpuTensor,
        up: &GpuTensor,
        n: usize,
        out: &mut GpuTensor,
    ) {
        ops::elementwise::swiglu(&self.ctx, pass, gate, up, n, out);
    }

    fn moe_route(
        &self,
        pass: &mut GpuPass,
        logits: &GpuTensor,
        bias: Option<&GpuWeight>,
        k: usize,
        n: usize,
        ids: &mut GpuIds,
        weights: &mut GpuTensor,
    ) {
        let out = ops::moe::Routing { ids, weights };
        ops::moe::route(&self.ctx, pass, logits, bias, k, n, out);
    }

    fn moe_ffn(
        &self,
        pass: &mut GpuPass,
        x: &GpuTensor,
        experts: MoeWeights<'_, GpuWeight>,
        ids: &GpuIds,
        weights: &GpuTensor,
        shape: MoeShape,
        n: usize,
        hidden: &mut GpuTensor,
        out: &mut GpuTensor,
    ) {
        let io = ops::moe::MoeIo {
            x,
            routing: ops::moe::Routing { ids, weights },
            hidden,
            out,
        };
        ops::moe::ffn(&self.ctx, pass, experts, io, shape, n);
    }
}
