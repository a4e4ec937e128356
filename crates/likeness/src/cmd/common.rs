//! What every face command shares: the detector's options (`--min-face`, `--min-score`), the
//! pipeline's options (`--align`, `--encoder`) and the pipeline they ask for, reading photos,
//! choosing the one face of a photo, and printing. Argument plumbing only: the face logic is
//! likeness-face's.

use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::Args;
use likeness_face::detect::{DEFAULT_MIN_FACE, MIN_FACE_FLOOR};
use likeness_face::faces::Alignment;
use likeness_face::{EmbedderChoice, Face, Faces, FacesConfig, SingleFace};
use likeness_models::Cache;
use likeness_nn::image::Image;

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
