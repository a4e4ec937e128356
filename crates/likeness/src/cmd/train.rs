//! `likeness train`: learning the similarity function (the verification head).

use std::path::PathBuf;

use anyhow::{Context, bail};
use clap::{Args, Subcommand};
use indicatif::{ProgressBar, ProgressStyle};
use likeness_learn::digits::{Digits, OneShotConfig, OneShotReport, one_shot};
use likeness_learn::encoder::{self, AnyEncoder, Encoder, Progress, TrainConfig};
use likeness_learn::eval::LFW_FOLDS;
use likeness_learn::head::{Feature, VerifierHead};
use likeness_nn::image::Image;
use likeness_nn::weights::WeightMap;

/// Adam's default learning rate for fine-tuning dlib's network: measured on the sample faces,
/// 1e-3 (the small network's) blows the loss up to thousands within ten steps when more than
/// the last blocks train; 1e-5 lowers it steadily.
const DLIB_FINE_TUNE_LR: f64 = 1e-5;

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
    /// Train an embedding network with the triplet loss on a folder of identities (one
    /// sub-folder per identity, several images each): a small ConvNet from scratch, or dlib's
    /// face network fine-tuned (`--init dlib`); saved as safetensors that `eval` and `train
    /// verifier` load with `--encoder`.
    Encoder(EncoderArgs),
}

#[derive(Debug, Args)]
pub struct EncoderArgs {
    /// One sub-folder per identity, with its images (jpg/png).
    #[arg(long, value_name = "DIR")]
    pub data: PathBuf,
    /// Where to write the encoder (safetensors; rewritten after every epoch as a checkpoint).
    #[arg(long, short, value_name = "FILE.safetensors", value_parser = crate::args::output_file)]
    pub out: PathBuf,
    /// Detect and align faces with the faces pipeline (an image without a face is used as
    /// it is). Implied by `--init dlib`.
    #[arg(long)]
    pub faces: bool,
    /// The network: `small` (a ConvNet trained from scratch) or `dlib` (dlib's face network
    /// from the model cache, fine-tuned on 150 px aligned face chips).
    #[arg(long, value_enum, default_value_t = Init::Small)]
    pub init: Init,
    /// With `--init dlib`: train only the last N residual blocks and the final projection
    /// (the rest frozen: much faster on a CPU). Default: every layer. Recorded in the
    /// checkpoint: `--resume` continues with the recorded value and refuses another.
    #[arg(long, value_name = "N", value_parser = crate::args::usize_in(0, 1_000))]
    pub train_last: Option<usize>,
    /// Continue from a checkpoint written by this command (weights, the optimiser's moments,
    /// the epoch count and the random stream): the run goes on as if it had not stopped.
    #[arg(long, value_name = "FILE.safetensors")]
    pub resume: Option<PathBuf>,
    /// Epochs in all (a resumed run continues the count).
    #[arg(long, default_value_t = TrainConfig::default().epochs, value_parser = crate::args::usize_in(1, 1_000_000))]
    pub epochs: usize,
    #[arg(long, default_value_t = TrainConfig::default().steps_per_epoch, value_parser = crate::args::usize_in(1, 10_000_000))]
    pub steps: usize,
    /// Identities per batch (P).
    #[arg(long, default_value_t = TrainConfig::default().identities, value_parser = crate::args::usize_in(2, 100_000))]
    pub identities: usize,
    /// Images per identity in a batch (K).
    #[arg(long, default_value_t = TrainConfig::default().per_identity, value_parser = crate::args::usize_in(2, 10_000))]
    pub per_identity: usize,
    /// Triplet selection: semi-hard, hardest or random.
    #[arg(long, default_value = "semi-hard")]
    pub mining: String,
    #[arg(long, default_value_t = TrainConfig::default().margin, value_parser = crate::args::f64_positive)]
    pub margin: f64,
    /// Adam's learning rate (default: 1e-3 for the small network, 1e-5 for fine-tuning dlib's).
    #[arg(long, value_parser = crate::args::f64_positive)]
    pub lr: Option<f64>,
    /// Share of identities held out and scored after every epoch.
    #[arg(long, default_value_t = TrainConfig::default().validation, value_parser = crate::args::f64_in(0.0, 0.9))]
    pub validation: f64,
    /// Turn off flip/crop/colour augmentation.
    #[arg(long)]
    pub no_augment: bool,
    #[arg(long, default_value_t = TrainConfig::default().seed)]
    pub seed: u64,
    /// Print the epochs' reports as JSON on stdout (progress stays on stderr).
    #[arg(long)]
    pub json: bool,
}

