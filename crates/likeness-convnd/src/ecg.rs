//! The 1D example: premature beats in a real electrocardiogram.
//!
//! Data: `scipy/misc/ecg.dat` from the scipy 1.9.3 wheel (an `.npz` with one uint16 array
//! `ecg`): 5 minutes of MIT-BIH Arrhythmia Database record 208, lead MLII, at 360 Hz; value in
//! mV = (raw − 1024) / 200 (scipy's `electrocardiogram()`). The record is rich in premature
//! ventricular contractions.
//!
//! Labels come from a rule, not from annotations (the file carries none):
//! 1. R peaks ([`detect_r_peaks`]), a simplified Pan–Tompkins detector: band-pass the signal
//!    (14 ms moving average minus a 250 ms moving average, removing noise and baseline wander),
//!    differentiate, square, integrate over 150 ms; regions where that energy exceeds a quarter
//!    of its maximum over the surrounding ±2 s are QRS complexes; the R peak is the sample of
//!    largest |band-passed signal| in each, and peaks closer than 250 ms (refractory period)
//!    keep only the larger.
//! 2. Each beat with both neighbours gets RR_prev and RR_next. Beats whose RR_prev or RR_next
//!    lies outside 0.25–1.6 s are dropped (a missed or spurious detection, or artefact).
//! 3. A beat is **premature** when RR_prev < 0.8 × RR_next: it comes early and is followed by
//!    a (compensatory) pause — the timing signature of an extrasystole. Otherwise **normal**.
//!
//! The network sees a 2 s window centred on the R peak (so both neighbouring R peaks are in
//! view at ordinary heart rates), downsampled to 180 Hz, mean removed. Training uses the first
//! 70 % of the recording, testing the last 30 %: no test beat's window overlaps a training one
//! except at the boundary. Training windows are jittered by ±[`JITTER`] samples, and the loss
//! weights classes by inverse frequency (premature beats are the minority).

use std::path::Path;
use std::time::Instant;

use likeness_nn::device::cpu_autodiff;
use likeness_nn::npz::read_npz;

use crate::ecg_net::{EcgNet, EcgNetConfig};
use crate::train::{Dataset, TrainOptions, train_and_test};
use crate::{Error, Report, Result};
use likeness_nn::rng::SplitMix64;

/// Sampling rate of the recording (MIT-BIH), Hz.
pub const SAMPLE_RATE: f64 = 360.0;
/// scipy's conversion of the stored ADC units to mV: (raw − 1024) / 200.
const ADC_ZERO: f64 = 1024.0;
const ADC_PER_MV: f64 = 200.0;
/// The classes, in label order.
pub const CLASSES: [&str; 2] = ["normal", "premature"];
/// Prematurity threshold on RR_prev / RR_next.
pub const PREMATURE_RATIO: f64 = 0.8;
/// Plausible RR interval range, seconds (240 to 37 beats per minute).
pub const RR_RANGE: (f64, f64) = (0.25, 1.6);
/// Half the window the network sees, in samples at 360 Hz (1 s).
const HALF_WINDOW: usize = 360;
/// Downsampling factor of the window (360 Hz → 180 Hz), by averaging neighbours.
const DECIMATE: usize = 2;
/// Training-time shifts of the window, samples at 360 Hz (±22 ms).
pub const JITTER: usize = 8;
/// Fraction of the recording (from its start) used for training.
const TRAIN_FRACTION: f64 = 0.7;

/// Schedule and seed of the ECG example.
#[derive(Debug, Clone, PartialEq)]
pub struct EcgOptions {
    pub epochs: usize,
    pub batch_size: usize,
    pub learning_rate: f64,
    /// Filters of the first conv layer.
    pub width: usize,
    pub seed: u64,
}

impl Default for EcgOptions {
    fn default() -> Self {
        Self {
            epochs: 60,
            batch_size: 32,
            learning_rate: 1e-3,
            width: 8,
            seed: 7,
        }
    }
}

impl EcgOptions {
    /// A shortened run for tests.
    pub fn quick() -> Self {
        Self {
            epochs: 30,
            ..Self::default()
        }
    }
}

/// One detected beat with its label.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Beat {
    /// Sample index of the R peak.
    pub r_peak: usize,
    /// Seconds since the previous R peak, and until the next.
    pub rr_prev: f64,
    pub rr_next: f64,
    pub premature: bool,
}

