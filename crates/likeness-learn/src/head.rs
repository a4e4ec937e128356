//! A learned verification head: logistic regression on the per-dimension difference of two
//! embeddings, `ŷ = σ(Σ_k w_k·φ_k + b)`, as DeepFace (Taigman et al. 2014) does on top of its
//! features. φ is `|f_k(a) − f_k(b)|` or the χ² form `(f_k(a) − f_k(b))² / (|f_k(a)| + |f_k(b)|)`
//! (absolute values in the denominator because dlib's embeddings, unlike DeepFace's ReLU
//! features, can be negative).
//!
//! Fitted by Newton's method (IRLS) with an L2 penalty on the weights (not the bias), which on
//! a few hundred dimensions converges in a handful of steps.

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::error::{LearnError, Result};

/// Keeps the χ² form finite where both values are zero.
const CHI2_EPSILON: f64 = 1e-12;
/// Newton steps at most; the penalised log-loss is strictly convex, so a few dozen suffice.
const MAX_NEWTON_STEPS: usize = 100;
/// Stop when the largest parameter change is below this.
const TOLERANCE: f64 = 1e-9;

/// The per-dimension pair feature φ.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Feature {
    /// `|a_k − b_k|`.
    Abs,
    /// `(a_k − b_k)² / (|a_k| + |b_k|)`.
    ChiSquare,
}

impl std::str::FromStr for Feature {
    type Err = LearnError;

    fn from_str(s: &str) -> Result<Self> {
        match s {
            "abs" => Ok(Feature::Abs),
            "chi2" | "chi-square" => Ok(Feature::ChiSquare),
            other => Err(LearnError::Options(format!(
                "unknown feature {other:?} (abs or chi2)"
            ))),
        }
    }
}

impl Feature {
    /// φ of a pair of embeddings of equal length.
    pub fn of(self, a: &[f32], b: &[f32]) -> Result<Vec<f64>> {
        if a.len() != b.len() || a.is_empty() {
            return Err(LearnError::Data(format!(
                "embeddings of {} and {} values cannot be compared",
                a.len(),
                b.len()
            )));
        }
        Ok(a.iter()
            .zip(b)
            .map(|(&x, &y)| {
                let (x, y) = (x as f64, y as f64);
                match self {
                    Feature::Abs => (x - y).abs(),
                    Feature::ChiSquare => (x - y).powi(2) / (x.abs() + y.abs() + CHI2_EPSILON),
                }
            })
            .collect())
    }
}

/// A fitted head; saved and loaded as JSON.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VerifierHead {
    pub feature: Feature,
    pub weights: Vec<f64>,
    pub bias: f64,
    /// The L2 penalty it was fitted with.
    pub l2: f64,
}

fn sigmoid(z: f64) -> f64 {
    if z >= 0.0 {
        1.0 / (1.0 + (-z).exp())
    } else {
        let e = z.exp();
        e / (1.0 + e)
    }
}

/// Solves the symmetric positive definite system `a x = b` (Cholesky); `None` if `a` is not
/// positive definite.
fn solve_spd(a: &[f64], b: &[f64]) -> Option<Vec<f64>> {
    let n = b.len();
    let mut l = vec![0.0; n * n];
    for i in 0..n {
        for j in 0..=i {
            let s: f64 = (0..j).map(|k| l[i * n + k] * l[j * n + k]).sum();
            if i == j {
                let d = a[i * n + i] - s;
                if d <= 0.0 || !d.is_finite() {
                    return None;
                }
                l[i * n + i] = d.sqrt();
            } else {
                l[i * n + j] = (a[i * n + j] - s) / l[j * n + j];
            }
        }
    }
    let mut y = vec![0.0; n];
    for i in 0..n {
        y[i] = (b[i] - (0..i).map(|k| l[i * n + k] * y[k]).sum::<f64>()) / l[i * n + i];
    }
    let mut x = vec![0.0; n];
    for i in (0..n).rev() {
        x[i] = (y[i] - (i + 1..n).map(|k| l[k * n + i] * x[k]).sum::<f64>()) / l[i * n + i];
    }
    Some(x)
}

