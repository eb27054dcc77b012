//! `cargo xtask <stage>`: the one entry point of dsmath (DESIGN.md); parses flags, picks the
//! backend and calls the library crates.

mod backend;
mod bench_cmds;
mod corpus_cmds;
mod eval_cmds;
mod model_cmds;
mod peak_alloc;
mod train_cmds;

/// Counts heap bytes so `rl-bench` can report peak memory per phase.
#[global_allocator]
static ALLOC: peak_alloc::PeakAlloc = peak_alloc::PeakAlloc;

use clap::{Parser, Subcommand};

use backend::BackendKind;

#[derive(Parser)]
#[command(name = "cargo xtask", about = "dsmath: DeepSeekMath on Burn", version)]
struct Cli {
    /// Backend to run on (among those compiled in; default: the first of flex, ndarray, wgpu, cuda).
    #[arg(long, global = true, value_enum)]
    backend: Option<BackendKind>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// The whole recipe in miniature on the CPU: corpus -> tokenizer -> pretrain -> SFT -> GRPO -> report.
    Demo(train_cmds::DemoArgs),
    /// The corpus pipeline: WARC -> text -> dedup -> classifier iterations -> decontam -> token shards.
    Corpus(corpus_cmds::CorpusArgs),
    /// Train from a config: the stage it names (pretrain or sft).
    Train(train_cmds::TrainArgs),
    /// Continued pretraining from a config (train.stage = "pretrain").
    Pretrain(train_cmds::TrainArgs),
    /// Supervised fine-tuning from a config (train.stage = "sft").
    Sft(train_cmds::TrainArgs),
    /// The global orchestrator of a multi-node `train` (train.nodes > 1); runs until Ctrl-C.
    Orchestrator(train_cmds::OrchestratorArgs),
    /// GRPO from a config: explore G outputs per question, reward with the grader, update.
    Grpo(train_cmds::GrpoArgs),
    /// Make RL prompts `{"question", "gold"}` from a benchmark-layout file (GSM8K train by default).
    RlPrompts(train_cmds::RlPromptsArgs),
    /// The paper's unified paradigm on the demo's task: RFT, Online RFT, DPO, PPO, GRPO from one SFT model.
    RlCompare(train_cmds::RlCompareArgs),
    /// GRPO vs PPO (with critic): step time and peak memory from one SFT model in one run; rollout tok/s.
    RlBench(bench_cmds::RlBenchArgs),
    /// Training step throughput and peak memory of a preset model (used by scripts/bench_train_vs_torch.py).
    TrainBench(bench_cmds::TrainBenchArgs),
    /// Label policy samples for reward-model training: outcome by the grader, steps by rollouts (PRM).
    RmData(train_cmds::RmDataArgs),
    /// Train an outcome or process reward model (scalar head on the decoder) from labelled samples.
    RmTrain(train_cmds::RmTrainArgs),
    /// Make SFT records from GSM8K train: chain-of-thought, program-of-thought or tool-integrated.
    SftData(train_cmds::SftDataArgs),
    /// Generate text from an HF model directory, streaming to the terminal.
    Generate(model_cmds::GenerateArgs),
    /// Show a model directory's size: parameters, memory per dtype, tensors on disk.
    Info(model_cmds::InfoArgs),
    /// Score JSONL sequences: per-token log-probs (and logits) for parity checks.
    Score(model_cmds::ScoreArgs),
    /// Evaluate a model on benchmarks (`--model`), or grade completions from any engine (`--grade`).
    Eval(eval_cmds::EvalArgs),
    /// Re-save a model directory in HF layout (f32 or bf16), e.g. to check HF loads dsmath's files.
    Convert(model_cmds::ConvertArgs),
    /// Measure prefill / decode throughput of a model (used by scripts/bench_vs_hf.py).
    Bench(model_cmds::BenchArgs),
}

fn main() -> anyhow::Result<()> {
    peak_alloc::keep_freed_memory();
    let cli = Cli::parse();
    let kind = BackendKind::resolve(cli.backend)?;
    if matches!(kind, BackendKind::Flex | BackendKind::Ndarray) {
        // CPU backends: run the command on a worker of rayon's pool, the pool the backends'
        // kernels split their work over. From the main thread every parallel op was handed to
        // the pool and waited for (two thread wake-ups per op, ~7,500 context switches a second
        // in a training step, 10% of the cores idle); from a worker the op forks in place and
        // the other worker joins. The 25M training step is ~10% faster (BENCHMARKS.md). Needs
        // a second worker: a worker blocked in `thread::scope` (CPU data parallel) leaves the
        // kernels the others. Worker stacks get the main thread's 8 MiB (rayon's default is 2).
        let pool = rayon::ThreadPoolBuilder::new()
            .stack_size(8 << 20)
            .build_global();
        if pool.is_ok() && rayon::current_num_threads() >= 2 {
            return rayon::scope(|_| run(cli, kind));
        }
    }
    run(cli, kind)
}

fn run(cli: Cli, kind: BackendKind) -> anyhow::Result<()> {
    match cli.command {
        Command::Demo(args) => with_backend!(kind, |B, dev| train_cmds::demo::<B>(&args, &dev)),
        Command::Generate(args) => {
            with_backend!(kind, |B, dev| model_cmds::generate::<B>(&args, &dev))
        }
        Command::Info(args) => model_cmds::info(&args),
        Command::Train(args) => {
            with_backend!(kind, |B, dev| train_cmds::train::<B>(&args, &dev, None))
        }
        Command::Pretrain(args) => with_backend!(kind, |B, dev| train_cmds::train::<B>(
            &args,
            &dev,
            Some("pretrain")
        )),
        Command::Sft(args) => with_backend!(kind, |B, dev| train_cmds::train::<B>(
            &args,
            &dev,
            Some("sft")
        )),
        Command::RlCompare(args) => {
            with_backend!(kind, |B, dev| train_cmds::rl_compare::<B>(&args, &dev))
        }
        Command::RlBench(args) => {
            with_backend!(kind, |B, dev| bench_cmds::rl_bench::<B>(&args, &dev))
        }
        Command::TrainBench(args) => with_backend!(kind, |B, dev| bench_cmds::train_bench::<B>(
            &args, &dev, kind
        )),
        Command::RmData(args) => {
            with_backend!(kind, |B, dev| train_cmds::rm_data::<B>(&args, &dev))
        }
        Command::RmTrain(args) => {
            with_backend!(kind, |B, dev| train_cmds::rm_train::<B>(&args, &dev))
        }
        Command::SftData(args) => train_cmds::sft_data(&args),
        Command::Orchestrator(args) => train_cmds::orchestrator(&args),
        Command::Grpo(args) => with_backend!(kind, |B, dev| train_cmds::grpo::<B>(&args, &dev)),
        Command::RlPrompts(args) => train_cmds::rl_prompts(&args),
        Command::Corpus(args) => corpus_cmds::corpus(&args),
        Command::Eval(args) => with_backend!(kind, |B, dev| eval_cmds::eval::<B>(&args, &dev)),
        Command::Score(args) => with_backend!(kind, |B, dev| model_cmds::score::<B>(&args, &dev)),
        Command::Convert(args) => {
            with_backend!(kind, |B, dev| model_cmds::convert::<B>(&args, &dev))
        }
        Command::Bench(args) => {
            with_backend!(kind, |B, dev| model_cmds::bench::<B>(&args, &dev, kind))
        }
    }
}
