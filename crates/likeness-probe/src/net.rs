//! The networks that can be probed, behind one trait.

use burn::tensor::{Device, Tensor};
use likeness_nn::NnError;
use likeness_nn::image::Image;
use likeness_nn::nets::dlib_resnet::{
    CHIP_SIZE, DlibLayer, DlibResNet, DlibResNetConfig, STEM_KERNEL, STEM_POOL, STEM_POOL_STRIDE,
    STEM_STRIDE, chip_to_tensor,
};
use likeness_nn::nets::vgg::{Vgg, VggLayer, VggVariant, conv_channels};

use crate::error::{ProbeError, Result};
use crate::field::{ReceptiveField, SpatialOp, receptive_fields};

/// One layer's activations for one image, channel-major (`[C, H, W]`).
#[derive(Debug, Clone, PartialEq)]
pub struct ActivationMap {
    pub channels: usize,
    pub height: usize,
    pub width: usize,
    pub values: Vec<f32>,
}

impl ActivationMap {
    /// The `H × W` map of one channel.
    pub fn channel(&self, c: usize) -> &[f32] {
        let n = self.height * self.width;
        &self.values[c * n..(c + 1) * n]
    }

    /// The map of the single image of a `[1, C, H, W]` tensor.
    pub fn from_tensor(t: Tensor<4>) -> Result<Self> {
        let [n, channels, height, width] = t.dims();
        if n != 1 {
            return Err(NnError::Shape {
                name: "activation batch".into(),
                expected: vec![1, channels, height, width],
                got: vec![n, channels, height, width],
            }
            .into());
        }
        let values = t
            .into_data()
            .try_into_vec::<f32>()
            .map_err(|e| NnError::Mismatch(format!("activations are not f32: {e:?}")))?;
        Ok(ActivationMap {
            channels,
            height,
            width,
            values,
        })
    }
}

/// A network whose named layers can be probed.
pub trait ProbeNet {
    /// A short name for messages and sheets ("VGG-16").
    fn name(&self) -> String;
    /// The layers that can be probed, input side first.
    fn layers(&self) -> Vec<String>;
    /// Units (channels) of `layer`.
    fn channels(&self, layer: &str) -> Result<usize>;
    /// Receptive field of `layer`'s units in input pixels.
    fn receptive_field(&self, layer: &str) -> Result<ReceptiveField>;
    /// Activations of `layers`, in that order, for one image as it is (no resizing).
    fn activations(&self, image: &Image, layers: &[String]) -> Result<Vec<ActivationMap>>;
}

/// VGG's convolutions: 3×3, stride 1, padded by 1 on every side (Simonyan & Zisserman 2014,
/// §2.1; `nets::vgg` builds them so).
pub const VGG_CONV: SpatialOp = SpatialOp::new(3, 1, 1);
/// VGG's pooling between blocks: 2×2 windows, stride 2, unpadded (same paper, §2.1).
pub const VGG_POOL: SpatialOp = SpatialOp::new(2, 2, 0);

/// Every named layer of a VGG with its spatial operation (None for element-wise ReLUs) and
/// channels, in forward order.
pub fn vgg_layer_list(variant: VggVariant) -> Vec<(VggLayer, Option<SpatialOp>, usize)> {
    let channels = conv_channels(variant);
    let mut out = Vec::new();
    let mut conv = 0;
    for (b, n) in variant.convs_per_block().into_iter().enumerate() {
        let block = b as u8 + 1;
        let mut width = 0;
        for c in 0..n {
            width = channels[conv].1;
            conv += 1;
            out.push((VggLayer::Conv(block, c as u8 + 1), Some(VGG_CONV), width));
            out.push((VggLayer::Relu(block, c as u8 + 1), None, width));
        }
        out.push((VggLayer::Pool(block), Some(VGG_POOL), width));
    }
    out
}

