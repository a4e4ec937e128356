//! Face-ness: whether a candidate the detector confirmed is a face, or a round thing with a
//! face's pattern — a seal behind a speaker, a shirt button, a badge, a coin, a headlight.
//!
//! BlazeFace fires on such things, and its close-up confirmation (see the module above) does
//! not stop them all: a four-hole button shown close up is two eyes over a mouth to it. Two
//! checks follow, each on a measure that separated faces from non-faces on the face-ness study
//! set (`bench/faceness/`: the samples, face_recognition's test photos, scikit-image's,
//! scikit-learn's and insightface's pictures and synthetic seals and buttons, each at 0.2, 0.3,
//! 0.5, 1 and 2 times its size: 184 face and 124 non-face candidates, labelled by eye).
//!
//! 1. **A surer close-up for candidates of [`LARGE_FACE`] pixels and more**
//!    ([`close_up_min_score`]). The front model scores a face lower the fewer pixels it has
//!    (upsampled, blurred); a candidate that fills the close-up with real pixels and still
//!    scores like a blur is not a face. Real faces of 40 px and more scored 0.79 at least
//!    close up; the non-faces of that size the second check lets through, 0.70 at most.
//! 2. **The embedding is not a non-face's** ([`non_face_distance`]). dlib's network, made to
//!    spread faces apart, maps things that are not faces close together: the non-face
//!    candidates' embeddings lie 0.357 (median) from their mean, the confirmed faces' 0.466 to
//!    0.772 (median 0.656). A face's embedding must lie at least [`MIN_NON_FACE_DISTANCE`] from
//!    [`NON_FACE_EMBEDDING`], that mean. It needs the face's chip and embedding, so it runs in
//!    [`crate::faces::Faces`], which computes them anyway.
//!
//! On the study set, of the candidates today's confirmation keeps (close-up ≥ 0.65), 59 of 242
//! were non-faces (precision 0.756); with both checks none of 183 (1.000), and no face lost
//! (recall of faces of 40 px and more 158/159 before and after; the one miss is the
//! detector's). The margins are narrow where they matter: a head in profile (sample2.jpg)
//! lies 0.466 from the mean, a jacket button of biden.jpg shown at twice its size 0.464 with a
//! close-up score of 0.81. Left out one photo at a time (mean and threshold from the other
//! photos), the profile is lost (its photo holds the face nearest the non-faces) and a coin
//! of 8 px kept; everything else holds.

use crate::detect::Detection;

/// Width, in photo pixels, from which a candidate needs the surer close-up score: the
/// detector's default smallest face ([`super::DEFAULT_MIN_FACE`]).
pub const LARGE_FACE: f32 = 40.0;
/// How much more than the confirmation's own threshold a candidate of [`LARGE_FACE`] pixels
/// or more must score close up: 0.65 + 0.10 = 0.75 by default, between the 0.70 of the best
/// non-face of that size the embedding check lets through and the 0.79 of the weakest real
/// face of that size on the study set.
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
/// 124 non-face candidates of the face-ness study (`bench/faceness/`, whose `analyse.py`
/// computes it again; norm 1.277). Specific to dlib's network as the model cache imports it.
pub const NON_FACE_EMBEDDING: [f32; 128] = [
    -0.06346, 0.07245, 0.05871, -0.04104, -0.07317, -0.04869, -0.04656, -0.05705, 0.14526,
    -0.06690, 0.18944, -0.02374, -0.24257, -0.00883, -0.02965, 0.12052, -0.12342, -0.08479,
    -0.14718, -0.12241, 0.02627, 0.06810, 0.01609, 0.00996, -0.11535, -0.25744, -0.08003, -0.07827,
    0.06600, -0.13239, 0.02965, 0.07148, -0.14430, -0.02814, 0.02002, 0.03655, -0.00625, -0.09109,
    0.17663, -0.00556, -0.17611, -0.00343, 0.05123, 0.26368, 0.18192, 0.01949, 0.02207, -0.08062,
    0.08530, -0.25930, 0.02349, 0.14238, 0.05267, 0.08793, 0.06986, -0.17459, 0.00852, 0.11707,
    -0.15416, 0.05721, 0.06427, -0.08818, -0.04509, -0.10058, 0.20161, 0.07324, -0.13251, -0.14380,
    0.13641, -0.16080, -0.02656, 0.11082, -0.11498, -0.14925, -0.24888, 0.05856, 0.37536, 0.13181,
    -0.12808, 0.04042, -0.09473, -0.02869, -0.00648, 0.06906, -0.06934, -0.01802, -0.05612,
    0.06044, 0.20489, -0.05593, 0.00609, 0.21050, -0.00589, -0.00598, -0.03576, 0.04194, -0.11781,
    -0.00446, -0.06236, 0.01170, 0.07029, -0.10029, 0.03119, 0.10729, -0.15852, 0.15661, -0.01860,
    -0.02495, 0.02504, 0.01769, -0.05152, -0.03909, 0.18580, -0.24576, 0.19689, 0.19189, 0.05821,
    0.11841, 0.03658, 0.12645, -0.00909, 0.00695, -0.13890, -0.06360, 0.01976, -0.03096, -0.01276,
    0.02944,
];

/// Least distance from [`NON_FACE_EMBEDDING`] of a face's embedding: 0.465, the midpoint
/// between the farthest non-face that passes the surer close-up (0.464, a jacket button) and
/// the nearest confirmed real face (0.466, a head in profile) on the study set.
pub const MIN_NON_FACE_DISTANCE: f32 = 0.465;

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
