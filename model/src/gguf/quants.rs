//! ggml tensor types and their dequantization to f32, block by block as ggml's reference
//! `dequantize_row_*` (ggml-quants.c) computes them: F32, F16, BF16, Q8_0, Q4_0, Q4_1, Q4_K,
//! Q5_K, Q6_K.

use half::{bf16, f16};

/// The ggml tensor types dsmath reads (`ggml_type` ids).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GgmlType {
    F32,
    F16,
    Q4_0,
    Q4_1,
    Q8_0,
    Q4K,
    Q5K,
    Q6K,
    BF16,
}

const QK_K: usize = 256;

impl GgmlType {
    pub const SUPPORTED: &'static str = "F32, F16, BF16, Q8_0, Q4_0, Q4_1, Q4_K, Q5_K, Q6_K";

    pub fn from_id(id: u32) -> Option<Self> {
        Some(match id {
            0 => GgmlType::F32,
            1 => GgmlType::F16,
            2 => GgmlType::Q4_0,
            3 => GgmlType::Q4_1,
            8 => GgmlType::Q8_0,
            12 => GgmlType::Q4K,
            13 => GgmlType::Q5K,
            14 => GgmlType::Q6K,
            30 => GgmlType::BF16,
            _ => return None,
        })
    }

    /// (values per block, bytes per block).
    pub fn block(self) -> (usize, usize) {
        match self {
            GgmlType::F32 => (1, 4),
            GgmlType::F16 | GgmlType::BF16 => (1, 2),
            GgmlType::Q4_0 => (32, 2 + 16),
            GgmlType::Q4_1 => (32, 2 + 2 + 16),
            GgmlType::Q8_0 => (32, 2 + 32),
            GgmlType::Q4K => (QK_K, 2 + 2 + 12 + QK_K / 2),
            GgmlType::Q5K => (QK_K, 2 + 2 + 12 + QK_K / 8 + QK_K / 2),
            GgmlType::Q6K => (QK_K, QK_K / 2 + QK_K / 4 + QK_K / 16 + 2),
        }
    }
}

fn f16_at(b: &[u8], at: usize) -> f32 {
    f16::from_le_bytes([b[at], b[at + 1]]).to_f32()
}

