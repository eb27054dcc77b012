//! One-pass optimizer kernels for burn-flex, dsmath's CPU backend (Training issue, item 8):
//! AdamW's update of one parameter and a gradient's sum of squares (for global-norm clipping).
//!
//! Written with burn ops (`optim.rs`), AdamW is ~15 whole-tensor passes per parameter (decay,
//! two moments, square root, divide, scale, subtract, each allocating or rewriting a buffer); on
//! the 25M benchmark model that was 0.25 s of a 1.4 s step against PyTorch's 0.15 s. Here it is
//! one pass over `p`, `g`, `m`, `v` split over rayon. The arithmetic is the same f32 operations in
//! the same order as the burn-op version, so the two give bitwise identical parameters and
//! moments (`train/tests/optim.rs` checks it). Other backends (and non-f32 tensors) keep the
//! burn-op version: [`adamw`] returns its inputs untouched when it does not apply.

use std::any::{Any, TypeId};

use burn::tensor::backend::Backend;
use burn::tensor::{DType, Tensor, TensorData, TensorPrimitive};
use burn_flex::FlexTensor;
use rayon::prelude::*;

use crate::optim::{AdamWStep, Updated};

/// Elements per rayon task (the burn-flex patches' parallel threshold).
const CHUNK: usize = 1 << 15;

/// `true` when `B` stores float tensors as burn-flex tensors.
fn is_flex<B: Backend>() -> bool {
    TypeId::of::<B::FloatTensorPrimitive>() == TypeId::of::<FlexTensor>()
}

fn to_flex<B: Backend>(t: Tensor<B, 1>) -> FlexTensor {
    let TensorPrimitive::Float(p) = t.into_primitive() else {
        unreachable!("checked: f32 tensors")
    };
    let any: Box<dyn Any> = Box::new(p);
    let t = *any
        .downcast::<FlexTensor>()
        .expect("checked: B's float tensors are FlexTensor");
    if t.is_contiguous()
        && t.layout().start_offset() == 0
        && t.bytes().len() == t.layout().num_elements() * 4
    {
        t
    } else {
        t.to_contiguous()
    }
}

fn from_flex<B: Backend>(t: FlexTensor) -> Tensor<B, 1> {
    let any: Box<dyn Any> = Box::new(t);
    Tensor::from_primitive(TensorPrimitive::Float(
        *any.downcast::<B::FloatTensorPrimitive>().expect("checked"),
    ))
}

/// One AdamW step of the flat parameter `p` with gradient `g` and moments `m`, `v` (`None`
/// before the first step) in one pass, when `B` is burn-flex and all are f32; otherwise
/// `Err` with the inputs unchanged, for the burn-op version.
#[allow(clippy::type_complexity)]
pub fn adamw<B: Backend>(
    p: Tensor<B, 1>,
    g: Tensor<B, 1>,
    m: Option<Tensor<B, 1>>,
    v: Option<Tensor<B, 1>>,
    s: &AdamWStep,
) -> Result<
    Updated<B>,
    (
        Tensor<B, 1>,
        Tensor<B, 1>,
        Option<Tensor<B, 1>>,
        Option<Tensor<B, 1>>,
    ),
> {
    let f32s = [Some(&p), Some(&g), m.as_ref(), v.as_ref()]
        .iter()
        .flatten()
        .all(|t| t.dtype() == DType::F32);
    let n = p.dims()[0];
    let same_len = g.dims()[0] == n
        && m.as_ref().is_none_or(|m| m.dims()[0] == n)
        && v.as_ref().is_none_or(|v| v.dims()[0] == n);
    if !is_flex::<B>() || !f32s || !same_len {
        return Err((p, g, m, v));
    }
    let (mut p, g) = (to_flex(p), to_flex(g));
    // No moment yet (first step): a new buffer, which `update` writes without reading.
    let fresh = |t: Option<Tensor<B, 1>>| {
        t.map_or_else(
            || FlexTensor::from_data(TensorData::new(vec![0f32; n], [n])),
            to_flex,
        )
    };
    let first = (m.is_none(), v.is_none());
    let (mut m, mut v) = (fresh(m), fresh(v));
    {
        let (pd, md, vd) = (
            p.storage_mut::<f32>(),
            m.storage_mut::<f32>(),
            v.storage_mut::<f32>(),
        );
        let gd = g.storage::<f32>();
        let s = *s;
        pd.par_chunks_mut(CHUNK)
            .zip(md.par_chunks_mut(CHUNK))
            .zip(vd.par_chunks_mut(CHUNK))
            .zip(gd.par_chunks(CHUNK))
            .for_each(|(((p, m), v), g)| update(p, m, v, g, &s, first));
    }
    Ok((from_flex(p), from_flex(m), from_flex(v)))
}

/// The update on one chunk: `optim.rs`'s burn ops, element by element, in the same order.
/// `first`: (no first moment yet, no second moment yet).
fn update(
    p: &mut [f32],
    m: &mut [f32],
    v: &mut [f32],
    g: &[f32],
    s: &AdamWStep,
    first: (bool, bool),
) {
    for i in 0..p.len() {
        let gi = g[i];
        // First step: the moments are `g (1 - beta)` and `g^2 (1 - beta)` (no zero state added).
        let mi = if first.0 {
            gi * s.one_minus_beta1
        } else {
            m[i] * s.beta1 + gi * s.one_minus_beta1
        };
        let vi = if first.1 {
            (gi * gi) * s.one_minus_beta2
        } else {
            v[i] * s.beta2 + (gi * gi) * s.one_minus_beta2
        };
        let pi = match s.decay {
            Some(d) => p[i] * d,
            None => p[i],
        };
        let denom = vi.sqrt() / s.sqrt_bc2 + s.eps;
        p[i] = pi - (mi / denom) * s.step_size;
        m[i] = mi;
        v[i] = vi;
    }
}

/// `sum(g^2)` of a flat gradient, in f64 over f32 partial sums of 16 lanes per chunk (so the
/// compiler vectorises it), chunks over rayon and summed in order (deterministic), when `B` is
/// burn-flex and `g` is f32; `None` otherwise.
pub fn sum_squares<B: Backend>(g: &Tensor<B, 1>) -> Option<f64> {
    if !is_flex::<B>() || g.dtype() != DType::F32 {
        return None;
    }
    let t = to_flex(g.clone());
    let parts: Vec<f64> = t
        .storage::<f32>()
        .par_chunks(CHUNK)
        .map(chunk_sum_squares)
        .collect();
    Some(parts.iter().sum())
}

fn chunk_sum_squares(c: &[f32]) -> f64 {
    let mut total = 0f64;
    for block in c.chunks(1024) {
        let mut lanes = [0f32; 16];
        let mut it = block.chunks_exact(16);
        for x in &mut it {
            for j in 0..16 {
                lanes[j] += x[j] * x[j];
            }
        }
        let tail: f32 = it.remainder().iter().map(|x| x * x).sum();
        total += lanes.iter().map(|&l| l as f64).sum::<f64>() + tail as f64;
    }
    total
}
