//! The faces facade: every stage behind one value, as small as face_recognition's API.
//!
//! ```no_run
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use likeness_face::faces::{DEFAULT_TOLERANCE, Faces, FacesConfig, verify};
//! use likeness_nn::image::Image;
//! let config = FacesConfig::default().with_min_face(80);
//! let faces = Faces::new(&config, &likeness_models::Cache::from_env()?)?;
//! let a = faces.encode(&Image::open("a.jpg".as_ref())?)?;
//! let b = faces.encode(&Image::open("b.jpg".as_ref())?)?;
//! let verdict = verify(&a[0].embedding, &b[0].embedding, DEFAULT_TOLERANCE)?;
//! println!("distance {}, same: {}", verdict.distance, verdict.same);
//! # Ok(()) }
//! ```
//!
//! The landmarks come from dlib's shape predictor, run from a box in dlib's detector
//! convention derived from BlazeFace's box ([`dlib_box`]), so that the chips are cut where
//! dlib's own pipeline cuts them; [`Alignment::Keypoints`] skips the predictor and places the
//! landmarks from BlazeFace's keypoints (faster, less faithful).
//!
//! Everything a face command chooses is in one [`FacesConfig`], and [`Faces::new`] is the one
//! way to build the pipeline from it: the command line and the HTTP service configure it the
//! same way and so give the same answers.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use burn::tensor::Device;
use likeness_models::Cache;
use likeness_nn::image::Image;
use likeness_nn::weights::WeightMap;

use crate::align::{self, Chip, DRect, Landmarks5};
use crate::detect::{DetectOptions, Detection, Detector, faceness};
use crate::embedder::{DlibEmbedder, Embedder};
use crate::error::{FaceError, Result};
use crate::landmarks::ShapePredictor;

pub use crate::compare::{DEFAULT_TOLERANCE, Embedding, Match, Verdict, identify, nearest, verify};

/// The model cache's names of the four networks.
pub const MODEL_FRONT: &str = "blazeface_front";
pub const MODEL_BACK: &str = "blazeface_back";
pub const MODEL_SHAPE: &str = "dlib_shape_predictor_5";
pub const MODEL_EMBEDDER: &str = crate::embedder::DLIB_ID;

/// dlib's HOG box for a BlazeFace detection, fitted by least squares over the 26 faces of
/// `shared/reference/dlib_chips.npz` (BlazeFace boxes on our side, dlib's boxes on the other;
/// the fit's data are printed by `tests/pipeline.rs`). dlib's box follows a turned head, and
/// BlazeFace's nose tip says where the head turns: the box centre's x moves towards the nose
/// by this fraction of (nose x − BlazeFace box centre x); leave-one-out error 0.029 box widths,
/// against 0.117 without it.
const DLIB_BOX_NOSE_PULL: f64 = 0.582;
/// The rest of the fit: the centre's offset from BlazeFace's box centre, in BlazeFace box
/// widths (x, y; leave-one-out error in y 0.05 widths, which no keypoint reduced).
const DLIB_BOX_OFFSET: (f64, f64) = (-0.012, -0.027);
/// dlib's box side in BlazeFace box widths (dlib's sides come in pyramid steps of about 1.2,
/// hence a leave-one-out error of 0.09).
const DLIB_BOX_SCALE: f64 = 1.036;

/// How landmarks are placed from a detection.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Alignment {
    /// dlib's shape predictor from [`dlib_box`]: the chips dlib's network was trained on.
    #[default]
    ShapePredictor,
    /// [`Landmarks5::from_detection`]: BlazeFace's keypoints, no predictor.
    Keypoints,
}

/// Which weights of an embedding network the pipeline embeds with.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum EmbedderChoice {
    /// dlib's ResNet from the model cache ([`MODEL_EMBEDDER`]).
    #[default]
    Dlib,
    /// A fine-tuned copy of dlib's network (`likeness train encoder --init dlib`): a
    /// safetensors file whose metadata says `format = dlib_resnet`.
    DlibFile(PathBuf),
}

