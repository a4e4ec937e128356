//! The 3D example: which way does the blob go? Synthetic 16-frame clips of a Gaussian blob
//! moving in a straight line in one of 8 compass directions, beside a still blob of the same
//! kind (so that only motion tells), in heavy noise; a 3D ConvNet
//! ([`ClipNet`]) learns the direction from the clip as a volume (time × height × width).

use std::time::Instant;

use likeness_nn::device::cpu_autodiff;

use crate::clip_net::{ClipNet, ClipNetConfig};
use crate::train::{Dataset, TrainOptions, train_and_test};
use crate::{Error, Report, Result};
use likeness_nn::rng::SplitMix64;

/// The 8 directions, counter-clockwise from east (image y grows downwards, so north is −y).
pub const DIRECTIONS: [&str; 8] = ["E", "NE", "N", "NW", "W", "SW", "S", "SE"];
/// Frames per clip.
pub const FRAMES: usize = 16;
/// Height and width of a frame, in pixels.
pub const SIDE: usize = 16;
/// Blob speed range, pixels per frame: 15 frames carry it 3.75–9 px.
const SPEED: (f64, f64) = (0.25, 0.6);
/// Blob radius (Gaussian σ) range, pixels.
const SIGMA: (f64, f64) = (1.2, 2.0);
/// Standard deviation of the per-pixel Gaussian noise (blob peak is 1): each frame alone is
/// barely readable, the motion shows only across frames.
const NOISE: f64 = 0.8;

/// Sizes, schedule and seed of the clip example.
#[derive(Debug, Clone, PartialEq)]
pub struct ClipOptions {
    pub train_clips: usize,
    pub test_clips: usize,
    pub epochs: usize,
    pub batch_size: usize,
    pub learning_rate: f64,
    /// Filters of the first conv layer.
    pub width: usize,
    pub seed: u64,
}

impl Default for ClipOptions {
    fn default() -> Self {
        Self {
            train_clips: 1600,
            test_clips: 400,
            epochs: 6,
            batch_size: 32,
            learning_rate: 2e-3,
            width: 8,
            seed: 7,
        }
    }
}

impl ClipOptions {
    /// A shortened run for tests: fewer clips and epochs.
    pub fn quick() -> Self {
        Self {
            train_clips: 640,
            test_clips: 160,
            epochs: 4,
            ..Self::default()
        }
    }
}

/// Generates the clips, trains the 3D ConvNet and tests it on clips it never saw.
pub fn run_clips(options: &ClipOptions) -> Result<Report> {
    let start = Instant::now();
    if options.width == 0 {
        return Err(Error::Options("width must be at least 1".into()));
    }
    let mut rng = SplitMix64::new(options.seed);
    let train = make_clips(options.train_clips, &mut rng);
    let test = make_clips(options.test_clips, &mut rng);
    let config = ClipNetConfig {
        frames: FRAMES,
        side: SIDE,
        classes: DIRECTIONS.len(),
        width: options.width,
    };
    let model = ClipNet::init(&config, rng.next_u64(), &cpu_autodiff())?;
    let schedule = TrainOptions {
        epochs: options.epochs,
        batch_size: options.batch_size,
        learning_rate: options.learning_rate,
        class_weights: vec![1.0; DIRECTIONS.len()],
    };
    let task = format!(
        "3D ConvNet: direction of a moving blob in {FRAMES}-frame {SIDE}×{SIDE} clips (8 classes, chance 12.5 %)"
    );
    let mut report = train_and_test(model, task, &DIRECTIONS, &train, &test, &schedule, &mut rng)?;
    report.seconds = start.elapsed().as_secs_f64();
    Ok(report)
}

/// `n` clips `[1, FRAMES, SIDE, SIDE]`, directions balanced and shuffled.
fn make_clips(n: usize, rng: &mut SplitMix64) -> Dataset {
    let mut data = Dataset::new(vec![1, FRAMES, SIDE, SIDE]);
    let mut labels: Vec<usize> = (0..n).map(|i| i % DIRECTIONS.len()).collect();
    rng.shuffle(&mut labels);
    let mut clip = vec![0f32; FRAMES * SIDE * SIDE];
    for label in labels {
        let angle = label as f64 * std::f64::consts::FRAC_PI_4;
        let (dx, dy) = (angle.cos(), -angle.sin());
        let speed = rng.uniform(SPEED.0, SPEED.1);
        let sigma = rng.uniform(SIGMA.0, SIGMA.1);
        // Centre the path somewhere its whole length stays at least 2 px inside the frame.
        let half = speed * (FRAMES - 1) as f64 / 2.0;
        let margin = |d: f64| 2.0 + half * d.abs();
        let hi = |d: f64| (SIDE - 1) as f64 - margin(d);
        let cx = rng.uniform(margin(dx), hi(dx).max(margin(dx)));
        let cy = rng.uniform(margin(dy), hi(dy).max(margin(dy)));
        let (sx, sy) = (
            rng.uniform(2.0, SIDE as f64 - 3.0),
            rng.uniform(2.0, SIDE as f64 - 3.0),
        );
        let blob = |x: f64, y: f64, bx: f64, by: f64| {
            (-((x - bx).powi(2) + (y - by).powi(2)) / (2.0 * sigma * sigma)).exp()
        };
        for t in 0..FRAMES {
            let along = (t as f64 - (FRAMES - 1) as f64 / 2.0) * speed;
            let (bx, by) = (cx + along * dx, cy + along * dy);
            for y in 0..SIDE {
                for x in 0..SIDE {
                    let (x, y) = (x as f64, y as f64);
                    let v = blob(x, y, bx, by) + blob(x, y, sx, sy) + NOISE * rng.normal();
                    clip[(t * SIDE + y as usize) * SIDE + x as usize] = v as f32;
                }
            }
        }
        data.push(&clip, label);
    }
    data
}
