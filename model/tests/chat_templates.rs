//! Chat templates of SmolLM2, Qwen2.5(-Math), Qwen3, Llama 3.x and DeepSeekMath-Instruct render
//! exactly as HF `apply_chat_template` (`scripts/make_chat_fixtures.py`), and a template that
//! fails is an error naming its file.

use std::path::{Path, PathBuf};

use dsmath_model::chat::{ChatTemplate, Message};
use serde_json::Value;

fn dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/chat")
}

#[test]
fn chat_templates_render_as_hf() {
    let exp: Value =
        serde_json::from_str(&std::fs::read_to_string(dir().join("expected.json")).unwrap())
            .unwrap();
    let cases = exp["cases"].as_array().unwrap();
    assert_eq!(cases.len(), 56);
    for c in cases {
        let name = c["template"].as_str().unwrap();
        let path = dir().join("templates").join(format!("{name}.jinja"));
        let special = c["special_tokens"]
            .as_object()
            .unwrap()
            .iter()
            .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_string()))
            .collect();
        let t = ChatTemplate {
            source: std::fs::read_to_string(&path).unwrap(),
            path,
            special_tokens: special,
        };
        let messages: Vec<Message> = serde_json::from_value(c["messages"].clone()).unwrap();
        let extra: Vec<(&str, Value)> = c["extra"]
            .as_object()
            .unwrap()
            .iter()
            .map(|(k, v)| (k.as_str(), v.clone()))
            .collect();
        let got = t
            .render(
                &messages,
                c["add_generation_prompt"].as_bool().unwrap(),
                &extra,
            )
            .unwrap();
        assert_eq!(
            got,
            c["text"].as_str().unwrap(),
            "{name} {:?} {extra:?}",
            c["messages"]
        );
    }
}

fn write_dir(files: &[(&str, &str)]) -> tempfile::TempDir {
    let d = tempfile::tempdir().unwrap();
    for (name, text) in files {
        std::fs::write(d.path().join(name), text).unwrap();
    }
    d
}

#[test]
fn templates_are_found_where_hf_keeps_them() {
    // tokenizer_config.json: a string, or named templates of which `default` is used.
    let d = write_dir(&[(
        "tokenizer_config.json",
        r#"{"chat_template": "{{ messages[0]['content'] }}!", "eos_token": "</s>"}"#,
    )]);
    let t = ChatTemplate::from_dir(d.path()).unwrap().unwrap();
    assert_eq!(t.render(&[Message::user("hi")], true, &[]).unwrap(), "hi!");
    let d = write_dir(&[(
        "tokenizer_config.json",
        r#"{"chat_template": [{"name": "tool_use", "template": "T"}, {"name": "default", "template": "D{{ eos_token }}"}], "eos_token": {"content": "</s>"}}"#,
    )]);
    assert_eq!(
        ChatTemplate::from_dir(d.path())
            .unwrap()
            .unwrap()
            .user_prompt("q")
            .unwrap(),
        "D</s>"
    );
    // chat_template.jinja wins over tokenizer_config.json.
    let d = write_dir(&[
        ("tokenizer_config.json", r#"{"chat_template": "old"}"#),
        ("chat_template.jinja", "new"),
    ]);
    assert_eq!(
        ChatTemplate::from_dir(d.path())
            .unwrap()
            .unwrap()
            .user_prompt("q")
            .unwrap(),
        "new"
    );
    // No template: None (prompts keep dsmath's own format).
    let d = write_dir(&[("tokenizer_config.json", r#"{"eos_token": "</s>"}"#)]);
    assert!(ChatTemplate::from_dir(d.path()).unwrap().is_none());
}

#[test]
fn failing_templates_are_errors_naming_the_file() {
    let err = |template: &str| {
        let d = write_dir(&[("chat_template.jinja", template)]);
        let path = d.path().join("chat_template.jinja").display().to_string();
        let msg = match ChatTemplate::from_dir(d.path()) {
            Ok(t) => t.unwrap().user_prompt("q").unwrap_err().to_string(),
            Err(e) => e.to_string(),
        };
        assert!(msg.contains(&path), "{msg} should name {path}");
        msg
    };
    let raised = err(
        "{% if messages[0]['role'] == 'user' %}{{ raise_exception('Only system roles are supported!') }}{% endif %}",
    );
    assert!(
        raised.contains("Only system roles are supported!"),
        "{raised}"
    );
    assert!(err("{% for m in messages %}{{ m.content }").contains("syntax error"));
    // A variable dsmath does not provide is an error, not silently empty text.
    let missing = err("{{ messages[0].content }} {{ tools_description }}");
    assert!(missing.contains("undefined"), "{missing}");
    // ... while testing for it is allowed, as templates do.
    let d = write_dir(&[(
        "chat_template.jinja",
        "{% if documents %}D{% endif %}{% if foo is defined %}F{% endif %}ok",
    )]);
    assert_eq!(
        ChatTemplate::from_dir(d.path())
            .unwrap()
            .unwrap()
            .user_prompt("q")
            .unwrap(),
        "ok"
    );
}
