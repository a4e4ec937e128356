//! Where an iteration's time goes, at 256² and 512² (median of 3 runs each): VGG-16's forward
//! to relu5_1 without autodiff, the same with the graph recorded, and a whole evaluation of J
//! and ∂J/∂G (forward, Gram matrices, costs, backward, read-back).
//!
//! `cargo run -p likeness-style --example timing [SIZES…]`

use std::time::{Duration, Instant};

use burn::tensor::{Tensor, TensorData};
use likeness_nn::device::{cpu, cpu_autodiff};
use likeness_nn::nets::vgg::{Vgg, VggLayer};
use likeness_style::load_weights;
use likeness_style::loss::CostWeights;
use likeness_style::objective::{StyleInput, StyleObjective};
use likeness_testdata::cache_home;

fn median(mut f: impl FnMut()) -> Duration {
    let mut v: Vec<Duration> = (0..3)
        .map(|_| {
            let t = Instant::now();
            f();
            t.elapsed()
        })
        .collect();
    v.sort();
    v[1]
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let weights = load_weights(&cache_home().join("models/vgg16.safetensors"))?;
    let sizes: Vec<usize> = std::env::args()
        .skip(1)
        .map(|s| s.parse())
        .collect::<Result<_, _>>()?;
    let sizes = if sizes.is_empty() {
        vec![256, 512]
    } else {
        sizes
    };
    let style_layers: Vec<(VggLayer, f64)> = (1..=5).map(|b| (VggLayer::Relu(b, 1), 0.2)).collect();
    let deepest = [VggLayer::Relu(5, 1)];
    for size in sizes {
        let n = 3 * size * size;
        let x: Vec<f32> = (0..n).map(|i| ((i * 7919) % 255) as f32 - 120.0).collect();
        let flex = cpu();
        let vgg = Vgg::load(&weights, &flex)?;
        let t_fwd = median(|| {
            let t = Tensor::<4>::from_data(TensorData::new(x.clone(), [1, 3, size, size]), &flex);
            let out = vgg.forward_layers(t, &deepest).unwrap();
            let _ = out[0].clone().sum().into_data();
        });
        let ad = cpu_autodiff();
        let vgg = Vgg::load(&weights, &ad)?;
        let tensor = |v: &[f32]| {
            Tensor::<4>::from_data(TensorData::new(v.to_vec(), [1, 3, size, size]), &ad)
        };
        let objective = StyleObjective::new(
            vgg,
            &ad,
            tensor(&x),
            &[StyleInput {
                tensor: tensor(&x).flip([3]),
                weight: 1.0,
            }],
            &[(VggLayer::Relu(4, 2), 1.0)],
            &style_layers,
            CostWeights {
                content: 1.0,
                style: 1e4,
                tv: 0.0,
            },
        )?;
        let y: Vec<f32> = x.iter().map(|v| -v).collect();
        let t_cost = median(|| {
            let cost = objective.cost(tensor(&y)).unwrap();
            let _ = cost.terms().unwrap();
        });
        let t_eval = median(|| {
            let _ = objective.evaluate(&y).unwrap();
        });
        println!(
            "{size}²: forward to relu5_1 (no autodiff) {:.3} s; forward + costs (autodiff graph) {:.3} s; \
             J and ∂J/∂G {:.3} s (backward ≈ {:.3} s)",
            t_fwd.as_secs_f64(),
            t_cost.as_secs_f64(),
            t_eval.as_secs_f64(),
            (t_eval - t_cost).as_secs_f64()
        );
    }
    Ok(())
}
