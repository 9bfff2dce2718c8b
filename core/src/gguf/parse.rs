//! The GGUF byte parser. Every read is bounds-checked; counts are checked against the bytes left
//! before any allocation.

use std::collections::HashSet;

use super::{DEFAULT_ALIGNMENT, MAX_DIMS, MetaValue, TensorInfo};
use crate::error::{Error, Result};
use crate::quant::GgmlType;

const MAGIC: &[u8; 4] = b"GGUF";
/// Arrays nested deeper than this are rejected (stack safety).
const MAX_NESTING: u32 = 8;

pub(super) struct Parsed {
    pub version: u32,
    pub alignment: u64,
    pub data_offset: u64,
    pub metadata: Vec<(String, MetaValue)>,
    pub tensors: Vec<TensorInfo>,
}

struct Cursor<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Cursor<'a> {
    fn err(&self, reason: impl Into<String>) -> Error {
        Error::gguf(self.pos as u64, reason)
    }

    fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }

    fn take(&mut self, n: usize, what: &str) -> Result<&'a [u8]> {
        if n > self.remaining() {
            return Err(self.err(format!(
                "truncated: {what} needs {n} bytes, {} left",
                self.remaining()
            )));
        }
        let s = &self.buf[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }

    fn array<const N: usize>(&mut self, what: &str) -> Result<[u8; N]> {
        Ok(self
            .take(N, what)?
            .try_into()
            .expect("take returned N bytes"))
    }

    fn u8(&mut self, what: &str) -> Result<u8> {
        Ok(self.array::<1>(what)?[0])
    }
    fn u16(&mut self, what: &str) -> Result<u16> {
        Ok(u16::from_le_bytes(self.array(what)?))
    }
    fn u32(&mut self, what: &str) -> Result<u32> {
        Ok(u32::from_le_bytes(self.array(what)?))
    }
    fn u64(&mut self, what: &str) -> Result<u64> {
        Ok(u64::from_le_bytes(self.array(what)?))
    }

    /// A count that must be backed by at least `min_elem_bytes` per element in the rest of the file.
    fn count(&mut self, what: &str, min_elem_bytes: usize) -> Result<usize> {
        let at = self.pos;
        let n = self.u64(what)?;
        let fits = usize::try_from(n)
            .ok()
            .and_then(|n| n.checked_mul(min_elem_bytes.max(1)))
            .is_some_and(|bytes| bytes <= self.remaining());
        if !fits {
            return Err(Error::gguf(
                at as u64,
                format!(
                    "{what} {n} exceeds what the remaining {} bytes can hold",
                    self.remaining()
                ),
            ));
        }
        Ok(n as usize)
    }

    fn string(&mut self, what: &str) -> Result<String> {
        let at = self.pos;
        let len = self.count(what, 1)?;
        let bytes = self.take(len, what)?;
        String::from_utf8(bytes.to_vec())
            .map_err(|_| Error::gguf(at as u64, format!("{what} is not valid UTF-8")))
    }

    fn value(&mut self, ty: u32, depth: u32) -> Result<MetaValue> {
        Ok(match ty {
            0 => MetaValue::U8(self.u8("u8 value")?),
            1 => MetaValue::I8(self.u8("i8 value")? as i8),
            2 => MetaValue::U16(self.u16("u16 value")?),
            3 => MetaValue::I16(self.u16("i16 value")? as i16),
            4 => MetaValue::U32(self.u32("u32 value")?),
            5 => MetaValue::I32(self.u32("i32 value")? as i32),
            6 => MetaValue::F32(f32::from_bits(self.u32("f32 value")?)),
            7 => match self.u8("bool value")? {
                0 => MetaValue::Bool(false),
                1 => MetaValue::Bool(true),
                b => {
                    return Err(Error::gguf(
                        self.pos as u64 - 1,
                        format!("bool byte {b} is not 0 or 1"),
                    ));
                }
            },
            8 => MetaValue::String(self.string("string length")?),
            9 => self.array_value(depth)?,
            10 => MetaValue::U64(self.u64("u64 value")?),
            11 => MetaValue::I64(self.u64("i64 value")? as i64),
            12 => MetaValue::F64(f64::from_bits(self.u64("f64 value")?)),
            other => return Err(self.err(format!("unknown metadata value type {other}"))),
        })
    }

    fn array_value(&mut self, depth: u32) -> Result<MetaValue> {
        if depth >= MAX_NESTING {
            return Err(self.err(format!("arrays nested deeper than {MAX_NESTING}")));
        }
        let elem_ty = self.u32("array element type")?;
        let min = min_value_bytes(elem_ty).ok_or_else(|| {
            Error::gguf(
                self.pos as u64 - 4,
                format!("unknown array element type {elem_ty}"),
            )
        })?;
        let n = self.count("array length", min)?;
        let mut items = Vec::with_capacity(n);
        for _ in 0..n {
            items.push(self.value(elem_ty, depth + 1)?);
        }
        Ok(MetaValue::Array(items))
    }
}

