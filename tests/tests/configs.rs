//! Every recipe in `configs/` parses with the stage's own config type (unknown keys are errors),
//! so the documented commands never start from a broken file.

use std::path::Path;

#[test]
fn every_config_parses() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../configs");
    let mut seen = 0;
    for e in std::fs::read_dir(&dir).unwrap() {
        let p = e.unwrap().path();
        if p.extension().and_then(|x| x.to_str()) != Some("toml") {
            continue;
        }
        let name = p.file_name().unwrap().to_str().unwrap().to_string();
        let text = std::fs::read_to_string(&p).unwrap();
        if name.starts_with("demo") {
            let plan = dsmath_train::demo::DemoPlan::from_file(&p)
                .unwrap_or_else(|e| panic!("{name}: {e}"));
            assert!(plan.pretrain_steps > 0 && plan.grpo_steps > 0, "{name}");
        } else if name.starts_with("corpus") {
            dsmath_data::pipeline::CorpusConfig::from_file(&p)
                .unwrap_or_else(|e| panic!("{name}: {e}"));
        } else if text.contains("[grpo") {
            dsmath_train::rl::run::GrpoConfig::from_file(&p)
                .unwrap_or_else(|e| panic!("{name}: {e}"));
        } else {
            dsmath_train::trainer::TrainConfig::from_file(&p)
                .unwrap_or_else(|e| panic!("{name}: {e}"));
        }
        seen += 1;
    }
    assert!(seen >= 10, "{seen} configs");
}
