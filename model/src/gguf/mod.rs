//! GGUF v2 / v3 files (ggml's `docs/gguf.md`): header, typed metadata, tensor infos and aligned
//! tensor data, read with every length checked against the file; `quants` dequantizes the tensor
//! types, `convert` turns a file into an HF checkpoint directory.

pub mod convert;
pub mod quants;

use std::collections::BTreeMap;
use std::fs::File;
use std::path::{Path, PathBuf};

use memmap2::Mmap;

use crate::ModelError;
pub use quants::GgmlType;

/// A metadata value (GGUF `gguf_metadata_value_type`).
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    U8(u8),
    I8(i8),
    U16(u16),
    I16(i16),
    U32(u32),
    I32(i32),
    F32(f32),
    Bool(bool),
    String(String),
    Array(Vec<Value>),
    U64(u64),
    I64(i64),
    F64(f64),
}

impl Value {
    /// Any integer type as u64 (negative values are `None`).
    pub fn as_u64(&self) -> Option<u64> {
        match *self {
            Value::U8(v) => Some(v as u64),
            Value::U16(v) => Some(v as u64),
            Value::U32(v) => Some(v as u64),
            Value::U64(v) => Some(v),
            Value::I8(v) => u64::try_from(v).ok(),
            Value::I16(v) => u64::try_from(v).ok(),
            Value::I32(v) => u64::try_from(v).ok(),
            Value::I64(v) => u64::try_from(v).ok(),
            _ => None,
        }
    }

    pub fn as_i64(&self) -> Option<i64> {
        match *self {
            Value::I8(v) => Some(v as i64),
            Value::I16(v) => Some(v as i64),
            Value::I32(v) => Some(v as i64),
            Value::I64(v) => Some(v),
            _ => self.as_u64().and_then(|v| i64::try_from(v).ok()),
        }
    }

    /// Floats as f64 (an f32 widened exactly), integers converted.
    pub fn as_f64(&self) -> Option<f64> {
        match *self {
            Value::F32(v) => Some(v as f64),
            Value::F64(v) => Some(v),
            _ => self.as_i64().map(|v| v as f64),
        }
    }

    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::String(s) => Some(s),
            _ => None,
        }
    }

    pub fn as_bool(&self) -> Option<bool> {
        match *self {
            Value::Bool(b) => Some(b),
            _ => None,
        }
    }

    pub fn as_array(&self) -> Option<&[Value]> {
        match self {
            Value::Array(a) => Some(a),
            _ => None,
        }
    }
}

/// One tensor's entry in the file: ggml dimensions (`dims[0]` varies fastest), type and where its
/// bytes are.
#[derive(Debug, Clone)]
pub struct TensorInfo {
    pub name: String,
    pub dims: Vec<u64>,
    pub kind: GgmlType,
    /// Byte range in the file.
    pub start: usize,
    pub len: usize,
}

impl TensorInfo {
    /// The shape in row-major (PyTorch) order: ggml dimensions reversed.
    pub fn shape(&self) -> Vec<usize> {
        self.dims.iter().rev().map(|&d| d as usize).collect()
    }

    pub fn numel(&self) -> usize {
        self.dims.iter().product::<u64>() as usize
    }
}

/// A memory-mapped GGUF file.
pub struct GgufFile {
    pub path: PathBuf,
    pub version: u32,
    pub metadata: BTreeMap<String, Value>,
    pub tensors: Vec<TensorInfo>,
    map: Mmap,
}

