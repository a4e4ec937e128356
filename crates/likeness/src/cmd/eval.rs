//! `likeness eval`: how good is a distance threshold? LFW's 10-fold protocol and ROC measures
//! on a labelled pair list.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use clap::Args;
use likeness_face::{EmbedderChoice, Faces, FacesConfig};
use likeness_learn::encoder::AnyEncoder;
use likeness_learn::eval::{self, EvalReport, Evaluation, LFW_FOLDS};
use likeness_learn::pairs::{self, EmbeddingMap, Pair, PairList};
use likeness_nn::image::Image;
use likeness_nn::nets::dlib_resnet;
use likeness_nn::weights::WeightMap;

/// Warnings printed one by one before they are only counted.
const MAX_WARNINGS: usize = 10;

/// Evaluate face verification on labelled pairs: 10-fold accuracy ± std (each fold's
/// threshold chosen on the other nine), ROC AUC, EER, TAR at FAR 1e-2 and 1e-3, and the best
/// threshold, which calibrates τ for your own pairs.
#[derive(Debug, Args)]
pub struct EvalArgs {
    #[command(flatten)]
    pub input: PairInputs,
    /// Folds for the cross-validated accuracy (LFW's header sets it for pairs.txt).
    #[arg(long, default_value_t = LFW_FOLDS, value_parser = crate::args::usize_in(2, 1_000))]
    pub folds: usize,
    /// Draw the ROC curve to this PNG.
    #[arg(long, value_name = "OUT.png", value_parser = crate::args::output_file)]
    pub roc: Option<PathBuf>,
    /// Print the results as JSON.
    #[arg(long)]
    pub json: bool,
}

/// A labelled pair list and where its embeddings come from (shared by `eval` and
/// `train verifier`).
#[derive(Debug, Args)]
pub struct PairInputs {
    /// The pairs: LFW's pairs.txt (`name n1 n2` / `name1 n1 name2 n2` lines) or a CSV file of
    /// `a,b,same` lines (same: 1/0, true/false, yes/no; a header line is allowed).
    #[arg(long, value_name = "FILE")]
    pub pairs: PathBuf,
    /// Folder the pairs' image paths are relative to (faces are detected, aligned and
    /// embedded with the faces pipeline; an image with no face is skipped).
    #[arg(long, value_name = "ROOT", required_unless_present = "embeddings")]
    pub images: Option<PathBuf>,
    /// Precomputed embeddings instead of images: a JSON object {"path": [v0, v1, ...]}
    /// keyed by the pairs' paths.
    #[arg(long, value_name = "FILE.json", conflicts_with = "images")]
    pub embeddings: Option<PathBuf>,
    /// Embed the images with an encoder saved by `likeness train encoder` instead of the faces
    /// pipeline's (the small network takes whole images; a fine-tuned dlib network, face chips).
    #[arg(long, value_name = "FILE.safetensors", requires = "images")]
    pub encoder: Option<PathBuf>,
}

impl PairInputs {
    /// Reads the pairs and embeds (or reads the embeddings of) every image they name.
    pub fn load(&self) -> anyhow::Result<(PairList, EmbeddingMap)> {
        let list = pairs::read_pairs(&self.pairs)?;
        let embeddings = match (&self.embeddings, &self.images) {
            (Some(path), _) => pairs::read_embeddings(path)?,
            (None, Some(root)) => embed_images(&list.pairs, root, self.encoder.as_deref())?,
            (None, None) => bail!("give --images ROOT or --embeddings FILE.json"),
        };
        Ok((list, embeddings))
    }
}

