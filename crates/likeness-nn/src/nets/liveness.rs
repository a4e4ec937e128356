//! The passive liveness (presentation-attack) network: a MiniFASNet-SE from the
//! Silent-Face-Anti-Spoofing family, as shipped in npm `faceplugin-face-recognition-js@0.0.1`
//! (`model/fr_liveness.onnx`, 1.9 MB f32, exported by PyTorch 1.7 at opset 9; the package says
//! MIT).
//!
//! Input: `[N, 3, 128, 128]`, **RGB, raw 0–255** (no scaling, no mean): the face box enlarged
//! 2.7× around its centre, resized to 128×128 (see `likeness-face`'s liveness module for the
//! crop). Output: 3 logits. The package's own code (`lib/fr_liveness.js`) takes the softmax of
//! the logits and reports **class 0** as the liveness score, and its demos threshold it (live
//! when ≥ 0.3 in one, ≥ 0.6 in another); classes 1 and 2 are the two kinds of attack.
//! (The upstream Silent-Face models put "real" at index 1; this export does not.)
//!
//! Architecture, read off the ONNX graph (batch norm already folded into every convolution's
//! bias, so each convolution here has one):
//!
//! - stem: conv 3×3/2 (3→32) + PReLU, depthwise 3×3 (32) + PReLU — 128 → 64;
//! - 15 "depthwise units", each 1×1 expand + PReLU → depthwise 3×3 (stride 1 or 2) + PReLU →
//!   1×1 project (no activation). Three units stride 2 (64 → 32 → 16 → 8) and change the width
//!   (32→64, 64→128, 128→128); the others are residual (`x + unit(x)`). The last unit of each
//!   residual stage adds squeeze-and-excitation before the sum: global average → 1×1 (C→C/4) →
//!   ReLU → 1×1 (C/4→C) → sigmoid, multiplied into the unit's output;
//! - head: 1×1 (128→512) + PReLU, depthwise 8×8 valid (512, no activation) → 512 values,
//!   linear 512→128 (no bias), batch norm (inference statistics), linear 128→3 (no bias).
//!
//! Weight names (written by [`crate::import::liveness_onnx`]): `stem.conv.{weight,bias}`,
//! `stem.prelu`, `stem_dw.conv.*`, `stem_dw.prelu`; for unit `i`: `units.{i}.expand.conv.*`,
//! `units.{i}.expand.prelu`, `units.{i}.dw.conv.*`, `units.{i}.dw.prelu`,
//! `units.{i}.project.conv.*`, and with SE `units.{i}.se.reduce.conv.*`,
//! `units.{i}.se.expand.conv.*`; `head.expand.conv.*`, `head.expand.prelu`, `head.dw.conv.*`;
//! `embed.weight` [512, 128] (input × output, as ONNX's MatMul holds it), `embed_bn.{gamma,beta,
//! mean,var}` [128], `classifier.weight` [128, 3]. Convolutions are OIHW; PReLU slopes [C].

use burn::module::{Module, Param};
use burn::nn::PaddingConfig2d;
use burn::nn::conv::Conv2d;
use burn::tensor::activation::{prelu, relu, sigmoid, softmax};
use burn::tensor::{Device, Tensor, TensorData};

use crate::error::{NnError, Result};
use crate::image::Image;
use crate::weights::WeightMap;

/// Side of the square input, in pixels.
pub const INPUT_SIZE: usize = 128;
/// Input channels, R, G, B.
pub const INPUT_CHANNELS: usize = 3;
/// Logits out.
pub const NUM_CLASSES: usize = 3;
/// The class the package reports as "live" (`score_arr[0]` in its `lib/fr_liveness.js`).
pub const LIVE_CLASS: usize = 0;
/// How much the package enlarges the detector's box around its centre before cropping
/// (`alignLivenessImage(img, bbox, 2.7)` in `lib/fr_liveness.js`; 2.7 is also the scale of the
/// upstream Silent-Face MiniFASNetV2 model's name).
pub const CROP_SCALE: f32 = 2.7;
/// Channels of the stem.
pub const STEM_CHANNELS: usize = 32;
/// Width of the head's expansion, and of the vector the depthwise 8×8 leaves.
pub const HEAD_CHANNELS: usize = 512;
/// Width of the embedding between the two linear layers.
pub const EMBED_DIM: usize = 128;
/// Side of the last feature map (128 / 2⁴), the head's depthwise kernel.
pub const HEAD_KERNEL: usize = 8;
/// The squeeze-and-excitation bottleneck divides the width by this.
pub const SE_REDUCTION: usize = 4;
/// epsilon of the batch norm after the embedding (the ONNX node's attribute, 1e-5 in f32).
pub const BN_EPSILON: f32 = 1e-5;
/// Metadata key (and value) naming the architecture in imported weights.
pub const ARCHITECTURE_META: &str = "architecture";
/// See [`ARCHITECTURE_META`].
pub const ARCHITECTURE: &str = "minifasnet_se";

