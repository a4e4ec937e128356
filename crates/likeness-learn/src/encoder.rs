//! Training an embedding network from scratch with the triplet loss: a small ConvNet on
//! square RGB images (aligned face chips, or any pictures), batches of P identities × K
//! images, online mining, flip/crop/colour augmentation, a validation split of held-out
//! identities scored every epoch, and safetensors checkpoints.

use std::path::Path;
use std::time::Instant;

use burn::module::{Module, Param};
use burn::nn::conv::Conv2d;
use burn::nn::pool::MaxPool2dConfig;
use burn::nn::{Linear, PaddingConfig2d};
use burn::tensor::activation::relu;
use burn::tensor::{Device, Tensor, TensorData};
use likeness_nn::device::{cpu, cpu_autodiff};
use likeness_nn::image::Image;
use likeness_nn::optim::{Adam, AdamConfig};
use likeness_nn::weights::WeightMap;
use serde::Serialize;

use crate::error::{LearnError, Result};
use crate::rng::Rng;
use crate::triplet::{Mining, batch_triplet_loss, mine, squared_distances};

/// Conv stages, each halving the side with a 2×2 max-pool.
const STAGES: usize = 3;
/// Keeps the L2 normalisation finite for an all-zero embedding.
const NORM_EPSILON: f32 = 1e-6;
/// Largest crop offset (pixels at the input size) of the augmentation.
const MAX_CROP: usize = 2;
/// Brightness and contrast are scaled by a factor in `1 ± COLOUR_JITTER`.
const COLOUR_JITTER: f64 = 0.2;

/// Sizes of [`Encoder`]; saved with the weights so the file alone rebuilds the network.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct EncoderConfig {
    /// Input side (images are resized to `size`×`size`); a multiple of 8.
    pub size: usize,
    /// Filters of the first stage; each later stage doubles them.
    pub width: usize,
    /// Embedding length.
    pub dim: usize,
}

impl Default for EncoderConfig {
    fn default() -> Self {
        Self {
            size: 32,
            width: 16,
            dim: 64,
        }
    }
}

/// Three conv 3×3 → ReLU → max-pool 2 stages, a linear projection, L2 normalisation.
#[derive(Module, Debug)]
pub struct Encoder {
    convs: Vec<Conv2d>,
    out: Linear,
}

fn channels(config: &EncoderConfig) -> Vec<(usize, usize)> {
    (0..STAGES)
        .map(|s| {
            let c_in = if s == 0 { 3 } else { config.width << (s - 1) };
            (c_in, config.width << s)
        })
        .collect()
}

fn flat_len(config: &EncoderConfig) -> usize {
    let side = config.size >> STAGES;
    (config.width << (STAGES - 1)) * side * side
}

fn conv(weight: Param<Tensor<4>>, bias: Param<Tensor<1>>) -> Conv2d {
    Conv2d {
        weight,
        bias: Some(bias),
        stride: [1, 1],
        kernel_size: [3, 3],
        dilation: [1, 1],
        groups: 1,
        padding: PaddingConfig2d::Explicit(1, 1, 1, 1),
    }
}

impl Encoder {
    fn check(config: &EncoderConfig) -> Result<()> {
        if config.size == 0 || !config.size.is_multiple_of(1 << STAGES) {
            return Err(LearnError::Options(format!(
                "input size {} must be a positive multiple of {}",
                config.size,
                1 << STAGES
            )));
        }
        if config.width == 0 || config.dim == 0 {
            return Err(LearnError::Options("width and dim must be positive".into()));
        }
        Ok(())
    }

    /// Fresh weights (PyTorch's default uniform initialisation) drawn from `seed`.
    pub fn init(config: &EncoderConfig, seed: u64, device: &Device) -> Result<Self> {
        Self::check(config)?;
        let mut rng = Rng::new(seed);
        let mut uniform = |n: usize, fan_in: usize| -> Vec<f32> {
            let bound = 1.0 / (fan_in as f64).sqrt();
            (0..n)
                .map(|_| ((rng.unit() * 2.0 - 1.0) * bound) as f32)
                .collect()
        };
        let mut convs = Vec::new();
        for (c_in, c_out) in channels(config) {
            let fan = c_in * 9;
            let w = Tensor::from_data(
                TensorData::new(uniform(c_out * fan, fan), [c_out, c_in, 3, 3]),
                device,
            );
            let b = Tensor::from_data(TensorData::new(uniform(c_out, fan), [c_out]), device);
            convs.push(conv(Param::from_tensor(w), Param::from_tensor(b)));
        }
        let flat = flat_len(config);
        let w = Tensor::from_data(
            TensorData::new(uniform(flat * config.dim, flat), [flat, config.dim]),
            device,
        );
        let b = Tensor::from_data(
            TensorData::new(uniform(config.dim, flat), [config.dim]),
            device,
        );
        Ok(Self {
            convs,
            out: Linear {
                weight: Param::from_tensor(w),
                bias: Some(Param::from_tensor(b)),
            },
        })
    }

