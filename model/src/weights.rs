//! Weights I/O in HF layout: safetensors (single file or sharded with `model.safetensors.index.json`),
//! bf16 / f16 / f32 on disk converted to f32; every mismatch collected and reported by tensor name.

use std::collections::{BTreeMap, BTreeSet};
use std::fs::File;
use std::path::{Path, PathBuf};

use burn::tensor::{Tensor, TensorData, backend::Backend};
use memmap2::Mmap;
use rand::SeedableRng;
use rand_distr::{Distribution, Normal};
use safetensors::{Dtype, SafeTensors, tensor::TensorView};

use crate::ModelError;

/// Where a model's tensors come from: a checkpoint on disk or a random initialisation.
/// The model is built by asking for each HF tensor name with its expected shape.
pub trait WeightSource {
    /// The tensor `name`, which must have `shape`, as f32 data; `init` says how a freshly
    /// initialised model fills it. `None` means it could not be provided (recorded for the report).
    fn take(&mut self, name: &str, shape: &[usize], init: Init) -> Option<TensorData>;
    /// Everything that went wrong, reported once after the whole model was requested.
    fn finish(self) -> Result<(), ModelError>;
}

/// How a tensor is initialised when a model is created from scratch (HF `_init_weights`).
#[derive(Debug, Clone, Copy)]
pub enum Init {
    Normal(f64),
    Ones,
    Zeros,
}

/// Fresh weights, HF-style: normal(0, initializer_range) matrices, ones for norms, zeros for biases.
pub struct RandomInit {
    rng: rand_chacha::ChaCha8Rng,
}

impl RandomInit {
    pub fn new(seed: u64) -> Self {
        Self {
            rng: rand_chacha::ChaCha8Rng::seed_from_u64(seed),
        }
    }
}

impl WeightSource for RandomInit {
    fn take(&mut self, _name: &str, shape: &[usize], init: Init) -> Option<TensorData> {
        let n: usize = shape.iter().product();
        let values: Vec<f32> = match init {
            Init::Ones => vec![1.0; n],
            Init::Zeros => vec![0.0; n],
            Init::Normal(std) => {
                let dist = Normal::new(0.0f32, std as f32).expect("std is finite");
                (0..n).map(|_| dist.sample(&mut self.rng)).collect()
            }
        };
        Some(TensorData::new(values, shape.to_vec()))
    }

    fn finish(self) -> Result<(), ModelError> {
        Ok(())
    }
}

/// The safetensors files of a checkpoint directory, memory-mapped.
pub struct SafetensorsDir {
    files: Vec<(PathBuf, Mmap)>,
    /// tensor name -> index into `files`
    index: BTreeMap<String, usize>,
    taken: BTreeSet<String>,
    missing: Vec<String>,
    mismatched: Vec<String>,
}

impl SafetensorsDir {
    /// Open `model.safetensors`, or every shard listed by `model.safetensors.index.json`.
    pub fn open(dir: &Path) -> Result<Self, ModelError> {
        let index_path = dir.join("model.safetensors.index.json");
        let single = dir.join("model.safetensors");
        let shard_names: Vec<String> = if index_path.exists() {
            let text =
                std::fs::read_to_string(&index_path).map_err(|e| ModelError::io(&index_path, e))?;
            let json: serde_json::Value =
                serde_json::from_str(&text).map_err(|e| ModelError::Safetensors {
                    path: index_path.clone(),
                    message: e.to_string(),
                })?;
            let map = json
                .get("weight_map")
                .and_then(|m| m.as_object())
                .ok_or_else(|| ModelError::Safetensors {
                    path: index_path.clone(),
                    message: "no `weight_map` object".into(),
                })?;
            let mut names: Vec<String> = map
                .values()
                .filter_map(|v| v.as_str().map(str::to_string))
                .collect();
            names.sort();
            names.dedup();
            names
        } else if single.exists() {
            vec!["model.safetensors".into()]
        } else {
            return Err(ModelError::io(
                &single,
                std::io::Error::new(
                    std::io::ErrorKind::NotFound,
                    "no model.safetensors or model.safetensors.index.json in the model directory",
                ),
            ));
        };
        let mut files = Vec::new();
        let mut index = BTreeMap::new();
        for name in shard_names {
            let path = dir.join(&name);
            let file = File::open(&path).map_err(|e| ModelError::io(&path, e))?;
            // SAFETY: the map is read-only; a checkpoint modified while loaded is the user's error
            // and at worst yields wrong numbers, which the parity tests would show.
            let mmap = unsafe { Mmap::map(&file) }.map_err(|e| ModelError::io(&path, e))?;
            let st = SafeTensors::deserialize(&mmap).map_err(|e| ModelError::Safetensors {
                path: path.clone(),
                message: e.to_string(),
            })?;
            for tensor in st.names() {
                index.insert(tensor.to_string(), files.len());
            }
            files.push((path, mmap));
        }
        Ok(Self {
            files,
            index,
            taken: BTreeSet::new(),
            missing: vec![],
            mismatched: vec![],
        })
    }

