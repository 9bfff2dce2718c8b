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

use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};

use crate::backend::{AttnShape, Backend, MoeShape, MoeWeights, Rope};
use crate::error::{Error, Result};
use crate::gguf::{GgufFile, TensorInfo};
use crate::quant::{self, GgmlType};

pub use caps::DeviceCaps;
pub use context::GpuPass;
use context::{Buf, Ctx, PART_FLOATS};
use kernels::Kernel;

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

/// A weight: quantized rows in one or more buffers of at most `max_binding` bytes.
pub struct GpuWeight {
    ty: GgmlType,
    /// Row length (ggml `ne[0]`).
    k: usize,
    rows: usize,
    row_bytes: usize,
    /// Rows per expert for stacked expert tensors (chunks never split an expert), else 1.
    unit: usize,
    chunks: Vec<Chunk>,
}

struct Chunk {
    buf: Arc<Buf>,
    row0: usize,
    rows: usize,
}

impl GpuWeight {
    pub fn ty(&self) -> GgmlType {
        self.ty
    }
    pub fn rows(&self) -> usize {
        self.rows
    }
    pub fn n_chunks(&self) -> usize {
        self.chunks.len()
    }
    fn n_groups(&self) -> u32 {
        self.k.div_ceil(32) as u32
    }
    /// Expert range `[e0, e1)` held by a chunk.
    fn experts(&self, c: &Chunk) -> (u32, u32) {
        (
            (c.row0 / self.unit) as u32,
            ((c.row0 + c.rows) / self.unit) as u32,
        )
    }
}

/// An f32 tensor of `rows x cols`: one buffer, or for KV caches beyond one binding, segments of
/// `seg_rows` rows (the last may be shorter).
pub struct GpuTensor {
    segs: Vec<Arc<Buf>>,
    seg_rows: usize,
    rows: usize,
    cols: usize,
    /// f16 elements (KV caches on `shader-f16` adapters), else f32.
    half: bool,
}

impl GpuTensor {
    pub fn rows(&self) -> usize {
        self.rows
    }
    pub fn cols(&self) -> usize {
        self.cols
    }
    /// Whether elements are f16 (KV caches on `shader-f16` adapters).
    pub fn is_half(&self) -> bool {
        self.half
    }
    fn row_bytes(&self) -> usize {
        self.cols * if self.half { 2 } else { 4 }
    }
    /// Buffers holding the rows (more than one only for long KV caches).
    pub fn segments(&self) -> usize {
        self.segs.len()
    }
    /// The buffer of a single-segment tensor (every op but the cache ops).
    fn buf(&self) -> &Buf {
        debug_assert_eq!(self.segs.len(), 1, "op given a segmented tensor");
        &self.segs[0]
    }
    /// Pieces of rows `start..start+n` by segment: (segment, its first row, offset in the
    /// range, rows).
    fn spans(&self, start: usize, n: usize) -> impl Iterator<Item = Span> + '_ {
        let first = start / self.seg_rows;
        let last = if n == 0 {
            first
        } else {
            (start + n).div_ceil(self.seg_rows)
        };
        (first..last).map(move |i| {
            let base = i * self.seg_rows;
            let a = start.max(base);
            let b = (start + n).min(base + self.seg_rows);
            Span {
                seg: i,
                row: a - base,
                offset: a - start,
                rows: b - a,
            }
        })
    }
}

/// Part of a row range that lies in one segment.
#[derive(Clone, Copy, Debug)]
struct Span {
    seg: usize,
    /// First row within the segment.
    row: usize,
    /// Rows of the range before this piece.
    offset: usize,
    rows: usize,
}

/// Router decisions (`rows x k` u32) followed by each expert's list of slots (`n_expert x
/// (rows + 1)`: count, then slot indices) for grouped prefill; written and read only by kernels.
pub struct GpuIds {
    buf: Arc<Buf>,
    rows: usize,
    k: usize,
    n_expert: usize,
}

impl GpuIds {
    /// Offset (in u32) of the expert lists.
    fn lists(&self) -> u32 {
        (self.rows * self.k) as u32
    }
}

