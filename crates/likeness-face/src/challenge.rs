//! The active liveness check: a head-turn challenge judged from landmark tracks.
//!
//! The person is asked to turn their head; the server detects the face in each frame the page
//! sends and passes BlazeFace's six keypoints per frame here (the page's own opinion is never
//! asked). A picture held up to the camera — printed, or on a phone — is a plane: however it is
//! turned, tilted or brought closer, its points move from frame to frame by a *homography*, and
//! a homography fitted to six points of a plane leaves nothing over. A head is not a plane: the
//! nose tip stands ~2 cm in front of the eyes and the ears ~8 cm behind them, so as it turns the
//! nose swings across the face and the ears slide behind it, and no homography follows all six
//! points. Two numbers decide:
//!
//! - **swing**: how far the nose moved across the line of the eyes, in eye-distances, relative to
//!   the first frame — the challenge was done (a still photo fails here);
//! - **planar residual**: at the most-turned frames, the RMS distance, in eye-distances, between
//!   where the best homography from the first frame puts the six points and where they are —
//!   the motion was not a plane's (a turned print fails here).
//!
//! Measured on synthetic tracks with known geometry (tests below; a head of typical proportions
//! 50 cm from a 600-px camera turning about its neck; the same six points printed on a sheet
//! turned, tilted and rolled): a head turning 15°/20°/25° swings 0.12/0.17/0.21 and leaves
//! 0.07/0.12/0.21; a sheet leaves 0 exactly, and under keypoint noise of 2% of the eye distance
//! 0.024 (median) to 0.046 (99th percentile) — while its swing can reach 0.14 when turned about
//! an oblique axis, which is why swing alone proves nothing.
//!
//! What it cannot catch: a *video* of a real head turning, replayed on a screen (the motion in
//! the video is 3D). The passive check ([`crate::liveness`]) is the one meant for screens. That
//! a real head passes cannot be filmed here: it is tested on synthetic tracks only.

use serde::{Deserialize, Serialize};

use crate::detect::NUM_KEYPOINTS;
use crate::error::{FaceError, Result};

/// BlazeFace keypoint order: right eye, left eye, nose tip, mouth, right ear, left ear.
const RIGHT_EYE: usize = 0;
const LEFT_EYE: usize = 1;
const NOSE: usize = 2;

/// The challenge is done when the nose has swung this far across the eye line (in
/// eye-distances) from the first frame: about 15° of head turn on the synthetic head. Keypoint
/// noise of 2% of the eye distance moves a measured swing by ~0.035 (one sigma), so a user
/// asked to turn should turn 30° (swing 0.27); at 25° (0.21) about one noisy sweep in a
/// hundred falls short.
pub const MIN_SWING: f64 = 0.12;
/// The motion is a head's, not a plane's, when the homography leaves at least this much (RMS,
/// in eye-distances) at the most-turned frames: a real head at 20° leaves ~0.12, at 25° 0.21
/// (0.08 at worst of 200 noisy sweeps), a sheet under 2% keypoint noise 0.046 at the 99th
/// percentile of 500 synthetic trials.
pub const MIN_PLANAR_RESIDUAL: f64 = 0.06;
/// Frames whose swing reaches this fraction of the largest are "most turned" and judged.
pub const TURNED_FRACTION: f64 = 0.8;
/// Fewer frames than this cannot show a turn.
pub const MIN_FRAMES: usize = 3;
/// Eyes closer than this many pixels: the face is too small to judge.
pub const MIN_EYE_DISTANCE: f64 = 8.0;

/// One frame's six keypoints, in the order of [`crate::Detection::keypoints`], in pixels of the
/// frame as the camera delivered it (not mirrored).
pub type Keypoints = [(f32, f32); NUM_KEYPOINTS];

/// Which way the person was asked to turn (their own left or right).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Turn {
    Left,
    Right,
}

