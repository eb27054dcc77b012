//! The patched burn-flex (vendor/burn-flex/PATCHES.md) against burn-ndarray, an independent CPU
//! backend: strided copies (head swaps, permutes, batched transposes, expanded operands),
//! element-wise ops on views, and the rayon-split element-wise paths, each below and above the
//! size at which the patches go parallel; the vectorised exp / sigmoid against libm, and the fused
//! softmax / log-softmax, long-row broadcasts and parallel zero fill.

use burn::tensor::{Distribution, Int, Tensor, TensorData, backend::Backend};
use burn_flex::Flex;
use burn_ndarray::NdArray;

type F = Flex;
type N = NdArray<f32>;

fn data(shape: [usize; 4], seed: u64) -> Vec<f32> {
    // Deterministic, distinct values (no RNG backend differences).
    let n: usize = shape.iter().product();
    (0..n)
        .map(|i| ((i as u64 * 2654435761 + seed * 97) % 10007) as f32 / 1000.0 - 5.0)
        .collect()
}

fn pair(shape: [usize; 4], seed: u64) -> (Tensor<F, 4>, Tensor<N, 4>) {
    let v = data(shape, seed);
    (
        Tensor::from_data(TensorData::new(v.clone(), shape), &Default::default()),
        Tensor::from_data(TensorData::new(v, shape), &Default::default()),
    )
}

fn same(a: Tensor<F, 4>, b: Tensor<N, 4>, tol: f32, what: &str) {
    assert_eq!(a.dims(), b.dims(), "{what}: shapes");
    let (a, b) = (
        a.into_data().to_vec::<f32>().unwrap(),
        b.into_data().to_vec::<f32>().unwrap(),
    );
    for (i, (x, y)) in a.iter().zip(&b).enumerate() {
        assert!(
            (x - y).abs() <= tol * (1.0 + y.abs()),
            "{what}: element {i}: flex {x} vs ndarray {y}"
        );
    }
}

/// Small (single-threaded paths) and large (rayon paths: >= 32768 elements) shapes.
const SHAPES: [[usize; 4]; 2] = [[2, 3, 5, 7], [4, 8, 64, 40]];

#[test]
fn strided_copies_match_ndarray() {
    for shape in SHAPES {
        let (f, n) = pair(shape, 1);
        let [b, h, s, d] = shape;
        // Attention head swap then merge: [b, h, s, d] -> [b, s, h*d].
        same(
            f.clone().swap_dims(1, 2).reshape([b, s, h * d, 1]),
            n.clone().swap_dims(1, 2).reshape([b, s, h * d, 1]),
            0.0,
            "swap(1,2)+reshape",
        );
        // Batched transpose of the last two dims (innermost stride != 1).
        same(
            f.clone().swap_dims(2, 3),
            n.clone().swap_dims(2, 3),
            0.0,
            "swap(2,3)",
        );
        same(
            f.clone().swap_dims(2, 3).reshape([b, h, d * s, 1]),
            n.clone().swap_dims(2, 3).reshape([b, h, d * s, 1]),
            0.0,
            "swap(2,3)+reshape",
        );
        // A full permutation and a sliced view.
        same(
            f.clone().permute([3, 1, 0, 2]),
            n.clone().permute([3, 1, 0, 2]),
            0.0,
            "permute",
        );
        same(
            f.clone().narrow(3, 1, d - 2).swap_dims(1, 2),
            n.clone().narrow(3, 1, d - 2).swap_dims(1, 2),
            0.0,
            "narrow+swap",
        );
        // 2-D transpose (the tiled 2-D copy, split over rayon when large).
        let (f2, n2) = (
            f.clone().reshape([b * h, s * d]),
            n.clone().reshape([b * h, s * d]),
        );
        same(
            f2.transpose().reshape([1, 1, s * d, b * h]),
            n2.transpose().reshape([1, 1, s * d, b * h]),
            0.0,
            "2-D transpose",
        );
        // Integer tensors take the same copy.
        let fi: Tensor<F, 4, Int> = f.clone().int().swap_dims(1, 3);
        let ni: Tensor<N, 4, Int> = n.clone().int().swap_dims(1, 3);
        assert_eq!(
            fi.into_data().convert::<i64>().to_vec::<i64>().unwrap(),
            ni.into_data().convert::<i64>().to_vec::<i64>().unwrap(),
            "int swap"
        );
    }
}

