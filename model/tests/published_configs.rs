//! Published config.json files of each supported family (`tests/fixtures/configs`, SOURCES.md
//! there) load unchanged and count the parameters HF transformers builds from them
//! (`scripts/make_config_fixtures.py`); what dsmath cannot run is refused by key and value.

use std::path::Path;

use dsmath_model::LlamaConfig;
use dsmath_model::config::{Architecture, RopeScaling};
use serde_json::Value;

fn dir() -> &'static Path {
    Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/configs"
    ))
}

#[test]
fn published_configs_parse_and_count_like_hf() {
    let expected: Value =
        serde_json::from_str(&std::fs::read_to_string(dir().join("expected.json")).unwrap())
            .unwrap();
    let mut seen = 0;
    for entry in std::fs::read_dir(dir()).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_str().unwrap().to_string();
        if !name.ends_with(".json") || name == "expected.json" {
            continue;
        }
        let cfg = LlamaConfig::from_file(&path).unwrap_or_else(|e| panic!("{name}: {e}"));
        let want = &expected[&name];
        assert_eq!(
            cfg.num_parameters() as u64,
            want["num_parameters"].as_u64().unwrap(),
            "{name}"
        );
        assert_eq!(
            cfg.architecture().unwrap().class_name(),
            want["architecture"].as_str().unwrap(),
            "{name}"
        );
        // Written back, the config keeps every key it was read with.
        let original: Value =
            serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        let back: Value = serde_json::from_str(&cfg.to_json()).unwrap();
        for key in original.as_object().unwrap().keys() {
            assert!(
                back.get(key).is_some() || original[key].is_null(),
                "{name}: `{key}` lost when written back"
            );
        }
        seen += 1;
    }
    assert_eq!(seen, 7);
}

#[test]
fn families_resolve_to_their_architecture_and_rope() {
    let load = |n: &str| LlamaConfig::from_file(dir().join(n)).unwrap();
    assert_eq!(
        load("Qwen3-0.6B.json").architecture().unwrap(),
        Architecture::Qwen3
    );
    assert_eq!(load("Qwen3-0.6B.json").head_dim(), 128); // not hidden / heads = 64
    let llama = load("Llama-3.2-1B.json").rope().unwrap();
    assert_eq!(
        llama.scaling,
        RopeScaling::Llama3 {
            factor: 32.0,
            low_freq_factor: 1.0,
            high_freq_factor: 4.0,
            original_max_position_embeddings: 8192.0
        }
    );
    assert_eq!(
        load("Llama-3.1-8B-Instruct.json").eos_ids(),
        vec![128001, 128008, 128009]
    );
}

#[test]
fn math_changing_values_of_known_keys_are_errors_naming_them() {
    let base = std::fs::read_to_string(dir().join("SmolLM2-135M-Instruct.json")).unwrap();
    let with = |key: &str, value: &str| {
        let mut v: Value = serde_json::from_str(&base).unwrap();
        v[key] = serde_json::from_str(value).unwrap();
        LlamaConfig::from_json(&v.to_string())
            .map(|_| ())
            .map_err(|e| e.to_string())
    };
    assert!(
        with("some_new_flag", "true").is_ok(),
        "an unknown key is a warning"
    );
    assert!(
        with("use_sliding_window", "true")
            .unwrap_err()
            .contains("sliding_window")
    );
    assert!(
        with("rope_interleaved", "true")
            .unwrap_err()
            .contains("rope_interleaved")
    );
    assert!(with("use_mrope", "true").unwrap_err().contains("use_mrope"));
    assert!(
        with("attn_logit_softcapping", "50.0")
            .unwrap_err()
            .contains("attn_logit_softcapping")
    );
    assert!(
        with("rope_scaling", r#"{"rope_type": "yarn", "factor": 4.0}"#)
            .unwrap_err()
            .contains("yarn")
    );
    assert!(
        with("rope_scaling", r#"{"rope_type": "llama3", "factor": 8.0}"#)
            .unwrap_err()
            .contains("low_freq_factor")
    );
    assert!(
        with("quantization_config", r#"{"quant_method": "gptq"}"#)
            .unwrap_err()
            .contains("quantization_config")
    );
    // A window at least as long as the context is full attention.
    let mut v: Value = serde_json::from_str(&base).unwrap();
    v["use_sliding_window"] = true.into();
    v["sliding_window"] = 8192.into();
    assert!(LlamaConfig::from_json(&v.to_string()).is_ok());
}
