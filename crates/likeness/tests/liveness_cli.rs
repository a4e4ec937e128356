//! `likeness liveness`, run as a user runs it on the model cache's sample photos.
//!
//! Needs the model cache (`cargo run -p likeness -- models fetch`).

mod common;

use std::path::{Path, PathBuf};

use common::{cut, is_spoof_face, json_ok, likeness, s, text_ok};
use likeness_face::faces::Faces;
use likeness_face::liveness::{LIVE_THRESHOLD, MODEL_LIVENESS};
use likeness_nn::image::Image;
use serde_json::Value;

fn sample(name: &str) -> PathBuf {
    let mut models = Faces::MODELS.to_vec();
    models.push(MODEL_LIVENESS);
    common::sample_with(name, &models)
}

fn scratch(test: &str) -> PathBuf {
    common::scratch("liveness_cli", test)
}

#[test]
fn liveness_judges_each_face_and_writes_the_crop_it_judged() {
    let dir = scratch("crops");
    let crops = dir.join("crops");
    let astronaut = sample("astronaut.png");
    let t1 = sample("t1.jpg");
    let report = json_ok(&[
        "liveness",
        "--json",
        "--crops",
        s(&crops),
        s(&astronaut),
        s(&t1),
    ]);
    let photos = report.as_array().unwrap();
    assert_eq!(photos.len(), 2);
    let faces = |i: usize| photos[i]["faces"].as_array().unwrap().clone();
    assert_eq!(faces(0).len(), 1, "{report:#}");
    assert_eq!(faces(1).len(), 6, "{report:#}");
    // The astronaut, a plain photograph of a live person, is live with a wide margin.
    let a = &faces(0)[0];
    assert_eq!(a["verdict"], "live", "{a:#}");
    assert!(a["score"].as_f64().unwrap() > 0.95, "{a:#}");
    for face in faces(0).iter().chain(&faces(1)) {
        let score = face["score"].as_f64().unwrap() as f32;
        assert!((0.0..=1.0).contains(&score));
        let want = if score >= LIVE_THRESHOLD {
            "live"
        } else {
            "spoof"
        };
        assert_eq!(face["verdict"], want, "{face:#}");
        // The window judged holds the face box.
        let b: Vec<f64> = serde_json::from_value(face["box"].clone()).unwrap();
        let c: Vec<f64> = serde_json::from_value(face["crop"].clone()).unwrap();
        assert!(c[0] <= b[0] + 1.0 && c[1] <= b[1] + 1.0, "{face:#}");
        assert!(
            c[0] + c[2] >= b[2] - 1.0 && c[1] + c[3] >= b[3] - 1.0,
            "{face:#}"
        );
        let crop = Image::open(Path::new(face["crop_file"].as_str().unwrap())).unwrap();
        assert_eq!((crop.width, crop.height), (128, 128));
    }
    assert!(crops.join("t1_face5.png").is_file());
}

#[test]
fn the_threshold_decides_the_verdict_and_nonsense_is_refused() {
    let astronaut = sample("astronaut.png");
    let strict = json_ok(&["liveness", "--json", "--threshold", "1", s(&astronaut)]);
    assert_eq!(strict[0]["faces"][0]["verdict"], "spoof", "{strict:#}");
    for bad in ["1.5", "-0.1", "NaN", "x"] {
        let out = likeness(&["liveness", "--threshold", bad, s(&astronaut)]);
        assert!(!out.status.success(), "--threshold {bad} accepted");
    }
}

#[test]
fn a_bad_photo_is_named_and_the_others_still_judged() {
    let dir = scratch("bad");
    let missing = dir.join("missing.jpg");
    let astronaut = sample("astronaut.png");
    let out = likeness(&["liveness", "--json", s(&missing), s(&astronaut)]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains(s(&missing)), "{err}");
    assert!(!err.contains("panicked"), "{err}");
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report.as_array().unwrap().len(), 1, "{report:#}");
}

/// `--liveness` on `recognise`: the face of t1.jpg at about (1133, 299)–(1230, 395) scores
/// 0.16 with the liveness network, under the threshold, while the other five score 0.53–1.0.
/// Enrolled from a crop of t1.jpg, that person is named without the gate and reported as
/// `spoof`, never named, with it.
#[test]
fn recognise_with_liveness_never_names_a_face_judged_spoof() {
    let dir = scratch("recognise");
    let known = dir.join("known");
    std::fs::create_dir_all(&known).unwrap();
    let t1 = sample("t1.jpg");
    common::enrol_photo_of_spoof_face(&t1, &known.join("person3.png"));
    let is_person3 = |face: &Value| {
        face["matches"]
            .as_array()
            .unwrap()
            .iter()
            .any(|m| m["name"] == "person3")
    };
    let at_person3 = |face: &Value| is_spoof_face(&face["face"]);

    let plain = json_ok(&["recognise", "--json", s(&known), s(&t1)]);
    let faces = plain["results"][0]["faces"].as_array().unwrap().clone();
    assert!(
        faces.iter().any(|f| at_person3(f) && is_person3(f)),
        "{plain:#}"
    );

    let gated = json_ok(&["recognise", "--json", "--liveness", s(&known), s(&t1)]);
    let faces = gated["results"][0]["faces"].as_array().unwrap().clone();
    assert_eq!(faces.len(), 6, "{gated:#}");
    assert!(
        !faces.iter().any(is_person3),
        "a spoof was named: {gated:#}"
    );
    let face = faces
        .iter()
        .find(|f| at_person3(f))
        .expect("the face is still reported");
    assert_eq!(face["liveness"]["verdict"], "spoof", "{face:#}");
    // The live faces are still checked and reported live.
    assert!(
        faces
            .iter()
            .filter(|f| f["liveness"]["verdict"] == "live")
            .count()
            >= 4
    );
    // The CSV says `spoof` for it.
    let out = likeness(&["recognise", "--liveness", s(&known), s(&t1)]);
    let csv = String::from_utf8_lossy(&out.stdout);
    assert!(csv.lines().any(|l| l.ends_with(",spoof")), "{csv}");
    assert!(!csv.contains("person3"), "{csv}");
}

