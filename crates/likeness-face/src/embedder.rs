//! The one abstraction for "a network that turns an aligned face chip into an embedding".
//!
//! What an embedder is goes beyond its weights: the chip it expects (size and the padding
//! around dlib's 5-point template), how it wants the pixels normalised, how its embeddings
//! are compared (Euclidean for dlib, cosine for ArcFace-style networks) and the distance below
//! which two faces are the same person. [`EmbedderInfo`] carries all of it, with an id that a
//! gallery records so that embeddings of different networks are never compared. The pipeline
//! ([`crate::Faces`]), `eval`, `train`, the gallery commands and the service all take these
//! facts from here; nothing else restates them.
//!
//! Two implementations exist today, both [`DlibEmbedder`]: dlib's ResNet from the model cache
//! (id `dlib_resnet`) and a fine-tuned copy of it (`likeness train encoder --init dlib`), whose
//! id adds the first 16 hex digits of the file's SHA-256 (`dlib_resnet+sha256:…`), so that two
//! different fine-tunings never share a gallery.
//!
//! # Adding an embedder (SFace as the example)
//!
//! OpenCV's SFace takes a 112×112 chip aligned to the ArcFace template, BGR pixels scaled to
//! [-1, 1], and compares 128-D embeddings by cosine (same person above a cosine similarity of
//! 0.363, i.e. below a cosine distance of 0.637). Adding it takes:
//!
//! 1. the network, one file in `likeness-nn/src/nets/` (config, `load(&WeightMap)`,
//!    `forward`), and its catalogue entry in `likeness-models`;
//! 2. here, a type implementing [`Embedder`] whose [`EmbedderInfo`] says
//!    `id: "sface"`, `chip: ChipGeometry { size: 112, padding: … }` (the padding that puts
//!    dlib's template where ArcFace's template puts the eyes and nose), `metric:
//!    Metric::Cosine`, `tolerance: 0.637`, `normalisation: Normalisation { mean: [127.5; 3],
//!    scale: 128.0, bgr: true }`, and whose `embed` runs the network on the chips;
//! 3. a variant of [`EmbedderChoice`](crate::faces::EmbedderChoice) that loads it.
//!
//! Nothing else changes: [`crate::Faces`] cuts chips with the embedder's geometry and compares
//! with its metric; the commands' `--tolerance` defaults come from [`EmbedderInfo::tolerance`];
//! the gallery stores [`EmbedderInfo::id`] with every person and refuses to mix ids.

use std::fmt;
use std::path::Path;

use burn::tensor::Device;
use likeness_nn::image::Image;
use likeness_nn::nets::dlib_resnet::{self, DlibResNet};
use likeness_nn::weights::WeightMap;
use serde::{Deserialize, Serialize};

use crate::align::{CHIP_PADDING, CHIP_SIZE};
use crate::compare::Embedding;
use crate::error::{FaceError, Result};

/// The model cache's name of dlib's ResNet, and the id of embeddings made with it.
pub const DLIB_ID: &str = "dlib_resnet";

/// dlib's conventional decision threshold on the Euclidean distance between its embeddings:
/// two faces closer than this are the same person (dlib's face_recognition example and its
/// `loss_metric`'s `distance_threshold`, stored in the model file; LFW 99.38 %).
pub const DLIB_TOLERANCE: f32 = 0.6;

/// Hex digits of a fine-tuned file's SHA-256 kept in its id (64 bits: no two files a user
/// holds collide).
const ID_HASH_DIGITS: usize = 16;

/// How two embeddings are compared.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Metric {
    /// ‖a − b‖₂ (dlib).
    Euclidean,
    /// 1 − a·b / (‖a‖‖b‖) (ArcFace-style networks; 0 for the same direction, 2 for opposite).
    Cosine,
}

