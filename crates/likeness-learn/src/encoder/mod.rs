//! Training an embedding network with the triplet loss: a small ConvNet from scratch, or
//! dlib's face ResNet fine-tuned (optionally only its last blocks), on square RGB images
//! (aligned face chips, or any pictures); batches of P identities × K images, online mining,
//! flip/crop/colour augmentation, a validation split of held-out identities scored every
//! epoch, and safetensors checkpoints that hold the optimiser's state and the random stream
//! too, so that a resumed run continues exactly as an uninterrupted one.

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
use likeness_nn::nets::dlib_resnet::{
    CHIP_SIZE, DlibResNet, EMBEDDING_DIM, INPUT_MEAN_RGB, INPUT_SCALE,
};
use likeness_nn::optim::{self, Adam, AdamConfig};
use likeness_nn::weights::WeightMap;
use serde::Serialize;

use crate::error::{LearnError, Result};
use crate::triplet::{Mining, batch_triplet_loss, mine, squared_distances};
use likeness_nn::rng::SplitMix64;

mod checkpoint;
mod train;

pub use checkpoint::{resumed_train_last, save, train_last_blocks};
pub use train::{EpochReport, Progress, TrainConfig, image_batch, train, triplet_step};

/// Conv stages, each halving the side with a 2×2 max-pool.
const STAGES: usize = 3;
/// Keeps the L2 normalisation finite for an all-zero embedding.
pub(crate) const NORM_EPSILON: f32 = 1e-6;
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
    size: usize,
    width: usize,
    dim: usize,
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
        let mut rng = SplitMix64::new(seed);
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
            size: config.size,
            width: config.width,
            dim: config.dim,
        })
    }

    /// Unit-length embeddings of `[batch, 3, size, size]` images in [0, 1].
    pub fn forward(&self, mut x: Tensor<4>) -> Tensor<2> {
        for c in &self.convs {
            x = MaxPool2dConfig::new([2, 2])
                .init()
                .forward(relu(c.forward(x)));
        }
        unit_rows(self.out.forward(x.flatten::<2>(1, 3)))
    }

    /// The weights under PyTorch-style names (`convs.0.weight`, …, `out.weight`), with the
    /// sizes in the metadata, for [`Encoder::load`].
    pub fn to_weights(&self) -> Result<WeightMap> {
        let config = &self.config();
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
        map.set_meta(ENCODER_KEY, SMALL_CONVNET);
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
        let net = Self {
            convs,
            out,
            size: config.size,
            width: config.width,
            dim: config.dim,
        };
        Ok((net, config))
    }

    /// The sizes this network was built with.
    pub fn config(&self) -> EncoderConfig {
        EncoderConfig {
            size: self.size,
            width: self.width,
            dim: self.dim,
        }
    }

    /// Embeddings of `images` (resized to the input size), without gradients.
    pub fn embed(&self, images: &[Image]) -> Result<Vec<Vec<f32>>> {
        embed_images(self, images)
    }
}

/// Each row of `x` scaled to unit length (the embeddings the triplet loss compares).
pub(crate) fn unit_rows(x: Tensor<2>) -> Tensor<2> {
    let norm = x
        .clone()
        .powi_scalar(2)
        .sum_dim(1)
        .add_scalar(NORM_EPSILON)
        .sqrt();
    x / norm
}

/// Metadata key naming the network a saved encoder holds, and its values.
const ENCODER_KEY: &str = "likeness.encoder";
const SMALL_CONVNET: &str = "small-convnet";

/// A network the triplet loop trains: planar RGB in [0, 1], `[n, 3, side, side]`, to
/// `[n, dim]` embeddings.
pub trait TripletNet: Module + Sized {
    /// Side of the square input.
    fn input_size(&self) -> usize;
    fn embedding_dim(&self) -> usize;
    /// Embeddings of a batch of planar images in [0, 1].
    fn embed_batch(&self, x: Tensor<4>) -> Tensor<2>;
    /// The weights, with metadata saying which network they are (see [`AnyEncoder::load`]).
    fn weights(&self) -> Result<WeightMap>;
    /// Sets which parameters train: only the last `blocks` residual blocks and the final
    /// projection, or with `None` every parameter (see [`TrainConfig::train_last`]).
    fn train_last(self, blocks: Option<usize>) -> Result<Self>;
}