/// Tokens per mat-mat tile (`TT` in matmul.wgsl).
const MATMUL_TOKENS: usize = 32;

/// `(x, y)` workgroup counts covering `n` groups with at most 65535 per dimension.
fn grid(n: usize) -> (u32, u32) {
    let n = n.max(1) as u32;
    (n.min(65535), n.div_ceil(65535))
}

/// Tensors kernels read as plain f32 (norm weights, biases, conv kernels), and the MoE router,
/// whose top-k must not flip on f16 rounding, are dequantized to F32 at upload (F32 weights are
/// exact on every path).
fn needs_dense(info: &TensorInfo) -> bool {
    info.ne.len() == 1
        || info.name.ends_with("shortconv.conv.weight")
        || info.name.ends_with("ffn_gate_inp.weight")
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
        self.ctx.warm(kernels_for(file))
    }

    /// Memory the model may use (from [`GpuOptions::memory_budget`] or the system's available
    /// memory on unified-memory adapters); `None` where unknown.
    pub fn memory_budget(&self) -> Option<u64> {
        self.budget
    }

    fn tensor_buf(&self, bytes: u64, label: &str) -> Result<Arc<Buf>> {
        if bytes > self.ctx.caps.max_binding {
            return Err(Error::GpuOutOfMemory {
                needed: bytes,
                available: self.ctx.caps.max_binding,
            });
        }
        use wgpu::BufferUsages as U;
        self.ctx
            .buffer(bytes, U::STORAGE | U::COPY_SRC | U::COPY_DST, label)
    }

    fn elementwise(&self, pass: &mut GpuPass, k: Kernel, bufs: [&Buf; 3], params: [u32; 6]) {
        let count = params[0] as usize;
        let (x, y) = grid(count.div_ceil(self.ctx.caps.workgroup_size as usize));
        self.ctx.dispatch(pass, k, &bufs, &params, [x, y, 1]);
    }

    /// MoE prefill grouped by expert: lists of each expert's slots, then tiled mat-mats over each
    /// expert's slots (its weights decoded once per tile of up to 32 slots instead of once per
    /// slot), then the weighted sum of each token's slots.
    #[allow(clippy::too_many_arguments)]
    fn moe_ffn_grouped(
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
        let (g, u, dn) = (experts.gate, experts.up, experts.down);
        let wg = self.ctx.caps.workgroup_size;
        let k = shape.n_expert_used as u32;
        let (lists, cap) = (ids.lists(), ids.rows as u32);
        let group = [n as u32 * k, shape.n_expert as u32, lists, cap];
        let groups = [(shape.n_expert as u32).div_ceil(wg), 1, 1];
        self.ctx
            .dispatch(pass, Kernel::MoeGroup, &[&ids.buf], &group, groups);
        let tiles = n.div_ceil(MATMUL_TOKENS) as u32;
        let (fx, fy) = grid(shape.n_ff.div_ceil(32));
        for (gc, uc, ga, ua, e0, e1) in expert_pairs(g, u) {
            let params = [
                g.k as u32,
                g.n_groups(),
                g.row_bytes as u32,
                u.row_bytes as u32,
                shape.n_ff as u32,
                e0,
                tiles,
                ga,
                ua,
                k,
                x.cols as u32,
                hidden.cols as u32,
                lists,
                cap,
            ];
            let bufs = [&*gc.buf, &*uc.buf, x.buf(), &*ids.buf, hidden.buf()];
            let kernel = Kernel::GateUpTiled(g.ty, u.ty);
            let groups = [fx, fy, (e1 - e0) * tiles];
            self.ctx.dispatch(pass, kernel, &bufs, &params, groups);
        }
        let d = out.cols;
        let (ox, oy) = grid(d.div_ceil(32));
        for c in &dn.chunks {
            let (e0, e1) = dn.experts(c);
            let params = [
                dn.k as u32,
                dn.n_groups(),
                dn.row_bytes as u32,
                0,
                d as u32,
                e0,
                tiles,
                e0,
                0,
                k,
                0,
                hidden.cols as u32,
                lists,
                cap,
            ];
            let bufs = [&*c.buf, &*ids.buf, hidden.buf()];
            let groups = [ox, oy, (e1 - e0) * tiles];
            self.ctx
                .dispatch(pass, Kernel::DownTiled(dn.ty), &bufs, &params, groups);
        }
        let mut params = [0u32; 16];
        params[0] = shape.n_ff as u32;
        params[4] = d as u32;
        params[9] = k;
        params[11] = hidden.cols as u32;
        params[12] = weights.cols as u32;
        params[13] = out.cols as u32;
        params[14] = n as u32;
        let (cx, cy) = grid((n * d).div_ceil(wg as usize));
        let bufs = [hidden.buf(), weights.buf(), out.buf()];
        self.ctx
            .dispatch(pass, Kernel::MoeCombine, &bufs, &params, [cx, cy, 1]);
    }

    /// out rows `[0, n)`, columns of one weight chunk at a time.
    fn matmul_chunks(
        &self,
        pass: &mut GpuPass,
        w: &GpuWeight,
        x: &GpuTensor,
        n: usize,
        out: &GpuTensor,
    ) {
        for c in &w.chunks {
            let wg = self.ctx.caps.workgroup_size as usize;
            // Mat-vec: threads per row = groups of 32 rounded up to a power of two, <= WG.
            let tpr = (w.n_groups() as usize).next_power_of_two().min(wg);
            let params = [
                w.k as u32,
                w.n_groups(),
                w.row_bytes as u32,
                c.rows as u32,
                c.row0 as u32,
                out.cols as u32,
                x.cols as u32,
                if n < 4 { tpr as u32 } else { n as u32 },
            ];
            let bufs = [&*c.buf, x.buf(), out.buf()];
            if n < 4 {
                let (gx, gy) = grid(c.rows.div_ceil(wg / tpr));
                self.ctx.dispatch(
                    pass,
                    Kernel::Matvec(w.ty),
                    &bufs,
                    &params,
                    [gx, gy, n as u32],
                );
            } else {
                let (gx, gy) = grid(c.rows.div_ceil(32));
                // Tiles of 32 rows x MATMUL_TOKENS tokens (matmul.wgsl's TR x TT).
                let gz = n.div_ceil(MATMUL_TOKENS) as u32;
                self.ctx
                    .dispatch(pass, Kernel::Matmul(w.ty), &bufs, &params, [gx, gy, gz]);
            }
        }
    }
}

