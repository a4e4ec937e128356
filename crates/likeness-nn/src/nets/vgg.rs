//! VGG-16 and VGG-19 convolutional bases (Simonyan & Zisserman 2014), returning named
//! activations (`relu1_1` … `relu5_3` / `relu5_4`) for style transfer and probing.
//!
//! Weights use torchvision's names, `features.{i}.weight` (OIHW) and `features.{i}.bias`, where
//! `i` counts conv, ReLU and pool layers alike; so a torchvision `.pth` state dict loads as is.
//! Each set of weights was trained on inputs prepared its own way ([`InputConvention`]); the
//! convention travels in the weight map's metadata under [`INPUT_CONVENTION_KEY`].

use std::fmt;
use std::str::FromStr;

use burn::module::Module;
use burn::nn::PaddingConfig2d;
use burn::nn::conv::Conv2d;
use burn::nn::pool::{AvgPool2dConfig, MaxPool2dConfig};
use burn::tensor::activation::relu;
use burn::tensor::{Device, Tensor, TensorData};

use crate::error::{NnError, Result};
use crate::image::Image;
use crate::weights::WeightMap;

/// Metadata key of a [`WeightMap`] naming its [`InputConvention`].
pub const INPUT_CONVENTION_KEY: &str = "input_convention";

/// Per-channel means in B, G, R order that Caffe's VGG (and Keras' `preprocess_input(mode=
/// "caffe")`) subtract from 0–255 pixels: the ImageNet training-set mean of the original
/// Oxford release.
pub const CAFFE_BGR_MEAN: [f32; 3] = [103.939, 116.779, 123.68];

/// torchvision's ImageNet normalisation, R, G, B order, applied to pixels scaled to 0–1
/// (`transforms.Normalize` in torchvision's model docs).
pub const IMAGENET_RGB_MEAN: [f32; 3] = [0.485, 0.456, 0.406];
/// See [`IMAGENET_RGB_MEAN`].
pub const IMAGENET_RGB_STD: [f32; 3] = [0.229, 0.224, 0.225];

/// Output channels of the conv layers of each of VGG's five blocks.
const BLOCK_WIDTHS: [usize; 5] = [64, 128, 256, 512, 512];

/// Which VGG.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VggVariant {
    /// 13 conv layers: 2, 2, 3, 3, 3 per block.
    Vgg16,
    /// 16 conv layers: 2, 2, 4, 4, 4 per block.
    Vgg19,
}

impl VggVariant {
    /// Conv layers in each of the five blocks.
    pub fn convs_per_block(self) -> [usize; 5] {
        match self {
            VggVariant::Vgg16 => [2, 2, 3, 3, 3],
            VggVariant::Vgg19 => [2, 2, 4, 4, 4],
        }
    }

    /// Number of conv layers.
    pub fn num_convs(self) -> usize {
        self.convs_per_block().iter().sum()
    }
}

/// The pooling between blocks. Gatys et al. found average pooling gives smoother style
/// transfer results than the max pooling the network was trained with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Pooling {
    #[default]
    Max,
    Average,
}

/// How a set of weights expects its input tensor (NCHW, batch of images).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InputConvention {
    /// Caffe/Keras (the original Oxford weights): B, G, R channels, 0–255, minus
    /// [`CAFFE_BGR_MEAN`].
    CaffeBgr,
    /// torchvision: R, G, B channels, 0–1, minus [`IMAGENET_RGB_MEAN`], over [`IMAGENET_RGB_STD`].
    TorchvisionRgb,
}

