//! The face stages against independent reference values (/work/shared/reference):
//! BlazeFace decoding of onnxruntime's raw outputs, and dlib's own chips.

use std::collections::BTreeMap;

use likeness_face::align::{self, Landmarks5};
use likeness_face::detect::decode::{self, Model};
use likeness_nn::image::Image;
use likeness_nn::npz::NpyArray;
use likeness_testdata::{cache_file, reference_dir, reference_npz};

fn reference(name: &str) -> BTreeMap<String, NpyArray> {
    reference_npz(name)
}

/// A sample photo from the model cache; fails, saying how to get it, when absent.
fn sample(name: &str) -> Image {
    Image::open(&cache_file(&format!("samples/{name}"))).unwrap()
}

/// dlib's boxes are inclusive pixel rectangles (left, top, right, bottom).
fn dlib_box(chips: &BTreeMap<String, NpyArray>, i: usize) -> [f32; 4] {
    let b = &chips["boxes"].values[i * 4..i * 4 + 4];
    [
        b[0] as f32,
        b[1] as f32,
        b[2] as f32 + 1.0,
        b[3] as f32 + 1.0,
    ]
}

#[test]
fn blazeface_decoding_finds_the_astronaut_where_dlib_does() {
    let raw = reference("blazeface_astronaut.npz");
    let chips = reference("dlib_chips.npz");
    let names = std::fs::read_to_string(reference_dir().join("dlib_chips_names.txt")).unwrap();
    let index = names.lines().position(|l| l == "astronaut.png#0").unwrap();
    let truth = dlib_box(&chips, index);
    // astronaut.png is 512×512, resized (not letterboxed) to the model's input
    for (prefix, model) in [("front", Model::Front), ("back", Model::Back)] {
        let get = |k: &str| raw[&format!("{prefix}.{k}")].to_f32();
        let scores = [get("Identity:0"), get("Identity_1:0")].concat();
        let regressors = [get("Identity_2:0"), get("Identity_3:0")].concat();
        let found = decode::decode(model, &scores, &regressors, model.min_score()).unwrap();
        let merged = decode::weighted_nms(found.clone(), decode::NMS_IOU);
        let scale = 512.0 / model.input_size() as f32;
        let best = merged[0].map(|x, y| (x * scale, y * scale));
        let iou = decode::iou(&best.bbox, &truth);
        println!(
            "{prefix}: {} rows over {}, {} after NMS; best score {:.3} box {:?}; dlib {:?}; IoU {iou:.3}",
            found.len(),
            model.min_score(),
            merged.len(),
            best.score,
            best.bbox.map(|v| v.round()),
            truth
        );
        assert!(iou >= 0.5, "{prefix}: IoU {iou}");
        // one face in the photo: nothing else survives
        assert_eq!(merged.len(), 1, "{prefix}: {merged:?}");
        // eyes inside the box, the subject's right eye on the image's left
        let [re, le, nose, mouth, ..] = best.keypoints;
        assert!(re.0 < le.0 && re.1 < mouth.1 && le.1 < mouth.1 && nose.1 < mouth.1);
        for (x, y) in [re, le, nose, mouth] {
            assert!(x > truth[0] && x < truth[2] && y > truth[1] && y < truth[3]);
        }
    }
}

#[test]
fn chips_match_dlibs_from_its_landmarks() {
    let chips = reference("dlib_chips.npz");
    let names = std::fs::read_to_string(reference_dir().join("dlib_chips_names.txt")).unwrap();
    let want = chips["chips"].to_u8();
    let landmarks = &chips["landmarks5"].values;
    let mut photos: BTreeMap<&str, Image> = BTreeMap::new();
    let mut worst = 0.0f64;
    let mut total = 0.0;
    let chip_len = 150 * 150 * 3;
    for (i, name) in names.lines().enumerate() {
        let file = name.split('#').next().unwrap();
        let photo = photos.entry(file).or_insert_with(|| sample(file));
        let p = |k: usize| (landmarks[i * 10 + 2 * k], landmarks[i * 10 + 2 * k + 1]);
        let lm = Landmarks5([p(0), p(1), p(2), p(3), p(4)]);
        let chip = align::align(photo, &lm).unwrap();
        let reference = &want[i * chip_len..(i + 1) * chip_len];
        let diffs: Vec<u8> = chip
            .image
            .pixels
            .iter()
            .zip(reference)
            .map(|(&a, &b)| a.abs_diff(b))
            .collect();
        let mean = diffs.iter().map(|&d| d as f64).sum::<f64>() / chip_len as f64;
        let exact = diffs.iter().filter(|&&d| d == 0).count() as f64 / chip_len as f64;
        println!(
            "{name:16} mean |Δ| {mean:.3}  max {:3}  exact {:.1} %",
            diffs.iter().max().unwrap(),
            100.0 * exact
        );
        worst = worst.max(mean);
        total += mean;
        if file.ends_with(".png") {
            // lossless source: our chip is dlib's, bit for bit
            assert_eq!(exact, 1.0, "{name}");
        } else {
            // JPEG decoders may differ by a level here and there (dlib used libjpeg)
            assert!(mean <= 0.5, "{name}: mean |Δ| {mean}");
        }
    }
    println!(
        "chips: mean |Δ| per value {:.3} on average, {worst:.3} at worst",
        total / names.lines().count() as f64
    );
}

#[test]
fn letterboxed_inputs_match_the_reference_resize() {
    // blazeface_astronaut.npz's inputs were made with PIL's bilinear resize: ours is the same
    // antialiased triangle filter with bytes between the passes, so equal but for rare
    // rounding ties
    let raw = reference("blazeface_astronaut.npz");
    let photo = sample("astronaut.png");
    for (prefix, model) in [("front", Model::Front), ("back", Model::Back)] {
        let lb = likeness_face::detect::Letterbox::new(
            likeness_face::detect::Region::whole(&photo),
            model.input_size(),
        );
        let input = lb.apply(&photo).unwrap();
        let want = raw[&format!("{prefix}.input")].to_f32();
        let diffs: Vec<f32> = input
            .pixels
            .iter()
            .zip(&want)
            .map(|(&p, &w)| (p as f32 - (w + 1.0) * 127.5).abs())
            .collect();
        let mean = diffs.iter().sum::<f32>() / diffs.len() as f32;
        let max = diffs.iter().cloned().fold(0.0, f32::max);
        println!("{prefix} input: mean |Δ| {mean:.4}, max {max:.2} levels");
        assert!(
            mean < 0.001 && max <= 1.01,
            "{prefix}: mean {mean}, max {max}"
        );
    }
}
