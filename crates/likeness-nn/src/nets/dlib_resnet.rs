//! dlib's face-recognition ResNet ("ResNet-29", `dlib_face_recognition_resnet_model_v1.dat`):
//! a 150×150 RGB face chip in, a 128-D descriptor out; two faces are the same person when their
//! descriptors are within 0.6 of each other (Euclidean).
//!
//! The architecture is dlib's `anet_type` from `dnn_face_recognition_ex.cpp`:
//! conv 7×7/2 (32) → affine → ReLU → max-pool 3×3/2 → 14 residual blocks in five stages
//! (32, 64, 128, 256, 256 filters) → average over all positions → fully connected 128, no bias.
//! Each block is conv 3×3 → affine → ReLU → conv 3×3 → affine, plus a shortcut, then ReLU.
//! The first block of each later stage strides its first conv by 2 and average-pools its
//! shortcut 2×2/2. Batch norm was folded into per-channel affine layers before release.
//!
//! Two dlib conventions matter for exact results:
//! - convolutions and pools with stride 2 have no padding (dlib's default padding is
//!   `kernel/2` only at stride 1), so 150 → 72 → 35 → 17 → 8 → 3 → 1 on the main path;
//! - the shortcut sum (`add_prev`) of tensors of different shapes zero-pads both to the larger
//!   size in every dimension, aligned at channel 0 and the top-left corner. With 150×150 input
//!   this happens in every down-sampling block (channels double) and in the last two spatially
//!   (the pooled shortcut is 4×4 and 2×2 where the strided path gives 3×3 and 1×1).
//!
//! The descriptor is the raw output of the last layer, not L2-normalised: that is what dlib's
//! `compute_face_descriptor` returns (norms are around 1.4–1.6).
//!
//! Weight names (all f32): `conv1.weight` [32,3,7,7], `conv1.bias` [32], `affine1.weight`
//! (per-channel scale) and `affine1.bias` (shift) [32]; for block `i` in 0..14,
//! `blocks.{i}.conv1.*`, `blocks.{i}.affine1.*`, `blocks.{i}.conv2.*`, `blocks.{i}.affine2.*`;
//! `fc.weight` [128,256] (output × input, as PyTorch stores linear layers).

use burn::module::{Module, Param};
use burn::nn::PaddingConfig2d;
use burn::nn::conv::Conv2d;
use burn::tensor::activation::relu;
use burn::tensor::module::{avg_pool2d, max_pool2d};
use burn::tensor::ops::{AvgPoolOptions, MaxPoolOptions, PadMode};
use burn::tensor::{Device, Tensor, TensorData};

use crate::error::{NnError, Result};
use crate::image::Image;
use crate::weights::WeightMap;

/// Side of the square RGB chip the network takes (`input_rgb_image_sized<150>`).
/// The `format` metadata of weights holding this network (written by the dlib importer and
/// [`DlibResNet::to_weights`]): how other code recognises a face encoder of this architecture.
pub const FORMAT: &str = "dlib_resnet";
pub const CHIP_SIZE: usize = 150;

/// Per-channel means, R, G, B, that dlib's `input_rgb_image_sized` subtracts from 0–255
/// pixels; the values are stored in the model file (and checked by the importer).
pub const INPUT_MEAN_RGB: [f32; 3] = [122.782, 117.001, 104.298];

/// dlib's `input_rgb_image` divides the centred pixels by 256 (not 255).
pub const INPUT_SCALE: f32 = 256.0;

/// Length of the descriptor.
pub const EMBEDDING_DIM: usize = 128;

/// One stage of residual blocks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stage {
    /// Filters of every conv in the stage.
    pub filters: usize,
    /// Number of blocks.
    pub blocks: usize,
    /// Whether the first block halves the resolution (stride-2 conv, pooled shortcut).
    pub downsample: bool,
}

/// One residual block, as the importer and the network both enumerate them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BlockSpec {
    pub in_channels: usize,
    pub filters: usize,
    pub downsample: bool,
}

/// The network's shape. [`Default`] is dlib's released face model.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DlibResNetConfig {
    /// Filters of the 7×7 stem conv.
    pub stem_filters: usize,
    /// Stages from input to output.
    pub stages: Vec<Stage>,
    /// Descriptor length.
    pub embedding_dim: usize,
}