/// One depthwise unit: 1×1 `in_channels → hidden`, depthwise 3×3 `hidden` (stride), 1×1
/// `hidden → out_channels`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UnitSpec {
    pub in_channels: usize,
    pub hidden: usize,
    pub out_channels: usize,
    pub stride: usize,
    /// Adds its input (only units keeping the width at stride 1).
    pub residual: bool,
    /// Squeeze-and-excitation on its output before the residual sum.
    pub se: bool,
}

const fn down(in_channels: usize, hidden: usize, out_channels: usize) -> UnitSpec {
    UnitSpec {
        in_channels,
        hidden,
        out_channels,
        stride: 2,
        residual: false,
        se: false,
    }
}

const fn res(channels: usize, hidden: usize, se: bool) -> UnitSpec {
    UnitSpec {
        in_channels: channels,
        hidden,
        out_channels: channels,
        stride: 1,
        residual: true,
        se,
    }
}

/// The 15 units of the shipped model, read off its ONNX graph (the pruned widths of
/// MiniFASNet's "keep" list).
pub const UNITS: [UnitSpec; 15] = [
    down(32, 103, 64),
    res(64, 13, false),
    res(64, 13, false),
    res(64, 13, false),
    res(64, 13, true),
    down(64, 231, 128),
    res(128, 231, false),
    res(128, 52, false),
    res(128, 26, false),
    res(128, 77, false),
    res(128, 26, false),
    res(128, 26, true),
    down(128, 308, 128),
    res(128, 26, false),
    res(128, 26, true),
];

/// One convolution of the network, in the order the ONNX file holds them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConvSpec {
    /// Weight-name prefix (`{name}.conv.weight`, `{name}.conv.bias`).
    pub name: String,
    pub out_channels: usize,
    pub in_channels: usize,
    pub kernel: usize,
    pub stride: usize,
    pub padding: usize,
    pub groups: usize,
    /// Followed by a PReLU (`{name}.prelu`).
    pub prelu: bool,
}

impl ConvSpec {
    fn new(name: String, out: usize, input: usize, kernel: usize, stride: usize) -> Self {
        ConvSpec {
            name,
            out_channels: out,
            in_channels: input,
            kernel,
            stride,
            padding: kernel / 2,
            groups: 1,
            prelu: false,
        }
    }

    fn depthwise(name: String, channels: usize, kernel: usize, stride: usize) -> Self {
        ConvSpec {
            groups: channels,
            ..ConvSpec::new(name, channels, channels, kernel, stride)
        }
    }

    fn with_prelu(self) -> Self {
        ConvSpec {
            prelu: true,
            ..self
        }
    }

    /// The OIHW weight shape.
    pub fn weight_shape(&self) -> [usize; 4] {
        [
            self.out_channels,
            self.in_channels / self.groups,
            self.kernel,
            self.kernel,
        ]
    }
}

/// Every convolution of the network, in file (= execution) order: 55 for the shipped model.
pub fn conv_specs() -> Vec<ConvSpec> {
    let mut specs = vec![
        ConvSpec::new("stem".into(), STEM_CHANNELS, INPUT_CHANNELS, 3, 2).with_prelu(),
        ConvSpec::depthwise("stem_dw".into(), STEM_CHANNELS, 3, 1).with_prelu(),
    ];
    for (i, u) in UNITS.iter().enumerate() {
        specs.push(
            ConvSpec::new(format!("units.{i}.expand"), u.hidden, u.in_channels, 1, 1).with_prelu(),
        );
        specs
            .push(ConvSpec::depthwise(format!("units.{i}.dw"), u.hidden, 3, u.stride).with_prelu());
        specs.push(ConvSpec::new(
            format!("units.{i}.project"),
            u.out_channels,
            u.hidden,
            1,
            1,
        ));
        if u.se {
            let c = u.out_channels;
            specs.push(ConvSpec::new(
                format!("units.{i}.se.reduce"),
                c / SE_REDUCTION,
                c,
                1,
                1,
            ));
            specs.push(ConvSpec::new(
                format!("units.{i}.se.expand"),
                c,
                c / SE_REDUCTION,
                1,
                1,
            ));
        }
    }
    let last = UNITS[UNITS.len() - 1].out_channels;
    specs.push(ConvSpec::new("head.expand".into(), HEAD_CHANNELS, last, 1, 1).with_prelu());
    specs.push(ConvSpec {
        padding: 0,
        ..ConvSpec::depthwise("head.dw".into(), HEAD_CHANNELS, HEAD_KERNEL, 1)
    });
    specs
}

