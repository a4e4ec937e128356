//! BlazeFace output decoding: SSD anchors, sigmoid scores, box + keypoint regression, and
//! MediaPipe's weighted non-maximum suppression.
//!
//! Both models (front 128², back 256²) emit 896 rows. Each row has a score logit and 16
//! regressor values: box centre offset, width, height, then six keypoints, all in input pixels
//! relative to the row's anchor centre. The anchors are MediaPipe's `SsdAnchorsCalculator`
//! output with `fixed_anchor_size: true`, so they are unit-size centres and only their
//! positions matter.

use super::Detection;
use crate::error::{FaceError, Result};

/// Rows per model output (16·16·2 + 8·8·6 for both models) and regressor values per row (box
/// cx, cy, w, h + 6 keypoints): the network's facts, stated once in its file.
pub use likeness_nn::nets::blazeface::{NUM_ANCHORS, REGRESSION_VALUES as REGRESSOR_LEN};
/// Keypoints per detection, in BlazeFace's order: the subject's right eye, left eye, nose
/// tip, mouth centre, right ear tragion, left ear tragion. The subject's right eye is on the
/// image's left in an unmirrored photo.
pub const NUM_KEYPOINTS: usize = 6;

/// MediaPipe clips score logits to ±100 before the sigmoid (`score_clipping_thresh` of
/// `TensorsToDetectionsCalculator` in the face-detection graphs).
pub const SCORE_CLIP: f32 = 100.0;
/// Overlap (IoU) above which detections are merged (`min_suppression_threshold` of the
/// face-detection graphs' `NonMaxSuppressionCalculator`).
pub const NMS_IOU: f32 = 0.3;
/// Anchors sit at cell centres (`anchor_offset_x/y` of the graphs' `SsdAnchorsCalculator`).
const ANCHOR_OFFSET: f32 = 0.5;
/// `SsdAnchorsCalculator` makes two anchors per layer per cell (aspect ratio 1.0 and the
/// interpolated scale); consecutive layers with the same stride share one feature map.
const ANCHORS_PER_LAYER: usize = 2;

/// Which BlazeFace model produced an output.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum Model {
    /// Short range ("front camera"): 128² input, faces filling a good part of the frame.
    Front,
    /// Long range ("back camera"): 256² input, smaller faces.
    Back,
}

impl Model {
    /// Side of the square input, in pixels.
    pub fn input_size(self) -> u32 {
        match self {
            // face_detection_front.pbtxt / face_detection_back_desktop_live.pbtxt
            Model::Front => 128,
            Model::Back => 256,
        }
    }

    /// Strides of the four anchor layers (`SsdAnchorsCalculator.strides` in MediaPipe's
    /// face_detection_front and face_detection_back graphs).
    pub fn strides(self) -> [u32; 4] {
        match self {
            Model::Front => [8, 16, 16, 16],
            Model::Back => [16, 32, 32, 32],
        }
    }

    /// Default minimum score: MediaPipe's `min_score_thresh` for the front graph (0.5) and
    /// the 0.65 used for the back model by MediaPipe's face_detection_back graph (as also
    /// used by hollance/BlazeFace-PyTorch's port).
    pub fn min_score(self) -> f32 {
        match self {
            Model::Front => 0.5,
            Model::Back => 0.65,
        }
    }

    /// The anchor centres, normalised to [0, 1], in output-row order: for each feature map
    /// (finest first), row-major cells, then the anchors of a cell.
    pub fn anchors(self) -> Vec<[f32; 2]> {
        let size = self.input_size();
        let strides = self.strides();
        let mut out = Vec::with_capacity(NUM_ANCHORS);
        let mut layer = 0;
        while layer < strides.len() {
            let stride = strides[layer];
            let mut per_cell = 0;
            while layer < strides.len() && strides[layer] == stride {
                per_cell += ANCHORS_PER_LAYER;
                layer += 1;
            }
            let cells = size.div_ceil(stride);
            for y in 0..cells {
                for x in 0..cells {
                    let cx = (x as f32 + ANCHOR_OFFSET) / cells as f32;
                    let cy = (y as f32 + ANCHOR_OFFSET) / cells as f32;
                    out.extend(std::iter::repeat_n([cx, cy], per_cell));
                }
            }
        }
        out
    }
}