/// Why the challenge failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Failure {
    /// The face did not turn far enough (a still picture, or no attempt).
    NoTurn,
    /// It turned, but the other way than asked.
    WrongWay,
    /// It turned the way a flat picture turns.
    Planar,
}

/// The outcome of a head-turn challenge.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ChallengeResult {
    pub passed: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failure: Option<Failure>,
    /// Largest swing of the nose across the eye line, signed (positive: towards the person's
    /// left), in eye-distances.
    pub swing: f64,
    /// Median homography residual over the most-turned frames, in eye-distances.
    pub planar_residual: f64,
    pub frames: usize,
}

/// Judges a head-turn challenge from the keypoints of successive frames (the first facing the
/// camera). `turn`: the direction asked for, or `None` for either.
pub fn judge_head_turn(frames: &[Keypoints], turn: Option<Turn>) -> Result<ChallengeResult> {
    if frames.len() < MIN_FRAMES {
        return Err(FaceError::Invalid(format!(
            "a head-turn challenge needs at least {MIN_FRAMES} frames with a face, got {}",
            frames.len()
        )));
    }
    let points: Vec<[[f64; 2]; NUM_KEYPOINTS]> = frames
        .iter()
        .map(|f| f.map(|(x, y)| [f64::from(x), f64::from(y)]))
        .collect();
    for (i, p) in points.iter().enumerate() {
        if p.iter().flatten().any(|v| !v.is_finite()) {
            return Err(FaceError::Invalid(format!(
                "frame {i}: a keypoint is not a finite number"
            )));
        }
        let eyes = dist(p[RIGHT_EYE], p[LEFT_EYE]);
        if eyes < MIN_EYE_DISTANCE {
            return Err(FaceError::Invalid(format!(
                "frame {i}: the eyes are {eyes:.1} px apart, too small a face to judge (at \
                 least {MIN_EYE_DISTANCE} px)"
            )));
        }
    }
    let reference = &points[0];
    let s0 = nose_position(reference);
    let swings: Vec<f64> = points.iter().map(|p| nose_position(p) - s0).collect();
    let swing = swings
        .iter()
        .copied()
        .max_by(|a, b| a.abs().total_cmp(&b.abs()))
        .unwrap_or(0.0);
    let mut residuals: Vec<f64> = points
        .iter()
        .zip(&swings)
        .filter(|(_, s)| s.abs() >= TURNED_FRACTION * swing.abs() && s.abs() > 0.0)
        .map(|(p, _)| planar_residual(reference, p))
        .collect();
    residuals.sort_by(f64::total_cmp);
    let planar_residual = if residuals.is_empty() {
        0.0
    } else {
        residuals[residuals.len() / 2]
    };
    let failure = if swing.abs() < MIN_SWING {
        Some(Failure::NoTurn)
    } else if matches!(
        (turn, swing > 0.0),
        (Some(Turn::Left), false) | (Some(Turn::Right), true)
    ) {
        Some(Failure::WrongWay)
    } else if planar_residual.is_nan() || planar_residual < MIN_PLANAR_RESIDUAL {
        Some(Failure::Planar)
    } else {
        None
    };
    Ok(ChallengeResult {
        passed: failure.is_none(),
        failure,
        swing,
        planar_residual,
        frames: frames.len(),
    })
}

fn dist(a: [f64; 2], b: [f64; 2]) -> f64 {
    (a[0] - b[0]).hypot(a[1] - b[1])
}

/// Where the nose lies along the eye line, from the eyes' midpoint, in eye-distances
/// (positive towards the person's left eye).
fn nose_position(p: &[[f64; 2]; NUM_KEYPOINTS]) -> f64 {
    let e = [
        p[LEFT_EYE][0] - p[RIGHT_EYE][0],
        p[LEFT_EYE][1] - p[RIGHT_EYE][1],
    ];
    let m = [
        (p[LEFT_EYE][0] + p[RIGHT_EYE][0]) / 2.0,
        (p[LEFT_EYE][1] + p[RIGHT_EYE][1]) / 2.0,
    ];
    let n = [p[NOSE][0] - m[0], p[NOSE][1] - m[1]];
    (n[0] * e[0] + n[1] * e[1]) / (e[0] * e[0] + e[1] * e[1])
}

