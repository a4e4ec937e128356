//! One module per capability of the command line.

pub mod batch;
pub mod common;
pub mod demo;
pub mod detect;
pub mod encode;
pub mod eval;
pub mod gallery;
pub mod liveness;
pub mod models;
pub mod probe;
pub mod recognise;
pub mod serve;
pub mod style;
pub mod train;
pub mod verify;

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use likeness_models::Cache;
use likeness_nn::nets::vgg::VggVariant;
use likeness_nn::weights::WeightMap;

/// The VGG weights `style` and `probe` run on: the file the user gave, or VGG-16 from the
/// model cache (VGG-19 ships in no registry package, so it must be given).
fn vgg_weights(variant: VggVariant, given: Option<&Path>) -> anyhow::Result<(PathBuf, WeightMap)> {
    let path = match (given, variant) {
        (Some(p), _) => p.to_path_buf(),
        (None, VggVariant::Vgg16) => Cache::from_env()?.model_path("vgg16")?,
        (None, VggVariant::Vgg19) => bail!(
            "VGG-19 is not in the model cache: pass its weights with --weights FILE \
             (e.g. torchvision's vgg19-dcbb9e9d.pth)"
        ),
    };
    let weights = likeness_style::load_weights(&path)
        .with_context(|| format!("loading VGG weights from {}", path.display()))?;
    Ok((path, weights))
}