/// Reads the recording, in mV, from scipy's `ecg.dat`.
pub fn read_ecg(path: &Path) -> Result<Vec<f64>> {
    let arrays = read_npz(path)?;
    let ecg = arrays.get("ecg").ok_or_else(|| {
        Error::Data(format!(
            "{}: no array `ecg` (not scipy's ecg.dat?)",
            path.display()
        ))
    })?;
    if ecg.shape.len() != 1 || ecg.values.len() < 60 * SAMPLE_RATE as usize {
        return Err(Error::Data(format!(
            "{}: `ecg` has shape {:?}, expected at least a minute of samples in one dimension",
            path.display(),
            ecg.shape
        )));
    }
    Ok(ecg
        .values
        .iter()
        .map(|v| (v - ADC_ZERO) / ADC_PER_MV)
        .collect())
}

/// Trains the 1D ConvNet on the first 70 % of the recording at `path` (scipy's `ecg.dat`) and
/// tests it on the rest.
pub fn run_ecg(path: &Path, options: &EcgOptions) -> Result<Report> {
    let start = Instant::now();
    let signal = read_ecg(path)?;
    let beats = label_beats(&detect_r_peaks(&signal));
    let split = (signal.len() as f64 * TRAIN_FRACTION) as usize;
    let length = 2 * HALF_WINDOW / DECIMATE;
    let mut train = Dataset::new(vec![1, length]);
    let mut test = Dataset::new(vec![1, length]);
    for beat in &beats {
        let label = usize::from(beat.premature);
        if beat.r_peak < split {
            for shift in [-(JITTER as isize), 0, JITTER as isize] {
                if let Some(w) = window(&signal, beat.r_peak as isize + shift) {
                    train.push(&w, label);
                }
            }
        } else if let Some(w) = window(&signal, beat.r_peak as isize) {
            test.push(&w, label);
        }
    }
    let counts = train.class_counts(CLASSES.len());
    if counts.contains(&0) || test.len() == 0 {
        return Err(Error::Data(format!(
            "too few labelled beats: training classes {counts:?}, {} test beats",
            test.len()
        )));
    }
    // Inverse class frequency, so premature beats weigh as much in total as normal ones.
    let class_weights = counts
        .iter()
        .map(|&c| train.len() as f32 / (CLASSES.len() * c) as f32)
        .collect();
    let mut rng = SplitMix64::new(options.seed);
    let config = EcgNetConfig {
        length,
        classes: CLASSES.len(),
        width: options.width,
        hidden: 32,
    };
    let model = EcgNet::init(&config, rng.next_u64(), &cpu_autodiff())?;
    let schedule = TrainOptions {
        epochs: options.epochs,
        batch_size: options.batch_size,
        learning_rate: options.learning_rate,
        class_weights,
    };
    let premature = beats.iter().filter(|b| b.premature).count();
    let task = format!(
        "1D ConvNet: normal vs premature beats, ECG (MIT-BIH 208 excerpt), {} beats labelled, \
         {premature} premature (RR_prev < {PREMATURE_RATIO} × RR_next)",
        beats.len()
    );
    let mut report = train_and_test(model, task, &CLASSES, &train, &test, &schedule, &mut rng)?;
    report.seconds = start.elapsed().as_secs_f64();
    Ok(report)
}

/// The 2 s window around `centre`, decimated and with its mean removed; `None` near the ends.
fn window(signal: &[f64], centre: isize) -> Option<Vec<f32>> {
    let from = usize::try_from(centre - HALF_WINDOW as isize).ok()?;
    let part = signal.get(from..from + 2 * HALF_WINDOW)?;
    let mean = part.iter().sum::<f64>() / part.len() as f64;
    Some(
        part.chunks(DECIMATE)
            .map(|c| (c.iter().sum::<f64>() / c.len() as f64 - mean) as f32)
            .collect(),
    )
}

/// Sample indices of the R peaks of `signal` (mV at 360 Hz), by the rule in the module docs.
pub fn detect_r_peaks(signal: &[f64]) -> Vec<usize> {
    let samples = |seconds: f64| (seconds * SAMPLE_RATE).round() as usize;
    // 14 ms smoothing minus a 250 ms baseline: roughly a 5–15 Hz band-pass, where QRS lives.
    let smooth = moving_average(signal, 5);
    let baseline = moving_average(signal, samples(0.25) | 1);
    let band: Vec<f64> = smooth.iter().zip(&baseline).map(|(s, b)| s - b).collect();
    let slope2: Vec<f64> = std::iter::once(0.0)
        .chain(band.windows(2).map(|w| (w[1] - w[0]).powi(2)))
        .collect();
    let energy = moving_average(&slope2, samples(0.15));
    let local_max = running_max(&energy, samples(2.0));
    let above: Vec<bool> = energy
        .iter()
        .zip(&local_max)
        .map(|(e, m)| *e > 0.25 * m && *m > 0.0)
        .collect();
    let refractory = samples(0.25);
    let lead = samples(0.05);
    let mut peaks: Vec<usize> = Vec::new();
    let mut i = 0;
    while i < above.len() {
        if !above[i] {
            i += 1;
            continue;
        }
        let start = i;
        while i < above.len() && above[i] {
            i += 1;
        }
        let from = start.saturating_sub(lead);
        let Some(r) = (from..i).max_by(|&a, &b| band[a].abs().total_cmp(&band[b].abs())) else {
            continue;
        };
        match peaks.last_mut() {
            Some(last) if r - *last < refractory => {
                if band[r].abs() > band[*last].abs() {
                    *last = r;
                }
            }
            _ => peaks.push(r),
        }
    }
    peaks
}

