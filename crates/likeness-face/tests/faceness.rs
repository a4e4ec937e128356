//! The face-ness check (`detect::faceness`) on the kinds of things that fooled the detector:
//! shirt buttons and a seal-like emblem (synthetic, `tests/data/`), and a crowned badge in a real photo. Each is first shown to fool the pipeline without the check — so that these
//! tests can fail — then to be dropped by it; and no face of the samples is lost to it.
//!
//! Needs the model cache (`cargo run -p likeness -- models fetch`).

use std::path::PathBuf;

use likeness_face::detect::faceness::MIN_NON_FACE_DISTANCE;
use likeness_face::detect::{DetectOptions, Detection};
use likeness_face::faces::{Alignment, Faces};
use likeness_models::Cache;
use likeness_nn::image::Image;

fn faces() -> Faces {
    let cache = Cache::from_env().unwrap();
    if let Err(e) = cache.require(Faces::MODELS) {
        panic!("{e}");
    }
    Faces::load(&cache).unwrap()
}

/// The pipeline as it was before the face-ness check.
fn without_check(faces: &mut Faces) {
    faces.detector.options = DetectOptions {
        large_face_extra: 0.0,
        ..DetectOptions::default()
    };
    faces.faceness = None;
}

fn with_check(faces: &mut Faces) {
    faces.detector.options = DetectOptions::default();
    faces.faceness = Some(MIN_NON_FACE_DISTANCE);
}

fn test_picture(name: &str, scale: u32) -> Image {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(name);
    let image = Image::open(&path).unwrap();
    image.resize(image.width * scale, image.height * scale)
}

/// The `width`×`height` pixels of `image` from (`x`, `y`).
fn crop(image: &Image, x: u32, y: u32, width: u32, height: u32) -> Image {
    let mut pixels = Vec::with_capacity((width * height * 3) as usize);
    for row in y..y + height {
        let start = ((row * image.width + x) * 3) as usize;
        pixels.extend_from_slice(&image.pixels[start..start + (width * 3) as usize]);
    }
    Image::from_rgb(width, height, pixels).unwrap()
}

#[test]
fn buttons_and_a_seal_that_fool_the_detector_fail_the_faceness_check() {
    let mut faces = faces();
    // sample1.jpg's crowned badge (on a cap), 24 px wide there: a real round emblem, shown at
    // twice its size as a high-resolution photo would show it
    let cache = Cache::from_env().unwrap();
    let sample1 = Image::open(&cache.sample_path("sample1.jpg").unwrap()).unwrap();
    let badge = crop(&sample1, 1384, 495, 300, 300);
    let badge = badge.resize(600, 600);
    let pictures = [
        ("shirt_buttons.png x2", test_picture("shirt_buttons.png", 2)),
        ("seal.jpg", test_picture("seal.jpg", 1)),
        ("sample1.jpg's badge x2", badge),
    ];
    for (name, image) in pictures {
        without_check(&mut faces);
        let fooled = faces.detect(&image).unwrap();
        println!("{name} without the check: {fooled:?}");
        assert!(!fooled.is_empty(), "{name}: no longer a hard case");
        with_check(&mut faces);
        let found = faces.detect(&image).unwrap();
        assert!(found.is_empty(), "{name}: {found:?}");
        // encode applies the same check
        assert!(faces.encode(&image).unwrap().is_empty(), "{name}");
    }
}

#[test]
fn every_face_of_the_samples_passes_the_faceness_check() {
    let mut faces = faces();
    let cache = Cache::from_env().unwrap();
    // 26 faces dlib finds and the 3 it misses (two turned heads in sample2, a tilted one in
    // sample4), and the six of t1.jpg
    let expected = [
        ("sample1.jpg", 3),
        ("sample2.jpg", 3),
        ("sample3.jpg", 3),
        ("sample4.jpg", 4),
        ("sample5.jpg", 5),
        ("sample6.jpg", 4),
        ("t1.jpg", 6),
        ("astronaut.png", 1),
    ];
    for (file, count) in expected {
        let image = Image::open(&cache.sample_path(file).unwrap()).unwrap();
        without_check(&mut faces);
        let before: Vec<Detection> = faces.detect(&image).unwrap();
        with_check(&mut faces);
        let after = faces.detect(&image).unwrap();
        println!("{file}: {} before, {} after", before.len(), after.len());
        assert_eq!(after.len(), count, "{file}: {after:?}");
        assert_eq!(after, before, "{file}: the check removed a face");
        // the check is made on the shape predictor's chips whatever the pipeline aligns with
        faces.alignment = Alignment::Keypoints;
        let fast = faces.encode(&image).unwrap();
        faces.alignment = Alignment::ShapePredictor;
        assert_eq!(fast.len(), count, "{file}, landmarks from keypoints");
    }
}