/// Transposes of f32 matrices (burn-flex moves 8x8 blocks with AVX2 when the CPU has it), with
/// and without rows / columns past the last full block, alone and as the inner matrices of a
/// batched transpose.
#[test]
fn transposes_with_partial_blocks_match_ndarray() {
    for (r, c) in [
        (8, 8),
        (13, 21),
        (9, 17),
        (64, 40),
        (100, 7),
        (7, 100),
        (333, 129),
    ] {
        let (f, n) = pair([1, 1, r, c], 8);
        same(
            f.clone().swap_dims(2, 3),
            n.clone().swap_dims(2, 3),
            0.0,
            &format!("[{r}, {c}]^T"),
        );
        let (f3, n3) = (
            f.reshape([1, r, c, 1]).swap_dims(1, 2),
            n.reshape([1, r, c, 1]).swap_dims(1, 2),
        );
        same(f3, n3, 0.0, &format!("[{r}, {c}] swap(1, 2)"));
        let (fb, nb) = pair([3, 2, r, c], 9);
        same(
            fb.swap_dims(2, 3),
            nb.swap_dims(2, 3),
            0.0,
            &format!("[3, 2, {r}, {c}] swap(2, 3)"),
        );
    }
}

#[test]
fn element_wise_ops_on_views_match_ndarray() {
    for shape in SHAPES {
        let (fa, na) = pair(shape, 2);
        let (fb, nb) = pair(shape, 3);
        let [_, _, s, d] = shape;
        // Both operands strided, same shape.
        same(
            fa.clone().swap_dims(1, 2) * fb.clone().swap_dims(1, 2),
            na.clone().swap_dims(1, 2) * nb.clone().swap_dims(1, 2),
            0.0,
            "view * view",
        );
        same(
            fa.clone().swap_dims(1, 2) - fb.clone().swap_dims(2, 1),
            na.clone().swap_dims(1, 2) - nb.clone().swap_dims(2, 1),
            0.0,
            "view - view",
        );
        // Strided lhs, broadcast rhs [1, s, 1, d] (RoPE tables against swapped heads).
        let cos = data([1, s, 1, d], 4);
        let fc = Tensor::<F, 4>::from_data(
            TensorData::new(cos.clone(), [1, s, 1, d]),
            &Default::default(),
        );
        let nc = Tensor::<N, 4>::from_data(TensorData::new(cos, [1, s, 1, d]), &Default::default());
        same(
            fa.clone().swap_dims(1, 2) * fc.clone(),
            na.clone().swap_dims(1, 2) * nc.clone(),
            0.0,
            "view * broadcast",
        );
        // Row broadcasts (RMSNorm, softmax): one scalar per row, one row for all rows.
        let (fr, nr) = (
            fb.clone().abs().sum_dim(3) + 1.0,
            nb.clone().abs().sum_dim(3) + 1.0,
        );
        same(
            fa.clone() / fr.clone(),
            na.clone() / nr.clone(),
            1e-6,
            "per-row scalar div",
        );
        same(fa.clone() - fr, na.clone() - nr, 1e-6, "per-row scalar sub");
        let (fw, nw) = (
            fb.clone().narrow(0, 0, 1).narrow(1, 0, 1).narrow(2, 0, 1),
            nb.clone().narrow(0, 0, 1).narrow(1, 0, 1).narrow(2, 0, 1),
        );
        same(
            fa.clone() * fw.clone(),
            na.clone() * nw.clone(),
            0.0,
            "shared row mul",
        );
        same(fa.clone() + fw, na.clone() + nw, 0.0, "shared row add");
        // Scalar ops on views: a permuted whole buffer (mapped in storage order, layout kept;
        // attention's scaled queries / keys), shared or unique, and a sliced view (copied first).
        let (keep, fq) = (fa.clone(), fa.clone().swap_dims(1, 2));
        same(
            fq.clone() * 0.125,
            na.clone().swap_dims(1, 2) * 0.125,
            0.0,
            "view * scalar",
        );
        same(
            (fq * 0.125).swap_dims(1, 2) + 1.0,
            na.clone() * 0.125 + 1.0,
            1e-6,
            "view * scalar, swapped back",
        );
        same(keep, na.clone(), 0.0, "viewed tensor unchanged");
        same(
            pair(shape, 2).0.permute([3, 1, 0, 2]) - 2.0,
            na.clone().permute([3, 1, 0, 2]) - 2.0,
            0.0,
            "unique view - scalar",
        );
        same(
            fa.clone().narrow(3, 1, d - 2).swap_dims(1, 2) * -3.0,
            na.clone().narrow(3, 1, d - 2).swap_dims(1, 2) * -3.0,
            0.0,
            "sliced view * scalar",
        );
        // Contiguous lhs, strided rhs.
        same(
            fa.clone() + fb.clone().swap_dims(0, 1).swap_dims(0, 1),
            na.clone() + nb.clone(),
            0.0,
            "contiguous + view",
        );
        // Contiguous in-place paths (split over rayon when large): binary, scalar, unary.
        same(
            fa.clone() * fb.clone(),
            na.clone() * nb.clone(),
            0.0,
            "contiguous * contiguous",
        );
        same(
            fa.clone() / (fb.clone().abs() + 1.0),
            na.clone() / (nb.clone().abs() + 1.0),
            1e-6,
            "div",
        );
        same(
            fa.clone() * 0.37 - 2.0,
            na.clone() * 0.37 - 2.0,
            1e-6,
            "scalar ops",
        );
        same(fa.clone().exp(), na.clone().exp(), 1e-5, "exp");
        same(
            burn::tensor::activation::silu(fa.clone()),
            burn::tensor::activation::silu(na.clone()),
            1e-5,
            "silu",
        );
    }
}

