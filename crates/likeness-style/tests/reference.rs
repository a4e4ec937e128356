//! The costs and ∂J/∂G against PyTorch (float64) on the inputs of
//! `shared/reference/vgg16_style.npz`: C = astronaut, S = brick, G = coffee, all 224², content
//! at relu4_2, style at relu1_1…relu5_1 with λ = 0.2, α = 10, β = 40.
//!
//! Needs the model cache's `models/vgg16.safetensors` (`cargo run -p likeness -- models fetch`).

use std::collections::BTreeMap;
use std::time::Instant;

use burn::tensor::{Device, Tensor, TensorData};
use likeness_nn::device::cpu_autodiff;
use likeness_nn::nets::vgg::{Vgg, VggLayer};
use likeness_nn::npz::NpyArray;
use likeness_nn::testdata::{cache_file, reference_npz};
use likeness_nn::weights::WeightMap;
use likeness_style::loss::CostWeights;
use likeness_style::objective::{StyleInput, StyleObjective};

fn input(r: &BTreeMap<String, NpyArray>, key: &str, device: &Device) -> Tensor<4> {
    let a = &r[key];
    assert_eq!(a.shape, [1, 3, 224, 224], "{key}");
    Tensor::from_data(TensorData::new(a.to_f32(), [1, 3, 224, 224]), device)
}

fn rel(ours: f64, theirs: f64) -> f64 {
    ((ours - theirs) / theirs).abs()
}

#[test]
fn costs_and_gradient_match_pytorch() {
    let r = reference_npz("vgg16_style.npz");
    let device = cpu_autodiff();
    let vgg = Vgg::load(
        &WeightMap::load(&cache_file("models/vgg16.safetensors")).unwrap(),
        &device,
    )
    .unwrap();
    let lambda = r["lambda"].scalar().unwrap();
    let style_layers: Vec<(VggLayer, f64)> =
        ["relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1"]
            .iter()
            .map(|n| (n.parse().unwrap(), lambda))
            .collect();
    let objective = StyleObjective::new(
        vgg,
        &device,
        input(&r, "input_content", &device),
        &[StyleInput {
            tensor: input(&r, "input_style", &device),
            weight: 1.0,
        }],
        &[("relu4_2".parse().unwrap(), 1.0)],
        &style_layers,
        CostWeights {
            content: r["alpha"].scalar().unwrap(),
            style: r["beta"].scalar().unwrap(),
            tv: 0.0,
        },
    )
    .unwrap();

    let g = r["input_generated"].to_f32();
    let t = Instant::now();
    let (terms, grad) = objective.evaluate(&g).unwrap();
    eprintln!("forward + ∂J/∂G at 224²: {:.2?}", t.elapsed());

    let j_content = r["j_content"].scalar().unwrap();
    eprintln!(
        "j_content {} vs {j_content}: {:.2e}",
        terms.content,
        rel(terms.content, j_content)
    );
    assert!(rel(terms.content, j_content) < 1e-3);
    let per_layer = &r["j_style_per_layer"].values;
    for (k, (ours, theirs)) in terms.style_layers.iter().zip(per_layer).enumerate() {
        // Our per-layer terms carry λ; the reference's do not.
        let ours = ours / lambda;
        eprintln!(
            "j_style[{k}] {ours} vs {theirs}: {:.2e}",
            rel(ours, *theirs)
        );
        assert!(rel(ours, *theirs) < 1e-3, "style layer {k}");
    }
    let j_style = r["j_style"].scalar().unwrap();
    assert!(rel(terms.style, j_style) < 1e-3);
    let j_total = r["j_total"].scalar().unwrap();
    eprintln!(
        "j_total {} vs {j_total}: {:.2e}",
        terms.total,
        rel(terms.total, j_total)
    );
    assert!(rel(terms.total, j_total) < 1e-3);

    let expected = r["grad_generated"].to_f32();
    assert_eq!(grad.len(), expected.len());
    let (mut dot, mut na, mut nb, mut diff) = (0f64, 0f64, 0f64, 0f64);
    for (&a, &b) in grad.iter().zip(&expected) {
        let (a, b) = (a as f64, b as f64);
        dot += a * b;
        na += a * a;
        nb += b * b;
        diff += (a - b) * (a - b);
    }
    let cosine = dot / (na.sqrt() * nb.sqrt());
    let rel_l2 = diff.sqrt() / nb.sqrt();
    eprintln!("∂J/∂G: cosine {cosine:.8}, relative L2 error {rel_l2:.2e}");
    assert!(cosine >= 0.999, "cosine {cosine}");
    assert!(rel_l2 <= 1e-2, "relative L2 error {rel_l2}");
}