impl Default for DlibResNetConfig {
    /// `alevel4` … `alevel0` of dlib's `anet_type`.
    fn default() -> Self {
        let stage = |filters, blocks, downsample| Stage {
            filters,
            blocks,
            downsample,
        };
        DlibResNetConfig {
            stem_filters: 32,
            stages: vec![
                stage(32, 3, false),
                stage(64, 4, true),
                stage(128, 3, true),
                stage(256, 3, true),
                stage(256, 1, true),
            ],
            embedding_dim: EMBEDDING_DIM,
        }
    }
}

/// Stem conv kernel and stride, and its max-pool's window and stride (dlib: `con<32,7,7,2,2>`,
/// `max_pool<3,3,2,2>`, both unpadded).
pub const STEM_KERNEL: usize = 7;
pub const STEM_STRIDE: usize = 2;
pub const STEM_POOL: usize = 3;
pub const STEM_POOL_STRIDE: usize = 2;
/// The shortcut pool of a down-sampling block (`avg_pool<2,2,2,2>`, unpadded).
pub const SHORTCUT_POOL: usize = 2;

impl DlibResNetConfig {
    /// Every residual block, input side first.
    pub fn blocks(&self) -> Vec<BlockSpec> {
        let mut out = Vec::new();
        let mut channels = self.stem_filters;
        for stage in &self.stages {
            for b in 0..stage.blocks {
                out.push(BlockSpec {
                    in_channels: channels,
                    filters: stage.filters,
                    downsample: stage.downsample && b == 0,
                });
                channels = stage.filters;
            }
        }
        out
    }

    /// Channels entering the final fully connected layer.
    pub fn feature_dim(&self) -> usize {
        self.stages.last().map_or(self.stem_filters, |s| s.filters)
    }

    /// Builds the network from `weights` (named as the module documentation says). The
    /// parameters stay trainable (for fine-tuning with triplet loss); call
    /// [`Module::no_grad`] to freeze them on an autodiff device.
    pub fn load(&self, weights: &WeightMap, device: &Device) -> Result<DlibResNet> {
        let conv1 = load_conv(
            weights,
            "conv1",
            [self.stem_filters, 3, STEM_KERNEL, STEM_KERNEL],
            STEM_STRIDE,
            0,
            device,
        )?;
        let affine1 = Affine::load(weights, "affine1", self.stem_filters, device)?;
        let blocks = self
            .blocks()
            .iter()
            .enumerate()
            .map(|(i, spec)| Block::load(weights, &format!("blocks.{i}"), spec, device))
            .collect::<Result<Vec<_>>>()?;
        let features = self.feature_dim();
        let fc = weights.expect("fc.weight", &[self.embedding_dim, features])?;
        // Stored output × input; the forward pass multiplies rows of features by input × output.
        let fc = Tensor::<2>::from_data(
            TensorData::new(fc.data.clone(), [self.embedding_dim, features]),
            device,
        )
        .transpose();
        Ok(DlibResNet {
            conv1,
            affine1,
            blocks,
            fc: Param::from_tensor(fc),
        })
    }
}

/// Per-channel scale and shift: dlib's `affine_` (a batch norm folded for inference).
#[derive(Module, Debug)]
struct Affine {
    weight: Param<Tensor<1>>,
    bias: Param<Tensor<1>>,
}

impl Affine {
    fn load(weights: &WeightMap, name: &str, channels: usize, device: &Device) -> Result<Self> {
        Ok(Affine {
            weight: weights.param(&format!("{name}.weight"), [channels], device)?,
            bias: weights.param(&format!("{name}.bias"), [channels], device)?,
        })
    }

    fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let [c] = self.weight.dims();
        x * self.weight.val().reshape([1, c, 1, 1]) + self.bias.val().reshape([1, c, 1, 1])
    }
}

#[derive(Module, Debug)]
struct Block {
    conv1: Conv2d,
    affine1: Affine,
    conv2: Conv2d,
    affine2: Affine,
    downsample: bool,
}