/// RMS distance, in eye-distances of `to`, between `to` and `from` carried by the
/// least-squares homography from `from` to `to`.
pub fn planar_residual(from: &[[f64; 2]; NUM_KEYPOINTS], to: &[[f64; 2]; NUM_KEYPOINTS]) -> f64 {
    let scale = dist(to[RIGHT_EYE], to[LEFT_EYE]);
    let Some(h) = fit_homography(from, to) else {
        // No homography at all (degenerate points): nothing planar about the motion.
        return f64::INFINITY;
    };
    let mut sum = 0.0;
    for (a, b) in from.iter().zip(to) {
        let w = h[6] * a[0] + h[7] * a[1] + h[8];
        let u = (h[0] * a[0] + h[1] * a[1] + h[2]) / w;
        let v = (h[3] * a[0] + h[4] * a[1] + h[5]) / w;
        sum += (u - b[0]).powi(2) + (v - b[1]).powi(2);
    }
    let rms = (sum / from.len() as f64).sqrt() / scale;
    if rms.is_finite() { rms } else { f64::INFINITY }
}

/// Hartley's normalisation: moves the centroid to 0 and the mean distance to √2. Row-major 3×3.
fn normaliser(p: &[[f64; 2]]) -> [f64; 9] {
    let n = p.len() as f64;
    let c = [
        p.iter().map(|q| q[0]).sum::<f64>() / n,
        p.iter().map(|q| q[1]).sum::<f64>() / n,
    ];
    let mean = p.iter().map(|q| dist(*q, c)).sum::<f64>() / n;
    let s = if mean > 0.0 {
        std::f64::consts::SQRT_2 / mean
    } else {
        1.0
    };
    [s, 0.0, -s * c[0], 0.0, s, -s * c[1], 0.0, 0.0, 1.0]
}

fn apply(m: &[f64; 9], p: [f64; 2]) -> [f64; 2] {
    let w = m[6] * p[0] + m[7] * p[1] + m[8];
    [
        (m[0] * p[0] + m[1] * p[1] + m[2]) / w,
        (m[3] * p[0] + m[4] * p[1] + m[5]) / w,
    ]
}

fn mul(a: &[f64; 9], b: &[f64; 9]) -> [f64; 9] {
    let mut c = [0.0; 9];
    for i in 0..3 {
        for j in 0..3 {
            c[i * 3 + j] = (0..3).map(|k| a[i * 3 + k] * b[k * 3 + j]).sum();
        }
    }
    c
}

/// The inverse of a normaliser (a scale and a shift).
fn denormaliser(m: &[f64; 9]) -> [f64; 9] {
    let s = m[0];
    [
        1.0 / s,
        0.0,
        -m[2] / s,
        0.0,
        1.0 / s,
        -m[5] / s,
        0.0,
        0.0,
        1.0,
    ]
}

/// Least-squares homography (h₃₃ = 1, on normalised points) taking `from` to `to`, row-major.
fn fit_homography(
    from: &[[f64; 2]; NUM_KEYPOINTS],
    to: &[[f64; 2]; NUM_KEYPOINTS],
) -> Option<[f64; 9]> {
    let ta = normaliser(from);
    let tb = normaliser(to);
    // Normal equations AᵀA h = Aᵀr of the 2N × 8 system.
    let mut ata = [[0.0f64; 8]; 8];
    let mut atr = [0.0f64; 8];
    for (a, b) in from.iter().zip(to) {
        let [x, y] = apply(&ta, *a);
        let [u, v] = apply(&tb, *b);
        for (row, rhs) in [
            ([x, y, 1.0, 0.0, 0.0, 0.0, -u * x, -u * y], u),
            ([0.0, 0.0, 0.0, x, y, 1.0, -v * x, -v * y], v),
        ] {
            for ((ata_i, atr_i), &ri) in ata.iter_mut().zip(&mut atr).zip(&row) {
                *atr_i += ri * rhs;
                for (x, &rj) in ata_i.iter_mut().zip(&row) {
                    *x += ri * rj;
                }
            }
        }
    }
    let h = solve8(ata, atr)?;
    let hn = [h[0], h[1], h[2], h[3], h[4], h[5], h[6], h[7], 1.0];
    Some(mul(&denormaliser(&tb), &mul(&hn, &ta)))
}