/// Builds [`Liveness`] networks.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LivenessConfig;

impl LivenessConfig {
    /// Builds the network from `weights` (names in the module documentation).
    pub fn load(&self, weights: &WeightMap, device: &Device) -> Result<Liveness> {
        if let Some(arch) = weights.meta(ARCHITECTURE_META)
            && arch != ARCHITECTURE
        {
            return Err(NnError::Mismatch(format!(
                "weights are a `{arch}`, the liveness network is a `{ARCHITECTURE}`"
            )));
        }
        let mut layers = conv_specs()
            .into_iter()
            .map(|spec| ConvLayer::load(weights, &spec, device))
            .collect::<Result<Vec<_>>>()?
            .into_iter();
        let mut next = || {
            layers
                .next()
                .ok_or_else(|| NnError::Mismatch("too few convolutions".into()))
        };
        let stem = [next()?, next()?];
        let mut units = Vec::with_capacity(UNITS.len());
        for spec in &UNITS {
            let expand = next()?;
            let dw = next()?;
            let project = next()?;
            let se = if spec.se {
                Some([next()?, next()?])
            } else {
                None
            };
            units.push(Unit {
                expand,
                dw,
                project,
                se,
                residual: spec.residual,
            });
        }
        let head = [next()?, next()?];
        let gamma = weights.expect("embed_bn.gamma", &[EMBED_DIM])?;
        let beta = weights.expect("embed_bn.beta", &[EMBED_DIM])?;
        let mean = weights.expect("embed_bn.mean", &[EMBED_DIM])?;
        let var = weights.expect("embed_bn.var", &[EMBED_DIM])?;
        let scale: Vec<f32> = gamma
            .data
            .iter()
            .zip(&var.data)
            .map(|(g, v)| g / (v + BN_EPSILON).sqrt())
            .collect();
        let shift: Vec<f32> = beta
            .data
            .iter()
            .zip(&mean.data)
            .zip(&scale)
            .map(|((b, m), s)| b - m * s)
            .collect();
        let row = |v: Vec<f32>| {
            Param::from_tensor(Tensor::from_data(
                TensorData::new(v, [1, EMBED_DIM]),
                device,
            ))
        };
        Ok(Liveness {
            stem,
            units,
            head,
            embed: weights.param("embed.weight", [HEAD_CHANNELS, EMBED_DIM], device)?,
            bn_scale: row(scale),
            bn_shift: row(shift),
            classifier: weights.param("classifier.weight", [EMBED_DIM, NUM_CLASSES], device)?,
        })
    }
}

/// A convolution with its optional PReLU.
#[derive(Module, Debug)]
struct ConvLayer {
    conv: Conv2d,
    alpha: Option<Param<Tensor<1>>>,
}

impl ConvLayer {
    fn load(weights: &WeightMap, spec: &ConvSpec, device: &Device) -> Result<Self> {
        let shape = spec.weight_shape();
        let conv = Conv2d {
            weight: weights.param(&format!("{}.conv.weight", spec.name), shape, device)?,
            bias: Some(weights.param(
                &format!("{}.conv.bias", spec.name),
                [spec.out_channels],
                device,
            )?),
            stride: [spec.stride; 2],
            kernel_size: [spec.kernel; 2],
            dilation: [1, 1],
            groups: spec.groups,
            padding: PaddingConfig2d::Explicit(
                spec.padding,
                spec.padding,
                spec.padding,
                spec.padding,
            ),
        };
        let alpha = if spec.prelu {
            Some(weights.param(&format!("{}.prelu", spec.name), [spec.out_channels], device)?)
        } else {
            None
        };
        Ok(ConvLayer { conv, alpha })
    }

    fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let y = self.conv.forward(x);
        match &self.alpha {
            Some(alpha) => prelu(y, alpha.val()),
            None => y,
        }
    }
}

#[derive(Module, Debug)]
struct Unit {
    expand: ConvLayer,
    dw: ConvLayer,
    project: ConvLayer,
    se: Option<[ConvLayer; 2]>,
    residual: bool,
}

impl Unit {
    fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let mut y = self
            .project
            .forward(self.dw.forward(self.expand.forward(x.clone())));
        if let Some([reduce, expand]) = &self.se {
            let [n, c, h, w] = y.dims();
            let pooled = y
                .clone()
                .reshape([n, c, h * w])
                .mean_dim(2)
                .reshape([n, c, 1, 1]);
            let gate = sigmoid(expand.forward(relu(reduce.forward(pooled))));
            y = y * gate;
        }
        if self.residual { x + y } else { y }
    }
}

