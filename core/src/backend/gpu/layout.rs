//! Memory layout: weights (quantized rows in chunks of at most one binding, expert tensors split
//! by whole experts), activation tensors and KV caches (segments of rows beyond one binding),
//! router decisions; their upload, allocation and host row transfers.

use std::sync::Arc;

use super::context::{Buf, Ctx};
use super::plan::needs_dense;
use crate::error::{Error, Result};
use crate::gguf::{GgufFile, TensorInfo};
use crate::quant::{self, GgmlType};

/// A weight: quantized rows in one or more buffers of at most `max_binding` bytes.
pub struct GpuWeight {
    pub(super) ty: GgmlType,
    /// Row length (ggml `ne[0]`).
    pub(super) k: usize,
    pub(super) rows: usize,
    pub(super) row_bytes: usize,
    /// Rows per expert for stacked expert tensors (chunks never split an expert), else 1.
    pub(super) unit: usize,
    pub(super) chunks: Vec<Chunk>,
}

pub(super) struct Chunk {
    pub(super) buf: Arc<Buf>,
    pub(super) row0: usize,
    pub(super) rows: usize,
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
    pub(super) fn n_groups(&self) -> u32 {
        self.k.div_ceil(32) as u32
    }
    /// Expert range `[e0, e1)` held by a chunk.
    pub(super) fn experts(&self, c: &Chunk) -> (u32, u32) {
        (
            (c.row0 / self.unit) as u32,
            ((c.row0 + c.rows) / self.unit) as u32,
        )
    }
    /// The buffer of a weight that is never split (norms, conv kernels, biases).
    pub(super) fn whole(&self) -> &Buf {
        &self.chunks[0].buf
    }
}