    /// Unit-length embeddings of `[batch, 3, size, size]` images in [0, 1].
    pub fn forward(&self, mut x: Tensor<4>) -> Tensor<2> {
        for c in &self.convs {
            x = MaxPool2dConfig::new([2, 2])
                .init()
                .forward(relu(c.forward(x)));
        }
        let x = self.out.forward(x.flatten::<2>(1, 3));
        let norm = x
            .clone()
            .powi_scalar(2)
            .sum_dim(1)
            .add_scalar(NORM_EPSILON)
            .sqrt();
        x / norm
    }

    /// The weights under PyTorch-style names (`convs.0.weight`, …, `out.weight`), with the
    /// sizes in the metadata, for [`Encoder::load`].
    pub fn to_weights(&self, config: &EncoderConfig) -> Result<WeightMap> {
        let mut map = WeightMap::new();
        let values = |t: Tensor<4>| t.into_data().try_to_vec::<f32>();
        let read = |what: &str, r: std::result::Result<Vec<f32>, _>| {
            r.map_err(|e| LearnError::Data(format!("reading {what}: {e:?}")))
        };
        for (i, (c, (c_in, c_out))) in self.convs.iter().zip(channels(config)).enumerate() {
            let w = read("a conv weight", values(c.weight.val()))?;
            map.insert(format!("convs.{i}.weight"), vec![c_out, c_in, 3, 3], w)?;
            if let Some(b) = &c.bias {
                let b = read("a conv bias", b.val().into_data().try_to_vec::<f32>())?;
                map.insert(format!("convs.{i}.bias"), vec![c_out], b)?;
            }
        }
        let w = read(
            "the projection",
            self.out.weight.val().into_data().try_to_vec::<f32>(),
        )?;
        map.insert("out.weight", vec![flat_len(config), config.dim], w)?;
        if let Some(b) = &self.out.bias {
            let b = read(
                "the projection bias",
                b.val().into_data().try_to_vec::<f32>(),
            )?;
            map.insert("out.bias", vec![config.dim], b)?;
        }
        map.set_meta("likeness.encoder", "small-convnet");
        map.set_meta("size", config.size.to_string());
        map.set_meta("width", config.width.to_string());
        map.set_meta("dim", config.dim.to_string());
        Ok(map)
    }

    /// Rebuilds an encoder from [`Encoder::to_weights`]'s map (sizes from its metadata).
    pub fn load(weights: &WeightMap, device: &Device) -> Result<(Self, EncoderConfig)> {
        let meta = |k: &str| -> Result<usize> {
            weights
                .meta(k)
                .and_then(|v| v.parse().ok())
                .ok_or_else(|| LearnError::Data(format!("encoder weights lack metadata `{k}`")))
        };
        let config = EncoderConfig {
            size: meta("size")?,
            width: meta("width")?,
            dim: meta("dim")?,
        };
        Self::check(&config)?;
        let mut convs = Vec::new();
        for (i, (c_in, c_out)) in channels(&config).into_iter().enumerate() {
            convs.push(conv(
                weights.param(&format!("convs.{i}.weight"), [c_out, c_in, 3, 3], device)?,
                weights.param(&format!("convs.{i}.bias"), [c_out], device)?,
            ));
        }
        let out = Linear {
            weight: weights.param("out.weight", [flat_len(&config), config.dim], device)?,
            bias: Some(weights.param("out.bias", [config.dim], device)?),
        };
        Ok((Self { convs, out }, config))
    }

    /// Embeddings of `images` (resized to the input size), without gradients.
    pub fn embed(&self, config: &EncoderConfig, images: &[Image]) -> Result<Vec<Vec<f32>>> {
        let net = self.valid();
        let device = cpu();
        let mut out = Vec::with_capacity(images.len());
        for chunk in images.chunks(64) {
            let pixels: Vec<Vec<f32>> = chunk.iter().map(|i| to_planar(i, config.size)).collect();
            let refs: Vec<&[f32]> = pixels.iter().map(Vec::as_slice).collect();
            let e = net
                .forward(stack(&refs, config.size, &device))
                .into_data()
                .try_to_vec::<f32>()
                .map_err(|e| LearnError::Data(format!("reading embeddings: {e:?}")))?;
            out.extend(e.chunks(config.dim).map(<[f32]>::to_vec));
        }
        Ok(out)
    }
}

