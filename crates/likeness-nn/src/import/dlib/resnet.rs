//! dlib's face-recognition ResNet (`dlib_face_recognition_resnet_model_v1.dat`) into the weight
//! names of [`crate::nets::dlib_resnet`].
//!
//! dlib serializes a network as nested templates (`dlib/dnn/core.h`): each wrapper writes its
//! version, then its whole sub-network, then its own layer's details. So the file holds the
//! loss layer, then one version number per wrapper from the output inwards (2 for a layer, 1
//! for a tag or skip, 3 for the layer sitting on the input), then the input layer, then the
//! layers' details from the input outwards, each followed by the wrapper's state (three bools
//! and some empty scratch tensors). Tags and skips have no details, and which tag a skip or
//! `add_prev` refers to is in the C++ type only, so the reader checks the file against the
//! layer sequence the network expects, wrapper by wrapper and hyperparameter by
//! hyperparameter.

use super::Reader;
use crate::error::{NnError, Result};
use crate::nets::dlib_resnet::{
    CHIP_SIZE, DlibResNetConfig, INPUT_MEAN_RGB, SHORTCUT_POOL, STEM_KERNEL, STEM_POOL,
    STEM_POOL_STRIDE, STEM_STRIDE,
};
use crate::weights::WeightMap;

/// Wrapper versions in `core.h`: `add_layer` (1 without, 2 with the parameter-gradient
/// scratch tensor), `add_layer` on the input layer, `add_tag_layer`/`add_skip_layer`, and
/// `add_loss_layer`.
const LAYER_VERSIONS: [i64; 2] = [1, 2];
const INPUT_LAYER_VERSION: i64 = 3;
const TAG_VERSION: i64 = 1;
const LOSS_VERSION: i64 = 1;

/// dlib's `layer_mode::CONV_MODE` (per-channel affine) and `fc_bias_mode::FC_NO_BIAS`.
const AFFINE_CONV_MODE: i64 = 0;
const FC_NO_BIAS: i64 = 1;

/// How far the input means in the file may be from [`INPUT_MEAN_RGB`]: dlib stores them as
/// f32 converted to double.
const MEAN_TOLERANCE: f64 = 1e-4;

/// One wrapper of the serialized network, input side first.
#[derive(Debug, Clone, PartialEq)]
enum Layer {
    Con {
        name: String,
        filters: usize,
        channels: usize,
        kernel: usize,
        stride: usize,
        padding: usize,
    },
    Affine {
        name: String,
        channels: usize,
    },
    Relu,
    MaxPool {
        window: usize,
        stride: usize,
    },
    AvgPool {
        window: usize,
        stride: usize,
    },
    /// `avg_pool_everything`: dlib writes it as an average pool with a 0×0 window.
    AvgPoolEverything,
    AddPrev,
    /// `tag` or `skip`: a wrapper without details.
    Tag,
    Fc {
        name: String,
        outputs: usize,
        inputs: usize,
    },
}

impl Layer {
    fn has_details(&self) -> bool {
        !matches!(self, Layer::Tag)
    }
}

/// The wrappers of `config`'s network, input side first (the order of their details in the
/// file), following dlib's `anet_type`.
fn expected_layers(config: &DlibResNetConfig) -> Vec<Layer> {
    let con = |name: String, filters, channels, kernel, stride| Layer::Con {
        name,
        filters,
        channels,
        kernel,
        stride,
        // dlib's default: `kernel/2` at stride 1, none otherwise.
        padding: if stride == 1 { kernel / 2 } else { 0 },
    };
    let mut layers = vec![
        con(
            "conv1".into(),
            config.stem_filters,
            3,
            STEM_KERNEL,
            STEM_STRIDE,
        ),
        Layer::Affine {
            name: "affine1".into(),
            channels: config.stem_filters,
        },
        Layer::Relu,
        Layer::MaxPool {
            window: STEM_POOL,
            stride: STEM_POOL_STRIDE,
        },
    ];
    for (i, b) in config.blocks().iter().enumerate() {
        let stride = if b.downsample { 2 } else { 1 };
        // residual:      relu<add_prev1<block<tag1<x>>>>
        // residual_down: relu<add_prev2<avg_pool<skip1<tag2<block<tag1<x>>>>>>>
        layers.push(Layer::Tag);
        layers.push(con(
            format!("blocks.{i}.conv1"),
            b.filters,
            b.in_channels,
            3,
            stride,
        ));
        layers.push(Layer::Affine {
            name: format!("blocks.{i}.affine1"),
            channels: b.filters,
        });
        layers.push(Layer::Relu);
        layers.push(con(format!("blocks.{i}.conv2"), b.filters, b.filters, 3, 1));
        layers.push(Layer::Affine {
            name: format!("blocks.{i}.affine2"),
            channels: b.filters,
        });
        if b.downsample {
            layers.push(Layer::Tag);
            layers.push(Layer::Tag);
            layers.push(Layer::AvgPool {
                window: SHORTCUT_POOL,
                stride: SHORTCUT_POOL,
            });
        }
        layers.push(Layer::AddPrev);
        layers.push(Layer::Relu);
    }
    layers.push(Layer::AvgPoolEverything);
    layers.push(Layer::Fc {
        name: "fc".into(),
        outputs: config.embedding_dim,
        inputs: config.feature_dim(),
    });
    layers
}

