//! Verification measures on scored pairs: LFW's 10-fold accuracy (each fold's threshold
//! chosen on the other nine), the ROC curve with its AUC, the equal error rate, the true
//! accept rate at fixed false accept rates, and the single best threshold.
//!
//! Scores are distances: a pair is accepted as "same" when its distance is at most the
//! threshold τ.

use likeness_nn::draw;
use likeness_nn::image::Image;
use serde::Serialize;

use crate::error::{LearnError, Result};

/// LFW's protocol: ten folds (the "View 2" split of `pairs.txt`).
pub const LFW_FOLDS: usize = 10;

/// The false accept rates at which the true accept rate is reported (the usual 1 % and 0.1 %).
pub const FAR_TARGETS: [f64; 2] = [1e-2, 1e-3];

/// One operating point of the ROC curve: accepting pairs with distance ≤ `threshold` gives
/// false accept rate `far` and true accept rate `tar`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct RocPoint {
    pub threshold: f64,
    pub far: f64,
    pub tar: f64,
}

/// The true accept rate at a false accept rate of at most `far`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct TarAtFar {
    pub far: f64,
    pub tar: f64,
    pub threshold: f64,
}

/// Everything `likeness eval` reports.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Evaluation {
    pub pairs: usize,
    pub positives: usize,
    pub negatives: usize,
    /// Mean and (population) standard deviation of the folds' accuracies.
    pub accuracy: f64,
    pub accuracy_std: f64,
    pub fold_accuracies: Vec<f64>,
    pub fold_thresholds: Vec<f64>,
    pub auc: f64,
    pub eer: f64,
    /// A threshold at (or next to) the equal error rate.
    pub eer_threshold: f64,
    pub tar_at_far: Vec<TarAtFar>,
    /// The threshold with the best accuracy on all pairs, and that accuracy.
    pub best_threshold: f64,
    pub best_accuracy: f64,
    #[serde(skip)]
    pub roc: Vec<RocPoint>,
}

/// `likeness eval`'s answer: the measures, how many pairs were skipped (an image without a
/// face, or missing) and how many folds the accuracy was cross-validated over.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EvalReport {
    #[serde(flatten)]
    pub evaluation: Evaluation,
    pub skipped: usize,
    pub folds: usize,
}

fn check(distances: &[f64], same: &[bool]) -> Result<(usize, usize)> {
    if distances.len() != same.len() {
        return Err(LearnError::Data(format!(
            "{} distances but {} labels",
            distances.len(),
            same.len()
        )));
    }
    if let Some(i) = distances.iter().position(|d| !d.is_finite()) {
        return Err(LearnError::Data(format!(
            "distance of pair {i} is not finite"
        )));
    }
    let positives = same.iter().filter(|&&s| s).count();
    let negatives = same.len() - positives;
    if positives == 0 || negatives == 0 {
        return Err(LearnError::Data(format!(
            "need both same and different pairs (have {positives} same, {negatives} different)"
        )));
    }
    Ok((positives, negatives))
}

/// Pair indices sorted by distance, grouped into runs of equal distance.
fn groups(distances: &[f64]) -> Vec<Vec<usize>> {
    let mut order: Vec<usize> = (0..distances.len()).collect();
    order.sort_by(|&a, &b| distances[a].total_cmp(&distances[b]));
    let mut out: Vec<Vec<usize>> = Vec::new();
    for i in order {
        match out.last_mut() {
            Some(g) if distances[g[0]] == distances[i] => g.push(i),
            _ => out.push(vec![i]),
        }
    }
    out
}

/// The ROC curve, from (0, 0) (threshold below every distance) to (1, 1), one point per
/// distinct distance.
pub fn roc(distances: &[f64], same: &[bool]) -> Result<Vec<RocPoint>> {
    let (p, n) = check(distances, same)?;
    let groups = groups(distances);
    let mut points = vec![RocPoint {
        threshold: distances[groups[0][0]] - 1.0,
        far: 0.0,
        tar: 0.0,
    }];
    let (mut tp, mut fp) = (0usize, 0usize);
    for g in &groups {
        for &i in g {
            if same[i] {
                tp += 1;
            } else {
                fp += 1;
            }
        }
        points.push(RocPoint {
            threshold: distances[g[0]],
            far: fp as f64 / n as f64,
            tar: tp as f64 / p as f64,
        });
    }
    Ok(points)
}

