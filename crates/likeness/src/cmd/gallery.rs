//! `likeness gallery enrol|list|rename|remove|identify|export|import`: the enrolled people
//! (one-shot recognition: one photo enrols a person, no retraining). The gallery itself is
//! `likeness-gallery`'s store; this file parses arguments, embeds faces and prints.

use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::{Args, Subcommand};
use likeness_face::compat::SPOOF;
use likeness_face::faces::{DEFAULT_TOLERANCE, MODEL_EMBEDDER};
use likeness_face::liveness::{LivenessCheck, LivenessChecker};
use likeness_gallery::{
    Candidate, EnrolRequest, Enrolment, GalleryData, GalleryStore, ImportReport, JsonGallery,
    PersonRef, PersonSummary, Sample, Who,
};
use likeness_nn::draw;
use serde::Serialize;

use likeness_face::annotate::draw_detection;
use likeness_face::report::DetectionOut;

use super::common::{
    AlignWith, FaceSearchArgs, fmt_box, load_faces, open_image, print_json, save_png, single_face,
};

/// The gallery of enrolled people. By default the embedded store `gallery.db` in the model
/// cache's home ($LIKENESS_HOME, default ~/.cache/likeness); an existing `gallery.json` there
/// keeps working until `likeness gallery migrate` moves it.
#[derive(Debug, Args)]
pub struct GalleryArgs {
    /// The gallery: a `.json` file (the original format, read and rewritten whole), any other
    /// path (the embedded store: SQLite and an ANN index, made for up to millions of people), or a
    /// `postgres://user@host/db` URL (PostgreSQL with pgvector). Also $LIKENESS_GALLERY.
    #[arg(long, global = true, value_name = "PATH|URL")]
    gallery: Option<PathBuf>,
    /// Where the landmarks come from: dlib's shape predictor, or BlazeFace's keypoints
    /// (faster, less faithful to dlib).
    #[arg(long, value_enum, default_value_t = AlignWith::Dlib, global = true)]
    align: AlignWith,
    /// Embed with a fine-tuned copy of dlib's network (`likeness train encoder --init dlib`).
    /// The gallery remembers which network enrolled it and refuses to mix or compare others.
    #[arg(long, global = true, value_name = "FILE")]
    encoder: Option<PathBuf>,
    /// Print JSON.
    #[arg(long, global = true)]
    json: bool,
    #[command(flatten)]
    search: FaceSearchArgs,
    #[command(subcommand)]
    command: GalleryCommand,
}

/// What to do with the gallery. People are named by name, or by id written `#N` (a bare
/// number is a name).
#[derive(Debug, Subcommand)]
pub enum GalleryCommand {
    /// Enrol a person from one or more photos (one face each; the largest if several). A new
    /// name creates the person; an existing one gets the new samples, and the output says
    /// which. A face far from the person's other samples, or close to someone else's, is
    /// refused unless --insist. Nothing is written unless every photo gives a face.
    Enrol {
        name: String,
        #[arg(required = true)]
        images: Vec<PathBuf>,
        /// Enrol even a face that looks like someone else's, or unlike the person's others.
        #[arg(long)]
        insist: bool,
        /// Largest distance at which two faces count as the same person (for the checks above).
        #[arg(long, default_value_t = DEFAULT_TOLERANCE, value_parser = crate::args::f32_positive)]
        tolerance: f32,
    },
    /// Everyone enrolled.
    List,
    /// Rename a person (by name or #id).
    Rename { old: String, new: String },
    /// Remove a person (by name or #id) and every sample of theirs.
    Remove { name: String },
    /// Who is in a photo: every face, named or `unknown`.
    Identify {
        image: PathBuf,
        /// Largest distance still taken as a match.
        #[arg(long, default_value_t = DEFAULT_TOLERANCE, value_parser = crate::args::f32_positive)]
        tolerance: f32,
        /// Also list the K nearest people of each face (each at their best sample's
        /// distance).
        #[arg(long, value_name = "K", default_value_t = 1,
              value_parser = clap::value_parser!(u32).range(1..=100))]
        top: u32,
        /// Also write the photo with each face boxed and named (PNG).
        #[arg(long, value_name = "OUT.png", value_parser = crate::args::output_file)]
        draw: Option<PathBuf>,
        /// Check each face for liveness first: a face judged a picture of a face (a print, a
        /// screen) is reported as `spoof`, with no candidates, and never named. See
        /// `likeness liveness --help`.
        #[arg(long)]
        liveness: bool,
    },
    /// Write the whole gallery as JSON (the gallery.json format) to FILE, or stdout with `-`.
    Export {
        #[arg(value_name = "FILE")]
        out: PathBuf,
    },
    /// Add the people of an exported JSON gallery (same names are merged, samples already
    /// present skipped; importing twice changes nothing).
    Import {
        #[arg(value_name = "FILE.json")]
        file: PathBuf,
    },
    /// Move the default `gallery.json` (or the --gallery JSON file) into the embedded store
    /// beside it (`gallery.db`), which becomes the default. The JSON file is left as it was.
    Migrate {
        /// Where to put it instead (a path or a postgres:// URL).
        #[arg(long, value_name = "PATH|URL")]
        to: Option<PathBuf>,
    },
}

