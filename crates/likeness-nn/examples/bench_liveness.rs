//! Time per face of the liveness network: one 128×128 crop at a time (batch 1, as a camera
//! frame arrives), median of REPS runs after one warm-up, on the parity test's real crops.
//! Run by `bench/liveness/time.sh`, beside onnxruntime on the same crops.
//!
//! `cargo run --workspace --example bench_liveness -- [REPS]` prints one JSON line.

use std::time::Instant;

use likeness_nn::device::cpu;
use likeness_nn::image::Image;
use likeness_nn::nets::liveness::{Liveness, image_input};
use likeness_nn::weights::WeightMap;
use likeness_testdata::cache_file;

fn main() {
    let reps: usize = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(30);
    let device = cpu();
    let weights = WeightMap::load(&cache_file("models/liveness.safetensors")).expect("weights");
    let net = Liveness::load(&weights, &device).expect("network");
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/liveness");
    let mut crops: Vec<Image> = std::fs::read_dir(&dir)
        .expect("tests/data/liveness")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "png"))
        .map(|p| Image::open(&p).expect("crop"))
        .collect();
    crops.sort_by_key(|c| c.pixels.iter().map(|&v| v as u64).sum::<u64>());
    let mut times = Vec::with_capacity(reps);
    for rep in 0..=reps {
        let crop = &crops[rep % crops.len()];
        let start = Instant::now();
        let p = net
            .live_probability(image_input(std::slice::from_ref(crop), &device).expect("input"))
            .expect("forward");
        std::hint::black_box(p);
        if rep > 0 {
            times.push(start.elapsed().as_secs_f64());
        }
    }
    times.sort_by(f64::total_cmp);
    let median = times[times.len() / 2];
    println!(
        "{{\"side\": \"likeness (burn-flex)\", \"threads\": {}, \"reps\": {reps}, \"median_ms\": {:.3}, \"min_ms\": {:.3}}}",
        rayon::current_num_threads(),
        median * 1e3,
        times[0] * 1e3
    );
}
