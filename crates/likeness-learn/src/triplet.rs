//! The triplet loss (Schroff, Kalenichenko & Philbin 2015, "FaceNet") and the online miners
//! that pick triplets from a batch of P identities × K examples.
//!
//! With squared Euclidean distances d(x, y) = ‖f(x) − f(y)‖², one triplet costs
//! `L = max(d(A, P) − d(A, N) + α, 0)`; a batch costs the mean over its triplets.

use burn::tensor::{Int, Tensor, TensorData};

use crate::error::{LearnError, Result};
use likeness_nn::rng::SplitMix64;

/// FaceNet's margin α on squared distances between L2-normalised embeddings.
pub const DEFAULT_MARGIN: f64 = 0.2;

/// Indices (into a batch) of an anchor, a positive (same label) and a negative (other label).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Triplet {
    pub anchor: usize,
    pub positive: usize,
    pub negative: usize,
}

impl Triplet {
    pub fn new(anchor: usize, positive: usize, negative: usize) -> Self {
        Self {
            anchor,
            positive,
            negative,
        }
    }
}

/// Mean triplet loss over rows: `anchor`, `positive` and `negative` are `[n, dim]` embeddings,
/// row i forming one triplet. Differentiable (use an autodiff device for gradients).
pub fn triplet_loss(
    anchor: Tensor<2>,
    positive: Tensor<2>,
    negative: Tensor<2>,
    margin: f64,
) -> Tensor<1> {
    let d_ap = (anchor.clone() - positive).powi_scalar(2).sum_dim(1);
    let d_an = (anchor - negative).powi_scalar(2).sum_dim(1);
    (d_ap - d_an).add_scalar(margin).clamp_min(0.0).mean()
}

/// Mean triplet loss of `triplets` drawn from the rows of `embeddings` (`[batch, dim]`).
pub fn batch_triplet_loss(
    embeddings: Tensor<2>,
    triplets: &[Triplet],
    margin: f64,
) -> Result<Tensor<1>> {
    if triplets.is_empty() {
        return Err(LearnError::Data("no triplets to take the loss of".into()));
    }
    let rows = embeddings.dims()[0];
    if let Some(t) = triplets
        .iter()
        .find(|t| t.anchor.max(t.positive).max(t.negative) >= rows)
    {
        return Err(LearnError::Data(format!(
            "triplet {t:?} indexes past the batch of {rows}"
        )));
    }
    let device = embeddings.device();
    let pick = |f: fn(&Triplet) -> usize| {
        let idx: Vec<i64> = triplets.iter().map(|t| f(t) as i64).collect();
        let idx = Tensor::<1, Int>::from_data(TensorData::new(idx, [triplets.len()]), &device);
        embeddings.clone().select(0, idx)
    };
    let a = pick(|t| t.anchor);
    let p = pick(|t| t.positive);
    let n = pick(|t| t.negative);
    Ok(triplet_loss(a, p, n, margin))
}

/// Squared Euclidean distances between all rows of a row-major `[n, dim]` matrix, as a
/// row-major `[n, n]` matrix (host side: the miners only need values, not gradients).
pub fn squared_distances(embeddings: &[f32], dim: usize) -> Result<Vec<f32>> {
    if dim == 0 || !embeddings.len().is_multiple_of(dim) {
        return Err(LearnError::Data(format!(
            "{} values do not form rows of {dim}",
            embeddings.len()
        )));
    }
    let n = embeddings.len() / dim;
    let mut d = vec![0f32; n * n];
    for i in 0..n {
        for j in i + 1..n {
            let (a, b) = (&embeddings[i * dim..][..dim], &embeddings[j * dim..][..dim]);
            let s: f32 = a.iter().zip(b).map(|(x, y)| (x - y) * (x - y)).sum();
            d[i * n + j] = s;
            d[j * n + i] = s;
        }
    }
    Ok(d)
}

/// How triplets are chosen from a batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mining {
    /// FaceNet's semi-hard negatives: for each (anchor, positive) pair, the negative with
    /// d(a,p) < d(a,n) < d(a,p) + α that is closest to the anchor; pairs with none are dropped.
    SemiHard,
    /// Batch-hard (Hermans, Beyer & Leibe 2017): for each anchor, its farthest positive and
    /// its nearest negative.
    Hardest,
    /// For each (anchor, positive) pair, a negative drawn uniformly.
    Random,
}

impl std::str::FromStr for Mining {
    type Err = LearnError;