impl Block {
    fn load(weights: &WeightMap, name: &str, spec: &BlockSpec, device: &Device) -> Result<Self> {
        let f = spec.filters;
        // dlib pads a 3×3 conv by 1 at stride 1 and not at all at stride 2.
        let (stride, pad) = if spec.downsample { (2, 0) } else { (1, 1) };
        Ok(Block {
            conv1: load_conv(
                weights,
                &format!("{name}.conv1"),
                [f, spec.in_channels, 3, 3],
                stride,
                pad,
                device,
            )?,
            affine1: Affine::load(weights, &format!("{name}.affine1"), f, device)?,
            conv2: load_conv(
                weights,
                &format!("{name}.conv2"),
                [f, f, 3, 3],
                1,
                1,
                device,
            )?,
            affine2: Affine::load(weights, &format!("{name}.affine2"), f, device)?,
            downsample: spec.downsample,
        })
    }

    fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let y = relu(self.affine1.forward(self.conv1.forward(x.clone())));
        let y = self.affine2.forward(self.conv2.forward(y));
        let shortcut = if self.downsample {
            avg_pool2d(
                x,
                AvgPoolOptions::new([SHORTCUT_POOL, SHORTCUT_POOL])
                    .with_stride([SHORTCUT_POOL, SHORTCUT_POOL]),
            )
        } else {
            x
        };
        relu(add_zero_padded(y, shortcut))
    }
}

fn load_conv(
    weights: &WeightMap,
    name: &str,
    shape: [usize; 4],
    stride: usize,
    pad: usize,
    device: &Device,
) -> Result<Conv2d> {
    Ok(Conv2d {
        weight: weights.param(&format!("{name}.weight"), shape, device)?,
        bias: Some(weights.param(&format!("{name}.bias"), [shape[0]], device)?),
        stride: [stride, stride],
        kernel_size: [shape[2], shape[3]],
        dilation: [1, 1],
        groups: 1,
        padding: PaddingConfig2d::Explicit(pad, pad, pad, pad),
    })
}

/// dlib's `add_prev`: the sum of two tensors after zero-padding each (at the end of every
/// dimension) to the larger size of the two in that dimension.
pub fn add_zero_padded(a: Tensor<4>, b: Tensor<4>) -> Tensor<4> {
    let (da, db) = (a.dims(), b.dims());
    let target: [usize; 4] = std::array::from_fn(|i| da[i].max(db[i]));
    let grow = |t: Tensor<4>, d: [usize; 4]| {
        if d == target {
            t
        } else {
            let pads: [(usize, usize); 4] = std::array::from_fn(|i| (0, target[i] - d[i]));
            t.pad(pads, PadMode::Constant(0.0))
        }
    };
    grow(a, da) + grow(b, db)
}

/// dlib's face descriptor network. See the module documentation.
#[derive(Module, Debug)]
pub struct DlibResNet {
    conv1: Conv2d,
    affine1: Affine,
    blocks: Vec<Block>,
    /// Input × output.
    fc: Param<Tensor<2>>,
}

impl DlibResNet {
    /// Loads dlib's face model (the [`Default`] configuration) from `weights`.
    pub fn load(weights: &WeightMap, device: &Device) -> Result<Self> {
        DlibResNetConfig::default().load(weights, device)
    }

    /// Descriptors of a batch of chips: [N, 3, 150, 150] (see [`chips_to_tensor`]) → [N, 128].
    pub fn forward(&self, x: Tensor<4>) -> Tensor<2> {
        let x = relu(self.affine1.forward(self.conv1.forward(x)));
        let mut x = max_pool2d(
            x,
            MaxPoolOptions::new([STEM_POOL, STEM_POOL])
                .with_stride([STEM_POOL_STRIDE, STEM_POOL_STRIDE]),
        );
        for block in &self.blocks {
            x = block.forward(x);
        }
        // dlib's avg_pool_everything: the mean over every position, including those the last
        // add_prev zero-padded.
        let [n, c, _, _] = x.dims();
        let features = x.mean_dims(&[2, 3]).reshape([n, c]);
        features.matmul(self.fc.val())
    }

    /// Descriptors of face chips (each 150×150), one row of [`EMBEDDING_DIM`] values each.
    pub fn embed(&self, chips: &[Image], device: &Device) -> Result<Vec<Vec<f32>>> {
        if chips.is_empty() {
            return Ok(Vec::new());
        }
        let out = self.forward(chips_to_tensor(chips, device)?);
        let [n, d] = out.dims();
        let values = out
            .into_data()
            .try_into_vec::<f32>()
            .map_err(|e| NnError::Mismatch(format!("descriptor tensor: {e:?}")))?;
        crate::error::check_finite("the face descriptor the network computed", &values)?;
        Ok((0..n)
            .map(|i| values[i * d..(i + 1) * d].to_vec())
            .collect())
    }
}

