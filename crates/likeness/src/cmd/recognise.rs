//! `likeness recognise KNOWN_DIR UNKNOWN_PATH`: face_recognition's command line, CSV and all.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;

use anyhow::{Context, bail};
use clap::Args;
use likeness_face::compare::matches;
use likeness_face::faces::largest;
use likeness_face::liveness::{LivenessCheck, LivenessChecker};
use likeness_face::report::{RecogniseReport, RecognisedFace, RecognisedFile};
use likeness_face::{Face, Faces, KnownFace};

use super::detect::{FacePipelineArgs, open_image, print_json};

/// What face_recognition prints for a face that matches nobody.
const UNKNOWN: &str = "unknown_person";
/// What face_recognition prints for a photo without faces.
const NO_PERSONS: &str = "no_persons_found";
/// The name printed for a face that failed the liveness check (`--liveness`).
const SPOOF: &str = "spoof";
/// File name extensions taken from folders (as face_recognition's `image_files_in_folder`).
const IMAGE_EXTENSIONS: [&str; 3] = ["jpg", "jpeg", "png"];

/// Recognise the people in photos, knowing one photo per person: prints `file,name` for each
/// face of each unknown photo (every known person within the tolerance, `unknown_person`
/// when none is, `no_persons_found` for a photo without faces), as face_recognition does.
///
/// Known people are named after their files' stems (`obama.jpg` → obama); a known photo with
/// several faces counts its largest. A photo that cannot be read is reported on stderr, the
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
    /// Add the distance as a third CSV column.
    #[arg(long)]
    show_distance: bool,
    #[command(flatten)]
    pipeline: FacePipelineArgs,
    /// Print JSON instead of CSV.
    #[arg(long)]
    json: bool,
    /// Check each unknown face for liveness first: a face judged a picture of a face (a print,
    /// a screen) is reported as `spoof` and never named. See `likeness liveness --help`.
    #[arg(long)]
    liveness: bool,
}

/// Runs `likeness recognise`.
pub fn run(args: RecogniseArgs) -> anyhow::Result<()> {
    if !args.known_dir.is_dir() {
        bail!("{}: not a folder of known people", args.known_dir.display());
    }
    let known_files = images_in(&args.known_dir)?;
    let unknown_files = if args.unknown.is_dir() {
        images_in(&args.unknown)?
    } else if args.unknown.exists() {
        vec![args.unknown.clone()]
    } else {
        bail!("{}: no such file or folder", args.unknown.display());
    };
    let faces = args.pipeline.load()?;
    let tolerance = args.tolerance.unwrap_or(faces.embedder().info().tolerance);
    let checker = if args.liveness {
        Some(LivenessChecker::load(&likeness_models::Cache::from_env()?)?)
    } else {
        None
    };
    let jobs = args.jobs as usize;
    let mut failed = 0usize;

    let mut known: Vec<KnownFace> = Vec::new();
    for_each_encoded(
        &faces,
        None,
        &known_files,
        jobs,
        |path, result| match result {
            Ok((mut found, _)) => {
                let name = path
                    .file_stem()
                    .map(|s| s.to_string_lossy().into_owned())
                    .unwrap_or_default();
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
    )?;

    let mut results = Vec::new();
    let mut match_error = None;
    for_each_encoded(
        &faces,
        checker.as_ref(),
        &unknown_files,
        jobs,
        |path, result| {
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
                print_rows(&file, args.show_distance);
            }
        },
    )?;
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

/// face_recognition's CSV rows for one photo: a row per match, `unknown_person` for a face
/// that matches nobody, `no_persons_found` for a photo without faces.
fn print_rows(file: &RecognisedFile, show_distance: bool) {
    let name = file.file.display().to_string();
    if file.faces.is_empty() {
        print_row(&name, NO_PERSONS, None, show_distance);
    }
    for face in &file.faces {
        if face.liveness.as_ref().is_some_and(|c| !c.is_live()) {
            print_row(&name, SPOOF, None, show_distance);
            continue;
        }
        if face.matches.is_empty() {
            print_row(&name, UNKNOWN, None, show_distance);
        }
        for m in &face.matches {
            print_row(&name, &m.name, Some(m.distance), show_distance);
        }
    }
}

fn print_row(file: &str, name: &str, distance: Option<f32>, show_distance: bool) {
    if show_distance {
        let d = distance
            .map(|d| d.to_string())
            .unwrap_or_else(|| "None".into());
        println!("{file},{name},{d}");
    } else {
        println!("{file},{name}");
    }
}

/// The PNG and JPEG files of a folder, sorted by name.
fn images_in(dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let entries = std::fs::read_dir(dir)
        .with_context(|| format!("cannot read the folder {}", dir.display()))?;
    let mut files = Vec::new();
    for entry in entries {
        let path = entry
            .with_context(|| format!("cannot read the folder {}", dir.display()))?
            .path();
        let wanted = path
            .extension()
            .map(|e| e.to_string_lossy().to_ascii_lowercase())
            .is_some_and(|e| IMAGE_EXTENSIONS.contains(&e.as_str()));
        if wanted && path.is_file() {
            files.push(path);
        }
    }
    files.sort();
    Ok(files)
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

/// Encodes `files` on `jobs` threads and hands each result to `sink` in the files' order, as
/// soon as it and all before it are done.
fn for_each_encoded(
    faces: &Faces,
    checker: Option<&LivenessChecker>,
    files: &[PathBuf],
    jobs: usize,
    mut sink: impl FnMut(&Path, Encoded),
) -> anyhow::Result<()> {
    if jobs <= 1 || files.len() <= 1 {
        for path in files {
            sink(path, encode_file(faces, checker, path));
        }
        return Ok(());
    }
    let next = AtomicUsize::new(0);
    let (tx, rx) = mpsc::channel::<(usize, Encoded)>();
    std::thread::scope(|scope| {
        for _ in 0..jobs.min(files.len()) {
            let tx = tx.clone();
            let next = &next;
            scope.spawn(move || {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(path) = files.get(i) else { break };
                    if tx.send((i, encode_file(faces, checker, path))).is_err() {
                        break;
                    }
                }
            });
        }
        drop(tx);
        let mut pending: std::collections::BTreeMap<usize, Encoded> = Default::default();
        let mut done = 0usize;
        for (i, result) in rx {
            pending.insert(i, result);
            while let Some(result) = pending.remove(&done) {
                sink(&files[done], result);
                done += 1;
            }
        }
    });
    Ok(())
}