/// Reads dlib's face-recognition ResNet into a [`WeightMap`] named for
/// [`crate::nets::dlib_resnet::DlibResNet`]. Fails with [`NnError::Malformed`] (and the byte
/// offset) on truncated or corrupt bytes, and with [`NnError::Mismatch`] when the file holds
/// another network. Every byte must be consumed.
pub fn read_resnet(bytes: &[u8]) -> Result<WeightMap> {
    let config = DlibResNetConfig::default();
    let layers = expected_layers(&config);
    let mut r = Reader::new(bytes);
    let mut weights = WeightMap::new();
    weights.set_meta("format", crate::nets::dlib_resnet::FORMAT);

    r.expect_int(LOSS_VERSION, "add_loss_layer version")?;
    r.expect_string("loss_metric_2")?;
    let margin = r.float()?;
    let threshold = r.float()?;
    weights.set_meta("loss_metric.margin", format!("{margin}"));
    weights.set_meta("loss_metric.distance_threshold", format!("{threshold}"));

    // Wrapper versions, output side first.
    let mut versions = vec![0i64; layers.len()];
    for (i, layer) in layers.iter().enumerate().rev() {
        let start = r.offset();
        let v = r.int()?;
        let ok = match layer {
            _ if i == 0 => v == INPUT_LAYER_VERSION,
            Layer::Tag => v == TAG_VERSION,
            _ => LAYER_VERSIONS.contains(&v),
        };
        if !ok {
            return Err(NnError::Mismatch(format!(
                "wrapper version {v} at byte {start} does not fit dlib's face ResNet \
                 (expected the wrapper of {layer:?})"
            )));
        }
        versions[i] = v;
    }

    r.expect_string("input_rgb_image_sized")?;
    for (c, mean) in INPUT_MEAN_RGB.iter().enumerate() {
        let start = r.offset();
        let m = r.float()?;
        if (m - f64::from(*mean)).abs() > MEAN_TOLERANCE {
            return Err(NnError::Mismatch(format!(
                "input mean {c} is {m} at byte {start}, the network uses {mean}"
            )));
        }
    }
    r.expect_int(CHIP_SIZE as i64, "input rows")?;
    r.expect_int(CHIP_SIZE as i64, "input columns")?;

    for (i, layer) in layers.iter().enumerate() {
        if !layer.has_details() {
            continue;
        }
        read_details(&mut r, layer, &mut weights)?;
        // The wrapper's state: setup done, gradient stale, output getters disabled, then the
        // scratch tensors (empty in a saved model, but read whatever they hold).
        for _ in 0..3 {
            r.bool()?;
        }
        r.tensor()?; // x_grad
        r.tensor()?; // cached_output
        if versions[i] == INPUT_LAYER_VERSION {
            r.tensor()?; // grad_final
            r.expect_int(1, "sample expansion factor")?;
        } else if versions[i] == 2 {
            r.tensor()?; // params_grad
        }
    }
    r.finish()?;
    Ok(weights)
}

fn mismatch(
    at: usize,
    what: &str,
    got: impl std::fmt::Debug,
    expected: impl std::fmt::Debug,
) -> NnError {
    NnError::Mismatch(format!(
        "{what} is {got:?} at byte {at}, dlib's face ResNet has {expected:?}"
    ))
}

/// Reads integers that must equal `expected`, one by one.
fn expect_ints(r: &mut Reader, what: &str, expected: &[usize]) -> Result<()> {
    for e in expected {
        let start = r.offset();
        let v = r.int()?;
        if v != *e as i64 {
            return Err(mismatch(start, what, v, e));
        }
    }
    Ok(())
}

/// Reads a parameter tensor of `n` values.
fn read_params(r: &mut Reader, what: &str, n: usize) -> Result<Vec<f32>> {
    let start = r.offset();
    let (_, data) = r.tensor()?;
    if data.len() != n {
        return Err(mismatch(start, what, data.len(), n));
    }
    Ok(data)
}

/// Reads an alias tensor that must have `shape`.
fn expect_alias(r: &mut Reader, what: &str, shape: [usize; 4]) -> Result<()> {
    let start = r.offset();
    let got = r.alias_tensor()?;
    if got != shape {
        return Err(mismatch(start, what, got, shape));
    }
    Ok(())
}