/// Gaussian elimination with partial pivoting; `None` when singular.
fn solve8(mut a: [[f64; 8]; 8], mut b: [f64; 8]) -> Option<[f64; 8]> {
    for col in 0..8 {
        let pivot = (col..8).max_by(|&i, &j| a[i][col].abs().total_cmp(&a[j][col].abs()))?;
        if a[pivot][col].abs() < 1e-12 {
            return None;
        }
        a.swap(col, pivot);
        b.swap(col, pivot);
        for row in col + 1..8 {
            let f = a[row][col] / a[col][col];
            let pivot_row = a[col];
            for (x, p) in a[row][col..].iter_mut().zip(&pivot_row[col..]) {
                *x -= f * p;
            }
            b[row] -= f * b[col];
        }
    }
    let mut x = [0.0; 8];
    for row in (0..8).rev() {
        let s: f64 = (row + 1..8).map(|k| a[row][k] * x[k]).sum();
        x[row] = (b[row] - s) / a[row][row];
    }
    Some(x)
}

#[cfg(test)]
mod tests {
    use super::*;
    use likeness_nn::rng::SplitMix64;

    /// A head of typical proportions, in cm (x to the image's right, y down, z towards the
    /// camera), BlazeFace's order: right eye, left eye, nose tip, mouth, right ear, left ear.
    const HEAD: [[f64; 3]; 6] = [
        [-3.2, 0.0, 0.0],
        [3.2, 0.0, 0.0],
        [0.0, 3.5, 2.2],
        [0.0, 7.0, 0.5],
        [-7.2, 2.5, -8.0],
        [7.2, 2.5, -8.0],
    ];
    /// The head turns about its neck, 9 cm behind the eyes.
    const PIVOT: [f64; 3] = [0.0, 2.0, -9.0];
    /// A 600-px pinhole camera 50 cm away, image centre (320, 240).
    const FOCAL: f64 = 600.0;
    const DISTANCE: f64 = 50.0;

    fn rotation(yaw: f64, pitch: f64, roll: f64) -> [[f64; 3]; 3] {
        let (sy, cy) = yaw.to_radians().sin_cos();
        let (sp, cp) = pitch.to_radians().sin_cos();
        let (sr, cr) = roll.to_radians().sin_cos();
        let ry = [[cy, 0.0, sy], [0.0, 1.0, 0.0], [-sy, 0.0, cy]];
        let rx = [[1.0, 0.0, 0.0], [0.0, cp, -sp], [0.0, sp, cp]];
        let rz = [[cr, -sr, 0.0], [sr, cr, 0.0], [0.0, 0.0, 1.0]];
        let m = |a: [[f64; 3]; 3], b: [[f64; 3]; 3]| {
            let mut c = [[0.0; 3]; 3];
            for i in 0..3 {
                for j in 0..3 {
                    c[i][j] = (0..3).map(|k| a[i][k] * b[k][j]).sum();
                }
            }
            c
        };
        m(rz, m(rx, ry))
    }

    fn project(points: [[f64; 3]; 6]) -> [[f64; 2]; 6] {
        points.map(|p| {
            let z = DISTANCE - p[2];
            [320.0 + FOCAL * p[0] / z, 240.0 + FOCAL * p[1] / z]
        })
    }

