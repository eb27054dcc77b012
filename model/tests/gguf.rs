//! GGUF reading against ggml's own Python reader (`scripts/make_gguf_fixtures.py`): every tensor
//! type dequantizes to the `gguf` package's values, and damaged files are errors naming the file.

use std::path::{Path, PathBuf};

use dsmath_model::gguf::{GgmlType, GgufFile};
use safetensors::SafeTensors;

fn fixture() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/gguf")
}

#[test]
fn every_tensor_type_dequantizes_as_ggml_does() {
    let file = GgufFile::open(&fixture().join("types.gguf")).unwrap();
    assert_eq!(file.version, 3);
    assert_eq!(
        file.get("dsmath.fixture").and_then(|v| v.as_str()),
        Some("one tensor per ggml type")
    );
    let bytes = std::fs::read(fixture().join("expected.safetensors")).unwrap();
    let expected = SafeTensors::deserialize(&bytes).unwrap();
    let kinds = [
        ("F32", GgmlType::F32),
        ("F16", GgmlType::F16),
        ("BF16", GgmlType::BF16),
        ("Q8_0", GgmlType::Q8_0),
        ("Q4_0", GgmlType::Q4_0),
        ("Q4_1", GgmlType::Q4_1),
        ("Q4_K", GgmlType::Q4K),
        ("Q5_K", GgmlType::Q5K),
        ("Q6_K", GgmlType::Q6K),
    ];
    for (name, kind) in kinds {
        let info = file.tensor(name).unwrap();
        assert_eq!(info.kind, kind);
        assert_eq!(info.shape(), vec![2, 512]);
        let want: Vec<f32> = expected
            .tensor(name)
            .unwrap()
            .data()
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes(b.try_into().unwrap()))
            .collect();
        let got = file.dequantize(info);
        assert_eq!(got.len(), want.len());
        let bad = got
            .iter()
            .zip(&want)
            .filter(|(a, b)| a.to_bits() != b.to_bits())
            .count();
        assert_eq!(
            bad, 0,
            "{name}: {bad} values differ from gguf.quants.dequantize"
        );
    }
}

#[test]
fn damaged_files_are_errors_naming_the_file() {
    let good = std::fs::read(fixture().join("types.gguf")).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let check = |bytes: &[u8], needle: &str| {
        let path = dir.path().join("damaged.gguf");
        std::fs::write(&path, bytes).unwrap();
        let msg = GgufFile::open(&path)
            .err()
            .expect("damaged file must be refused")
            .to_string();
        assert!(
            msg.contains("damaged.gguf") && msg.contains(needle),
            "{msg} should mention {needle}"
        );
    };
    // Tensor data cut short, then the header itself cut short.
    check(&good[..good.len() - 100], "truncated: tensor `Q6_K`");
    check(&good[..40], "truncated");
    check(b"GGML\x03\x00\x00\x00", "not a GGUF file");
    let mut v4 = good.clone();
    v4[4] = 9;
    check(&v4, "version 9");
    // An unsupported tensor type: rewrite F32's type id (first tensor info) to Q2_K (10).
    let at = find(&good, b"F32").expect("tensor name in header") + 3 + 4 + 2 * 8;
    let mut q2 = good.clone();
    q2[at..at + 4].copy_from_slice(&10u32.to_le_bytes());
    check(&q2, "ggml type 10 is not supported");
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}