impl InputConvention {
    /// The name stored in weight metadata.
    pub fn as_str(self) -> &'static str {
        match self {
            InputConvention::CaffeBgr => "caffe-bgr",
            InputConvention::TorchvisionRgb => "torchvision-rgb",
        }
    }

    /// For input channel `c` (0..3): which RGB channel it reads, and `(scale, offset)` such that
    /// `input = pixel * scale + offset` with the pixel in 0–255.
    fn channel(self, c: usize) -> (usize, f32, f32) {
        match self {
            InputConvention::CaffeBgr => (2 - c, 1.0, -CAFFE_BGR_MEAN[c]),
            InputConvention::TorchvisionRgb => {
                let scale = 1.0 / (255.0 * IMAGENET_RGB_STD[c]);
                (c, scale, -IMAGENET_RGB_MEAN[c] / IMAGENET_RGB_STD[c])
            }
        }
    }

    /// The `[1, 3, H, W]` input tensor of an image.
    pub fn image_to_tensor(self, image: &Image, device: &Device) -> Tensor<4> {
        let (w, h) = (image.width as usize, image.height as usize);
        let mut data = vec![0f32; 3 * w * h];
        for c in 0..3 {
            let (src, scale, offset) = self.channel(c);
            let plane = &mut data[c * w * h..(c + 1) * w * h];
            for (out, px) in plane.iter_mut().zip(image.pixels.chunks_exact(3)) {
                *out = px[src] as f32 * scale + offset;
            }
        }
        Tensor::from_data(TensorData::new(data, [1, 3, h, w]), device)
    }

    /// The image of a `[1, 3, H, W]` input tensor (values outside 0–255 are clipped): the
    /// inverse of [`image_to_tensor`](Self::image_to_tensor), for style transfer's output.
    pub fn tensor_to_image(self, tensor: Tensor<4>) -> Result<Image> {
        let [n, c, h, w] = tensor.dims();
        if n != 1 || c != 3 {
            return Err(NnError::Shape {
                name: "image tensor".into(),
                expected: vec![1, 3, h, w],
                got: vec![n, c, h, w],
            });
        }
        let data = tensor
            .into_data()
            .try_to_vec::<f32>()
            .map_err(|e| NnError::Image(format!("tensor is not f32: {e:?}")))?;
        let mut pixels = vec![0u8; 3 * w * h];
        for ch in 0..3 {
            let (dst, scale, offset) = self.channel(ch);
            let plane = &data[ch * w * h..(ch + 1) * w * h];
            for (px, v) in pixels.chunks_exact_mut(3).zip(plane) {
                px[dst] = ((v - offset) / scale).round().clamp(0.0, 255.0) as u8;
            }
        }
        Image::from_rgb(w as u32, h as u32, pixels)
    }
}

impl FromStr for InputConvention {
    type Err = NnError;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "caffe-bgr" => Ok(InputConvention::CaffeBgr),
            "torchvision-rgb" => Ok(InputConvention::TorchvisionRgb),
            other => Err(NnError::Mismatch(format!(
                "unknown VGG input convention `{other}` (expected caffe-bgr or torchvision-rgb)"
            ))),
        }
    }
}

/// A named layer of the VGG stack; blocks and convs count from 1 as in the paper
/// (`conv3_2` is the second conv of the third block, `pool3` ends that block).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum VggLayer {
    /// Output of a convolution, before its ReLU.
    Conv(u8, u8),
    /// Output of a convolution's ReLU.
    Relu(u8, u8),
    /// Output of the pooling that ends a block.
    Pool(u8),
}

impl VggLayer {
    /// Position of this layer in the forward order of `variant`, or None if it has no such layer.
    pub fn position(self, variant: VggVariant) -> Option<usize> {
        let per_block = variant.convs_per_block();
        let (block, step) = match self {
            VggLayer::Conv(b, c) => (b, (c as usize).checked_sub(1).map(|c| 2 * c)),
            VggLayer::Relu(b, c) => (b, (c as usize).checked_sub(1).map(|c| 2 * c + 1)),
            VggLayer::Pool(b) => (
                b,
                per_block.get((b as usize).wrapping_sub(1)).map(|n| 2 * n),
            ),
        };
        let b = (block as usize).checked_sub(1)?;
        let n = *per_block.get(b)?;
        let step = step.filter(|&s| s <= 2 * n)?;
        let before: usize = per_block[..b].iter().map(|n| 2 * n + 1).sum();
        Some(before + step)
    }
}

impl fmt::Display for VggLayer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            VggLayer::Conv(b, c) => write!(f, "conv{b}_{c}"),
            VggLayer::Relu(b, c) => write!(f, "relu{b}_{c}"),
            VggLayer::Pool(b) => write!(f, "pool{b}"),
        }
    }
}

