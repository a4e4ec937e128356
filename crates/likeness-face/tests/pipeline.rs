//! The bar for the whole face pipeline: on the original photos of
//! `shared/reference/dlib_chips.npz` (26 faces found by the real dlib), [`Faces::encode`]
//! (BlazeFace → shape predictor from the derived dlib box → chip → ResNet) finds every face
//! (IoU ≥ 0.5 with dlib's box) and gives an embedding close to dlib's: median distance ≤ 0.05,
//! max ≤ 0.15.
//!
//! Needs the model cache (`cargo run -p likeness -- models fetch`): the four face models and
//! the sample photos.

use std::time::Duration;

use likeness_face::detect::decode::iou;
use likeness_face::faces::{Alignment, Embedding, Faces, StageTimes};
use likeness_models::Cache;
use likeness_nn::image::Image;
use likeness_nn::npz::read_npz;
use likeness_testdata::reference_dir;

const MAX_MEDIAN_DISTANCE: f32 = 0.05;
const MAX_DISTANCE: f32 = 0.15;
const MIN_IOU: f32 = 0.5;

fn cache() -> Cache {
    let cache = Cache::from_env().unwrap();
    if let Err(e) = cache.require(Faces::MODELS) {
        panic!("{e}");
    }
    cache
}

fn quartiles(sorted: &[f32]) -> [f32; 5] {
    let at = |q: f64| sorted[((sorted.len() - 1) as f64 * q).round() as usize];
    [at(0.0), at(0.25), at(0.5), at(0.75), at(1.0)]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

#[test]
fn pipeline_matches_dlib_end_to_end() {
    let cache = cache();
    let mut faces = Faces::load(&cache).unwrap();
    let reference = read_npz(&reference_dir().join("dlib_chips.npz")).unwrap();
    let names = std::fs::read_to_string(reference_dir().join("dlib_chips_names.txt")).unwrap();
    let names: Vec<&str> = names.lines().filter(|l| !l.is_empty()).collect();
    let boxes = &reference["boxes"].values;
    let marks = &reference["landmarks5"].values;
    let embeddings = &reference["embeddings"].values;
    assert_eq!(names.len(), 26);

    let mut files: Vec<&str> = names.iter().map(|l| l.split('#').next().unwrap()).collect();
    files.dedup();
    let mut distances = Vec::new();
    // the fast path (landmarks from BlazeFace's keypoints), for comparison only
    let mut keypoint_distances = Vec::new();
    let mut misses = Vec::new();
    let mut total = StageTimes::default();
    for file in files {
        let path = cache.sample_path(file).unwrap_or_else(|e| panic!("{e}"));
        let photo = Image::open(&path).unwrap();
        let (found, times) = faces.encode_timed(&photo).unwrap();
        faces.alignment = Alignment::Keypoints;
        let detections = found.iter().map(|f| f.detection.clone()).collect();
        let (fast, _) = faces.encode_detections(&photo, detections).unwrap();
        faces.alignment = Alignment::ShapePredictor;
        println!(
            "{file}: {}x{}, {} faces; detect {:.0} ms, landmarks {:.2} ms, align {:.1} ms, \
             encode {:.0} ms",
            photo.width,
            photo.height,
            found.len(),
            ms(times.detect),
            ms(times.landmarks),
            ms(times.align),
            ms(times.encode)
        );
        total.detect += times.detect;
        total.landmarks += times.landmarks;
        total.align += times.align;
        total.encode += times.encode;
        for (i, name) in names.iter().enumerate() {
            if !name.starts_with(&format!("{file}#")) {
                continue;
            }
            let b = &boxes[4 * i..4 * i + 4];
            // dlib's boxes are inclusive pixel rectangles
            let truth = [
                b[0] as f32,
                b[1] as f32,
                b[2] as f32 + 1.0,
                b[3] as f32 + 1.0,
            ];
            let Some((j, overlap)) = found
                .iter()
                .enumerate()
                .map(|(j, f)| (j, iou(&f.detection.bbox, &truth)))
                .max_by(|a, b| a.1.total_cmp(&b.1))
                .filter(|(_, o)| *o >= MIN_IOU)
            else {
                misses.push(name.to_string());
                continue;
            };
            let expected = Embedding(
                embeddings[128 * i..128 * (i + 1)]
                    .iter()
                    .map(|&v| v as f32)
                    .collect(),
            );
            let face = &found[j];
            let distance = face.embedding.distance(&expected).unwrap();
            keypoint_distances.push(fast[j].embedding.distance(&expected).unwrap());
            let m = &marks[10 * i..10 * i + 10];
            let landmark_error = face
                .landmarks
                .0
                .iter()
                .enumerate()
                .map(|(k, p)| (p.0 - m[2 * k]).hypot(p.1 - m[2 * k + 1]))
                .fold(0.0f64, f64::max);
            let d = &face.detection;
            println!(
                "  {name:16} IoU {overlap:.3}  landmarks max {landmark_error:5.1} px  \
                 distance {distance:.4}  | calib blaze {:?} dlib {:?} kp {:?}",
                d.bbox.map(|v| (v * 10.0).round() / 10.0),
                [b[0], b[1], b[2], b[3]],
                d.keypoints
            );
            distances.push((distance, name.to_string()));
        }
    }
    println!(
        "stage totals over the 7 photos: detect {:.0} ms, landmarks {:.1} ms, align {:.1} ms, \
         encode {:.0} ms",
        ms(total.detect),
        ms(total.landmarks),
        ms(total.align),
        ms(total.encode)
    );
    distances.sort_by(|a, b| a.0.total_cmp(&b.0));
    let values: Vec<f32> = distances.iter().map(|d| d.0).collect();
    assert!(misses.is_empty(), "faces not found: {misses:?}");
    let [min, q1, median, q3, max] = quartiles(&values);
    println!(
        "distance to dlib's embedding over {} faces: min {min:.4}, q1 {q1:.4}, median \
         {median:.4}, q3 {q3:.4}, max {max:.4} (worst: {})",
        values.len(),
        distances[distances.len() - 1].1
    );
    keypoint_distances.sort_by(f32::total_cmp);
    let [kmin, kq1, kmedian, kq3, kmax] = quartiles(&keypoint_distances);
    println!(
        "with landmarks from BlazeFace's keypoints instead (no bar): min {kmin:.4}, q1 \
         {kq1:.4}, median {kmedian:.4}, q3 {kq3:.4}, max {kmax:.4}"
    );
    assert_eq!(values.len(), 26);
    assert!(median <= MAX_MEDIAN_DISTANCE, "median distance {median}");
    assert!(
        max <= MAX_DISTANCE,
        "max distance {max} ({:?})",
        distances.last()
    );
}

#[test]
fn encode_where_filters_the_raw_detections_and_answers_as_encode_and_detect_do() {
    // t1.jpg: six faces. Selecting is filtering the raw detections before the one encoding,
    // so the answer is `encode`'s faces (same boxes, same embeddings) that pass, and their
    // boxes are `detect`'s (which runs the face-ness check on its own embeddings).
    let cache = cache();
    let faces = Faces::load(&cache).unwrap();
    let photo = Image::open(&cache.sample_path("t1.jpg").unwrap()).unwrap();
    let all = faces.encode(&photo).unwrap();
    assert!(all.len() >= 5, "{} faces", all.len());
    let every = faces.encode_where(&photo, |_| true).unwrap();
    assert_eq!(every.len(), all.len());
    for (a, b) in every.iter().zip(&all) {
        assert_eq!(a.detection.bbox, b.detection.bbox);
        assert_eq!(a.embedding.0, b.embedding.0);
    }
    let boxes: Vec<[f32; 4]> = faces
        .detect(&photo)
        .unwrap()
        .iter()
        .map(|d| d.bbox)
        .collect();
    assert_eq!(
        boxes,
        every.iter().map(|f| f.detection.bbox).collect::<Vec<_>>()
    );
    // a threshold between the scores keeps exactly the faces above it
    let mut scores: Vec<f32> = all.iter().map(|f| f.detection.score).collect();
    scores.sort_by(f32::total_cmp);
    let cut = (scores[0] + scores[scores.len() - 1]) / 2.0;
    let kept = faces.encode_where(&photo, |d| d.score >= cut).unwrap();
    let want = all.iter().filter(|f| f.detection.score >= cut).count();
    assert!(want > 0 && want < all.len(), "cut {cut} splits {scores:?}");
    assert_eq!(kept.len(), want);
    assert!(kept.iter().all(|f| f.detection.score >= cut));
}