/// Area under a ROC curve (trapezoids: ties count one half, as Mann–Whitney's U does).
pub fn auc(points: &[RocPoint]) -> f64 {
    points
        .windows(2)
        .map(|w| (w[1].far - w[0].far) * (w[1].tar + w[0].tar) / 2.0)
        .sum()
}

/// Equal error rate: where the false accept rate meets the false reject rate (1 − TAR),
/// interpolated linearly along the curve; returns (rate, threshold of the nearer point).
pub fn eer(points: &[RocPoint]) -> (f64, f64) {
    for w in points.windows(2) {
        let (a, b) = (w[0], w[1]);
        if b.far >= 1.0 - b.tar {
            // far(s) = a.far + s·Δfar and frr(s) = 1 − a.tar − s·Δtar meet at s.
            let (dfar, dtar) = (b.far - a.far, b.tar - a.tar);
            let s = if dfar + dtar > 0.0 {
                ((1.0 - a.tar - a.far) / (dfar + dtar)).clamp(0.0, 1.0)
            } else {
                1.0
            };
            let threshold = if s < 0.5 { a.threshold } else { b.threshold };
            return (a.far + s * dfar, threshold);
        }
    }
    let last = points.last().map_or(0.0, |p| p.threshold);
    (1.0, last)
}

/// The best true accept rate with a false accept rate of at most `far` (no interpolation).
pub fn tar_at_far(points: &[RocPoint], far: f64) -> TarAtFar {
    points
        .iter()
        .filter(|p| p.far <= far)
        .max_by(|a, b| a.tar.total_cmp(&b.tar))
        .map_or(
            TarAtFar {
                far,
                tar: 0.0,
                threshold: f64::NEG_INFINITY,
            },
            |p| TarAtFar {
                far,
                tar: p.tar,
                threshold: p.threshold,
            },
        )
}

/// The threshold that classifies `distances` most accurately, and that accuracy. Candidates
/// lie midway between consecutive distinct distances (and one step beyond either end); among
/// equally good ones the middle candidate is taken, so the threshold sits inside the gap.
pub fn best_threshold(distances: &[f64], same: &[bool]) -> Result<(f64, f64)> {
    check_lengths(distances, same)?;
    if distances.is_empty() {
        return Err(LearnError::Data("no pairs to choose a threshold on".into()));
    }
    let groups = groups(distances);
    let negatives = same.iter().filter(|&&s| !s).count();
    let value = |g: &Vec<usize>| distances[g[0]];
    let step = if groups.len() > 1 {
        value(&groups[1]) - value(&groups[0])
    } else {
        1.0
    };
    // Candidate k accepts the first k groups; its correct count is TP + TN.
    let mut candidates = vec![(value(&groups[0]) - step / 2.0, negatives)];
    let (mut tp, mut fp) = (0usize, 0usize);
    for (k, g) in groups.iter().enumerate() {
        for &i in g {
            if same[i] {
                tp += 1;
            } else {
                fp += 1;
            }
        }
        let threshold = match groups.get(k + 1) {
            Some(next) => (value(g) + value(next)) / 2.0,
            None => value(g) + step / 2.0,
        };
        candidates.push((threshold, tp + negatives - fp));
    }
    let best = candidates.iter().map(|c| c.1).max().unwrap_or(0);
    let tied: Vec<f64> = candidates
        .iter()
        .filter(|c| c.1 == best)
        .map(|c| c.0)
        .collect();
    let threshold = tied[tied.len() / 2];
    Ok((threshold, best as f64 / distances.len() as f64))
}

fn check_lengths(distances: &[f64], same: &[bool]) -> Result<()> {
    if distances.len() != same.len() {
        return Err(LearnError::Data(format!(
            "{} distances but {} labels",
            distances.len(),
            same.len()
        )));
    }
    Ok(())
}

/// Accuracy of accepting pairs with distance ≤ `threshold`.
pub fn accuracy(distances: &[f64], same: &[bool], threshold: f64) -> f64 {
    let correct = distances
        .iter()
        .zip(same)
        .filter(|&(&d, &s)| (d <= threshold) == s)
        .count();
    correct as f64 / distances.len().max(1) as f64
}

/// Fold of each of `n` pairs when they come fold after fold in `k` equal blocks (LFW).
pub fn contiguous_folds(n: usize, k: usize) -> Vec<usize> {
    let k = k.max(1);
    (0..n).map(|i| i * k / n.max(1)).collect()
}