/// The allocating element-wise paths (split over rayon when large): operands still referenced
/// elsewhere, as the autodiff graph holds them, get a new output and stay unchanged; unique
/// operands are updated in place; contiguous views at an offset; integer tensors.
#[test]
fn element_wise_ops_on_shared_unique_and_offset_tensors_match_ndarray() {
    for shape in SHAPES {
        let (fa, na) = pair(shape, 5);
        let (fb, nb) = pair(shape, 6);
        let b = shape[0];
        let (keep_a, keep_b) = (fa.clone(), fb.clone());
        same(
            fa.clone() - fb.clone(),
            na.clone() - nb.clone(),
            0.0,
            "shared - shared",
        );
        same(
            fa.clone() * fb.clone(),
            na.clone() * nb.clone(),
            0.0,
            "shared * shared",
        );
        let (fp, np) = (fa.clone().abs() + 0.5, na.clone().abs() + 0.5); // positive bases
        same(
            fp.clone().powf(fb.clone().abs() * 0.1),
            np.clone().powf(nb.clone().abs() * 0.1),
            1e-5,
            "shared powf (no SIMD op)",
        );
        same(fa.clone().exp(), na.clone().exp(), 1e-5, "shared exp");
        same(fa.clone() * 1.5, na.clone() * 1.5, 0.0, "shared * scalar");
        same(keep_a, na.clone(), 0.0, "shared lhs unchanged");
        same(keep_b, nb.clone(), 0.0, "shared rhs unchanged");
        let unique = || pair(shape, 5).0;
        same(
            unique() - pair(shape, 6).0,
            na.clone() - nb.clone(),
            0.0,
            "unique - unique",
        );
        same(
            (unique().abs() + 0.5).powf(pair(shape, 6).0.abs() * 0.1),
            np.powf(nb.clone().abs() * 0.1),
            1e-5,
            "unique powf",
        );
        same(unique().exp(), na.clone().exp(), 1e-5, "unique exp");
        same(
            unique() * 1.5 + 0.25,
            na.clone() * 1.5 + 0.25,
            1e-6,
            "unique scalar ops",
        );
        // Contiguous views starting at an offset (narrow on the outer dim).
        let (fo, no) = (
            fa.clone().narrow(0, 1, b - 1),
            na.clone().narrow(0, 1, b - 1),
        );
        same(fo.clone().exp(), no.clone().exp(), 1e-5, "offset exp");
        same(fo.clone() * 2.0, no.clone() * 2.0, 0.0, "offset * scalar");
        same(
            fo.clone() * fb.clone().narrow(0, 0, b - 1),
            no.clone() * nb.clone().narrow(0, 0, b - 1),
            0.0,
            "offset * offset",
        );
        // Integer element-wise ops.
        let (fi, ni) = ((fa.clone() * 100.0).int(), (na.clone() * 100.0).int());
        let fint = (fi.clone() + fi.clone() * 3 - fi.clone())
            .into_data()
            .convert::<i64>()
            .to_vec::<i64>()
            .unwrap();
        let nint = (ni.clone() + ni.clone() * 3 - ni.clone())
            .into_data()
            .convert::<i64>()
            .to_vec::<i64>()
            .unwrap();
        assert_eq!(fint, nint, "int ops");
    }
}

