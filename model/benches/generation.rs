//! Criterion benches of the generation engine: prefill and KV-cache decode of a ~25M-parameter
//! LLaMA (`LlamaConfig::bench_25m`) on burn-flex. `scripts/bench_vs_hf.py` compares with HF.

use std::path::Path;

use burn_flex::{Flex, FlexDevice};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use dsmath_model::{LlamaConfig, SamplingParams, Tokenizer, generate, init_model};

fn setup() -> (dsmath_model::LlamaForCausalLM<Flex>, Tokenizer, Vec<u32>) {
    let cfg = LlamaConfig::bench_25m(8192);
    let model = init_model::<Flex>(&cfg, 0, &FlexDevice).unwrap();
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/tokenizer");
    let tok = Tokenizer::from_dir(&dir, &cfg).unwrap();
    let prompt: Vec<u32> = (0..64u32).map(|i| 3 + (i * 7919 + 13) % 509).collect();
    (model, tok, prompt)
}

fn bench(c: &mut Criterion) {
    let (model, tok, prompt) = setup();
    let mut g = c.benchmark_group("llama25m");
    g.sample_size(10);
    g.throughput(Throughput::Elements(prompt.len() as u64));
    let one = SamplingParams {
        max_new_tokens: 1,
        ignore_eos: true,
        first_prompt: 0,
        ..SamplingParams::default()
    };
    g.bench_function("prefill_64", |b| {
        b.iter(|| generate(&model, &tok, std::slice::from_ref(&prompt), &one, None).unwrap())
    });
    for batch in [1usize, 16] {
        let new = 16;
        g.throughput(Throughput::Elements((batch * new) as u64));
        let p = SamplingParams {
            max_new_tokens: new,
            ignore_eos: true,
            first_prompt: 0,
            ..SamplingParams::default()
        };
        let prompts = vec![prompt.clone(); batch];
        g.bench_function(format!("prefill64_decode{new}_b{batch}"), |b| {
            b.iter(|| generate(&model, &tok, &prompts, &p, None).unwrap())
        });
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