    fn from_str(s: &str) -> Result<Self> {
        match s {
            "semi-hard" | "semihard" => Ok(Mining::SemiHard),
            "hardest" | "hard" | "batch-hard" => Ok(Mining::Hardest),
            "random" => Ok(Mining::Random),
            other => Err(LearnError::Options(format!(
                "unknown mining {other:?} (semi-hard, hardest or random)"
            ))),
        }
    }
}

/// Triplets of a batch with `labels` and squared distances `dist` (`[n, n]` row-major, as
/// [`squared_distances`] gives). Ties go to the lowest index, so the choice is reproducible.
pub fn mine(
    mining: Mining,
    dist: &[f32],
    labels: &[usize],
    margin: f64,
    rng: &mut SplitMix64,
) -> Result<Vec<Triplet>> {
    let n = labels.len();
    if dist.len() != n * n {
        return Err(LearnError::Data(format!(
            "{} distances for {n} labels (want {})",
            dist.len(),
            n * n
        )));
    }
    let d = |i: usize, j: usize| dist[i * n + j] as f64;
    let mut out = Vec::new();
    for a in 0..n {
        let positives = (0..n).filter(|&p| p != a && labels[p] == labels[a]);
        let negatives: Vec<usize> = (0..n).filter(|&j| labels[j] != labels[a]).collect();
        if negatives.is_empty() {
            continue;
        }
        match mining {
            Mining::SemiHard => {
                for p in positives {
                    let d_ap = d(a, p);
                    let best = negatives
                        .iter()
                        .copied()
                        .filter(|&j| d(a, j) > d_ap && d(a, j) < d_ap + margin)
                        .min_by(|&x, &y| d(a, x).total_cmp(&d(a, y)));
                    if let Some(neg) = best {
                        out.push(Triplet::new(a, p, neg));
                    }
                }
            }
            Mining::Hardest => {
                // max_by keeps the last of equals: reverse the order so ties go to the lowest.
                let far = positives
                    .collect::<Vec<_>>()
                    .into_iter()
                    .rev()
                    .max_by(|&x, &y| d(a, x).total_cmp(&d(a, y)));
                let near = negatives
                    .iter()
                    .copied()
                    .min_by(|&x, &y| d(a, x).total_cmp(&d(a, y)));
                if let (Some(p), Some(neg)) = (far, near) {
                    out.push(Triplet::new(a, p, neg));
                }
            }
            Mining::Random => {
                for p in positives {
                    out.push(Triplet::new(a, p, negatives[rng.below(negatives.len())]));
                }
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use likeness_nn::device::{cpu, cpu_autodiff};

    fn t2(rows: &[[f32; 2]], device: &burn::tensor::Device) -> Tensor<2> {
        let v: Vec<f32> = rows.iter().flatten().copied().collect();
        Tensor::from_data(TensorData::new(v, [rows.len(), 2]), device)
    }

    fn values<const D: usize>(t: Tensor<D>) -> Vec<f32> {
        t.into_data().try_to_vec::<f32>().unwrap()
    }

    #[test]
    fn loss_matches_hand_computed_values() {
        let dev = cpu();
        // Row 0: d(a,p) = 1, d(a,n) = 4 → max(1 − 4 + 0.2, 0) = 0.
        // Row 1: d(a,p) = 1² + 2² = 5, d(a,n) = 1 → 5 − 1 + 0.2 = 4.2.
        // Row 2: d(a,p) = 0.25, d(a,n) = 0.36 → 0.25 − 0.36 + 0.2 = 0.09.
        let a = t2(&[[0.0, 0.0], [1.0, 1.0], [0.0, 0.0]], &dev);
        let p = t2(&[[1.0, 0.0], [2.0, 3.0], [0.5, 0.0]], &dev);
        let n = t2(&[[0.0, 2.0], [1.0, 0.0], [0.0, -0.6]], &dev);
        let loss = values(triplet_loss(a, p, n, 0.2));
        let want = (0.0 + 4.2 + 0.09) / 3.0;
        assert!((loss[0] - want).abs() < 1e-6, "{loss:?} vs {want}");
    }

    #[test]
    fn gradient_matches_hand_derivation() {
        let dev = cpu_autodiff();
        // Active triplets (row 1 and 2 above): ∂L/∂a = 2(n − p)/m, ∂L/∂p = −2(a − p)/m,
        // ∂L/∂n = 2(a − n)/m with m = 3 rows; row 0 is inactive, so its gradient is zero.
        let a = t2(&[[0.0, 0.0], [1.0, 1.0], [0.0, 0.0]], &dev).require_grad();
        let p = t2(&[[1.0, 0.0], [2.0, 3.0], [0.5, 0.0]], &dev).require_grad();
        let n = t2(&[[0.0, 2.0], [1.0, 0.0], [0.0, -0.6]], &dev).require_grad();
        let grads = triplet_loss(a.clone(), p.clone(), n.clone(), 0.2).backward();
        let m = 3.0;
        let want_a = [
            0.0,
            0.0,
            2.0 * (1.0 - 2.0) / m,
            2.0 * (0.0 - 3.0) / m,
            2.0 * (0.0 - 0.5) / m,
            2.0 * (-0.6 - 0.0) / m,
        ];
        let want_p = [
            0.0,
            0.0,
            -2.0 * (1.0 - 2.0) / m,
            -2.0 * (1.0 - 3.0) / m,
            -2.0 * (0.0 - 0.5) / m,
            0.0,
        ];
        let want_n = [
            0.0,
            0.0,
            2.0 * (1.0 - 1.0) / m,
            2.0 * (1.0 - 0.0) / m,
            0.0,
            2.0 * (0.0 + 0.6) / m,
        ];
        for (t, want) in [(a, want_a), (p, want_p), (n, want_n)] {
            let got = values(t.grad(&grads).unwrap());
            for (g, w) in got.iter().zip(want) {
                assert!((g - w).abs() < 1e-5, "{got:?} vs {want:?}");
            }
        }
    }

    #[test]
    fn batch_loss_selects_rows() {
        let dev = cpu();
        let e = t2(&[[0.0, 0.0], [0.5, 0.0], [0.0, -0.6], [9.0, 9.0]], &dev);
        let loss = batch_triplet_loss(e, &[Triplet::new(0, 1, 2)], 0.2).unwrap();
        assert!((values(loss)[0] - 0.09).abs() < 1e-6);
        let e = t2(&[[0.0, 0.0]], &dev);
        assert!(batch_triplet_loss(e.clone(), &[], 0.2).is_err());
        assert!(batch_triplet_loss(e, &[Triplet::new(0, 0, 1)], 0.2).is_err());
    }

    /// A batch on a line, P = 2 identities × K = 3: label 0 at x = 0, 1, 3 and label 1 at
    /// x = 1.2, 1.5, 4, so squared distances are easy to read off.
    fn constructed_batch() -> (Vec<f32>, Vec<usize>) {
        let xs = [0.0f32, 1.0, 3.0, 1.2, 1.5, 4.0];
        let e: Vec<f32> = xs.iter().flat_map(|&x| [x, 0.0]).collect();
        (squared_distances(&e, 2).unwrap(), vec![0, 0, 0, 1, 1, 1])
    }

    #[test]
    fn squared_distances_are_squared() {
        let (d, _) = constructed_batch();
        assert_eq!(d[2], 9.0);
        assert!((d[3 * 6 + 5] - 7.84).abs() < 1e-5);
        assert_eq!(d[4 * 6 + 4], 0.0);
        assert!(squared_distances(&[1.0, 2.0, 3.0], 2).is_err());
    }

    /// Every triplet the definition admits, by brute force, for cross-checking.
    fn brute_semi_hard(d: &[f32], labels: &[usize], margin: f64) -> Vec<Triplet> {
        let n = labels.len();
        let mut out = Vec::new();
        for a in 0..n {
            for p in 0..n {
                if p == a || labels[p] != labels[a] {
                    continue;
                }
                let dap = d[a * n + p] as f64;
                let mut best: Option<(f64, usize)> = None;
                for j in 0..n {
                    let daj = d[a * n + j] as f64;
                    let inside = labels[j] != labels[a] && daj > dap && daj < dap + margin;
                    if inside && best.is_none_or(|(b, _)| daj < b) {
                        best = Some((daj, j));
                    }
                }
                if let Some((_, j)) = best {
                    out.push(Triplet::new(a, p, j));
                }
            }
        }
        out
    }

    #[test]
    fn semi_hard_picks_the_nearest_negative_inside_the_margin() {
        let (d, labels) = constructed_batch();
        let mut rng = SplitMix64::new(1);
        let got = mine(Mining::SemiHard, &d, &labels, 0.5, &mut rng).unwrap();
        // Worked by hand with α = 0.5 (squared distances):
        // a=0,p=1: d=1; negatives 1.44, 2.25, 16 → window (1, 1.5): x=1.2 (index 3).
        // a=1,p=0: d=1; negatives 0.04, 0.25, 9 → none in (1, 1.5).
        // a=3,p=4: d=0.09; negatives 1.44, 0.04, 3.24 → none in (0.09, 0.59).
        // a=4,p=3: d=0.09; negatives 2.25, 0.25, 2.25 → x=1 (index 1) at 0.25.
        // a=2,p=1: d=4; negatives 3.24, 2.25, 1 → none in (4, 4.5).
        // a=5,p=4: d=6.25; negatives 16, 9, 1 → none in (6.25, 6.75).
        // a=2,p=0: d=9; negatives 3.24, 2.25, 1 → none. a=0,p=2: d=9; 1.44, 2.25, 16 → none.
        // a=1,p=2: d=4; negatives 0.04, 0.25, 9 → none. a=3,p=5 / a=5,p=3: d=7.84; none.
        // a=4,p=5: d=6.25; 2.25, 0.25, 2.25 → none.
        assert_eq!(got, vec![Triplet::new(0, 1, 3), Triplet::new(4, 3, 1)]);
        assert_eq!(got, brute_semi_hard(&d, &labels, 0.5));
        // A wide margin admits more, and the brute force agrees on which.
        let wide = mine(Mining::SemiHard, &d, &labels, 10.0, &mut rng).unwrap();
        assert_eq!(wide, brute_semi_hard(&d, &labels, 10.0));
        for t in &wide {
            let (dap, dan) = (d[t.anchor * 6 + t.positive], d[t.anchor * 6 + t.negative]);
            assert!(dap < dan && (dan as f64) < dap as f64 + 10.0);
        }
    }

    #[test]
    fn hardest_picks_farthest_positive_and_nearest_negative() {
        let (d, labels) = constructed_batch();
        let got = mine(Mining::Hardest, &d, &labels, 0.2, &mut SplitMix64::new(0)).unwrap();
        // By hand: a=0: positives 1 (1), 2 (9) → 2; negatives 1.44, 2.25, 16 → 3.
        // a=1: positives 0 (1), 2 (4) → 2; negatives 0.04, 0.25, 9 → 3.
        // a=2: positives 0 (9), 1 (4) → 0; negatives 3.24, 2.25, 1 → 5.
        // a=3: positives 4 (.09), 5 (7.84) → 5; negatives 1.44, 0.04, 3.24 → 1.
        // a=4: positives 3 (.09), 5 (6.25) → 5; negatives 2.25, 0.25, 2.25 → 1.
        // a=5: positives 3 (7.84), 4 (6.25) → 3; negatives 16, 9, 1 → 2.
        let want = vec![
            Triplet::new(0, 2, 3),
            Triplet::new(1, 2, 3),
            Triplet::new(2, 0, 5),
            Triplet::new(3, 5, 1),
            Triplet::new(4, 5, 1),
            Triplet::new(5, 3, 2),
        ];
        assert_eq!(got, want);
    }

    #[test]
    fn random_pairs_every_positive_with_some_negative() {
        let (d, labels) = constructed_batch();
        let a = mine(Mining::Random, &d, &labels, 0.2, &mut SplitMix64::new(7)).unwrap();
        let b = mine(Mining::Random, &d, &labels, 0.2, &mut SplitMix64::new(7)).unwrap();
        assert_eq!(a, b, "same seed, same triplets");
        // P·K·(K − 1) = 2·3·2 anchor–positive pairs, each once.
        assert_eq!(a.len(), 12);
        let mut pairs: Vec<_> = a.iter().map(|t| (t.anchor, t.positive)).collect();
        pairs.dedup();
        assert_eq!(pairs.len(), 12);
        for t in &a {
            assert_ne!(t.anchor, t.positive);
            assert_eq!(labels[t.anchor], labels[t.positive]);
            assert_ne!(labels[t.anchor], labels[t.negative]);
        }
        // Over many draws every negative turns up.
        let mut seen = std::collections::BTreeSet::new();
        let mut rng = SplitMix64::new(3);
        for _ in 0..50 {
            for t in mine(Mining::Random, &d, &labels, 0.2, &mut rng).unwrap() {
                if t.anchor == 0 {
                    seen.insert(t.negative);
                }
            }
        }
        assert_eq!(seen.into_iter().collect::<Vec<_>>(), vec![3, 4, 5]);
    }

    #[test]
    fn miners_refuse_a_wrong_sized_matrix_and_skip_lonely_labels() {
        let mut rng = SplitMix64::new(0);
        assert!(mine(Mining::Hardest, &[0.0; 3], &[0, 1], 0.2, &mut rng).is_err());
        // One identity only: no negatives, so no triplets (rather than an error).
        let d = vec![0.0; 4];
        assert!(
            mine(Mining::Hardest, &d, &[0, 0], 0.2, &mut rng)
                .unwrap()
                .is_empty()
        );
        assert_eq!("semi-hard".parse::<Mining>().unwrap(), Mining::SemiHard);
        assert!("nope".parse::<Mining>().is_err());
    }
}
