//! The device, its pipelines and bind groups, the per-pass parameter arena, submission and
//! readback. Everything that allocates is counted ([`Ctx::creations`]) so tests can prove the
//! steady-state decode loop allocates nothing.

use std::collections::HashMap;
use std::num::NonZeroU64;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use super::caps::DeviceCaps;
use super::kernels::{self, Kernel, KernelParams, Variant};
use super::tuning::Tuning;
use crate::error::{Error, Result};

/// Bytes of one dispatch's parameter block (16 u32; the binding's minimum size).
pub(crate) const PARAM_BYTES: u64 = 64;

/// Most storage bindings of a kernel.
const MAX_BUFS: usize = 5;

/// Locks `m` even if a thread panicked while holding it: every guarded value here (caches,
/// the fault slot, the submit order) stays valid across a panic, and one panic must not turn
/// into a panic on every later call.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// A bind group's identity: the layout's read-only flags as bits and the buffer ids. Fixed
/// size, so looking one up per dispatch allocates nothing.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
struct BindKey {
    read_only: u8,
    len: u8,
    ids: [u64; MAX_BUFS],
}

impl BindKey {
    /// `sig`: read-only flag of each storage binding; `ids`: the buffer bound to each.
    fn new(sig: &[bool], ids: impl Iterator<Item = u64>) -> BindKey {
        debug_assert!(sig.len() <= MAX_BUFS);
        let mut key = BindKey {
            read_only: 0,
            len: 0,
            ids: [0; MAX_BUFS],
        };
        for (i, (&ro, id)) in sig.iter().zip(ids).enumerate().take(MAX_BUFS) {
            key.read_only |= (ro as u8) << i;
            key.ids[i] = id;
            key.len = i as u8 + 1;
        }
        key
    }

    fn holds(&self, id: u64) -> bool {
        self.ids[..self.len as usize].contains(&id)
    }
}

/// Bind groups keyed by (layout, buffer ids); entries are dropped with their buffers.
#[derive(Default)]
pub(crate) struct BindCache {
    map: Mutex<HashMap<BindKey, wgpu::BindGroup>>,
}

impl BindCache {
    fn forget(&self, id: u64) {
        lock(&self.map).retain(|key, _| !key.holds(id));
    }
}

/// A device buffer with an identity for the bind-group cache.
pub struct Buf {
    pub(crate) id: u64,
    pub(crate) buffer: wgpu::Buffer,
    cache: Arc<BindCache>,
}

impl Drop for Buf {
    fn drop(&mut self) {
        self.cache.forget(self.id);
    }
}

impl std::fmt::Debug for Buf {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Buf#{}({} B)", self.id, self.buffer.size())
    }
}

/// Errors reported asynchronously by wgpu (uncaptured errors, device loss).
#[derive(Default)]
pub(crate) struct Faults {
    error: Mutex<Option<Error>>,
    /// Set once the device is lost: every later call fails fast with it (a lost device accepts
    /// calls silently and computes nothing).
    lost: std::sync::OnceLock<String>,
}

impl Faults {
    fn lose(&self, why: String) {
        let _ = self.lost.set(why.clone());
        self.record(Error::GpuDeviceLost(why));
    }
    fn record(&self, e: Error) {
        lock(&self.error).get_or_insert(e);
    }
    fn take(&self) -> Option<Error> {
        lock(&self.error).take()
    }
}

fn map_wgpu_error(e: wgpu::Error) -> Error {
    match e {
        wgpu::Error::OutOfMemory { .. } => Error::GpuOutOfMemory {
            needed: 0,
            available: 0,
        },
        other => Error::Gpu(other.to_string()),
    }
}

/// One forward pass being recorded: a single compute pass in a single command buffer.
pub struct GpuPass {
    enc: Option<wgpu::CommandEncoder>,
    cp: Option<wgpu::ComputePass<'static>>,
    pub(crate) params: Vec<u8>,
    error: Option<Error>,
}

impl GpuPass {
    fn fail(&mut self, e: Error) {
        self.error.get_or_insert(e);
    }
}

struct Pipeline {
    pipeline: wgpu::ComputePipeline,
    layout: Arc<wgpu::BindGroupLayout>,
}

