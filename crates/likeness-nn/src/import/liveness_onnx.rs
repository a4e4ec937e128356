//! The liveness network ([`crate::nets::liveness`]) from the ONNX file it ships as, npm
//! `faceplugin-face-recognition-js@0.0.1` `model/fr_liveness.onnx`.
//!
//! The exporter named tensors by number, so nothing is matched by name: the file's 55 `Conv`
//! nodes are taken in order and each is checked against the convolution the network expects at
//! that place ([`conv_specs`]: shape, stride, padding, groups); a PReLU's slopes are those of the
//! `PRelu` node that reads that convolution's output. Then the two `MatMul`s (embedding,
//! classifier) and the `BatchNormalization` between them. Any difference is an error, so a file
//! that loads computes what the Rust network computes (the parity test then checks the numbers).

use crate::error::{NnError, Result};
use crate::import::onnx::{Attribute, Node, OnnxModel};
use crate::nets::liveness::{
    ARCHITECTURE, ARCHITECTURE_META, BN_EPSILON, ConvSpec, EMBED_DIM, HEAD_CHANNELS, NUM_CLASSES,
    conv_specs,
};
use crate::weights::{WeightMap, WeightTensor};

/// Reads `fr_liveness.onnx` into the weight names of [`crate::nets::liveness`].
pub fn liveness_from_onnx(bytes: &[u8]) -> Result<WeightMap> {
    let model = OnnxModel::parse(bytes)?;
    let specs = conv_specs();
    let convs: Vec<&Node> = model.nodes_of("Conv").collect();
    if convs.len() != specs.len() {
        return Err(NnError::Mismatch(format!(
            "not the MiniFASNet-SE liveness model: {} Conv nodes, it has {}",
            convs.len(),
            specs.len()
        )));
    }
    let mut map = WeightMap::new();
    for (node, spec) in convs.iter().zip(&specs) {
        check_conv(node, spec)?;
        let weight = input(&model, node, 1, &spec.weight_shape())?;
        let bias = input(&model, node, 2, &[spec.out_channels])?;
        map.insert(
            format!("{}.conv.weight", spec.name),
            weight.shape,
            weight.data,
        )?;
        map.insert(format!("{}.conv.bias", spec.name), bias.shape, bias.data)?;
        let out = node.outputs.first().map(String::as_str).unwrap_or("");
        let prelu = model
            .nodes_of("PRelu")
            .find(|n| n.inputs.first().is_some_and(|i| i == out));
        match (spec.prelu, prelu) {
            (true, Some(p)) => {
                let slope = input(&model, p, 1, &[spec.out_channels, 1, 1])?;
                map.insert(
                    format!("{}.prelu", spec.name),
                    vec![spec.out_channels],
                    slope.data,
                )?;
            }
            (false, None) => {}
            (want, _) => {
                return Err(NnError::Mismatch(format!(
                    "Conv `{}` ({}) should {}be followed by a PRelu",
                    node.name,
                    spec.name,
                    if want { "" } else { "not " }
                )));
            }
        }
    }
    let matmuls: Vec<&Node> = model.nodes_of("MatMul").collect();
    let [embed, classifier] = matmuls.as_slice() else {
        return Err(NnError::Mismatch(format!(
            "not the MiniFASNet-SE liveness model: {} MatMul nodes, it has 2",
            matmuls.len()
        )));
    };
    let embed = input(&model, embed, 1, &[HEAD_CHANNELS, EMBED_DIM])?;
    map.insert("embed.weight", embed.shape, embed.data)?;
    let classifier = input(&model, classifier, 1, &[EMBED_DIM, NUM_CLASSES])?;
    map.insert("classifier.weight", classifier.shape, classifier.data)?;
    let bn = model
        .nodes_of("BatchNormalization")
        .next()
        .ok_or_else(|| NnError::Mismatch("no BatchNormalization node".into()))?;
    if let Some(Attribute::Float(eps)) = bn.attr("epsilon")
        && (eps - BN_EPSILON).abs() > 1e-9
    {
        return Err(NnError::Mismatch(format!(
            "batch norm epsilon is {eps}, the network uses {BN_EPSILON}"
        )));
    }
    for (k, name) in ["gamma", "beta", "mean", "var"].iter().enumerate() {
        let t = input(&model, bn, k + 1, &[EMBED_DIM])?;
        map.insert(format!("embed_bn.{name}"), t.shape, t.data)?;
    }
    if let Some(v) = map
        .get("embed_bn.var")?
        .data
        .iter()
        .find(|v| v.is_nan() || **v < 0.0)
    {
        return Err(NnError::Mismatch(format!(
            "batch norm variance {v} is negative or NaN"
        )));
    }
    map.set_meta(ARCHITECTURE_META, ARCHITECTURE);
    map.set_meta(
        "source",
        "npm faceplugin-face-recognition-js@0.0.1 model/fr_liveness.onnx (MiniFASNet-SE)",
    );
    map.set_meta("input", "RGB 0-255, 128x128, face box enlarged 2.7x");
    map.set_meta("live_class", "0");
    Ok(map)
}

/// The initializer feeding input `index` of `node`, which must have `shape`.
fn input(model: &OnnxModel, node: &Node, index: usize, shape: &[usize]) -> Result<WeightTensor> {
    let name = node.inputs.get(index).ok_or_else(|| {
        NnError::Mismatch(format!(
            "{} `{}` lacks input {index}",
            node.op_type, node.name
        ))
    })?;
    let t = model.initializer(name)?;
    if t.shape != shape {
        return Err(NnError::Shape {
            name: name.clone(),
            expected: shape.to_vec(),
            got: t.shape.clone(),
        });
    }
    Ok(t.clone())
}

fn check_conv(node: &Node, spec: &ConvSpec) -> Result<()> {
    let ok = |attr: &str, want: &[i64]| node.ints(attr).is_none_or(|v| v == want);
    let s = spec.stride as i64;
    let p = spec.padding as i64;
    let k = spec.kernel as i64;
    if !(ok("strides", &[s, s])
        && ok("pads", &[p, p, p, p])
        && ok("dilations", &[1, 1])
        && ok("kernel_shape", &[k, k])
        && node.int("group").unwrap_or(1) == spec.groups as i64)
    {
        return Err(NnError::Mismatch(format!(
            "Conv `{}` is not the network's `{}` ({}×{} stride {} pad {} groups {}): {:?}",
            node.name,
            spec.name,
            spec.kernel,
            spec.kernel,
            spec.stride,
            spec.padding,
            spec.groups,
            node.attributes
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn garbage_is_an_error() {
        assert!(liveness_from_onnx(b"").is_err());
        assert!(liveness_from_onnx(&[0xff; 64]).is_err());
    }
}