/// Smallest encoding of one value of a metadata type, used to bound counts before allocating.
fn min_value_bytes(ty: u32) -> Option<usize> {
    Some(match ty {
        0 | 1 | 7 => 1,
        2 | 3 => 2,
        4..=6 => 4,
        8 => 8,
        9 => 12,
        10..=12 => 8,
        _ => return None,
    })
}

pub(super) fn parse(buf: &[u8]) -> Result<Parsed> {
    let mut c = Cursor { buf, pos: 0 };
    if c.take(4, "magic")? != MAGIC {
        return Err(Error::gguf(0, "not a GGUF file (bad magic)"));
    }
    let version = c.u32("version")?;
    if !(2..=3).contains(&version) {
        return Err(Error::gguf(
            4,
            format!("unsupported GGUF version {version} (2 and 3 are)"),
        ));
    }
    // A tensor record is at least 8 (name len) + 4 (n_dims) + 4 (type) + 8 (offset) bytes.
    let n_tensors = c.count("tensor count", 24)?;
    // A metadata record is at least 8 (key len) + 4 (type) + 1 (value) bytes.
    let n_kv = c.count("metadata count", 13)?;

    let metadata = read_metadata(&mut c, n_kv)?;
    let alignment = read_alignment(&metadata)?;
    let infos = read_tensor_infos(&mut c, n_tensors)?;

    let data_offset = (c.pos as u64).div_ceil(alignment) * alignment;
    if data_offset > buf.len() as u64 && n_tensors > 0 {
        return Err(Error::gguf(
            c.pos as u64,
            "file ends before the data section",
        ));
    }
    let data_len = (buf.len() as u64).saturating_sub(data_offset);
    let tensors = validate_tensors(infos, alignment, data_len, data_offset)?;
    Ok(Parsed {
        version,
        alignment,
        data_offset,
        metadata,
        tensors,
    })
}

fn read_metadata(c: &mut Cursor, n_kv: usize) -> Result<Vec<(String, MetaValue)>> {
    let mut seen = HashSet::new();
    let mut out = Vec::with_capacity(n_kv);
    for _ in 0..n_kv {
        let at = c.pos as u64;
        let key = c.string("metadata key length")?;
        let ty = c.u32("metadata value type")?;
        let value = c.value(ty, 0)?;
        if !seen.insert(key.clone()) {
            return Err(Error::gguf(at, format!("duplicate metadata key '{key}'")));
        }
        out.push((key, value));
    }
    Ok(out)
}

fn read_alignment(metadata: &[(String, MetaValue)]) -> Result<u64> {
    let Some((_, v)) = metadata.iter().find(|(k, _)| k == "general.alignment") else {
        return Ok(DEFAULT_ALIGNMENT);
    };
    match v.as_u64() {
        Some(a) if a > 0 && a.is_power_of_two() && a <= 1 << 20 => Ok(a),
        _ => Err(Error::metadata(
            "general.alignment",
            format!(
                "must be a power of two up to 1 MiB, found {}",
                v.display_short(4)
            ),
        )),
    }
}

