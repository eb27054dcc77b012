//! The GRPO memory plan (`cargo xtask grpo --plan`) on the shipped configs with the published
//! config.json of their models: each item counted as documented, what the micro-batch and the
//! logits chunk change, and the memory limit each config states in its file.

use std::path::Path;

use dsmath_model::LlamaConfig;
use dsmath_train::rl::plan::{MemoryPlan, grpo_plan, parse_bytes};
use dsmath_train::rl::run::GrpoConfig;

fn root() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
}

fn model(name: &str) -> LlamaConfig {
    LlamaConfig::from_file(root().join("model/tests/fixtures/configs").join(name)).unwrap()
}

fn item(plan: &MemoryPlan, what: &str) -> f64 {
    plan.resident
        .iter()
        .chain(&plan.explore)
        .chain(&plan.update)
        .find(|i| i.what == what)
        .unwrap_or_else(|| panic!("no `{what}` in {plan:?}"))
        .bytes
}

const GIB: f64 = (1u64 << 30) as f64;

#[test]
fn plan_counts_weights_optimizer_reference_cache_and_activations() {
    // The shape of the measured step: 4 prompts x G = 8, prompts under 128 tokens, 128 new tokens.
    let mut cfg = GrpoConfig::from_file(&root().join("configs/grpo-smollm2.toml")).unwrap();
    (cfg.grpo.prompts_per_step, cfg.grpo.group_size) = (4, 8);
    (cfg.grpo.max_prompt_tokens, cfg.grpo.max_new_tokens) = (128, 128);
    (cfg.grpo.micro_batch, cfg.grpo.logits_chunk) = (8, 512);
    let m = model("SmolLM2-135M-Instruct.json");
    let p = m.num_parameters() as f64;
    let plan = grpo_plan(&cfg, &m, 1);
    assert_eq!(item(&plan, "policy weights"), 4.0 * p);
    assert_eq!(item(&plan, "AdamW moments"), 8.0 * p);
    assert_eq!(item(&plan, "reference"), 4.0 * p);
    // 4 prompts x G = 8 sequences of up to 128 + 128 tokens; 30 layers x 3 kv heads x 64.
    let kv = 2.0 * 30.0 * 3.0 * 64.0 * 4.0;
    assert_eq!(item(&plan, "KV cache"), 2.0 * kv * 32.0 * 256.0);
    // 32 outputs in micro-batches of 8: the running gradient sum plus one micro-batch's.
    assert_eq!(item(&plan, "gradients"), 8.0 * p);
    assert_eq!(item(&plan, "LM-head chunk"), 12.0 * 512.0 * 49152.0);
    // The measured peak RSS of three such steps is 7.23 GB (BENCHMARKS.md, dsmath vs TRL): the
    // plan bounds it from above without being loose by more than a quarter.
    let total = plan.total() / 1e9;
    assert!((7.23..9.0).contains(&total), "plan {total:.2} GB");

    // A smaller micro-batch and a bf16 reference shrink the update; two devices halve the
    // per-device exploration.
    let mut small = cfg.clone();
    small.grpo.micro_batch = 2;
    small.grpo.reference_dtype = dsmath_train::rl::run::Precision::Bf16;
    let sp = grpo_plan(&small, &m, 1);
    assert!(item(&sp, "activations") * 3.9 < item(&plan, "activations"));
    assert_eq!(item(&sp, "reference"), 2.0 * p);
    let two = grpo_plan(&cfg, &m, 2);
    assert_eq!(item(&two, "KV cache") * 2.0, item(&plan, "KV cache"));
    assert!(
        plan.render()
            .contains("peak: resident + max(exploration, update)")
    );
}

#[test]
fn the_shipped_large_configs_state_what_their_plans_need() {
    // The paper's 7B run: full fine-tuning holds 16 bytes per parameter (weights, gradients,
    // AdamW) plus the reference on every data-parallel device, over an 80 GB GPU before any
    // activation; the config says so and what it would take.
    let cfg = GrpoConfig::from_file(&root().join("configs/deepseekmath-7b-grpo.toml")).unwrap();
    let m = model("deepseek-math-7b-instruct.json");
    let plan = grpo_plan(&cfg, &m, cfg.train.devices);
    assert_eq!(cfg.train.devices, 8);
    assert!(plan.total() > 80e9, "{}", plan.render());
    let text = std::fs::read_to_string(root().join("configs/deepseekmath-7b-grpo.toml")).unwrap();
    assert!(text.contains("--plan"), "the 7B config shows its plan");
    // The consumer-GPU config: 1.5B parameters in full fine-tuning exceed a 24 GB GPU too.
    let cfg = GrpoConfig::from_file(&root().join("configs/grpo-qwen2.5-math-1.5b.toml")).unwrap();
    let m = model("Qwen2.5-Math-1.5B-Instruct.json");
    let plan = grpo_plan(&cfg, &m, 1);
    assert!(
        plan.total() > parse_bytes("24GB").unwrap(),
        "{}",
        plan.render()
    );
    // Sizes.
    assert_eq!(parse_bytes("24GB").unwrap(), 24e9);
    assert_eq!(parse_bytes("80 GiB").unwrap(), 80.0 * GIB);
    assert!(parse_bytes("lots").unwrap_err().contains("lots"));
    assert!(parse_bytes("3 parsecs").unwrap_err().contains("parsecs"));
}