/// The liveness network (inference; batch norm in its running statistics).
#[derive(Module, Debug)]
pub struct Liveness {
    stem: [ConvLayer; 2],
    units: Vec<Unit>,
    head: [ConvLayer; 2],
    embed: Param<Tensor<2>>,
    bn_scale: Param<Tensor<2>>,
    bn_shift: Param<Tensor<2>>,
    classifier: Param<Tensor<2>>,
}

impl Liveness {
    /// Builds the network from imported weights.
    pub fn load(weights: &WeightMap, device: &Device) -> Result<Self> {
        LivenessConfig.load(weights, device)
    }

    /// The 3 logits per input, `[N, 3]`, for `x` `[N, 3, 128, 128]` RGB 0–255 (see
    /// [`image_input`]).
    pub fn forward(&self, x: Tensor<4>) -> Tensor<2> {
        let mut x = self.stem[1].forward(self.stem[0].forward(x));
        for unit in &self.units {
            x = unit.forward(x);
        }
        let x = self.head[1].forward(self.head[0].forward(x));
        let n = x.dims()[0];
        let v = x.reshape([n, HEAD_CHANNELS]).matmul(self.embed.val());
        let v = v * self.bn_scale.val() + self.bn_shift.val();
        v.matmul(self.classifier.val())
    }

    /// Probability of [`LIVE_CLASS`] (softmax over the logits), one per input.
    pub fn live_probability(&self, x: Tensor<4>) -> Result<Vec<f32>> {
        let p = softmax(self.forward(x), 1);
        let n = p.dims()[0];
        let values = p
            .into_data()
            .try_into_vec::<f32>()
            .map_err(|e| NnError::Mismatch(format!("liveness output is not f32: {e:?}")))?;
        Ok((0..n)
            .map(|i| values[i * NUM_CLASSES + LIVE_CLASS])
            .collect())
    }
}

/// The network input for `crops` (each already 128×128): `[N, 3, 128, 128]`, RGB, 0–255.
pub fn image_input(crops: &[Image], device: &Device) -> Result<Tensor<4>> {
    let plane = INPUT_SIZE * INPUT_SIZE;
    let mut data = vec![0.0f32; crops.len() * INPUT_CHANNELS * plane];
    for (k, crop) in crops.iter().enumerate() {
        if crop.width as usize != INPUT_SIZE || crop.height as usize != INPUT_SIZE {
            return Err(NnError::Image(format!(
                "the liveness network needs {INPUT_SIZE}×{INPUT_SIZE} crops, got {}×{}",
                crop.width, crop.height
            )));
        }
        let base = k * INPUT_CHANNELS * plane;
        for (p, rgb) in crop.pixels.chunks_exact(INPUT_CHANNELS).enumerate() {
            for (c, &v) in rgb.iter().enumerate() {
                data[base + c * plane + p] = f32::from(v);
            }
        }
    }
    Ok(Tensor::from_data(
        TensorData::new(data, [crops.len(), INPUT_CHANNELS, INPUT_SIZE, INPUT_SIZE]),
        device,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shipped_graph_has_55_convolutions_in_this_order() {
        let specs = conv_specs();
        assert_eq!(specs.len(), 55);
        assert_eq!(specs[0].weight_shape(), [32, 3, 3, 3]);
        assert_eq!(specs[1].weight_shape(), [32, 1, 3, 3]);
        assert_eq!(specs[4].weight_shape(), [64, 103, 1, 1]);
        // unit 4 carries SE: reduce 64 → 16 then expand 16 → 64, right after its projection.
        let se = specs
            .iter()
            .position(|s| s.name == "units.4.se.reduce")
            .unwrap();
        assert_eq!(specs[se - 1].name, "units.4.project");
        assert_eq!(specs[se].weight_shape(), [16, 64, 1, 1]);
        assert_eq!(specs[54].weight_shape(), [512, 1, 8, 8]);
        assert_eq!(specs[54].padding, 0);
        let parameters: usize = specs
            .iter()
            .map(|s| {
                s.weight_shape().iter().product::<usize>()
                    + s.out_channels * (1 + usize::from(s.prelu))
            })
            .sum::<usize>()
            + HEAD_CHANNELS * EMBED_DIM
            + 4 * EMBED_DIM
            + EMBED_DIM * NUM_CLASSES;
        // The ONNX file's 150 initializers hold 468,561 values (counted with the onnx package),
        // one of them the flatten's one-element shape constant.
        assert_eq!(parameters, 468_561 - 1);
    }

    #[test]
    fn a_crop_of_the_wrong_size_is_refused() {
        let device = crate::device::cpu();
        let img = Image::from_rgb(64, 64, vec![0; 64 * 64 * 3]).unwrap();
        assert!(matches!(
            image_input(&[img], &device),
            Err(NnError::Image(_))
        ));
    }
}