#[test]
fn matmul_outputs_and_random_fill_are_sound() {
    // Matmul outputs are allocated without a zero fill (`FlexTensor::for_overwrite`): gemm must
    // write every element, batched and 2-D, and also when the inner dimension is 0.
    let (fa, na) = pair([2, 4, 48, 32], 5);
    let (fb, nb) = pair([2, 4, 32, 24], 6);
    same(
        fa.clone().matmul(fb.clone()),
        na.clone().matmul(nb.clone()),
        1e-4,
        "matmul",
    );
    let f2 = |t: Tensor<F, 4>| t.reshape([2 * 4 * 48, 32]);
    let n2 = |t: Tensor<N, 4>| t.reshape([2 * 4 * 48, 32]);
    let (fw, nw) = (
        fb.clone().narrow(0, 0, 1).narrow(1, 0, 1).reshape([32, 24]),
        nb.narrow(0, 0, 1).narrow(1, 0, 1).reshape([32, 24]),
    );
    same(
        f2(fa).matmul(fw).reshape([1, 1, 384, 24]),
        n2(na).matmul(nw).reshape([1, 1, 384, 24]),
        1e-4,
        "2-D matmul",
    );
    let empty = |s: [usize; 2]| {
        Tensor::<F, 2>::from_data(TensorData::new(Vec::<f32>::new(), s), &Default::default())
    };
    let k0 = empty([6, 0])
        .matmul(empty([0, 5]))
        .into_data()
        .to_vec::<f32>()
        .unwrap();
    assert_eq!(k0, vec![0.0; 30], "k = 0 matmul must be zeros");
    let z = Tensor::<F, 4>::zeros([3, 5, 7, 11], &Default::default());
    assert!(
        z.into_data()
            .to_vec::<f32>()
            .unwrap()
            .iter()
            .all(|&x| x == 0.0)
    );
    let r = Tensor::<F, 2>::random(
        [300, 200],
        Distribution::Uniform(-1.0, 1.0),
        &Default::default(),
    );
    let v = r.into_data().to_vec::<f32>().unwrap();
    assert!(v.iter().all(|x| (-1.0..=1.0).contains(x)) && v.iter().any(|&x| x != v[0]));
    let _ = <F as Backend>::name(&Default::default());
}

#[test]
fn matmul_operand_layouts_match_ndarray() {
    // `x W^T` (W `[n, k]` read transposed: vendor/gemm-common packs it by 8x8 transposes) at
    // packed widths that are full, partial, one or two SIMD vectors, plus depths below 8 and not
    // a multiple of 8; and a column-major lhs (`a^T b`, autodiff's weight gradient), whose
    // output burn-flex writes column-major: used as is, reshaped, added to and transposed.
    let mat = |r: usize, c: usize, seed: u64| pair([1, 1, r, c], seed);
    let two = |t: Tensor<F, 4>| {
        let [_, _, r, c] = t.dims();
        t.reshape([r, c])
    };
    let twon = |t: Tensor<N, 4>| {
        let [_, _, r, c] = t.dims();
        t.reshape([r, c])
    };
    let four = |t: Tensor<F, 2>| t.unsqueeze::<4>();
    let fourn = |t: Tensor<N, 2>| t.unsqueeze::<4>();
    for (m, k, n) in [
        (70, 37, 53),
        (300, 260, 200),
        (64, 8, 64),
        (9, 7, 20),
        (40, 24, 16),
        (33, 17, 32),
        (128, 64, 8),
    ] {
        let what = format!("m {m} k {k} n {n}");
        let ((fx, nx), (fw, nw)) = (mat(m, k, 11), mat(n, k, 12));
        let (fy, ny) = (
            two(fx.clone()).matmul(two(fw).transpose()),
            twon(nx.clone()).matmul(twon(nw).transpose()),
        );
        same(four(fy), fourn(ny), 1e-4, &format!("x W^T, {what}"));
        let (fb, nb) = mat(m, n, 13);
        let (fg, ng) = (
            two(fx).transpose().matmul(two(fb)),
            twon(nx).transpose().matmul(twon(nb)),
        );
        same(
            four(fg.clone()),
            fourn(ng.clone()),
            1e-4,
            &format!("a^T b, {what}"),
        );
        same(
            four(fg.clone().transpose()),
            fourn(ng.clone().transpose()),
            1e-4,
            &format!("(a^T b)^T, {what}"),
        );
        same(
            fg.clone().reshape([1, 1, 1, k * n]),
            ng.clone().reshape([1, 1, 1, k * n]),
            1e-4,
            &format!("(a^T b) reshaped, {what}"),
        );
        same(
            four(fg + 1.0),
            fourn(ng + 1.0),
            1e-4,
            &format!("(a^T b) + 1, {what}"),
        );
    }
    // Batched: a column-major lhs per matrix, from a contiguous and from a head-swapped tensor.
    let (fa, na) = pair([2, 4, 48, 32], 14);
    let (fb, nb) = pair([2, 4, 48, 24], 15);
    let (fc, nc) = (
        fa.clone().swap_dims(2, 3).matmul(fb.clone()),
        na.clone().swap_dims(2, 3).matmul(nb.clone()),
    );
    same(fc.clone(), nc.clone(), 1e-4, "batched a^T b");
    same(
        fc.clone().swap_dims(2, 3),
        nc.clone().swap_dims(2, 3),
        1e-4,
        "batched (a^T b)^T",
    );
    same(
        fc.reshape([2, 4, 32 * 24, 1]),
        nc.reshape([2, 4, 32 * 24, 1]),
        1e-4,
        "batched (a^T b) reshaped",
    );
    let (fh, nh) = (
        fa.swap_dims(1, 2).swap_dims(2, 3),
        na.swap_dims(1, 2).swap_dims(2, 3),
    ); // [2, 48, 32, 4]
    let (fd, nd) = (fb.swap_dims(1, 2), nb.swap_dims(1, 2)); // [2, 48, 4, 24]
    same(
        fh.matmul(fd),
        nh.matmul(nd),
        1e-4,
        "batched a^T b, head-swapped",
    );
}