/// An f32 tensor of `rows x cols`: one buffer, or for KV caches beyond one binding, segments of
/// `seg_rows` rows (the last may be shorter).
pub struct GpuTensor {
    pub(super) segs: Vec<Arc<Buf>>,
    pub(super) seg_rows: usize,
    pub(super) rows: usize,
    pub(super) cols: usize,
    /// f16 elements (KV caches on `shader-f16` adapters), else f32.
    pub(super) half: bool,
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
    pub(super) fn row_bytes(&self) -> usize {
        self.cols * if self.half { 2 } else { 4 }
    }
    /// Buffers holding the rows (more than one only for long KV caches).
    pub fn segments(&self) -> usize {
        self.segs.len()
    }
    /// The buffer of a single-segment tensor (every op but the cache ops).
    pub(super) fn buf(&self) -> &Buf {
        debug_assert_eq!(self.segs.len(), 1, "op given a segmented tensor");
        &self.segs[0]
    }
    /// Pieces of rows `start..start+n` by segment.
    pub(super) fn spans(&self, start: usize, n: usize) -> impl Iterator<Item = Span> + '_ {
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
pub(super) struct Span {
    pub(super) seg: usize,
    /// First row within the segment.
    pub(super) row: usize,
    /// Rows of the range before this piece.
    pub(super) offset: usize,
    pub(super) rows: usize,
}

/// Router decisions (`rows x k` u32) followed by each expert's list of slots (`n_expert x
/// (rows + 1)`: count, then slot indices) for grouped prefill; written and read only by kernels.
pub struct GpuIds {
    pub(super) buf: Arc<Buf>,
    pub(super) rows: usize,
    pub(super) k: usize,
    pub(super) n_expert: usize,
}

impl GpuIds {
    /// Offset (in u32) of the expert lists.
    pub(super) fn lists(&self) -> u32 {
        (self.rows * self.k) as u32
    }
}

/// A storage buffer of `bytes` within the binding limit.
fn tensor_buf(ctx: &Ctx, bytes: u64, label: &str) -> Result<Arc<Buf>> {
    if bytes > ctx.caps.max_binding {
        return Err(Error::GpuOutOfMemory {
            needed: bytes,
            available: ctx.caps.max_binding,
        });
    }
    use wgpu::BufferUsages as U;
    ctx.buffer(bytes, U::STORAGE | U::COPY_SRC | U::COPY_DST, label)
}

/// Uploads a weight: dense-at-upload tensors as F32, others as stored, split by rows (whole
/// experts for stacked expert tensors) into chunks of at most one binding.
pub(super) fn upload(ctx: &Ctx, file: &GgufFile, info: &TensorInfo) -> Result<GpuWeight> {
    info.ty.require_supported(&info.name)?;
    let k = info.ne[0] as usize;
    let rows = info.n_rows() as usize;
    if needs_dense(info) {
        let mut v = vec![0f32; info.n_elements() as usize];
        quant::dequantize_row(info.ty, file.tensor_data(info), &mut v)
            .map_err(|e| Error::tensor(&info.name, format!("cannot dequantize: {e}")))?;
        let buf = ctx.upload(bytemuck::cast_slice(&v), &info.name)?;
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
    let limit = ctx.caps.max_binding as usize;
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
        let buf = ctx.upload(bytes, &info.name)?;
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

pub(super) fn tensor(ctx: &Ctx, rows: usize, cols: usize) -> Result<GpuTensor> {
    let bytes = (rows as u64)
        .checked_mul(cols as u64 * 4)
        .ok_or_else(|| Error::InvalidArgument(format!("tensor {rows}x{cols} too large")))?;
    Ok(GpuTensor {
        segs: vec![tensor_buf(ctx, bytes, "hearth tensor")?],
        seg_rows: rows.max(1),
        rows,
        cols,
        half: false,
    })
}

/// A KV cache: f16 rows on `shader-f16` adapters, in segments of whole attention splits where
/// one binding cannot hold it.
pub(super) fn cache(ctx: &Ctx, rows: usize, cols: usize) -> Result<GpuTensor> {
    // f16 rows must stay 4-byte aligned for buffer copies.
    let half = ctx.caps.f16 && cols.is_multiple_of(2);
    let row_bytes = (cols * if half { 2 } else { 4 }) as u64;
    let fit = ctx.caps.max_binding / row_bytes.max(1);
    if fit == 0 {
        return Err(Error::GpuOutOfMemory {
            needed: row_bytes,
            available: ctx.caps.max_binding,
        });
    }
    let t = &ctx.tuning;
    let split = t.attn_split_len as u64;
    let seg_rows = if fit >= t.kv_seg_min_rows {
        fit / split * split
    } else {
        fit
    } as usize;
    let seg_rows = seg_rows.min(rows.max(1));
    let segs = (0..rows.div_ceil(seg_rows).max(1))
        .map(|i| {
            let n = seg_rows.min(rows - (i * seg_rows).min(rows)).max(1);
            tensor_buf(ctx, n as u64 * row_bytes, "hearth kv cache")
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

pub(super) fn ids(ctx: &Ctx, rows: usize, k: usize, n_expert: usize) -> Result<GpuIds> {
    let words = rows * k + n_expert * (rows + 1);
    Ok(GpuIds {
        buf: tensor_buf(ctx, (words * 4) as u64, "hearth ids")?,
        rows,
        k,
        n_expert,
    })
}

pub(super) fn read_rows(ctx: &Ctx, t: &GpuTensor, start: usize, n: usize) -> Result<Vec<f32>> {
    check_rows(t, start, n)?;
    let row = t.row_bytes() as u64;
    let mut out = Vec::with_capacity(n * t.cols);
    for sp in t.spans(start, n) {
        let pass = ctx.begin();
        let range = (&*t.segs[sp.seg], sp.row as u64 * row, sp.rows as u64 * row);
        ctx.submit_with(pass, Some(range), |bytes| {
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

pub(super) fn write_rows(ctx: &Ctx, t: &mut GpuTensor, start: usize, data: &[f32]) -> Result<()> {
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
        ctx.queue
            .write_buffer(&t.segs[sp.seg].buffer, offset, &bytes);
    }
    Ok(())
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
