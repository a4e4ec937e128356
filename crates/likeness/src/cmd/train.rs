//! `likeness train`: learning the similarity function (the verification head).

use std::path::PathBuf;

use anyhow::{Context, bail};
use clap::{Args, Subcommand};
use likeness_learn::head::{Feature, VerifierHead};
use likeness_learn::pairs;

/// Default L2 penalty on the head's weights: enough to keep separable data finite.
const DEFAULT_L2: f64 = 1e-3;

/// What to train.
#[derive(Debug, Subcommand)]
pub enum TrainCommand {
    /// Fit a verification head ŷ = σ(Σ w_k·φ_k + b) on labelled pairs, φ = |f(a) − f(b)| or
    /// the χ² form, by Newton's method with an L2 penalty; saved as JSON.
    Verifier(VerifierArgs),
}

#[derive(Debug, Args)]
pub struct VerifierArgs {
    /// Labelled pairs: LFW's pairs.txt or a CSV of `a,b,same` lines.
    #[arg(long, value_name = "FILE")]
    pub pairs: PathBuf,
    /// Folder the pairs' image paths are relative to (embedded with the faces pipeline).
    #[arg(long, value_name = "ROOT", required_unless_present = "embeddings")]
    pub images: Option<PathBuf>,
    /// Precomputed embeddings: a JSON object {"path": [v0, v1, ...]}.
    #[arg(long, value_name = "FILE.json", conflicts_with = "images")]
    pub embeddings: Option<PathBuf>,
    /// The pair feature: abs (|a − b|) or chi2 ((a − b)² / (|a| + |b|)).
    #[arg(long, default_value = "abs")]
    pub feature: String,
    /// L2 penalty on the weights.
    #[arg(long, default_value_t = DEFAULT_L2)]
    pub l2: f64,
    /// Where to write the head (JSON).
    #[arg(long, short, value_name = "HEAD.json")]
    pub out: PathBuf,
}

/// Runs a `train` subcommand.
pub fn run(command: TrainCommand) -> anyhow::Result<()> {
    match command {
        TrainCommand::Verifier(args) => verifier(args),
    }
}

fn verifier(args: VerifierArgs) -> anyhow::Result<()> {
    let feature: Feature = args.feature.parse()?;
    let list = pairs::read_pairs(&args.pairs)?;
    let embeddings = match (&args.embeddings, &args.images) {
        (Some(path), _) => pairs::read_embeddings(path)?,
        (None, Some(root)) => super::eval::embed_images(&list.pairs, root)?,
        (None, None) => bail!("give --images ROOT or --embeddings FILE.json"),
    };
    let mut usable = Vec::new();
    let mut same = Vec::new();
    for (i, p) in list.pairs.iter().enumerate() {
        match (embeddings.get(&p.a), embeddings.get(&p.b)) {
            (Some(a), Some(b)) => {
                usable.push((a.as_slice(), b.as_slice()));
                same.push(p.same);
            }
            _ => eprintln!("warning: pair {}: missing embedding; skipped", i + 1),
        }
    }
    let skipped = list.pairs.len() - usable.len();
    if usable.is_empty() {
        bail!("none of the {} pairs could be used", list.pairs.len());
    }
    let head = VerifierHead::fit(feature, &usable, &same, args.l2).context("fitting the head")?;
    let correct = usable
        .iter()
        .zip(&same)
        .map(|((a, b), &s)| Ok((head.probability(a, b)? > 0.5) == s))
        .collect::<anyhow::Result<Vec<bool>>>()?
        .into_iter()
        .filter(|&c| c)
        .count();
    head.save(&args.out)?;
    println!(
        "verifier head ({:?}, {} weights, L2 {}) fitted on {} pairs ({skipped} skipped): \
         training accuracy {:.4}; written to {}",
        feature,
        head.weights.len(),
        args.l2,
        usable.len(),
        correct as f64 / usable.len() as f64,
        args.out.display()
    );
    Ok(())
}