#[test]
fn additive_mask_under_autodiff_matches_blocked_mask() {
    // Training (autodiff) reads the attention mask as an additive 0 / -inf bias, inference as
    // a boolean mask for the fused kernel: same logits, with padding and packed segments.
    use burn_autodiff::Autodiff;
    use dsmath_model::{LlamaConfig, init_model};
    let cfg = LlamaConfig::tiny(64);
    let dev = Default::default();
    let plain = init_model::<F>(&cfg, 7, &dev).unwrap();
    let grad = init_model::<Autodiff<F>>(&cfg, 7, &dev).unwrap();
    let (b, s) = (3, 12);
    let ids: Vec<i64> = (0..b * s).map(|i| (i * 7 % 64) as i64).collect();
    // Row 0 full, row 1 left-padded by 4, row 2 right-padded by 3.
    let valid: Vec<Vec<bool>> = vec![
        vec![true; s],
        (0..s).map(|j| j >= 4).collect(),
        (0..s).map(|j| j < s - 3).collect(),
    ];
    let a = plain.forward_padded(
        Tensor::from_data(TensorData::new(ids.clone(), [b, s]), &dev),
        &valid,
    );
    let g = grad.forward_padded(
        Tensor::from_data(TensorData::new(ids, [b, s]), &dev),
        &valid,
    );
    let (a, g) = (
        a.into_data().to_vec::<f32>().unwrap(),
        g.into_data().to_vec::<f32>().unwrap(),
    );
    for (i, (x, y)) in a.iter().zip(&g).enumerate() {
        let (row, pos) = (i / (s * 64), i / 64 % s);
        if valid[row][pos] {
            assert!(
                (x - y).abs() < 1e-4,
                "logit {i}: blocked mask {x} vs additive mask {y}"
            );
        }
    }
}

/// Units in the last place between two finite f32 of the same sign.
fn ulps(a: f32, b: f32) -> u64 {
    (a.to_bits() as i64 - b.to_bits() as i64).unsigned_abs()
}

