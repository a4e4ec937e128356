//! Model name → importer: turns a raw model file into the weights the network loads.

use likeness_nn::weights::WeightMap;

use crate::catalog::{Importer, Model};
use crate::error::{ModelsError, Result};

/// Imports `bytes` (the model's raw file, read from `path`) with the model's importer.
pub fn import(model: &Model, bytes: &[u8], path: &std::path::Path) -> Result<WeightMap> {
    let _ = (bytes, path);
    match model.importer {
        Importer::DlibResnet
        | Importer::DlibShapePredictor
        | Importer::VggOnnx
        | Importer::BlazeFaceFront
        | Importer::BlazeFaceBack => Err(ModelsError::ImporterUnavailable { model: model.name }),
    }
}