/// The receptive field of every named VGG layer, from [`vgg_layer_list`].
pub fn vgg_receptive_fields(variant: VggVariant) -> Vec<(VggLayer, ReceptiveField)> {
    let list = vgg_layer_list(variant);
    let ops: Vec<SpatialOp> = list.iter().filter_map(|(_, op, _)| *op).collect();
    let fields = receptive_fields(&ops);
    let mut out = Vec::new();
    let mut field = ReceptiveField::INPUT;
    let mut spatial = fields.iter();
    for (layer, op, _) in list {
        if op.is_some() {
            field = spatial.next().copied().unwrap_or(field);
        }
        out.push((layer, field));
    }
    out
}

/// The receptive fields of dlib's face ResNet: `stem` (its 7×7/2 conv), `pool` (the 3×3/2 max
/// pool), then `block{i}` (after residual block `i`, from 0), from the network's configuration.
/// A block's field is its main path's (two 3×3 convs; the first strided by 2 and unpadded where
/// the block down-samples, padded by 1 otherwise); the shortcut sees less. Ready for probing
/// dlib ([`DlibProbeNet`]).
pub fn dlib_receptive_fields(config: &DlibResNetConfig) -> Vec<(String, ReceptiveField)> {
    let mut out = Vec::new();
    let mut field = ReceptiveField::INPUT.then(SpatialOp::new(STEM_KERNEL, STEM_STRIDE, 0));
    out.push(("stem".to_string(), field));
    field = field.then(SpatialOp::new(STEM_POOL, STEM_POOL_STRIDE, 0));
    out.push(("pool".to_string(), field));
    for (i, block) in config.blocks().into_iter().enumerate() {
        let first = if block.downsample {
            SpatialOp::new(3, 2, 0)
        } else {
            SpatialOp::new(3, 1, 1)
        };
        field = field.then(first).then(SpatialOp::new(3, 1, 1));
        out.push((format!("block{i}"), field));
    }
    out
}

/// VGG-16 or VGG-19, probed at its conv, ReLU and pool outputs.
#[derive(Debug)]
pub struct VggProbeNet {
    vgg: Vgg,
    device: Device,
}

impl VggProbeNet {
    /// Wraps a loaded network; `device` is the one it was loaded on.
    pub fn new(vgg: Vgg, device: Device) -> Self {
        VggProbeNet { vgg, device }
    }

    fn variant(&self) -> VggVariant {
        self.vgg.config().variant
    }

    fn find(&self, layer: &str) -> Result<(VggLayer, ReceptiveField, usize)> {
        let unknown = || ProbeError::UnknownLayer {
            name: layer.to_string(),
            network: self.name(),
            known: "conv1_1 … relu5_x, pool1 … pool5".into(),
        };
        let wanted: VggLayer = layer.parse().map_err(|_| unknown())?;
        let channels = vgg_layer_list(self.variant())
            .into_iter()
            .find(|(l, _, _)| *l == wanted)
            .map(|(_, _, c)| c)
            .ok_or_else(unknown)?;
        let field = vgg_receptive_fields(self.variant())
            .into_iter()
            .find(|(l, _)| *l == wanted)
            .map(|(_, f)| f)
            .ok_or_else(unknown)?;
        Ok((wanted, field, channels))
    }
}

impl ProbeNet for VggProbeNet {
    fn name(&self) -> String {
        match self.variant() {
            VggVariant::Vgg16 => "VGG-16".into(),
            VggVariant::Vgg19 => "VGG-19".into(),
        }
    }

    fn layers(&self) -> Vec<String> {
        vgg_layer_list(self.variant())
            .into_iter()
            .map(|(l, _, _)| l.to_string())
            .collect()
    }

    fn channels(&self, layer: &str) -> Result<usize> {
        Ok(self.find(layer)?.2)
    }

    fn receptive_field(&self, layer: &str) -> Result<ReceptiveField> {
        Ok(self.find(layer)?.1)
    }