#[test]
fn vectorised_exp_and_sigmoid_match_libm() {
    // The patch's branch-free exp (vendor/burn-flex/src/simd/exp.rs) over the whole f32 range,
    // large enough for the rayon + AVX2 path (shared and unique input), then special values in
    // a small tensor (calling thread).
    let xs: Vec<f32> = (0..200_000)
        .map(|i| -104.0 + i as f32 * (193.0 / 200_000.0))
        .collect();
    let n = xs.len();
    let t = Tensor::<F, 1>::from_data(TensorData::new(xs.clone(), [n]), &Default::default());
    let exp = t.clone().exp().into_data().to_vec::<f32>().unwrap(); // shared: the copying path
    let sig = burn::tensor::activation::sigmoid(t)
        .into_data()
        .to_vec::<f32>()
        .unwrap(); // in place
    let mut worst = 0;
    for (i, &x) in xs.iter().enumerate() {
        let want = x.exp();
        if want >= f32::MIN_POSITIVE && want.is_finite() {
            worst = worst.max(ulps(exp[i], want));
        } else if want.is_finite() {
            assert!(
                (exp[i] - want).abs() <= 2.0 * f32::from_bits(1),
                "exp({x}) = {}, libm {want}",
                exp[i]
            );
        } else {
            assert_eq!(exp[i], f32::INFINITY, "exp({x})");
        }
        let s = 1.0 / (1.0 + (-(x as f64)).exp());
        assert!(
            (sig[i] as f64 - s).abs() <= 3e-7 * s + 1e-37,
            "sigmoid({x}) = {} vs {s}",
            sig[i]
        );
    }
    assert!(worst <= 2, "exp: worst error {worst} ulp");
    let special = [
        f32::NEG_INFINITY,
        f32::INFINITY,
        f32::NAN,
        0.0,
        -200.0,
        89.0,
        88.7,
    ];
    let t = Tensor::<F, 1>::from_data(
        TensorData::new(special.to_vec(), [special.len()]),
        &Default::default(),
    );
    let e = t.clone().exp().into_data().to_vec::<f32>().unwrap();
    assert_eq!(&e[..2], &[0.0, f32::INFINITY]);
    assert!(e[2].is_nan());
    assert_eq!(&e[3..6], &[1.0, 0.0, f32::INFINITY]);
    assert!(ulps(e[6], 88.7f32.exp()) <= 2);
    let s = burn::tensor::activation::sigmoid(t)
        .into_data()
        .to_vec::<f32>()
        .unwrap();
    assert_eq!(&s[..2], &[0.0, 1.0]);
    assert!(s[2].is_nan());
}

#[test]
fn softmax_log_softmax_long_broadcasts_and_zeros_match_ndarray() {
    use burn::tensor::activation::{log_softmax, softmax};
    for shape in SHAPES {
        let (f, n) = pair(shape, 3);
        // Rows with -inf entries (masked keys) and wide values.
        let (mf, mn) = pair(shape, 4);
        let f = f.mask_fill(mf.lower_elem(-4.0), f32::NEG_INFINITY) * 8.0;
        let n = n.mask_fill(mn.lower_elem(-4.0), f32::NEG_INFINITY) * 8.0;
        same(
            softmax(f.clone(), 3),
            softmax(n.clone(), 3),
            1e-6,
            "softmax",
        );
        // x - logsumexp(x) with |x| up to 40 is exact to ulp(40) ~ 4e-6 only.
        same(
            log_softmax(f.clone(), 3).clamp_min(-1e30),
            log_softmax(n.clone(), 3).clamp_min(-1e30),
            1e-5,
            "log_softmax",
        );
    }
    // One long row times a one-element tensor (gradient clipping) and plus a full row.
    let len = 100_003;
    let v = data([1, 1, 1, len], 5);
    let f = Tensor::<F, 4>::from_data(
        TensorData::new(v.clone(), [1, 1, 1, len]),
        &Default::default(),
    );
    let n = Tensor::<N, 4>::from_data(
        TensorData::new(v.clone(), [1, 1, 1, len]),
        &Default::default(),
    );
    let (sf, sn) = (
        Tensor::<F, 4>::from_data([[[[0.37f32]]]], &Default::default()),
        Tensor::<N, 4>::from_data([[[[0.37f32]]]], &Default::default()),
    );
    same(
        f.clone() * sf.clone(),
        n.clone() * sn.clone(),
        0.0,
        "row * scalar tensor",
    );
    same(f.clone() / sf, n.clone() / sn, 0.0, "row / scalar tensor");
    let (rf, rn) = pair([1, 1, 1, len], 6);
    let rf1: Tensor<F, 1> = rf.reshape([len]);
    let rn1: Tensor<N, 1> = rn.reshape([len]);
    same(
        f.clone() + rf1.unsqueeze::<4>(),
        n.clone() + rn1.unsqueeze::<4>(),
        0.0,
        "row + row",
    );
    // Zeros after a large buffer was freed (a reused heap block is not zero).
    drop(Tensor::<F, 1>::ones([1 << 20], &Default::default()).into_data());
    let z = Tensor::<F, 1>::zeros([1 << 20], &Default::default())
        .into_data()
        .to_vec::<f32>()
        .unwrap();
    assert!(z.iter().all(|&x| x == 0.0));
}