/// Pairs of gate and up chunks holding common experts: (gate chunk, up chunk, first expert of
/// each chunk, the shared expert range [e0, e1)).
fn expert_pairs<'a>(
    g: &'a GpuWeight,
    u: &'a GpuWeight,
) -> impl Iterator<Item = (&'a Chunk, &'a Chunk, u32, u32, u32, u32)> {
    g.chunks.iter().flat_map(move |gc| {
        u.chunks.iter().filter_map(move |uc| {
            let (ga, gb) = g.experts(gc);
            let (ua, ub) = u.experts(uc);
            let (e0, e1) = (ga.max(ua), gb.min(ub));
            (e0 < e1).then_some((gc, uc, ga, ua, e0, e1))
        })
    })
}

/// The kernels a forward pass of the model in `file` dispatches.
fn kernels_for(file: &GgufFile) -> Vec<Kernel> {
    // Routing kernels only for MoE models (added with the router below).
    let moe_only = [Kernel::Route, Kernel::MoeGroup, Kernel::MoeCombine];
    let mut ks: Vec<Kernel> = Kernel::WEIGHTLESS
        .into_iter()
        .filter(|k| !moe_only.contains(k))
        .collect();
    let mut add = |k: Kernel| {
        if !ks.contains(&k) {
            ks.push(k);
        }
    };
    for t in file.tensors() {
        let name = t.name.as_str();
        if name.ends_with("ffn_gate_inp.weight") {
            // The router, dequantized at upload, is an F32 product.
            add(Kernel::Matvec(GgmlType::F32));
            add(Kernel::Matmul(GgmlType::F32));
            moe_only.into_iter().for_each(&mut add);
        }
        if needs_dense(t) || !kernels::WEIGHT_TYPES.contains(&t.ty) {
            continue;
        }
        if name.ends_with("ffn_gate_exps.weight") {
            let up = file.tensor_info(&name.replace("gate_exps", "up_exps"));
            if let Some(up) = up.filter(|u| kernels::WEIGHT_TYPES.contains(&u.ty)) {
                add(Kernel::GateUp(t.ty, up.ty));
                add(Kernel::GateUpTiled(t.ty, up.ty));
            }
        } else if name.ends_with("ffn_down_exps.weight") {
            add(Kernel::Down(t.ty));
            add(Kernel::DownTiled(t.ty));
        } else if !name.ends_with("ffn_up_exps.weight") {
            add(Kernel::Matvec(t.ty));
            add(Kernel::Matmul(t.ty));
            if name == "token_embd.weight" {
                add(Kernel::Embed(t.ty));
            }
        }
    }
    ks
}

