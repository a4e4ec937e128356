//! The training loop: triplet mining per batch, Adam steps, validation after each epoch,
//! progress, and resumable checkpoints.

use super::checkpoint::*;
use super::*;

/// Settings of [`train`].
#[derive(Debug, Clone, PartialEq)]
pub struct TrainConfig {
    /// Sizes of a fresh small network (a resumed or fine-tuned one brings its own).
    pub net: EncoderConfig,
    /// Epochs in all (a resumed run continues the count).
    pub epochs: usize,
    /// Batches per epoch.
    pub steps_per_epoch: usize,
    /// Identities per batch (P) and images per identity (K).
    pub identities: usize,
    pub per_identity: usize,
    pub margin: f64,
    pub mining: Mining,
    pub learning_rate: f64,
    /// Learning rate multiplied by this after every epoch (step schedule).
    pub lr_decay: f64,
    /// Share of identities held out for validation.
    pub validation: f64,
    pub augment: bool,
    pub seed: u64,
    /// Train only the last N residual blocks of dlib's network and its projection, the rest
    /// frozen (`None`: every parameter). Recorded in checkpoints: a resumed run must train
    /// the same part ([`resumed_train_last`]).
    pub train_last: Option<usize>,
}

impl Default for TrainConfig {
    fn default() -> Self {
        Self {
            net: EncoderConfig::default(),
            epochs: 5,
            steps_per_epoch: 50,
            identities: 8,
            per_identity: 4,
            margin: crate::triplet::DEFAULT_MARGIN,
            mining: Mining::SemiHard,
            learning_rate: 1e-3,
            lr_decay: 0.7,
            validation: 0.2,
            augment: true,
            seed: 1,
            train_last: None,
        }
    }
}

/// One epoch's record.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EpochReport {
    pub epoch: usize,
    pub loss: f64,
    pub triplets_per_step: f64,
    pub images_per_second: f64,
    /// Verification on all pairs of validation images: ROC AUC and best accuracy.
    pub validation_auc: Option<f64>,
    pub validation_accuracy: Option<f64>,
}

/// What [`train`] tells its caller as it goes.
#[derive(Debug)]
pub enum Progress<'a> {
    /// A batch is done (`step` from 1 to `steps` within the epoch).
    Batch {
        epoch: usize,
        step: usize,
        steps: usize,
        /// This batch's triplet loss (`None`: no triplet was mined).
        loss: Option<f64>,
        /// Images through forward and backward per second so far this epoch.
        images_per_second: f64,
    },
    /// An epoch is done: its report, and the checkpoint to save (the network's weights with
    /// the optimiser's moments, the epoch count and the random stream's state).
    Epoch {
        report: &'a EpochReport,
        checkpoint: &'a WeightMap,
    },
}

