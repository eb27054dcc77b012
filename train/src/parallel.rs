//! Data-parallel training over burn-collective (the Training issue, item 7): one thread per
//! device, each with a replica of the model; every peer draws the same step batch and runs its
//! share of the micro-batches (micro-batch `k` on peer `k % world`), the gradients (already
//! weighted by each micro-batch's share of the step's target tokens) are summed across peers with
//! one all-reduce, and every peer makes the same AdamW update, so the replicas stay identical and
//! the step equals the single-device step on the whole batch. Each node's first peer writes
//! metrics and checkpoints (to that node's run directory, so every node can resume). A peer that
//! fails releases the other peers of its node from the all-reduce and the run returns its error;
//! joining the other nodes or an all-reduce that gets no answer (a node hangs or never starts)
//! gives up after `train.collective_timeout_s`.
//! Multi-node (`train.nodes > 1`, [`Cluster`]): one process per node, all connected through
//! burn-collective's global orchestrator ([`run_orchestrator`], `cargo xtask orchestrator`); the
//! all-reduce sums within each node, then over the nodes, then hands the sum back to every peer.

use std::marker::PhantomData;
use std::path::Path;
use std::sync::mpsc::RecvTimeoutError;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use burn::module::{AutodiffModule, ModuleVisitor, Param};
use burn::tensor::backend::{AutodiffBackend, Backend};
use burn::tensor::{Tensor, TensorPrimitive};
use burn_collective::{
    CollectiveConfig, PeerId, ReduceOperation, all_reduce, finish_collective, register,
    reset_collective,
};
use burn_communication::Address;

use crate::error::TrainError;
use crate::optim::FlatGrads;
use crate::trainer::{StepMetrics, TrainConfig, TrainSection, Trainer};

/// This peer's place in the data-parallel group.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Peer {
    /// Global rank, `0..world`: the micro-batches it runs and its burn-collective id.
    pub rank: usize,
    pub world: usize,
    /// Rank on this node; the node's peer 0 writes the run directory.
    pub local: usize,
}

/// The data-parallel keys of a `[train]` section (pretraining / SFT's and GRPO's).
#[derive(Debug, Clone, Copy)]
pub struct ClusterKeys<'a> {
    pub devices: usize,
    pub nodes: usize,
    pub node_rank: usize,
    pub orchestrator: &'a str,
    pub node_address: &'a str,
    pub collective_timeout_s: u64,
}

/// This process's node of a multi-node run (`train.nodes > 1`): the `[train]` keys, checked and
/// parsed once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cluster {
    pub nodes: usize,
    pub node_rank: usize,
    /// The global orchestrator (`train.orchestrator`, `ws://host:port`).
    pub orchestrator: Address,
    /// This node as the others reach it (`train.node_address`, `ws://host:port`).
    pub node_address: Address,
    /// The port of `node_address`: this node's tensor data service listens on it.
    pub data_service_port: u16,
    /// How long a peer waits to join the others or in an all-reduce (`train.collective_timeout_s`).
    pub timeout: Duration,
}

/// The port of a `ws://host:port` address.
fn ws_port(key: &str, addr: &str) -> Result<u16, String> {
    let rest = addr
        .strip_prefix("ws://")
        .ok_or_else(|| format!("train.{key} `{addr}`: expected ws://host:port"))?;
    let port = rest
        .trim_end_matches('/')
        .rsplit_once(':')
        .map(|(_, p)| p)
        .unwrap_or("");
    port.parse()
        .map_err(|_| format!("train.{key} `{addr}`: expected ws://host:port with a port number"))
}

impl Cluster {
    /// The multi-node part of a pretraining / SFT config, `None` for a single node; errors name
    /// the key (they are `TrainConfig::check`'s multi-node errors).
    pub fn from_config(t: &TrainSection) -> Result<Option<Cluster>, String> {
        let cluster = Cluster::from_keys(&ClusterKeys {
            devices: t.devices,
            nodes: t.nodes,
            node_rank: t.node_rank,
            orchestrator: &t.orchestrator,
            node_address: &t.node_address,
            collective_timeout_s: t.collective_timeout_s,
        })?;
        let micro = t.batch_size / t.micro_batch.max(1);
        if cluster.is_some() && !micro.is_multiple_of(t.nodes * t.devices.max(1)) {
            return Err(format!(
                "train.nodes x train.devices ({} x {}) must divide the micro-batches per step (batch_size / micro_batch = {micro})",
                t.nodes, t.devices
            ));
        }
        Ok(cluster)
    }

