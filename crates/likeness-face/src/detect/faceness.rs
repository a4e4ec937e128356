//! Face-ness: whether a candidate the detector confirmed is a face, or a round thing with a
//! face's pattern — a seal behind a speaker, a shirt button, a coin, a headlight.
//!
//! BlazeFace fires on such things, and its close-up confirmation (see the module above) does
//! not stop them all: a four-hole button shown close up is two eyes over a mouth to it. Two
//! checks follow, each on a measure that separated faces from non-faces on the face-ness study
//! set (`bench/faceness/`: the samples, face_recognition's test photos, scikit-image's and
//! scikit-learn's pictures and synthetic seals and buttons, each at 0.2, 0.3, 0.5, 1 and 2 times
//! its size; 189 face and 132 non-face candidates, labelled by eye):
//!
//! 1. **A surer close-up for faces of [`LARGE_FACE`] pixels and more** ([`close_up_min_score`]).
//!    The front model scores a face lower the fewer pixels it has (upsampled, blurred); a
//!    candidate that fills the close-up with real pixels and still scores like a blur is not a
//!    face. Real faces of 40 px and more scored 0.79 at least in the close-up; the non-faces
//!    the second check lets through, 0.70 at most.
//! 2. **The embedding is not a non-face's** ([`non_face_distance`]). dlib's network, made to
//!    spread faces apart, maps things that are not faces close together: the non-face
//!    candidates' embeddings lie 0.36 (median) from their mean, real faces 0.46 to 0.77 from
//!    it. A face's embedding must lie at least [`MIN_NON_FACE_DISTANCE`] from
//!    [`NON_FACE_EMBEDDING`], that mean. It needs the face's chip and embedding, so it runs in
//!    [`crate::faces::Faces`], which computes them anyway.
//!
//! On the study set, the confirmed candidates (close-up score ≥ 0.65, today's detector): 188
//! faces and 59 non-faces; after both checks 188 faces and 1 non-face (a coin at 8 px).
//! Left out one photo at a time (mean and thresholds from the other photos) the same held
//! (no face lost, one non-face kept). The closest calls are a face in profile (sample2.jpg,
//! 0.464 from the mean) and a dark blob on biden.jpg shown at twice its size (0.453, close-up
//! 0.81).

use crate::detect::Detection;

/// Width, in photo pixels, from which a candidate needs the surer close-up score: the
/// detector's default smallest face ([`super::DEFAULT_MIN_FACE`]).
pub const LARGE_FACE: f32 = 40.0;
/// How much more than the confirmation's own threshold a candidate of [`LARGE_FACE`] pixels
/// or more must score close up: 0.65 + 0.10 = 0.75 by default, between the 0.70 of the best
/// non-face the embedding check lets through and the 0.79 of the worst real face of that size
/// on the study set.
pub const LARGE_FACE_EXTRA_SCORE: f32 = 0.10;

/// The close-up score `candidate` needs when the confirmation asks for `base` and `extra`
/// more of large candidates (see [`LARGE_FACE`]; the default `extra` is
/// [`LARGE_FACE_EXTRA_SCORE`]).
pub fn close_up_min_score(candidate: &Detection, base: f32, extra: f32) -> f32 {
    if candidate.width().max(candidate.height()) >= LARGE_FACE {
        (base + extra).min(1.0)
    } else {
        base
    }
}