    fn activations(&self, image: &Image, layers: &[String]) -> Result<Vec<ActivationMap>> {
        let wanted = layers
            .iter()
            .map(|l| Ok(self.find(l)?.0))
            .collect::<Result<Vec<_>>>()?;
        let x = self.vgg.image_to_tensor(image, &self.device);
        self.vgg
            .forward_layers(x, &wanted)?
            .into_iter()
            .map(ActivationMap::from_tensor)
            .collect()
    }
}

/// dlib's face ResNet, probed at `stem`, `pool` and `block0` … `block13`
/// ([`dlib_receptive_fields`]). It takes 150×150 images only: the network was trained on
/// aligned face chips of that size, so such chips give the most meaningful patches; other
/// photos work once resized to 150×150 (the `probe` command does so), but faces in them then
/// sit wherever they happen to be.
#[derive(Debug)]
pub struct DlibProbeNet {
    net: DlibResNet,
    config: DlibResNetConfig,
    device: Device,
}

impl DlibProbeNet {
    /// Wraps dlib's released network (the default configuration) loaded on `device`.
    pub fn new(net: DlibResNet, device: Device) -> Self {
        DlibProbeNet {
            net,
            config: DlibResNetConfig::default(),
            device,
        }
    }

    fn find(&self, layer: &str) -> Result<(DlibLayer, ReceptiveField, usize)> {
        let unknown = || ProbeError::UnknownLayer {
            name: layer.to_string(),
            network: self.name(),
            known: format!("stem, pool, block0 … block{}", self.net.num_blocks() - 1),
        };
        let wanted: DlibLayer = layer.parse().map_err(|_| unknown())?;
        let field = dlib_receptive_fields(&self.config)
            .into_iter()
            .find(|(n, _)| *n == wanted.to_string())
            .map(|(_, f)| f)
            .ok_or_else(unknown)?;
        let channels = match wanted {
            DlibLayer::Stem | DlibLayer::Pool => self.config.stem_filters,
            DlibLayer::Block(i) => self
                .config
                .blocks()
                .get(i)
                .map(|b| b.filters)
                .ok_or_else(unknown)?,
        };
        Ok((wanted, field, channels))
    }
}

impl ProbeNet for DlibProbeNet {
    fn name(&self) -> String {
        "dlib ResNet".into()
    }

    fn layers(&self) -> Vec<String> {
        dlib_receptive_fields(&self.config)
            .into_iter()
            .map(|(n, _)| n)
            .collect()
    }

    fn channels(&self, layer: &str) -> Result<usize> {
        Ok(self.find(layer)?.2)
    }

    fn receptive_field(&self, layer: &str) -> Result<ReceptiveField> {
        Ok(self.find(layer)?.1)
    }