/// Fold of each of `n` pairs dealt round-robin (for lists not ordered by fold).
pub fn interleaved_folds(n: usize, k: usize) -> Vec<usize> {
    (0..n).map(|i| i % k.max(1)).collect()
}

/// k-fold accuracy: each fold is classified with the best threshold of the other folds.
/// Returns (accuracy per fold, threshold per fold).
pub fn kfold(distances: &[f64], same: &[bool], fold: &[usize]) -> Result<(Vec<f64>, Vec<f64>)> {
    check_lengths(distances, same)?;
    if fold.len() != distances.len() {
        return Err(LearnError::Data(
            "one fold number per pair is needed".into(),
        ));
    }
    let k = fold.iter().max().map_or(0, |&m| m + 1);
    if k < 2 {
        return Err(LearnError::Data("k-fold needs at least two folds".into()));
    }
    let (mut accuracies, mut thresholds) = (Vec::new(), Vec::new());
    for f in 0..k {
        let split = |keep: bool| -> (Vec<f64>, Vec<bool>) {
            (0..distances.len())
                .filter(|&i| (fold[i] == f) == keep)
                .map(|i| (distances[i], same[i]))
                .unzip()
        };
        let (test_d, test_s) = split(true);
        if test_d.is_empty() {
            return Err(LearnError::Data(format!("fold {f} is empty")));
        }
        let (train_d, train_s) = split(false);
        let (threshold, _) = best_threshold(&train_d, &train_s)?;
        accuracies.push(accuracy(&test_d, &test_s, threshold));
        thresholds.push(threshold);
    }
    Ok((accuracies, thresholds))
}

/// Mean and population standard deviation (numpy's default, as LFW results are quoted).
pub fn mean_std(values: &[f64]) -> (f64, f64) {
    let n = values.len().max(1) as f64;
    let mean = values.iter().sum::<f64>() / n;
    let var = values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / n;
    (mean, var.sqrt())
}

/// All measures at once; `fold` gives each pair's fold (see [`contiguous_folds`]).
pub fn evaluate(distances: &[f64], same: &[bool], fold: &[usize]) -> Result<Evaluation> {
    let (positives, negatives) = check(distances, same)?;
    let points = roc(distances, same)?;
    let (fold_accuracies, fold_thresholds) = kfold(distances, same, fold)?;
    let (accuracy, accuracy_std) = mean_std(&fold_accuracies);
    let (eer, eer_threshold) = eer(&points);
    let (best_threshold, best_accuracy) = best_threshold(distances, same)?;
    Ok(Evaluation {
        pairs: distances.len(),
        positives,
        negatives,
        accuracy,
        accuracy_std,
        fold_accuracies,
        fold_thresholds,
        auc: auc(&points),
        eer,
        eer_threshold,
        tar_at_far: FAR_TARGETS
            .iter()
            .map(|&f| tar_at_far(&points, f))
            .collect(),
        best_threshold,
        best_accuracy,
        roc: points,
    })
}

/// Side of the ROC picture's plot area, and its margins, in pixels.
const PLOT: u32 = 360;
const MARGIN: u32 = 48;

/// The fewest decades the FAR axis spans (1e-3 … 1): TAR at FAR 1e-3, where verification
/// lives, must be readable even on a small pair list.
const MIN_FAR_DECADES: i32 = 3;
/// The most decades the FAR axis spans (1e-6 … 1): beyond that even a large benchmark has no
/// negatives to measure a rate with.
const MAX_FAR_DECADES: i32 = 6;

/// Decades of the FAR axis for `negatives` different pairs: down to the smallest false accept
/// rate they can show (one false accept, 1/negatives), within [`MIN_FAR_DECADES`] and
/// [`MAX_FAR_DECADES`].
fn far_decades(negatives: usize) -> i32 {
    let smallest = 1.0 / negatives.max(1) as f64;
    let decades = (-smallest.log10()).ceil() as i32;
    decades.clamp(MIN_FAR_DECADES, MAX_FAR_DECADES)
}

/// Where `far` lies on a log axis of `decades` decades ending at 1: 0 at the left edge
/// (10^-decades, and every smaller rate, 0 included), 1 at the right.
fn far_position(far: f64, decades: i32) -> f64 {
    if far <= 0.0 {
        return 0.0;
    }
    ((far.log10() + decades as f64) / decades as f64).clamp(0.0, 1.0)
}

