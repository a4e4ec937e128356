//! What the face commands answer, as typed values: the command line prints them with `--json`
//! and the HTTP service sends them, so both say the same thing in the same words (as ripgrep's
//! printer keeps its JSON messages as structs rather than building them by hand).
//!
//! Coordinates are rounded to hundredths of a pixel: finer digits are below what the detector
//! can tell and only make the output longer. Paths are written as text even when they are not
//! UTF-8 (the bytes that are not become U+FFFD), so a script gets an answer for every file,
//! not a failure for an odd name.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize, Serializer};

use crate::compare::{NamedMatch, Verdict};
use crate::detect::Detection;
use crate::faces::Face;

/// Serialises a path as a string, lossily for non-UTF-8 names (serde's own `Path` impl fails
/// on them).
pub fn lossy_path<S: Serializer>(path: &Path, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(&path.to_string_lossy())
}

/// `v` rounded to hundredths.
fn round2(v: f64) -> f64 {
    (v * 100.0).round() / 100.0
}

/// A detected face: box `[x0, y0, x1, y1]`, score and BlazeFace's six keypoints, in photo
/// pixels.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DetectionOut {
    #[serde(rename = "box")]
    pub bbox: [f64; 4],
    pub score: f32,
    pub keypoints: Vec<[f64; 2]>,
}

impl From<&Detection> for DetectionOut {
    fn from(d: &Detection) -> Self {
        DetectionOut {
            bbox: d.bbox.map(|v| round2(v as f64)),
            score: d.score,
            keypoints: d
                .keypoints
                .iter()
                .map(|&(x, y)| [round2(x as f64), round2(y as f64)])
                .collect(),
        }
    }
}

/// An encoded face: its detection, dlib's five landmarks and the embedding.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FaceOut {
    #[serde(flatten)]
    pub detection: DetectionOut,
    pub landmarks: [(f64, f64); 5],
    pub embedding: Vec<f32>,
}

impl From<&Face> for FaceOut {
    fn from(f: &Face) -> Self {
        FaceOut {
            detection: (&f.detection).into(),
            landmarks: f.landmarks.0,
            embedding: f.embedding.0.clone(),
        }
    }
}

/// `liveness`: each face of one photo judged live or a picture of one.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LivenessReport {
    #[serde(serialize_with = "lossy_path")]
    pub file: PathBuf,
    pub width: u32,
    pub height: u32,
    pub faces: Vec<crate::liveness::LivenessCheck>,
}

/// `detect`: the faces of one photo.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DetectReport {
    #[serde(serialize_with = "lossy_path")]
    pub file: PathBuf,
    pub width: u32,
    pub height: u32,
    pub faces: Vec<DetectionOut>,
}

/// `encode`: one photo's faces, or why it could not be encoded.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum EncodeReport {
    Faces {
        #[serde(serialize_with = "lossy_path")]
        file: PathBuf,
        faces: Vec<FaceOut>,
    },
    Error {
        #[serde(serialize_with = "lossy_path")]
        file: PathBuf,
        error: String,
    },
}

/// One side of a verification: the photo and the face used.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct VerifySide {
    #[serde(serialize_with = "lossy_path")]
    pub file: PathBuf,
    pub face: DetectionOut,
}

/// `verify`: the two faces, their distance and the verdict.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct VerifyReport {
    pub a: VerifySide,
    pub b: VerifySide,
    pub distance: f32,
    pub tolerance: f32,
    pub same: bool,
    /// A verification head's probability of the same person (`null` without a head).
    pub probability_same: Option<f64>,
}

impl VerifyReport {
    /// The report of `verdict` on the faces `a` (of `file_a`) and `b`.
    pub fn new(
        (file_a, a): (&Path, &Face),
        (file_b, b): (&Path, &Face),
        verdict: &Verdict,
        probability_same: Option<f64>,
    ) -> Self {
        VerifyReport {
            a: VerifySide {
                file: file_a.to_path_buf(),
                face: (&a.detection).into(),
            },
            b: VerifySide {
                file: file_b.to_path_buf(),
                face: (&b.detection).into(),
            },
            distance: verdict.distance,
            tolerance: verdict.tolerance,
            same: verdict.same,
            probability_same,
        }
    }
}

/// A face of an unknown photo and every known person within the tolerance.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RecognisedFace {
    pub face: DetectionOut,
    /// Empty for a face that failed the liveness check: a spoof is never named.
    pub matches: Vec<NamedMatch>,
    /// The passive liveness check, when asked for (`--liveness`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub liveness: Option<crate::liveness::LivenessCheck>,
}

/// The faces of one unknown photo (none: face_recognition's `no_persons_found`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RecognisedFile {
    #[serde(serialize_with = "lossy_path")]
    pub file: PathBuf,
    pub faces: Vec<RecognisedFace>,
}

/// `recognise`: who the known people are and who is in each photo.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RecogniseReport {
    pub known: Vec<String>,
    pub tolerance: f32,
    pub results: Vec<RecognisedFile>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::align::Landmarks5;
    use crate::compare::Embedding;

    fn face() -> Face {
        Face {
            detection: Detection {
                bbox: [10.123, 20.0, 110.456, 120.0],
                score: 0.75,
                keypoints: [(30.004, 40.006); 6],
            },
            landmarks: Landmarks5([(1.5, 2.5); 5]),
            embedding: Embedding(vec![0.25, -0.5]),
        }
    }

    #[test]
    fn a_face_is_written_with_rounded_coordinates_and_its_embedding() {
        let v = serde_json::to_value(FaceOut::from(&face())).unwrap();
        assert_eq!(v["box"], serde_json::json!([10.12, 20.0, 110.46, 120.0]));
        assert_eq!(v["keypoints"][5], serde_json::json!([30.0, 40.01]));
        assert_eq!(v["score"], 0.75);
        assert_eq!(v["landmarks"][0], serde_json::json!([1.5, 2.5]));
        assert_eq!(v["embedding"], serde_json::json!([0.25, -0.5]));
    }

    #[cfg(unix)]
    #[test]
    fn a_non_utf8_path_is_written_lossily_instead_of_failing() {
        use std::os::unix::ffi::OsStrExt;
        let file = PathBuf::from(std::ffi::OsStr::from_bytes(b"caf\xe9.jpg"));
        let report = DetectReport {
            file,
            width: 4,
            height: 3,
            faces: vec![],
        };
        let text = serde_json::to_string(&report).unwrap();
        let back: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(back["file"], "caf\u{FFFD}.jpg");
    }

    #[test]
    fn encode_reports_are_faces_or_an_error_without_a_tag() {
        let ok = EncodeReport::Faces {
            file: "a.jpg".into(),
            faces: vec![(&face()).into()],
        };
        let err = EncodeReport::Error {
            file: "b.jpg".into(),
            error: "b.jpg: truncated".into(),
        };
        let v = serde_json::to_value([&ok, &err]).unwrap();
        assert_eq!(v[0]["file"], "a.jpg");
        assert_eq!(v[0]["faces"].as_array().unwrap().len(), 1);
        assert_eq!(v[1]["error"], "b.jpg: truncated");
        assert!(v[1].get("faces").is_none());
        // and they read back as what was written
        let back: Vec<EncodeReport> = serde_json::from_value(v).unwrap();
        assert_eq!(back, vec![ok, err]);
    }
}
