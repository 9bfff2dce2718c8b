//! GGUF container (versions 2 and 3): parse, validate against the file size, zero-copy tensor views.
//!
//! Hostile files are expected: every count and length is checked against the bytes that remain
//! before anything is allocated, and every failure is an [`Error::Gguf`] naming the byte offset.

mod parse;
pub mod synth;
mod value;
mod writer;

pub use value::MetaValue;
pub use writer::{GgufWriter, Layout};

use std::collections::HashMap;
use std::path::Path;

use crate::error::{Error, Result};
use crate::quant::GgmlType;

/// Maximum number of dimensions of a ggml tensor.
pub const MAX_DIMS: usize = 4;

/// Default data alignment when `general.alignment` is absent.
pub const DEFAULT_ALIGNMENT: u64 = 32;

/// One entry of the tensor index.
#[derive(Clone, Debug, PartialEq)]
pub struct TensorInfo {
    pub name: String,
    /// ggml order: `ne[0]` is the contiguous dimension.
    pub ne: Vec<u64>,
    pub ty: GgmlType,
    /// Offset relative to the start of the data section.
    pub offset: u64,
    /// Size in bytes, validated against the type's block geometry.
    pub n_bytes: u64,
}

impl TensorInfo {
    pub fn n_elements(&self) -> u64 {
        self.ne.iter().product()
    }

    /// Number of rows (product of all dimensions but the first).
    pub fn n_rows(&self) -> u64 {
        self.ne.iter().skip(1).product()
    }

    /// Bytes of one row (`ne[0]` elements).
    pub fn row_bytes(&self) -> u64 {
        self.ty.row_bytes(self.ne[0]).unwrap_or(0)
    }
}

enum Bytes {
    Mapped(memmap2::Mmap),
    Owned(Vec<u8>),
}

impl std::ops::Deref for Bytes {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        match self {
            Bytes::Mapped(m) => m,
            Bytes::Owned(v) => v,
        }
    }
}

/// A parsed, validated GGUF file. Tensor data stays in the memory map.
pub struct GgufFile {
    bytes: Bytes,
    pub version: u32,
    pub alignment: u64,
    /// Absolute offset of the data section.
    pub data_offset: u64,
    metadata: Vec<(String, MetaValue)>,
    tensors: Vec<TensorInfo>,
    tensor_index: HashMap<String, usize>,
    meta_index: HashMap<String, usize>,
}

impl std::fmt::Debug for GgufFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GgufFile")
            .field("version", &self.version)
            .field("metadata", &self.metadata.len())
            .field("tensors", &self.tensors.len())
            .finish()
    }
}

impl GgufFile {
    /// Memory-maps and validates a GGUF file.
    pub fn open(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let io_err = |source| Error::Io {
            path: path.display().to_string(),
            source,
        };
        if path.is_dir() {
            return Err(io_err(std::io::Error::new(
                std::io::ErrorKind::IsADirectory,
                "is a directory, not a GGUF file",
            )));
        }
        let file = std::fs::File::open(path).map_err(io_err)?;
        // SAFETY: the map is read-only; a file truncated underneath us by another process is
        // outside what any mmap-based loader can defend against.
        let map = unsafe { memmap2::Mmap::map(&file) }.map_err(io_err)?;
        Self::from_storage(Bytes::Mapped(map))
    }

    /// Parses a GGUF image held in memory.
    pub fn from_bytes(bytes: Vec<u8>) -> Result<Self> {
        Self::from_storage(Bytes::Owned(bytes))
    }

    fn from_storage(bytes: Bytes) -> Result<Self> {
        let parsed = parse::parse(&bytes)?;
        let meta_index = parsed
            .metadata
            .iter()
            .enumerate()
            .map(|(i, (k, _))| (k.clone(), i))
            .collect();
        let tensor_index = parsed
            .tensors
            .iter()
            .enumerate()
            .map(|(i, t)| (t.name.clone(), i))
            .collect();
        Ok(GgufFile {
            bytes,
            version: parsed.version,
            alignment: parsed.alignment,
            data_offset: parsed.data_offset,
            metadata: parsed.metadata,
            tensors: parsed.tensors,
            tensor_index,
            meta_index,
        })
    }

    /// Total size of the file in bytes.
    pub fn file_size(&self) -> u64 {
        self.bytes.len() as u64
    }

    /// All metadata in file order.
    pub fn metadata(&self) -> &[(String, MetaValue)] {
        &self.metadata
    }

    pub fn get(&self, key: &str) -> Option<&MetaValue> {
        self.meta_index.get(key).map(|&i| &self.metadata[i].1)
    }

    /// A required unsigned integer (any integer type that fits in u32).
    pub fn get_u32(&self, key: &str) -> Result<u32> {
        let v = self
            .get(key)
            .ok_or_else(|| Error::metadata(key, "missing"))?;
        v.as_u32().ok_or_else(|| {
            Error::metadata(
                key,
                format!("expected an unsigned integer, found {}", v.type_name()),
            )
        })
    }

    /// A required float (f32, f64 or integer).
    pub fn get_f32(&self, key: &str) -> Result<f32> {
        let v = self
            .get(key)
            .ok_or_else(|| Error::metadata(key, "missing"))?;
        v.as_f32().ok_or_else(|| {
            Error::metadata(key, format!("expected a number, found {}", v.type_name()))
        })
    }

    /// A required string.
    pub fn get_str(&self, key: &str) -> Result<&str> {
        let v = self
            .get(key)
            .ok_or_else(|| Error::metadata(key, "missing"))?;
        v.as_str().ok_or_else(|| {
            Error::metadata(key, format!("expected a string, found {}", v.type_name()))
        })
    }

    /// All tensors in file order.
    pub fn tensors(&self) -> &[TensorInfo] {
        &self.tensors
    }

    pub fn tensor_info(&self, name: &str) -> Option<&TensorInfo> {
        self.tensor_index.get(name).map(|&i| &self.tensors[i])
    }

    /// The bytes of a tensor (zero-copy view into the map).
    /// Tells the OS that the mapped pages of `info`'s data are no longer needed (a copy of
    /// them is kept elsewhere): resident memory drops, and a later read faults them back in
    /// from the file. A no-op for files read into memory and off Unix.
    pub fn release_pages(&self, info: &TensorInfo) {
        #[cfg(unix)]
        if let Bytes::Mapped(map) = &self.bytes {
            let start = (self.data_offset + info.offset) as usize;
            // SAFETY: the map is read-only and file-backed, so dropping its pages loses nothing
            // (they are read again from the file); no reference into it is invalidated.
            let _ = unsafe {
                map.unchecked_advise_range(
                    memmap2::UncheckedAdvice::DontNeed,
                    start,
                    info.n_bytes as usize,
                )
            };
        }
        #[cfg(not(unix))]
        let _ = info;
    }

    pub fn tensor_data(&self, info: &TensorInfo) -> &[u8] {
        // Offsets and sizes were validated against the file size at parse time.
        let start = (self.data_offset + info.offset) as usize;
        &self.bytes[start..start + info.n_bytes as usize]
    }

    /// A tensor by name with its bytes.
    pub fn tensor(&self, name: &str) -> Option<(&TensorInfo, &[u8])> {
        let info = self.tensor_info(name)?;
        Some((info, self.tensor_data(info)))
    }
}
