//! Data-parallel training over burn-collective (the Training issue, item 7): one thread per
//! device, each with a replica of the model; every peer draws the same step batch and runs its
//! share of the micro-batches (micro-batch `k` on peer `k % world`), the gradients (already
//! weighted by each micro-batch's share of the step's target tokens) are summed across peers with
//! one all-reduce, and every peer makes the same AdamW update, so the replicas stay identical and
//! the step equals the single-device step on the whole batch. Rank 0 writes metrics and
//! checkpoints. A peer that fails releases the others from the all-reduce and the run returns its
//! error. Multi-node runs need burn-collective's global orchestrator (not wired here).

use std::marker::PhantomData;
use std::path::Path;
use std::sync::{Arc, Mutex};

use burn::module::{AutodiffModule, ModuleVisitor, Param};
use burn::tensor::backend::{AutodiffBackend, Backend};
use burn::tensor::{Tensor, TensorPrimitive};
use burn_collective::{CollectiveConfig, PeerId, ReduceOperation, all_reduce, finish_collective, register, reset_collective};

use crate::error::TrainError;
use crate::optim::FlatGrads;
use crate::trainer::{StepMetrics, TrainConfig, Trainer};

/// This peer's place in the data-parallel group.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Peer {
    pub rank: usize,
    pub world: usize,
}

fn collective_err(e: burn_collective::CollectiveError) -> TrainError {
    TrainError::Backend(format!("burn-collective: {e:?}"))
}

struct Sizes(Vec<usize>);

impl<B: Backend> ModuleVisitor<B> for Sizes {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<B, D>>) {
        self.0.push(param.val().shape().num_elements());
    }
}

/// Sum `grads` (and the step's `loss`) over all peers with one all-reduce of a flat buffer:
/// every parameter's gradient (zeros where this peer has none), one has-gradient flag per
/// parameter, and the loss. A parameter gets a gradient if any peer had one.
pub fn all_reduce_grads<AB: AutodiffBackend, M: AutodiffModule<AB>>(peer: Peer, model: &M, grads: FlatGrads<AB::InnerBackend>, loss: f64, device: &AB::Device) -> Result<(FlatGrads<AB::InnerBackend>, f64), TrainError> {
    let mut sizes = Sizes(vec![]);
    model.visit(&mut sizes);
    let sizes = sizes.0;
    let np = sizes.len();
    let mut parts: Vec<Tensor<AB::InnerBackend, 1>> = Vec::with_capacity(np + 1);
    let mut flags = Vec::with_capacity(np + 1);
    for (i, &n) in sizes.iter().enumerate() {
        match grads.get(i).cloned().flatten() {
            Some(g) => {
                parts.push(g);
                flags.push(1.0f32);
            }
            None => {
                parts.push(Tensor::zeros([n], device));
                flags.push(0.0);
            }
        }
    }
    flags.push(loss as f32);
    parts.push(Tensor::from_floats(flags.as_slice(), device));
    let flat = Tensor::cat(parts, 0); // [sum(sizes) + np + 1]
    let reduced = all_reduce::<AB::InnerBackend>(PeerId::from(peer.rank), flat.into_primitive().tensor(), ReduceOperation::Sum).map_err(collective_err)?;
    let reduced = Tensor::<AB::InnerBackend, 1>::from_primitive(TensorPrimitive::Float(reduced));
    let total: usize = sizes.iter().sum();
    let tail: Vec<f32> = reduced.clone().narrow(0, total, np + 1).into_data().convert::<f32>().to_vec().unwrap_or_default();
    let mut out = Vec::with_capacity(np);
    let mut at = 0;
    for (i, &n) in sizes.iter().enumerate() {
        out.push((tail[i] > 0.0).then(|| reduced.clone().narrow(0, at, n)));
        at += n;
    }
    Ok((out, tail[np] as f64))
}

