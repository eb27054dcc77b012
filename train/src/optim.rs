//! AdamW (Loshchilov & Hutter; PyTorch's update order) with DeepSeekMath's settings (§3.1:
//! β = (0.9, 0.95), weight decay 0.1) applied only to weights of rank >= 2 (never to norms and
//! biases), and global gradient-norm clipping across all parameters as
//! `torch.nn.utils.clip_grad_norm_` does (Burn's built-in clipping is per tensor). Gradients and
//! moments are flat tensors in the model's parameter order, so they can be summed over
//! micro-batches, all-reduced, and saved / restored exactly.

use std::collections::HashMap;
use std::path::Path;

use burn::module::{AutodiffModule, ModuleMapper, ModuleVisitor, Param};
use burn::tensor::backend::{AutodiffBackend, Backend};
use burn::tensor::{Tensor, TensorData};
use serde::{Deserialize, Serialize};

use crate::error::TrainError;
use crate::fused;

/// Flat per-parameter gradients in parameter order (`None`: the parameter got no gradient).
pub type FlatGrads<B> = Vec<Option<Tensor<B, 1>>>;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AdamWConfig {
    pub beta1: f64,
    pub beta2: f64,
    pub eps: f64,
    pub weight_decay: f64,
    /// Global gradient-norm clip (0 = off).
    pub grad_clip: f64,
}

impl Default for AdamWConfig {
    fn default() -> Self {
        AdamWConfig {
            beta1: 0.9,
            beta2: 0.95,
            eps: 1e-8,
            weight_decay: 0.1,
            grad_clip: 1.0,
        }
    }
}

struct Collect<'a, B: AutodiffBackend> {
    grads: &'a B::Gradients,
    out: FlatGrads<B::InnerBackend>,
}

impl<B: AutodiffBackend> ModuleVisitor<B> for Collect<'_, B> {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<B, D>>) {
        let g = param.val().grad(self.grads).map(|g| {
            let n = g.shape().num_elements();
            g.reshape([n])
        });
        self.out.push(g);
    }
}

/// The gradients of `model`'s parameters from one backward pass.
pub fn collect_grads<B: AutodiffBackend, M: AutodiffModule<B>>(
    model: &M,
    grads: &B::Gradients,
) -> FlatGrads<B::InnerBackend> {
    let mut c = Collect::<B> { grads, out: vec![] };
    model.visit(&mut c);
    c.out
}

/// `acc += new`, parameter by parameter.
pub fn accumulate<B: Backend>(acc: &mut FlatGrads<B>, new: FlatGrads<B>) {
    if acc.is_empty() {
        *acc = new;
        return;
    }
    for (a, n) in acc.iter_mut().zip(new) {
        *a = match (a.take(), n) {
            (Some(x), Some(y)) => Some(x + y),
            (x, y) => x.or(y),
        };
    }
}

/// The global L2 norm of all gradients (one host sync; on burn-flex one pass per gradient,
/// summed in f64: `fused::sum_squares`).
pub fn global_norm<B: Backend>(grads: &FlatGrads<B>) -> f64 {
    if let Some(total) = grads
        .iter()
        .flatten()
        .map(fused::sum_squares)
        .sum::<Option<f64>>()
    {
        return total.sqrt();
    }
    let parts: Vec<Tensor<B, 1>> = grads
        .iter()
        .flatten()
        .map(|g| g.clone().square().sum())
        .collect();
    if parts.is_empty() {
        return 0.0;
    }
    let total: f64 = Tensor::cat(parts, 0).sum().into_scalar().elem();
    total.sqrt()
}

use burn::tensor::ElementConversion;

/// Multiply every gradient by `s`.
pub fn scale<B: Backend>(grads: FlatGrads<B>, s: f64) -> FlatGrads<B> {
    grads
        .into_iter()
        .map(|g| g.map(|g| g.mul_scalar(s)))
        .collect()
}

/// AdamW state: step count and first / second moments in parameter order.
pub struct AdamW<B: Backend> {
    pub cfg: AdamWConfig,
    pub step: u64,
    m: FlatGrads<B>,
    v: FlatGrads<B>,
}

struct Update<'a, B: AutodiffBackend> {
    opt: &'a mut AdamW<B::InnerBackend>,
    grads: FlatGrads<B::InnerBackend>,
    lr: f64,
    idx: usize,
}