/// Logistic function of a logit clipped to ±[`SCORE_CLIP`].
pub fn sigmoid(logit: f32) -> f32 {
    1.0 / (1.0 + (-logit.clamp(-SCORE_CLIP, SCORE_CLIP)).exp())
}

/// Turns one image's raw outputs into detections in input pixels, keeping scores of at least
/// `min_score`. `scores` holds the 896 logits and `regressors` the 896×16 values, rows in
/// anchor order (the two output heads concatenated, 512 rows of the fine map first).
pub fn decode(
    model: Model,
    scores: &[f32],
    regressors: &[f32],
    min_score: f32,
) -> Result<Vec<Detection>> {
    if scores.len() != NUM_ANCHORS {
        return Err(FaceError::OutputSize {
            what: "BlazeFace scores",
            expected: NUM_ANCHORS,
            got: scores.len(),
        });
    }
    if regressors.len() != NUM_ANCHORS * REGRESSOR_LEN {
        return Err(FaceError::OutputSize {
            what: "BlazeFace regressors",
            expected: NUM_ANCHORS * REGRESSOR_LEN,
            got: regressors.len(),
        });
    }
    let size = model.input_size() as f32;
    let mut out = Vec::new();
    for (i, anchor) in model.anchors().into_iter().enumerate() {
        let score = sigmoid(scores[i]);
        // NaN scores are dropped too, so garbage outputs yield nothing.
        if score.is_nan() || score < min_score {
            continue;
        }
        let r = &regressors[i * REGRESSOR_LEN..(i + 1) * REGRESSOR_LEN];
        let (ax, ay) = (anchor[0] * size, anchor[1] * size);
        let (cx, cy, w, h) = (ax + r[0], ay + r[1], r[2], r[3]);
        let mut keypoints = [(0.0, 0.0); NUM_KEYPOINTS];
        for (k, kp) in keypoints.iter_mut().enumerate() {
            *kp = (ax + r[4 + 2 * k], ay + r[5 + 2 * k]);
        }
        out.push(Detection {
            bbox: [cx - w / 2.0, cy - h / 2.0, cx + w / 2.0, cy + h / 2.0],
            score,
            keypoints,
        });
    }
    Ok(out)
}

/// Intersection over union of two boxes (x0, y0, x1, y1); 0 for empty boxes.
pub fn iou(a: &[f32; 4], b: &[f32; 4]) -> f32 {
    let iw = (a[2].min(b[2]) - a[0].max(b[0])).max(0.0);
    let ih = (a[3].min(b[3]) - a[1].max(b[1])).max(0.0);
    let inter = iw * ih;
    let area = |r: &[f32; 4]| (r[2] - r[0]).max(0.0) * (r[3] - r[1]).max(0.0);
    let union = area(a) + area(b) - inter;
    if union > 0.0 { inter / union } else { 0.0 }
}