    /// The multi-node part of any `[train]` section with the data-parallel keys, `None` for a
    /// single node; errors name the key.
    pub fn from_keys(t: &ClusterKeys) -> Result<Option<Cluster>, String> {
        if t.nodes == 0 {
            return Err("train.nodes must be >= 1".into());
        }
        if t.devices == 0 {
            return Err("train.devices must be >= 1".into());
        }
        if t.collective_timeout_s == 0 {
            return Err("train.collective_timeout_s must be >= 1 (seconds)".into());
        }
        if t.nodes == 1 {
            if t.node_rank != 0 || !t.orchestrator.is_empty() || !t.node_address.is_empty() {
                return Err("train.node_rank, train.orchestrator and train.node_address are for multi-node runs (train.nodes > 1)".into());
            }
            return Ok(None);
        }
        if t.node_rank >= t.nodes {
            return Err(format!(
                "train.node_rank ({}) must be below train.nodes ({})",
                t.node_rank, t.nodes
            ));
        }
        ws_port("orchestrator", t.orchestrator)?;
        let data_service_port = ws_port("node_address", t.node_address)?;
        let address = |key: &str, a: &str| {
            a.parse::<Address>()
                .map_err(|e| format!("train.{key} `{a}`: {e}"))
        };
        Ok(Some(Cluster {
            nodes: t.nodes,
            node_rank: t.node_rank,
            orchestrator: address("orchestrator", t.orchestrator)?,
            node_address: address("node_address", t.node_address)?,
            data_service_port,
            timeout: Duration::from_secs(t.collective_timeout_s),
        }))
    }

    /// burn-collective's config for this node with `devices` local peers.
    pub(crate) fn collective_config(cluster: Option<&Cluster>, devices: usize) -> CollectiveConfig {
        let config = CollectiveConfig::default().with_num_devices(devices);
        match cluster {
            None => config,
            Some(c) => config
                .with_num_nodes(c.nodes as u32)
                .with_global_address(c.orchestrator.clone())
                .with_node_address(c.node_address.clone())
                .with_data_service_port(c.data_service_port),
        }
    }
}

/// burn-collective's global orchestrator on `port` (every interface), for the nodes of
/// multi-node runs: it returns when the process gets Ctrl-C / SIGTERM.
pub fn run_orchestrator(port: u16) -> Result<(), TrainError> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| TrainError::Backend(format!("orchestrator runtime: {e}")))?;
    runtime.block_on(burn_collective::start_global_orchestrator(port));
    Ok(())
}

fn collective_err(e: burn_collective::CollectiveError) -> TrainError {
    match e {
        burn_collective::CollectiveError::LocalServerMissing => TrainError::Backend(
            "burn-collective's server has stopped (it panicked: see the messages above); in a multi-node run another node has most likely stopped or lost its connection: restart every node to resume from its last checkpoint".into(),
        ),
        e => TrainError::Backend(format!("burn-collective: {e:?}")),
    }
}

struct Sizes(Vec<usize>);

impl<B: Backend> ModuleVisitor<B> for Sizes {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<B, D>>) {
        self.0.push(param.val().shape().num_elements());
    }
}

/// Run the burn-collective operation `op` (`what` it is, for the error) of peer `rank`, waiting
/// at most `timeout` for it. A node that dies, hangs or never starts (or an orchestrator that
/// stops) leaves the others' registration or all-reduce waiting for ever, and nothing can cancel
/// it: it runs on a thread of its own, which is left behind on timeout, when this peer returns
/// the error (the process is expected to exit: the node's collective is stuck).
pub(crate) fn within<T: Send + 'static>(
    rank: usize,
    what: &str,
    timeout: Duration,
    op: impl FnOnce() -> Result<T, burn_collective::CollectiveError> + Send + 'static,
) -> Result<T, TrainError> {
    let (tx, rx) = std::sync::mpsc::sync_channel(1);
    std::thread::Builder::new()
        .name(format!("collective-{rank}"))
        .spawn(move || tx.send(op()))
        .map_err(|e| {
            TrainError::Backend(format!(
                "peer {rank}: cannot start a thread for {what}: {e}"
            ))
        })?;
    match rx.recv_timeout(timeout) {
        Ok(done) => done.map_err(collective_err),
        Err(RecvTimeoutError::Timeout) => Err(TrainError::Backend(format!(
            "peer {rank}: {what} got no answer within {} s (train.collective_timeout_s): another node, a peer or the orchestrator has stopped, hangs or has not started; stopping (restart every node to resume from its last checkpoint)",
            timeout.as_secs()
        ))),
        Err(RecvTimeoutError::Disconnected) => {
            Err(TrainError::Backend(format!("peer {rank}: {what} panicked")))
        }
    }
}

/// Sum `grads` (and the step's `loss`) over all peers with one all-reduce of a flat buffer:
/// every parameter's gradient (zeros where this peer has none), one has-gradient flag per
/// parameter, and the loss. A parameter gets a gradient if any peer had one. Gives up with an
/// error after `timeout` ([`within`]).
pub fn all_reduce_grads<AB: AutodiffBackend, M: AutodiffModule<AB>>(
    peer: Peer,
    model: &M,
    grads: FlatGrads<AB::InnerBackend>,
    loss: f64,
    device: &AB::Device,
    timeout: Duration,
) -> Result<(FlatGrads<AB::InnerBackend>, f64), TrainError> {
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
    let (rank, flat) = (peer.rank, flat.into_primitive().tensor());
    let reduced = within(rank, "the gradient all-reduce", timeout, move || {
        all_reduce::<AB::InnerBackend>(PeerId::from(rank), flat, ReduceOperation::Sum)
    })?;
    let reduced = Tensor::<AB::InnerBackend, 1>::from_primitive(TensorPrimitive::Float(reduced));
    let total: usize = sizes.iter().sum();
    let tail: Vec<f32> = reduced
        .clone()
        .narrow(0, total, np + 1)
        .into_data()
        .convert::<f32>()
        .to_vec()
        .unwrap_or_default();
    let mut out = Vec::with_capacity(np);
    let mut at = 0;
    for (i, &n) in sizes.iter().enumerate() {
        out.push((tail[i] > 0.0).then(|| reduced.clone().narrow(0, at, n)));
        at += n;
    }
    Ok((out, tail[np] as f64))
}

