//! The CPU backend, in two modes sharing every op but the weight products:
//!
//! * exact ([`CpuBackend`], the default): each product dequantizes weight rows and computes in
//!   f32 — the oracle for every GPU kernel and the golden tests;
//! * quantized ([`CpuBackend::quantized`], what the engine runs): Q4_0 / Q8_0 / Q4_K / Q6_K
//!   products quantize the activation row to int8 once and use integer SIMD dot products
//!   (`qdot`), as llama.cpp does; other types keep the f32 path.
//!
//! Weights stay quantized in the memory map, except Q4_0, Q4_K and Q6_K weights on AVX2 and
//! NEON-dotprod, which are repacked at load in groups of eight rows (`pack`) in place of their
//! mapped pages. Work is split over rows
//! with rayon.

mod ops;
pub mod pack;
pub mod profile;
pub mod qdot;

use std::sync::Arc;

use crate::backend::{AttnShape, Backend, MoeShape, MoeWeights, Rope};
use crate::error::{Error, Result};
use crate::gguf::{GgufFile, TensorInfo};
use crate::quant::{self, GgmlType};
use profile::Family;
use qdot::{RowKernel, Simd};

pub use ops::{dot, rms_norm_row, rope_neox, route, sigmoid, silu};

/// Tensors up to this many elements are dequantized to f32 at load (norms, conv kernels, router).
const SMALL_TENSOR: u64 = 1 << 20;

/// The CPU backend (threads come from rayon's global pool). The value `CpuBackend` is the exact
/// f32 reference; [`CpuBackend::quantized`] is the fast mode.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CpuBackend {
    /// `None`: exact f32 products; `Some(simd)`: int8 activations, kernels for `simd`.
    quantized: Option<Simd>,
    /// Repack weights whose kernels have a packed form (`HEARTH_CPU_NO_REPACK=1`: never).
    repack: bool,
}

/// The exact reference backend. A constant of the type's own name, so the many `CpuBackend`
/// call sites written when this was a unit struct keep meaning "the reference".
#[allow(non_upper_case_globals)]
pub const CpuBackend: CpuBackend = CpuBackend {
    quantized: None,
    repack: false,
};

impl Default for CpuBackend {
    fn default() -> Self {
        CpuBackend
    }
}

impl CpuBackend {
    /// The exact f32 reference (same as the constant `CpuBackend`).
    pub const fn exact() -> Self {
        CpuBackend
    }

    /// int8 activations and integer dot products with this CPU's best SIMD
    /// (`HEARTH_CPU_NO_SIMD=1`: the portable scalar kernels).
    pub fn quantized() -> Self {
        Self::quantized_with(qdot::detected())
    }

    /// int8 activations with the kernels of `simd` (tests compare the variants; a `simd` this
    /// CPU lacks falls back to scalar).
    pub fn quantized_with(simd: Simd) -> Self {
        let simd = if simd == qdot::detected() || simd == Simd::Scalar {
            simd
        } else {
            Simd::Scalar
        };
        CpuBackend {
            quantized: Some(simd),
            repack: !std::env::var("HEARTH_CPU_NO_REPACK").is_ok_and(|v| v == "1"),
        }
    }

    /// The same kernels with every weight in its file layout (tests compare both layouts).
    pub fn without_repack(self) -> Self {
        CpuBackend {
            repack: false,
            ..self
        }
    }

    /// The kernels in use: `None` in exact mode.
    pub fn simd(&self) -> Option<Simd> {
        self.quantized
    }

    /// The repacked rows of a weight whose kernels have a packed form (Q4_0, Q4_K and Q6_K on AVX2
    /// and NEON-dotprod) and whose
    /// matrices hold whole groups; the mapped pages they came from are released, so resident
    /// memory stays about one copy of the file.
    fn pack(&self, file: &GgufFile, info: &TensorInfo, qdot: Option<RowKernel>) -> Option<Vec<u8>> {
        qdot?.packed?;
        let rows_per_matrix = *info.ne.get(1)? as usize;
        let (rows, row_bytes) = (info.n_rows() as usize, info.row_bytes() as usize);
        let whole = row_bytes > 0 && file.tensor_data(info).len() == rows * row_bytes;
        if !self.repack || !pack::has_layout(info.ty) || !pack::packable(rows_per_matrix) || !whole
        {
            return None;
        }
        let packed = pack::pack(info.ty, file.tensor_data(info), rows, row_bytes);
        file.release_pages(info);
        Some(packed)
    }
}

