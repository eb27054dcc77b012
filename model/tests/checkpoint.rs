//! Checkpoint I/O: save in HF layout and load back, and clear errors (naming the file and
//! tensor) for missing, corrupt or mismatched checkpoints, configs and tokenizers.

use std::path::Path;

use burn_flex::Flex;
use dsmath_model::{
    LlamaConfig, SaveDtype, Tokenizer, init_model, load_model, load_model_and_tokenizer,
    save_model, weights::SafetensorsDir,
};

type B = Flex;

fn fixture(case: &str) -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(case)
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
    }
}

fn err_of<T>(r: Result<T, dsmath_model::ModelError>) -> String {
    match r {
        Ok(_) => panic!("expected an error"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn save_then_load_round_trips_exactly_in_hf_layout() {
    let device = burn_flex::FlexDevice;
    for case in ["llama_mha", "llama_gqa_tied_bf16_sharded", "qwen2_gqa_f16"] {
        let src = fixture(case);
        let (ckpt, _) = load_model_and_tokenizer::<B>(&src, &device).unwrap();
        let out = tempfile::tempdir().unwrap();
        save_model(
            out.path(),
            &ckpt.config,
            &ckpt.model,
            Some(&src),
            SaveDtype::F32,
        )
        .unwrap();
        // Same tensor names as HF wrote, no leftovers, no temporary files.
        let hf: Vec<String> = SafetensorsDir::open(&src)
            .unwrap()
            .names()
            .map(str::to_string)
            .collect();
        let ours: Vec<String> = SafetensorsDir::open(out.path())
            .unwrap()
            .names()
            .map(str::to_string)
            .collect();
        assert_eq!(hf, ours, "{case}");
        assert!(
            std::fs::read_dir(out.path()).unwrap().all(|e| !e
                .unwrap()
                .file_name()
                .to_string_lossy()
                .ends_with(".tmp"))
        );
        let back = load_model::<B>(out.path(), &device).unwrap();
        assert_eq!(back.config.vocab_size, ckpt.config.vocab_size);
        for ((n1, a), (n2, b)) in ckpt
            .model
            .named_tensors()
            .into_iter()
            .zip(back.model.named_tensors())
        {
            assert_eq!(n1, n2);
            assert_eq!(
                a.to_vec::<f32>().unwrap(),
                b.to_vec::<f32>().unwrap(),
                "{case} {n1}"
            );
        }
        Tokenizer::from_dir(out.path(), &back.config).unwrap();
    }
}

#[test]
fn bf16_save_halves_the_file_and_stays_close() {
    let device = burn_flex::FlexDevice;
    let cfg = LlamaConfig::tiny(300);
    let model = init_model::<B>(&cfg, 3, &device).unwrap();
    let out = tempfile::tempdir().unwrap();
    save_model(out.path(), &cfg, &model, None, SaveDtype::BF16).unwrap();
    let back = load_model::<B>(out.path(), &device).unwrap();
    for ((_, a), (_, b)) in model
        .named_tensors()
        .into_iter()
        .zip(back.model.named_tensors())
    {
        for (x, y) in a
            .to_vec::<f32>()
            .unwrap()
            .iter()
            .zip(b.to_vec::<f32>().unwrap())
        {
            assert!((x - y).abs() <= x.abs() / 128.0 + 1e-30);
        }
    }
    let cfg_json = std::fs::read_to_string(out.path().join("config.json")).unwrap();
    assert!(cfg_json.contains("\"dtype\": \"bfloat16\""));
}

#[test]
fn missing_unexpected_and_misshapen_tensors_are_all_listed() {
    let src = fixture("llama_mha");
    let dir = tempfile::tempdir().unwrap();
    copy_dir(&src, dir.path());
    // The config now claims 3 layers, a wider MLP and tied embeddings.
    let mut cfg = LlamaConfig::from_file(src.join("config.json")).unwrap();
    cfg.num_hidden_layers = 3;
    cfg.intermediate_size = 100;
    cfg.tie_word_embeddings = true;
    std::fs::write(dir.path().join("config.json"), cfg.to_json()).unwrap();
    let msg = err_of(load_model::<B>(dir.path(), &Default::default()));
    assert!(msg.contains("missing keys"), "{msg}");
    assert!(
        msg.contains("model.layers.2.self_attn.q_proj.weight"),
        "{msg}"
    );
    assert!(msg.contains("unexpected keys (1): lm_head.weight"), "{msg}");
    assert!(
        msg.contains("model.layers.0.mlp.gate_proj.weight in"),
        "{msg}"
    );
    assert!(msg.contains("shape [160, 64], expected [100, 64]"), "{msg}");
    assert!(msg.contains("model.safetensors"), "{msg}");
}

#[test]
fn truncated_or_corrupt_safetensors_names_the_file() {
    let src = fixture("llama_gqa_tied_bf16_sharded");
    let dir = tempfile::tempdir().unwrap();
    copy_dir(&src, dir.path());
    let shard = dir.path().join("model-00003-of-00005.safetensors");
    let bytes = std::fs::read(&shard).unwrap();
    std::fs::write(&shard, &bytes[..bytes.len() / 2]).unwrap();
    let msg = err_of(load_model::<B>(dir.path(), &Default::default()));
    assert!(
        msg.contains("model-00003-of-00005.safetensors") && msg.contains("not a valid safetensors"),
        "{msg}"
    );

    std::fs::write(&shard, b"\xff\xff\xff\xff\xff\xff\xff\x7fgarbage").unwrap();
    let msg = err_of(load_model::<B>(dir.path(), &Default::default()));
    assert!(msg.contains("model-00003-of-00005.safetensors"), "{msg}");

    std::fs::remove_file(&shard).unwrap();
    let msg = err_of(load_model::<B>(dir.path(), &Default::default()));
    assert!(msg.contains("model-00003-of-00005.safetensors"), "{msg}");

    let empty = tempfile::tempdir().unwrap();
    std::fs::copy(src.join("config.json"), empty.path().join("config.json")).unwrap();
    let msg = err_of(load_model::<B>(empty.path(), &Default::default()));
    assert!(msg.contains("model.safetensors"), "{msg}");
}

#[test]
fn config_with_wrong_types_names_the_file() {
    let dir = tempfile::tempdir().unwrap();
    copy_dir(&fixture("llama_mha"), dir.path());
    let text = std::fs::read_to_string(dir.path().join("config.json")).unwrap();
    std::fs::write(
        dir.path().join("config.json"),
        text.replace("\"hidden_size\": 64", "\"hidden_size\": \"64\""),
    )
    .unwrap();
    let msg = err_of(load_model::<B>(dir.path(), &Default::default()));
    assert!(
        msg.contains("config.json") && msg.contains("invalid type"),
        "{msg}"
    );
}

#[test]
fn tokenizer_that_does_not_fit_the_vocab_is_rejected() {
    let dir = fixture("llama_mha");
    let mut cfg = LlamaConfig::from_file(dir.join("config.json")).unwrap();
    cfg.vocab_size = 100;
    let msg = err_of(Tokenizer::from_dir(&dir, &cfg));
    assert!(
        msg.contains("tokenizer.json")
            && msg.contains("512 tokens")
            && msg.contains("vocab_size is 100"),
        "{msg}"
    );

    let bad = tempfile::tempdir().unwrap();
    std::fs::write(
        bad.path().join("tokenizer.json"),
        "{\"not\": \"a tokenizer\"",
    )
    .unwrap();
    let msg = err_of(Tokenizer::from_dir(bad.path(), &cfg));
    assert!(msg.contains("tokenizer.json"), "{msg}");
}

#[test]
fn special_tokens_come_from_the_checkpoint_files() {
    let dir = fixture("llama_mha");
    let cfg = LlamaConfig::from_file(dir.join("config.json")).unwrap();
    let tok = Tokenizer::from_dir(&dir, &cfg).unwrap();
    assert_eq!(tok.bos_id, Some(0));
    assert_eq!(tok.eos_ids, vec![1]);
    assert_eq!(tok.pad_id, 2);
    let ids = tok.encode("What is 2 + 2?").unwrap();
    assert_eq!(ids[0], 0, "LLaMA-style post-processor adds BOS");
    assert_eq!(tok.decode(&ids).unwrap(), "What is 2 + 2?");
}
