//! The face-ness study's measurements (`bench/faceness/run.sh` runs it): for every candidate
//! the detector merges before its close-up confirmation, on each photo at each scale, the two
//! measures of [`likeness_face::detect::faceness`] — the front model's best close-up score
//! (the confirmation's views, without its early stop) and the dlib embedding (of the chip cut
//! from the shape predictor's landmarks) — and whether today's and the checked pipeline keep it.
//!
//! `cargo run -p likeness-face --example faceness_study -- OUT.csv SCALES PHOTO…`
//! (SCALES comma-separated, e.g. `0.2,0.3,0.5,1,2`; scaled photos over 40 Mpx are skipped).

use std::io::Write;

use likeness_face::Faces;
use likeness_face::detect::decode::{self, Model, iou};
use likeness_face::detect::faceness::non_face_distance;
use likeness_face::detect::{CONFIRM_CONTEXTS, CONFIRM_IOU, DetectOptions, Letterbox, detect_with};
use likeness_models::Cache;
use likeness_nn::image::Image;

/// Largest scaled photo studied, in pixels.
const MAX_PIXELS: u64 = 40_000_000;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let usage = "usage: faceness_study OUT.csv SCALES PHOTO…";
    let out = args.next().ok_or(usage)?;
    let scales = args
        .next()
        .ok_or(usage)?
        .split(',')
        .map(str::parse::<f32>)
        .collect::<Result<Vec<_>, _>>()?;
    let photos: Vec<String> = args.collect();
    let mut faces = Faces::load(&Cache::from_env()?)?;
    let mut f = std::io::BufWriter::new(std::fs::File::create(&out)?);
    writeln!(
        f,
        "file,scale,x0,y0,x1,y1,width,score,close_up,non_face_distance,kept_before,kept_after,embedding"
    )?;
    let raw = DetectOptions {
        confirm: None,
        ..DetectOptions::default()
    };
    let before = DetectOptions {
        large_face_extra: 0.0,
        ..DetectOptions::default()
    };
    for photo in &photos {
        let full = Image::open(photo.as_ref())?;
        for &scale in &scales {
            let w = ((full.width as f32 * scale).round() as u32).max(1);
            let h = ((full.height as f32 * scale).round() as u32).max(1);
            if w.max(h) < 64 || w as u64 * h as u64 > MAX_PIXELS {
                continue;
            }
            let image = if scale == 1.0 {
                full.clone()
            } else {
                full.resize(w, h)
            };
            let mut net = |m, inputs: &[Image]| faces.detector.run(m, inputs);
            let candidates = detect_with(&image, &raw, &mut net)?;
            let close_up = close_up_scores(&image, &candidates, &mut net)?;
            // what the pipeline keeps, before the face-ness check and with it
            faces.detector.options = before.clone();
            faces.faceness = None;
            let kept_before = faces.detect(&image)?;
            faces.detector.options = DetectOptions::default();
            faces.faceness = Some(likeness_face::detect::faceness::MIN_NON_FACE_DISTANCE);
            let kept_after = faces.detect(&image)?;
            let kept = |list: &[likeness_face::Detection], d: &likeness_face::Detection| {
                list.iter().any(|k| iou(&k.bbox, &d.bbox) > 0.9)
            };
            let landmarks = candidates
                .iter()
                .map(|d| faces.landmarks(&image, d))
                .collect::<Result<Vec<_>, _>>()?;
            let chips = landmarks
                .iter()
                .map(|l| faces.chip(&image, l))
                .collect::<Result<Vec<_>, _>>()?;
            let embeddings = faces.embed(&chips)?;
            let inv = 1.0 / scale;
            for ((d, score), e) in candidates.iter().zip(&close_up).zip(&embeddings) {
                let b = d.bbox.map(|v| v * inv);
                writeln!(
                    f,
                    "{photo},{scale},{:.1},{:.1},{:.1},{:.1},{:.1},{:.4},{:.4},{:.4},{},{},{}",
                    b[0],
                    b[1],
                    b[2],
                    b[3],
                    d.width(),
                    d.score,
                    score,
                    non_face_distance(&e.0),
                    kept(&kept_before, d) as u8,
                    kept(&kept_after, d) as u8,
                    e.0.iter()
                        .map(|v| format!("{v:.5}"))
                        .collect::<Vec<_>>()
                        .join(" ")
                )?;
            }
            eprintln!("{photo} x{scale}: {} candidates", candidates.len());
        }
    }
    Ok(())
}

/// For each candidate, the front model's best score in the confirmation's close-up views, for
/// detections on the candidate's box (IoU ≥ [`CONFIRM_IOU`]); 0 where there is none.
fn close_up_scores<F>(
    image: &Image,
    candidates: &[likeness_face::Detection],
    network: &mut F,
) -> Result<Vec<f32>, Box<dyn std::error::Error>>
where
    F: FnMut(Model, &[Image]) -> likeness_face::Result<Vec<(Vec<f32>, Vec<f32>)>>,
{
    let model = Model::Front;
    let mut best = vec![0f32; candidates.len()];
    for context in CONFIRM_CONTEXTS {
        let views: Vec<(usize, Letterbox)> = candidates
            .iter()
            .enumerate()
            .filter_map(|(i, d)| {
                let centre = ((d.bbox[0] + d.bbox[2]) / 2.0, (d.bbox[1] + d.bbox[3]) / 2.0);
                let side = context * d.width().max(d.height());
                Letterbox::around(image.width, image.height, centre, side, model.input_size())
                    .map(|lb| (i, lb))
            })
            .collect();
        let inputs = views
            .iter()
            .map(|(_, lb)| lb.apply(image))
            .collect::<Result<Vec<_>, _>>()?;
        if inputs.is_empty() {
            break;
        }
        let outputs = network(model, &inputs)?;
        for ((i, letterbox), (scores, regressors)) in views.iter().zip(outputs) {
            for d in decode::decode(model, &scores, &regressors, 0.05)? {
                let d = d.map(|x, y| letterbox.to_image(x, y));
                if iou(&d.bbox, &candidates[*i].bbox) >= CONFIRM_IOU {
                    best[*i] = best[*i].max(d.score);
                }
            }
        }
    }
    Ok(best)
}