/// Little-endian reads over the file's bytes, each checked against its end.
struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl Reader<'_> {
    fn take(&mut self, n: usize, what: &str) -> Result<&[u8], String> {
        let end = self
            .at
            .checked_add(n)
            .filter(|&e| e <= self.bytes.len())
            .ok_or_else(|| {
                format!(
                    "truncated: {what} needs {n} bytes at offset {} but the file has {}",
                    self.at,
                    self.bytes.len()
                )
            })?;
        let out = &self.bytes[self.at..end];
        self.at = end;
        Ok(out)
    }

    fn array<const N: usize>(&mut self, what: &str) -> Result<[u8; N], String> {
        Ok(self.take(N, what)?.try_into().expect("length checked"))
    }

    fn u32(&mut self, what: &str) -> Result<u32, String> {
        Ok(u32::from_le_bytes(self.array(what)?))
    }

    fn u64(&mut self, what: &str) -> Result<u64, String> {
        Ok(u64::from_le_bytes(self.array(what)?))
    }

    /// A count that must fit in what is left of the file (at least `min_size` bytes per item).
    fn count(&mut self, what: &str, min_size: usize) -> Result<usize, String> {
        let n = self.u64(what)?;
        let left = (self.bytes.len() - self.at) as u64;
        if n.saturating_mul(min_size as u64) > left {
            return Err(format!(
                "truncated: {what} = {n} at offset {} needs more bytes than the rest of the file",
                self.at - 8
            ));
        }
        Ok(n as usize)
    }

    fn string(&mut self, what: &str) -> Result<String, String> {
        let n = self.count(what, 1)?;
        let at = self.at;
        let bytes = self.take(n, what)?;
        String::from_utf8(bytes.to_vec())
            .map_err(|_| format!("{what} at offset {at} is not valid UTF-8"))
    }

    fn value(&mut self, kind: u32, key: &str) -> Result<Value, String> {
        Ok(match kind {
            0 => Value::U8(self.array::<1>(key)?[0]),
            1 => Value::I8(self.array::<1>(key)?[0] as i8),
            2 => Value::U16(u16::from_le_bytes(self.array(key)?)),
            3 => Value::I16(i16::from_le_bytes(self.array(key)?)),
            4 => Value::U32(self.u32(key)?),
            5 => Value::I32(i32::from_le_bytes(self.array(key)?)),
            6 => Value::F32(f32::from_le_bytes(self.array(key)?)),
            7 => match self.array::<1>(key)?[0] {
                0 => Value::Bool(false),
                1 => Value::Bool(true),
                b => return Err(format!("metadata `{key}`: bool byte {b} is not 0 or 1")),
            },
            8 => Value::String(self.string(key)?),
            9 => {
                let item = self.u32(key)?;
                let n = self.count(key, 1)?;
                let mut items = Vec::with_capacity(n);
                for _ in 0..n {
                    items.push(self.value(item, key)?);
                }
                Value::Array(items)
            }
            10 => Value::U64(self.u64(key)?),
            11 => Value::I64(i64::from_le_bytes(self.array(key)?)),
            12 => Value::F64(f64::from_le_bytes(self.array(key)?)),
            other => return Err(format!("metadata `{key}`: unknown value type {other}")),
        })
    }
}

impl GgufFile {
    /// Open and parse `path`; every problem is an error naming the file.
    pub fn open(path: &Path) -> Result<Self, ModelError> {
        let file = File::open(path).map_err(|e| ModelError::io(path, e))?;
        // SAFETY: the file is only read; a concurrent writer could change the mapped bytes, which
        // the reader treats like any other content (every offset is checked).
        let map = unsafe { Mmap::map(&file) }.map_err(|e| ModelError::io(path, e))?;
        let err = |message: String| ModelError::Gguf {
            path: path.to_path_buf(),
            message,
        };
        let (version, metadata, tensors) = Self::parse(&map).map_err(err)?;
        Ok(Self {
            path: path.to_path_buf(),
            version,
            metadata,
            tensors,
            map,
        })
    }

