//! Model name → importer: turns a raw model file into the weights the network loads.

use std::path::Path;

use likeness_nn::import::blazeface_onnx::blazeface_from_onnx;
use likeness_nn::import::dlib;
use likeness_nn::import::liveness_onnx::liveness_from_onnx;
use likeness_nn::import::vgg_onnx::vgg16_from_onnx;
use likeness_nn::nets::blazeface::BlazeFaceVariant;
use likeness_nn::weights::WeightMap;

use crate::catalog::{Importer, Model};
use crate::error::{ModelsError, Result};

/// Imports `bytes` (the model's raw file, read from `path`) with the model's importer.
pub fn import(model: &Model, bytes: &[u8], path: &Path) -> Result<WeightMap> {
    let imported = match model.importer {
        Importer::DlibResnet => dlib::read_resnet(bytes),
        Importer::DlibShapePredictor => dlib::read_shape_predictor(bytes),
        Importer::VggOnnx => vgg16_from_onnx(bytes),
        Importer::BlazeFaceFront => blazeface_from_onnx(bytes, BlazeFaceVariant::Front),
        Importer::BlazeFaceBack => blazeface_from_onnx(bytes, BlazeFaceVariant::Back),
        Importer::LivenessOnnx => liveness_from_onnx(bytes),
    };
    imported.map_err(|cause| ModelsError::Import {
        model: model.name,
        path: path.to_path_buf(),
        cause,
    })
}