/// Where `train encoder` starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Init {
    Small,
    Dlib,
}

#[derive(Debug, Args)]
pub struct DigitsArgs {
    /// Training steps (each a batch of 6 digits × --symmetries classes × --per-class images).
    #[arg(long, default_value_t = OneShotConfig::default().steps, value_parser = crate::args::usize_in(1, 10_000_000))]
    pub steps: usize,
    #[arg(long, default_value_t = OneShotConfig::default().per_class, value_parser = crate::args::usize_in(2, 10_000))]
    pub per_class: usize,
    /// Triplet selection: semi-hard, hardest or random.
    #[arg(long, default_value = "semi-hard")]
    pub mining: String,
    /// Triplet margin α (squared distances between unit-length embeddings).
    #[arg(long, default_value_t = OneShotConfig::default().margin, value_parser = crate::args::f64_positive)]
    pub margin: f64,
    /// Adam's learning rate.
    #[arg(long, default_value_t = OneShotConfig::default().learning_rate, value_parser = crate::args::f64_positive)]
    pub lr: f64,
    /// Random choices of the single example per held-out class, averaged over.
    #[arg(long, default_value_t = OneShotConfig::default().trials, value_parser = crate::args::usize_in(1, 100_000))]
    pub trials: usize,
    /// Symmetries of the square (1–8) whose images of the training digits count as further
    /// training classes (1: the digits alone).
    #[arg(long, default_value_t = OneShotConfig::default().symmetries, value_parser = crate::args::usize_in(1, 8))]
    pub symmetries: usize,
    /// Compare raw (uncentred) embeddings in the nearest-neighbour search.
    #[arg(long)]
    pub no_centre: bool,
    #[arg(long, default_value_t = OneShotConfig::default().seed)]
    pub seed: u64,
    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct VerifierArgs {
    #[command(flatten)]
    pub input: super::eval::PairInputs,
    /// The pair feature: abs (|a − b|) or chi2 ((a − b)² / (|a| + |b|)).
    #[arg(long, default_value = "abs")]
    pub feature: String,
    /// L2 penalty on the weights.
    #[arg(long, default_value_t = DEFAULT_L2, value_parser = crate::args::f64_non_negative)]
    pub l2: f64,
    /// Where to write the head (JSON).
    #[arg(long, short, value_name = "HEAD.json", value_parser = crate::args::output_file)]
    pub out: PathBuf,
}

/// Runs a `train` subcommand.
pub fn run(command: TrainCommand) -> anyhow::Result<()> {
    match command {
        TrainCommand::Verifier(args) => verifier(args),
        TrainCommand::Digits(args) => digits(args),
        TrainCommand::Encoder(args) => encoder(args),
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
        symmetries: args.symmetries,
        centre: !args.no_centre,
        ..OneShotConfig::default()
    };
    eprintln!(
        "training on digits {:?}, one-shot on {:?}: {} steps of {} images ({:?} mining)",
        config.train_classes,
        config.test_classes,
        config.steps,
        config.per_class * config.train_classes.len() * config.symmetries.max(1),
        config.mining
    );
    let (_, r) = one_shot(&data, &config)?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&r)?);
        return Ok(());
    }
    println!("{}", digits_summary(&r));
    Ok(())
}

/// The one-shot digits result as a person reads it (the command's output, the demo's report).
pub fn digits_summary(r: &OneShotReport) -> String {
    let curve: Vec<String> = r.loss_curve.iter().map(|l| format!("{l:.4}")).collect();
    format!(
        "triplet loss by tenth of training: {}\n\
         trained in {:.1} s: {:.0} images/s, {:.1} triplets per step\n\
         one-shot top-1 on {} held-out images, {} trials (one example per class):\n  \
         triplet-trained CNN: {:.3} ± {:.3}\n  \
         raw-pixel NN:        {:.3} ± {:.3}\n  \
         untrained CNN:       {:.3}",
        curve.join(" "),
        r.train_seconds,
        r.images_per_second,
        r.triplets_per_step,
        r.test_images,
        r.trials,
        r.cnn_top1,
        r.cnn_top1_std,
        r.pixel_top1,
        r.pixel_top1_std,
        r.untrained_top1
    )
}