/// Runs `likeness eval`.
pub fn run(args: EvalArgs) -> anyhow::Result<()> {
    let (list, embeddings) = args.input.load()?;
    let scored = score(&list.pairs, &embeddings)?;
    let total = list.pairs.len();
    let skipped = total - scored.len();
    if scored.is_empty() {
        bail!("none of the {total} pairs could be scored (every one names a missing image)");
    }
    // LFW's pairs come fold after fold: keep each pair in the fold of its original place.
    // Other lists are dealt round-robin so that every fold sees both kinds.
    let k = match list.folds {
        Some(k) if k >= 2 => k,
        _ => args.folds,
    };
    if k < 2 {
        bail!("--folds must be at least 2");
    }
    if k > scored.len() {
        bail!(
            "{k} folds for {} scored pairs: every fold needs at least one pair (lower --folds)",
            scored.len()
        );
    }
    let folds: Vec<usize> = match list.folds {
        Some(lk) if lk >= 2 => scored.iter().map(|s| s.index * k / total).collect(),
        _ => eval::interleaved_folds(scored.len(), k),
    };
    let distances: Vec<f64> = scored.iter().map(|s| s.distance).collect();
    let same: Vec<bool> = scored.iter().map(|s| s.same).collect();
    let result = eval::evaluate(&distances, &same, &folds)
        .with_context(|| format!("evaluating {} pairs", scored.len()))?;
    if let Some(path) = &args.roc {
        eval::roc_picture(&result)
            .save_png(path)
            .with_context(|| format!("writing {}", path.display()))?;
        eprintln!("ROC curve written to {}", path.display());
    }
    if args.json {
        super::common::print_json(&EvalReport {
            evaluation: result,
            skipped,
            folds: k,
        })?;
    } else {
        print_human(&result, skipped, k);
    }
    Ok(())
}

struct Scored {
    /// Position in the pair list.
    index: usize,
    distance: f64,
    same: bool,
}

/// Distances of the pairs whose two embeddings are known; the others are skipped with a
/// warning.
fn score(list: &[Pair], embeddings: &EmbeddingMap) -> anyhow::Result<Vec<Scored>> {
    let mut out = Vec::with_capacity(list.len());
    let mut warned = 0;
    for (index, pair) in list.iter().enumerate() {
        let (Some(a), Some(b)) = (embeddings.get(&pair.a), embeddings.get(&pair.b)) else {
            let missing = if embeddings.contains_key(&pair.a) {
                &pair.b
            } else {
                &pair.a
            };
            warned += 1;
            if warned <= MAX_WARNINGS {
                eprintln!(
                    "warning: pair {}: no embedding for {missing}; skipped",
                    index + 1
                );
            }
            continue;
        };
        if a.len() != b.len() {
            bail!("embeddings of {} and {} differ in length", pair.a, pair.b);
        }
        let distance = a
            .iter()
            .zip(b)
            .map(|(x, y)| (*x as f64 - *y as f64).powi(2))
            .sum::<f64>()
            .sqrt();
        out.push(Scored {
            index,
            distance,
            same: pair.same,
        });
    }
    if warned > MAX_WARNINGS {
        eprintln!(
            "warning: … and {} more pairs skipped",
            warned - MAX_WARNINGS
        );
    }
    if warned > 0 {
        eprintln!("warning: {warned} of {} pairs skipped", list.len());
    }
    Ok(out)
}

/// What turns an image into an embedding.
enum ImageEmbedder {
    /// The faces pipeline with its embedder (dlib's, or a fine-tuned copy given with
    /// `--encoder`): the most confident face's embedding.
    Faces(Box<Faces>),
    /// A small encoder trained by `train encoder`, on the whole image (no face detection).
    Small(AnyEncoder),
}