impl TripletNet for Encoder {
    fn input_size(&self) -> usize {
        self.size
    }

    fn embedding_dim(&self) -> usize {
        self.dim
    }

    fn embed_batch(&self, x: Tensor<4>) -> Tensor<2> {
        self.forward(x)
    }

    fn weights(&self) -> Result<WeightMap> {
        self.to_weights()
    }

    fn train_last(self, blocks: Option<usize>) -> Result<Self> {
        match blocks {
            None => Ok(optim::set_trainable(self, |_| true)),
            Some(_) => Err(LearnError::Options(
                "training only the last blocks applies to dlib's network, not the small ConvNet"
                    .into(),
            )),
        }
    }
}

/// dlib's network takes 0–255 pixels centred on its means and divided by 256; its
/// descriptors are used as they are (not normalised), so that dlib's 0.6 keeps its meaning.
impl TripletNet for DlibResNet {
    fn input_size(&self) -> usize {
        CHIP_SIZE
    }

    fn embedding_dim(&self) -> usize {
        EMBEDDING_DIM
    }

    fn embed_batch(&self, x: Tensor<4>) -> Tensor<2> {
        let means: Vec<f32> = INPUT_MEAN_RGB.iter().map(|m| m / INPUT_SCALE).collect();
        let means = Tensor::<4>::from_data(TensorData::new(means, [1, 3, 1, 1]), &x.device());
        self.forward(x.mul_scalar(255.0 / INPUT_SCALE) - means)
    }

    fn weights(&self) -> Result<WeightMap> {
        Ok(self.to_weights()?)
    }

    fn train_last(self, blocks: Option<usize>) -> Result<Self> {
        Ok(match blocks {
            None => optim::set_trainable(self, |_| true),
            Some(n) => train_last_blocks(self, n),
        })
    }
}

/// Embeddings of `images` (resized to the network's input) without gradients.
pub fn embed_images<N: TripletNet>(net: &N, images: &[Image]) -> Result<Vec<Vec<f32>>> {
    let net = net.valid();
    let device = cpu();
    let (size, dim) = (net.input_size(), net.embedding_dim());
    let mut out = Vec::with_capacity(images.len());
    for chunk in images.chunks(EMBED_CHUNK) {
        let pixels: Vec<Vec<f32>> = chunk.iter().map(|i| to_planar(i, size)).collect();
        let refs: Vec<&[f32]> = pixels.iter().map(Vec::as_slice).collect();
        let e = net
            .embed_batch(stack(&refs, size, &device))
            .into_data()
            .try_to_vec::<f32>()
            .map_err(|e| LearnError::Data(format!("reading embeddings: {e:?}")))?;
        likeness_nn::check_finite("an embedding the encoder computed", &e)?;
        out.extend(e.chunks(dim).map(<[f32]>::to_vec));
    }
    Ok(out)
}

/// Images per forward pass when embedding (bounds the memory of dlib's 150 px network).
const EMBED_CHUNK: usize = 32;

/// A saved encoder of either kind, recognised from its metadata.
#[derive(Debug)]
pub enum AnyEncoder {
    /// The small ConvNet trained from scratch: embeds whole images.
    Small(Encoder),
    /// dlib's face network (fine-tuned or not): embeds aligned 150 px face chips.
    Dlib(Box<DlibResNet>),
}

impl AnyEncoder {
    /// Recognises the network from `format = dlib_resnet` or `likeness.encoder =
    /// small-convnet` in the metadata.
    pub fn load(weights: &WeightMap, device: &Device) -> Result<Self> {
        if weights.meta("format") == Some(likeness_nn::nets::dlib_resnet::FORMAT) {
            return Ok(AnyEncoder::Dlib(Box::new(DlibResNet::load(
                weights, device,
            )?)));
        }
        match weights.meta(ENCODER_KEY) {
            Some(SMALL_CONVNET) => Ok(AnyEncoder::Small(Encoder::load(weights, device)?.0)),
            other => Err(LearnError::Data(format!(
                "not an encoder saved by likeness (metadata {ENCODER_KEY} = {other:?}, format \
                 = {:?})",
                weights.meta("format")
            ))),
        }
    }