pub(crate) struct Ctx {
    pub device: wgpu::Device,
    pub queue: wgpu::Queue,
    pub caps: DeviceCaps,
    pub tuning: Tuning,
    variant: Variant,
    pipelines: Mutex<HashMap<Kernel, Arc<Pipeline>>>,
    layouts: Mutex<HashMap<Vec<bool>, Arc<wgpu::BindGroupLayout>>>,
    cache: Arc<BindCache>,
    creations: AtomicU64,
    submits: AtomicU64,
    next_id: AtomicU64,
    pub arena: Arc<Buf>,
    pub dummy: Arc<Buf>,
    pub part: Arc<Buf>,
    staging: Mutex<Option<wgpu::Buffer>>,
    submit_lock: Mutex<()>,
    faults: Arc<Faults>,
}

impl Ctx {
    pub fn new(device: wgpu::Device, queue: wgpu::Queue, caps: DeviceCaps) -> Result<Arc<Ctx>> {
        let faults = Arc::new(Faults::default());
        let f = faults.clone();
        device.on_uncaptured_error(Arc::new(move |e| f.record(map_wgpu_error(e))));
        let f = faults.clone();
        device.set_device_lost_callback(move |reason, msg| f.lose(format!("{reason:?}: {msg}")));
        let tuning = Tuning::for_caps(&caps);
        let cache = Arc::new(BindCache::default());
        let mk = |id: u64, size: u64, usage: wgpu::BufferUsages, label: &str| {
            Arc::new(Buf {
                id,
                buffer: device.create_buffer(&wgpu::BufferDescriptor {
                    label: Some(label),
                    size,
                    usage,
                    mapped_at_creation: false,
                }),
                cache: cache.clone(),
            })
        };
        use wgpu::BufferUsages as U;
        let arena = mk(
            1,
            tuning.arena_bytes,
            U::UNIFORM | U::STORAGE | U::COPY_DST,
            "hearth params",
        );
        let dummy = mk(2, 16, U::STORAGE, "hearth dummy");
        let part = mk(
            3,
            tuning.part_floats * 4,
            U::STORAGE,
            "hearth attention partials",
        );
        let variant = Variant::new(caps.f16, caps.subgroups, &tuning);
        Ok(Arc::new(Ctx {
            device,
            queue,
            caps,
            tuning,
            variant,
            pipelines: Mutex::default(),
            layouts: Mutex::default(),
            cache,
            creations: AtomicU64::new(3),
            submits: AtomicU64::new(0),
            next_id: AtomicU64::new(4),
            arena,
            dummy,
            part,
            staging: Mutex::new(None),
            submit_lock: Mutex::new(()),
            faults,
        }))
    }

    pub fn creations(&self) -> u64 {
        self.creations.load(Ordering::Relaxed)
    }

    pub fn pipelines_built(&self) -> usize {
        lock(&self.pipelines).len()
    }

    pub fn submits(&self) -> u64 {
        self.submits.load(Ordering::Relaxed)
    }

    /// Fails once the device is lost.
    pub fn alive(&self) -> Result<()> {
        match self.faults.lost.get() {
            Some(why) => Err(Error::GpuDeviceLost(why.clone())),
            None => Ok(()),
        }
    }

