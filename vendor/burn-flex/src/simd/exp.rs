//! dsmath patch: a vectorisable f32 `exp` (Cephes `expf`: range reduction by ln 2, degree-6
//! polynomial, 2^n from the exponent bits). burn-flex 0.21 calls libm's scalar `expf` per
//! element in softmax, log-softmax, sigmoid and `exp`; this one is branch-free, so loops over
//! slices compile to SIMD, and [`map_in_place`] runs them with AVX2 + FMA where the CPU has it.
//! Relative error <= 2 ulp over the whole f32 range; `exp(-inf) = 0`, `exp(inf) = inf`,
//! `exp(NaN) = NaN`, results below the normal range are flushed gradually (2^n is applied in
//! two halves so subnormals come out right). Tested against libm in dsmath's
//! `model/tests/flex_patches.rs`.

const LOG2E: f32 = core::f32::consts::LOG2_E;
// ln 2 split so that `n * LN2_HI` is exact for |n| < 2^9 (Cephes C1, C2).
const LN2_HI: f32 = 0.693_359_4;
const LN2_LO: f32 = -2.121_944_4e-4;
// Adding then subtracting 1.5 * 2^23 rounds an f32 of magnitude < 2^22 to the nearest integer.
const ROUND: f32 = 12_582_912.0;
/// Above this `exp` overflows f32.
const HI: f32 = 88.722_84;
/// Below this `exp` is below half the smallest subnormal: 0.
const LO: f32 = -103.972_08;

/// `e^x`, inlined into the caller's loop.
#[inline(always)]
pub(crate) fn exp_f32(x: f32) -> f32 {
    let xc = x.clamp(LO, HI); // NaN stays NaN
    let t = xc * LOG2E + ROUND; // ROUND + round(x / ln 2): the integer sits in t's low mantissa bits
    let n = t - ROUND; // round(x / ln 2), in [-150, 128]
    let r = (xc - n * LN2_HI) - n * LN2_LO; // |r| <= ln 2 / 2
    let mut p = 1.987_569_1e-4f32;
    p = p * r + 1.398_199_9e-3;
    p = p * r + 8.333_452e-3;
    p = p * r + 4.166_579_6e-2;
    p = p * r + 1.666_666_5e-1;
    p = p * r + 5.000_000_1e-1;
    let y = p * (r * r) + r + 1.0; // e^r
    // 2^n as 2^(n/2) * 2^(n - n/2): each half is a normal f32 for n in [-150, 128].
    // The same integer read from t's bits: `n as i32` is a saturating conversion that LLVM
    // leaves scalar (one cvttss2si + NaN / range checks per lane), which kept the whole loop at
    // ~10 cycles per element. Wrapping ops: a NaN input gives garbage here, but `y` is NaN.
    let n = (t.to_bits() as i32).wrapping_sub(ROUND.to_bits() as i32);
    let n1 = n >> 1;
    let s1 = f32::from_bits((n1.wrapping_add(127) as u32) << 23);
    let s2 = f32::from_bits((n.wrapping_sub(n1).wrapping_add(127) as u32) << 23);
    let e = y * s1 * s2;
    if x < LO {
        0.0
    } else if x > HI {
        f32::INFINITY
    } else {
        e
    }
}

/// `1 / (1 + e^-x)`: 0 and 1 at the ends, no branch.
#[inline(always)]
pub(crate) fn sigmoid_f32(x: f32) -> f32 {
    1.0 / (1.0 + exp_f32(-x))
}

/// `op` of every element of `xs`, in place, compiled for AVX2 + FMA when the CPU has them.
#[inline(always)]
pub(crate) fn map_in_place(xs: &mut [f32], op: impl Fn(f32) -> f32 + Copy) {
    #[inline(always)]
    fn body(xs: &mut [f32], op: impl Fn(f32) -> f32) {
        for x in xs.iter_mut() {
            *x = op(*x);
        }
    }
    #[cfg(all(feature = "std", target_arch = "x86_64"))]
    {
        #[target_feature(enable = "avx2,fma")]
        unsafe fn avx2(xs: &mut [f32], op: impl Fn(f32) -> f32) {
            body(xs, op)
        }
        if std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma") {
            // SAFETY: the CPU has the features the function is compiled for.
            return unsafe { avx2(xs, op) };
        }
    }
    body(xs, op)
}

/// `e^(x - shift)` of every element of `xs`, in place; returns their sum (softmax's denominator).
pub(crate) fn exp_shifted_sum(xs: &mut [f32], shift: f32) -> f32 {
    map_in_place(xs, |x| exp_f32(x - shift));
    sum_f32(xs)
}

/// Sum with 8 independent accumulators (vectorises; the order differs from a serial sum by
/// rounding only).
#[inline]
pub(crate) fn sum_f32(xs: &[f32]) -> f32 {
    let mut acc = [0.0f32; 8];
    let chunks = xs.chunks_exact(8);
    let tail = chunks.remainder();
    for c in chunks {
        for (a, &x) in acc.iter_mut().zip(c) {
            *a += x;
        }
    }
    acc.iter().sum::<f32>() + tail.iter().sum::<f32>()
}