    /// Whether the network embeds aligned face chips (so images go through face detection
    /// and alignment first).
    pub fn wants_face_chips(&self) -> bool {
        matches!(self, AnyEncoder::Dlib(_))
    }

    /// Embeddings of `images` (chips for dlib's network; any images for the small one).
    pub fn embed(&self, images: &[Image]) -> Result<Vec<Vec<f32>>> {
        match self {
            AnyEncoder::Small(net) => embed_images(net, images),
            AnyEncoder::Dlib(net) => embed_images(net.as_ref(), images),
        }
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
fn augment(planar: &[f32], size: usize, rng: &mut SplitMix64) -> Vec<f32> {
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

#[cfg(test)]
mod tests {
    use super::checkpoint::*;
    use super::train::*;
    use super::*;
    use likeness_nn::device::cpu_autodiff;

    /// Identity k: a solid colour with a bright square at a k-dependent place, plus noise.
    fn synthetic(ids: usize, per: usize, seed: u64) -> Vec<(usize, Image)> {
        let mut rng = SplitMix64::new(seed);
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

    fn fresh(config: &TrainConfig) -> Encoder {
        Encoder::init(&config.net, config.seed, &cpu_autodiff()).unwrap()
    }

    fn epochs_only(p: Progress<'_>, seen: &mut usize) -> Result<()> {
        if let Progress::Epoch { .. } = p {
            *seen += 1;
        }
        Ok(())
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
        let (mut epochs, mut batches) = (0, 0);
        let (net, reports) = train(&data, &config, fresh(&config), None, |p| {
            match p {
                Progress::Batch { .. } => batches += 1,
                Progress::Epoch { .. } => epochs += 1,
            }
            Ok(())
        })
        .unwrap();
        assert_eq!((epochs, batches), (2, 30));
        assert_eq!(reports.len(), 2);
        assert!(reports[1].validation_auc.unwrap() > 0.9, "{reports:?}");
        let path =
            std::env::temp_dir().join(format!("likeness-enc-{}.safetensors", std::process::id()));
        save(&net, &path).unwrap();
        let weights = WeightMap::load(&path).unwrap();
        let (loaded, cfg) = Encoder::load(&weights, &cpu()).unwrap();
        assert_eq!(cfg, config.net);
        let any = AnyEncoder::load(&weights, &cpu()).unwrap();
        assert!(!any.wants_face_chips());
        let imgs: Vec<Image> = data.iter().take(3).map(|d| d.1.clone()).collect();
        let a = net.embed(&imgs).unwrap();
        let b = loaded.embed(&imgs).unwrap();
        let c = any.embed(&imgs).unwrap();
        for ((x, y), z) in a
            .iter()
            .flatten()
            .zip(b.iter().flatten())
            .zip(c.iter().flatten())
        {
            assert!((x - y).abs() < 1e-5 && (x - z).abs() < 1e-5);
        }
        std::fs::remove_file(&path).unwrap();
        // A map that is neither kind of encoder is refused, saying why.
        let err = AnyEncoder::load(&WeightMap::new(), &cpu()).unwrap_err();
        assert!(err.to_string().contains("not an encoder"), "{err}");
    }

    #[test]
    fn resuming_continues_exactly() {
        let data = synthetic(8, 4, 5);
        let two = TrainConfig {
            epochs: 2,
            steps_per_epoch: 6,
            identities: 3,
            per_identity: 3,
            validation: 0.25,
            ..TrainConfig::default()
        };
        let mut seen = 0;
        let (straight, _) = train(&data, &two, fresh(&two), None, |p| {
            epochs_only(p, &mut seen)
        })
        .unwrap();
        // One epoch, keeping its checkpoint; then the checkpoint resumed to two epochs.
        let one = TrainConfig {
            epochs: 1,
            ..two.clone()
        };
        let mut checkpoint = None;
        train(&data, &one, fresh(&one), None, |p| {
            if let Progress::Epoch { checkpoint: c, .. } = p {
                checkpoint = Some(c.clone());
            }
            Ok(())
        })
        .unwrap();
        let checkpoint = checkpoint.unwrap();
        assert_eq!(checkpoint.meta(TRAIN_LAST_KEY), Some(EVERY_LAYER));
        // Through the file format, as the command does it.
        let bytes = checkpoint.to_safetensors().unwrap();
        let checkpoint = WeightMap::from_safetensors(&bytes).unwrap();
        let (net, _) = Encoder::load(&checkpoint, &cpu_autodiff()).unwrap();
        let (resumed, reports) = train(&data, &two, net, Some(&checkpoint), |_| Ok(())).unwrap();
        assert_eq!(reports.len(), 1, "only the second epoch is left");
        assert_eq!(reports[0].epoch, 2);
        let a = straight.to_weights().unwrap();
        let b = resumed.to_weights().unwrap();
        let mut largest = 0f32;
        for (name, t) in a.iter() {
            for (x, y) in t.data.iter().zip(&b.get(name).unwrap().data) {
                largest = largest.max((x - y).abs());
            }
        }
        assert!(largest <= 1e-6, "largest difference {largest}");
        // Without the optimiser state (weights only), the second epoch goes elsewhere.
        let bare = resumed.to_weights().unwrap();
        let (net, _) = Encoder::load(&bare, &cpu_autodiff()).unwrap();
        assert!(!optim::has_state(&bare));
        let (_, more) = train(&data, &two, net, Some(&bare), |_| Ok(())).unwrap();
        assert_eq!(more.len(), 2, "a plain network starts at epoch 1");
        // Another seed would split and sample differently: refused.
        let other = TrainConfig { seed: 9, ..two };
        let (net, _) = Encoder::load(&checkpoint, &cpu_autodiff()).unwrap();
        let err = train(&data, &other, net, Some(&checkpoint), |_| Ok(()))
            .err()
            .unwrap();
        assert!(err.to_string().contains("seed 1"), "{err}");
        // So would training another part of the network.
        let other = TrainConfig {
            train_last: Some(1),
            ..two
        };
        let (net, _) = Encoder::load(&checkpoint, &cpu_autodiff()).unwrap();
        let err = train(&data, &other, net, Some(&checkpoint), |_| Ok(()))
            .err()
            .unwrap();
        assert!(err.to_string().contains("every layer"), "{err}");
    }

    #[test]
    fn resuming_keeps_the_trained_part() {
        let mut map = WeightMap::new();
        // A map that records nothing (a bare network) takes what is asked.
        assert_eq!(resumed_train_last(&map, Some(3)).unwrap(), Some(3));
        map.set_meta(TRAIN_LAST_KEY, "2");
        assert_eq!(resumed_train_last(&map, None).unwrap(), Some(2));
        assert_eq!(resumed_train_last(&map, Some(2)).unwrap(), Some(2));
        let err = resumed_train_last(&map, Some(3)).unwrap_err().to_string();
        assert!(
            err.contains("--train-last 2") && err.contains("--train-last 3"),
            "{err}"
        );
        map.set_meta(TRAIN_LAST_KEY, EVERY_LAYER);
        assert_eq!(resumed_train_last(&map, None).unwrap(), None);
        let err = resumed_train_last(&map, Some(1)).unwrap_err().to_string();
        assert!(err.contains("every layer"), "{err}");
        map.set_meta(TRAIN_LAST_KEY, "two");
        assert!(resumed_train_last(&map, None).is_err());
        // The small network has no blocks to single out.
        let data = synthetic(4, 3, 2);
        let config = TrainConfig {
            train_last: Some(1),
            ..TrainConfig::default()
        };
        let err = train(&data, &config, fresh(&config), None, |_| Ok(()))
            .err()
            .unwrap();
        assert!(err.to_string().contains("dlib"), "{err}");
    }

    #[test]
    fn refuses_too_few_identities() {
        // Identity 1 has one image: it cannot form positives, leaving one usable identity.
        let mut data = synthetic(1, 3, 1);
        data.push((1, data[0].1.clone()));
        let config = TrainConfig::default();
        let err = train(&data, &config, fresh(&config), None, |_| Ok(()))
            .err()
            .unwrap();
        assert!(err.to_string().contains("at least 2"), "{err}");
    }
}