#[derive(Serialize)]
struct EnrolOut<'a> {
    gallery: &'a str,
    #[serde(flatten)]
    enrolment: &'a Enrolment,
}

#[derive(Serialize)]
struct ListOut<'a> {
    gallery: &'a str,
    persons: &'a [PersonSummary],
}

#[derive(Serialize)]
struct RenameOut<'a> {
    renamed: &'a str,
    to: &'a str,
    id: u64,
}

#[derive(Serialize)]
struct RemoveOut<'a> {
    removed: &'a str,
    id: u64,
}

#[derive(Serialize)]
struct FaceOut<'a> {
    face: DetectionOut,
    name: Option<&'a str>,
    known: bool,
    nearest: Option<PersonRef>,
    distance: Option<f32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    candidates: Option<&'a [Candidate]>,
    /// With `--liveness`: the face's liveness check (a spoof has no candidates).
    #[serde(skip_serializing_if = "Option::is_none")]
    liveness: Option<&'a LivenessCheck>,
}

#[derive(Serialize)]
struct IdentifyOut<'a> {
    file: &'a Path,
    tolerance: f32,
    faces: Vec<FaceOut<'a>>,
}

#[derive(Serialize)]
struct ImportOut<'a> {
    gallery: &'a str,
    file: &'a Path,
    #[serde(flatten)]
    report: &'a ImportReport,
}

/// The gallery named by --gallery, else $LIKENESS_GALLERY, else the default: `gallery.db` in
/// the home ([`likeness_fs::home_dir`], the one resolver), or the `gallery.json` there while it
/// has not been migrated.
fn chosen(arg: Option<PathBuf>) -> anyhow::Result<PathBuf> {
    if let Some(path) = arg.or_else(|| std::env::var_os("LIKENESS_GALLERY").map(PathBuf::from)) {
        return Ok(path);
    }
    let home = likeness_fs::home_dir()?;
    let (db, json) = (home.join("gallery.db"), home.join("gallery.json"));
    Ok(if !db.exists() && json.exists() {
        json
    } else {
        db
    })
}

/// Opens a gallery: a postgres:// URL, a .json file, or the embedded store.
fn open(spec: &Path) -> anyhow::Result<Box<dyn GalleryStore>> {
    match spec.to_str() {
        Some(s) => Ok(likeness_gallery::open(s)?),
        // not UTF-8, so not a URL
        None if spec.extension().is_some_and(|e| e == "json") => {
            Ok(Box::new(JsonGallery::at(spec)))
        }
        None => Ok(Box::new(likeness_gallery::EmbeddedGallery::open(spec)?)),
    }
}

