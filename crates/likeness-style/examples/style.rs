//! Runs one transfer and reports time per iteration and peak memory, for tuning and timings:
//!
//! `cargo run -p likeness-style --example style -- CONTENT STYLE OUT.png SIZE ITERS [BETA] [adam]`
//!
//! Weights come from `$LIKENESS_HOME/models/vgg16.safetensors` (default ~/.cache/likeness).

use std::time::Instant;

use likeness_nn::image::Image;
use likeness_style::optim::AdamConfig;
use likeness_style::{Optimizer, StyleConfig, load_weights, transfer};
use likeness_testdata::cache_home;

/// Peak resident memory of this process (VmHWM), in MiB.
fn peak_rss_mib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
        })
        .map_or(0, |kib| kib / 1024)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.len() < 5 {
        return Err("usage: CONTENT STYLE OUT.png SIZE ITERS [BETA] [adam]".into());
    }
    let weights = load_weights(&cache_home().join("models/vgg16.safetensors"))?;
    let content = Image::open(args[0].as_ref())?;
    let style = Image::open(args[1].as_ref())?;
    let mut config = StyleConfig {
        size: args[3].parse()?,
        iterations: args[4].parse()?,
        ..StyleConfig::default()
    };
    if let Some(beta) = args.get(5) {
        config.style_weight = beta.parse()?;
    }
    if args.get(6).map(String::as_str) == Some("adam") {
        config.optimizer = Optimizer::Adam(AdamConfig::default());
    }
    let rss_before = peak_rss_mib();
    let mut last = Instant::now();
    let mut times = Vec::new();
    let out = transfer(&content, &[style], &weights, &config, &mut |p| {
        let dt = last.elapsed();
        last = Instant::now();
        times.push((dt.as_secs_f64(), p.evaluations));
        if p.total_iteration % 10 == 0 || p.total_iteration <= 3 {
            eprintln!(
                "it {:4} evals {:4} J {:.4e} content {:.4e} style {:.4e} [{:.3}s]",
                p.total_iteration,
                p.evaluations,
                p.terms.total,
                p.terms.content,
                p.terms.style,
                dt.as_secs_f64()
            );
        }
    })?;
    out.image.save_png(args[2].as_ref())?;
    // Time per evaluation, skipping the first step (it includes the targets' forward passes).
    let steady: Vec<f64> = times
        .windows(2)
        .map(|w| w[1].0 / (w[1].1 - w[0].1).max(1) as f64)
        .collect();
    let mut sorted = steady.clone();
    sorted.sort_by(|a, b| a.total_cmp(b));
    let median = sorted.get(sorted.len() / 2).copied().unwrap_or(f64::NAN);
    println!(
        "{}x{}: {} iterations, {} evaluations in {:.1?}; median {:.3} s per evaluation; peak RSS {} MiB (weights loaded: {} MiB); estimate {} MiB; stopped {:?}",
        out.image.width,
        out.image.height,
        out.iterations,
        out.evaluations,
        out.elapsed,
        median,
        peak_rss_mib(),
        rss_before,
        config.estimate_bytes(content.width as usize, content.height as usize) >> 20,
        out.stopped
    );
    Ok(())
}