impl FromStr for VggLayer {
    type Err = NnError;
    /// Parses `conv3_2`, `relu4_1`, `pool5`.
    fn from_str(s: &str) -> Result<Self> {
        let bad = || NnError::Mismatch(format!("`{s}` is not a VGG layer name (e.g. relu4_2)"));
        let digit = |t: &str| t.parse::<u8>().ok().filter(|d| (1..=9).contains(d));
        if let Some(rest) = s.strip_prefix("pool") {
            return digit(rest).map(VggLayer::Pool).ok_or_else(bad);
        }
        let (kind, rest) = if let Some(r) = s.strip_prefix("conv") {
            (true, r)
        } else if let Some(r) = s.strip_prefix("relu") {
            (false, r)
        } else {
            return Err(bad());
        };
        let (b, c) = rest.split_once('_').ok_or_else(bad)?;
        let (b, c) = (digit(b).ok_or_else(bad)?, digit(c).ok_or_else(bad)?);
        Ok(if kind {
            VggLayer::Conv(b, c)
        } else {
            VggLayer::Relu(b, c)
        })
    }
}

/// (input, output) channels of every conv layer, in order.
pub fn conv_channels(variant: VggVariant) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    let mut c_in = 3;
    for (n, width) in variant.convs_per_block().into_iter().zip(BLOCK_WIDTHS) {
        for _ in 0..n {
            out.push((c_in, width));
            c_in = width;
        }
    }
    out
}

/// torchvision's `features` index of every conv layer (each conv is followed by a ReLU, each
/// block by a pool, all counted): 0, 2, 5, 7, 10, … for VGG-16.
pub fn torchvision_conv_indices(variant: VggVariant) -> Vec<usize> {
    let mut out = Vec::new();
    let mut i = 0;
    for n in variant.convs_per_block() {
        for _ in 0..n {
            out.push(i);
            i += 2;
        }
        i += 1;
    }
    out
}

/// How to build a [`Vgg`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VggConfig {
    pub variant: VggVariant,
    pub pooling: Pooling,
    /// How inputs must be prepared for the weights.
    pub input: InputConvention,
}

impl VggConfig {
    /// The configuration that fits `weights`: VGG-16 or -19 by the conv layers present, the input
    /// convention from the metadata (weights without it — torchvision `.pth`, safetensors
    /// exported from PyTorch — are taken to be torchvision's), max pooling.
    pub fn from_weights(weights: &WeightMap) -> Result<Self> {
        let has = |v: VggVariant| {
            torchvision_conv_indices(v)
                .iter()
                .all(|i| weights.get(&format!("features.{i}.weight")).is_ok())
        };
        let variant = if has(VggVariant::Vgg19) {
            VggVariant::Vgg19
        } else if has(VggVariant::Vgg16) {
            VggVariant::Vgg16
        } else {
            return Err(NnError::Mismatch(
                "neither VGG-16 nor VGG-19: the conv layers `features.{i}.weight` are not all there"
                    .into(),
            ));
        };
        let input = match weights.meta(INPUT_CONVENTION_KEY) {
            Some(s) => s.parse()?,
            None => InputConvention::TorchvisionRgb,
        };
        Ok(VggConfig {
            variant,
            pooling: Pooling::Max,
            input,
        })
    }

    /// The same configuration with another pooling.
    pub fn with_pooling(self, pooling: Pooling) -> Self {
        VggConfig { pooling, ..self }
    }

    /// Builds the network from `weights` (torchvision names), checking every shape.
    pub fn load(&self, weights: &WeightMap, device: &Device) -> Result<Vgg> {
        let convs = torchvision_conv_indices(self.variant)
            .into_iter()
            .zip(conv_channels(self.variant))
            .map(|(i, (c_in, c_out))| {
                Ok(Conv2d {
                    weight: weights.param(
                        &format!("features.{i}.weight"),
                        [c_out, c_in, 3, 3],
                        device,
                    )?,
                    bias: Some(weights.param(&format!("features.{i}.bias"), [c_out], device)?),
                    stride: [1, 1],
                    kernel_size: [3, 3],
                    dilation: [1, 1],
                    groups: 1,
                    padding: PaddingConfig2d::Explicit(1, 1, 1, 1),
                })
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Vgg {
            convs,
            config: *self,
        })
    }
}

/// A VGG convolutional base (no classifier).
#[derive(Module, Debug)]
pub struct Vgg {
    convs: Vec<Conv2d>,
    #[module(skip)]
    config: VggConfig,
}

impl Vgg {
    /// Loads `weights` with the configuration they imply ([`VggConfig::from_weights`]).
    pub fn load(weights: &WeightMap, device: &Device) -> Result<Self> {
        VggConfig::from_weights(weights)?.load(weights, device)
    }

