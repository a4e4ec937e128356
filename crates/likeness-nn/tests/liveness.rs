//! The liveness network against onnxruntime's raw outputs of the original ONNX model, on real
//! face crops (`tests/data/liveness/`, made by `bench/liveness/reference.py`: the PNG crops
//! and onnxruntime 1.32.0's logits for them), and the importer on the raw ONNX file.
//!
//! Needs the model cache (`cargo run -p likeness -- models fetch`):
//! `models/liveness.safetensors` and `raw/faceplugin/fr_liveness.onnx`.

use std::path::PathBuf;

use likeness_nn::device::cpu;
use likeness_nn::image::Image;
use likeness_nn::import::liveness_onnx::liveness_from_onnx;
use likeness_nn::nets::liveness::{Liveness, NUM_CLASSES, image_input};
use likeness_nn::weights::WeightMap;
use likeness_testdata::cache_file;

/// The project's bar on raw outputs: |ours − onnxruntime| ≤ 1e-4 on every logit (the logits
/// here are of order 1–10).
const TOLERANCE: f32 = 1e-4;

fn data_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data/liveness")
}

struct Case {
    crop: Image,
    logits: Vec<f32>,
    name: String,
}

fn cases() -> Vec<Case> {
    let dir = data_dir();
    let doc: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("reference.json")).unwrap()).unwrap();
    doc["faces"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            let name = f["crop"].as_str().unwrap().to_string();
            Case {
                crop: Image::open(&dir.join(&name)).unwrap(),
                logits: f["logits"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|v| v.as_f64().unwrap() as f32)
                    .collect(),
                name,
            }
        })
        .collect()
}

fn max_error(net: &Liveness, cases: &[Case]) -> f32 {
    let device = cpu();
    let crops: Vec<Image> = cases.iter().map(|c| c.crop.clone()).collect();
    let out = net.forward(image_input(&crops, &device).unwrap());
    assert_eq!(out.dims(), [cases.len(), NUM_CLASSES]);
    let ours = out.into_data().try_into_vec::<f32>().unwrap();
    let mut worst = 0.0f32;
    for (k, case) in cases.iter().enumerate() {
        for (c, theirs) in case.logits.iter().enumerate() {
            let d = (ours[k * NUM_CLASSES + c] - theirs).abs();
            let d = if d.is_nan() { f32::INFINITY } else { d };
            eprintln!(
                "{} class {c}: ours {:.6} onnxruntime {theirs:.6} |diff| {d:.2e}",
                case.name,
                ours[k * NUM_CLASSES + c]
            );
            worst = worst.max(d);
        }
    }
    worst
}

#[test]
fn the_cached_network_matches_onnxruntime_on_real_face_crops() {
    let cases = cases();
    assert!(cases.len() >= 4);
    // The crops span the model's answers, so a swapped class or channel order would show.
    assert!(cases.iter().any(|c| c.logits[0] > c.logits[1]));
    assert!(cases.iter().any(|c| c.logits[0] < c.logits[1]));
    let weights = WeightMap::load(&cache_file("models/liveness.safetensors")).unwrap();
    let net = Liveness::load(&weights, &cpu()).unwrap();
    let worst = max_error(&net, &cases);
    assert!(worst <= TOLERANCE, "max |ours − onnxruntime| = {worst:e}");
}

#[test]
fn the_importer_reads_the_raw_onnx_into_the_same_network() {
    let bytes = std::fs::read(cache_file("raw/faceplugin/fr_liveness.onnx")).unwrap();
    let weights = liveness_from_onnx(&bytes).unwrap();
    assert_eq!(weights.num_values(), 468_560);
    let cached = WeightMap::load(&cache_file("models/liveness.safetensors")).unwrap();
    assert!(
        weights == cached,
        "the cache's weights differ from a fresh import"
    );
    let cases = cases();
    let net = Liveness::load(&weights, &cpu()).unwrap();
    assert!(max_error(&net, &cases[..1]) <= TOLERANCE);
}

#[test]
fn a_truncated_or_foreign_onnx_is_refused() {
    let bytes = std::fs::read(cache_file("raw/faceplugin/fr_liveness.onnx")).unwrap();
    assert!(liveness_from_onnx(&bytes[..bytes.len() / 2]).is_err());
    let blazeface = std::fs::read(cache_file(
        "raw/blazeface/face_detection_front_128x128_barracuda.onnx",
    ))
    .unwrap();
    let err = liveness_from_onnx(&blazeface).unwrap_err().to_string();
    assert!(err.contains("Conv"), "{err}");
}
