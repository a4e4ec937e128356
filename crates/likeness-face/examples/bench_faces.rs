//! likeness's side of the faces benchmark (`bench/faces/run.sh` runs it beside
//! face_recognition): per photo, the median of `REPS` timed runs after one warm-up of each
//! stage of [`Faces::encode_timed`] (detect, landmarks, align, encode) and of the whole call,
//! plus the embedder alone on each chip by itself (per-face encode) and on all chips at once.
//! Photo decoding is left out, as on the Python side.
//!
//! `cargo run -p likeness-face --example bench_faces -- REPS OUT.json PHOTO…`
//!
//! Threads: burn-flex runs on rayon's global pool (`RAYON_NUM_THREADS`, default one per core).

use std::path::PathBuf;
use std::time::{Duration, Instant};

use likeness_face::Faces;
use likeness_face::detect::plan;
use likeness_models::Cache;
use likeness_nn::image::Image;
use serde_json::{Value, json};

fn median(mut v: Vec<Duration>) -> f64 {
    v.sort();
    v[v.len() / 2].as_secs_f64()
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let usage = "usage: bench_faces REPS OUT.json PHOTO…";
    let reps: usize = args.next().ok_or(usage)?.parse()?;
    let out = PathBuf::from(args.next().ok_or(usage)?);
    let photos: Vec<PathBuf> = args.map(PathBuf::from).collect();
    if reps == 0 || photos.is_empty() {
        return Err(usage.into());
    }
    let mut faces = Faces::load(&Cache::from_env()?)?;
    let mut results = Vec::new();
    for path in &photos {
        let name = path.file_name().map(|n| n.to_string_lossy().into_owned());
        let image = Image::open(path)?;
        let (found, _) = faces.encode_timed(&image)?; // warm-up
        let mut stages: [Vec<Duration>; 5] = Default::default();
        for _ in 0..reps {
            let start = Instant::now();
            let (again, t) = faces.encode_timed(&image)?;
            stages[4].push(start.elapsed());
            if again.len() != found.len() {
                return Err(format!("{name:?}: face count changed between runs").into());
            }
            for (v, d) in stages
                .iter_mut()
                .zip([t.detect, t.landmarks, t.align, t.encode])
            {
                v.push(d);
            }
        }
        let chips = found
            .iter()
            .map(|f| faces.chip(&image, &f.landmarks))
            .collect::<Result<Vec<_>, _>>()?;
        // Per face: each chip through the embedder by itself, as dlib's
        // compute_face_descriptor does it; and all of the photo's chips in one batch.
        let (mut single, mut batch) = (Vec::new(), Vec::new());
        if !chips.is_empty() {
            faces.embed(&chips[..1])?;
            for _ in 0..reps {
                let start = Instant::now();
                for chip in &chips {
                    faces.embed(std::slice::from_ref(chip))?;
                }
                single.push(start.elapsed() / chips.len() as u32);
                let start = Instant::now();
                faces.embed(&chips)?;
                batch.push(start.elapsed() / chips.len() as u32);
            }
        }
        // Where detect's time goes: the whole-photo passes alone, without the tiles.
        faces.detector.options.tile = false;
        faces.detect(&image)?;
        let mut whole = Vec::new();
        for _ in 0..reps {
            let start = Instant::now();
            faces.detect(&image)?;
            whole.push(start.elapsed());
        }
        faces.detector.options.tile = true;
        let passes = plan(image.width, image.height, &faces.detector.options).len();
        let boxes: Vec<Value> = found
            .iter()
            .map(|f| json!({"bbox": f.detection.bbox, "score": f.detection.score}))
            .collect();
        let [detect, landmarks, align, encode, total] = stages.map(median);
        let per_face = |v: Vec<Duration>| (!v.is_empty()).then(|| median(v));
        let record = json!({
            "photo": name,
            "width": image.width,
            "height": image.height,
            "faces": found.len(),
            "boxes": boxes,
            "detect_s": detect,
            "landmarks_s": landmarks,
            "align_s": align,
            "encode_s": encode,
            "total_s": total,
            "encode_per_face_single_s": per_face(single),
            "encode_per_face_batch_s": per_face(batch),
            "detect_passes": passes,
            "detect_whole_photo_only_s": median(whole),
        });
        eprintln!("likeness {record}");
        results.push(record);
    }
    let doc = json!({
        "implementation": "likeness",
        "reps": reps,
        "rayon_num_threads": std::env::var("RAYON_NUM_THREADS").ok(),
        "photos": results,
    });
    std::fs::write(&out, serde_json::to_string_pretty(&doc)?)?;
    Ok(())
}