/// Train `cfg` in `out` on `devices` (one peer each; on a CPU backend the peers are threads
/// sharing it) and, with `train.nodes > 1`, with the other nodes; return this node's first
/// peer's metrics. `train.batch_size / train.micro_batch` must be a multiple of the number of
/// peers (devices x nodes).
pub fn train_data_parallel<AB: AutodiffBackend>(
    cfg: TrainConfig,
    out: &Path,
    devices: Vec<AB::Device>,
    stop_after: Option<u64>,
    progress: bool,
) -> Result<Vec<StepMetrics>, TrainError> {
    let cluster = Cluster::from_config(&cfg.train)
        .map_err(|e| TrainError::Config(out.join("config.toml"), e))?;
    let world = devices.len() * cluster.as_ref().map_or(1, |c| c.nodes);
    let micro = cfg.train.batch_size / cfg.train.micro_batch.max(1);
    if world == 0 || !micro.is_multiple_of(world) {
        return Err(TrainError::Config(
            out.join("config.toml"),
            format!(
                "train.batch_size / train.micro_batch = {micro} micro-batches do not split over {world} devices"
            ),
        ));
    }
    let metrics =
        run_peers_in::<AB::InnerBackend, _>(cluster.as_ref(), devices, |peer, device| {
            Trainer::<AB>::new(cfg.clone(), out, &device).and_then(|t| {
                t.with_peer(peer)
                    .run(stop_after, progress && peer.local == 0)
            })
        })?;
    Ok(metrics.into_iter().next().unwrap_or_default())
}

/// [`run_peers_in`] on a single node.
pub fn run_peers<B: Backend, T: Send>(
    devices: Vec<B::Device>,
    f: impl Fn(Peer, B::Device) -> Result<T, TrainError> + Sync,
) -> Result<Vec<T>, TrainError> {
    run_peers_in::<B, T>(None, devices, f)
}

/// Run `f(peer, device)` on one thread per device, each registered with burn-collective as a
/// peer of `B` (so `f` may call [`all_reduce_grads`]), and return this node's results in rank
/// order. With a `cluster`, this node's peers are global ranks `node_rank * devices ..` of
/// `nodes * devices`, and registering waits until every node has joined the orchestrator. A
/// peer that fails (an error or a panic) while the others wait in an all-reduce would leave them
/// waiting for ever: the first to fail records its rank and resets the collective, which drops
/// the pending operation, so the others' all-reduce returns an error and they stop; the run then
/// returns the first failure's error. The other nodes of a multi-node run are released by the
/// lost connection to this node (when its process exits) or, if it hangs, by
/// `train.collective_timeout_s` ([`within`]), which also bounds the wait for the other nodes
/// to join.
pub fn run_peers_in<B: Backend, T: Send>(
    cluster: Option<&Cluster>,
    devices: Vec<B::Device>,
    f: impl Fn(Peer, B::Device) -> Result<T, TrainError> + Sync,
) -> Result<Vec<T>, TrainError> {
    let local_world = devices.len();
    let (first_rank, world) = cluster.map_or((0, local_world), |c| {
        (c.node_rank * local_world, c.nodes * local_world)
    });
    let config = Cluster::collective_config(cluster, local_world);
    let first_failure: Arc<Mutex<Option<usize>>> = Arc::default();
    let results: Vec<Result<T, TrainError>> = std::thread::scope(|s| {
        let handles: Vec<_> = devices
            .into_iter()
            .enumerate()
            .map(|(local, device)| {
                let (f, first_failure, config) = (&f, first_failure.clone(), config.clone());
                s.spawn(move || -> Result<T, TrainError> {
                    let rank = first_rank + local;
                    let mut guard = AbortOthers::<B> {
                        rank: local,
                        first_failure,
                        ok: false,
                        backend: PhantomData,
                    };
                    let id = PeerId::from(rank);
                    let join = {
                        let device = device.clone();
                        move || register::<B>(id, device, config)
                    };
                    match cluster {
                        Some(c) => {
                            within(rank, "registering with the other nodes", c.timeout, join)?
                        }
                        None => join().map_err(collective_err)?,
                    }
                    let out = f(Peer { rank, world, local }, device)?;
                    finish_collective::<B>(id).map_err(collective_err)?;
                    guard.ok = true;
                    Ok(out)
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join().unwrap_or_else(|_| {
                    Err(TrainError::Backend("a data-parallel peer panicked".into()))
                })
            })
            .collect()
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
            _ => Err(TrainError::Backend(format!(
                "data-parallel peer {rank} failed"
            ))),
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
