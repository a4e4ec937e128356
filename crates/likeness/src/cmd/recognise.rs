//! `likeness recognise KNOWN_DIR UNKNOWN_PATH`: face_recognition's command line, its lines byte
//! for byte (the formats are `likeness_face::compat`'s).

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use clap::Args;
use likeness_face::compare::matches;
use likeness_face::compat;
use likeness_face::faces::largest;
use likeness_face::liveness::{LivenessCheck, LivenessChecker};
use likeness_face::report::{RecogniseReport, RecognisedFace, RecognisedFile};
use likeness_face::{Face, Faces, KnownFace};

use super::batch::{for_each_in_order, photos_in, threads};
use super::common::{FacePipelineArgs, open_image, print_json};

/// Recognise the people in photos, knowing one photo per person: prints face_recognition's
/// lines — `FILE,NAME` for each known person within the tolerance of each face,
/// `FILE,unknown_person` for a face that matches nobody, `FILE,no_persons_found` for a photo
/// without faces; with `--show-distance true` a third column, the distance as Python prints it
/// (`0.0`, `0.3416799306869507`) or `None`.
///
/// Known people are named after their file names less the last extension (`obama.jpg` →
/// obama, `Ada.Lovelace.jpg` → Ada.Lovelace); a known photo with several faces counts its
/// largest. Folders are read in name order, their jpg, jpeg and png files. A field with a
/// comma, a double quote or a line break is quoted as CSV quotes it; others are printed as
/// they are. Warnings and errors go to stderr; a photo that cannot be read is reported, the
/// rest still processed, and the exit status is non-zero.
#[derive(Debug, Args)]
pub struct RecogniseArgs {
    /// Folder of photos of known people, one person per photo.
    known_dir: PathBuf,
    /// A photo, or a folder of photos, to recognise.
    unknown: PathBuf,
    /// Largest distance still taken as a match (lower is stricter) [default: the embedder's;
    /// 0.6 for dlib's network].
    #[arg(long, value_parser = crate::args::f32_positive)]
    tolerance: Option<f32>,
    /// Photos processed at once (the workers share one copy of the networks).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=64))]
    jobs: u32,
    /// face_recognition's name for --jobs: cores to use, -1 for all of them.
    #[arg(
        long,
        value_name = "N",
        allow_negative_numbers = true,
        conflicts_with = "jobs"
    )]
    cpus: Option<i64>,
    /// Add the distance as a third column: `--show-distance true` as face_recognition takes
    /// it (also yes/no, on/off, 1/0, false), or the flag alone.
    #[arg(long, value_name = "BOOL", num_args = 0..=1, default_missing_value = "true",
          value_parser = compat::parse_bool)]
    show_distance: Option<bool>,
    #[command(flatten)]
    pipeline: FacePipelineArgs,
    /// Print JSON instead of CSV.
    #[arg(long)]
    json: bool,
    /// Check each unknown face for liveness first: a face judged a picture of a face (a print,
    /// a screen) is printed as `spoof` and never named. See `likeness liveness --help`.
    #[arg(long)]
    liveness: bool,
}

