//! The costs and ∂J/∂G against PyTorch (float64) on the inputs of
//! `shared/reference/vgg16_style.npz`: C = astronaut, S = brick, G = coffee, all 224², content
//! at relu4_2, style at relu1_1…relu5_1 with λ = 0.2, α = 10, β = 40.
//!
//! Both evaluators are checked: the direct one (`evaluate`, what transfers run) and the
//! autodiff one (`evaluate_autodiff`); then the two against each other on odd sizes, average
//! pooling, a pre-ReLU and a pooled layer, and total variation.
//!
//! Needs the model cache's `models/vgg16.safetensors` (`cargo run -p likeness -- models fetch`).

use std::collections::BTreeMap;
use std::time::Instant;

use burn::tensor::{Device, Tensor, TensorData};
use likeness_nn::device::cpu_autodiff;
use likeness_nn::nets::vgg::{Pooling, Vgg, VggLayer};
use likeness_nn::npz::NpyArray;
use likeness_nn::weights::WeightMap;
use likeness_style::loss::CostWeights;
use likeness_style::objective::{StyleInput, StyleObjective};
use likeness_testdata::{cache_file, reference_npz};

fn input(r: &BTreeMap<String, NpyArray>, key: &str, device: &Device) -> Tensor<4> {
    let a = &r[key];
    assert_eq!(a.shape, [1, 3, 224, 224], "{key}");
    Tensor::from_data(TensorData::new(a.to_f32(), [1, 3, 224, 224]), device)
}

fn rel(ours: f64, theirs: f64) -> f64 {
    ((ours - theirs) / theirs).abs()
}

fn vgg16(device: &Device) -> Vgg {
    Vgg::load(
        &WeightMap::load(&cache_file("models/vgg16.safetensors")).unwrap(),
        device,
    )
    .unwrap()
}

/// (cosine similarity, relative L2 error) of `ours` against `theirs`.
fn compare(ours: &[f32], theirs: &[f32]) -> (f64, f64) {
    assert_eq!(ours.len(), theirs.len());
    let (mut dot, mut na, mut nb, mut diff) = (0f64, 0f64, 0f64, 0f64);
    for (&a, &b) in ours.iter().zip(theirs) {
        let (a, b) = (a as f64, b as f64);
        dot += a * b;
        na += a * a;
        nb += b * b;
        diff += (a - b) * (a - b);
    }
    (dot / (na.sqrt() * nb.sqrt()), diff.sqrt() / nb.sqrt())
}

#[test]
fn costs_and_gradient_match_pytorch() {
    let r = reference_npz("vgg16_style.npz");
    let device = cpu_autodiff();
    let vgg = vgg16(&device);
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
    for (name, direct) in [("direct", true), ("autodiff", false)] {
        let t = Instant::now();
        let (terms, grad) = if direct {
            objective.evaluate(&g).unwrap()
        } else {
            objective.evaluate_autodiff(&g).unwrap()
        };
        eprintln!("{name}: forward + ∂J/∂G at 224²: {:.2?}", t.elapsed());

        let j_content = r["j_content"].scalar().unwrap();
        eprintln!(
            "j_content {} vs {j_content}: {:.2e}",
            terms.content,
            rel(terms.content, j_content)
        );
        assert!(rel(terms.content, j_content) < 1e-3, "{name}");
        let per_layer = &r["j_style_per_layer"].values;
        for (k, (ours, theirs)) in terms.style_layers.iter().zip(per_layer).enumerate() {
            // Our per-layer terms carry λ; the reference's do not.
            let ours = ours / lambda;
            eprintln!(
                "j_style[{k}] {ours} vs {theirs}: {:.2e}",
                rel(ours, *theirs)
            );
            assert!(rel(ours, *theirs) < 1e-3, "{name}: style layer {k}");
        }
        let j_style = r["j_style"].scalar().unwrap();
        assert!(rel(terms.style, j_style) < 1e-3, "{name}");
        let j_total = r["j_total"].scalar().unwrap();
        eprintln!(
            "j_total {} vs {j_total}: {:.2e}",
            terms.total,
            rel(terms.total, j_total)
        );
        assert!(rel(terms.total, j_total) < 1e-3, "{name}");

        let (cosine, rel_l2) = compare(&grad, &r["grad_generated"].to_f32());
        eprintln!("{name} ∂J/∂G: cosine {cosine:.8}, relative L2 error {rel_l2:.2e}");
        assert!(cosine >= 0.999, "{name}: cosine {cosine}");
        assert!(rel_l2 <= 1e-2, "{name}: relative L2 error {rel_l2}");
    }
}

/// The direct evaluator against autodiff where the reference does not reach: sides that pooling
/// halves unevenly (45×38 → 22×19 → 11×9 …), average pooling, a content term on a pre-ReLU
/// convolution, a style term on a pooled layer, unequal λ, two blended styles of other sizes,
/// and total variation.
#[test]
fn direct_evaluator_matches_autodiff_on_odd_shapes() {
    let r = reference_npz("vgg16_style.npz");
    let device = cpu_autodiff();
    let crop = |key: &str, h: usize, w: usize, dy: usize| {
        let full = input(&r, key, &device);
        full.slice([0..1, 0..3, dy..dy + h, 0..w])
    };
    for pooling in [Pooling::Max, Pooling::Average] {
        let objective = StyleObjective::new(
            vgg16(&device).with_pooling(pooling),
            &device,
            crop("input_content", 45, 38, 0),
            &[
                StyleInput {
                    tensor: crop("input_style", 40, 52, 3),
                    weight: 2.0,
                },
                StyleInput {
                    tensor: crop("input_generated", 33, 33, 7),
                    weight: 1.0,
                },
            ],
            &[
                ("conv3_1".parse().unwrap(), 0.7),
                ("relu4_2".parse().unwrap(), 1.3),
            ],
            &[
                ("relu1_1".parse().unwrap(), 0.5),
                ("pool2".parse().unwrap(), 0.25),
                ("relu3_2".parse().unwrap(), 0.2),
                ("conv5_1".parse().unwrap(), 2.0),
            ],
            CostWeights {
                content: 3.0,
                style: 50.0,
                tv: 0.01,
            },
        )
        .unwrap();
        // A start away from the content image, so that the content term is not zero.
        let g: Vec<f32> = crop("input_generated", 45, 38, 100)
            .into_data()
            .try_to_vec::<f32>()
            .unwrap();
        let (direct, grad_direct) = objective.evaluate(&g).unwrap();
        let (autodiff, grad_autodiff) = objective.evaluate_autodiff(&g).unwrap();
        eprintln!("{pooling:?}: direct {direct:?}\nautodiff {autodiff:?}");
        for (a, b) in [
            (direct.content, autodiff.content),
            (direct.style, autodiff.style),
            (direct.tv, autodiff.tv),
            (direct.total, autodiff.total),
        ]
        .into_iter()
        .chain(
            direct
                .style_layers
                .iter()
                .copied()
                .zip(autodiff.style_layers.clone()),
        ) {
            assert!(b > 0.0 && rel(a, b) < 1e-4, "{pooling:?}: {a} vs {b}");
        }
        let (cosine, rel_l2) = compare(&grad_direct, &grad_autodiff);
        eprintln!("{pooling:?}: ∂J/∂G cosine {cosine:.8}, relative L2 {rel_l2:.2e}");
        assert!(cosine >= 0.99999, "{pooling:?}: cosine {cosine}");
        assert!(rel_l2 <= 1e-3, "{pooling:?}: relative L2 {rel_l2}");
    }
}