    /// `points` rotated by `r` about `centre`.
    fn turn(points: [[f64; 3]; 6], centre: [f64; 3], r: [[f64; 3]; 3]) -> [[f64; 3]; 6] {
        points.map(|p| {
            let d = [p[0] - centre[0], p[1] - centre[1], p[2] - centre[2]];
            let mut q = [0.0; 3];
            for i in 0..3 {
                q[i] = centre[i] + (0..3).map(|k| r[i][k] * d[k]).sum::<f64>();
            }
            q
        })
    }

    /// The live head at (yaw, pitch), as the camera sees it.
    fn head(yaw: f64, pitch: f64) -> [[f64; 2]; 6] {
        project(turn(HEAD, PIVOT, rotation(yaw, pitch, 0.0)))
    }

    /// A print of the frontal head held flat 50 cm away, turned by (yaw, pitch, roll) about
    /// its centre.
    fn sheet(yaw: f64, pitch: f64, roll: f64) -> [[f64; 2]; 6] {
        let photo = head(0.0, 0.0);
        let flat = photo.map(|[u, v]| {
            [
                (u - 320.0) * DISTANCE / FOCAL,
                (v - 240.0) * DISTANCE / FOCAL,
                0.0,
            ]
        });
        let n = flat.len() as f64;
        let c = [0, 1, 2].map(|i| flat.iter().map(|p| p[i]).sum::<f64>() / n);
        project(turn(flat, c, rotation(yaw, pitch, roll)))
    }

    fn keypoints(p: [[f64; 2]; 6], noise: f64, rng: &mut SplitMix64) -> Keypoints {
        let eyes = dist(p[0], p[1]);
        p.map(|[x, y]| {
            let n = |rng: &mut SplitMix64| noise * eyes * normal(rng);
            ((x + n(rng)) as f32, (y + n(rng)) as f32)
        })
    }

    /// A standard normal draw (Box–Muller).
    fn normal(rng: &mut SplitMix64) -> f64 {
        let u = rng.unit().max(f64::MIN_POSITIVE);
        let v = rng.unit();
        (-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * v).cos()
    }

    fn track(frames: impl Iterator<Item = [[f64; 2]; 6]>, noise: f64, seed: u64) -> Vec<Keypoints> {
        let mut rng = SplitMix64::new(seed);
        frames.map(|p| keypoints(p, noise, &mut rng)).collect()
    }

    /// Angles 0, step, 2·step… up to `to` degrees.
    fn sweep(to: f64, steps: usize) -> impl Iterator<Item = f64> {
        (0..=steps).map(move |i| to * i as f64 / steps as f64)
    }

    #[test]
    fn a_real_head_turning_passes() {
        for (to, seed) in [(25.0, 1), (-25.0, 2), (30.0, 3)] {
            let frames = track(sweep(to, 10).map(|y| head(y, 3.0)), 0.02, seed);
            let r = judge_head_turn(&frames, None).unwrap();
            assert!(r.passed, "yaw to {to}: {r:?}");
        }
    }

    #[test]
    fn the_direction_asked_for_counts() {
        // Yaw > 0 here turns the nose towards the image's right, the person's left eye.
        let frames = track(sweep(25.0, 8).map(|y| head(y, 0.0)), 0.01, 4);
        assert!(judge_head_turn(&frames, Some(Turn::Left)).unwrap().passed);
        let r = judge_head_turn(&frames, Some(Turn::Right)).unwrap();
        assert_eq!(r.failure, Some(Failure::WrongWay), "{r:?}");
    }