fn verifier(args: VerifierArgs) -> anyhow::Result<()> {
    let feature: Feature = args.feature.parse()?;
    let (list, embeddings) = args.input.load()?;
    let mut usable = Vec::new();
    let mut same = Vec::new();
    let mut kept = Vec::new();
    for (i, p) in list.pairs.iter().enumerate() {
        match (embeddings.get(&p.a), embeddings.get(&p.b)) {
            (Some(a), Some(b)) => {
                usable.push((a.as_slice(), b.as_slice()));
                same.push(p.same);
                kept.push(i);
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
    // Training accuracy flatters: also the accuracy on held-out folds (LFW's folds for its
    // pairs.txt, else pairs dealt round-robin into ten).
    let folds = match list.folds {
        Some(k) if k >= 2 => kept.iter().map(|&i| i * k / list.pairs.len()).collect(),
        _ => likeness_learn::eval::interleaved_folds(usable.len(), LFW_FOLDS),
    };
    match likeness_learn::head::cross_validate(feature, &usable, &same, args.l2, &folds) {
        Ok(acc) => {
            let (mean, std) = likeness_learn::eval::mean_std(&acc);
            println!("{}-fold held-out accuracy: {mean:.4} ± {std:.4}", acc.len());
        }
        Err(e) => eprintln!("warning: no cross-validation: {e}"),
    }
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

/// Images labelled by identity index, and the identities' names.
type Identities = (Vec<(usize, Image)>, Vec<String>);

/// The identity folders' images, as (identity, image), with the identities' names.
fn read_identities(args: &EncoderArgs) -> anyhow::Result<Identities> {
    let faces = if args.faces || args.init == Init::Dlib {
        let cache = likeness_models::Cache::from_env()?;
        Some(
            likeness_face::faces::Faces::load(&cache)
                .context("loading the faces pipeline (run `likeness models fetch` first)")?,
        )
    } else {
        None
    };
    let mut folders: Vec<PathBuf> = std::fs::read_dir(&args.data)
        .with_context(|| format!("reading {}", args.data.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_dir())
        .collect();
    folders.sort();
    let (mut data, mut names) = (Vec::new(), Vec::new());
    let (mut unreadable, mut lonely, mut aligned) = (0usize, 0usize, 0usize);
    for folder in folders {
        let mut files: Vec<PathBuf> = std::fs::read_dir(&folder)
            .with_context(|| format!("reading {}", folder.display()))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.is_file())
            .collect();
        files.sort();
        let mut images = Vec::new();
        for file in files {
            match Image::open(&file) {
                Ok(image) => {
                    let chip = match &faces {
                        Some(f) => f.best_chip(&image)?.map(|c| c.image),
                        None => None,
                    };
                    aligned += usize::from(chip.is_some());
                    images.push(chip.unwrap_or(image));
                }
                Err(e) => {
                    unreadable += 1;
                    eprintln!("warning: {}: {e}; skipped", file.display());
                }
            }
        }
        let name = folder
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        if images.len() < 2 {
            lonely += 1;
            eprintln!(
                "warning: identity {name:?} has {} image(s): it cannot form positives; left out",
                images.len()
            );
            continue;
        }
        let id = names.len();
        names.push(name);
        data.extend(images.into_iter().map(|i| (id, i)));
    }
    eprintln!(
        "{} identities, {} images ({unreadable} unreadable skipped, {lonely} identities left \
         out{})",
        names.len(),
        data.len(),
        if faces.is_some() {
            format!(", {aligned} aligned faces")
        } else {
            String::new()
        }
    );
    Ok((data, names))
}

fn encoder(args: EncoderArgs) -> anyhow::Result<()> {
    if args.train_last.is_some() && args.init != Init::Dlib {
        bail!("--train-last applies to --init dlib");
    }
    let mut config = TrainConfig {
        epochs: args.epochs,
        steps_per_epoch: args.steps,
        identities: args.identities,
        per_identity: args.per_identity,
        margin: args.margin,
        mining: args.mining.parse()?,
        learning_rate: args.lr.unwrap_or(match args.init {
            Init::Small => TrainConfig::default().learning_rate,
            Init::Dlib => DLIB_FINE_TUNE_LR,
        }),
        validation: args.validation,
        augment: !args.no_augment,
        seed: args.seed,
        train_last: args.train_last,
        ..TrainConfig::default()
    };
    let device = likeness_nn::device::cpu_autodiff();
    // The starting network: a checkpoint, dlib's cached network, or fresh weights.
    let (start, checkpoint) = match &args.resume {
        Some(path) => {
            let weights = WeightMap::load(path)?;
            let net = AnyEncoder::load(&weights, &device)
                .with_context(|| format!("loading {}", path.display()))?;
            let wanted = if net.wants_face_chips() {
                Init::Dlib
            } else {
                Init::Small
            };
            if wanted != args.init {
                bail!(
                    "{} holds the {wanted:?} network: give --init {}",
                    path.display(),
                    format!("{wanted:?}").to_lowercase()
                );
            }
            // The part of the network the checkpoint trained, unless told otherwise (refused:
            // it would silently make another run).
            config.train_last = encoder::resumed_train_last(&weights, args.train_last)
                .with_context(|| format!("resuming from {}", path.display()))?;
            match (config.train_last, args.train_last) {
                (Some(n), None) => eprintln!(
                    "resuming from {} (the last {n} blocks train, as recorded)",
                    path.display()
                ),
                _ => eprintln!("resuming from {}", path.display()),
            }
            (net, Some(weights))
        }
        None => match args.init {
            Init::Small => (
                AnyEncoder::Small(Encoder::init(&config.net, args.seed, &device)?),
                None,
            ),
            Init::Dlib => {
                let cache = likeness_models::Cache::from_env()?;
                let path = cache
                    .model_path("dlib_resnet")
                    .map_err(|e| anyhow::anyhow!("{e} (run `likeness models fetch`)"))?;
                let weights = WeightMap::load(&path)?;
                (AnyEncoder::load(&weights, &device)?, None)
            }
        },
    };
    let (data, _names) = read_identities(&args)?;
    let started = std::time::Instant::now();
    let reports = match start {
        AnyEncoder::Small(net) => run_training(&data, &config, net, checkpoint.as_ref(), &args)?,
        AnyEncoder::Dlib(net) => run_training(&data, &config, *net, checkpoint.as_ref(), &args)?,
    };
    if args.json {
        println!("{}", serde_json::to_string_pretty(&reports)?);
    } else {
        println!(
            "trained {} epochs in {:.1} s; encoder written to {}",
            reports.len(),
            started.elapsed().as_secs_f64(),
            args.out.display()
        );
    }
    Ok(())
}

/// The training loop with a progress bar on stderr and a checkpoint after every epoch.
fn run_training<N: encoder::TripletNet>(
    data: &[(usize, Image)],
    config: &TrainConfig,
    net: N,
    checkpoint: Option<&WeightMap>,
    args: &EncoderArgs,
) -> anyhow::Result<Vec<encoder::EpochReport>> {
    let total = (config.epochs * config.steps_per_epoch) as u64;
    let bar = ProgressBar::new(total);
    bar.set_style(
        ProgressStyle::with_template("{bar:30} {pos}/{len} batches  ETA {eta}  {msg}")
            .context("progress bar template")?,
    );
    let (_, reports) = encoder::train(data, config, net, checkpoint, |p| {
        match p {
            Progress::Batch {
                epoch,
                step,
                steps,
                loss,
                images_per_second,
            } => {
                bar.set_position(((epoch - 1) * steps + step) as u64);
                let loss = loss.map_or("-".to_string(), |l| format!("{l:.4}"));
                bar.set_message(format!(
                    "epoch {epoch}  loss {loss}  {images_per_second:.1} images/s"
                ));
            }
            Progress::Epoch { report, checkpoint } => {
                let r = report;
                let validation = match (r.validation_auc, r.validation_accuracy) {
                    (Some(auc), Some(acc)) => {
                        format!("validation AUC {auc:.4}, accuracy {acc:.4}")
                    }
                    _ => "no validation identities".to_string(),
                };
                bar.suspend(|| {
                    eprintln!(
                        "epoch {}/{}: loss {:.4}, {:.1} triplets/step, {:.1} images/s, \
                         {validation}",
                        r.epoch, config.epochs, r.loss, r.triplets_per_step, r.images_per_second
                    )
                });
                // The checkpoint: the latest weights and optimiser state, every epoch.
                checkpoint.save(&args.out)?;
            }
        }
        Ok(())
    })?;
    bar.finish_and_clear();
    Ok(reports)
}