/// Everything that decides what the face pipeline finds and how it embeds it.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct FacesConfig {
    /// How landmarks are placed.
    pub alignment: Alignment,
    /// The embedding network.
    pub embedder: EmbedderChoice,
    /// What the detector looks for (the smallest face among it: [`FacesConfig::with_min_face`]).
    pub detector: DetectOptions,
}

impl FacesConfig {
    /// The smallest face width looked for, in photo pixels (the detector plans its tiles from
    /// it: a 1920×1280 photo takes 34 passes at 40 px, 4 at 160).
    pub fn with_min_face(mut self, pixels: u32) -> Self {
        self.detector.min_face = pixels;
        self
    }

    /// Landmarks from `alignment`.
    pub fn with_alignment(mut self, alignment: Alignment) -> Self {
        self.alignment = alignment;
        self
    }

    /// Embeddings from `embedder`.
    pub fn with_embedder(mut self, embedder: EmbedderChoice) -> Self {
        self.embedder = embedder;
        self
    }
}

/// One face of an image: where it is, its landmarks and its embedding.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Face {
    pub detection: Detection,
    pub landmarks: Landmarks5,
    pub embedding: Embedding,
}

/// Wall-clock time spent in each stage of [`Faces::encode_timed`].
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct StageTimes {
    pub detect: Duration,
    pub landmarks: Duration,
    /// Chip extraction.
    pub align: Duration,
    /// The embedding network (one batched forward).
    pub encode: Duration,
}

/// Detector, landmark predictor and embedder, loaded once.
#[derive(Debug)]
pub struct Faces {
    pub detector: Detector,
    predictor: ShapePredictor,
    embedder: Box<dyn Embedder>,
    device: Device,
    /// How [`Faces::landmarks`] places the landmarks.
    pub alignment: Alignment,
    /// Face-ness check ([`crate::detect::faceness`]): a detection is kept only if its dlib
    /// embedding lies at least this far from the non-face mean; `None` keeps every detection.
    /// The check embeds the shape predictor's chip with dlib's network, which the pipeline
    /// does anyway by default; with [`Alignment::Keypoints`] or another embedder it is one more
    /// pass of the network per face.
    pub faceness: Option<f32>,
    /// dlib's own network, kept for the face-ness check when [`Faces::with_embedder`] replaced
    /// the embedder (the check is defined on dlib's embeddings).
    reference_embedder: Option<Box<dyn Embedder>>,
}

/// dlib's face box (its HOG detector's convention: what the shape predictor was trained on)
/// for a BlazeFace detection.
pub fn dlib_box(d: &Detection) -> DRect {
    let w = d.width() as f64;
    let cx = (d.bbox[0] + d.bbox[2]) as f64 / 2.0;
    let cy = (d.bbox[1] + d.bbox[3]) as f64 / 2.0;
    let nose_x = d.keypoints[NOSE].0 as f64;
    let centre = (
        cx + DLIB_BOX_NOSE_PULL * (nose_x - cx) + DLIB_BOX_OFFSET.0 * w,
        cy + DLIB_BOX_OFFSET.1 * w,
    );
    // DRect's widths are dlib's inclusive ones, as the fitted sides are
    DRect::centered(centre, DLIB_BOX_SCALE * w, DLIB_BOX_SCALE * w)
}

/// Index of the nose tip among BlazeFace's keypoints.
const NOSE: usize = 2;

impl Faces {
    /// The cached models [`Faces::load`] needs (check them with `Cache::require`).
    pub const MODELS: &[&str] = &[MODEL_FRONT, MODEL_BACK, MODEL_SHAPE, MODEL_EMBEDDER];

    /// The pipeline `config` asks for, its networks loaded from the model cache (and the
    /// embedder's file, if it names one). A missing model is an error naming the command that
    /// fetches it; a file that is not a dlib network names the file.
    pub fn new(config: &FacesConfig, cache: &Cache) -> Result<Self> {
        let weights = |name: &str| -> Result<WeightMap> {
            let path = cache
                .model_path(name)
                .map_err(|e| FaceError::Missing(e.to_string()))?;
            Ok(WeightMap::load(&path)?)
        };
        let mut faces = Faces::from_weights(
            &weights(MODEL_FRONT)?,
            &weights(MODEL_BACK)?,
            &weights(MODEL_SHAPE)?,
            &weights(MODEL_EMBEDDER)?,
            &likeness_nn::device::cpu(),
        )?;
        if let EmbedderChoice::DlibFile(path) = &config.embedder {
            let tuned = DlibEmbedder::fine_tuned(path, &faces.device)?;
            faces = faces.with_embedder(Box::new(tuned));
        }
        faces.detector.options = config.detector.clone();
        faces.alignment = config.alignment;
        Ok(faces)
    }

