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
    let fx: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(root.join("tests/fixtures/adamw_reference.json")).unwrap(),
    )
    .unwrap();
    let device = Default::default();
    let mut model = load_model::<B>(&root.join("../model/tests/fixtures/llama_mha"), &device)
        .unwrap()
        .model;
    let ids: Vec<i64> = fx["ids"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|r| r.as_array().unwrap().iter().map(|x| x.as_i64().unwrap()))
        .collect();
    let w: Vec<f32> = fx["weight"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|r| {
            r.as_array()
                .unwrap()
                .iter()
                .map(|x| x.as_f64().unwrap() as f32)
        })
        .collect();
    let sched = Schedule {
        kind: ScheduleKind::MultiStep,
        peak_lr: 2e-3,
        warmup_steps: 2,
        ..Default::default()
    };
    let mut opt = AdamW::new(AdamWConfig {
        grad_clip: 0.5,
        ..Default::default()
    });
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
        assert!(
            (lr - s["lr"].as_f64().unwrap()).abs() < 1e-12,
            "step {step}: lr {lr}"
        );
        let (want_loss, want_norm) = (
            s["loss"].as_f64().unwrap(),
            s["grad_norm"].as_f64().unwrap(),
        );
        assert!(
            (loss_v as f64 - want_loss).abs() < 2e-4 * want_loss.max(1.0),
            "step {step}: loss {loss_v} vs torch {want_loss}"
        );
        assert!(
            (norm - want_norm).abs() < 2e-3 * want_norm,
            "step {step}: grad norm {norm} vs torch {want_norm}"
        );
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
            assert!(
                (*a as f64 - b.as_f64().unwrap()).abs() < 1e-4,
                "{name}: {a} vs torch {b}"
            );
        }
    }
    assert!(worst < 1e-5, "relative weight-sum difference {worst}");
}

/// burn-flex's one-pass AdamW and sum of squares (`fused.rs`) against the burn-op versions:
/// bitwise the same parameters and moments over three steps (first step without moments, with
/// and without decay), above and below the rayon chunk size.
#[test]
fn fused_adamw_is_bitwise_the_burn_op_update() {
    use dsmath_train::fused;
    use dsmath_train::optim::{AdamWStep, adamw_ops};
    let device = Default::default();
    let mut seed = 0x2545_F491_4F6C_DD1Du64;
    let mut rand = |n: usize, scale: f32| -> Tensor<Flex, 1> {
        let v: Vec<f32> = (0..n)
            .map(|_| {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                ((seed >> 40) as f32 / (1u64 << 24) as f32 - 0.5) * scale
            })
            .collect();
        Tensor::from_data(TensorData::new(v, [n]), &device)
    };
    let bits = |t: &Tensor<Flex, 1>| {
        t.to_data()
            .to_vec::<f32>()
            .unwrap()
            .iter()
            .map(|x| x.to_bits())
            .collect::<Vec<u32>>()
    };
    let cfg = AdamWConfig::default(); // beta (0.9, 0.95), weight decay 0.1, eps 1e-8
    for (n, lr, decayed) in [
        (100_003usize, 0.1, true),
        (1000, 1e-3, false),
        (70_000, 1e-3, true),
    ] {
        let p0 = rand(n, 0.2);
        let start = bits(&p0);
        let (mut a, mut b) = ((p0.clone(), None, None), (p0, None, None));
        for t in 1..=3u64 {
            let g = rand(n, 2e-3 * t as f32);
            let s = AdamWStep::new(&cfg, lr, t, decayed);
            let (p, m, v) = fused::adamw(a.0, g.clone(), a.1, a.2, &s)
                .map_err(|_| "flex f32 must take the fused path")
                .unwrap();
            a = (p, Some(m), Some(v));
            let (p, m, v) = adamw_ops(b.0, g, b.1, b.2, &s);
            b = (p, Some(m), Some(v));
            assert_eq!(bits(&a.0), bits(&b.0), "n {n} step {t}: parameters");
            assert_eq!(
                bits(a.1.as_ref().unwrap()),
                bits(b.1.as_ref().unwrap()),
                "n {n} step {t}: first moment"
            );
            assert_eq!(
                bits(a.2.as_ref().unwrap()),
                bits(b.2.as_ref().unwrap()),
                "n {n} step {t}: second moment"
            );
        }
        // The update moved (nearly) every parameter: the comparison above is not of two no-ops.
        let moved = bits(&a.0)
            .iter()
            .zip(&start)
            .filter(|(x, y)| x != y)
            .count();
        assert!(moved > n * 9 / 10, "n {n}: only {moved} parameters changed");
        let g = rand(n, 3.0);
        let want: f64 = g
            .to_data()
            .to_vec::<f32>()
            .unwrap()
            .iter()
            .map(|&x| x as f64 * x as f64)
            .sum();
        let got = fused::sum_squares(&g).expect("flex f32 takes the fused path");
        assert!(
            (got - want).abs() <= 1e-6 * want,
            "n {n}: sum of squares {got} vs {want}"
        );
        // A strided view (a reversed tensor) is made contiguous first.
        let got = fused::sum_squares(&g.flip([0])).unwrap();
        assert!(
            (got - want).abs() <= 1e-6 * want,
            "n {n}: sum of squares of a flipped view {got} vs {want}"
        );
    }
    // Not burn-flex f32: the burn-op version is asked for, inputs unchanged.
    let half = Tensor::<Flex, 1>::ones([4], &device).cast(burn::tensor::DType::BF16);
    let s = AdamWStep::new(&cfg, 1e-3, 1, false);
    assert!(fused::adamw(half.clone(), half.clone(), None, None, &s).is_err());
    assert!(fused::sum_squares(&half).is_none());
}