/// A weight in the memory map, plus an f32 copy for small tensors.
pub struct CpuWeight {
    file: Arc<GgufFile>,
    info: TensorInfo,
    dense: Option<Vec<f32>>,
    /// Quantized mode: the integer row kernel and how to quantize activations for it.
    qdot: Option<RowKernel>,
    /// The rows repacked in groups of [`pack::PACK`] (then the mapped pages are released and
    /// every read goes here), for kernels with a packed form.
    packed: Option<Vec<u8>>,
}

impl CpuWeight {
    pub fn ty(&self) -> GgmlType {
        self.info.ty
    }
    /// Row length (ggml `ne[0]`).
    pub fn k(&self) -> usize {
        self.info.ne[0] as usize
    }
    pub fn rows(&self) -> usize {
        self.info.n_rows() as usize
    }
    /// Row `r` in the file's layout (not for packed weights: see [`CpuWeight::group`]).
    fn row_bytes(&self, r: usize) -> &[u8] {
        debug_assert!(self.packed.is_none());
        let rb = self.info.row_bytes() as usize;
        &self.file.tensor_data(&self.info)[r * rb..(r + 1) * rb]
    }

    /// Packed group `g` (rows `8g..8g + 8`), if this weight is packed.
    fn group(&self, g: usize) -> Option<&[u8]> {
        let gb = self.info.row_bytes() as usize * pack::PACK;
        Some(&self.packed.as_deref()?[g * gb..(g + 1) * gb])
    }
    /// Dot product of row `r` with `x`.
    fn dot_row(&self, r: usize, x: &[f32]) -> f32 {
        match &self.dense {
            Some(d) => dot(&d[r * self.k()..(r + 1) * self.k()], x),
            None => quant::dot_row(self.info.ty, self.row_bytes(r), x),
        }
    }
    /// Row `r` as f32.
    fn row_f32(&self, r: usize, out: &mut [f32]) {
        if let Some(g) = self.group(r / pack::PACK) {
            // A packed row (e.g. a tied embedding): block by block from the group.
            let ty = self.info.ty;
            let mut blk = [0u8; 256];
            let blk = &mut blk[..ty.block_bytes()];
            for (b, o) in out.chunks_exact_mut(ty.block_elems()).enumerate() {
                pack::unpack_block(ty, g, b, r % pack::PACK, blk);
                quant::dequantize_row(ty, blk, o).expect("a packed block");
            }
            return;
        }
        match &self.dense {
            Some(d) => out.copy_from_slice(&d[r * self.k()..(r + 1) * self.k()]),
            None => quant::dequantize_row(self.info.ty, self.row_bytes(r), out)
                .expect("row types validated at upload"),
        }
    }
    /// `out[i] = row (first + i) · a` with the integer kernels `kern` (this weight's), eight
    /// rows at a time where the weight is packed and a group starts.
    fn qdot_rows(&self, kern: RowKernel, first: usize, a: qdot::ActRow<'_>, out: &mut [f32]) {
        let Some(pk) = kern.packed.filter(|_| self.packed.is_some()) else {
            for (i, o) in out.iter_mut().enumerate() {
                *o = (kern.dot)(self.row_bytes(first + i), a);
            }
            return;
        };
        let mut i = 0;
        while i < out.len() {
            let r = first + i;
            let g = self.group(r / pack::PACK).expect("packed");
            if r.is_multiple_of(pack::PACK) && i + pack::PACK <= out.len() {
                out[i..i + pack::PACK].copy_from_slice(&(pk.dot8)(g, a));
                i += pack::PACK;
            } else {
                out[i] = (pk.lane)(g, r % pack::PACK, a);
                i += 1;
            }
        }
    }

