//! dsmath's AdamW + global clipping + multi-step schedule against PyTorch on the same model and
//! batch (scripts/make_optim_fixture.py): 10 steps of losses, pre-clip gradient norms and the
//! final weights.

use std::path::Path;

use burn::tensor::{Int, Tensor, TensorData};
use burn_autodiff::Autodiff;
use burn_flex::Flex;
use dsmath_model::{causal_lm_loss, load_model};
use dsmath_train::optim::{AdamW, AdamWConfig, clip, collect_grads};
use dsmath_train::schedule::{Schedule, ScheduleKind};

type B = Autodiff<Flex>;

#[test]
fn adamw_clipping_and_schedule_match_pytorch() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let fx: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(root.join("tests/fixtures/adamw_reference.json")).unwrap()).unwrap();
    let device = Default::default();
    let mut model = load_model::<B>(&root.join("../model/tests/fixtures/llama_mha"), &device).unwrap().model;
    let ids: Vec<i64> = fx["ids"].as_array().unwrap().iter().flat_map(|r| r.as_array().unwrap().iter().map(|x| x.as_i64().unwrap())).collect();
    let w: Vec<f32> = fx["weight"].as_array().unwrap().iter().flat_map(|r| r.as_array().unwrap().iter().map(|x| x.as_f64().unwrap() as f32)).collect();
    let sched = Schedule { kind: ScheduleKind::MultiStep, peak_lr: 2e-3, warmup_steps: 2, ..Default::default() };
    let mut opt = AdamW::new(AdamWConfig { grad_clip: 0.5, ..Default::default() });
    for s in fx["steps"].as_array().unwrap() {
        let step = s["step"].as_u64().unwrap();
        let input = Tensor::<B, 2, Int>::from_data(TensorData::new(ids.clone(), [2, 12]), &device);
        let weight = Tensor::<B, 2>::from_data(TensorData::new(w.clone(), [2, 12]), &device);
        let valid = vec![vec![true; 12]; 2];
        let logits = model.forward_padded(input.clone(), &valid);
        let loss = causal_lm_loss(logits, input, weight);
        let loss_v: f32 = loss.clone().into_scalar();
        let grads = loss.backward();
        let flat = collect_grads(&model, &grads);
        let (flat, norm) = clip(flat, opt.cfg.grad_clip);
        let lr = sched.lr(step, 10);
        assert!((lr - s["lr"].as_f64().unwrap()).abs() < 1e-12, "step {step}: lr {lr}");
        let (want_loss, want_norm) = (s["loss"].as_f64().unwrap(), s["grad_norm"].as_f64().unwrap());
        assert!((loss_v as f64 - want_loss).abs() < 2e-4 * want_loss.max(1.0), "step {step}: loss {loss_v} vs torch {want_loss}");
        assert!((norm - want_norm).abs() < 2e-3 * want_norm, "step {step}: grad norm {norm} vs torch {want_norm}");
        model = opt.step(model, flat, lr);
    }
    let mut worst: f64 = 0.0;
    for (name, data) in model.named_tensors() {
        let want = &fx["final"][&name];
        let vals = data.convert::<f32>().to_vec::<f32>().unwrap();
        let sum: f64 = vals.iter().map(|&x| x as f64).sum();
        let scale = vals.iter().map(|x| x.abs() as f64).sum::<f64>().max(1.0);
        worst = worst.max((sum - want["sum"].as_f64().unwrap()).abs() / scale);
        for (a, b) in vals.iter().zip(want["first"].as_array().unwrap()) {
            assert!((*a as f64 - b.as_f64().unwrap()).abs() < 1e-4, "{name}: {a} vs torch {b}");
        }
    }
    assert!(worst < 1e-5, "relative weight-sum difference {worst}");
}