/// MediaPipe's weighted non-maximum suppression (`NonMaxSuppressionCalculator`, algorithm
/// WEIGHTED): the best remaining detection gathers every remaining one that overlaps it by
/// more than `iou_threshold`; the group becomes one detection whose box and keypoints are the
/// score-weighted mean of the group's, with the best one's score. Output is best first.
pub fn weighted_nms(mut detections: Vec<Detection>, iou_threshold: f32) -> Vec<Detection> {
    detections.retain(|d| d.score.is_finite() && d.bbox.iter().all(|v| v.is_finite()));
    detections.sort_by(|a, b| b.score.total_cmp(&a.score));
    let mut out = Vec::new();
    while let Some(best) = detections.first().cloned() {
        let (group, rest): (Vec<Detection>, Vec<Detection>) = detections
            .into_iter()
            .partition(|d| iou(&best.bbox, &d.bbox) > iou_threshold || d == &best);
        detections = rest;
        let total: f32 = group.iter().map(|d| d.score).sum();
        let mut merged = Detection {
            bbox: [0.0; 4],
            score: best.score,
            keypoints: [(0.0, 0.0); NUM_KEYPOINTS],
        };
        for d in &group {
            let w = d.score / total;
            for (m, v) in merged.bbox.iter_mut().zip(d.bbox) {
                *m += w * v;
            }
            for (m, v) in merged.keypoints.iter_mut().zip(d.keypoints) {
                m.0 += w * v.0;
                m.1 += w * v.1;
            }
        }
        out.push(merged);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn anchors_match_the_ssd_layout() {
        for model in [Model::Front, Model::Back] {
            let a = model.anchors();
            assert_eq!(a.len(), NUM_ANCHORS);
            // first feature map 16×16, 2 anchors per cell; second 8×8, 6 per cell
            assert_eq!(a[0], [0.5 / 16.0, 0.5 / 16.0]);
            assert_eq!(a[1], a[0]);
            assert_eq!(a[2], [1.5 / 16.0, 0.5 / 16.0]);
            assert_eq!(a[511], [15.5 / 16.0, 15.5 / 16.0]);
            assert_eq!(a[512], [0.5 / 8.0, 0.5 / 8.0]);
            assert_eq!(a[517], a[512]);
            assert_eq!(a[518], [1.5 / 8.0, 0.5 / 8.0]);
            assert_eq!(a[895], [7.5 / 8.0, 7.5 / 8.0]);
        }
    }

    #[test]
    fn decode_places_boxes_relative_to_anchors() {
        let mut scores = vec![-10.0; NUM_ANCHORS];
        let mut regs = vec![0.0; NUM_ANCHORS * REGRESSOR_LEN];
        scores[2] = 3.0;
        regs[2 * REGRESSOR_LEN..3 * REGRESSOR_LEN].copy_from_slice(&[
            1.0, -2.0, 20.0, 30.0, 0.0, 0.0, 4.0, 4.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0,
        ]);
        let d = decode(Model::Front, &scores, &regs, 0.5).unwrap();
        assert_eq!(d.len(), 1);
        // anchor 2 is cell (1, 0) of the 16×16 map: centre (12, 4) in a 128² input
        assert_eq!(d[0].bbox, [3.0, -13.0, 23.0, 17.0]);
        assert_eq!(d[0].keypoints[1], (16.0, 8.0));
        assert!((d[0].score - sigmoid(3.0)).abs() < 1e-7);
        assert!(decode(Model::Front, &scores[1..], &regs, 0.5).is_err());
        assert!(decode(Model::Back, &scores, &regs[1..], 0.5).is_err());
    }

    #[test]
    fn sigmoid_clips_extreme_logits() {
        assert_eq!(sigmoid(1e30), sigmoid(SCORE_CLIP));
        assert!(sigmoid(-1e30) >= 0.0);
        assert!((sigmoid(0.0) - 0.5).abs() < 1e-7);
    }

    #[test]
    fn weighted_nms_averages_overlapping_boxes_by_score() {
        let det = |x: f32, score: f32| Detection {
            bbox: [x, 0.0, x + 10.0, 10.0],
            score,
            keypoints: [(x, 1.0); NUM_KEYPOINTS],
        };
        let out = weighted_nms(
            vec![det(0.0, 0.25), det(2.0, 0.75), det(50.0, 0.6)],
            NMS_IOU,
        );
        assert_eq!(out.len(), 2);
        assert_eq!(out[0].score, 0.75);
        assert!((out[0].bbox[0] - 1.5).abs() < 1e-6);
        assert!((out[0].keypoints[3].0 - 1.5).abs() < 1e-6);
        assert_eq!(out[1].bbox[0], 50.0);
        assert!(weighted_nms(vec![], NMS_IOU).is_empty());
    }

    #[test]
    fn iou_of_disjoint_identical_and_empty_boxes() {
        let a = [0.0, 0.0, 10.0, 10.0];
        assert_eq!(iou(&a, &a), 1.0);
        assert_eq!(iou(&a, &[20.0, 20.0, 30.0, 30.0]), 0.0);
        assert_eq!(iou(&[0.0; 4], &[0.0; 4]), 0.0);
        assert!((iou(&a, &[5.0, 0.0, 15.0, 10.0]) - 1.0 / 3.0).abs() < 1e-6);
    }
}