/// Runs `likeness recognise`.
pub fn run(args: RecogniseArgs) -> anyhow::Result<()> {
    if !args.known_dir.is_dir() {
        bail!("{}: not a folder of known people", args.known_dir.display());
    }
    let known_files = photos_in(std::slice::from_ref(&args.known_dir))?;
    let unknown_files = photos_in(std::slice::from_ref(&args.unknown))?;
    let jobs = threads(args.cpus, args.jobs)?;
    let show_distance = args.show_distance.unwrap_or(false);
    let faces = args.pipeline.load()?;
    let mut failed = 0usize;

    let mut known: Vec<KnownFace> = Vec::new();
    let tolerance = args.tolerance.unwrap_or(faces.embedder().info().tolerance);
    let checker = if args.liveness {
        Some(LivenessChecker::load(&likeness_models::Cache::from_env()?)?)
    } else {
        None
    };
    let encode_known = |path: &Path| encode_file(&faces, None, path);
    let encode = |path: &Path| encode_file(&faces, checker.as_ref(), path);
    for_each_in_order(
        &known_files,
        jobs,
        encode_known,
        |path, result| match result {
            Ok((mut found, _)) => {
                let name = compat::known_name(path);
                let n = found.len();
                match largest(&found) {
                    None => eprintln!("warning: {}: no face found; ignoring it", path.display()),
                    Some(i) => {
                        if n > 1 {
                            eprintln!(
                                "warning: {}: {n} faces found; only the largest is {name}",
                                path.display()
                            );
                        }
                        let embedding = found.swap_remove(i).embedding;
                        known.push(KnownFace { name, embedding });
                    }
                }
            }
            Err(e) => {
                eprintln!("error: {e:#}");
                failed += 1;
            }
        },
    );

    let mut results = Vec::new();
    let mut match_error = None;
    for_each_in_order(&unknown_files, jobs, encode, |path, result| {
        let (found, checks) = match result {
            Ok(found) => found,
            Err(e) => {
                eprintln!("error: {e:#}");
                failed += 1;
                return;
            }
        };
        let mut recognised = Vec::new();
        for (i, face) in found.iter().enumerate() {
            let liveness = checks.as_ref().and_then(|c| c.get(i).cloned());
            if liveness.as_ref().is_some_and(|c| !c.is_live()) {
                // a picture of a face is never named
                recognised.push(RecognisedFace {
                    face: (&face.detection).into(),
                    matches: Vec::new(),
                    liveness,
                });
                continue;
            }
            match matches(&known, &face.embedding, tolerance) {
                Ok(m) => recognised.push(RecognisedFace {
                    face: (&face.detection).into(),
                    matches: m,
                    liveness,
                }),
                Err(e) => {
                    match_error.get_or_insert(e);
                    return;
                }
            }
        }
        let file = RecognisedFile {
            file: path.to_path_buf(),
            faces: recognised,
        };
        if args.json {
            results.push(file);
        } else {
            print!("{}", lines(&file, show_distance));
        }
    });
    if let Some(e) = match_error {
        return Err(e).context("comparing with the known faces");
    }
    if args.json {
        print_json(&RecogniseReport {
            known: known.into_iter().map(|k| k.name).collect(),
            tolerance,
            results,
        })?;
    }
    if failed > 0 {
        bail!("{failed} file(s) could not be read");
    }
    Ok(())
}

/// face_recognition's lines for one photo (`likeness_face::compat::recognition_lines`).
fn lines(file: &RecognisedFile, show_distance: bool) -> String {
    let faces: Vec<Vec<(&str, Option<f64>)>> = file
        .faces
        .iter()
        .map(|f| {
            if f.liveness.as_ref().is_some_and(|c| !c.is_live()) {
                return vec![(compat::SPOOF, None)];
            }
            f.matches
                .iter()
                .map(|m| (m.name.as_str(), Some(m.distance as f64)))
                .collect()
        })
        .collect();
    compat::recognition_lines(&file.file.display().to_string(), &faces, show_distance)
}

/// A photo's faces and, when a liveness checker was given, each face's liveness.
type Encoded = anyhow::Result<(Vec<Face>, Option<Vec<LivenessCheck>>)>;

fn encode_file(faces: &Faces, checker: Option<&LivenessChecker>, path: &Path) -> Encoded {
    let image = open_image(path)?;
    let found = faces
        .encode(&image)
        .with_context(|| format!("{}: encoding failed", path.display()))?;
    let checks = match checker {
        Some(c) => {
            let detections: Vec<_> = found.iter().map(|f| f.detection.clone()).collect();
            Some(
                c.check(&image, &detections, None)
                    .with_context(|| format!("{}: liveness check failed", path.display()))?,
            )
        }
        None => None,
    };
    Ok((found, checks))
}