/// An image resized to `size`² as planar RGB in [0, 1].
fn to_planar(image: &Image, size: usize) -> Vec<f32> {
    let img = if image.width as usize == size && image.height as usize == size {
        image.clone()
    } else {
        image.resize(size as u32, size as u32)
    };
    let n = size * size;
    let mut out = vec![0f32; 3 * n];
    for (p, rgb) in img.pixels.chunks_exact(3).enumerate() {
        for c in 0..3 {
            out[c * n + p] = rgb[c] as f32 / 255.0;
        }
    }
    out
}

fn stack(images: &[&[f32]], size: usize, device: &Device) -> Tensor<4> {
    let values: Vec<f32> = images.iter().flat_map(|i| i.iter().copied()).collect();
    Tensor::from_data(
        TensorData::new(values, [images.len(), 3, size, size]),
        device,
    )
}

/// Flip (half the time), crop by up to [`MAX_CROP`] pixels (zero padding) and jitter
/// brightness and contrast of one planar image.
fn augment(planar: &[f32], size: usize, rng: &mut Rng) -> Vec<f32> {
    let n = size * size;
    let flip = rng.below(2) == 1;
    let span = 2 * MAX_CROP + 1;
    let dy = rng.below(span) as isize - MAX_CROP as isize;
    let dx = rng.below(span) as isize - MAX_CROP as isize;
    let gain = 1.0 + (rng.unit() * 2.0 - 1.0) * COLOUR_JITTER;
    let contrast = 1.0 + (rng.unit() * 2.0 - 1.0) * COLOUR_JITTER;
    let mean = planar.iter().sum::<f32>() / planar.len().max(1) as f32;
    let mut out = vec![0f32; 3 * n];
    for c in 0..3 {
        for y in 0..size as isize {
            for x in 0..size as isize {
                let sx = if flip { size as isize - 1 - x } else { x } + dx;
                let sy = y + dy;
                let inside = (0..size as isize).contains(&sx) && (0..size as isize).contains(&sy);
                let v = if inside {
                    planar[c * n + sy as usize * size + sx as usize]
                } else {
                    mean
                };
                let v = ((v - mean) * contrast as f32 + mean) * gain as f32;
                out[c * n + y as usize * size + x as usize] = v.clamp(0.0, 1.0);
            }
        }
    }
    out
}