    /// Row `r` against [`qdot::NT`] activation rows (each result bit-identical to
    /// [`CpuWeight::qdot_rows`]'s for that row).
    fn qdot_row4(
        &self,
        kern: RowKernel,
        r: usize,
        a: &[qdot::ActRow<'_>; qdot::NT],
    ) -> [f32; qdot::NT] {
        match (kern.packed, self.group(r / pack::PACK)) {
            (Some(pk), Some(g)) => a.map(|row| (pk.lane)(g, r % pack::PACK, row)),
            _ => (kern.dot4)(self.row_bytes(r), a),
        }
    }

    /// All values as f32 (small tensors only).
    fn values(&self) -> &[f32] {
        self.dense
            .as_deref()
            .expect("small tensors are dequantized at upload")
    }
}

/// An f32 activation buffer.
#[derive(Clone, Debug)]
pub struct CpuTensor {
    pub data: Vec<f32>,
    pub cols: usize,
}

impl CpuTensor {
    fn row(&self, r: usize) -> &[f32] {
        &self.data[r * self.cols..(r + 1) * self.cols]
    }
    fn row_mut(&mut self, r: usize) -> &mut [f32] {
        &mut self.data[r * self.cols..(r + 1) * self.cols]
    }
    fn rows(&self, n: usize) -> &[f32] {
        &self.data[..n * self.cols]
    }
}

fn row_range(t: &CpuTensor, start: usize, n: usize) -> Result<std::ops::Range<usize>> {
    let rows = t.data.len() / t.cols;
    if start.checked_add(n).is_none_or(|end| end > rows) {
        return Err(Error::InvalidArgument(format!(
            "rows {start}..{} outside a tensor of {rows} rows",
            start.saturating_add(n)
        )));
    }
    Ok(start * t.cols..(start + n) * t.cols)
}

impl Backend for CpuBackend {
    type Weight = CpuWeight;
    type Tensor = CpuTensor;
    type Ids = Vec<u32>;
    type Pass = ();

    fn name(&self) -> String {
        let mode = match self.quantized {
            None => "f32".to_string(),
            Some(simd) => {
                let packs = self.repack
                    && qdot::kernel(GgmlType::Q4_K, simd).is_some_and(|k| k.packed.is_some());
                let pack = if packs {
                    ", Q4_0/Q4_K/Q6_K in 8-row groups"
                } else {
                    ""
                };
                format!("int8 act, {simd:?}{pack}")
            }
        };
        format!("cpu ({} threads, {mode})", rayon::current_num_threads())
    }

    fn upload(&self, file: &Arc<GgufFile>, info: &TensorInfo) -> Result<CpuWeight> {
        info.ty.require_supported(&info.name)?;
        // 2-D weights with an integer kernel stay quantized even when small (attn_k/v).
        let qdot = self
            .quantized
            .and_then(|simd| qdot::kernel(info.ty, simd))
            .filter(|_| info.ne.len() >= 2);
        let dense = if info.n_elements() <= SMALL_TENSOR && qdot.is_none() {
            let mut v = vec![0f32; info.n_elements() as usize];
            quant::dequantize_row(info.ty, file.tensor_data(info), &mut v)
                .map_err(|e| Error::tensor(&info.name, format!("cannot dequantize: {e}")))?;
            Some(v)
        } else {
            None
        };
        let packed = self.pack(file, info, qdot);
        Ok(CpuWeight {
            file: file.clone(),
            info: info.clone(),
            dense,
            qdot,
            packed,
        })
    }

    fn tensor(&self, rows: usize, cols: usize) -> Result<CpuTensor> {
        let len = rows
            .checked_mul(cols)
            .ok_or_else(|| Error::InvalidArgument(format!("tensor {rows}x{cols} too large")))?;
        Ok(CpuTensor {
            data: vec![0.0; len],
            cols,
        })
    }

    fn ids(&self, rows: usize, k: usize, _n_expert: usize) -> Result<Vec<u32>> {
        Ok(vec![0; rows * k])
    }

    fn begin(&self) {}

    fn tap_ids(&self, _: &mut (), ids: &Vec<u32>, n: usize, k: usize) -> Result<Vec<u32>> {
        Ok(ids[..n * k].to_vec())
    }