    /// [`Faces::new`] with the default configuration.
    pub fn load(cache: &Cache) -> Result<Self> {
        Faces::new(&FacesConfig::default(), cache)
    }

    /// Builds the facade from the networks' weights.
    pub fn from_weights(
        front: &WeightMap,
        back: &WeightMap,
        shape: &WeightMap,
        embedder: &WeightMap,
        device: &Device,
    ) -> Result<Self> {
        Ok(Faces {
            detector: Detector::load(front, back, device)?,
            predictor: ShapePredictor::load(shape)?,
            embedder: Box::new(DlibEmbedder::from_weights(embedder, device)?),
            device: device.clone(),
            alignment: Alignment::default(),
            faceness: Some(faceness::MIN_NON_FACE_DISTANCE),
            reference_embedder: None,
        })
    }

    /// The same pipeline embedding with another [`Embedder`] (dlib's own network stays for
    /// the face-ness check, which is defined on its embeddings).
    pub fn with_embedder(mut self, embedder: Box<dyn Embedder>) -> Self {
        let original = std::mem::replace(&mut self.embedder, embedder);
        self.reference_embedder.get_or_insert(original);
        self
    }

    /// The embedder: its id (what a gallery records), chip geometry, metric and default
    /// tolerance.
    pub fn embedder(&self) -> &dyn Embedder {
        self.embedder.as_ref()
    }

    /// The faces in `image`, best first: the detector's, less those that fail the face-ness
    /// check ([`Faces::faceness`]; it embeds each face, which costs one pass of the embedding
    /// network per face).
    pub fn detect(&self, image: &Image) -> Result<Vec<Detection>> {
        let detections = self.detector.detect(image)?;
        if self.faceness.is_none() || detections.is_empty() {
            return Ok(detections);
        }
        let (faces, _) = self.encode_all(image, detections, true)?;
        Ok(faces.into_iter().map(|f| f.detection).collect())
    }

    /// The five landmarks of a detected face (see [`Alignment`]).
    pub fn landmarks(&self, image: &Image, detection: &Detection) -> Result<Landmarks5> {
        match self.alignment {
            Alignment::ShapePredictor => self.predictor.predict(image, &dlib_box(detection)),
            Alignment::Keypoints => Ok(Landmarks5::from_detection(detection)),
        }
    }

    /// The chip the embedder takes (its [`ChipGeometry`](crate::embedder::ChipGeometry);
    /// dlib: 150×150, padding 0.25).
    pub fn chip(&self, image: &Image, landmarks: &Landmarks5) -> Result<Chip> {
        let geometry = self.embedder.info().chip;
        align::extract_chip(
            image,
            &align::face_chip_details(landmarks, geometry.size, geometry.padding)?,
        )
    }

    /// The embedder's chip of the most confident face of `image`, if
    /// there is a face: what `train encoder --faces` learns from.
    pub fn best_chip(&self, image: &Image) -> Result<Option<Chip>> {
        let Some(detection) = self.detect(image)?.into_iter().next() else {
            return Ok(None);
        };
        let landmarks = self.landmarks(image, &detection)?;
        Ok(Some(self.chip(image, &landmarks)?))
    }

    /// Embeddings of chips, all in one forward pass.
    pub fn embed(&self, chips: &[Chip]) -> Result<Vec<Embedding>> {
        let images: Vec<Image> = chips.iter().map(|c| c.image.clone()).collect();
        self.embedder.embed(&images)
    }

    /// Every face of `image`, best detection first, with landmarks and embedding.
    pub fn encode(&self, image: &Image) -> Result<Vec<Face>> {
        Ok(self.encode_timed(image)?.0)
    }