    /// `image` must be [`CHIP_SIZE`] × [`CHIP_SIZE`]; anything else is an error.
    fn activations(&self, image: &Image, layers: &[String]) -> Result<Vec<ActivationMap>> {
        let wanted = layers
            .iter()
            .map(|l| Ok(self.find(l)?.0))
            .collect::<Result<Vec<_>>>()?;
        if image.width as usize != CHIP_SIZE || image.height as usize != CHIP_SIZE {
            return Err(ProbeError::Invalid(format!(
                "dlib's network takes {CHIP_SIZE}×{CHIP_SIZE} images, got {}×{} (resize first)",
                image.width, image.height
            )));
        }
        let x = chip_to_tensor(image, &self.device)?;
        self.net
            .forward_layers(x, &wanted)?
            .into_iter()
            .map(ActivationMap::from_tensor)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn field(variant: VggVariant, name: &str) -> ReceptiveField {
        let layer: VggLayer = name.parse().unwrap();
        vgg_receptive_fields(variant)
            .into_iter()
            .find(|(l, _)| *l == layer)
            .unwrap()
            .1
    }

    /// By hand: a 3×3 conv adds 2 × jump to the field, a 2×2/2 pool adds 1 × jump and doubles
    /// the jump; each padded conv moves the field's start back by 1 × jump.
    /// relu1_1: 3. relu1_2: 5, pool1: 6 (jump 2). relu2_1: 6 + 4 = 10. relu2_2: 14, pool2: 16
    /// (jump 4). relu3_1: 16 + 8 = 24; relu3_2: 32, relu3_3: 40, pool3: 44 (jump 8). relu4_1:
    /// 44 + 16 = 60; 76, 92, pool4: 100 (jump 16). relu5_1: 100 + 32 = 132.
    /// Starts: −1, −2 (pool1 −2), −4, −6 (pool2 −6), −10, −14, −18, −26, −34, −42, −58.
    #[test]
    fn vgg16_receptive_fields_match_the_hand_computed_ones() {
        let v = VggVariant::Vgg16;
        let expect = [
            ("relu1_1", 3, 1, -1),
            ("conv1_2", 5, 1, -2),
            ("pool1", 6, 2, -2),
            ("relu2_1", 10, 2, -4),
            ("pool2", 16, 4, -6),
            ("relu3_1", 24, 4, -10),
            ("relu3_3", 40, 4, -18),
            ("relu4_1", 60, 8, -26),
            ("pool4", 100, 16, -42),
            ("relu5_1", 132, 16, -58),
            ("relu5_3", 196, 16, -90),
            ("pool5", 212, 32, -90),
        ];
        for (name, size, stride, offset) in expect {
            let f = field(v, name);
            assert_eq!(
                (f.size, f.stride, f.offset),
                (size, stride, offset),
                "{name}"
            );
        }
        // The field is centred on the position's own pixels: relu5_1's position i sees
        // i·16 − 58 … i·16 + 73, centred on i·16 + 7.5, the middle of its 16-pixel cell.
        let f = field(v, "relu5_1");
        assert_eq!(2 * f.start(3) + f.size as i64 - 1, 2 * (3 * 16) + 15);
    }

    /// By hand: stem 7 (jump 2); pool 7 + 2·2 = 11 (jump 4). Stage 1, three blocks of two padded
    /// 3×3 convs: +16 each, 59, start −4 per conv = −24. Stage 2's first block: strided unpadded
    /// conv 59 + 8 = 67 (jump 8, start −24), then 67 + 16 = 83 (start −32); its three others +32
    /// each: 179, start −80. Stage 3 first block: 179 + 16 = 195 (jump 16), + 32 = 227.
    #[test]
    fn dlib_fields_match_the_hand_computed_ones() {
        let fields = dlib_receptive_fields(&DlibResNetConfig::default());
        let get = |name: &str| fields.iter().find(|(n, _)| n == name).unwrap().1;
        assert_eq!(
            get("stem"),
            ReceptiveField {
                size: 7,
                stride: 2,
                offset: 0
            }
        );
        assert_eq!(
            get("pool"),
            ReceptiveField {
                size: 11,
                stride: 4,
                offset: 0
            }
        );
        assert_eq!(
            get("block2"),
            ReceptiveField {
                size: 59,
                stride: 4,
                offset: -24
            }
        );
        assert_eq!(
            get("block3"),
            ReceptiveField {
                size: 83,
                stride: 8,
                offset: -32
            }
        );
        assert_eq!(
            get("block6"),
            ReceptiveField {
                size: 179,
                stride: 8,
                offset: -80
            }
        );
        assert_eq!(get("block7").size, 227);
        assert_eq!(get("block7").stride, 16);
        assert_eq!(fields.len(), 2 + 14);
    }

    #[test]
    fn vgg19_fields_grow_with_its_extra_convs() {
        // relu3_4: 16 + 4·8 = 48, pool3 52 (jump 8), relu4_1 68, … relu4_4 116, pool4 124
        // (jump 16), relu5_1 156.
        let v = VggVariant::Vgg19;
        assert_eq!(field(v, "relu3_4").size, 48);
        assert_eq!(field(v, "relu4_1").size, 68);
        assert_eq!(field(v, "relu5_1").size, 156);
        assert_eq!(field(v, "relu5_4").stride, 16);
    }
}