/// Trains `net` (on the autodiff device; the part [`TrainConfig::train_last`] says, the rest
/// frozen) on `(identity, image)` examples. With `resume` (a checkpoint [`Progress::Epoch`]
/// gave, whose weights `net` already holds) the optimiser's moments, the epoch count and the
/// random stream are restored, so the run continues exactly as if it had not stopped; a
/// checkpoint trained with another seed or another `train_last` is refused.
pub fn train<N: TripletNet>(
    data: &[(usize, Image)],
    config: &TrainConfig,
    mut net: N,
    resume: Option<&WeightMap>,
    mut progress: impl FnMut(Progress<'_>) -> Result<()>,
) -> Result<(N, Vec<EpochReport>)> {
    if config.identities < 2 || config.per_identity < 2 {
        return Err(LearnError::Options(
            "a batch needs ≥ 2 identities and ≥ 2 images of each".into(),
        ));
    }
    // The split depends on the seed alone, so a resumed run holds out the same identities.
    let mut rng = SplitMix64::new(config.seed);
    let ids = data.iter().map(|d| d.0).max().map_or(0, |m| m + 1);
    let mut by_id: Vec<Vec<usize>> = vec![Vec::new(); ids];
    for (i, (id, _)) in data.iter().enumerate() {
        by_id[*id].push(i);
    }
    let mut usable: Vec<usize> = (0..ids).filter(|&i| by_id[i].len() >= 2).collect();
    rng.shuffle(&mut usable);
    let n_val = ((usable.len() as f64 * config.validation).round() as usize).min(usable.len());
    let (val_ids, train_ids) = usable.split_at(n_val);
    if train_ids.len() < 2 {
        return Err(LearnError::Data(format!(
            "{} identities with ≥ 2 images for training: at least 2 are needed",
            train_ids.len()
        )));
    }
    let mut adam = Adam::new(AdamConfig::new(config.learning_rate));
    let mut done = 0;
    if let Some(checkpoint) = resume {
        adam.restore_from(checkpoint)?;
        let meta = |key: &str| -> Result<u64> {
            checkpoint
                .meta(key)
                .and_then(|v| v.parse().ok())
                .ok_or_else(|| LearnError::Data(format!("the checkpoint lacks `{key}`")))
        };
        if optim::has_state(checkpoint) {
            // Another seed would hold out other identities and make another run.
            let seed = meta(SEED_KEY)?;
            if seed != config.seed {
                return Err(LearnError::Options(format!(
                    "the checkpoint was trained with seed {seed}: resume with the same seed"
                )));
            }
            // Another trained part would continue another run.
            if let Some(recorded) = recorded_train_last(checkpoint)?
                && recorded != config.train_last
            {
                return Err(LearnError::Options(format!(
                    "the checkpoint was trained with {}, the configuration asks for {}",
                    describe_train_last(recorded),
                    describe_train_last(config.train_last)
                )));
            }
            done = usize::try_from(meta(EPOCH_KEY)?).unwrap_or(usize::MAX);
            rng = SplitMix64::new(meta(RNG_KEY)?);
        }
    }
    net = net.train_last(config.train_last)?;
    let size = net.input_size();
    let planar: Vec<Vec<f32>> = data.iter().map(|(_, img)| to_planar(img, size)).collect();
    let device = cpu_autodiff();
    let p = config.identities.min(train_ids.len());
    let mut reports = Vec::new();
    for epoch in done + 1..=config.epochs {
        adam.config.lr = config.learning_rate
            * config
                .lr_decay
                .powi(i32::try_from(epoch - 1).unwrap_or(i32::MAX));
        let started = Instant::now();
        let (mut loss_sum, mut losses, mut triplet_count, mut images) = (0.0, 0usize, 0usize, 0);
        for step in 1..=config.steps_per_epoch {
            let mut chosen = train_ids.to_vec();
            rng.shuffle(&mut chosen);
            let (mut batch, mut labels) = (Vec::new(), Vec::new());
            for &id in &chosen[..p] {
                let mut pool = by_id[id].clone();
                rng.shuffle(&mut pool);
                for &i in pool.iter().take(config.per_identity) {
                    batch.push(if config.augment {
                        augment(&planar[i], size, &mut rng)
                    } else {
                        planar[i].clone()
                    });
                    labels.push(id);
                }
            }
            let refs: Vec<&[f32]> = batch.iter().map(Vec::as_slice).collect();
            let x = stack(&refs, size, &device);
            images += batch.len();
            let (stepped, outcome) = triplet_step(net, &mut adam, x, &labels, config, &mut rng)?;
            net = stepped;
            let batch_loss = outcome.map(|(loss, count)| {
                triplet_count += count;
                loss_sum += loss;
                losses += 1;
                loss
            });
            progress(Progress::Batch {
                epoch,
                step,
                steps: config.steps_per_epoch,
                loss: batch_loss,
                images_per_second: images as f64 / started.elapsed().as_secs_f64().max(1e-9),
            })?;
        }
        let seconds = started.elapsed().as_secs_f64();
        let (validation_auc, validation_accuracy) = validate(&net, data, val_ids, &by_id)?;
        let report = EpochReport {
            epoch,
            loss: loss_sum / losses.max(1) as f64,
            triplets_per_step: triplet_count as f64 / config.steps_per_epoch.max(1) as f64,
            images_per_second: images as f64 / seconds.max(1e-9),
            validation_auc,
            validation_accuracy,
        };
        let mut checkpoint = net.weights()?;
        adam.save_into(&mut checkpoint)?;
        checkpoint.set_meta(EPOCH_KEY, epoch.to_string());
        checkpoint.set_meta(RNG_KEY, rng.state().to_string());
        checkpoint.set_meta(SEED_KEY, config.seed.to_string());
        checkpoint.set_meta(
            TRAIN_LAST_KEY,
            config
                .train_last
                .map_or(EVERY_LAYER.to_string(), |n| n.to_string()),
        );
        progress(Progress::Epoch {
            report: &report,
            checkpoint: &checkpoint,
        })?;
        reports.push(report);
    }
    Ok((net, reports))
}

/// One step of the triplet loop on a batch `x` (planar, on the autodiff device) with
/// identity `labels`: embed, mine, and if any triplet was mined, the loss, its gradient and
/// an Adam update. Returns the network and, when there were triplets, the loss before the
/// update and how many triplets it averaged.
pub fn triplet_step<N: TripletNet>(
    net: N,
    adam: &mut Adam,
    x: Tensor<4>,
    labels: &[usize],
    config: &TrainConfig,
    rng: &mut SplitMix64,
) -> Result<(N, Option<(f64, usize)>)> {
    let emb = net.embed_batch(x);
    let values = emb
        .clone()
        .into_data()
        .try_to_vec::<f32>()
        .map_err(|e| LearnError::Data(format!("reading embeddings: {e:?}")))?;
    let dist = squared_distances(&values, net.embedding_dim())?;
    let triplets = mine(config.mining, &dist, labels, config.margin, rng)?;
    if triplets.is_empty() {
        return Ok((net, None));
    }
    let loss = batch_triplet_loss(emb, &triplets, config.margin)?;
    let value = loss
        .clone()
        .into_data()
        .try_to_vec::<f32>()
        .ok()
        .and_then(|v| v.first().copied())
        .map_or(f64::NAN, f64::from);
    let grads = loss.backward();
    Ok((adam.step(net, &grads), Some((value, triplets.len()))))
}

/// Planar RGB in [0, 1] of `images` resized to `size`, as one `[n, 3, size, size]` batch.
pub fn image_batch(images: &[Image], size: usize, device: &Device) -> Tensor<4> {
    let pixels: Vec<Vec<f32>> = images.iter().map(|i| to_planar(i, size)).collect();
    let refs: Vec<&[f32]> = pixels.iter().map(Vec::as_slice).collect();
    stack(&refs, size, device)
}

/// AUC and best accuracy over all pairs of the validation identities' images.
pub(super) fn validate<N: TripletNet>(
    net: &N,
    data: &[(usize, Image)],
    val_ids: &[usize],
    by_id: &[Vec<usize>],
) -> Result<(Option<f64>, Option<f64>)> {
    if val_ids.len() < 2 {
        return Ok((None, None));
    }
    let idx: Vec<usize> = val_ids
        .iter()
        .flat_map(|&id| by_id[id].iter().copied())
        .collect();
    let images: Vec<Image> = idx.iter().map(|&i| data[i].1.clone()).collect();
    let emb = embed_images(net, &images)?;
    let (mut d, mut same) = (Vec::new(), Vec::new());
    for i in 0..idx.len() {
        for j in i + 1..idx.len() {
            let s: f32 = emb[i]
                .iter()
                .zip(&emb[j])
                .map(|(a, b)| (a - b) * (a - b))
                .sum();
            d.push(s.sqrt() as f64);
            same.push(data[idx[i]].0 == data[idx[j]].0);
        }
    }
    let points = crate::eval::roc(&d, &same)?;
    let (_, acc) = crate::eval::best_threshold(&d, &same)?;
    Ok((Some(crate::eval::auc(&points)), Some(acc)))
}