/// Learning-rate and weight-decay multipliers: training state, not needed for inference.
fn skip_multipliers(r: &mut Reader) -> Result<()> {
    for _ in 0..4 {
        r.float()?;
    }
    Ok(())
}

fn read_details(r: &mut Reader, layer: &Layer, weights: &mut WeightMap) -> Result<()> {
    match layer {
        Layer::Con {
            name,
            filters,
            channels,
            kernel,
            stride,
            padding,
        } => {
            r.expect_string("con_4")?;
            let (f, c, k) = (*filters, *channels, *kernel);
            let n_filter = f * c * k * k;
            let mut params = read_params(r, &format!("{name} parameter count"), n_filter + f)?;
            expect_ints(
                r,
                &format!("{name} filters, size, stride or padding"),
                &[f, k, k, *stride, *stride, *padding, *padding],
            )?;
            expect_alias(r, &format!("{name} filter shape"), [f, c, k, k])?;
            expect_alias(r, &format!("{name} bias shape"), [1, f, 1, 1])?;
            skip_multipliers(r)?;
            // dlib keeps the filters (OIHW) then the biases in one tensor.
            let bias = params.split_off(n_filter);
            weights.insert(format!("{name}.weight"), vec![f, c, k, k], params)?;
            weights.insert(format!("{name}.bias"), vec![f], bias)?;
        }
        Layer::Affine { name, channels } => {
            r.expect_string("affine_")?;
            let c = *channels;
            let mut params = read_params(r, &format!("{name} parameter count"), 2 * c)?;
            expect_alias(r, &format!("{name} gamma shape"), [1, c, 1, 1])?;
            expect_alias(r, &format!("{name} beta shape"), [1, c, 1, 1])?;
            expect_ints(r, &format!("{name} mode"), &[AFFINE_CONV_MODE as usize])?;
            let beta = params.split_off(c);
            weights.insert(format!("{name}.weight"), vec![c], params)?;
            weights.insert(format!("{name}.bias"), vec![c], beta)?;
        }
        Layer::Relu => r.expect_string("relu_")?,
        Layer::MaxPool { window, stride } => {
            r.expect_string("max_pool_2")?;
            expect_ints(
                r,
                "max pool window, stride or padding",
                &[*window, *window, *stride, *stride, 0, 0],
            )?;
        }
        Layer::AvgPool { window, stride } => {
            r.expect_string("avg_pool_2")?;
            expect_ints(
                r,
                "average pool window, stride or padding",
                &[*window, *window, *stride, *stride, 0, 0],
            )?;
        }
        Layer::AvgPoolEverything => {
            r.expect_string("avg_pool_2")?;
            expect_ints(
                r,
                "global average pool window, stride or padding",
                &[0, 0, 1, 1, 0, 0],
            )?;
        }
        Layer::AddPrev => r.expect_string("add_prev_")?,
        Layer::Tag => {}
        Layer::Fc {
            name,
            outputs,
            inputs,
        } => {
            r.expect_string("fc_2")?;
            let (o, i) = (*outputs, *inputs);
            expect_ints(r, "fc outputs and inputs", &[o, i])?;
            let params = read_params(r, "fc parameter count", o * i)?;
            expect_alias(r, "fc weight shape", [i, o, 1, 1])?;
            expect_alias(r, "fc bias shape", [0, 0, 0, 0])?;
            expect_ints(r, "fc bias mode", &[FC_NO_BIAS as usize])?;
            skip_multipliers(r)?;
            // dlib stores input × output; the cache stores output × input (PyTorch's habit).
            let mut transposed = vec![0f32; o * i];
            for (row, chunk) in params.chunks_exact(o).enumerate() {
                for (col, v) in chunk.iter().enumerate() {
                    transposed[col * i + row] = *v;
                }
            }
            weights.insert(format!("{name}.weight"), vec![o, i], transposed)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_expected_layers_follow_dlibs_wrapper_order() {
        let layers = expected_layers(&DlibResNetConfig::default());
        // Computational layers (with details): the stem's 4, 7 per plain block, 8 per
        // down-sampling block, the global pool and fc: 108 in dlib's file.
        let computational = layers.iter().filter(|l| l.has_details()).count();
        assert_eq!(computational, 4 + 10 * 7 + 4 * 8 + 2);
        assert_eq!(layers.len(), 4 + 10 * 8 + 4 * 11 + 2);
    }

    #[test]
    fn a_network_of_another_shape_is_a_mismatch() {
        // A loss layer of another kind.
        let mut bytes = vec![0x01, 0x01, 0x01, 0x0b];
        bytes.extend(b"loss_multic");
        let err = read_resnet(&bytes).unwrap_err();
        assert!(matches!(err, NnError::Mismatch(_)), "{err}");
    }
}
