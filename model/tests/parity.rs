//! Parity with HF transformers on the fixtures of `scripts/make_parity_fixtures.py`: logits,
//! loss and greedy generation of tiny LLaMA (MHA untied f32, GQA tied bf16 sharded with linear
//! RoPE scaling, Llama-3 RoPE scaling with a list of EOS ids), Qwen2 (q/k/v bias, f16) and Qwen3
//! (q/k head norm, explicit head_dim) checkpoints, on every CPU backend.

use std::path::{Path, PathBuf};

use burn::tensor::{Int, Tensor, TensorData, backend::Backend};
use dsmath_model::{
    LlamaForCausalLM, SamplingParams, Tokenizer, causal_lm_loss, generate,
    load_model_and_tokenizer, model::attention_mask,
};
use safetensors::SafeTensors;
use serde_json::Value;

pub const CASES: [&str; 5] = [
    "llama_mha",
    "llama_gqa_tied_bf16_sharded",
    "qwen2_gqa_f16",
    "llama3_rope_eos_list",
    "qwen3_qk_norm",
];

/// The fixtures beside this file; a test binary run from the crate directory on another machine
/// (scripts/device_check.sh with prebuilt binaries) finds them relative to it.
pub fn fixture(case: &str) -> PathBuf {
    let here = Path::new("tests/fixtures").join(case);
    if here.join("config.json").exists() {
        here
    } else {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures")
            .join(case)
    }
}

pub struct Expected {
    pub json: Value,
    pub logits: (Vec<f32>, Vec<usize>),
    pub padded_logits: (Vec<f32>, Vec<usize>),
}

pub fn expected(case: &str) -> Expected {
    let dir = fixture(case);
    let json: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("expected.json")).unwrap()).unwrap();
    let bytes = std::fs::read(dir.join("expected.safetensors")).unwrap();
    let st = SafeTensors::deserialize(&bytes).unwrap();
    let get = |name: &str| {
        let v = st.tensor(name).unwrap();
        let data: Vec<f32> = v
            .data()
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes(b.try_into().unwrap()))
            .collect();
        (data, v.shape().to_vec())
    };
    Expected {
        logits: get("logits"),
        padded_logits: get("padded_logits"),
        json,
    }
}

pub fn ids_of(v: &Value) -> Vec<Vec<u32>> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|r| {
            r.as_array()
                .unwrap()
                .iter()
                .map(|x| x.as_u64().unwrap() as u32)
                .collect()
        })
        .collect()
}

pub fn to_vec<B: Backend, const D: usize>(t: Tensor<B, D>) -> Vec<f32> {
    t.into_data().convert::<f32>().to_vec::<f32>().unwrap()
}

pub fn int_tensor<B: Backend>(rows: &[Vec<u32>], device: &B::Device) -> Tensor<B, 2, Int> {
    let flat: Vec<i64> = rows.iter().flatten().map(|&x| x as i64).collect();
    Tensor::from_data(TensorData::new(flat, [rows.len(), rows[0].len()]), device)
}

pub fn max_abs_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

/// Greedy decoding without a KV cache: the full sequence is re-run for every new token.
pub fn greedy_no_cache<B: Backend>(
    model: &LlamaForCausalLM<B>,
    prompt: &[u32],
    n: usize,
) -> Vec<u32> {
    let device = model.model.embed_tokens.device();
    let mut seq = prompt.to_vec();
    for _ in 0..n {
        let logits = model.forward_padded(
            int_tensor::<B>(std::slice::from_ref(&seq), &device),
            &[vec![true; seq.len()]],
        );
        let v = logits.dims()[2];
        let last = to_vec(logits.narrow(1, seq.len() - 1, 1).reshape([v]));
        let best = (0..v).fold(0, |b, i| if last[i] > last[b] { i } else { b });
        seq.push(best as u32);
    }
    seq[prompt.len()..].to_vec()
}

pub fn load<B: Backend>(case: &str) -> (LlamaForCausalLM<B>, Tokenizer) {
    let device = B::Device::default();
    let (ckpt, tok) = load_model_and_tokenizer::<B>(&fixture(case), &device).unwrap();
    (ckpt.model, tok)
}