impl<B: AutodiffBackend> ModuleMapper<B> for Update<'_, B> {
    fn map_float<const D: usize>(&mut self, param: Param<Tensor<B, D>>) -> Param<Tensor<B, D>> {
        let i = self.idx;
        self.idx += 1;
        let (id, tensor, mapper) = param.consume();
        let Some(g) = self.grads.get_mut(i).and_then(Option::take) else {
            return Param::from_mapped_value(id, tensor, mapper);
        };
        let shape = tensor.shape();
        let p = tensor.inner().reshape([shape.num_elements()]);
        let s = AdamWStep::new(&self.opt.cfg, self.lr, self.opt.step, D >= 2);
        let (p, m, v) = match fused::adamw(p, g, self.opt.m[i].take(), self.opt.v[i].take(), &s) {
            Ok(pmv) => pmv,
            Err((p, g, m, v)) => adamw_ops(p, g, m, v, &s),
        };
        self.opt.m[i] = Some(m);
        self.opt.v[i] = Some(v);
        let out = Tensor::<B, D>::from_inner(p.reshape(shape)).require_grad();
        Param::from_mapped_value(id, out, mapper)
    }
}

/// AdamW's constants for one update, rounded to f32 as the burn ops round their scalars.
#[derive(Debug, Clone, Copy)]
pub struct AdamWStep {
    /// `1 - lr * weight_decay`, or `None` when the parameter is not decayed.
    pub decay: Option<f32>,
    pub beta1: f32,
    pub one_minus_beta1: f32,
    pub beta2: f32,
    pub one_minus_beta2: f32,
    /// `sqrt(1 - beta2^t)`.
    pub sqrt_bc2: f32,
    pub eps: f32,
    /// `lr / (1 - beta1^t)`.
    pub step_size: f32,
}

impl AdamWStep {
    /// The constants of update number `step` (1-based) at learning rate `lr`; `decayed`: a weight
    /// of rank >= 2 (norms and biases are never decayed).
    pub fn new(cfg: &AdamWConfig, lr: f64, step: u64, decayed: bool) -> Self {
        let t = step as i32;
        let (bc1, bc2) = (1.0 - cfg.beta1.powi(t), 1.0 - cfg.beta2.powi(t));
        AdamWStep {
            decay: (decayed && cfg.weight_decay > 0.0)
                .then_some((1.0 - lr * cfg.weight_decay) as f32),
            beta1: cfg.beta1 as f32,
            one_minus_beta1: (1.0 - cfg.beta1) as f32,
            beta2: cfg.beta2 as f32,
            one_minus_beta2: (1.0 - cfg.beta2) as f32,
            sqrt_bc2: bc2.sqrt() as f32,
            eps: cfg.eps as f32,
            step_size: (lr / bc1) as f32,
        }
    }
}

/// Parameter, first moment, second moment after one AdamW step.
pub type Updated<B> = (Tensor<B, 1>, Tensor<B, 1>, Tensor<B, 1>);

/// One AdamW step in burn ops (PyTorch's order: decay, moments, bias-corrected update), for
/// every backend; `fused::adamw` is the same arithmetic in one pass on burn-flex.
pub fn adamw_ops<B: Backend>(
    mut p: Tensor<B, 1>,
    g: Tensor<B, 1>,
    m: Option<Tensor<B, 1>>,
    v: Option<Tensor<B, 1>>,
    s: &AdamWStep,
) -> Updated<B> {
    if let Some(decay) = s.decay {
        p = p.mul_scalar(decay); // as torch's AdamW: one pass, in place
    }
    let m = match m {
        Some(m) => m.mul_scalar(s.beta1) + g.clone().mul_scalar(s.one_minus_beta1),
        None => g.clone().mul_scalar(s.one_minus_beta1),
    };
    let v = match v {
        Some(v) => v.mul_scalar(s.beta2) + (g.clone() * g).mul_scalar(s.one_minus_beta2),
        None => (g.clone() * g).mul_scalar(s.one_minus_beta2),
    };
    let denom = v.clone().sqrt().div_scalar(s.sqrt_bc2).add_scalar(s.eps);
    p = p - (m.clone() / denom).mul_scalar(s.step_size);
    (p, m, v)
}

impl<B: Backend> AdamW<B> {
    pub fn new(cfg: AdamWConfig) -> Self {
        AdamW {
            cfg,
            step: 0,
            m: vec![],
            v: vec![],
        }
    }

    /// One update of `model` with already clipped / averaged `grads`.
    pub fn step<AB: AutodiffBackend<InnerBackend = B>, M: AutodiffModule<AB>>(
        &mut self,
        model: M,
        grads: FlatGrads<B>,
        lr: f64,
    ) -> M {
        if self.m.len() != grads.len() {
            self.m = vec![None; grads.len()];
            self.v = vec![None; grads.len()];
        }
        self.step += 1;
        let mut u = Update::<AB> {
            opt: self,
            grads,
            lr,
            idx: 0,
        };
        model.map(&mut u)
    }