impl ImageEmbedder {
    fn load(encoder: Option<&Path>) -> anyhow::Result<Self> {
        let faces = |choice: EmbedderChoice| -> anyhow::Result<Self> {
            let cache = likeness_models::Cache::from_env()?;
            let config = FacesConfig::default().with_embedder(choice);
            let faces = Faces::new(&config, &cache)
                .context("loading the faces pipeline (run `likeness models fetch` first)")?;
            Ok(ImageEmbedder::Faces(Box::new(faces)))
        };
        let Some(path) = encoder else {
            return faces(EmbedderChoice::Dlib);
        };
        let weights = WeightMap::load(path)
            .with_context(|| format!("loading the encoder {}", path.display()))?;
        if weights.meta("format") == Some(dlib_resnet::FORMAT) {
            return faces(EmbedderChoice::DlibFile(path.to_path_buf()));
        }
        let net = AnyEncoder::load(&weights, &likeness_nn::device::cpu())
            .with_context(|| format!("loading the encoder {}", path.display()))?;
        Ok(ImageEmbedder::Small(net))
    }

    fn embed(&self, image: &Image) -> anyhow::Result<Option<Vec<f32>>> {
        Ok(match self {
            ImageEmbedder::Faces(faces) => faces
                .encode(image)?
                .into_iter()
                .next()
                .map(|f| f.embedding.0),
            ImageEmbedder::Small(net) => net.embed(std::slice::from_ref(image))?.into_iter().next(),
        })
    }
}

/// Embeds every image the pairs name (with the faces pipeline, the first, most confident
/// face of each; or with `encoder`); unreadable images and images without a face are left
/// out, with a warning.
fn embed_images(
    list: &[Pair],
    root: &Path,
    encoder: Option<&Path>,
) -> anyhow::Result<EmbeddingMap> {
    let embedder = ImageEmbedder::load(encoder)?;
    let mut names: Vec<&str> = list
        .iter()
        .flat_map(|p| [p.a.as_str(), p.b.as_str()])
        .collect();
    names.sort_unstable();
    names.dedup();
    let mut map = BTreeMap::new();
    let (mut unreadable, mut faceless) = (0usize, 0usize);
    for (i, name) in names.iter().enumerate() {
        let path = root.join(name);
        let image = match Image::open(&path) {
            Ok(image) => image,
            Err(e) => {
                unreadable += 1;
                if unreadable <= MAX_WARNINGS {
                    eprintln!("warning: {}: {e}; skipped", path.display());
                }
                continue;
            }
        };
        let found = embedder
            .embed(&image)
            .with_context(|| format!("embedding {}", path.display()))?;
        match found {
            Some(embedding) => {
                map.insert(name.to_string(), embedding);
            }
            None => {
                faceless += 1;
                if faceless <= MAX_WARNINGS {
                    eprintln!("warning: {}: no face found; skipped", path.display());
                }
            }
        }
        if (i + 1) % 50 == 0 {
            eprintln!("embedded {}/{} images", i + 1, names.len());
        }
    }
    if unreadable + faceless > 0 {
        eprintln!(
            "warning: {unreadable} unreadable image(s), {faceless} without a face, of {}",
            names.len()
        );
    }
    Ok(map)
}

fn print_human(e: &Evaluation, skipped: usize, k: usize) {
    println!(
        "pairs: {} ({} same, {} different), {skipped} skipped",
        e.pairs, e.positives, e.negatives
    );
    println!(
        "{k}-fold accuracy: {:.4} ± {:.4}   (fold thresholds {:.4} … {:.4})",
        e.accuracy,
        e.accuracy_std,
        e.fold_thresholds
            .iter()
            .copied()
            .fold(f64::INFINITY, f64::min),
        e.fold_thresholds
            .iter()
            .copied()
            .fold(f64::NEG_INFINITY, f64::max),
    );
    println!("ROC AUC: {:.4}", e.auc);
    println!("EER: {:.4} (threshold {:.4})", e.eer, e.eer_threshold);
    for t in &e.tar_at_far {
        println!(
            "TAR @ FAR {:.0e}: {:.4} (threshold {:.4})",
            t.far, t.tar, t.threshold
        );
    }
    println!(
        "best threshold: {:.4} (accuracy {:.4} on all pairs)",
        e.best_threshold, e.best_accuracy
    );
}
