//! The detector (BlazeFace front + back, tiling plan, weighted NMS, close-up confirmation) on
//! the photos of `shared/reference/dlib_chips.npz`: every face dlib found is found (IoU ≥ 0.5
//! with dlib's box), and nothing else but three real faces dlib misses; and nothing on the
//! samples without faces.
//!
//! Needs the model cache (`cargo run -p likeness -- models fetch`): the BlazeFace models and
//! the sample photos.

use std::time::Instant;

use likeness_face::detect::{Detector, decode::iou};
use likeness_nn::image::Image;
use likeness_nn::npz::read_npz;
use likeness_nn::weights::WeightMap;
use likeness_testdata::{cache_file, reference_dir};

/// Faces in the reference photos that dlib's HOG detector misses, looked at by eye: two turned
/// heads in sample2.jpg, a tilted one on the left of sample4.jpg. Anything else found beside
/// dlib's faces is a false positive (before the close-up confirmation: a wall plate in
/// sample3.jpg).
const REAL_FACES_DLIB_MISSES: &[(&str, usize)] = &[("sample2.jpg", 2), ("sample4.jpg", 1)];

fn detector() -> Detector {
    let weights =
        |name: &str| WeightMap::load(&cache_file(&format!("models/{name}.safetensors"))).unwrap();
    Detector::load(
        &weights("blazeface_front"),
        &weights("blazeface_back"),
        &likeness_nn::device::cpu(),
    )
    .unwrap()
}

#[test]
fn finds_every_face_dlib_found_in_the_reference_photos() {
    let reference = reference_dir();
    let chips = read_npz(&reference.join("dlib_chips.npz")).unwrap();
    let names = std::fs::read_to_string(reference.join("dlib_chips_names.txt")).unwrap();
    let detector = detector();

    let mut files: Vec<&str> = names
        .lines()
        .map(|l| l.split('#').next().unwrap())
        .collect();
    files.dedup();
    let mut ious = Vec::new();
    let mut unexpected = Vec::new();
    for file in files {
        let photo = Image::open(&cache_file(&format!("samples/{file}"))).unwrap();
        let start = Instant::now();
        let found = detector.detect(&photo).unwrap();
        let ms = start.elapsed().as_secs_f64() * 1e3;
        let mut used = vec![false; found.len()];
        for (i, name) in names.lines().enumerate() {
            if name.split('#').next() != Some(file) {
                continue;
            }
            let b = &chips["boxes"].values[i * 4..i * 4 + 4];
            // dlib's boxes are inclusive pixel rectangles
            let truth = [
                b[0] as f32,
                b[1] as f32,
                b[2] as f32 + 1.0,
                b[3] as f32 + 1.0,
            ];
            let (best, overlap) = found
                .iter()
                .enumerate()
                .map(|(j, d)| (j, iou(&d.bbox, &truth)))
                .max_by(|a, b| a.1.total_cmp(&b.1))
                .unwrap_or((0, 0.0));
            if overlap >= 0.5 {
                used[best] = true;
            }
            println!("  {name:16} IoU {overlap:.3}");
            ious.push((overlap, name.to_string()));
        }
        let extra: Vec<_> = found
            .iter()
            .zip(&used)
            .filter(|(_, u)| !**u)
            .map(|(d, _)| (d.score, d.bbox.map(f32::round)))
            .collect();
        println!(
            "{file}: {}x{} in {ms:.0} ms, {} detections; not dlib's: {extra:?}",
            photo.width,
            photo.height,
            found.len()
        );
        let known = REAL_FACES_DLIB_MISSES
            .iter()
            .find(|(f, _)| *f == file)
            .map_or(0, |(_, n)| *n);
        if extra.len() != known {
            unexpected.push((file, extra));
        }
    }
    ious.sort_by(|a, b| a.0.total_cmp(&b.0));
    let values: Vec<f32> = ious.iter().map(|v| v.0).collect();
    println!(
        "IoU with dlib's boxes over {} faces: min {:.3}, median {:.3}, max {:.3}",
        values.len(),
        values[0],
        values[values.len() / 2],
        values[values.len() - 1]
    );
    assert_eq!(values.len(), 26);
    assert!(values[0] >= 0.5, "missed or misplaced: {:?}", ious[0]);
    assert!(
        unexpected.is_empty(),
        "detections beside dlib's faces other than {REAL_FACES_DLIB_MISSES:?}: {unexpected:?}"
    );
}

#[test]
fn finds_no_face_where_there_is_none() {
    let detector = detector();
    // a cat, a coffee cup (both found as faces before the close-up confirmation) and textures
    for file in [
        "chelsea.png",
        "coffee.png",
        "brick.png",
        "grass.png",
        "gravel.png",
    ] {
        let photo = Image::open(&cache_file(&format!("samples/{file}"))).unwrap();
        let found = detector.detect(&photo).unwrap();
        println!("{file}: {found:?}");
        assert!(found.is_empty(), "{file}: {found:?}");
    }
    // while a photo that is all face (a 112² aligned face) keeps its face
    let photo = Image::open(&cache_file("samples/Tom_Hanks_54745.png")).unwrap();
    let found = detector.detect(&photo).unwrap();
    assert_eq!(found.len(), 1, "{found:?}");
    assert!(found[0].width() > 70.0, "{found:?}");
}
