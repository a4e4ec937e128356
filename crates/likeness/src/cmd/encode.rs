//! `likeness encode IMG…`: every face of each photo with its landmarks and 128-D embedding.

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use clap::Args;
use likeness_face::report::EncodeReport;
use likeness_face::{Face, Faces};
use likeness_nn::image::Image;

use super::common::{FacePipelineArgs, fmt_box, open_image, print_json};

/// Encode the faces of photos: for each face its box, dlib's five landmarks and the 128-D
/// embedding that `verify`, `gallery` and `recognise` compare.
///
/// A photo that cannot be read is reported on stderr and the others are still encoded; the
/// exit status is then non-zero.
#[derive(Debug, Args)]
pub struct EncodeArgs {
    /// The photos (PNG or JPEG).
    #[arg(required = true)]
    images: Vec<PathBuf>,
    #[command(flatten)]
    pipeline: FacePipelineArgs,
    /// Print JSON (one object per photo, in a list) instead of text.
    #[arg(long)]
    json: bool,
    /// Also write each face's aligned 150×150 chip (what the embedding network sees) to
    /// DIR/<photo>_face<N>.png: folders of chips for `train encoder` or `probe --model dlib`.
    #[arg(long, value_name = "DIR", value_parser = crate::args::output_dir)]
    chips: Option<PathBuf>,
}

/// Runs `likeness encode`.
pub fn run(args: EncodeArgs) -> anyhow::Result<()> {
    let faces = args.pipeline.load()?;
    let mut failed = 0usize;
    let mut out: Vec<EncodeReport> = Vec::new();
    let stems = chip_stems(&args.images);
    for (path, stem) in args.images.iter().zip(&stems) {
        let result = open_image(path).and_then(|image| {
            let found = faces
                .encode(&image)
                .with_context(|| format!("{}: encoding failed", path.display()))?;
            if let Some(dir) = &args.chips {
                write_chips(&faces, &image, &found, stem, dir)?;
            }
            Ok(found)
        });
        let found = match result {
            Ok(found) => found,
            Err(e) => {
                eprintln!("error: {e:#}");
                failed += 1;
                if args.json {
                    out.push(EncodeReport::Error {
                        file: path.clone(),
                        error: format!("{e:#}"),
                    });
                }
                continue;
            }
        };
        if args.json {
            out.push(EncodeReport::Faces {
                file: path.clone(),
                faces: found.iter().map(Into::into).collect(),
            });
            continue;
        }
        println!("{}: {} face(s)", path.display(), found.len());
        for (i, face) in found.iter().enumerate() {
            let marks: Vec<String> = face
                .landmarks
                .0
                .iter()
                .map(|(x, y)| format!("({x:.0},{y:.0})"))
                .collect();
            let values: Vec<String> = face.embedding.0.iter().map(|v| format!("{v:.6}")).collect();
            println!(
                "  face {i}: box {} score {:.3}\n    landmarks {}\n    embedding {}",
                fmt_box(&face.detection.bbox),
                face.detection.score,
                marks.join(" "),
                values.join(" ")
            );
        }
    }
    if args.json {
        print_json(&out)?;
    }
    if failed > 0 {
        bail!(
            "{failed} of {} file(s) could not be encoded",
            args.images.len()
        );
    }
    Ok(())
}

/// The name each photo's chips start with: its file stem, made unique within the run
/// (`a.jpg` and `a.png`, or `x/a.jpg` and `y/a.jpg`, wrote each other's `a_face0.png`
/// before): the first keeps the stem, later ones get `-2`, `-3`… in the order given.
fn chip_stems(paths: &[PathBuf]) -> Vec<String> {
    let mut taken = std::collections::HashSet::new();
    paths
        .iter()
        .map(|p| {
            let stem = p
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_else(|| "photo".into());
            let mut name = stem.clone();
            let mut n = 1;
            while !taken.insert(name.clone()) {
                n += 1;
                name = format!("{stem}-{n}");
            }
            name
        })
        .collect()
}

/// Writes the chip of every face of `image` into `dir`, named after `stem`.
fn write_chips(
    faces: &Faces,
    image: &Image,
    found: &[Face],
    stem: &str,
    dir: &Path,
) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir)
        .with_context(|| format!("cannot create the chips folder {}", dir.display()))?;
    for (i, face) in found.iter().enumerate() {
        let chip = faces.chip(image, &face.landmarks)?;
        let out = dir.join(format!("{stem}_face{i}.png"));
        chip.image
            .save_png(&out)
            .with_context(|| format!("cannot write the chip {}", out.display()))?;
    }
    Ok(())
}