impl Metric {
    /// The distance between `a` and `b` (same length).
    pub fn distance(self, a: &Embedding, b: &Embedding) -> Result<f32> {
        match self {
            Metric::Euclidean => a.distance(b),
            Metric::Cosine => {
                if a.len() != b.len() {
                    return Err(FaceError::Dimension(a.len(), b.len()));
                }
                let (mut dot, mut aa, mut bb) = (0.0f64, 0.0f64, 0.0f64);
                for (&x, &y) in a.0.iter().zip(&b.0) {
                    let (x, y) = (x as f64, y as f64);
                    dot += x * y;
                    aa += x * x;
                    bb += y * y;
                }
                if aa == 0.0 || bb == 0.0 {
                    return Err(FaceError::Invalid(
                        "the cosine distance of a zero embedding is undefined".into(),
                    ));
                }
                Ok((1.0 - dot / (aa.sqrt() * bb.sqrt())) as f32)
            }
        }
    }
}

/// The square chip an embedder takes: dlib's 5-point template, padded by `padding` of its
/// extent on every side, scaled to `size`×`size` pixels ([`crate::align::face_chip_details`]).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct ChipGeometry {
    pub size: u32,
    pub padding: f64,
}

/// How chip pixels (0–255) become the network's input: `(pixel − mean) / scale`, channel by
/// channel, in RGB order or (when `bgr`) BGR.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Normalisation {
    /// Per-channel means, in the network's channel order.
    pub mean: [f32; 3],
    pub scale: f32,
    pub bgr: bool,
}

/// Everything that must be known about an embedder besides running it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EmbedderInfo {
    /// What a gallery records: embeddings with different ids are never compared.
    pub id: String,
    /// For a weights file given by path: its SHA-256 (hex).
    pub sha256: Option<String>,
    /// Values per embedding.
    pub dimension: usize,
    pub chip: ChipGeometry,
    pub metric: Metric,
    /// The largest distance still judged the same person.
    pub tolerance: f32,
    pub normalisation: Normalisation,
}

/// A network that embeds aligned face chips.
pub trait Embedder: fmt::Debug + Send + Sync {
    /// Its facts.
    fn info(&self) -> &EmbedderInfo;

    /// Embeddings of chips of [`EmbedderInfo::chip`]'s geometry, one per chip, in order.
    fn embed(&self, chips: &[Image]) -> Result<Vec<Embedding>>;

    /// The distance between two of its embeddings, in its metric.
    fn distance(&self, a: &Embedding, b: &Embedding) -> Result<f32> {
        self.info().metric.distance(a, b)
    }
}

/// dlib's face ResNet (the cache's, or a fine-tuned copy).
pub struct DlibEmbedder {
    net: DlibResNet,
    device: Device,
    info: EmbedderInfo,
}

impl fmt::Debug for DlibEmbedder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DlibEmbedder")
            .field("info", &self.info)
            .finish_non_exhaustive()
    }
}

impl DlibEmbedder {
    /// The facts of dlib's network, under `id`.
    pub fn info_for(id: String, sha256: Option<String>) -> EmbedderInfo {
        EmbedderInfo {
            id,
            sha256,
            dimension: dlib_resnet::EMBEDDING_DIM,
            chip: ChipGeometry {
                size: CHIP_SIZE,
                padding: CHIP_PADDING,
            },
            metric: Metric::Euclidean,
            tolerance: DLIB_TOLERANCE,
            normalisation: Normalisation {
                mean: dlib_resnet::INPUT_MEAN_RGB,
                scale: dlib_resnet::INPUT_SCALE,
                bgr: false,
            },
        }
    }

    /// dlib's network from its weights, as the model cache holds them.
    pub fn from_weights(weights: &WeightMap, device: &Device) -> Result<Self> {
        Ok(DlibEmbedder {
            net: DlibResNet::load(weights, device)?,
            device: device.clone(),
            info: Self::info_for(DLIB_ID.to_string(), None),
        })
    }