    /// The configuration this network was built with.
    pub fn config(&self) -> VggConfig {
        self.config
    }

    /// The same weights with another pooling.
    pub fn with_pooling(mut self, pooling: Pooling) -> Self {
        self.config.pooling = pooling;
        self
    }

    /// The convolutions in order (13 or 16), for code that runs the network by other means
    /// (likeness-style's direct evaluator).
    pub fn convs(&self) -> &[Conv2d] {
        &self.convs
    }

    /// The `[1, 3, H, W]` input tensor of `image`, prepared the way these weights expect.
    pub fn image_to_tensor(&self, image: &Image, device: &Device) -> Tensor<4> {
        self.config.input.image_to_tensor(image, device)
    }

    /// The activations at `wanted`, in that order, for an input `[N, 3, H, W]` prepared by
    /// [`image_to_tensor`](Self::image_to_tensor). Computes only up to the deepest layer asked.
    pub fn forward_layers(&self, x: Tensor<4>, wanted: &[VggLayer]) -> Result<Vec<Tensor<4>>> {
        let variant = self.config.variant;
        let positions = wanted
            .iter()
            .map(|l| {
                l.position(variant)
                    .ok_or_else(|| NnError::Mismatch(format!("{variant:?} has no layer {l}")))
            })
            .collect::<Result<Vec<_>>>()?;
        let Some(&last) = positions.iter().max() else {
            return Ok(vec![]);
        };
        let [_, channels, h, w] = x.dims();
        // Every pool up to `last` halves the size; a side that reaches 0 is an unusable input.
        let pools = (0..5)
            .filter(|&b| {
                VggLayer::Pool(b + 1)
                    .position(variant)
                    .is_some_and(|p| p <= last)
            })
            .count();
        if channels != 3 || h >> pools == 0 || w >> pools == 0 {
            return Err(NnError::Shape {
                name: "VGG input".into(),
                expected: vec![x.dims()[0], 3, 1 << pools, 1 << pools],
                got: x.dims().to_vec(),
            });
        }
        let mut out: Vec<Option<Tensor<4>>> = vec![None; wanted.len()];
        let mut keep = |pos: usize, t: &Tensor<4>| {
            for (slot, &p) in out.iter_mut().zip(&positions) {
                if p == pos {
                    *slot = Some(t.clone());
                }
            }
        };
        let mut x = x;
        let mut pos = 0;
        let mut convs = self.convs.iter();
        'blocks: for n in variant.convs_per_block() {
            for _ in 0..n {
                let conv = convs.next().ok_or_else(|| {
                    NnError::Mismatch("VGG has fewer conv layers than its config".into())
                })?;
                x = conv.forward(x);
                keep(pos, &x);
                x = relu(x);
                keep(pos + 1, &x);
                pos += 2;
                if pos > last {
                    break 'blocks;
                }
            }
            x = self.pool(x);
            keep(pos, &x);
            pos += 1;
            if pos > last {
                break;
            }
        }
        out.into_iter()
            .zip(wanted)
            .map(|(t, l)| t.ok_or_else(|| NnError::Mismatch(format!("layer {l} not computed"))))
            .collect()
    }

    /// The whole stack, through the last pooling: `[N, 512, H/32, W/32]`.
    pub fn forward(&self, x: Tensor<4>) -> Result<Tensor<4>> {
        let mut out = self.forward_layers(x, &[VggLayer::Pool(5)])?;
        out.pop()
            .ok_or_else(|| NnError::Mismatch("pool5 not computed".into()))
    }