impl DlibResNet {
    /// The weights under the names [`DlibResNetConfig::load`] reads (the inverse of loading),
    /// with `format = dlib_resnet` in the metadata: how a fine-tuned network is saved.
    pub fn to_weights(&self) -> Result<WeightMap> {
        fn values<const D: usize>(t: Tensor<D>, name: &str) -> Result<(Vec<usize>, Vec<f32>)> {
            let shape = t.dims().to_vec();
            let data = t
                .into_data()
                .try_into_vec::<f32>()
                .map_err(|e| NnError::Mismatch(format!("reading `{name}`: {e:?}")))?;
            Ok((shape, data))
        }
        fn put<const D: usize>(map: &mut WeightMap, name: String, t: Tensor<D>) -> Result<()> {
            let (shape, data) = values(t, &name)?;
            map.insert(name, shape, data)
        }
        fn put_conv(map: &mut WeightMap, name: &str, conv: &Conv2d) -> Result<()> {
            put(map, format!("{name}.weight"), conv.weight.val())?;
            if let Some(b) = &conv.bias {
                put(map, format!("{name}.bias"), b.val())?;
            }
            Ok(())
        }
        fn put_affine(map: &mut WeightMap, name: &str, affine: &Affine) -> Result<()> {
            put(map, format!("{name}.weight"), affine.weight.val())?;
            put(map, format!("{name}.bias"), affine.bias.val())
        }
        let mut map = WeightMap::new();
        put_conv(&mut map, "conv1", &self.conv1)?;
        put_affine(&mut map, "affine1", &self.affine1)?;
        for (i, block) in self.blocks.iter().enumerate() {
            put_conv(&mut map, &format!("blocks.{i}.conv1"), &block.conv1)?;
            put_affine(&mut map, &format!("blocks.{i}.affine1"), &block.affine1)?;
            put_conv(&mut map, &format!("blocks.{i}.conv2"), &block.conv2)?;
            put_affine(&mut map, &format!("blocks.{i}.affine2"), &block.affine2)?;
        }
        // Held input × output for the forward pass; stored output × input.
        put(&mut map, "fc.weight".to_string(), self.fc.val().transpose())?;
        map.set_meta("format", FORMAT);
        Ok(map)
    }
}

/// A point inside the network whose activations [`DlibResNet::forward_layers`] returns: `stem`
/// (after the 7×7/2 conv, affine and ReLU), `pool` (after the 3×3/2 max pool) or `block{i}`
/// (after residual block `i`, from 0, including its final ReLU).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DlibLayer {
    Stem,
    Pool,
    Block(usize),
}

impl std::str::FromStr for DlibLayer {
    type Err = NnError;

    fn from_str(s: &str) -> Result<Self> {
        match s {
            "stem" => Ok(DlibLayer::Stem),
            "pool" => Ok(DlibLayer::Pool),
            _ => s
                .strip_prefix("block")
                .and_then(|i| i.parse().ok())
                .map(DlibLayer::Block)
                .ok_or_else(|| {
                    NnError::Mismatch(format!(
                        "unknown dlib layer {s:?} (stem, pool or block0 … block13)"
                    ))
                }),
        }
    }
}

impl std::fmt::Display for DlibLayer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DlibLayer::Stem => f.write_str("stem"),
            DlibLayer::Pool => f.write_str("pool"),
            DlibLayer::Block(i) => write!(f, "block{i}"),
        }
    }
}

impl DlibResNet {
    /// Number of residual blocks.
    pub fn num_blocks(&self) -> usize {
        self.blocks.len()
    }