/// Settings of [`train`].
#[derive(Debug, Clone, PartialEq)]
pub struct TrainConfig {
    pub net: EncoderConfig,
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

/// Trains an [`Encoder`] on `(identity, image)` examples, from `start` (resuming; its sizes
/// must be `config.net`'s) or from fresh weights; `on_epoch` sees each epoch's report and the
/// network (for progress and checkpoints).
pub fn train(
    data: &[(usize, Image)],
    config: &TrainConfig,
    start: Option<Encoder>,
    mut on_epoch: impl FnMut(&EpochReport, &Encoder) -> Result<()>,
) -> Result<(Encoder, Vec<EpochReport>)> {
    if config.identities < 2 || config.per_identity < 2 {
        return Err(LearnError::Options(
            "a batch needs ≥ 2 identities and ≥ 2 images of each".into(),
        ));
    }
    let mut rng = Rng::new(config.seed);
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
    let size = config.net.size;
    let planar: Vec<Vec<f32>> = data.iter().map(|(_, img)| to_planar(img, size)).collect();
    let device = cpu_autodiff();
    let fresh_seed = rng.next_u64();
    let mut net = match start {
        // Parameters moved to the autodiff device, tracked for gradients again.
        Some(net) => net.fork(&device).train(),
        None => Encoder::init(&config.net, fresh_seed, &device)?,
    };
    let mut adam = Adam::new(AdamConfig::new(config.learning_rate));
    let p = config.identities.min(train_ids.len());
    let mut reports = Vec::new();
    for epoch in 1..=config.epochs {
        let started = Instant::now();
        let (mut loss_sum, mut losses, mut triplet_count, mut images) = (0.0, 0usize, 0usize, 0);
        for _ in 0..config.steps_per_epoch {
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
            let emb = net.forward(stack(&refs, size, &device));
            images += batch.len();
            let values = emb
                .clone()
                .into_data()
                .try_to_vec::<f32>()
                .map_err(|e| LearnError::Data(format!("reading embeddings: {e:?}")))?;
            let dist = squared_distances(&values, config.net.dim)?;
            let triplets = mine(config.mining, &dist, &labels, config.margin, &mut rng)?;
            if triplets.is_empty() {
                continue;
            }
            triplet_count += triplets.len();
            let loss = batch_triplet_loss(emb, &triplets, config.margin)?;
            let value = loss
                .clone()
                .into_data()
                .try_to_vec::<f32>()
                .ok()
                .and_then(|v| v.first().copied())
                .unwrap_or(f32::NAN);
            loss_sum += value as f64;
            losses += 1;
            let grads = loss.backward();
            net = adam.step(net, &grads);
        }
        adam.config.lr *= config.lr_decay;
        let seconds = started.elapsed().as_secs_f64();
        let (validation_auc, validation_accuracy) =
            validate(&net, &config.net, data, val_ids, &by_id)?;
        let report = EpochReport {
            epoch,
            loss: loss_sum / losses.max(1) as f64,
            triplets_per_step: triplet_count as f64 / config.steps_per_epoch.max(1) as f64,
            images_per_second: images as f64 / seconds.max(1e-9),
            validation_auc,
            validation_accuracy,
        };
        on_epoch(&report, &net)?;
        reports.push(report);
    }
    Ok((net, reports))
}

/// AUC and best accuracy over all pairs of the validation identities' images.
fn validate(
    net: &Encoder,
    config: &EncoderConfig,
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
    let emb = net.embed(config, &images)?;
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

/// Saves an encoder as safetensors.
pub fn save(net: &Encoder, config: &EncoderConfig, path: &Path) -> Result<()> {
    Ok(net.to_weights(config)?.save(path)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Identity k: a solid colour with a bright square at a k-dependent place, plus noise.
    fn synthetic(ids: usize, per: usize, seed: u64) -> Vec<(usize, Image)> {
        let mut rng = Rng::new(seed);
        let mut out = Vec::new();
        for id in 0..ids {
            for _ in 0..per {
                let mut px = Vec::with_capacity(32 * 32 * 3);
                for y in 0..32 {
                    for x in 0..32 {
                        let on = (x / 8 == id % 4) && (y / 8 == id / 4 % 4);
                        for _ in 0..3 {
                            let v = if on { 220.0 } else { 40.0 } + rng.normal() * 20.0;
                            px.push(v.clamp(0.0, 255.0) as u8);
                        }
                    }
                }
                out.push((id, Image::from_rgb(32, 32, px).unwrap()));
            }
        }
        out
    }

    #[test]
    fn trains_saves_and_loads() {
        let data = synthetic(10, 4, 3);
        let config = TrainConfig {
            epochs: 2,
            steps_per_epoch: 15,
            identities: 4,
            per_identity: 3,
            validation: 0.3,
            ..TrainConfig::default()
        };
        let mut seen = 0;
        let (net, reports) = train(&data, &config, None, |_, _| {
            seen += 1;
            Ok(())
        })
        .unwrap();
        assert_eq!(seen, 2);
        assert_eq!(reports.len(), 2);
        assert!(reports[1].validation_auc.unwrap() > 0.9, "{reports:?}");
        let path =
            std::env::temp_dir().join(format!("likeness-enc-{}.safetensors", std::process::id()));
        save(&net, &config.net, &path).unwrap();
        let (loaded, cfg) = Encoder::load(&WeightMap::load(&path).unwrap(), &cpu()).unwrap();
        assert_eq!(cfg, config.net);
        let imgs: Vec<Image> = data.iter().take(3).map(|d| d.1.clone()).collect();
        let a = net.embed(&config.net, &imgs).unwrap();
        let b = loaded.embed(&cfg, &imgs).unwrap();
        for (x, y) in a.iter().flatten().zip(b.iter().flatten()) {
            assert!((x - y).abs() < 1e-5);
        }
        // Resuming from the saved weights continues training.
        let short = TrainConfig {
            epochs: 1,
            ..config.clone()
        };
        let before = loaded.to_weights(&cfg).unwrap();
        let (resumed, more) = train(&data, &short, Some(loaded), |_, _| Ok(())).unwrap();
        assert!(more[0].validation_auc.unwrap() > 0.9);
        let after = resumed.to_weights(&cfg).unwrap();
        let w0 = &before.get("out.weight").unwrap().data;
        let w1 = &after.get("out.weight").unwrap().data;
        assert!(
            w0.iter().zip(w1).any(|(a, b)| a != b),
            "resumed training moved the weights"
        );
        std::fs::remove_file(&path).unwrap();
    }

    #[test]
    fn refuses_too_few_identities() {
        // Identity 1 has one image: it cannot form positives, leaving one usable identity.
        let mut data = synthetic(1, 3, 1);
        data.push((1, data[0].1.clone()));
        let err = train(&data, &TrainConfig::default(), None, |_, _| Ok(()))
            .err()
            .unwrap();
        assert!(err.to_string().contains("at least 2"), "{err}");
    }
}