/// Runs a `gallery` subcommand.
pub fn run(args: GalleryArgs) -> anyhow::Result<()> {
    let spec = chosen(args.gallery.clone())?;
    let store = open(&spec)?;
    let location = store.location();
    let json = args.json;
    if args.gallery.is_none()
        && std::env::var_os("LIKENESS_GALLERY").is_none()
        && spec.extension().is_some_and(|e| e == "json")
        && !matches!(args.command, GalleryCommand::Migrate { .. })
    {
        eprintln!(
            "note: {} is the original JSON gallery, read and rewritten whole on every call; \
             `likeness gallery migrate` moves it into the embedded store (gallery.db)",
            spec.display()
        );
    }
    match args.command {
        GalleryCommand::Enrol {
            name,
            images,
            insist,
            tolerance,
        } => {
            let embedder = embedder_name(args.encoder.as_deref())?;
            let faces = load_faces(args.align, args.encoder.as_deref(), &args.search)?;
            let samples = images
                .iter()
                .map(|path| {
                    let face = single_face(&faces, path)?;
                    Ok(Sample::new(face.embedding.0, path.display().to_string()))
                })
                .collect::<anyhow::Result<Vec<_>>>()?;
            let done = store.enrol(EnrolRequest {
                name,
                embedder,
                samples,
                tolerance,
                insist,
            })?;
            if json {
                print_json(&EnrolOut {
                    gallery: &location,
                    enrolment: &done,
                })?;
            } else {
                for w in &done.warnings {
                    eprintln!("warning: {w} (kept: --insist)");
                }
                if done.created {
                    println!(
                        "enrolled {} (#{}), a new person, from {} photo(s) in {location}",
                        done.name, done.id, done.added
                    );
                } else {
                    println!(
                        "added {} sample(s) to {} (#{}), who now has {}, in {location}",
                        done.added, done.name, done.id, done.samples
                    );
                }
            }
        }
        GalleryCommand::List => {
            let persons = store.list()?;
            if json {
                print_json(&ListOut {
                    gallery: &location,
                    persons: &persons,
                })?;
            } else {
                println!("{location}: {} person(s)", persons.len());
                for p in &persons {
                    println!("  #{} {} ({} sample(s))", p.id, p.name, p.samples.len());
                }
            }
        }
        GalleryCommand::Rename { old, new } => {
            let person = store.rename(&Who::parse(&old)?, &new)?;
            if json {
                print_json(&RenameOut {
                    renamed: &old,
                    to: &person.name,
                    id: person.id,
                })?;
            } else {
                println!("renamed {old} to {person}");
            }
        }
        GalleryCommand::Remove { name } => {
            let person = store.remove(&Who::parse(&name)?)?;
            if json {
                print_json(&RemoveOut {
                    removed: &person.name,
                    id: person.id,
                })?;
            } else {
                println!(
                    "removed {} (#{}) and {} sample(s)",
                    person.name,
                    person.id,
                    person.samples.len()
                );
            }
        }
        GalleryCommand::Identify {
            image,
            tolerance,
            top,
            draw: draw_to,
            liveness,
        } => {
            let embedder = embedder_name(args.encoder.as_deref())?;
            // refuse a mismatched embedder before loading any network
            store.identify(&embedder, &[], 1, tolerance)?;
            let faces = load_faces(args.align, args.encoder.as_deref(), &args.search)?;
            let photo = open_image(&image)?;
            let found = faces
                .encode(&photo)
                .with_context(|| format!("{}: encoding failed", image.display()))?;
            let checks = if liveness {
                let checker = LivenessChecker::load(&likeness_models::Cache::from_env()?)?;
                let detections: Vec<_> = found.iter().map(|f| f.detection.clone()).collect();
                Some(
                    checker
                        .check(&photo, &detections, None)
                        .with_context(|| format!("{}: liveness check failed", image.display()))?,
                )
            } else {
                None
            };
            let spoof = |i: usize| {
                checks
                    .as_ref()
                    .and_then(|c| c.get(i))
                    .is_some_and(|c| !c.is_live())
            };
            // A picture of a face is never searched for, so it can never be named.
            let live: Vec<usize> = (0..found.len()).filter(|&i| !spoof(i)).collect();
            let queries: Vec<Vec<f32>> =
                live.iter().map(|&i| found[i].embedding.0.clone()).collect();
            let mut searched = if queries.is_empty() {
                Vec::new()
            } else {
                store.identify(&embedder, &queries, top as usize, tolerance)?
            }
            .into_iter();
            let answers: Vec<Vec<Candidate>> = (0..found.len())
                .map(|i| {
                    if spoof(i) {
                        Vec::new()
                    } else {
                        searched.next().unwrap_or_default()
                    }
                })
                .collect();
            let mut canvas = draw_to.as_ref().map(|_| photo.clone());
            let mut list = Vec::new();
            if !json {
                println!("{}: {} face(s)", image.display(), found.len());
            }
            for (i, (face, candidates)) in found.iter().zip(&answers).enumerate() {
                let check = checks.as_ref().and_then(|c| c.get(i));
                let best = candidates.first();
                let known = best.is_some_and(|c| c.known);
                let name = match best {
                    _ if spoof(i) => SPOOF,
                    Some(c) if c.known => c.name.as_str(),
                    _ => "unknown",
                };
                if let Some(canvas) = canvas.as_mut() {
                    let color = if known { draw::GREEN } else { draw::RED };
                    draw_detection(canvas, &face.detection, name, color);
                }
                if json {
                    list.push(FaceOut {
                        face: DetectionOut::from(&face.detection),
                        name: known.then_some(name),
                        known,
                        nearest: best.map(|c| PersonRef {
                            id: c.id,
                            name: c.name.clone(),
                        }),
                        distance: best.map(|c| c.distance),
                        candidates: (top > 1 || spoof(i)).then_some(candidates.as_slice()),
                        liveness: check,
                    });
                } else {
                    let nearest = match (check, best) {
                        (Some(c), _) if !c.is_live() => format!(" (liveness score {:.3})", c.score),
                        (_, Some(c)) if !known => {
                            format!(" (nearest {} at {:.4})", c.name, c.distance)
                        }
                        (_, Some(c)) => format!(" (distance {:.4})", c.distance),
                        (_, None) => String::new(),
                    };
                    println!(
                        "  face {i} {}: {name}{nearest}",
                        fmt_box(&face.detection.bbox)
                    );
                    if top > 1 {
                        for c in candidates {
                            println!("      #{} {} at {:.4}", c.id, c.name, c.distance);
                        }
                    }
                }
            }
            if let (Some(canvas), Some(out)) = (canvas, &draw_to) {
                save_png(&canvas, out)?;
            }
            if json {
                print_json(&IdentifyOut {
                    file: &image,
                    tolerance,
                    faces: list,
                })?;
            }
        }
        GalleryCommand::Export { out } => {
            let data = store.export()?;
            let bytes = data.to_bytes()?;
            if out.as_os_str() == "-" {
                use std::io::Write;
                std::io::stdout()
                    .write_all(&bytes)
                    .context("writing the export to stdout")?;
            } else {
                std::fs::write(&out, &bytes)
                    .with_context(|| format!("cannot write {}", out.display()))?;
                eprintln!(
                    "exported {} person(s) from {location} to {}",
                    data.persons.len(),
                    out.display()
                );
            }
        }
        GalleryCommand::Migrate { to } => {
            anyhow::ensure!(
                spec.extension().is_some_and(|e| e == "json"),
                "{location} is not a JSON gallery: nothing to migrate (use `gallery export` and \
                 `gallery import` to move between other stores)"
            );
            let target = to.unwrap_or_else(|| spec.with_extension("db"));
            let data = store.export()?;
            let into = open(&target)?;
            let report = into.import(data)?;
            let moved = into.list()?.len();
            println!(
                "migrated {location} into {}: {} person(s) there now ({} new, {} merged, {} \
                 sample(s) added); {location} was left as it was{}",
                into.location(),
                moved,
                report.created,
                report.merged,
                report.samples,
                if args.gallery.is_none() && std::env::var_os("LIKENESS_GALLERY").is_none() {
                    " and the new store is now the default"
                } else {
                    ""
                }
            );
        }
        GalleryCommand::Import { file } => {
            let bytes =
                std::fs::read(&file).with_context(|| format!("cannot read {}", file.display()))?;
            let data = GalleryData::parse(&bytes, &file.display().to_string())?;
            let report = store.import(data)?;
            if json {
                print_json(&ImportOut {
                    gallery: &location,
                    file: &file,
                    report: &report,
                })?;
            } else {
                println!(
                    "imported {}: {} new person(s), {} merged, {} sample(s) added, {} already \
                     there, into {location}",
                    file.display(),
                    report.created,
                    report.merged,
                    report.samples,
                    report.skipped
                );
            }
        }
    }
    Ok(())
}

/// The name a gallery records for the embedding network: the cache's dlib network, or a
/// fine-tuned file told apart by its content's SHA-256.
fn embedder_name(encoder: Option<&Path>) -> anyhow::Result<String> {
    Ok(match encoder {
        None => MODEL_EMBEDDER.to_string(),
        Some(path) => {
            let digest = likeness_models::fsutil::sha256_file(path)
                .with_context(|| format!("reading the encoder {}", path.display()))?;
            format!("{MODEL_EMBEDDER}+sha256:{}", &digest[..16])
        }
    })
}