    fn read(&self, _pass: (), t: &CpuTensor, rows: usize) -> Result<Vec<f32>> {
        Ok(t.rows(rows).to_vec())
    }

    fn finish(&self, _pass: ()) -> Result<()> {
        Ok(())
    }

    fn read_rows(&self, t: &CpuTensor, start: usize, n: usize) -> Result<Vec<f32>> {
        let range = row_range(t, start, n)?;
        Ok(t.data[range].to_vec())
    }

    fn write_rows(&self, t: &mut CpuTensor, start: usize, data: &[f32]) -> Result<()> {
        if !data.len().is_multiple_of(t.cols) {
            return Err(Error::InvalidArgument(format!(
                "{} values are not whole rows of {}",
                data.len(),
                t.cols
            )));
        }
        let range = row_range(t, start, data.len() / t.cols)?;
        t.data[range].copy_from_slice(data);
        Ok(())
    }

    fn embed(&self, _: &mut (), table: &CpuWeight, tokens: &[u32], out: &mut CpuTensor) {
        let _s = profile::span(Family::Embed);
        for (t, &tok) in tokens.iter().enumerate() {
            let cols = out.cols;
            table.row_f32(tok as usize, &mut out.data[t * cols..(t + 1) * cols]);
        }
    }

    fn rms_norm(
        &self,
        _: &mut (),
        x: &CpuTensor,
        w: &CpuWeight,
        eps: f32,
        n: usize,
        out: &mut CpuTensor,
    ) {
        let _s = profile::span(Family::Norm);
        let (w, cols) = (w.values(), out.cols);
        ops::par_rows(&mut out.data[..n * cols], cols, |t, o| {
            rms_norm_row(x.row(t), w, eps, o)
        });
    }

    fn matmul(&self, _: &mut (), w: &CpuWeight, x: &CpuTensor, n: usize, out: &mut CpuTensor) {
        let s = profile::span(Family::matmul(w.ty()));
        s.bytes(w.rows() as u64 * w.info.row_bytes());
        let rows = w.rows();
        let k = x.cols;
        ops::gemm_into(
            w,
            0,
            rows,
            &x.data[..n * k],
            k,
            n,
            &mut out.data[..n * rows],
        );
    }

    fn add(&self, _: &mut (), acc: &mut CpuTensor, x: &CpuTensor, n: usize) {
        let _s = profile::span(Family::Elementwise);
        let cols = acc.cols;
        ops::par_rows(&mut acc.data[..n * cols], cols, |t, a| {
            for (a, b) in a.iter_mut().zip(x.row(t)) {
                *a += b;
            }
        });
    }

    fn copy_row(&self, _: &mut (), src: &CpuTensor, src_row: usize, dst: &mut CpuTensor) {
        let _s = profile::span(Family::Elementwise);
        dst.data[..src.cols].copy_from_slice(src.row(src_row));
    }

    fn copy(&self, _: &mut (), src: &CpuTensor, dst: &mut CpuTensor) {
        let _s = profile::span(Family::Elementwise);
        dst.data.copy_from_slice(&src.data);
    }

    fn zero(&self, _: &mut (), t: &mut CpuTensor) {
        t.data.fill(0.0);
    }

    fn short_conv(
        &self,
        _: &mut (),
        bcx: &CpuTensor,
        kernel: &CpuWeight,
        state: &mut CpuTensor,
        n: usize,
        out: &mut CpuTensor,
    ) {
        let _s = profile::span(Family::ShortConv);
        ops::short_conv(bcx, kernel.values(), kernel.k(), state, n, out);
    }