/// Mean dlib embedding (`dlib_resnet`, chips cut from the shape predictor's landmarks) of the
/// 132 non-face candidates of the face-ness study (`bench/faceness/`; norm 1.278). Specific to
/// dlib's network as the model cache imports it.
pub const NON_FACE_EMBEDDING: [f32; 128] = [
    -0.06237, 0.07293, 0.05910, -0.04066, -0.07599, -0.04704, -0.04458, -0.05523, 0.14334,
    -0.06722, 0.18873, -0.02559, -0.24361, -0.00885, -0.02745, 0.12026, -0.12264, -0.08591,
    -0.14993, -0.12101, 0.02426, 0.06786, 0.01456, 0.01060, -0.11454, -0.25803, -0.07885, -0.07870,
    0.06566, -0.13127, 0.03017, 0.07019, -0.14394, -0.02646, 0.01946, 0.03692, -0.00836, -0.09215,
    0.17748, -0.00803, -0.17670, -0.00594, 0.05182, 0.26084, 0.18274, 0.01826, 0.02097, -0.07802,
    0.08459, -0.25941, 0.02234, 0.14363, 0.05412, 0.09003, 0.06983, -0.17411, 0.00960, 0.11888,
    -0.15478, 0.05577, 0.06107, -0.09039, -0.04548, -0.09995, 0.20177, 0.07303, -0.13128, -0.14463,
    0.13772, -0.16291, -0.02806, 0.11035, -0.11451, -0.14881, -0.24910, 0.05756, 0.37456, 0.13395,
    -0.13019, 0.03941, -0.09412, -0.02924, -0.00664, 0.06793, -0.06951, -0.02006, -0.05841,
    0.05964, 0.20449, -0.05748, 0.00712, 0.20981, -0.00497, -0.00717, -0.03522, 0.03955, -0.11611,
    -0.00460, -0.06189, 0.01156, 0.07165, -0.10170, 0.03066, 0.10636, -0.15853, 0.15633, -0.01797,
    -0.02496, 0.02503, 0.01733, -0.05237, -0.03920, 0.18812, -0.24494, 0.19733, 0.19137, 0.05558,
    0.11883, 0.03726, 0.12775, -0.00994, 0.00512, -0.13922, -0.06486, 0.01995, -0.03003, -0.01244,
    0.03059,
];

/// Least distance from [`NON_FACE_EMBEDDING`] of a face's embedding: 0.458, between the
/// non-face nearest to real faces (0.453, with a close-up score above the surer threshold) and
/// the real face nearest to the non-faces (0.464, a head in profile) on the study set.
pub const MIN_NON_FACE_DISTANCE: f32 = 0.458;

/// Euclidean distance of a dlib embedding from [`NON_FACE_EMBEDDING`]; infinite for an
/// embedding of another length (not dlib's: the check does not apply).
pub fn non_face_distance(embedding: &[f32]) -> f32 {
    if embedding.len() != NON_FACE_EMBEDDING.len() {
        return f32::INFINITY;
    }
    let sum: f64 = embedding
        .iter()
        .zip(NON_FACE_EMBEDDING)
        .map(|(&a, b)| (a as f64 - b as f64).powi(2))
        .sum();
    sum.sqrt() as f32
}

#[cfg(test)]
mod tests {
    use super::*;

    fn detection(width: f32) -> Detection {
        Detection {
            bbox: [10.0, 10.0, 10.0 + width, 10.0 + width],
            score: 0.9,
            keypoints: [(0.0, 0.0); super::super::NUM_KEYPOINTS],
        }
    }

    #[test]
    fn large_candidates_need_a_surer_close_up() {
        let extra = LARGE_FACE_EXTRA_SCORE;
        assert_eq!(close_up_min_score(&detection(39.0), 0.65, extra), 0.65);
        assert!((close_up_min_score(&detection(40.0), 0.65, extra) - 0.75).abs() < 1e-6);
        assert!((close_up_min_score(&detection(300.0), 0.5, extra) - 0.6).abs() < 1e-6);
        assert_eq!(close_up_min_score(&detection(300.0), 0.95, extra), 1.0);
        // no extra: every size alike, as before the face-ness check
        assert_eq!(close_up_min_score(&detection(300.0), 0.65, 0.0), 0.65);
    }

    #[test]
    fn the_non_face_mean_is_no_face_and_other_embedders_are_not_judged() {
        assert_eq!(non_face_distance(&NON_FACE_EMBEDDING), 0.0);
        assert!(non_face_distance(&NON_FACE_EMBEDDING) < MIN_NON_FACE_DISTANCE);
        // a unit step along one axis moves it by exactly 1
        let mut moved = NON_FACE_EMBEDDING;
        moved[7] += 1.0;
        assert!((non_face_distance(&moved) - 1.0).abs() < 1e-6);
        assert_eq!(non_face_distance(&[0.0; 64]), f32::INFINITY);
    }
}
