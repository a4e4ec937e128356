//! `likeness detect PHOTO|FOLDER… [--csv] [--draw OUT.png]`: where the faces are; and the
//! options and helpers every face command shares (the pipeline's options, reading photos,
//! printing).

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use clap::Args;
pub use likeness_face::annotate::draw_detection;
use likeness_face::compat;
use likeness_face::detect::{DEFAULT_MIN_FACE, MIN_FACE_FLOOR};
use likeness_face::faces::Alignment;
use likeness_face::report::{DetectReport, DetectionOut};
use likeness_face::{Detection, EmbedderChoice, Face, Faces, FacesConfig, SingleFace};
use likeness_models::Cache;
use likeness_nn::draw;
use likeness_nn::image::Image;
use serde_json::Value;

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

/// How small a face the detector looks for and how sure it must be (every command that
/// detects faces).
#[derive(Debug, Args)]
pub struct FaceSearchArgs {
    /// Smallest face width looked for, in photo pixels. The default finds what
    /// face_recognition finds; small faces need tiles of the photo, so a larger value is much
    /// faster on big photos (a 1920×1280 photo: 34 detector passes at 40, 10 at 80, 4 at 160).
    #[arg(long, value_name = "PX", default_value_t = DEFAULT_MIN_FACE,
          value_parser = clap::value_parser!(u32).range(MIN_FACE_FLOOR as i64..),
          global = true)]
    pub min_face: u32,
    /// Lowest detector score kept, from 0 to 1, for fewer and surer faces (default: each
    /// BlazeFace model's own, 0.5 for the front model and 0.65 for the back one). Every face
    /// also passes the close-up confirmation and the face-ness check.
    #[arg(long, value_name = "SCORE", value_parser = parse_score, global = true)]
    pub min_score: Option<f32>,
}

fn parse_score(value: &str) -> Result<f32, String> {
    match value.trim().parse::<f32>() {
        Ok(v) if (0.0..=1.0).contains(&v) => Ok(v),
        _ => Err(format!(
            "{value:?} is not a score: give a number from 0 to 1"
        )),
    }
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

/// Prints a report as pretty JSON on stdout.
pub fn print_json(report: &impl serde::Serialize) -> anyhow::Result<()> {
    println!("{}", serde_json::to_string_pretty(report)?);
    Ok(())
}

/// How the commands that embed faces build their pipeline (encode, verify, recognise).
#[derive(Debug, Args)]
pub struct FacePipelineArgs {
    /// Where the landmarks come from: dlib's shape predictor, or BlazeFace's keypoints
    /// (faster, less faithful to dlib).
    #[arg(long, value_enum, default_value_t = AlignWith::Dlib)]
    align: AlignWith,
    /// Embed with a fine-tuned copy of dlib's network (`likeness train encoder --init dlib`)
    /// instead of the model cache's.
    #[arg(long, value_name = "FILE")]
    encoder: Option<PathBuf>,
    #[command(flatten)]
    search: FaceSearchArgs,
}

impl FacePipelineArgs {
    /// The faces pipeline these options ask for.
    pub fn load(&self) -> anyhow::Result<Faces> {
        load_faces(self.align, self.encoder.as_deref(), &self.search)
    }
}

/// How the commands that embed faces place the landmarks the chip is cut from.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum AlignWith {
    /// dlib's shape predictor (the chips dlib's network expects).
    #[default]
    Dlib,
    /// BlazeFace's keypoints: skips the predictor; embeddings further from dlib's.
    Keypoints,
}

/// The faces pipeline these options ask for, its networks from the model cache (the error
/// says how to fetch them if missing).
pub fn load_faces(
    align: AlignWith,
    encoder: Option<&Path>,
    search: &FaceSearchArgs,
) -> anyhow::Result<Faces> {
    let mut config = FacesConfig::default()
        .with_min_face(search.min_face)
        .with_alignment(match align {
            AlignWith::Dlib => Alignment::ShapePredictor,
            AlignWith::Keypoints => Alignment::Keypoints,
        })
        .with_embedder(match encoder {
            None => EmbedderChoice::Dlib,
            Some(path) => EmbedderChoice::DlibFile(path.to_path_buf()),
        });
    config.detector.min_score = search.min_score;
    Ok(Faces::new(&config, &Cache::from_env()?)?)
}

/// Reads a photo with the one image reader (likeness_nn::image::read); errors name the file.
pub fn open_image(path: &Path) -> anyhow::Result<Image> {
    Ok(Image::open(path)?)
}

/// Writes a PNG, naming the file on failure.
pub fn save_png(image: &Image, path: &Path) -> anyhow::Result<()> {
    image
        .save_png(path)
        .with_context(|| format!("cannot write {}", path.display()))
}

/// `[x0, y0, x1, y1]` rounded to pixels.
pub fn fmt_box(b: &[f32; 4]) -> String {
    format!("[{:.0}, {:.0}, {:.0}, {:.0}]", b[0], b[1], b[2], b[3])
}

/// A detection as JSON: box, score, keypoints.
pub fn detection_json(d: &Detection) -> Value {
    serde_json::to_value(DetectionOut::from(d)).unwrap_or(Value::Null)
}

/// The one face of a photo meant to show one person: an error if there is none; the largest,
/// with a note on stderr, if there are several.
pub fn single_face(faces: &Faces, path: &Path) -> anyhow::Result<Face> {
    let image = open_image(path)?;
    let SingleFace { face, found } = faces
        .single_face(&image)
        .with_context(|| path.display().to_string())?;
    if found > 1 {
        eprintln!(
            "note: {}: {found} faces found; using the largest, at {}",
            path.display(),
            fmt_box(&face.detection.bbox)
        );
    }
    Ok(face)
}