    /// Activations at `layers`, in that order, computed as [`DlibResNet::forward`] computes
    /// them; the pass stops after the deepest layer asked for. A block index past the last
    /// block is an error.
    pub fn forward_layers(&self, x: Tensor<4>, layers: &[DlibLayer]) -> Result<Vec<Tensor<4>>> {
        // Depth 0 is the stem, 1 the pool, 2 + i block i.
        let depth = |l: &DlibLayer| match l {
            DlibLayer::Stem => 0,
            DlibLayer::Pool => 1,
            DlibLayer::Block(i) => 2 + i,
        };
        if let Some(DlibLayer::Block(i)) = layers
            .iter()
            .find(|l| matches!(l, DlibLayer::Block(i) if *i >= self.blocks.len()))
        {
            return Err(NnError::Mismatch(format!(
                "dlib layer block{i} does not exist: the network has {} blocks",
                self.blocks.len()
            )));
        }
        let deepest = layers.iter().map(depth).max().unwrap_or(0);
        let mut taken: Vec<Option<Tensor<4>>> = vec![None; layers.len()];
        let mut keep = |d: usize, x: &Tensor<4>| {
            for (slot, l) in taken.iter_mut().zip(layers) {
                if depth(l) == d {
                    *slot = Some(x.clone());
                }
            }
        };
        let x = relu(self.affine1.forward(self.conv1.forward(x)));
        keep(0, &x);
        if deepest >= 1 {
            let mut x = max_pool2d(
                x,
                MaxPoolOptions::new([STEM_POOL, STEM_POOL])
                    .with_stride([STEM_POOL_STRIDE, STEM_POOL_STRIDE]),
            );
            keep(1, &x);
            for (i, block) in self.blocks.iter().enumerate().take(deepest - 1) {
                x = block.forward(x);
                keep(2 + i, &x);
            }
        }
        taken
            .into_iter()
            .zip(layers)
            .map(|(t, l)| t.ok_or_else(|| NnError::Mismatch(format!("dlib layer {l} not reached"))))
            .collect()
    }
}

/// The network's input for a batch of 150×150 RGB chips: NCHW, (pixel − [`INPUT_MEAN_RGB`]) /
/// [`INPUT_SCALE`], as dlib's `input_rgb_image_sized<150>` prepares it. An empty batch is an
/// error.
pub fn chips_to_tensor(chips: &[Image], device: &Device) -> Result<Tensor<4>> {
    if chips.is_empty() {
        return Err(NnError::Image("no face chips to embed".into()));
    }
    let plane = CHIP_SIZE * CHIP_SIZE;
    let mut data = vec![0f32; chips.len() * 3 * plane];
    for (i, chip) in chips.iter().enumerate() {
        if chip.width as usize != CHIP_SIZE || chip.height as usize != CHIP_SIZE {
            return Err(NnError::Image(format!(
                "face chip {i} is {}x{}, the network takes {CHIP_SIZE}x{CHIP_SIZE}",
                chip.width, chip.height
            )));
        }
        let sample = &mut data[i * 3 * plane..(i + 1) * 3 * plane];
        for (p, rgb) in chip.pixels.chunks_exact(3).enumerate() {
            for c in 0..3 {
                sample[c * plane + p] = (f32::from(rgb[c]) - INPUT_MEAN_RGB[c]) / INPUT_SCALE;
            }
        }
    }
    Ok(Tensor::from_data(
        TensorData::new(data, [chips.len(), 3, CHIP_SIZE, CHIP_SIZE]),
        device,
    ))
}