struct RawInfo {
    at: u64,
    name: String,
    ne: Vec<u64>,
    ty_id: u32,
    offset: u64,
}

fn read_tensor_infos(c: &mut Cursor, n: usize) -> Result<Vec<RawInfo>> {
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        let at = c.pos as u64;
        let name = c.string("tensor name length")?;
        let n_dims = c.u32("tensor n_dims")? as usize;
        if n_dims == 0 || n_dims > MAX_DIMS {
            return Err(Error::gguf(
                at,
                format!("tensor '{name}' has {n_dims} dimensions (1..=4 allowed)"),
            ));
        }
        let mut ne = Vec::with_capacity(n_dims);
        for _ in 0..n_dims {
            ne.push(c.u64("tensor dimension")?);
        }
        let ty_id = c.u32("tensor type")?;
        let offset = c.u64("tensor offset")?;
        out.push(RawInfo {
            at,
            name,
            ne,
            ty_id,
            offset,
        });
    }
    Ok(out)
}

fn validate_tensors(
    raw: Vec<RawInfo>,
    alignment: u64,
    data_len: u64,
    data_offset: u64,
) -> Result<Vec<TensorInfo>> {
    let mut names = HashSet::new();
    let mut out = Vec::with_capacity(raw.len());
    for r in raw {
        let fail = |reason: String| Error::gguf(r.at, format!("tensor '{}': {reason}", r.name));
        if !names.insert(r.name.clone()) {
            return Err(fail("duplicate tensor name".into()));
        }
        let ty = GgmlType::from_id(r.ty_id)
            .ok_or_else(|| fail(format!("unknown ggml type id {}", r.ty_id)))?;
        if r.ne.contains(&0) {
            return Err(fail(format!("zero-sized dimension in {:?}", r.ne)));
        }
        let n_elements =
            r.ne.iter()
                .try_fold(1u64, |acc, &d| acc.checked_mul(d))
                .filter(|&n| n <= i64::MAX as u64)
                .ok_or_else(|| fail(format!("element count of {:?} overflows", r.ne)))?;
        let row_bytes = ty.row_bytes(r.ne[0]).ok_or_else(|| {
            fail(format!(
                "row length {} is not a multiple of the {} block size {}",
                r.ne[0],
                ty,
                ty.block_elems()
            ))
        })?;
        let n_bytes = row_bytes
            .checked_mul(n_elements / r.ne[0])
            .ok_or_else(|| fail("byte size overflows".into()))?;
        if r.offset % alignment != 0 {
            return Err(fail(format!(
                "offset {} is not a multiple of the alignment {alignment}",
                r.offset
            )));
        }
        let end = r
            .offset
            .checked_add(n_bytes)
            .filter(|&e| e <= data_len)
            .ok_or_else(|| {
                fail(format!(
                    "data [{}, +{n_bytes}) extends past the end of the file (data section starts at byte {data_offset}, holds {data_len} bytes)",
                    r.offset
                ))
            })?;
        debug_assert!(end <= data_len);
        out.push(TensorInfo {
            name: r.name,
            ne: r.ne,
            ty,
            offset: r.offset,
            n_bytes,
        });
    }
    check_overlaps(&out)?;
    Ok(out)
}

fn check_overlaps(tensors: &[TensorInfo]) -> Result<()> {
    let mut spans: Vec<(u64, u64, &str)> = tensors
        .iter()
        .map(|t| (t.offset, t.offset + t.n_bytes, t.name.as_str()))
        .collect();
    spans.sort_unstable();
    for w in spans.windows(2) {
        if w[1].0 < w[0].1 {
            return Err(Error::gguf(
                w[1].0,
                format!(
                    "tensor '{}' overlaps tensor '{}' in the data section",
                    w[1].2, w[0].2
                ),
            ));
        }
    }
    Ok(())
}