    /// [`Faces::encode`], also saying how long each stage took.
    pub fn encode_timed(&self, image: &Image) -> Result<(Vec<Face>, StageTimes)> {
        let mut times = StageTimes::default();
        let start = Instant::now();
        let detections = self.detector.detect(image)?;
        times.detect = start.elapsed();
        let (faces, more) = self.encode_all(image, detections, true)?;
        times.landmarks = more.landmarks;
        times.align = more.align;
        times.encode = more.encode;
        Ok((faces, times))
    }

    /// The one face of a photo meant to show one person (verify, enrol): the only face, or
    /// the largest if there are several ([`SingleFace::found`] says how many);
    /// [`FaceError::NoFace`] if there is none.
    pub fn single_face(&self, image: &Image) -> Result<SingleFace> {
        let mut all = self.encode(image)?;
        let found = all.len();
        let i = largest(&all).ok_or(FaceError::NoFace)?;
        Ok(SingleFace {
            face: all.swap_remove(i),
            found,
        })
    }

    /// [`Faces::encode`] of the detections `keep` accepts (a score threshold, say), each face
    /// encoded once: the face-ness check reuses the embedding. Calling [`Faces::detect`] and
    /// then [`Faces::encode_detections`] encodes every face twice, because `detect` needs the
    /// embedding for its check. That cost the service ~45 ms of CPU per one-face photo
    /// (bench/README.md, "Service load").
    pub fn encode_where(
        &self,
        image: &Image,
        keep: impl Fn(&Detection) -> bool,
    ) -> Result<Vec<Face>> {
        let mut detections = self.detector.detect(image)?;
        detections.retain(|d| keep(d));
        Ok(self.encode_all(image, detections, true)?.0)
    }

    /// Landmarks, chips and embeddings (one batched forward) for given detections, every one
    /// of them (no face-ness check).
    pub fn encode_detections(
        &self,
        image: &Image,
        detections: Vec<Detection>,
    ) -> Result<(Vec<Face>, StageTimes)> {
        self.encode_all(image, detections, false)
    }

    /// [`Faces::encode_detections`], dropping the faces that fail the face-ness check when
    /// `check` is set (and [`Faces::faceness`] is).
    fn encode_all(
        &self,
        image: &Image,
        detections: Vec<Detection>,
        check: bool,
    ) -> Result<(Vec<Face>, StageTimes)> {
        let mut times = StageTimes::default();
        let start = Instant::now();
        let landmarks = detections
            .iter()
            .map(|d| self.landmarks(image, d))
            .collect::<Result<Vec<_>>>()?;
        times.landmarks = start.elapsed();
        let start = Instant::now();
        let chips = landmarks
            .iter()
            .map(|l| self.chip(image, l))
            .collect::<Result<Vec<_>>>()?;
        times.align = start.elapsed();
        let start = Instant::now();
        let embeddings = self.embed(&chips)?;
        let keep = match self.faceness {
            Some(min) if check => {
                self.faceness_verdicts(image, &detections, &chips, &embeddings, min)?
            }
            _ => vec![true; chips.len()],
        };
        times.encode = start.elapsed();
        let faces = detections
            .into_iter()
            .zip(landmarks)
            .zip(embeddings)
            .zip(keep)
            .filter_map(|(((detection, landmarks), embedding), keep)| {
                keep.then_some(Face {
                    detection,
                    landmarks,
                    embedding,
                })
            })
            .collect();
        Ok((faces, times))
    }