    #[allow(clippy::type_complexity)]
    fn parse(bytes: &[u8]) -> Result<(u32, BTreeMap<String, Value>, Vec<TensorInfo>), String> {
        let mut r = Reader { bytes, at: 0 };
        if r.take(4, "magic")? != b"GGUF" {
            return Err("not a GGUF file (the magic bytes are not `GGUF`)".into());
        }
        let version = r.u32("version")?;
        if !(2..=3).contains(&version) {
            return Err(format!("GGUF version {version} is not supported (2, 3)"));
        }
        let n_tensors = r.count("tensor_count", 24)?;
        let n_kv = r.count("metadata_kv_count", 12)?;
        let mut metadata = BTreeMap::new();
        for _ in 0..n_kv {
            let key = r.string("metadata key")?;
            let kind = r.u32(&key)?;
            let value = r.value(kind, &key)?;
            metadata.insert(key, value);
        }
        let mut infos = Vec::with_capacity(n_tensors);
        for _ in 0..n_tensors {
            let name = r.string("tensor name")?;
            let n_dims = r.u32(&name)? as usize;
            if n_dims == 0 || n_dims > 4 {
                return Err(format!(
                    "tensor `{name}`: {n_dims} dimensions (1 to 4 are valid)"
                ));
            }
            let dims = (0..n_dims)
                .map(|_| r.u64(&name))
                .collect::<Result<Vec<_>, _>>()?;
            let kind_id = r.u32(&name)?;
            let offset = r.u64(&name)?;
            infos.push((name, dims, kind_id, offset));
        }
        let alignment = match metadata.get("general.alignment") {
            None => 32,
            Some(v) => match v.as_u64() {
                Some(a) if a > 0 && a.is_power_of_two() => a as usize,
                _ => return Err(format!("general.alignment {v:?} is not a power of two")),
            },
        };
        let data_start = r.at.div_ceil(alignment) * alignment;
        let mut tensors = Vec::with_capacity(infos.len());
        for (name, dims, kind_id, offset) in infos {
            let kind = GgmlType::from_id(kind_id).ok_or_else(|| {
                format!(
                    "tensor `{name}`: ggml type {kind_id} is not supported ({})",
                    GgmlType::SUPPORTED
                )
            })?;
            let numel = dims
                .iter()
                .try_fold(1u64, |a, &d| a.checked_mul(d))
                .ok_or_else(|| format!("tensor `{name}`: dims {dims:?} overflow"))?;
            let (block, block_bytes) = kind.block();
            if dims[0] % block as u64 != 0 {
                return Err(format!(
                    "tensor `{name}`: row length {} is not a multiple of {kind:?}'s block of {block}",
                    dims[0]
                ));
            }
            let len = (numel / block as u64)
                .checked_mul(block_bytes as u64)
                .ok_or_else(|| format!("tensor `{name}`: size overflows"))?;
            if !(offset as usize).is_multiple_of(alignment) {
                return Err(format!(
                    "tensor `{name}`: offset {offset} is not aligned to {alignment}"
                ));
            }
            let start = (data_start as u64)
                .checked_add(offset)
                .ok_or_else(|| format!("tensor `{name}`: offset overflows"))?;
            let end = start.checked_add(len).filter(|&e| e <= bytes.len() as u64).ok_or_else(|| {
                format!(
                    "truncated: tensor `{name}` ({kind:?}, {len} bytes at offset {start}) runs past the end of the file ({} bytes)",
                    bytes.len()
                )
            })?;
            let _ = end;
            tensors.push(TensorInfo {
                name,
                dims,
                kind,
                start: start as usize,
                len: len as usize,
            });
        }
        Ok((version, metadata, tensors))
    }

    pub fn get(&self, key: &str) -> Option<&Value> {
        self.metadata.get(key)
    }

    pub fn tensor(&self, name: &str) -> Option<&TensorInfo> {
        self.tensors.iter().find(|t| t.name == name)
    }

    /// The tensor's values as f32 in row-major order ([`TensorInfo::shape`]).
    pub fn dequantize(&self, info: &TensorInfo) -> Vec<f32> {
        quants::dequantize(
            info.kind,
            &self.map[info.start..info.start + info.len],
            info.numel(),
        )
    }
}