    #[test]
    fn a_print_turned_tilted_and_rolled_fails_as_planar() {
        for (k, (yaw, pitch, roll)) in [
            (35.0, 0.0, 0.0),
            (-40.0, 10.0, 0.0),
            (30.0, 20.0, 10.0),
            (45.0, 0.0, 20.0),
            (0.0, 40.0, 15.0),
        ]
        .into_iter()
        .enumerate()
        {
            let frames = track(
                sweep(1.0, 10).map(|t| sheet(yaw * t, pitch * t, roll * t)),
                0.02,
                10 + k as u64,
            );
            let r = judge_head_turn(&frames, None).unwrap();
            assert!(!r.passed, "sheet ({yaw}, {pitch}, {roll}): {r:?}");
            assert!(
                r.failure == Some(Failure::Planar) || r.failure == Some(Failure::NoTurn),
                "{r:?}"
            );
        }
    }

    #[test]
    fn a_print_turned_obliquely_swings_the_nose_yet_fails() {
        // Turned about an oblique axis the sheet's nose crosses the eye line (swing ≥ the
        // challenge's), so only the homography catches it.
        let frames = track(
            sweep(1.0, 10).map(|t| sheet(30.0 * t, 20.0 * t, 10.0 * t)),
            0.0,
            0,
        );
        let r = judge_head_turn(&frames, None).unwrap();
        assert!(r.planar_residual < 1e-6, "{r:?}");
        let noisy = track(
            sweep(1.0, 10).map(|t| sheet(45.0 * t, 30.0 * t, 0.0)),
            0.02,
            7,
        );
        let r = judge_head_turn(&noisy, None).unwrap();
        assert!(!r.passed, "{r:?}");
    }

    #[test]
    fn a_still_photo_fails_for_want_of_a_turn() {
        let frames = track((0..12).map(|_| sheet(0.0, 0.0, 0.0)), 0.02, 20);
        let r = judge_head_turn(&frames, None).unwrap();
        assert_eq!(r.failure, Some(Failure::NoTurn), "{r:?}");
        // A still, live face that does not turn fails too: the challenge was not done.
        let frames = track((0..12).map(|_| head(0.0, 0.0)), 0.02, 21);
        assert!(!judge_head_turn(&frames, None).unwrap().passed);
    }

    #[test]
    fn over_many_noisy_trials_planes_and_heads_stay_apart() {
        // 200 noisy sweeps each (2% keypoint noise): no sheet turned 35° passes, every head turned
        // 30° passes. (At 25° one sweep in a hundred or so measures a swing under MIN_SWING: the
        // challenge asks for a clear turn.)
        for seed in 0..200u64 {
            let yaw = if seed % 2 == 0 { 35.0 } else { -35.0 };
            let frames = track(
                sweep(1.0, 8).map(|t| sheet(yaw * t, 5.0 * t, 0.0)),
                0.02,
                100 + seed,
            );
            assert!(
                !judge_head_turn(&frames, None).unwrap().passed,
                "sheet seed {seed}"
            );
            let frames = track(
                sweep(yaw * 6.0 / 7.0, 8).map(|y| head(y, 0.0)),
                0.02,
                1000 + seed,
            );
            let r = judge_head_turn(&frames, None).unwrap();
            assert!(r.passed, "head seed {seed}: {r:?}");
        }
    }

    #[test]
    fn the_homography_of_an_exact_plane_leaves_nothing() {
        let a = sheet(0.0, 0.0, 0.0);
        let b = sheet(40.0, -25.0, 30.0);
        assert!(planar_residual(&a, &b) < 1e-9);
        // and a head at 25° leaves about a fifth of the eye distance
        let r = planar_residual(&head(0.0, 0.0), &head(25.0, 0.0));
        assert!((0.15..0.3).contains(&r), "{r}");
    }

    #[test]
    fn bad_tracks_are_refused() {
        let f = head(0.0, 0.0).map(|[x, y]| (x as f32, y as f32));
        assert!(judge_head_turn(&[f, f], None).is_err());
        let mut nan = f;
        nan[2].0 = f32::NAN;
        assert!(judge_head_turn(&[f, nan, f], None).is_err());
        let tiny = f.map(|(x, y)| (x * 0.01, y * 0.01));
        assert!(judge_head_turn(&[tiny, tiny, tiny], None).is_err());
    }
}