/// The network's input for one chip: [1, 3, 150, 150].
pub fn chip_to_tensor(chip: &Image, device: &Device) -> Result<Tensor<4>> {
    chips_to_tensor(std::slice::from_ref(chip), device)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_config_has_dlibs_fourteen_blocks() {
        let blocks = DlibResNetConfig::default().blocks();
        assert_eq!(blocks.len(), 14);
        assert_eq!(blocks.iter().filter(|b| b.downsample).count(), 4);
        assert_eq!(
            blocks[3],
            BlockSpec {
                in_channels: 32,
                filters: 64,
                downsample: true
            }
        );
        assert_eq!(DlibResNetConfig::default().feature_dim(), 256);
    }

    #[test]
    fn add_prev_zero_pads_channels_and_positions_at_the_end() {
        let device = crate::device::cpu();
        // a: 1 channel, 1x1; b: 2 channels, 2x1.
        let a = Tensor::<4>::from_data(TensorData::new(vec![10f32], [1, 1, 1, 1]), &device);
        let b = Tensor::<4>::from_data(
            TensorData::new(vec![1f32, 2.0, 3.0, 4.0], [1, 2, 2, 1]),
            &device,
        );
        let sum = add_zero_padded(a, b);
        assert_eq!(sum.dims(), [1, 2, 2, 1]);
        assert_eq!(
            sum.into_data().try_into_vec::<f32>().unwrap(),
            vec![11.0, 2.0, 3.0, 4.0]
        );
    }

    /// A network with random weights of dlib's shapes (no model file needed).
    fn random_weights(seed: u32) -> WeightMap {
        let config = DlibResNetConfig::default();
        let mut state = seed;
        let mut next = move || {
            // A small LCG: any spread of values will do.
            state = state.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            (state >> 8) as f32 / (1u32 << 24) as f32 - 0.5
        };
        let mut map = WeightMap::new();
        let mut add = |name: String, shape: Vec<usize>, scale: f32| {
            let n = shape.iter().product();
            let data = (0..n).map(|_| next() * scale).collect();
            map.insert(name, shape, data).unwrap();
        };
        let s = config.stem_filters;
        add("conv1.weight".into(), vec![s, 3, 7, 7], 0.1);
        add("conv1.bias".into(), vec![s], 0.1);
        add("affine1.weight".into(), vec![s], 1.0);
        add("affine1.bias".into(), vec![s], 0.1);
        for (i, b) in config.blocks().iter().enumerate() {
            let f = b.filters;
            add(
                format!("blocks.{i}.conv1.weight"),
                vec![f, b.in_channels, 3, 3],
                0.1,
            );
            add(format!("blocks.{i}.conv1.bias"), vec![f], 0.1);
            add(format!("blocks.{i}.conv2.weight"), vec![f, f, 3, 3], 0.1);
            add(format!("blocks.{i}.conv2.bias"), vec![f], 0.1);
            for a in ["affine1", "affine2"] {
                add(format!("blocks.{i}.{a}.weight"), vec![f], 1.0);
                add(format!("blocks.{i}.{a}.bias"), vec![f], 0.1);
            }
        }
        add(
            "fc.weight".into(),
            vec![config.embedding_dim, config.feature_dim()],
            0.2,
        );
        map
    }

    #[test]
    fn export_is_the_inverse_of_load() {
        let device = crate::device::cpu();
        let weights = random_weights(7);
        let net = DlibResNet::load(&weights, &device).unwrap();
        let exported = net.to_weights().unwrap();
        assert_eq!(exported.meta("format"), Some("dlib_resnet"));
        assert_eq!(exported.len(), weights.len());
        for (name, t) in weights.iter() {
            let e = exported.get(name).unwrap();
            assert_eq!(e.shape, t.shape, "{name}");
            assert_eq!(e.data, t.data, "{name}");
        }
        // Loading the export gives a network with the same outputs.
        let again = DlibResNet::load(&exported, &device).unwrap();
        let pixels: Vec<u8> = (0..CHIP_SIZE * CHIP_SIZE * 3)
            .map(|i| (i * 37 % 251) as u8)
            .collect();
        let chip = Image::from_rgb(CHIP_SIZE as u32, CHIP_SIZE as u32, pixels).unwrap();
        let a = net.embed(std::slice::from_ref(&chip), &device).unwrap();
        let b = again.embed(std::slice::from_ref(&chip), &device).unwrap();
        assert_eq!(a, b);
    }

    #[test]
    fn chips_are_centred_on_dlibs_means_and_scaled_by_256() {
        let device = crate::device::cpu();
        let mut pixels = vec![0u8; CHIP_SIZE * CHIP_SIZE * 3];
        pixels[..3].copy_from_slice(&[255, 128, 0]);
        let chip = Image::from_rgb(CHIP_SIZE as u32, CHIP_SIZE as u32, pixels).unwrap();
        let v = chip_to_tensor(&chip, &device)
            .unwrap()
            .into_data()
            .try_into_vec::<f32>()
            .unwrap();
        let plane = CHIP_SIZE * CHIP_SIZE;
        assert!((v[0] - (255.0 - 122.782) / 256.0).abs() < 1e-6);
        assert!((v[plane] - (128.0 - 117.001) / 256.0).abs() < 1e-6);
        assert!((v[2 * plane] - (0.0 - 104.298) / 256.0).abs() < 1e-6);
        let small = Image::from_rgb(2, 2, vec![0; 12]).unwrap();
        assert!(chip_to_tensor(&small, &device).is_err());
        assert!(chips_to_tensor(&[], &device).is_err());
    }
}