/// Mean log-loss plus `l2/2 · ‖w‖²`, with `theta = [w…, b]`.
fn objective(x: &[Vec<f64>], y: &[bool], theta: &[f64], l2: f64) -> f64 {
    let d = theta.len() - 1;
    let loss: f64 = x
        .iter()
        .zip(y)
        .map(|(row, &t)| {
            let z: f64 = row.iter().zip(theta).map(|(a, w)| a * w).sum::<f64>() + theta[d];
            // log(1 + e^z) − t·z, computed stably.
            let softplus = if z > 0.0 {
                z + (-z).exp().ln_1p()
            } else {
                z.exp().ln_1p()
            };
            softplus - if t { z } else { 0.0 }
        })
        .sum();
    loss / x.len() as f64 + 0.5 * l2 * theta[..d].iter().map(|w| w * w).sum::<f64>()
}

impl VerifierHead {
    /// Fits the head on feature rows `x` (all of one length) with labels `same`.
    pub fn fit_features(feature: Feature, x: &[Vec<f64>], same: &[bool], l2: f64) -> Result<Self> {
        if x.is_empty() || x.len() != same.len() {
            return Err(LearnError::Data(format!(
                "{} feature rows for {} labels",
                x.len(),
                same.len()
            )));
        }
        if !(l2 >= 0.0 && l2.is_finite()) {
            return Err(LearnError::Options(format!("L2 penalty {l2} must be ≥ 0")));
        }
        let d = x[0].len();
        if d == 0 || x.iter().any(|r| r.len() != d) {
            return Err(LearnError::Data("feature rows differ in length".into()));
        }
        if same.iter().all(|&s| s) || same.iter().all(|&s| !s) {
            return Err(LearnError::Data(
                "need both same and different pairs to fit a verifier".into(),
            ));
        }
        let n = x.len() as f64;
        let m = d + 1;
        let mut theta = vec![0.0; m];
        // A whisper of ridge keeps the Hessian invertible with l2 = 0 or separable data.
        let ridge = l2.max(1e-10);
        for _ in 0..MAX_NEWTON_STEPS {
            let mut grad = vec![0.0; m];
            let mut hess = vec![0.0; m * m];
            for (row, &t) in x.iter().zip(same) {
                let z: f64 = row.iter().zip(&theta).map(|(a, w)| a * w).sum::<f64>() + theta[d];
                let p = sigmoid(z);
                let r = p - if t { 1.0 } else { 0.0 };
                let s = p * (1.0 - p);
                let xi = |k: usize| if k < d { row[k] } else { 1.0 };
                for i in 0..m {
                    grad[i] += r * xi(i) / n;
                    let si = s * xi(i) / n;
                    for j in 0..=i {
                        hess[i * m + j] += si * xi(j);
                    }
                }
            }
            for i in 0..m {
                for j in 0..i {
                    hess[j * m + i] = hess[i * m + j];
                }
                if i < d {
                    grad[i] += l2 * theta[i];
                    hess[i * m + i] += ridge;
                } else {
                    hess[i * m + i] += 1e-10;
                }
            }
            let step = solve_spd(&hess, &grad).ok_or_else(|| {
                LearnError::Data("the verifier's Hessian is singular (degenerate features)".into())
            })?;
            // Backtracking: Newton's full step can overshoot far from the optimum.
            let before = objective(x, same, &theta, l2);
            let mut scale = 1.0;
            let mut next: Vec<f64>;
            loop {
                next = theta
                    .iter()
                    .zip(&step)
                    .map(|(t, s)| t - scale * s)
                    .collect();
                if objective(x, same, &next, l2) <= before || scale < 1e-6 {
                    break;
                }
                scale /= 2.0;
            }
            let change = step.iter().map(|s| (s * scale).abs()).fold(0.0, f64::max);
            theta = next;
            if change < TOLERANCE {
                break;
            }
        }
        let bias = theta[d];
        theta.truncate(d);
        Ok(VerifierHead {
            feature,
            weights: theta,
            bias,
            l2,
        })
    }

    /// Fits the head on embedding pairs `(a, b)` with labels `same`.
    pub fn fit(
        feature: Feature,
        pairs: &[(&[f32], &[f32])],
        same: &[bool],
        l2: f64,
    ) -> Result<Self> {
        let x = pairs
            .iter()
            .map(|(a, b)| feature.of(a, b))
            .collect::<Result<Vec<_>>>()?;
        Self::fit_features(feature, &x, same, l2)
    }

