//! `likeness train`: learning the similarity function (the verification head).

use std::path::PathBuf;

use anyhow::{Context, bail};
use clap::{Args, Subcommand};
use likeness_learn::digits::{Digits, OneShotConfig, one_shot};
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
    /// One-shot demonstration on scikit-learn's handwritten digits: a small Siamese CNN is
    /// trained with the triplet loss on digits 0–5, then recognises 6–9 from one example
    /// each; compared with raw-pixel nearest neighbour and the untrained network on the
    /// same random examples.
    Digits(DigitsArgs),
}

#[derive(Debug, Args)]
pub struct DigitsArgs {
    /// Training steps (each a batch of 6 classes × --per-class images).
    #[arg(long, default_value_t = OneShotConfig::default().steps)]
    pub steps: usize,
    #[arg(long, default_value_t = OneShotConfig::default().per_class)]
    pub per_class: usize,
    /// Triplet selection: semi-hard, hardest or random.
    #[arg(long, default_value = "semi-hard")]
    pub mining: String,
    /// Triplet margin α (squared distances between unit-length embeddings).
    #[arg(long, default_value_t = OneShotConfig::default().margin)]
    pub margin: f64,
    /// Adam's learning rate.
    #[arg(long, default_value_t = OneShotConfig::default().learning_rate)]
    pub lr: f64,
    /// Random choices of the single example per held-out class, averaged over.
    #[arg(long, default_value_t = OneShotConfig::default().trials)]
    pub trials: usize,
    #[arg(long, default_value_t = OneShotConfig::default().seed)]
    pub seed: u64,
    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,
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
        TrainCommand::Digits(args) => digits(args),
    }
}

fn digits(args: DigitsArgs) -> anyhow::Result<()> {
    let cache = likeness_models::Cache::from_env()?;
    let path = cache
        .sample_path("digits.csv.gz")
        .map_err(|e| anyhow::anyhow!("{e} (run `likeness models fetch`)"))?;
    let data = Digits::load(&path)?;
    let config = OneShotConfig {
        steps: args.steps,
        per_class: args.per_class,
        mining: args.mining.parse()?,
        margin: args.margin,
        learning_rate: args.lr,
        trials: args.trials,
        seed: args.seed,
        ..OneShotConfig::default()
    };
    eprintln!(
        "training on digits {:?}, one-shot on {:?}: {} steps of {} images ({:?} mining)",
        config.train_classes,
        config.test_classes,
        config.steps,
        config.per_class * config.train_classes.len(),
        config.mining
    );
    let (_, r) = one_shot(&data, &config)?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&r)?);
        return Ok(());
    }
    let curve: Vec<String> = r.loss_curve.iter().map(|l| format!("{l:.3}")).collect();
    println!("triplet loss by tenth of training: {}", curve.join(" "));
    println!(
        "trained in {:.1} s: {:.0} images/s, {:.1} triplets per step",
        r.train_seconds, r.images_per_second, r.triplets_per_step
    );
    println!(
        "one-shot top-1 on {} held-out images, {} trials (one example per class):",
        r.test_images, r.trials
    );
    println!(
        "  triplet-trained CNN: {:.3} ± {:.3}",
        r.cnn_top1, r.cnn_top1_std
    );
    println!(
        "  raw-pixel NN:        {:.3} ± {:.3}",
        r.pixel_top1, r.pixel_top1_std
    );
    println!("  untrained CNN:       {:.3}", r.untrained_top1);
    Ok(())
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