    fn qk_norm_rope_store(
        &self,
        _: &mut (),
        q: &mut CpuTensor,
        k: &CpuTensor,
        v: &CpuTensor,
        (q_norm, k_norm): (&CpuWeight, &CpuWeight),
        k_cache: &mut CpuTensor,
        v_cache: &mut CpuTensor,
        rope: Rope,
        pos0: usize,
        n: usize,
    ) {
        let _s = profile::span(Family::RopeKvStore);
        let hd = rope.shape.head_dim;
        let (qw, kv_w) = (rope.shape.n_head * hd, rope.shape.n_head_kv * hd);
        let (qn, kn) = (q_norm.values(), k_norm.values());
        let q_cols = q.cols;
        ops::par_rows(&mut q.data[..n * q_cols], q_cols, |t, row| {
            for head in row[..qw].chunks_exact_mut(hd) {
                ops::rms_norm_in_place(head, qn, rope.eps);
                rope_neox(head, pos0 + t, rope.base);
            }
        });
        let kc = k_cache.cols;
        ops::par_rows(
            &mut k_cache.data[pos0 * kc..(pos0 + n) * kc],
            kc,
            |t, row| {
                let src = k.row(t)[..kv_w].chunks_exact(hd);
                for (x, head) in src.zip(row[..kv_w].chunks_exact_mut(hd)) {
                    rms_norm_row(x, kn, rope.eps, head);
                    rope_neox(head, pos0 + t, rope.base);
                }
            },
        );
        for t in 0..n {
            v_cache.row_mut(pos0 + t)[..kv_w].copy_from_slice(&v.row(t)[..kv_w]);
        }
    }

    fn attention(
        &self,
        _: &mut (),
        q: &CpuTensor,
        k_cache: &CpuTensor,
        v_cache: &CpuTensor,
        shape: AttnShape,
        pos0: usize,
        n: usize,
        out: &mut CpuTensor,
    ) {
        let s = profile::span(Family::Attention);
        let kv_row = (shape.n_head_kv * shape.head_dim * 4) as u64;
        s.bytes(2 * kv_row * (pos0 + n) as u64);
        ops::attention(q, k_cache, v_cache, shape, pos0, n, out);
    }

    fn swiglu(&self, _: &mut (), gate: &CpuTensor, up: &CpuTensor, n: usize, out: &mut CpuTensor) {
        let _s = profile::span(Family::Swiglu);
        let cols = out.cols;
        ops::par_rows(&mut out.data[..n * cols], cols, |t, o| {
            for ((o, g), u) in o.iter_mut().zip(gate.row(t)).zip(up.row(t)) {
                *o = silu(*g) * u;
            }
        });
    }

    fn moe_route(
        &self,
        _: &mut (),
        logits: &CpuTensor,
        bias: Option<&CpuWeight>,
        k: usize,
        n: usize,
        ids: &mut Vec<u32>,
        weights: &mut CpuTensor,
    ) {
        let _s = profile::span(Family::MoeRoute);
        let bias = bias.map(|b| b.values());
        let cols = weights.cols;
        for t in 0..n {
            ops::route_into(
                logits.row(t),
                bias,
                &mut ids[t * k..(t + 1) * k],
                &mut weights.data[t * cols..t * cols + k],
            );
        }
    }

    fn moe_ffn(
        &self,
        _: &mut (),
        x: &CpuTensor,
        experts: MoeWeights<'_, CpuWeight>,
        ids: &Vec<u32>,
        weights: &CpuTensor,
        shape: MoeShape,
        n: usize,
        _hidden: &mut CpuTensor,
        out: &mut CpuTensor,
    ) {
        let s = profile::span(Family::MoeExperts);
        if s.on() {
            s.bytes(expert_bytes_read(
                experts,
                shape,
                &ids[..n * shape.n_expert_used],
            ));
        }
        ops::moe_ffn(x, experts, ids, weights, shape, n, out);
    }
}

/// Weight bytes an MoE layer reads for the routed `ids`: each distinct expert's three matrices
/// once.
fn expert_bytes_read(experts: MoeWeights<'_, CpuWeight>, shape: MoeShape, ids: &[u32]) -> u64 {
    let mut seen = 0u128;
    let mut more = Vec::new();
    for &e in ids {
        match 1u128.checked_shl(e) {
            Some(bit) => seen |= bit,
            None if !more.contains(&e) => more.push(e),
            None => {}
        }
    }
    let distinct = u64::from(seen.count_ones()) + more.len() as u64;
    let per_expert: u64 = [experts.gate, experts.up, experts.down]
        .iter()
        .map(|w| w.rows() as u64 * w.info.row_bytes() / shape.n_expert.max(1) as u64)
        .sum();
    distinct * per_expert
}