/// How attention over `len` cached positions is cut into workgroups: splits of `chunk`
/// positions (never across a cache segment), merged when there is more than one, for blocks of
/// `tokens_per_block` queries whose partials fit the shared partials buffer.
struct AttnPlan {
    chunk: usize,
    n_split: usize,
    tokens_per_block: usize,
}

impl AttnPlan {
    fn new(shape: AttnShape, n: usize, len: usize, seg_rows: usize) -> AttnPlan {
        // Long-context decode: cut the sequence so enough workgroups share it.
        let chunk = if n == 1 && len > 512 {
            len.div_ceil(len.div_ceil(256).min(32))
        } else {
            len
        }
        .min(seg_rows)
        .max(1);
        let n_split: usize = (0..len.div_ceil(seg_rows))
            .map(|i| (len - i * seg_rows).min(seg_rows).div_ceil(chunk))
            .sum();
        let per_token = (shape.n_head * n_split * (shape.head_dim + 2)) as u64;
        let tokens_per_block = if n_split == 1 {
            n
        } else {
            (PART_FLOATS / per_token).min(n as u64) as usize
        };
        AttnPlan {
            chunk,
            n_split,
            tokens_per_block,
        }
    }
}

fn check_rows(t: &GpuTensor, start: usize, n: usize) -> Result<()> {
    if start.checked_add(n).is_none_or(|end| end > t.rows) {
        return Err(Error::InvalidArgument(format!(
            "rows {start}..{} outside a tensor of {} rows",
            start.saturating_add(n),
            t.rows
        )));
    }
    Ok(())
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

    /// Dense-at-upload tensors ([`needs_dense`]) become F32.
    fn weight_bytes(&self, info: &TensorInfo) -> u64 {
        if needs_dense(info) {
            info.n_elements() * 4
        } else {
            info.n_bytes
        }
    }

    fn upload(&self, file: &Arc<GgufFile>, info: &TensorInfo) -> Result<GpuWeight> {
        info.ty.require_supported(&info.name)?;
        let k = info.ne[0] as usize;
        let rows = info.n_rows() as usize;
        if needs_dense(info) {
            let mut v = vec![0f32; info.n_elements() as usize];
            quant::dequantize_row(info.ty, file.tensor_data(info), &mut v)
                .map_err(|e| Error::tensor(&info.name, format!("cannot dequantize: {e}")))?;
            let buf = self.ctx.upload(bytemuck::cast_slice(&v), &info.name)?;
            return Ok(GpuWeight {
                ty: GgmlType::F32,
                k,
                rows,
                row_bytes: k * 4,
                unit: 1,
                chunks: vec![Chunk { buf, row0: 0, rows }],
            });
        }
        let row_bytes = info.row_bytes() as usize;
        let unit = if info.ne.len() >= 3 {
            info.ne[1] as usize
        } else {
            1
        };
        let limit = self.ctx.caps.max_binding as usize;
        let per_chunk = ((limit.saturating_sub(3)) / row_bytes.max(1)) / unit * unit;
        if per_chunk == 0 {
            return Err(Error::GpuOutOfMemory {
                needed: (row_bytes * unit) as u64,
                available: limit as u64,
            });
        }
        let data = file.tensor_data(info);
        let mut chunks = Vec::new();
        let mut row0 = 0;
        while row0 < rows {
            let n = per_chunk.min(rows - row0);
            let bytes = &data[row0 * row_bytes..(row0 + n) * row_bytes];
            let buf = self.ctx.upload(bytes, &info.name)?;
            chunks.push(Chunk { buf, row0, rows: n });
            row0 += n;
        }
        Ok(GpuWeight {
            ty: info.ty,
            k,
            rows,
            row_bytes,
            unit,
            chunks,
        })
    }

    fn tensor(&self, rows: usize, cols: usize) -> Result<GpuTensor> {
        let bytes = (rows as u64)
            .checked_mul(cols as u64 * 4)
            .ok_or_else(|| Error::InvalidArgument(format!("tensor {rows}x{cols} too large")))?;
        Ok(GpuTensor {
            segs: vec![self.tensor_buf(bytes, "hearth tensor")?],
            seg_rows: rows.max(1),
            rows,
            cols,
            half: false,
        })
    }

    fn cache(&self, rows: usize, cols: usize) -> Result<GpuTensor> {
        // f16 rows must stay 4-byte aligned for buffer copies.
        let half = self.ctx.caps.f16 && cols.is_multiple_of(2);
        let row_bytes = (cols * if half { 2 } else { 4 }) as u64;
        let fit = self.ctx.caps.max_binding / row_bytes.max(1);
        if fit == 0 {
            return Err(Error::GpuOutOfMemory {
                needed: row_bytes,
                available: self.ctx.caps.max_binding,
            });
        }
        // Whole attention splits (256 positions) per segment where the limit allows.
        let seg_rows = if fit >= 1024 { fit / 256 * 256 } else { fit } as usize;
        let seg_rows = seg_rows.min(rows.max(1));
        let segs = (0..rows.div_ceil(seg_rows).max(1))
            .map(|i| {
                let n = seg_rows.min(rows - (i * seg_rows).min(rows)).max(1);
                self.tensor_buf(n as u64 * row_bytes, "hearth kv cache")
            })
            .collect::<Result<_>>()?;
        Ok(GpuTensor {
            segs,
            seg_rows,
            rows,
            cols,
            half,
        })
    }

    fn ids(&self, rows: usize, k: usize, n_expert: usize) -> Result<GpuIds> {
        let words = rows * k + n_expert * (rows + 1);
        Ok(GpuIds {
            buf: self.tensor_buf((words * 4) as u64, "hearth ids")?,
            rows,
            k,
            n_expert,
        })
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
        check_rows(t, start, n)?;
        let row = t.row_bytes() as u64;
        let mut out = Vec::with_capacity(n * t.cols);
        for sp in t.spans(start, n) {
            let pass = self.ctx.begin();
            let range = (&*t.segs[sp.seg], sp.row as u64 * row, sp.rows as u64 * row);
            self.ctx.submit_with(pass, Some(range), |bytes| {
                if t.half {
                    let values = bytemuck::cast_slice::<u8, half::f16>(bytes);
                    out.extend(values.iter().map(|h| h.to_f32()));
                } else {
                    out.extend_from_slice(bytemuck::cast_slice::<u8, f32>(bytes));
                }
            })?;
        }
        Ok(out)
    }

    fn write_rows(&self, t: &mut GpuTensor, start: usize, data: &[f32]) -> Result<()> {
        if !data.len().is_multiple_of(t.cols) {
            return Err(Error::InvalidArgument(format!(
                "{} values are not whole rows of {}",
                data.len(),
                t.cols
            )));
        }
        let n = data.len() / t.cols;
        check_rows(t, start, n)?;
        for sp in t.spans(start, n) {
            let values = &data[sp.offset * t.cols..(sp.offset + sp.rows) * t.cols];
            let bytes: Vec<u8> = if t.half {
                values
                    .iter()
                    .flat_map(|&x| half::f16::from_f32(x).to_le_bytes())
                    .collect()
            } else {
                bytemuck::cast_slice(values).to_vec()
            };
            // Queue-ordered: lands before the next submitted pass.
            let offset = (sp.row * t.row_bytes()) as u64;
            self.ctx
                .queue
                .write_buffer(&t.segs[sp.seg].buffer, offset, &bytes);
        }
        Ok(())
    }

    fn finish(&self, pass: GpuPass) -> Result<()> {
        self.ctx.submit(pass, None).map(|_| ())
    }

    fn embed(&self, pass: &mut GpuPass, table: &GpuWeight, tokens: &[u32], out: &mut GpuTensor) {
        let Some(off) = self.ctx.push_data(pass, tokens) else {
            return;
        };
        let wg = self.ctx.caps.workgroup_size;
        for c in &table.chunks {
            let params = [
                table.k as u32,
                table.n_groups(),
                table.row_bytes as u32,
                c.row0 as u32,
                c.rows as u32,
                out.cols as u32,
                (off / 4) as u32,
                tokens.len() as u32,
            ];
            self.ctx.dispatch(
                pass,
                Kernel::Embed(table.ty),
                &[&c.buf, &self.ctx.arena, out.buf()],
                &params,
                [table.n_groups().div_ceil(wg), tokens.len() as u32, 1],
            );
        }
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
        let params = [
            w.k as u32,
            x.cols as u32,
            out.cols as u32,
            eps.to_bits(),
            0,
            0,
            0,
            0,
        ];
        let bufs = [x.buf(), &*w.chunks[0].buf, out.buf()];
        self.ctx
            .dispatch(pass, Kernel::RmsNorm, &bufs, &params, [n as u32, 1, 1]);
    }

    fn matmul(
        &self,
        pass: &mut GpuPass,
        w: &GpuWeight,
        x: &GpuTensor,
        n: usize,
        out: &mut GpuTensor,
    ) {
        self.matmul_chunks(pass, w, x, n, out);
    }

    fn add(&self, pass: &mut GpuPass, acc: &mut GpuTensor, x: &GpuTensor, n: usize) {
        let count = (n * acc.cols) as u32;
        let d = &*self.ctx.dummy;
        self.elementwise(
            pass,
            Kernel::Add,
            [x.buf(), d, acc.buf()],
            [count, 0, 0, 1, 0, 0],
        );
    }

    fn copy_row(&self, pass: &mut GpuPass, src: &GpuTensor, src_row: usize, dst: &mut GpuTensor) {
        let c = src.cols as u32;
        let d = &*self.ctx.dummy;
        let params = [c, src_row as u32 * c, 0, c, 0, 0];
        self.elementwise(pass, Kernel::Copy, [src.buf(), d, dst.buf()], params);
    }

    fn copy(&self, pass: &mut GpuPass, src: &GpuTensor, dst: &mut GpuTensor) {
        if src.half || dst.half || src.seg_rows != dst.seg_rows || src.segs.len() != dst.segs.len()
        {
            // Only f32 single-layout copies exist (state checkpoints); caches are never copied.
            let e = Error::Gpu("copy between KV caches or differently laid out tensors".into());
            return self.ctx.fail(pass, e);
        }
        let d = &*self.ctx.dummy;
        for sp in src.spans(0, src.rows) {
            let count = (sp.rows * src.cols) as u32;
            let params = [count, 0, 0, count.max(1), 0, 0];
            let bufs = [&*src.segs[sp.seg], d, &*dst.segs[sp.seg]];
            self.elementwise(pass, Kernel::Copy, bufs, params);
        }
    }

    fn zero(&self, pass: &mut GpuPass, t: &mut GpuTensor) {
        let d = &*self.ctx.dummy;
        for sp in t.spans(0, t.rows) {
            // In 4-byte words: zero bits are 0.0 in f16 and f32 alike.
            let count = (sp.rows * t.row_bytes() / 4) as u32;
            let bufs = [d, d, &*t.segs[sp.seg]];
            self.elementwise(pass, Kernel::Zero, bufs, [count, 0, 0, 1, 0, 0]);
        }
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
        let d = out.cols;
        let params = [
            d as u32,
            kernel.k as u32,
            n as u32,
            bcx.cols as u32,
            out.cols as u32,
        ];
        let wg = self.ctx.caps.workgroup_size as usize;
        let bufs = [bcx.buf(), &*kernel.chunks[0].buf, state.buf(), out.buf()];
        self.ctx.dispatch(
            pass,
            Kernel::ShortConv,
            &bufs,
            &params,
            [d.div_ceil(wg) as u32, 1, 1],
        );
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
        let AttnShape {
            n_head,
            n_head_kv,
            head_dim: hd,
        } = rope.shape;
        if hd > 512 {
            return self
                .ctx
                .fail(pass, Error::Gpu(format!("head_dim {hd} > 512")));
        }
        let kv_w = n_head_kv * hd;
        let params = |x_cols: usize, y_cols: usize, heads: usize, t0: usize, y_row0: usize| {
            [
                hd as u32,
                x_cols as u32,
                y_cols as u32,
                rope.eps.to_bits(),
                heads as u32,
                pos0 as u32,
                rope.base.to_bits(),
                t0 as u32,
                y_row0 as u32,
                v.cols as u32,
            ]
        };
        let d = &*self.ctx.dummy;
        let bufs = [d, &*q_norm.chunks[0].buf, q.buf()];
        let qp = params(0, q.cols, n_head, 0, 0);
        let groups = [n_head as u32, n as u32, 1];
        self.ctx
            .dispatch(pass, Kernel::QkNormRope, &bufs, &qp, groups);
        // k and v rows land in the cache segments holding positions pos0..pos0+n.
        for sp in k_cache.spans(pos0, n) {
            let kp = params(k.cols, kv_w, n_head_kv, sp.offset, sp.row);
            let bufs = [
                k.buf(),
                &*k_norm.chunks[0].buf,
                &*k_cache.segs[sp.seg],
                v.buf(),
                &*v_cache.segs[sp.seg],
            ];
            let groups = [n_head_kv as u32, sp.rows as u32, 1];
            self.ctx
                .dispatch(pass, Kernel::KNormRopeStore, &bufs, &kp, groups);
        }
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
        let hd = shape.head_dim;
        let wg = self.ctx.caps.workgroup_size as usize;
        if hd > 512 || hd > 8 * wg {
            return self.ctx.fail(
                pass,
                Error::Gpu(format!("head_dim {hd} beyond the attention kernel")),
            );
        }
        let len = pos0 + n;
        let plan = AttnPlan::new(shape, n, len, k_cache.seg_rows);
        if plan.tokens_per_block == 0 {
            let e = Error::Gpu(format!(
                "attention over {len} positions needs too many splits"
            ));
            return self.ctx.fail(pass, e);
        }
        let kv_w = shape.n_head_kv * hd;
        for t0 in (0..n).step_by(plan.tokens_per_block) {
            let nb = plan.tokens_per_block.min(n - t0);
            let mut split0 = 0;
            for sp in k_cache.spans(0, len) {
                let base = sp.seg * k_cache.seg_rows;
                let splits = sp.rows.div_ceil(plan.chunk);
                let params = [
                    shape.n_head as u32,
                    shape.n_head_kv as u32,
                    hd as u32,
                    q.cols as u32,
                    kv_w as u32,
                    out.cols as u32,
                    pos0 as u32,
                    (1.0 / (hd as f32).sqrt()).to_bits(),
                    plan.chunk as u32,
                    plan.n_split as u32,
                    t0 as u32,
                    base as u32,
                    (base + sp.rows) as u32,
                    split0 as u32,
                ];
                let bufs = [
                    q.buf(),
                    &*k_cache.segs[sp.seg],
                    &*v_cache.segs[sp.seg],
                    out.buf(),
                    &*self.ctx.part,
                ];
                let groups = [shape.n_head as u32, nb as u32, splits as u32];
                self.ctx
                    .dispatch(pass, Kernel::Attn, &bufs, &params, groups);
                split0 += splits;
                if split0 == plan.n_split && plan.n_split > 1 {
                    let groups = [shape.n_head as u32, nb as u32, 1];
                    self.ctx
                        .dispatch(pass, Kernel::AttnMerge, &bufs, &params, groups);
                }
            }
        }
    }

    fn swiglu(
        &self,
        pass: &mut GpuPass,
        gate: &GpuTensor,
        up: &GpuTensor,
        n: usize,
        out: &mut GpuTensor,
    ) {
        let count = (n * out.cols) as u32;
        self.elementwise(
            pass,
            Kernel::Swiglu,
            [gate.buf(), up.buf(), out.buf()],
            [count, 0, 0, 1, 0, 0],
        );
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
        if k > 32 {
            return self
                .ctx
                .fail(pass, Error::Gpu(format!("{k} experts per token > 32")));
        }
        let params = [
            logits.cols as u32,
            k as u32,
            n as u32,
            logits.cols as u32,
            weights.cols as u32,
            bias.is_some() as u32,
        ];
        let b = bias.map_or(&*self.ctx.dummy, |b| &*b.chunks[0].buf);
        let wg = self.ctx.caps.workgroup_size as usize;
        self.ctx.dispatch(
            pass,
            Kernel::Route,
            &[logits.buf(), b, &ids.buf, weights.buf()],
            &params,
            [n.div_ceil(wg) as u32, 1, 1],
        );
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
        if n >= 4 && hidden.cols >= shape.n_ff + out.cols && ids.n_expert == shape.n_expert {
            return self.moe_ffn_grouped(pass, x, experts, ids, weights, shape, n, hidden, out);
        }
        let (g, u, dn) = (experts.gate, experts.up, experts.down);
        let slots = (n * shape.n_expert_used) as u32;
        let wg = self.ctx.caps.workgroup_size as usize;
        // Lanes per row as in the mat-vec: short rows share a workgroup.
        let lanes = |w: &GpuWeight| (w.n_groups() as usize).next_power_of_two().min(wg);
        let (gate_tpr, down_tpr) = (lanes(g), lanes(dn));
        let (fx, fy) = grid(shape.n_ff.div_ceil(wg / gate_tpr));
        for (gc, uc, ga, ua, e0, e1) in expert_pairs(g, u) {
            let params = [
                g.k as u32,
                g.n_groups(),
                g.row_bytes as u32,
                u.row_bytes as u32,
                shape.n_ff as u32,
                e0,
                e1,
                ga,
                ua,
                shape.n_expert_used as u32,
                x.cols as u32,
                hidden.cols as u32,
                gate_tpr as u32,
            ];
            self.ctx.dispatch(
                pass,
                Kernel::GateUp(g.ty, u.ty),
                &[&gc.buf, &uc.buf, x.buf(), &ids.buf, hidden.buf()],
                &params,
                [fx, fy, slots],
            );
        }
        let d = out.cols;
        let (ox, oy) = grid(d.div_ceil(wg / down_tpr));
        for (i, c) in dn.chunks.iter().enumerate() {
            let (e0, e1) = dn.experts(c);
            let params = [
                dn.k as u32,
                dn.n_groups(),
                dn.row_bytes as u32,
                0,
                d as u32,
                e0,
                e1,
                e0,
                0,
                shape.n_expert_used as u32,
                hidden.cols as u32,
                out.cols as u32,
                weights.cols as u32,
                (i > 0) as u32,
                down_tpr as u32,
            ];
            self.ctx.dispatch(
                pass,
                Kernel::Down(dn.ty),
                &[&c.buf, hidden.buf(), &ids.buf, weights.buf(), out.buf()],
                &params,
                [ox, oy, n as u32],
            );
        }
    }
}