/// Train `cfg` in `out` on `devices` (one peer each; on a CPU backend the peers are threads
/// sharing it) and return rank 0's metrics. `train.batch_size / train.micro_batch` must be a
/// multiple of the number of devices.
pub fn train_data_parallel<AB: AutodiffBackend>(cfg: TrainConfig, out: &Path, devices: Vec<AB::Device>, stop_after: Option<u64>, progress: bool) -> Result<Vec<StepMetrics>, TrainError> {
    let world = devices.len();
    let micro = cfg.train.batch_size / cfg.train.micro_batch.max(1);
    if world == 0 || micro % world != 0 {
        return Err(TrainError::Config(out.join("config.toml"), format!("train.batch_size / train.micro_batch = {micro} micro-batches do not split over {world} devices")));
    }
    let metrics = run_peers::<AB::InnerBackend, _>(devices, |peer, device| Trainer::<AB>::new(cfg.clone(), out, &device).and_then(|t| t.with_peer(peer).run(stop_after, progress && peer.rank == 0)))?;
    Ok(metrics.into_iter().next().unwrap_or_default())
}

/// Run `f(peer, device)` on one thread per device, each registered with burn-collective as a
/// peer of `B` (so `f` may call [`all_reduce_grads`]), and return the results in rank order. A
/// peer that fails (an error or a panic) while the others wait in an all-reduce would leave them
/// waiting for ever: the first to fail records its rank and resets the collective, which drops
/// the pending operation, so the others' all-reduce returns an error and they stop; the run then
/// returns the first failure's error.
pub fn run_peers<B: Backend, T: Send>(devices: Vec<B::Device>, f: impl Fn(Peer, B::Device) -> Result<T, TrainError> + Sync) -> Result<Vec<T>, TrainError> {
    let world = devices.len();
    let first_failure: Arc<Mutex<Option<usize>>> = Arc::default();
    let results: Vec<Result<T, TrainError>> = std::thread::scope(|s| {
        let handles: Vec<_> = devices
            .into_iter()
            .enumerate()
            .map(|(rank, device)| {
                let (f, first_failure) = (&f, first_failure.clone());
                s.spawn(move || -> Result<T, TrainError> {
                    let mut guard = AbortOthers::<B> { rank, first_failure, ok: false, backend: PhantomData };
                    let id = PeerId::from(rank);
                    register::<B>(id, device.clone(), CollectiveConfig::default().with_num_devices(world)).map_err(collective_err)?;
                    let out = f(Peer { rank, world }, device)?;
                    finish_collective::<B>(id).map_err(collective_err)?;
                    guard.ok = true;
                    Ok(out)
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap_or_else(|_| Err(TrainError::Backend("a data-parallel peer panicked".into())))).collect()
    });
    if let Some(rank) = *first_failure.lock().unwrap_or_else(|e| e.into_inner()) {
        // The cause, not the others' "all-reduce aborted" that followed it.
        for (r, res) in results.iter().enumerate() {
            if let (Err(e), true) = (res, r != rank) {
                eprintln!("data-parallel peer {r} stopped after peer {rank} failed: {e}");
            }
        }
        return match results.into_iter().nth(rank) {
            Some(Err(e)) => Err(e),
            _ => Err(TrainError::Backend(format!("data-parallel peer {rank} failed"))),
        };
    }
    results.into_iter().collect()
}

/// Dropped without `ok` (an error return or a panic): if no peer has failed before, record this
/// rank and reset the collective so that peers blocked in an all-reduce are released with an error.
struct AbortOthers<B: Backend> {
    rank: usize,
    first_failure: Arc<Mutex<Option<usize>>>,
    ok: bool,
    backend: PhantomData<B>,
}

impl<B: Backend> Drop for AbortOthers<B> {
    fn drop(&mut self) {
        if self.ok {
            return;
        }
        let mut first = self.first_failure.lock().unwrap_or_else(|e| e.into_inner());
        if first.is_none() {
            *first = Some(self.rank);
            reset_collective::<B>();
        }
    }
}