/// `numel` values from `bytes` (exactly `numel / block * block_bytes` long, checked by the reader).
pub fn dequantize(kind: GgmlType, bytes: &[u8], numel: usize) -> Vec<f32> {
    let (block, size) = kind.block();
    debug_assert_eq!(bytes.len(), numel / block * size);
    let mut out = vec![0f32; numel];
    for (y, b) in out.chunks_exact_mut(block).zip(bytes.chunks_exact(size)) {
        match kind {
            GgmlType::F32 => y[0] = f32::from_le_bytes([b[0], b[1], b[2], b[3]]),
            GgmlType::F16 => y[0] = f16_at(b, 0),
            GgmlType::BF16 => y[0] = bf16::from_le_bytes([b[0], b[1]]).to_f32(),
            GgmlType::Q4_0 => {
                let d = f16_at(b, 0);
                for j in 0..16 {
                    y[j] = ((b[2 + j] & 0x0F) as i32 - 8) as f32 * d;
                    y[j + 16] = ((b[2 + j] >> 4) as i32 - 8) as f32 * d;
                }
            }
            GgmlType::Q4_1 => {
                let (d, m) = (f16_at(b, 0), f16_at(b, 2));
                for j in 0..16 {
                    y[j] = (b[4 + j] & 0x0F) as f32 * d + m;
                    y[j + 16] = (b[4 + j] >> 4) as f32 * d + m;
                }
            }
            GgmlType::Q8_0 => {
                let d = f16_at(b, 0);
                for j in 0..32 {
                    y[j] = (b[2 + j] as i8) as f32 * d;
                }
            }
            GgmlType::Q4K => {
                let (d, dmin) = (f16_at(b, 0), f16_at(b, 2));
                let scales = &b[4..16];
                let qs = &b[16..16 + QK_K / 2];
                for (n, (y, q)) in y.chunks_exact_mut(64).zip(qs.chunks_exact(32)).enumerate() {
                    let (sc1, m1) = scale_min_k4(2 * n, scales);
                    let (sc2, m2) = scale_min_k4(2 * n + 1, scales);
                    let (d1, m1, d2, m2) = (
                        d * sc1 as f32,
                        dmin * m1 as f32,
                        d * sc2 as f32,
                        dmin * m2 as f32,
                    );
                    for l in 0..32 {
                        y[l] = d1 * (q[l] & 0x0F) as f32 - m1;
                        y[l + 32] = d2 * (q[l] >> 4) as f32 - m2;
                    }
                }
            }
            GgmlType::Q5K => {
                let (d, dmin) = (f16_at(b, 0), f16_at(b, 2));
                let scales = &b[4..16];
                let qh = &b[16..16 + QK_K / 8];
                let ql = &b[16 + QK_K / 8..];
                for (n, (y, q)) in y.chunks_exact_mut(64).zip(ql.chunks_exact(32)).enumerate() {
                    let (sc1, m1) = scale_min_k4(2 * n, scales);
                    let (sc2, m2) = scale_min_k4(2 * n + 1, scales);
                    let (d1, m1, d2, m2) = (
                        d * sc1 as f32,
                        dmin * m1 as f32,
                        d * sc2 as f32,
                        dmin * m2 as f32,
                    );
                    let (u1, u2) = (1u8 << (2 * n), 2u8 << (2 * n));
                    for l in 0..32 {
                        let hi1 = if qh[l] & u1 != 0 { 16 } else { 0 };
                        let hi2 = if qh[l] & u2 != 0 { 16 } else { 0 };
                        y[l] = d1 * ((q[l] & 0x0F) + hi1) as f32 - m1;
                        y[l + 32] = d2 * ((q[l] >> 4) + hi2) as f32 - m2;
                    }
                }
            }
            GgmlType::Q6K => {
                let ql = &b[..QK_K / 2];
                let qh = &b[QK_K / 2..QK_K / 2 + QK_K / 4];
                let sc = &b[QK_K / 2 + QK_K / 4..QK_K / 2 + QK_K / 4 + QK_K / 16];
                let d = f16_at(b, QK_K / 2 + QK_K / 4 + QK_K / 16);
                for (n, y) in y.chunks_exact_mut(128).enumerate() {
                    let (ql, qh, sc) = (&ql[64 * n..], &qh[32 * n..], &sc[8 * n..]);
                    for l in 0..32 {
                        let is = l / 16;
                        let q1 = ((ql[l] & 0x0F) | ((qh[l] & 3) << 4)) as i32 - 32;
                        let q2 = ((ql[l + 32] & 0x0F) | (((qh[l] >> 2) & 3) << 4)) as i32 - 32;
                        let q3 = ((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) as i32 - 32;
                        let q4 = ((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) as i32 - 32;
                        let s = |k: usize| (sc[is + k] as i8) as f32;
                        y[l] = d * s(0) * q1 as f32;
                        y[l + 32] = d * s(2) * q2 as f32;
                        y[l + 64] = d * s(4) * q3 as f32;
                        y[l + 96] = d * s(6) * q4 as f32;
                    }
                }
            }
        }
    }
    out
}

/// The 6-bit scale and min of sub-block `j` of a Q4_K / Q5_K block (ggml's `get_scale_min_k4`).
fn scale_min_k4(j: usize, q: &[u8]) -> (u8, u8) {
    if j < 4 {
        (q[j] & 63, q[j + 4] & 63)
    } else {
        (
            (q[j + 4] & 0x0F) | ((q[j - 4] >> 6) << 4),
            (q[j + 4] >> 4) | ((q[j] >> 6) << 4),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn q4_1_and_q8_0_blocks_dequantize_as_ggml_defines_them() {
        // Q4_1: d = 0.5, m = -1.0, nibbles 0..15 then 15..0.
        let mut b = Vec::new();
        b.extend(f16::from_f32(0.5).to_le_bytes());
        b.extend(f16::from_f32(-1.0).to_le_bytes());
        b.extend((0..16u8).map(|j| j | ((15 - j) << 4)));
        let y = dequantize(GgmlType::Q4_1, &b, 32);
        assert_eq!(y[0], -1.0);
        assert_eq!(y[15], 6.5);
        assert_eq!(y[16], 6.5);
        assert_eq!(y[31], -1.0);
        // Q8_0: d = 0.25, values -128..
        let mut b = Vec::new();
        b.extend(f16::from_f32(0.25).to_le_bytes());
        b.extend((0..32).map(|j| (j as i8 - 16) as u8));
        let y = dequantize(GgmlType::Q8_0, &b, 32);
        assert_eq!((y[0], y[16], y[31]), (-4.0, 0.0, 3.75));
    }
}