/// Beats with both neighbours and plausible intervals, labelled by the prematurity rule.
pub fn label_beats(peaks: &[usize]) -> Vec<Beat> {
    peaks
        .windows(3)
        .filter_map(|w| {
            let rr_prev = (w[1] - w[0]) as f64 / SAMPLE_RATE;
            let rr_next = (w[2] - w[1]) as f64 / SAMPLE_RATE;
            let plausible = |rr: f64| (RR_RANGE.0..=RR_RANGE.1).contains(&rr);
            (plausible(rr_prev) && plausible(rr_next)).then_some(Beat {
                r_peak: w[1],
                rr_prev,
                rr_next,
                premature: rr_prev < PREMATURE_RATIO * rr_next,
            })
        })
        .collect()
}

/// Centred moving average over `width` samples, averaging only what exists at the ends.
fn moving_average(x: &[f64], width: usize) -> Vec<f64> {
    let mut prefix = Vec::with_capacity(x.len() + 1);
    prefix.push(0.0);
    for v in x {
        prefix.push(prefix[prefix.len() - 1] + v);
    }
    let half = width / 2;
    (0..x.len())
        .map(|i| {
            let lo = i.saturating_sub(half);
            let hi = (i + width - half).min(x.len());
            (prefix[hi] - prefix[lo]) / (hi - lo) as f64
        })
        .collect()
}

/// Maximum over `[i − half, i + half]` for every i (monotonic deque, O(n)).
fn running_max(x: &[f64], half: usize) -> Vec<f64> {
    let mut out = vec![0.0; x.len()];
    let mut deque = std::collections::VecDeque::new();
    let mut next = 0;
    for (i, o) in out.iter_mut().enumerate() {
        while next < x.len() && next <= i + half {
            while deque.back().is_some_and(|&j: &usize| x[j] <= x[next]) {
                deque.pop_back();
            }
            deque.push_back(next);
            next += 1;
        }
        while deque.front().is_some_and(|&j| j + half < i) {
            deque.pop_front();
        }
        *o = deque.front().map_or(0.0, |&j| x[j]);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A synthetic rhythm: narrow spikes every 0.6 s, one early by 0.2 s.
    #[test]
    fn finds_spikes_and_labels_the_early_one() {
        let n = (20.0 * SAMPLE_RATE) as usize;
        let mut signal: Vec<f64> = (0..n)
            .map(|i| 0.3 * (i as f64 / SAMPLE_RATE * 0.3 * std::f64::consts::TAU).sin())
            .collect();
        let mut beats: Vec<usize> = (1..32)
            .map(|k| (k as f64 * 0.6 * SAMPLE_RATE) as usize)
            .collect();
        beats[15] -= (0.2 * SAMPLE_RATE) as usize;
        for &b in &beats {
            for (d, v) in [(-2isize, 0.5), (-1, 1.2), (0, 1.8), (1, 1.2), (2, 0.5)] {
                signal[(b as isize + d) as usize] += v;
            }
        }
        let found = detect_r_peaks(&signal);
        assert_eq!(found, beats);
        let labelled = label_beats(&found);
        let premature: Vec<usize> = labelled
            .iter()
            .filter(|b| b.premature)
            .map(|b| b.r_peak)
            .collect();
        assert_eq!(premature, vec![beats[15]]);
    }

    #[test]
    fn running_max_matches_brute_force() {
        let x: Vec<f64> = (0..50).map(|i| ((i * 37) % 11) as f64).collect();
        let fast = running_max(&x, 3);
        for i in 0..x.len() {
            let slow = x[i.saturating_sub(3)..(i + 4).min(x.len())]
                .iter()
                .cloned()
                .fold(f64::MIN, f64::max);
            assert_eq!(fast[i], slow);
        }
    }
}
