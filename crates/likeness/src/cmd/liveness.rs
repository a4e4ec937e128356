//! `likeness liveness PHOTO... [--json] [--crops DIR]`: is each face a live person or a
//! picture of one? (passive presentation-attack detection, one frame)

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use clap::Args;
use likeness_face::detect::Detector;
use likeness_face::faces::{MODEL_BACK, MODEL_FRONT};
use likeness_face::liveness::{LIVE_THRESHOLD, LivenessChecker};
use likeness_face::report::LivenessReport;
use likeness_models::Cache;
use likeness_nn::weights::WeightMap;

use super::common::{FaceSearchArgs, fmt_box, open_image, print_json, save_png};

/// Judge whether each face in photos is a live person or a presentation attack (a printed
/// photo, a phone or screen held up to the camera).
///
/// Each face found is cropped with its surroundings (the face box enlarged 2.7× around its
/// centre: paper edges, bezels and moiré matter) and scored by a small MiniFASNet network
/// (npm faceplugin-face-recognition-js 0.0.1). The score is the probability of "live";
/// below the threshold the face is a spoof. A passive check on one frame is evidence, not proof:
/// see bench/liveness/README.md for what it catches and misses on our data.
#[derive(Debug, Args)]
pub struct LivenessArgs {
    /// The photos (PNG or JPEG), each a camera frame.
    #[arg(required = true, value_name = "PHOTO")]
    photos: Vec<PathBuf>,
    /// Print JSON (one object per photo, in a list) instead of one line per face.
    #[arg(long)]
    json: bool,
    /// Write the 128×128 crop each face was judged on into DIR (created if missing), as
    /// `<photo stem>_face<i>.png`.
    #[arg(long, value_name = "DIR")]
    crops: Option<PathBuf>,
    /// Score at or above which a face is live (0–1).
    #[arg(long, value_name = "P", default_value_t = LIVE_THRESHOLD,
          value_parser = parse_threshold)]
    threshold: f32,
    #[command(flatten)]
    search: FaceSearchArgs,
}

/// A threshold in 0..=1 (NaN and the like refused by clap with this message).
pub fn parse_threshold(s: &str) -> Result<f32, String> {
    let v: f32 = s
        .parse()
        .map_err(|e| format!("`{s}` is not a number: {e}"))?;
    if (0.0..=1.0).contains(&v) {
        Ok(v)
    } else {
        Err(format!("{v} is outside 0..1"))
    }
}

/// The detector and the liveness network, from the model cache.
pub fn load(
    threshold: f32,
    search: &FaceSearchArgs,
) -> anyhow::Result<(Detector, LivenessChecker)> {
    let cache = Cache::from_env()?;
    let weights = |name: &str| -> anyhow::Result<WeightMap> {
        let path = cache.model_path(name)?;
        WeightMap::load(&path).with_context(|| format!("loading {}", path.display()))
    };
    let device = likeness_nn::device::cpu();
    let mut detector = Detector::load(&weights(MODEL_FRONT)?, &weights(MODEL_BACK)?, &device)?;
    detector.options.min_face = search.min_face;
    detector.options.min_score = search.min_score;
    let checker = LivenessChecker::load(&cache)?.with_threshold(threshold)?;
    Ok((detector, checker))
}

/// Runs `likeness liveness`.
pub fn run(args: LivenessArgs) -> anyhow::Result<()> {
    let (detector, checker) = load(args.threshold, &args.search)?;
    if let Some(dir) = &args.crops {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("cannot create the crops folder {}", dir.display()))?;
    }
    let mut reports = Vec::new();
    let mut failed = 0usize;
    for path in &args.photos {
        match judge(&detector, &checker, path, args.crops.as_deref()) {
            Ok(report) => {
                if !args.json {
                    print_report(&report);
                }
                reports.push(report);
            }
            Err(e) => {
                eprintln!("error: {e:#}");
                failed += 1;
            }
        }
    }
    if args.json {
        print_json(&reports)?;
    }
    if failed > 0 {
        bail!(
            "{failed} of {} photo(s) could not be judged",
            args.photos.len()
        );
    }
    Ok(())
}

fn judge(
    detector: &Detector,
    checker: &LivenessChecker,
    path: &Path,
    crops_dir: Option<&Path>,
) -> anyhow::Result<LivenessReport> {
    let image = open_image(path)?;
    let found = detector
        .detect(&image)
        .with_context(|| format!("{}: detection failed", path.display()))?;
    let mut crops = Vec::new();
    let mut faces = checker
        .check(&image, &found, crops_dir.map(|_| &mut crops))
        .with_context(|| format!("{}: liveness failed", path.display()))?;
    if let Some(dir) = crops_dir {
        let stem = path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_else(|| "photo".into());
        for (i, (face, crop)) in faces.iter_mut().zip(&crops).enumerate() {
            let file = dir.join(format!("{stem}_face{i}.png"));
            save_png(crop, &file)?;
            face.crop_file = Some(file);
        }
    }
    Ok(LivenessReport {
        file: path.to_path_buf(),
        width: image.width,
        height: image.height,
        faces,
    })
}

fn print_report(r: &LivenessReport) {
    println!(
        "{}: {}x{}, {} face(s)",
        r.file.display(),
        r.width,
        r.height,
        r.faces.len()
    );
    for (i, f) in r.faces.iter().enumerate() {
        let crop = f
            .crop_file
            .as_ref()
            .map(|p| format!(" crop {}", p.display()))
            .unwrap_or_default();
        println!(
            "  face {i}: box {} score {:.3} {}{crop}",
            fmt_box(&f.bbox),
            f.score,
            f.verdict.as_str(),
        );
    }
}