    /// A new buffer; allocation failures come back as errors, not panics.
    pub fn buffer(&self, size: u64, usage: wgpu::BufferUsages, label: &str) -> Result<Arc<Buf>> {
        self.alive()?;
        let size = size.max(4).next_multiple_of(4);
        if size > self.caps.max_buffer {
            return Err(Error::GpuOutOfMemory {
                needed: size,
                available: self.caps.max_buffer,
            });
        }
        let oom = self.device.push_error_scope(wgpu::ErrorFilter::OutOfMemory);
        let val = self.device.push_error_scope(wgpu::ErrorFilter::Validation);
        let buffer = self.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some(label),
            size,
            usage,
            mapped_at_creation: false,
        });
        let verr = pollster::block_on(val.pop());
        let oerr = pollster::block_on(oom.pop());
        self.creations.fetch_add(1, Ordering::Relaxed);
        if let Some(e) = oerr {
            return Err(Error::GpuOutOfMemory {
                needed: size,
                available: 0,
            })
            .inspect_err(|_| log::warn!("buffer {label}: {e}"));
        }
        if let Some(e) = verr {
            return Err(Error::Gpu(format!("buffer {label}: {e}")));
        }
        Ok(Arc::new(Buf {
            id: self.next_id.fetch_add(1, Ordering::Relaxed),
            buffer,
            cache: self.cache.clone(),
        }))
    }

    /// Uploads `data` (any length) into a new storage buffer through bounded staging pieces.
    pub fn upload(&self, data: &[u8], label: &str) -> Result<Arc<Buf>> {
        use wgpu::BufferUsages as U;
        let buf = self.buffer(
            data.len() as u64,
            U::STORAGE | U::COPY_DST | U::COPY_SRC,
            label,
        )?;
        let (piece_len, flush) = (self.tuning.upload_piece, self.tuning.upload_flush);
        let mut pending = 0usize;
        for (i, piece) in data.chunks(piece_len).enumerate() {
            let off = (i * piece_len) as u64;
            if piece.len() % 4 == 0 {
                self.queue.write_buffer(&buf.buffer, off, piece);
            } else {
                let mut padded = piece.to_vec();
                padded.resize(piece.len().next_multiple_of(4), 0);
                self.queue.write_buffer(&buf.buffer, off, &padded);
            }
            pending += piece.len();
            if pending >= flush {
                self.flush()?;
                pending = 0;
            }
        }
        if pending > 0 {
            self.flush()?;
        }
        Ok(buf)
    }

    /// Submits pending queue writes and waits, releasing their staging memory.
    pub fn flush(&self) -> Result<()> {
        self.queue.submit([]);
        self.wait()
    }

    fn wait(&self) -> Result<()> {
        self.device
            .poll(wgpu::PollType::wait_indefinitely())
            .map_err(|e| Error::GpuDeviceLost(e.to_string()))?;
        match self.faults.take() {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    fn layout(&self, sig: &[bool]) -> Arc<wgpu::BindGroupLayout> {
        let mut layouts = lock(&self.layouts);
        if let Some(l) = layouts.get(sig) {
            return l.clone();
        }
        let mut entries = vec![wgpu::BindGroupLayoutEntry {
            binding: 0,
            visibility: wgpu::ShaderStages::COMPUTE,
            ty: wgpu::BindingType::Buffer {
                ty: wgpu::BufferBindingType::Uniform,
                has_dynamic_offset: true,
                min_binding_size: NonZeroU64::new(PARAM_BYTES),
            },
            count: None,
        }];
        for (i, &ro) in sig.iter().enumerate() {
            entries.push(wgpu::BindGroupLayoutEntry {
                binding: i as u32 + 1,
                visibility: wgpu::ShaderStages::COMPUTE,
                ty: wgpu::BindingType::Buffer {
                    ty: wgpu::BufferBindingType::Storage { read_only: ro },
                    has_dynamic_offset: false,
                    min_binding_size: None,
                },
                count: None,
            });
        }
        let l = Arc::new(
            self.device
                .create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor {
                    label: Some("hearth layout"),
                    entries: &entries,
                }),
        );
        layouts.insert(sig.to_vec(), l.clone());
        l
    }

    fn pipeline(&self, k: Kernel) -> Result<Arc<Pipeline>> {
        if let Some(p) = lock(&self.pipelines).get(&k) {
            return Ok(p.clone());
        }
        let src = kernels::source(k, self.variant);
        let layout = self.layout(k.storage());
        let name = k.name();
        let scope = self.device.push_error_scope(wgpu::ErrorFilter::Validation);
        let module = self
            .device
            .create_shader_module(wgpu::ShaderModuleDescriptor {
                label: Some(&name),
                source: wgpu::ShaderSource::Wgsl(src.into()),
            });
        let pl = self
            .device
            .create_pipeline_layout(&wgpu::PipelineLayoutDescriptor {
                label: Some(&name),
                bind_group_layouts: &[Some(&layout)],
                immediate_size: 0,
            });
        let pipeline = self
            .device
            .create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
                label: Some(&name),
                layout: Some(&pl),
                module: &module,
                entry_point: Some(k.entry()),
                compilation_options: Default::default(),
                cache: None,
            });
        if let Some(e) = pollster::block_on(scope.pop()) {
            return Err(Error::Gpu(format!("kernel {name}: {e}")));
        }
        let p = Arc::new(Pipeline { pipeline, layout });
        lock(&self.pipelines).insert(k, p.clone());
        Ok(p)
    }

    /// Compiles every kernel up front (model load), so the first token compiles nothing.
    pub fn warm(&self, ks: impl IntoIterator<Item = Kernel>) -> Result<()> {
        for k in ks {
            self.pipeline(k)?;
        }
        Ok(())
    }

    fn bind_group(
        &self,
        k: Kernel,
        layout: &wgpu::BindGroupLayout,
        bufs: &[&Buf],
    ) -> wgpu::BindGroup {
        debug_assert!(bufs.len() <= MAX_BUFS);
        let key = BindKey::new(k.storage(), bufs.iter().map(|b| b.id));
        let mut map = lock(&self.cache.map);
        if let Some(bg) = map.get(&key) {
            return bg.clone();
        }
        let mut entries = vec![wgpu::BindGroupEntry {
            binding: 0,
            resource: wgpu::BindingResource::Buffer(wgpu::BufferBinding {
                buffer: &self.arena.buffer,
                offset: 0,
                size: NonZeroU64::new(PARAM_BYTES),
            }),
        }];
        for (i, b) in bufs.iter().enumerate() {
            entries.push(wgpu::BindGroupEntry {
                binding: i as u32 + 1,
                resource: b.buffer.as_entire_binding(),
            });
        }
        let bg = self.device.create_bind_group(&wgpu::BindGroupDescriptor {
            label: Some("hearth bind group"),
            layout,
            entries: &entries,
        });
        self.creations.fetch_add(1, Ordering::Relaxed);
        map.insert(key, bg.clone());
        bg
    }

    pub fn begin(&self) -> GpuPass {
        let mut enc = self
            .device
            .create_command_encoder(&wgpu::CommandEncoderDescriptor {
                label: Some("hearth forward"),
            });
        let cp = enc
            .begin_compute_pass(&wgpu::ComputePassDescriptor {
                label: Some("hearth forward"),
                timestamp_writes: None,
            })
            .forget_lifetime();
        GpuPass {
            enc: Some(enc),
            cp: Some(cp),
            params: Vec::with_capacity(64 << 10),
            error: None,
        }
    }

    /// Appends `words` to the pass's arena data at an aligned offset; returns the byte offset.
    pub fn push_data(&self, pass: &mut GpuPass, words: &[u32]) -> Option<u64> {
        let align = self.caps.uniform_align.max(PARAM_BYTES as u32) as usize;
        let off = pass.params.len().next_multiple_of(align);
        let end = off + (words.len() * 4).max(PARAM_BYTES as usize);
        if end as u64 > self.tuning.arena_bytes {
            pass.fail(Error::Gpu(format!(
                "forward pass needs more than {} bytes of kernel parameters",
                self.tuning.arena_bytes
            )));
            return None;
        }
        pass.params.resize(off, 0);
        pass.params
            .extend(words.iter().flat_map(|w| w.to_le_bytes()));
        pass.params.resize(end, 0);
        Some(off as u64)
    }

    /// Records one dispatch of `k` with `bufs` at bindings 1.. and `params` in its uniform block.
    pub fn dispatch<P: KernelParams>(
        &self,
        pass: &mut GpuPass,
        k: Kernel,
        bufs: &[&Buf],
        params: &P,
        groups: [u32; 3],
    ) {
        debug_assert!(size_of::<P>() <= PARAM_BYTES as usize);
        debug_assert_eq!(bufs.len(), k.storage().len(), "{k:?}");
        if pass.error.is_some() || groups.contains(&0) {
            return;
        }
        let p = match self.pipeline(k) {
            Ok(p) => p,
            Err(e) => return pass.fail(e),
        };
        let words: &[u32] = bytemuck::cast_slice(std::slice::from_ref(params));
        let Some(off) = self.push_data(pass, words) else {
            return;
        };
        let bg = self.bind_group(k, &p.layout, bufs);
        let cp = pass.cp.as_mut().expect("pass is open");
        cp.set_pipeline(&p.pipeline);
        cp.set_bind_group(0, &bg, &[off as u32]);
        cp.dispatch_workgroups(groups[0], groups[1], groups[2]);
    }

    /// Records a failure discovered while recording (shapes beyond a kernel's limits).
    pub fn fail(&self, pass: &mut GpuPass, e: Error) {
        pass.fail(e);
    }

    /// Ends the pass, submits it once, and reads back `bytes` bytes of `src` from byte `offset`
    /// (if any).
    pub fn submit(&self, pass: GpuPass, read: Option<(&Buf, u64, u64)>) -> Result<Vec<f32>> {
        self.submit_with(pass, read, |bytes| {
            bytemuck::cast_slice::<u8, f32>(bytes).to_vec()
        })
    }

    /// [`Ctx::submit`] handing the mapped bytes read (4-byte aligned) to `decode`; without a read
    /// it returns `T::default()`.
    pub fn submit_with<T: Default>(
        &self,
        mut pass: GpuPass,
        read: Option<(&Buf, u64, u64)>,
        decode: impl FnOnce(&[u8]) -> T,
    ) -> Result<T> {
        let read = read.filter(|&(_, _, bytes)| bytes > 0);
        drop(pass.cp.take());
        let mut enc = pass.enc.take().expect("pass has an encoder");
        if let Some(e) = pass.error.take() {
            return Err(e);
        }
        self.alive()?;
        let mut staging = self.staging.lock().unwrap_or_else(|poisoned| {
            // A panic in a readback's decode left the buffer mapped: start with a fresh one.
            let mut g = poisoned.into_inner();
            *g = None;
            g
        });
        if let Some((src, offset, bytes)) = read {
            if staging.as_ref().is_none_or(|s| s.size() < bytes) {
                *staging = Some(self.device.create_buffer(&wgpu::BufferDescriptor {
                    label: Some("hearth readback"),
                    size: bytes.next_multiple_of(4),
                    usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
                    mapped_at_creation: false,
                }));
                self.creations.fetch_add(1, Ordering::Relaxed);
            }
            let st = staging.as_ref().expect("just created");
            enc.copy_buffer_to_buffer(&src.buffer, offset, st, 0, bytes);
        }
        let cb = enc.finish();
        {
            let _g = lock(&self.submit_lock);
            if !pass.params.is_empty() {
                self.queue.write_buffer(&self.arena.buffer, 0, &pass.params);
            }
            self.queue.submit([cb]);
            self.submits.fetch_add(1, Ordering::Relaxed);
        }
        let Some((_, _, bytes)) = read else {
            self.wait()?;
            return Ok(T::default());
        };
        let st = staging.as_ref().expect("created above");
        let slice = st.slice(..bytes);
        let (tx, rx) = std::sync::mpsc::channel();
        slice.map_async(wgpu::MapMode::Read, move |r| {
            let _ = tx.send(r);
        });
        self.wait()?;
        rx.recv()
            .map_err(|_| Error::Gpu("readback callback never ran".into()))?
            .map_err(|e| Error::Gpu(format!("readback: {e}")))?;
        let out = {
            let view = slice
                .get_mapped_range()
                .map_err(|e| Error::Gpu(format!("readback: {e:?}")))?;
            decode(&view)
        };
        st.unmap();
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_poisoned_lock_is_recovered_not_a_panic() {
        let m = Arc::new(Mutex::new(HashMap::<u32, u32>::new()));
        let m2 = m.clone();
        let r = std::thread::spawn(move || {
            let mut g = m2.lock().unwrap();
            g.insert(1, 2);
            panic!("a panic while holding the lock");
        })
        .join();
        assert!(r.is_err() && m.is_poisoned());
        assert_eq!(lock(&m).get(&1), Some(&2));
    }

    #[test]
    fn bind_keys_tell_layouts_and_buffers_apart() {
        let ids = |sig: &[bool], ids: &[u64]| BindKey::new(sig, ids.iter().copied());
        let a = ids(&[true, true, false], &[4, 5, 6]);
        assert_ne!(a, ids(&[true, false, false], &[4, 5, 6]));
        assert_ne!(a, ids(&[true, true, false], &[4, 6, 5]));
        assert_ne!(a, ids(&[true, true, false, false], &[4, 5, 6, 0]));
        assert!(a.holds(5) && !a.holds(0));
    }
}