    /// Probability that `a` and `b` show the same identity.
    pub fn probability(&self, a: &[f32], b: &[f32]) -> Result<f64> {
        let phi = self.feature.of(a, b)?;
        if phi.len() != self.weights.len() {
            return Err(LearnError::Data(format!(
                "the head takes {}-value embeddings, not {}",
                self.weights.len(),
                phi.len()
            )));
        }
        Ok(sigmoid(
            phi.iter()
                .zip(&self.weights)
                .map(|(p, w)| p * w)
                .sum::<f64>()
                + self.bias,
        ))
    }

    /// Writes the head as JSON.
    pub fn save(&self, path: &Path) -> Result<()> {
        let text = serde_json::to_string_pretty(self).map_err(|e| LearnError::json(path, e))?;
        Ok(likeness_nn::weights::write_atomic(path, text.as_bytes())?)
    }

    /// Reads a head written by [`VerifierHead::save`].
    pub fn load(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|e| LearnError::io(path, e))?;
        let head: VerifierHead =
            serde_json::from_str(&text).map_err(|e| LearnError::json(path, e))?;
        if head.weights.is_empty() || head.weights.iter().any(|w| !w.is_finite()) {
            return Err(LearnError::Data(format!(
                "{}: the head's weights are empty or not finite",
                path.display()
            )));
        }
        Ok(head)
    }
}

/// Held-out accuracy of the head: for each fold, fitted on the other folds and scored (ŷ > ½
/// means "same") on that one. `fold[i]` is pair i's fold.
pub fn cross_validate(
    feature: Feature,
    pairs: &[(&[f32], &[f32])],
    same: &[bool],
    l2: f64,
    fold: &[usize],
) -> Result<Vec<f64>> {
    if fold.len() != pairs.len() || same.len() != pairs.len() {
        return Err(LearnError::Data(
            "one label and one fold per pair are needed".into(),
        ));
    }
    let x = pairs
        .iter()
        .map(|(a, b)| feature.of(a, b))
        .collect::<Result<Vec<_>>>()?;
    let k = fold.iter().max().map_or(0, |&m| m + 1);
    if k < 2 {
        return Err(LearnError::Data(
            "cross-validation needs at least two folds".into(),
        ));
    }
    let mut accuracies = Vec::with_capacity(k);
    for f in 0..k {
        let (train_x, train_y): (Vec<Vec<f64>>, Vec<bool>) = (0..x.len())
            .filter(|&i| fold[i] != f)
            .map(|i| (x[i].clone(), same[i]))
            .unzip();
        let head = VerifierHead::fit_features(feature, &train_x, &train_y, l2)?;
        let test: Vec<usize> = (0..x.len()).filter(|&i| fold[i] == f).collect();
        if test.is_empty() {
            return Err(LearnError::Data(format!("fold {f} is empty")));
        }
        let correct = test
            .iter()
            .filter(|&&i| {
                let z: f64 = x[i]
                    .iter()
                    .zip(&head.weights)
                    .map(|(p, w)| p * w)
                    .sum::<f64>();
                (sigmoid(z + head.bias) > 0.5) == same[i]
            })
            .count();
        accuracies.push(correct as f64 / test.len() as f64);
    }
    Ok(accuracies)
}

#[cfg(test)]
mod tests {
    use super::*;
    use likeness_nn::rng::SplitMix64;

    #[test]
    fn features_by_hand() {
        let a = [1.0, -2.0, 0.0];
        let b = [3.0, 2.0, 0.0];
        assert_eq!(Feature::Abs.of(&a, &b).unwrap(), vec![2.0, 4.0, 0.0]);
        let chi = Feature::ChiSquare.of(&a, &b).unwrap();
        assert!((chi[0] - 1.0).abs() < 1e-9 && (chi[1] - 4.0).abs() < 1e-9 && chi[2] == 0.0);
        assert!(Feature::Abs.of(&a, &b[..2]).is_err());
        assert_eq!("chi2".parse::<Feature>().unwrap(), Feature::ChiSquare);
    }