    fn pool(&self, x: Tensor<4>) -> Tensor<4> {
        match self.config.pooling {
            Pooling::Max => MaxPool2dConfig::new([2, 2]).init().forward(x),
            Pooling::Average => AvgPool2dConfig::new([2, 2]).init().forward(x),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layer_names_round_trip_and_positions_follow_the_forward_order() {
        for s in ["conv1_1", "relu3_3", "pool5", "relu5_4"] {
            assert_eq!(s.parse::<VggLayer>().unwrap().to_string(), s);
        }
        for bad in ["relu", "relu0_1", "conv1", "pool", "relu1_x", "fc6"] {
            assert!(bad.parse::<VggLayer>().is_err(), "{bad}");
        }
        let v = VggVariant::Vgg16;
        assert_eq!(VggLayer::Conv(1, 1).position(v), Some(0));
        assert_eq!(VggLayer::Relu(1, 2).position(v), Some(3));
        assert_eq!(VggLayer::Pool(1).position(v), Some(4));
        assert_eq!(VggLayer::Conv(2, 1).position(v), Some(5));
        assert_eq!(VggLayer::Pool(5).position(v), Some(30));
        assert_eq!(VggLayer::Relu(5, 4).position(v), None);
        assert_eq!(VggLayer::Relu(5, 4).position(VggVariant::Vgg19), Some(35));
        assert_eq!(VggLayer::Pool(6).position(v), None);
        assert_eq!(VggLayer::Relu(1, 3).position(v), None);
    }

    #[test]
    fn torchvision_indices_match_torchvision() {
        assert_eq!(
            torchvision_conv_indices(VggVariant::Vgg16),
            [0, 2, 5, 7, 10, 12, 14, 17, 19, 21, 24, 26, 28]
        );
        assert_eq!(
            torchvision_conv_indices(VggVariant::Vgg19),
            [0, 2, 5, 7, 10, 12, 14, 16, 19, 21, 23, 25, 28, 30, 32, 34]
        );
        assert_eq!(conv_channels(VggVariant::Vgg16)[4], (128, 256));
    }

    #[test]
    fn inputs_too_small_for_the_deepest_layer_are_refused() {
        let device = crate::device::cpu();
        let mut weights = WeightMap::new();
        for (i, (c_in, c_out)) in torchvision_conv_indices(VggVariant::Vgg16)
            .into_iter()
            .zip(conv_channels(VggVariant::Vgg16))
        {
            let w = vec![0.0; c_out * c_in * 9];
            weights
                .insert(format!("features.{i}.weight"), vec![c_out, c_in, 3, 3], w)
                .unwrap();
            weights
                .insert(format!("features.{i}.bias"), vec![c_out], vec![0.0; c_out])
                .unwrap();
        }
        let vgg = Vgg::load(&weights, &device).unwrap();
        let x = |s| Tensor::<4>::zeros([1, 3, s, s], &device);
        assert!(vgg.forward_layers(x(16), &[VggLayer::Relu(5, 3)]).is_ok());
        assert!(vgg.forward_layers(x(16), &[VggLayer::Pool(5)]).is_err());
        assert!(vgg.forward(x(31)).is_err());
        assert_eq!(vgg.forward(x(32)).unwrap().dims(), [1, 512, 1, 1]);
        let grey = Tensor::<4>::zeros([1, 1, 32, 32], &device);
        assert!(vgg.forward_layers(grey, &[VggLayer::Relu(1, 1)]).is_err());
        assert!(vgg.forward_layers(x(32), &[VggLayer::Relu(5, 4)]).is_err());
    }

    #[test]
    fn both_input_conventions_invert_exactly() {
        let pixels: Vec<u8> = (0..4 * 3 * 3).map(|i| (i * 7 % 256) as u8).collect();
        let img = Image::from_rgb(4, 3, pixels).unwrap();
        let device = crate::device::cpu();
        for conv in [InputConvention::CaffeBgr, InputConvention::TorchvisionRgb] {
            let t = conv.image_to_tensor(&img, &device);
            assert_eq!(t.dims(), [1, 3, 3, 4]);
            assert_eq!(conv.tensor_to_image(t).unwrap(), img);
            assert_eq!(conv.as_str().parse::<InputConvention>().unwrap(), conv);
        }
        // Caffe: channel 0 is blue minus its mean
        let t = InputConvention::CaffeBgr.image_to_tensor(&img, &device);
        let v = t.into_data().try_to_vec::<f32>().unwrap();
        assert_eq!(v[0], img.pixel(0, 0)[2] as f32 - CAFFE_BGR_MEAN[0]);
    }
}