    /// Save moments and step as safetensors (`m.<i>`, `v.<i>`, f32) next to a checkpoint.
    pub fn save(&self, path: &Path) -> Result<(), TrainError> {
        let mut tensors: Vec<(String, Vec<u8>, usize)> = vec![];
        for (name, list) in [("m", &self.m), ("v", &self.v)] {
            for (i, t) in list.iter().enumerate() {
                if let Some(t) = t {
                    let data = t.clone().into_data().convert::<f32>();
                    let vals = data
                        .to_vec::<f32>()
                        .map_err(|e| TrainError::Backend(format!("{e:?}")))?;
                    tensors.push((
                        format!("{name}.{i}"),
                        vals.iter().flat_map(|x| x.to_le_bytes()).collect(),
                        vals.len(),
                    ));
                }
            }
        }
        let views: Vec<(String, safetensors::tensor::TensorView)> = tensors
            .iter()
            .map(|(n, b, len)| {
                (
                    n.clone(),
                    safetensors::tensor::TensorView::new(safetensors::Dtype::F32, vec![*len], b)
                        .unwrap(),
                )
            })
            .collect();
        let mut meta = HashMap::new();
        meta.insert("step".to_string(), self.step.to_string());
        meta.insert("params".to_string(), self.m.len().to_string());
        let bytes = safetensors::serialize(views, Some(meta))
            .map_err(|e| TrainError::Io(path.into(), e.to_string()))?;
        dsmath_model::checkpoint::write_atomic(path, &bytes)
            .map_err(|e| TrainError::Io(path.into(), e.to_string()))
    }

    pub fn load(cfg: AdamWConfig, path: &Path, device: &B::Device) -> Result<Self, TrainError> {
        let bytes = std::fs::read(path).map_err(|e| TrainError::Io(path.into(), e.to_string()))?;
        let (_, meta) = safetensors::SafeTensors::read_metadata(&bytes)
            .map_err(|e| TrainError::Io(path.into(), format!("not a safetensors file: {e}")))?;
        let st = safetensors::SafeTensors::deserialize(&bytes)
            .map_err(|e| TrainError::Io(path.into(), e.to_string()))?;
        let info = meta.metadata().clone().unwrap_or_default();
        let get = |k: &str| {
            info.get(k)
                .and_then(|v| v.parse::<u64>().ok())
                .ok_or_else(|| TrainError::Io(path.into(), format!("missing `{k}` metadata")))
        };
        let (step, n) = (get("step")?, get("params")? as usize);
        let mut opt = AdamW {
            cfg,
            step,
            m: vec![None; n],
            v: vec![None; n],
        };
        for (name, view) in st.tensors() {
            let (kind, i) = name.split_once('.').ok_or_else(|| {
                TrainError::Io(path.into(), format!("unexpected tensor `{name}`"))
            })?;
            let i: usize = i
                .parse()
                .map_err(|_| TrainError::Io(path.into(), format!("unexpected tensor `{name}`")))?;
            if i >= n {
                return Err(TrainError::Io(
                    path.into(),
                    format!("tensor `{name}` beyond {n} parameters"),
                ));
            }
            let vals: Vec<f32> = view
                .data()
                .chunks_exact(4)
                .map(|c| f32::from_le_bytes(c.try_into().unwrap()))
                .collect();
            let t = Tensor::<B, 1>::from_data(TensorData::new(vals.clone(), [vals.len()]), device);
            match kind {
                "m" => opt.m[i] = Some(t),
                "v" => opt.v[i] = Some(t),
                _ => {
                    return Err(TrainError::Io(
                        path.into(),
                        format!("unexpected tensor `{name}`"),
                    ));
                }
            }
        }
        Ok(opt)
    }
}

/// Clip to `max_norm` as torch does: `g *= max_norm / (norm + 1e-6)` when that is below 1.
/// Returns the clipped gradients and the norm before clipping.
pub fn clip<B: Backend>(grads: FlatGrads<B>, max_norm: f64) -> (FlatGrads<B>, f64) {
    let norm = global_norm(&grads);
    if max_norm > 0.0 && norm.is_finite() {
        let coef = max_norm / (norm + 1e-6);
        if coef < 1.0 {
            return (scale(grads, coef), norm);
        }
    }
    (grads, norm)
}