    #[test]
    fn recovers_a_known_weight_vector() {
        // Labels drawn from the model itself: maximum likelihood is consistent, so with many
        // samples and no penalty the fit lands near the truth.
        let truth = [2.0, -1.0, 0.5];
        let bias = 0.3;
        let mut rng = SplitMix64::new(42);
        let (mut x, mut y) = (Vec::new(), Vec::new());
        for _ in 0..20_000 {
            let row: Vec<f64> = (0..3).map(|_| rng.normal()).collect();
            let z: f64 = row.iter().zip(truth).map(|(a, w)| a * w).sum::<f64>() + bias;
            y.push(rng.unit() < sigmoid(z));
            x.push(row);
        }
        let head = VerifierHead::fit_features(Feature::Abs, &x, &y, 0.0).unwrap();
        for (w, t) in head.weights.iter().zip(truth) {
            assert!((w - t).abs() < 0.1, "{:?} vs {truth:?}", head.weights);
        }
        assert!((head.bias - bias).abs() < 0.1, "{}", head.bias);
        // A penalty shrinks the weights.
        let shrunk = VerifierHead::fit_features(Feature::Abs, &x, &y, 1.0).unwrap();
        let norm = |w: &[f64]| w.iter().map(|v| v * v).sum::<f64>();
        assert!(norm(&shrunk.weights) < norm(&head.weights));
    }

    #[test]
    fn separates_pairs_and_round_trips() {
        // Same pairs differ only in dimension 0 by a little, different pairs by a lot; the
        // other dimensions are noise. The head learns a negative weight on dimension 0.
        let mut rng = SplitMix64::new(5);
        let mut emb = Vec::new();
        let mut same = Vec::new();
        for i in 0..400 {
            let a: Vec<f32> = (0..4).map(|_| rng.normal() as f32).collect();
            let mut b: Vec<f32> = (0..4).map(|_| rng.normal() as f32).collect();
            let s = i % 2 == 0;
            b[0] = a[0] + if s { 0.1 } else { 2.0 } * (rng.unit() as f32 + 0.5);
            emb.push((a, b));
            same.push(s);
        }
        let pairs: Vec<(&[f32], &[f32])> = emb
            .iter()
            .map(|(a, b)| (a.as_slice(), b.as_slice()))
            .collect();
        let head = VerifierHead::fit(Feature::Abs, &pairs, &same, 1e-3).unwrap();
        assert!(head.weights[0] < -1.0, "{:?}", head.weights);
        let correct = pairs
            .iter()
            .zip(&same)
            .filter(|((a, b), s)| (head.probability(a, b).unwrap() > 0.5) == **s)
            .count();
        assert_eq!(correct, pairs.len());
        let path = std::env::temp_dir().join(format!("likeness-head-{}.json", std::process::id()));
        head.save(&path).unwrap();
        assert_eq!(VerifierHead::load(&path).unwrap(), head);
        std::fs::write(&path, "{\"feature\": \"abs\"").unwrap();
        assert!(VerifierHead::load(&path).is_err());
        std::fs::remove_file(&path).unwrap();
        assert!(head.probability(&[0.0; 3], &[0.0; 3]).is_err());
    }

    #[test]
    fn cross_validation_holds_each_fold_out() {
        // Separable by |a − b| with a clear gap: every held-out fold is classified right.
        let emb: Vec<(Vec<f32>, Vec<f32>)> = (0..40)
            .map(|i| {
                let d = if i % 2 == 0 { 0.1 } else { 1.0 } + (i as f32) * 0.001;
                (vec![0.0, 0.5], vec![d, 0.5])
            })
            .collect();
        let pairs: Vec<(&[f32], &[f32])> = emb
            .iter()
            .map(|(a, b)| (a.as_slice(), b.as_slice()))
            .collect();
        let same: Vec<bool> = (0..40).map(|i| i % 2 == 0).collect();
        let folds = crate::eval::contiguous_folds(40, 4);
        let acc = cross_validate(Feature::Abs, &pairs, &same, 1e-3, &folds).unwrap();
        assert_eq!(acc, vec![1.0; 4]);
        assert!(cross_validate(Feature::Abs, &pairs, &same, 1e-3, &[0; 40]).is_err());
    }

    #[test]
    fn refuses_one_sided_labels() {
        let x = vec![vec![1.0], vec![2.0]];
        assert!(VerifierHead::fit_features(Feature::Abs, &x, &[true, true], 0.0).is_err());
        assert!(VerifierHead::fit_features(Feature::Abs, &x, &[true], 0.0).is_err());
        assert!(VerifierHead::fit_features(Feature::Abs, &x, &[true, false], -1.0).is_err());
    }
}