macro_rules! parity_tests {
    ($name:ident, $backend:ty) => {
        mod $name {
            use super::*;
            type B = $backend;

            #[test]
            fn logits_match_hf_transformers() {
                for case in CASES {
                    let (model, _) = load::<B>(case);
                    let exp = expected(case);
                    let ids = ids_of(&exp.json["ids"]);
                    let device = Default::default();
                    let valid = vec![vec![true; ids[0].len()]; ids.len()];
                    let logits = model.forward_padded(int_tensor::<B>(&ids, &device), &valid);
                    assert_eq!(logits.dims().to_vec(), exp.logits.1, "{case}");
                    let diff = max_abs_diff(&to_vec(logits), &exp.logits.0);
                    assert!(diff <= 1e-4, "{case}: max |logit diff| {diff}");
                }
            }

            #[test]
            fn left_padded_logits_match_hf_at_real_positions() {
                for case in CASES {
                    let (model, _) = load::<B>(case);
                    let exp = expected(case);
                    let ids = ids_of(&exp.json["padded_ids"]);
                    let mask = ids_of(&exp.json["padded_mask"]);
                    let valid: Vec<Vec<bool>> = mask
                        .iter()
                        .map(|r| r.iter().map(|&m| m == 1).collect())
                        .collect();
                    let device = Default::default();
                    let got = to_vec(model.forward_padded(int_tensor::<B>(&ids, &device), &valid));
                    let v = exp.padded_logits.1[2];
                    let mut checked = 0;
                    for (b, row) in valid.iter().enumerate() {
                        for (j, &real) in row.iter().enumerate() {
                            if real {
                                let at = (b * row.len() + j) * v;
                                let diff = max_abs_diff(
                                    &got[at..at + v],
                                    &exp.padded_logits.0[at..at + v],
                                );
                                assert!(diff <= 1e-4, "{case} row {b} pos {j}: {diff}");
                                checked += 1;
                            }
                        }
                    }
                    assert!(checked > 20);
                }
            }

            #[test]
            fn loss_matches_hf_transformers() {
                for case in CASES {
                    let (model, _) = load::<B>(case);
                    let exp = expected(case);
                    let ids = ids_of(&exp.json["ids"]);
                    let device = Default::default();
                    let valid = vec![vec![true; ids[0].len()]; ids.len()];
                    let input = int_tensor::<B>(&ids, &device);
                    let logits = model.forward_padded(input.clone(), &valid);
                    let weight = Tensor::<B, 2>::ones([ids.len(), ids[0].len()], &device);
                    let loss = to_vec(causal_lm_loss(logits, input, weight))[0];
                    let hf = exp.json["loss"].as_f64().unwrap() as f32;
                    assert!(
                        ((loss - hf) / hf).abs() <= 1e-5,
                        "{case}: loss {loss} vs HF {hf}"
                    );
                }
            }

            #[test]
            fn greedy_with_cache_equals_without_cache_equals_hf() {
                for case in CASES {
                    let (model, tok) = load::<B>(case);
                    let exp = expected(case);
                    for g in exp.json["greedy"].as_array().unwrap() {
                        let prompt: Vec<u32> =
                            ids_of(&Value::Array(vec![g["prompt_ids"].clone()])).remove(0);
                        let hf: Vec<u32> =
                            ids_of(&Value::Array(vec![g["generated_ids"].clone()])).remove(0);
                        // The tokenizer reproduces HF's prompt ids (BOS from the post-processor).
                        assert_eq!(
                            tok.encode(g["prompt"].as_str().unwrap()).unwrap(),
                            prompt,
                            "{case}"
                        );
                        let mut params = SamplingParams::greedy(hf.len());
                        params.stop.clear();
                        let cached =
                            generate(&model, &tok, std::slice::from_ref(&prompt), &params, None)
                                .unwrap();
                        let mut got = cached[0].tokens.clone();
                        // HF was run without EOS stopping; compare up to our EOS if we stopped there.
                        if got.len() < hf.len() {
                            assert!(tok.is_eos(*got.last().unwrap()));
                        }
                        let no_cache = greedy_no_cache(&model, &prompt, hf.len());
                        got.truncate(hf.len());
                        assert_eq!(got, hf[..got.len()].to_vec(), "{case}: cached greedy vs HF");
                        assert_eq!(no_cache, hf, "{case}: uncached greedy vs HF");
                    }
                }
            }

            #[test]
            fn generation_stops_at_any_of_a_list_of_eos_ids_as_hf() {
                let case = "llama3_rope_eos_list";
                let (model, tok) = load::<B>(case);
                let exp = expected(case);
                let e = &exp.json["eos_stop"];
                let list: Vec<u32> =
                    ids_of(&Value::Array(vec![e["eos_token_id"].clone()])).remove(0);
                assert!(
                    list.iter().all(|id| tok.is_eos(*id)),
                    "eos ids {:?} vs {list:?}",
                    tok.eos_ids
                );
                let prompt = ids_of(&Value::Array(vec![e["prompt_ids"].clone()])).remove(0);
                let hf = ids_of(&Value::Array(vec![e["generated_ids"].clone()])).remove(0);
                let out =
                    generate(&model, &tok, &[prompt], &SamplingParams::greedy(16), None).unwrap();
                assert_eq!(out[0].tokens, hf);
                assert_eq!(out[0].finish, dsmath_model::FinishReason::Eos);
                assert_ne!(
                    *hf.last().unwrap(),
                    tok.eos_ids[0],
                    "stopped at the second id of the list"
                );
            }

            #[test]
            fn batched_left_padded_generation_equals_one_by_one() {
                let (model, tok) = load::<B>("llama_gqa_tied_bf16_sharded");
                let prompts: Vec<Vec<u32>> = [
                    "Janet has 3 apples",
                    "User: What is 12 + 30?\nAssistant:",
                    "7",
                ]
                .iter()
                .map(|p| tok.encode(p).unwrap())
                .collect();
                let params = SamplingParams::greedy(12);
                let batched = generate(&model, &tok, &prompts, &params, None).unwrap();
                assert_eq!(batched.len(), 3);
                for (i, p) in prompts.iter().enumerate() {
                    let single =
                        generate(&model, &tok, std::slice::from_ref(p), &params, None).unwrap();
                    assert_eq!(batched[i].tokens, single[0].tokens, "prompt {i}");
                    let diff = max_abs_diff(&batched[i].logprobs, &single[0].logprobs);
                    assert!(diff < 1e-4, "prompt {i}: logprob diff {diff}");
                }
            }

            #[test]
            fn sampled_logprobs_are_the_models_and_samples_share_the_prefill() {
                let (model, tok) = load::<B>("qwen2_gqa_f16");
                let prompt = tok.encode("Natalia sold clips").unwrap();
                let params = SamplingParams {
                    n: 4,
                    temperature: 1.0,
                    top_p: 0.95,
                    top_k: 50,
                    max_new_tokens: 8,
                    seed: 7,
                    ..SamplingParams::default()
                };
                let out =
                    generate(&model, &tok, std::slice::from_ref(&prompt), &params, None).unwrap();
                assert_eq!(
                    out.iter().map(|s| s.index).collect::<Vec<_>>(),
                    vec![0, 1, 2, 3]
                );
                assert!(
                    out.iter().any(|s| s.tokens != out[0].tokens),
                    "4 samples at T=1 should differ"
                );
                let again =
                    generate(&model, &tok, std::slice::from_ref(&prompt), &params, None).unwrap();
                assert_eq!(out, again, "seeded sampling is reproducible");
                // Each reported log-prob equals the log-softmax of a full re-score of the sequence.
                for s in &out {
                    let seq: Vec<u32> = prompt.iter().chain(&s.tokens).copied().collect();
                    let scored = dsmath_model::score::<B>(
                        &model,
                        std::slice::from_ref(&seq),
                        tok.pad_id,
                        false,
                    )
                    .unwrap();
                    let tail: Vec<f32> = scored[0].0[prompt.len()..]
                        .iter()
                        .map(|x| x.unwrap())
                        .collect();
                    let diff = max_abs_diff(&tail, &s.logprobs);
                    assert!(diff < 1e-4, "logprob diff {diff}");
                }
            }

            #[test]
            fn stop_strings_end_generation_and_are_cut_from_the_text() {
                let (model, tok) = load::<B>("llama_mha");
                let prompt = tok.encode("Janet has 3 apples").unwrap();
                let free = generate(
                    &model,
                    &tok,
                    std::slice::from_ref(&prompt),
                    &SamplingParams::greedy(16),
                    None,
                )
                .unwrap();
                let text = &free[0].text;
                // Stop on a piece of what greedy decoding produces after its first few characters.
                let start = text.char_indices().nth(3).map_or(0, |(i, _)| i);
                let stop: String = text[start..].chars().take(2).collect();
                assert!(!stop.is_empty(), "greedy text {text:?} too short");
                let params = SamplingParams {
                    stop: vec![stop.clone()],
                    ..SamplingParams::greedy(16)
                };
                let mut streamed = String::new();
                let out = generate(
                    &model,
                    &tok,
                    &[prompt],
                    &params,
                    Some(&mut |_, _, t| streamed.push_str(t)),
                )
                .unwrap();
                assert_eq!(out[0].finish, dsmath_model::FinishReason::Stop);
                assert_eq!(out[0].text, text[..text.find(&stop).unwrap()]);
                assert_eq!(streamed, out[0].text);
            }

            #[test]
            fn attention_mask_blocks_future_and_padding() {
                let device = Default::default();
                let valid = vec![vec![false, true, true]];
                let m: Vec<bool> = attention_mask::<B>(&valid, 3, &device)
                    .int()
                    .into_data()
                    .convert::<i64>()
                    .to_vec::<i64>()
                    .unwrap()
                    .into_iter()
                    .map(|x| x != 0)
                    .collect();
                // rows = queries 0..3, cols = keys 0..3, true = blocked
                assert_eq!(
                    m,
                    vec![true, true, true, true, false, true, true, false, false]
                );
            }
        }
    };
}

parity_tests!(flex, burn_flex::Flex);
parity_tests!(ndarray, burn_ndarray::NdArray<f32>);
#[cfg(feature = "test-wgpu")]
parity_tests!(wgpu, burn_wgpu::Wgpu);
#[cfg(feature = "test-cuda")]
parity_tests!(cuda, burn_cuda::Cuda);
