//! `likeness detect PHOTO|FOLDER… [--csv] [--draw OUT.png]`: where the faces are.

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use clap::Args;
use likeness_face::Detection;
use likeness_face::annotate::draw_detection;
use likeness_face::compat;
use likeness_face::report::{DetectReport, DetectionOut};
use likeness_nn::draw;
use likeness_nn::image::Image;

use super::common::{
    AlignWith, FaceSearchArgs, fmt_box, load_faces, open_image, print_json, save_png,
};

/// Find the faces in photos: box, score and BlazeFace's six keypoints (eyes, nose tip, mouth,
/// ears). `--csv` prints face_detection's lines instead: `FILE,top,right,bottom,left` per face
/// (dlib's box convention, whole pixels), nothing for a photo without faces.
#[derive(Debug, Args)]
pub struct DetectArgs {
    /// Photos (PNG or JPEG) and folders of photos (their jpg, jpeg and png files, in name
    /// order).
    #[arg(required = true, value_name = "PHOTO|FOLDER")]
    inputs: Vec<PathBuf>,
    /// Also write a copy of the photo with the boxes and keypoints drawn (PNG; one photo only).
    #[arg(long, value_name = "OUT.png", value_parser = crate::args::output_file)]
    draw: Option<PathBuf>,
    /// Print JSON instead of one line per face: an object for one photo, an array of them for
    /// several or a folder.
    #[arg(long, conflicts_with = "csv")]
    json: bool,
    /// Print face_detection's CSV: `FILE,top,right,bottom,left` for each face.
    #[arg(long)]
    csv: bool,
    /// Photos processed at once, face_recognition's way: a number of cores, -1 for all.
    #[arg(
        long,
        value_name = "N",
        allow_negative_numbers = true,
        default_value_t = 1
    )]
    cpus: i64,
    #[command(flatten)]
    search: FaceSearchArgs,
}

/// One photo's detections, or why there are none.
type Detected = anyhow::Result<(Image, Vec<Detection>)>;

/// Runs `likeness detect`.
pub fn run(args: DetectArgs) -> anyhow::Result<()> {
    let files = super::batch::photos_in(&args.inputs)?;
    let single = args.inputs.len() == 1 && !args.inputs[0].is_dir();
    if args.draw.is_some() && !single {
        bail!("--draw writes one picture: give one photo, not several or a folder");
    }
    let threads = super::batch::threads(Some(args.cpus), 1)?;
    let faces = load_faces(AlignWith::Dlib, None, &args.search)?;
    let detect = |path: &Path| -> Detected {
        let image = open_image(path)?;
        let found = faces
            .detect(&image)
            .with_context(|| format!("{}: detection failed", path.display()))?;
        Ok((image, found))
    };
    let mut reports = Vec::new();
    let mut failed = 0usize;
    super::batch::for_each_in_order(&files, threads, detect, |path, result| {
        let (image, found) = match result {
            Ok(r) => r,
            Err(e) => {
                eprintln!("error: {e:#}");
                failed += 1;
                return;
            }
        };
        if args.csv {
            let file = path.display().to_string();
            for d in &found {
                let location = compat::face_location(d, image.width, image.height);
                print!("{}", compat::detection_line(&file, location));
            }
        } else if args.json {
            reports.push(DetectReport {
                file: path.to_path_buf(),
                width: image.width,
                height: image.height,
                faces: found.iter().map(DetectionOut::from).collect(),
            });
        } else {
            println!(
                "{}: {}x{}, {} face(s)",
                path.display(),
                image.width,
                image.height,
                found.len()
            );
            for (i, d) in found.iter().enumerate() {
                println!(
                    "  face {i}: box {} score {:.3} keypoints {}",
                    fmt_box(&d.bbox),
                    d.score,
                    d.keypoints
                        .iter()
                        .map(|(x, y)| format!("({x:.0},{y:.0})"))
                        .collect::<Vec<_>>()
                        .join(" ")
                );
            }
        }
        if let Some(out) = &args.draw {
            let mut canvas = image.clone();
            for (i, d) in found.iter().enumerate() {
                draw_detection(&mut canvas, d, &format!("{i}"), draw::GREEN);
            }
            if let Err(e) = save_png(&canvas, out) {
                eprintln!("error: {e:#}");
                failed += 1;
            }
        }
    });
    if args.json {
        match reports.pop() {
            Some(report) if single => print_json(&report)?,
            last => {
                reports.extend(last);
                print_json(&reports)?;
            }
        }
    }
    if failed > 0 {
        bail!("{failed} file(s) could not be read");
    }
    Ok(())
}