    /// For each detection, whether it passes the face-ness check: the dlib embedding of its
    /// chip cut from the shape predictor's landmarks — what the check was measured on — lies
    /// far enough from the non-face mean. `chips` and `embeddings` are the pipeline's, reused
    /// when they are those; otherwise (landmarks from keypoints, or another embedder) the
    /// check's own are made.
    fn faceness_verdicts(
        &self,
        image: &Image,
        detections: &[Detection],
        chips: &[Chip],
        embeddings: &[Embedding],
        min: f32,
    ) -> Result<Vec<bool>> {
        let own_chips;
        let chips = if self.alignment == Alignment::ShapePredictor {
            chips
        } else {
            own_chips = detections
                .iter()
                .map(|d| self.chip(image, &self.predictor.predict(image, &dlib_box(d))?))
                .collect::<Result<Vec<_>>>()?;
            &own_chips
        };
        let dlib = self.reference_embedder.as_ref().unwrap_or(&self.embedder);
        let reference: Vec<Embedding> =
            if self.alignment == Alignment::ShapePredictor && self.reference_embedder.is_none() {
                embeddings.to_vec()
            } else if chips.is_empty() {
                Vec::new()
            } else {
                let images: Vec<Image> = chips.iter().map(|c| c.image.clone()).collect();
                dlib.embed(&images)?
            };
        Ok(reference
            .iter()
            .map(|e| faceness::non_face_distance(&e.0) >= min)
            .collect())
    }
}

/// The face [`Faces::single_face`] chose, and how many the photo had.
#[derive(Clone, Debug, PartialEq)]
pub struct SingleFace {
    pub face: Face,
    /// Faces found in the photo (more than 1: `face` is the largest).
    pub found: usize,
}

/// Index of the largest face (by box area; the first of equals), `None` for no faces.
pub fn largest(faces: &[Face]) -> Option<usize> {
    let area = |f: &Face| f.detection.width() * f.detection.height();
    let mut best: Option<usize> = None;
    for (i, f) in faces.iter().enumerate() {
        if best.is_none_or(|b| area(f) > area(&faces[b])) {
            best = Some(i);
        }
    }
    best
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dlib_box_is_square_and_follows_the_detection() {
        let d = Detection {
            bbox: [100.0, 50.0, 200.0, 150.0],
            score: 0.9,
            keypoints: [(150.0, 100.0); 6],
        };
        let r = dlib_box(&d);
        let (w, h) = (r.right - r.left + 1.0, r.bottom - r.top + 1.0);
        assert!((w - h).abs() < 1e-9);
        assert!((w - 100.0 * DLIB_BOX_SCALE).abs() < 1e-9);
        let moved = dlib_box(&d.map(|x, y| (x + 10.0, y - 5.0)));
        // the box centre leans towards the nose
        let mut turned = d.clone();
        turned.keypoints[NOSE] = (120.0, 100.0);
        let leaning = dlib_box(&turned);
        assert!(leaning.left < r.left && (leaning.top - r.top).abs() < 1e-9);
        assert!((moved.left - r.left - 10.0).abs() < 1e-9);
        assert!((moved.top - r.top + 5.0).abs() < 1e-9);
    }

    fn face_with_box(bbox: [f32; 4]) -> Face {
        Face {
            detection: Detection {
                bbox,
                score: 0.9,
                keypoints: [(0.0, 0.0); 6],
            },
            landmarks: Landmarks5([(0.0, 0.0); 5]),
            embedding: Embedding(vec![0.0; 4]),
        }
    }

    #[test]
    fn the_largest_face_is_chosen_by_area_and_the_first_wins_ties() {
        assert_eq!(largest(&[]), None);
        let faces = [
            face_with_box([0.0, 0.0, 10.0, 10.0]),
            face_with_box([0.0, 0.0, 30.0, 5.0]),
            face_with_box([5.0, 5.0, 17.0, 17.0]),
            face_with_box([50.0, 50.0, 62.0, 62.0]),
        ];
        // areas 100, 150, 144, 144
        assert_eq!(largest(&faces), Some(1));
        assert_eq!(largest(&faces[2..]), Some(0));
    }

    #[test]
    fn faces_config_builders_set_what_they_name() {
        let c = FacesConfig::default()
            .with_min_face(80)
            .with_alignment(Alignment::Keypoints)
            .with_embedder(EmbedderChoice::DlibFile("tuned.safetensors".into()));
        assert_eq!(c.detector.min_face, 80);
        assert_eq!(c.alignment, Alignment::Keypoints);
        assert_eq!(
            c.embedder,
            EmbedderChoice::DlibFile("tuned.safetensors".into())
        );
        // the rest of the detector's options keep their defaults
        assert_eq!(c.detector.confirm, DetectOptions::default().confirm);
    }
}