    /// A fine-tuned copy of dlib's network (`likeness train encoder --init dlib`) from its
    /// file: refused, naming the file, unless its metadata says `format = dlib_resnet`. Its id
    /// carries the file's SHA-256.
    pub fn fine_tuned(path: &Path, device: &Device) -> Result<Self> {
        let model_error = |message: String| FaceError::Model {
            path: path.to_path_buf(),
            message,
        };
        let weights = WeightMap::load(path).map_err(|e| model_error(e.to_string()))?;
        if weights.meta("format") != Some(dlib_resnet::FORMAT) {
            return Err(model_error(format!(
                "not a network of dlib's architecture (metadata format = {:?}, expected {:?}); \
                 face commands take encoders made by `likeness train encoder --init dlib`",
                weights.meta("format"),
                dlib_resnet::FORMAT
            )));
        }
        let digest = likeness_models::fsutil::sha256_file(path)
            .map_err(|e| model_error(format!("cannot hash it: {e}")))?;
        let net = DlibResNet::load(&weights, device).map_err(|e| model_error(e.to_string()))?;
        Ok(DlibEmbedder {
            net,
            device: device.clone(),
            info: Self::info_for(fine_tuned_id(&digest), Some(digest)),
        })
    }
}

/// The id of a fine-tuned dlib network whose file has SHA-256 `digest` (hex).
pub fn fine_tuned_id(digest: &str) -> String {
    let short = digest.get(..ID_HASH_DIGITS).unwrap_or(digest);
    format!("{DLIB_ID}+sha256:{short}")
}

impl Embedder for DlibEmbedder {
    fn info(&self) -> &EmbedderInfo {
        &self.info
    }

    fn embed(&self, chips: &[Image]) -> Result<Vec<Embedding>> {
        let size = self.info.chip.size;
        if let Some(c) = chips.iter().find(|c| c.width != size || c.height != size) {
            return Err(FaceError::Invalid(format!(
                "{} takes {size}×{size} chips, got {}×{}",
                self.info.id, c.width, c.height
            )));
        }
        Ok(self
            .net
            .embed(chips, &self.device)?
            .into_iter()
            .map(Embedding)
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cosine_distance_ignores_length_and_euclidean_does_not() {
        let a = Embedding(vec![1.0, 0.0]);
        let b = Embedding(vec![3.0, 0.0]);
        let c = Embedding(vec![0.0, 2.0]);
        assert_eq!(Metric::Cosine.distance(&a, &b).unwrap(), 0.0);
        assert!((Metric::Cosine.distance(&a, &c).unwrap() - 1.0).abs() < 1e-7);
        let opposite = Embedding(vec![-2.0, 0.0]);
        assert!((Metric::Cosine.distance(&a, &opposite).unwrap() - 2.0).abs() < 1e-7);
        assert_eq!(Metric::Euclidean.distance(&a, &b).unwrap(), 2.0);
        assert!(
            Metric::Cosine
                .distance(&a, &Embedding(vec![0.0, 0.0]))
                .is_err()
        );
        assert!(Metric::Cosine.distance(&a, &Embedding(vec![1.0])).is_err());
    }

    #[test]
    fn a_fine_tuned_id_keeps_sixteen_hex_digits_of_the_hash() {
        let digest = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
        assert_eq!(fine_tuned_id(digest), "dlib_resnet+sha256:0123456789abcdef");
    }

    #[test]
    fn dlib_facts_are_the_ones_its_network_and_chips_use() {
        let info = DlibEmbedder::info_for(DLIB_ID.into(), None);
        assert_eq!(info.chip.size as usize, dlib_resnet::CHIP_SIZE);
        assert_eq!(info.chip.padding, 0.25);
        assert_eq!(info.tolerance, 0.6);
        assert_eq!(info.metric, Metric::Euclidean);
        assert_eq!(info.dimension, 128);
        assert_eq!(
            serde_json::to_value(&info).unwrap()["metric"],
            serde_json::json!("euclidean")
        );
    }

    #[test]
    fn a_file_that_is_not_a_dlib_network_is_refused_naming_it() {
        let dir = std::env::temp_dir().join(format!("likeness-embedder-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("not-a-net.safetensors");
        std::fs::write(&path, b"this is not safetensors").unwrap();
        let err = DlibEmbedder::fine_tuned(&path, &likeness_nn::device::cpu()).unwrap_err();
        assert!(matches!(&err, FaceError::Model { path: p, .. } if p == &path));
        assert!(err.to_string().contains("not-a-net.safetensors"));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