/// The ROC curve as a picture: TAR (linear) against FAR on a log axis, one grid line per
/// decade, so that the low false accept rates verification is judged at (1e-3) get as much
/// room as the rest; the chance line in grey, the TAR@FAR points and the EER point marked,
/// AUC and EER written in the corner.
pub fn roc_picture(evaluation: &Evaluation) -> Image {
    let side = PLOT + 2 * MARGIN;
    let mut img = draw::canvas(side, side, draw::WHITE);
    let (x0, y0, s) = (MARGIN as f32, (MARGIN + PLOT) as f32, PLOT as f32);
    let decades = far_decades(evaluation.negatives);
    let at = |far: f64, tar: f64| {
        (
            x0 + far_position(far, decades) as f32 * s,
            y0 - tar as f32 * s,
        )
    };
    for d in (0..=decades).rev() {
        let far = 10f64.powi(-d);
        let (gx, _) = at(far, 0.0);
        draw::line(&mut img, gx, y0, gx, y0 - s, [225, 225, 225], 1);
        let label = if d == 0 {
            "1".to_string()
        } else {
            format!("1e-{d}")
        };
        draw::text(
            &mut img,
            gx as i64 - 10,
            y0 as i64 + 6,
            &label,
            draw::BLACK,
            1,
        );
    }
    for t in 0..=4 {
        let v = t as f64 / 4.0;
        let (_, gy) = at(1.0, v);
        draw::line(&mut img, x0, gy, x0 + s, gy, [225, 225, 225], 1);
        draw::text(
            &mut img,
            8,
            gy as i64 - 4,
            &format!("{v:.2}"),
            draw::BLACK,
            1,
        );
    }
    // chance: TAR = FAR, a curve on these axes
    let chance: Vec<(f32, f32)> = (0..=100)
        .map(|i| {
            let far = 10f64.powf(-decades as f64 * (1.0 - i as f64 / 100.0));
            at(far, far)
        })
        .collect();
    for w in chance.windows(2) {
        draw::line(&mut img, w[0].0, w[0].1, w[1].0, w[1].1, draw::GREY, 1);
    }
    draw::rect(&mut img, x0, y0 - s, x0 + s, y0, draw::BLACK, 1);
    for w in evaluation.roc.windows(2) {
        let (ax, ay) = at(w[0].far, w[0].tar);
        let (bx, by) = at(w[1].far, w[1].tar);
        draw::line(&mut img, ax, ay, bx, by, draw::BLUE, 2);
    }
    for t in &evaluation.tar_at_far {
        let (px, py) = at(t.far, t.tar);
        draw::dot(&mut img, px, py, 3.0, draw::GREEN);
        draw::text(
            &mut img,
            px as i64 + 5,
            py as i64 + 6,
            &format!("{:.3}", t.tar),
            draw::BLACK,
            1,
        );
    }
    let (ex, ey) = at(evaluation.eer, 1.0 - evaluation.eer);
    draw::dot(&mut img, ex, ey, 4.0, draw::RED);
    draw::text(
        &mut img,
        MARGIN as i64,
        12,
        "ROC: TAR vs FAR (log)",
        draw::BLACK,
        2,
    );
    let summary = format!("AUC {:.4}  EER {:.4}", evaluation.auc, evaluation.eer);
    draw::text(
        &mut img,
        x0 as i64 + 90,
        y0 as i64 - 24,
        &summary,
        draw::BLACK,
        1,
    );
    draw::text(
        &mut img,
        side as i64 / 2 - 9,
        side as i64 - 14,
        "FAR",
        draw::BLACK,
        1,
    );
    draw::text(&mut img, 4, MARGIN as i64 - 14, "TAR", draw::BLACK, 1);
    img
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-9
    }

    /// 10 folds of 30 same pairs at distance 0.1…0.4 and 30 different at 0.6…0.9.
    fn separable() -> (Vec<f64>, Vec<bool>) {
        let mut d = Vec::new();
        let mut s = Vec::new();
        for f in 0..10 {
            for i in 0..30 {
                d.push(0.1 + 0.01 * i as f64 + 0.0001 * f as f64);
                s.push(true);
            }
            for i in 0..30 {
                d.push(0.6 + 0.01 * i as f64 + 0.0001 * f as f64);
                s.push(false);
            }
        }
        (d, s)
    }

    #[test]
    fn perfectly_separable_scores_are_perfect() {
        let (d, s) = separable();
        let e = evaluate(&d, &s, &contiguous_folds(d.len(), LFW_FOLDS)).unwrap();
        assert_eq!((e.pairs, e.positives, e.negatives), (600, 300, 300));
        assert_eq!(e.accuracy, 1.0);
        assert_eq!(e.accuracy_std, 0.0);
        assert_eq!(e.fold_accuracies.len(), 10);
        assert_eq!(e.auc, 1.0);
        assert_eq!(e.eer, 0.0);
        assert_eq!(e.best_accuracy, 1.0);
        // The gap is (0.3909, 0.6): the middle candidate lies inside it.
        assert!(
            e.best_threshold > 0.3909 && e.best_threshold < 0.6,
            "{}",
            e.best_threshold
        );
        for t in &e.fold_thresholds {
            assert!(*t > 0.39 && *t < 0.6);
        }
        assert!(e.tar_at_far.iter().all(|t| t.tar == 1.0));
    }

    #[test]
    fn reversed_scores_are_worst() {
        let (d, s) = separable();
        let flipped: Vec<bool> = s.iter().map(|x| !x).collect();
        let points = roc(&d, &flipped).unwrap();
        assert_eq!(auc(&points), 0.0);
        assert_eq!(eer(&points).0, 1.0);
        // Accepting nothing gets half right.
        assert_eq!(best_threshold(&d, &flipped).unwrap().1, 0.5);
    }

    #[test]
    fn small_case_by_hand() {
        // Distances and labels: 0.1 S, 0.2 D, 0.3 S, 0.4 S, 0.5 D, 0.6 D.
        let d = [0.1, 0.2, 0.3, 0.4, 0.5, 0.6];
        let s = [true, false, true, true, false, false];
        let pts = roc(&d, &s).unwrap();
        let far: Vec<f64> = pts.iter().map(|p| p.far).collect();
        let tar: Vec<f64> = pts.iter().map(|p| p.tar).collect();
        let third = 1.0 / 3.0;
        let want_far = [0.0, 0.0, third, third, third, 2.0 * third, 1.0];
        let want_tar = [0.0, third, third, 2.0 * third, 1.0, 1.0, 1.0];
        for i in 0..7 {
            assert!(
                close(far[i], want_far[i]) && close(tar[i], want_tar[i]),
                "{pts:?}"
            );
        }
        // AUC = P(d_same < d_diff) over the 9 (same, diff) combinations: 0.1 beats all 3,
        // 0.3 and 0.4 beat 0.5 and 0.6 only → 7/9.
        assert!(close(auc(&pts), 7.0 / 9.0));
        // (0, 1/3) has FAR 0 < FRR 2/3, (1/3, 1/3) has FAR 1/3 < FRR 2/3, and (1/3, 2/3)
        // has FAR = FRR = 1/3: the EER is 1/3, at threshold 0.3.
        let (rate, threshold) = eer(&pts);
        assert!(close(rate, third), "{rate}");
        assert_eq!(threshold, 0.3);
        // Best accuracy 5/6, accepting up to 0.4 (midway to 0.5 is 0.45).
        let (t, acc) = best_threshold(&d, &s).unwrap();
        assert!(close(acc, 5.0 / 6.0) && close(t, 0.45), "{t} {acc}");
        // TAR at FAR 0 (≤ 1e-2): only the first same pair; at FAR ≤ 1/3 all three.
        let t = tar_at_far(&pts, 1e-2);
        assert!(close(t.tar, third) && t.threshold == 0.1);
        assert!(close(tar_at_far(&pts, 0.34).tar, 1.0));
    }

    #[test]
    fn eer_interpolates_between_points() {
        // 0.1 S, 0.2 D, 0.3 D, 0.4 S: points (0,0) (0,.5) (.5,.5) (1,.5) (1,1).
        let d = [0.1, 0.2, 0.3, 0.4];
        let s = [true, false, false, true];
        let pts = roc(&d, &s).unwrap();
        // At (.5,.5) FAR = FRR = 0.5 exactly.
        assert!(close(eer(&pts).0, 0.5));
        assert!(close(auc(&pts), 0.5));
        // A ROC with a tie: 0.1 S, 0.2 {S, D}, 0.3 D: (0,0) (0,.5) (.5,1) (1,1). On the
        // diagonal segment far = s/2, frr = .5 − s/2 → s = 1/2, EER = 1/4.
        let pts = roc(&[0.1, 0.2, 0.2, 0.3], &[true, true, false, false]).unwrap();
        assert!(close(eer(&pts).0, 0.25));
        assert!(close(auc(&pts), 0.875));
    }

    #[test]
    fn kfold_takes_each_threshold_from_the_other_folds() {
        // Two folds. Fold 0: S 0.1, D 0.5; fold 1: S 0.4, D 0.45.
        // Threshold for fold 0 comes from fold 1 alone: midway 0.425 → fold 0 all right.
        // Threshold for fold 1 comes from fold 0: midway 0.3 → S 0.4 rejected (wrong),
        // D 0.45 rejected (right) → 0.5.
        let d = [0.1, 0.5, 0.4, 0.45];
        let s = [true, false, true, false];
        let (acc, thr) = kfold(&d, &s, &[0, 0, 1, 1]).unwrap();
        assert!(close(thr[0], 0.425) && close(thr[1], 0.3), "{thr:?}");
        assert_eq!(acc, vec![1.0, 0.5]);
        let (m, sd) = mean_std(&acc);
        assert!(close(m, 0.75) && close(sd, 0.25));
        assert!(kfold(&d, &s, &[0, 0, 0, 0]).is_err(), "one fold");
        assert!(kfold(&d, &s, &[0, 2, 2, 0]).is_err(), "fold 1 empty");
    }

    #[test]
    fn folds_and_bad_input() {
        assert_eq!(contiguous_folds(6, 3), vec![0, 0, 1, 1, 2, 2]);
        assert_eq!(interleaved_folds(5, 2), vec![0, 1, 0, 1, 0]);
        assert!(
            roc(&[0.1, 0.2], &[true, true]).is_err(),
            "no different pairs"
        );
        assert!(roc(&[0.1], &[true, false]).is_err());
        assert!(roc(&[f64::NAN, 0.2], &[true, false]).is_err());
        assert!(evaluate(&[], &[], &[]).is_err());
    }

    #[test]
    fn roc_picture_draws_something() {
        let (d, s) = separable();
        let e = evaluate(&d, &s, &contiguous_folds(d.len(), LFW_FOLDS)).unwrap();
        let img = roc_picture(&e);
        assert_eq!(img.width, PLOT + 2 * MARGIN);
        // The curve runs up the left edge: a blue pixel just right of the axis, mid-height.
        let blue = (0..img.height)
            .any(|y| (MARGIN - 1..=MARGIN + 1).any(|x| img.pixel(x, y) == draw::BLUE));
        assert!(blue);
    }

    #[test]
    fn the_far_axis_is_logarithmic_with_at_least_three_decades() {
        // 1e-3 sits a quarter from the left on four decades, at the left edge on three
        assert!((far_position(1e-3, 4) - 0.25).abs() < 1e-12);
        assert_eq!(far_position(1e-3, 3), 0.0);
        assert_eq!(far_position(1.0, 4), 1.0);
        assert!((far_position(1e-2, 4) - 0.5).abs() < 1e-12);
        // a FAR of 0 and rates below the axis go to its left edge
        assert_eq!(far_position(0.0, 4), 0.0);
        assert_eq!(far_position(1e-9, 4), 0.0);
        // decades follow the smallest rate the negatives can show
        assert_eq!(far_decades(10), 3);
        assert_eq!(far_decades(3000), 4);
        assert_eq!(far_decades(10_000), 4);
        assert_eq!(far_decades(10_001), 5);
        assert_eq!(far_decades(usize::MAX), 6);
    }

    #[test]
    fn the_roc_picture_marks_tar_at_far_where_the_log_axis_puts_it() {
        let (d, s) = separable();
        let e = evaluate(&d, &s, &contiguous_folds(d.len(), LFW_FOLDS)).unwrap();
        let img = roc_picture(&e);
        let decades = far_decades(e.negatives);
        let t = e.tar_at_far.iter().find(|t| t.far == 1e-2).unwrap();
        let x = MARGIN as f64 + far_position(1e-2, decades) * PLOT as f64;
        let y = (MARGIN + PLOT) as f64 - t.tar * PLOT as f64;
        assert_eq!(img.pixel(x as u32, y as u32), draw::GREEN);
    }
}
