//! `likeness gallery enrol|list|rename|remove|identify`: the enrolled people (one-shot
//! recognition: one photo enrols a person, no retraining).

use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::{Args, Subcommand};
use likeness_face::faces::{DEFAULT_TOLERANCE, MODEL_EMBEDDER};
use likeness_face::gallery::{Gallery, Sample};
use likeness_nn::draw;
use serde_json::json;

use super::detect::{
    AlignWith, FaceSearchArgs, detection_json, draw_detection, fmt_box, load_faces, open_image,
    save_png, single_face,
};

/// The gallery of enrolled people: a JSON file, by default `gallery.json` in the model cache's
/// home ($LIKENESS_HOME, default ~/.cache/likeness).
#[derive(Debug, Args)]
pub struct GalleryArgs {
    /// The gallery file to use instead of the default one.
    #[arg(long, global = true, value_name = "FILE")]
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

/// What to do with the gallery.
#[derive(Debug, Subcommand)]
pub enum GalleryCommand {
    /// Enrol a person from one or more photos (one face each; the largest if several). A new
    /// name creates the person; an existing one gets the new samples. Nothing is written
    /// unless every photo gives a face.
    Enrol {
        name: String,
        #[arg(required = true)]
        images: Vec<PathBuf>,
    },
    /// Everyone enrolled.
    List,
    /// Rename a person (by name or id).
    Rename { old: String, new: String },
    /// Remove a person (by name or id).
    Remove { name: String },
    /// Who is in a photo: every face, named or `unknown`.
    Identify {
        image: PathBuf,
        /// Largest distance still taken as a match.
        #[arg(long, default_value_t = DEFAULT_TOLERANCE)]
        tolerance: f32,
        /// Also write the photo with each face boxed and named (PNG).
        #[arg(long, value_name = "OUT.png")]
        draw: Option<PathBuf>,
    },
}

/// Runs a `gallery` subcommand.
pub fn run(args: GalleryArgs) -> anyhow::Result<()> {
    let gallery = Gallery::at(args.gallery.clone().unwrap_or_else(Gallery::default_path));
    let json = args.json;
    match args.command {
        GalleryCommand::Enrol { name, images } => {
            let faces = load_faces(args.align, args.encoder.as_deref(), &args.search)?;
            let samples = images
                .iter()
                .map(|path| {
                    let face = single_face(&faces, path)?;
                    Ok(Sample {
                        embedding: face.embedding,
                        source: path.display().to_string(),
                    })
                })
                .collect::<anyhow::Result<Vec<_>>>()?;
            let count = samples.len();
            let id = gallery.enrol(&name, &embedder_name(args.encoder.as_deref())?, samples)?;
            if json {
                let out =
                    json!({"gallery": gallery.path(), "id": id, "name": name, "samples": count});
                println!("{}", serde_json::to_string_pretty(&out)?);
            } else {
                println!(
                    "enrolled {name} (#{id}) from {count} photo(s) in {}",
                    gallery.path().display()
                );
            }
        }
        GalleryCommand::List => {
            let persons = gallery.list()?;
            if json {
                let list: Vec<_> = persons
                    .iter()
                    .map(|p| {
                        json!({
                            "id": p.id,
                            "name": p.name,
                            "samples": p.samples.iter().map(|s| &s.source).collect::<Vec<_>>(),
                        })
                    })
                    .collect();
                let out = json!({"gallery": gallery.path(), "persons": list});
                println!("{}", serde_json::to_string_pretty(&out)?);
            } else {
                println!("{}: {} person(s)", gallery.path().display(), persons.len());
                for p in &persons {
                    println!("  #{} {} ({} sample(s))", p.id, p.name, p.samples.len());
                }
            }
        }
        GalleryCommand::Rename { old, new } => {
            gallery.rename(&old, &new)?;
            if json {
                println!("{}", json!({"renamed": old, "to": new}));
            } else {
                println!("renamed {old} to {new}");
            }
        }
        GalleryCommand::Remove { name } => {
            let person = gallery.remove(&name)?;
            if json {
                println!("{}", json!({"removed": person.name, "id": person.id}));
            } else {
                println!("removed {} (#{})", person.name, person.id);
            }
        }
        GalleryCommand::Identify {
            image,
            tolerance,
            draw: draw_to,
        } => {
            let data = gallery.load()?;
            data.check_embedder(&embedder_name(args.encoder.as_deref())?)?;
            let faces = load_faces(args.align, args.encoder.as_deref(), &args.search)?;
            let photo = open_image(&image)?;
            let found = faces
                .encode(&photo)
                .with_context(|| format!("{}: encoding failed", image.display()))?;
            let mut canvas = draw_to.as_ref().map(|_| photo.clone());
            let mut list = Vec::new();
            if !json {
                println!("{}: {} face(s)", image.display(), found.len());
            }
            for (i, face) in found.iter().enumerate() {
                let who = data.identify(&face.embedding, tolerance)?;
                let name = match (&who.nearest, who.known) {
                    (Some(p), true) => p.name.clone(),
                    _ => "unknown".to_string(),
                };
                if let Some(canvas) = canvas.as_mut() {
                    let color = if who.known { draw::GREEN } else { draw::RED };
                    draw_detection(canvas, &face.detection, &name, color);
                }
                if json {
                    list.push(json!({
                        "face": detection_json(&face.detection),
                        "name": if who.known { Some(&name) } else { None },
                        "known": who.known,
                        "nearest": who.nearest,
                        "distance": who.distance,
                    }));
                } else {
                    let nearest = match (&who.nearest, who.distance) {
                        (Some(p), Some(d)) if !who.known => {
                            format!(" (nearest {} at {d:.4})", p.name)
                        }
                        (Some(_), Some(d)) => format!(" (distance {d:.4})"),
                        _ => String::new(),
                    };
                    println!(
                        "  face {i} {}: {name}{nearest}",
                        fmt_box(&face.detection.bbox)
                    );
                }
            }
            if let (Some(canvas), Some(out)) = (canvas, &draw_to) {
                save_png(&canvas, out)?;
            }
            if json {
                let out = json!({"file": image, "tolerance": tolerance, "faces": list});
                println!("{}", serde_json::to_string_pretty(&out)?);
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