/// `--liveness` on `gallery identify`: the same face, enrolled as person3 from a crop, is
/// named in the whole photo without the gate; with it, it is `spoof`, has no candidates, and
/// is named nowhere (JSON and text).
#[test]
fn gallery_identify_with_liveness_never_names_a_face_judged_spoof() {
    let dir = scratch("gallery");
    let t1 = sample("t1.jpg");
    let enrol = dir.join("person3.png");
    common::enrol_photo_of_spoof_face(&t1, &enrol);
    let gallery = dir.join("gallery.json");
    let g = s(&gallery);
    json_ok(&[
        "gallery",
        "--gallery",
        g,
        "--json",
        "enrol",
        "person3",
        s(&enrol),
    ]);

    let plain = json_ok(&["gallery", "--gallery", g, "--json", "identify", s(&t1)]);
    let faces = plain["faces"].as_array().unwrap();
    let face = faces
        .iter()
        .find(|f| is_spoof_face(&f["face"]))
        .expect("the face is found");
    assert_eq!(face["name"], "person3", "without the gate: {plain:#}");

    let gated = json_ok(&[
        "gallery",
        "--gallery",
        g,
        "--json",
        "identify",
        "--liveness",
        s(&t1),
    ]);
    let faces = gated["faces"].as_array().unwrap();
    assert_eq!(faces.len(), 6, "{gated:#}");
    assert!(
        !faces.iter().any(|f| f["name"] == "person3"),
        "a spoof was named: {gated:#}"
    );
    let face = faces
        .iter()
        .find(|f| is_spoof_face(&f["face"]))
        .expect("the face is still reported");
    assert_eq!(face["liveness"]["verdict"], "spoof", "{face:#}");
    assert!(face["liveness"]["score"].as_f64().unwrap() < f64::from(LIVE_THRESHOLD));
    assert_eq!(face["known"], false, "{face:#}");
    assert!(face["name"].is_null(), "{face:#}");
    assert_eq!(face["candidates"], Value::Array(Vec::new()), "{face:#}");
    assert!(face["nearest"].is_null(), "{face:#}");
    // every other face is checked too, and carries its check
    assert!(faces.iter().all(|f| f["liveness"]["verdict"].is_string()));

    let text = text_ok(&["gallery", "--gallery", g, "identify", "--liveness", s(&t1)]);
    let spoofs: Vec<&str> = text.lines().filter(|l| l.contains(": spoof")).collect();
    assert_eq!(spoofs.len(), 1, "{text}");
    assert!(spoofs[0].contains("[11"), "the face at x ≈ 1133: {text}");
    // nobody is named person3 (the others may still be "unknown (nearest person3 …)")
    assert!(!text.contains(": person3"), "{text}");
}

/// `--liveness` on `verify`: a photo of the face judged a spoof — the very window the network
/// judged in t1.jpg, cut out as its own photo — compared with itself is `same` (distance 0)
/// without the gate, and `spoof`, never `same`, with it.
#[test]
fn verify_with_liveness_never_says_same_for_a_face_judged_spoof() {
    let dir = scratch("verify");
    let t1 = sample("t1.jpg");
    let judged = json_ok(&["liveness", "--json", s(&t1)]);
    let face = judged[0]["faces"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| is_spoof_face(f))
        .expect("the face is found")
        .clone();
    let rect: [u32; 4] = serde_json::from_value(face["crop"].clone()).unwrap();
    let photo = dir.join("window.png");
    cut(&t1, rect, &photo);
    // The precondition: cut out, the face is still judged a spoof.
    let alone = json_ok(&["liveness", "--json", s(&photo)]);
    let largest = alone[0]["faces"]
        .as_array()
        .unwrap()
        .iter()
        .max_by(|a, b| area(a).total_cmp(&area(b)))
        .expect("a face in the window")
        .clone();
    assert_eq!(largest["verdict"], "spoof", "{alone:#}");

    let plain = json_ok(&["verify", "--json", s(&photo), s(&photo)]);
    assert_eq!(plain["same"], true, "without the gate: {plain:#}");

    let gated = json_ok(&["verify", "--json", "--liveness", s(&photo), s(&photo)]);
    assert_eq!(gated["same"], false, "{gated:#}");
    assert_eq!(gated["spoof"], true, "{gated:#}");
    assert_eq!(gated["liveness"][0]["verdict"], "spoof", "{gated:#}");

    let text = text_ok(&["verify", "--liveness", s(&photo), s(&photo)]);
    assert!(text.starts_with("spoof:"), "{text}");
}

fn area(face: &Value) -> f64 {
    let b: Vec<f64> = serde_json::from_value(face["box"].clone()).unwrap();
    (b[2] - b[0]) * (b[3] - b[1])
}