    /// Names of all tensors in the checkpoint.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.index.keys().map(String::as_str)
    }

    fn view(&self, name: &str) -> Option<(&Path, TensorView<'_>)> {
        let &file = self.index.get(name)?;
        let (path, mmap) = &self.files[file];
        let st = SafeTensors::deserialize(mmap).ok()?;
        st.tensor(name).ok().map(|v| (path.as_path(), v))
    }
}

impl WeightSource for SafetensorsDir {
    fn take(&mut self, name: &str, shape: &[usize], _init: Init) -> Option<TensorData> {
        let Some((path, view)) = self.view(name) else {
            self.missing.push(name.to_string());
            return None;
        };
        let result = if view.shape() != shape {
            Err(format!("shape {:?}, expected {:?}", view.shape(), shape))
        } else {
            to_f32(view.dtype(), view.data()).map(|v| TensorData::new(v, shape.to_vec()))
        };
        let path = path.display().to_string();
        self.taken.insert(name.to_string());
        match result {
            Ok(data) => Some(data),
            Err(msg) => {
                self.mismatched.push(format!("{name} in {path}: {msg}"));
                None
            }
        }
    }

    fn finish(self) -> Result<(), ModelError> {
        let unexpected: Vec<&String> = self
            .index
            .keys()
            .filter(|k| !self.taken.contains(*k))
            .collect();
        if self.missing.is_empty() && self.mismatched.is_empty() && unexpected.is_empty() {
            return Ok(());
        }
        let files: Vec<String> = self
            .files
            .iter()
            .map(|(p, _)| p.display().to_string())
            .collect();
        let mut msg = format!("checkpoint files: {}\n", files.join(", "));
        let mut list = |title: &str, items: Vec<String>| {
            if !items.is_empty() {
                msg.push_str(&format!(
                    "{title} ({}): {}\n",
                    items.len(),
                    items.join(", ")
                ));
            }
        };
        list("missing keys", self.missing.clone());
        list("unexpected keys", unexpected.into_iter().cloned().collect());
        list("shape/dtype mismatches", self.mismatched.clone());
        Err(ModelError::Weights(msg))
    }
}

/// Convert raw little-endian safetensors bytes to f32.
fn to_f32(dtype: Dtype, bytes: &[u8]) -> Result<Vec<f32>, String> {
    let conv = |width: usize, f: &dyn Fn(&[u8]) -> f32| -> Vec<f32> {
        bytes.chunks_exact(width).map(f).collect()
    };
    Ok(match dtype {
        Dtype::F32 => conv(4, &|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])),
        Dtype::F16 => conv(2, &|b| half::f16::from_le_bytes([b[0], b[1]]).to_f32()),
        Dtype::BF16 => conv(2, &|b| half::bf16::from_le_bytes([b[0], b[1]]).to_f32()),
        Dtype::F64 => conv(8, &|b| f64::from_le_bytes(b.try_into().unwrap()) as f32),
        other => return Err(format!("dtype {other:?} is not a float type dsmath loads")),
    })
}

/// On-disk dtype for [`save_safetensors`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SaveDtype {
    F32,
    BF16,
}

/// Write named tensors as one HF-compatible safetensors file (metadata `format: pt`), atomically:
/// the bytes go to `<path>.tmp`, which is then renamed over `path`.
pub fn save_safetensors(
    path: &Path,
    tensors: Vec<(String, TensorData)>,
    dtype: SaveDtype,
) -> Result<(), ModelError> {
    let mut bufs: Vec<(String, Vec<usize>, Vec<u8>)> = Vec::with_capacity(tensors.len());
    for (name, data) in tensors {
        let shape = data.shape.clone();
        let values = data
            .convert::<f32>()
            .to_vec::<f32>()
            .map_err(|e| ModelError::Backend(format!("{name}: {e:?}")))?;
        let bytes: Vec<u8> = match dtype {
            SaveDtype::F32 => values.iter().flat_map(|v| v.to_le_bytes()).collect(),
            SaveDtype::BF16 => values
                .iter()
                .flat_map(|v| half::bf16::from_f32(*v).to_le_bytes())
                .collect(),
        };
        bufs.push((name, shape.to_vec(), bytes));
    }
    let st_dtype = match dtype {
        SaveDtype::F32 => Dtype::F32,
        SaveDtype::BF16 => Dtype::BF16,
    };
    let views: Vec<(String, TensorView<'_>)> = bufs
        .iter()
        .map(|(n, s, b)| {
            (
                n.clone(),
                TensorView::new(st_dtype, s.clone(), b).expect("sizes agree"),
            )
        })
        .collect();
    let metadata = Some(std::collections::HashMap::from([(
        "format".to_string(),
        "pt".to_string(),
    )]));
    let tmp = path.with_extension("safetensors.tmp");
    safetensors::serialize_to_file(views, metadata, &tmp).map_err(|e| ModelError::Safetensors {
        path: tmp.clone(),
        message: e.to_string(),
    })?;
    std::fs::rename(&tmp, path).map_err(|e| ModelError::io(path, e))
}

/// A tensor from f32 data on `device`.
pub fn tensor_from<B: Backend, const D: usize>(
    data: TensorData,
    device: &B::Device,
) -> Tensor<B, D> {
    Tensor::from_data(data, device)
}
