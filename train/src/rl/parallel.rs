//! Data-parallel GRPO over burn-collective (`crate::parallel`'s peers, nodes and orchestrator):
//! each rank explores its own share of the step's prompts (the sampler seeded by the step and the
//! prompts' global indices, so the shares sample what one device would), rewards them and keeps
//! each group on one rank; the loss normalisers of the whole step (outputs and counted tokens)
//! are summed over the ranks before the local loss is taken, the gradients are summed with one
//! all-reduce, and every rank makes the same clipped AdamW step, so the replicas stay identical
//! and the step equals the single-device step on the whole batch. The step's statistics are
//! combined over the ranks; each node's first peer writes metrics and checkpoints.

use std::path::Path;
use std::time::Duration;

use burn::module::AutodiffModule;
use burn::tensor::backend::AutodiffBackend;
use burn::tensor::{Tensor, TensorPrimitive};
use burn_collective::{PeerId, ReduceOperation, all_reduce};

use crate::error::TrainError;
use crate::optim::FlatGrads;
use crate::parallel::{Cluster, ClusterKeys, Peer, all_reduce_grads, run_peers_in, within};
use crate::rl::run::{GrpoConfig, GrpoMetrics, GrpoRun, RewardFn};

/// This rank's place in a data-parallel GRPO run and how long it waits for the others.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DpGroup {
    pub peer: Peer,
    pub timeout: Duration,
}

impl DpGroup {
    /// `values` of every rank, in rank order (one all-reduce of a `[world x len]` buffer in which
    /// each rank fills its own row; f32, exact for counts below 2^24).
    pub fn gather<B: burn::tensor::backend::Backend>(
        &self,
        values: &[f64],
        device: &B::Device,
    ) -> Result<Vec<Vec<f64>>, TrainError> {
        let (world, len, rank) = (self.peer.world, values.len(), self.peer.rank);
        let mut buf = vec![0f32; world * len];
        for (i, v) in values.iter().enumerate() {
            buf[rank * len + i] = *v as f32;
        }
        let t = Tensor::<B, 1>::from_floats(buf.as_slice(), device)
            .into_primitive()
            .tensor();
        let reduced = within(
            rank,
            "an all-reduce of the step's statistics",
            self.timeout,
            move || all_reduce::<B>(PeerId::from(rank), t, ReduceOperation::Sum),
        )?;
        let all: Vec<f32> = Tensor::<B, 1>::from_primitive(TensorPrimitive::Float(reduced))
            .into_data()
            .convert::<f32>()
            .to_vec()
            .unwrap_or_default();
        Ok(all
            .chunks(len.max(1))
            .take(world)
            .map(|r| r.iter().map(|&x| x as f64).collect())
            .collect())
    }

    /// The element-wise sum of `values` over the ranks.
    pub fn sum<B: burn::tensor::backend::Backend>(
        &self,
        values: &[f64],
        device: &B::Device,
    ) -> Result<Vec<f64>, TrainError> {
        let all = self.gather::<B>(values, device)?;
        Ok((0..values.len())
            .map(|i| all.iter().map(|r| r[i]).sum())
            .collect())
    }

    /// Gradients and loss summed over the ranks.
    pub fn reduce_grads<AB: AutodiffBackend, M: AutodiffModule<AB>>(
        &self,
        model: &M,
        grads: FlatGrads<AB::InnerBackend>,
        loss: f64,
        device: &AB::Device,
    ) -> Result<(FlatGrads<AB::InnerBackend>, f64), TrainError> {
        all_reduce_grads::<AB, M>(self.peer, model, grads, loss, device, self.timeout)
    }
}

/// The data-parallel keys of a GRPO config as [`Cluster`] reads them.
fn cluster_keys(cfg: &GrpoConfig) -> ClusterKeys<'_> {
    let t = &cfg.train;
    ClusterKeys {
        devices: t.devices,
        nodes: t.nodes,
        node_rank: t.node_rank,
        orchestrator: &t.orchestrator,
        node_address: &t.node_address,
        collective_timeout_s: t.collective_timeout_s,
    }
}

/// What data-parallel GRPO cannot run, named by key (`GrpoConfig::check`).
pub fn check(cfg: &GrpoConfig) -> Result<(), String> {
    Cluster::from_keys(&cluster_keys(cfg))?;
    let world = cfg.train.devices.max(1) * cfg.train.nodes.max(1);
    if world == 1 {
        return Ok(());
    }
    let g = &cfg.grpo;
    if !g.prompts_per_step.is_multiple_of(world) {
        return Err(format!(
            "grpo.prompts_per_step ({}) must be a multiple of train.nodes x train.devices ({world}): each rank explores whole groups",
            g.prompts_per_step
        ));
    }
    let unsupported = if g.dynamic_sampling {
        "grpo.dynamic_sampling = true (the refills are per rank)"
    } else if g.reward_model.is_some() && g.iteration_steps > 0 {
        "grpo.iteration_steps with a reward model (each rank would train its own)"
    } else {
        return Ok(());
    };
    Err(format!(
        "{unsupported} does not run data-parallel yet: set train.devices = 1 and train.nodes = 1"
    ))
}

/// Run GRPO `cfg` in `out` on `devices` (one rank each; threads sharing a CPU backend) and, with
/// `train.nodes > 1`, with the other nodes; return this node's first rank's metrics (the whole
/// step's). `stop_after`: steps to run before returning (resume later from the checkpoints);
/// `reward` replaces the grader (as [`GrpoRun::with_reward`]).
pub fn grpo_data_parallel<AB: AutodiffBackend>(
    cfg: GrpoConfig,
    out: &Path,
    devices: Vec<AB::Device>,
    stop_after: Option<u64>,
    progress: bool,
    reward: Option<RewardFn>,
) -> Result<Vec<GrpoMetrics>, TrainError> {
    let bad = |e: String| TrainError::Config(out.join("config.toml"), e);
    cfg.check().map_err(bad)?;
    if devices.len() != cfg.train.devices {
        return Err(bad(format!(
            "train.devices is {} but {} device(s) were given",
            cfg.train.devices,
            devices.len()
        )));
    }
    let cluster = Cluster::from_keys(&cluster_keys(&cfg)).map_err(bad)?;
    let timeout = Duration::from_secs(cfg.train.collective_timeout_s);
    let metrics =
        run_peers_in::<AB::InnerBackend, _>(cluster.as_ref(), devices, |peer, device| {
            GrpoRun::<AB>::new(cfg.clone(), out, &device).and_then(|run| {
                let run = match &reward {
                    Some(r) => run.with_reward(r.clone()),
                    None => run,
                };
                run.with_group(DpGroup { peer, timeout })
                    .run(stop_after, progress && peer.local == 0)
            })
        })?;
    Ok(metrics.into_iter().next().unwrap_or_default())
}
