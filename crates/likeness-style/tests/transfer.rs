//! End-to-end transfers at small sizes with the real VGG-16: every option runs, J falls,
//! blow-ups keep the last good image, and too-large requests are refused before starting.
//!
//! Needs the model cache's `models/vgg16.safetensors` and sample images
//! (`cargo run -p likeness -- models fetch`).

use likeness_nn::image::Image;
use likeness_nn::nets::vgg::{Pooling, VggVariant};
use likeness_nn::weights::WeightMap;
use likeness_style::optim::{AdamConfig, Stop};
use likeness_style::{
    Init, Optimizer, Progress, StyleConfig, StyleError, StyleOutput, load_weights, transfer,
};
use likeness_testdata::cache_file;

fn weights() -> WeightMap {
    load_weights(&cache_file("models/vgg16.safetensors")).unwrap()
}

fn sample(name: &str) -> Image {
    Image::open(&cache_file(&format!("samples/{name}"))).unwrap()
}

/// Brick's style on the astronaut under `config`.
fn brick_on_astronaut(
    config: &StyleConfig,
    progress: &mut dyn FnMut(&Progress<'_>),
) -> StyleOutput {
    let (content, styles) = (sample("astronaut.png"), [sample("brick.png")]);
    transfer(&content, &styles, &weights(), config, progress).unwrap()
}

/// Why a transfer of `content` in its own style under `config` is refused.
fn refusal(content: &Image, config: &StyleConfig) -> StyleError {
    let styles = std::slice::from_ref(content);
    transfer(content, styles, &weights(), config, &mut |_| {}).unwrap_err()
}

#[test]
fn lbfgs_lowers_j_every_step_and_hands_out_checkpoints() {
    let content = sample("chelsea.png"); // 451×300: the aspect must survive
    let style = sample("coffee.png");
    let config = StyleConfig {
        size: 64,
        iterations: 6,
        save_every: 3,
        ..StyleConfig::default()
    };
    let mut totals = Vec::new();
    let mut checkpoints = Vec::new();
    let out = transfer(&content, &[style], &weights(), &config, &mut |p| {
        assert_eq!(p.terms.style_layers.len(), 5);
        totals.push(p.terms.total);
        if let Some(img) = p.checkpoint {
            checkpoints.push((p.total_iteration, img.width, img.height));
        }
    })
    .unwrap();
    assert_eq!((out.image.width, out.image.height), (64, 43));
    assert_eq!(out.iterations, 6);
    assert_eq!(totals.len(), 6);
    assert!(totals.windows(2).all(|w| w[1] < w[0]), "{totals:?}");
    assert!(totals[5] < 0.5 * totals[0], "{totals:?}");
    assert_eq!(checkpoints, [(3, 64, 43), (6, 64, 43)]);
    assert_eq!(out.terms.unwrap().total, totals[5]);
}

#[test]
fn every_option_together_runs() {
    // Two styles blended, noise init, Adam, average pooling, TV, style scale, two scales,
    // colour preservation.
    let content = sample("astronaut.png");
    let styles = [sample("coffee.png"), sample("brick.png")];
    let config = StyleConfig {
        size: 64,
        scales: 2,
        iterations: 3,
        style_blend: vec![0.7, 0.3],
        style_scale: 1.5,
        init: Init::Noise { ratio: 0.6 },
        optimizer: Optimizer::Adam(AdamConfig::default()),
        pooling: Pooling::Average,
        tv_weight: 1e2,
        preserve_colors: true,
        seed: 7,
        ..StyleConfig::default()
    };
    let mut sizes = Vec::new();
    let out = transfer(&content, &styles, &weights(), &config, &mut |p| {
        sizes.push((p.scale, p.width, p.height));
        assert!(p.terms.tv > 0.0);
    })
    .unwrap();
    assert_eq!((out.image.width, out.image.height), (64, 64));
    assert_eq!(out.iterations, 6);
    assert_eq!(sizes.first(), Some(&(0, 32, 32)));
    assert_eq!(sizes.last(), Some(&(1, 64, 64)));
    // Same seed, same result.
    let again = transfer(&content, &styles, &weights(), &config, &mut |_| {}).unwrap();
    assert_eq!(again.image, out.image);
}

#[test]
fn zero_iterations_return_the_initial_image() {
    let config = StyleConfig {
        size: 48,
        iterations: 0,
        ..StyleConfig::default()
    };
    let out = brick_on_astronaut(&config, &mut |_| panic!("no step was asked for"));
    assert_eq!(out.image, sample("astronaut.png").resize(48, 48));
    assert_eq!((out.iterations, out.evaluations), (0, 0));
}

#[test]
fn non_finite_loss_stops_and_keeps_the_last_good_image() {
    // α overflows f32: J is Inf or NaN from the first evaluation.
    let config = StyleConfig {
        size: 48,
        iterations: 5,
        content_weight: 1e300,
        ..StyleConfig::default()
    };
    let out = brick_on_astronaut(&config, &mut |_| {});
    assert_eq!(out.stopped, Some(Stop::NonFinite));
    assert_eq!(out.iterations, 0);
    assert_eq!(out.image, sample("astronaut.png").resize(48, 48));
}

#[test]
fn too_large_is_refused_with_a_size_that_fits() {
    let config = StyleConfig {
        size: 4096,
        memory_limit: Some(2 << 30),
        ..StyleConfig::default()
    };
    let content = Image::from_rgb(64, 32, vec![128; 64 * 32 * 3]).unwrap();
    let err = refusal(&content, &config);
    let StyleError::TooLarge { fits, .. } = err else {
        panic!("{err}")
    };
    assert!((256..4096).contains(&fits), "{fits}");
    let fitting = StyleConfig {
        size: fits,
        ..config
    };
    assert!(fitting.estimate_bytes(64, 32) <= 2 << 30);
    assert!(err_text(&fitting, fits).is_empty());
}

fn err_text(config: &StyleConfig, _fits: usize) -> String {
    config
        .validate(1)
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default()
}

#[test]
fn weights_of_another_network_are_refused() {
    let config = StyleConfig {
        size: 32,
        iterations: 1,
        model: VggVariant::Vgg19,
        ..StyleConfig::default()
    };
    let err = refusal(&sample("brick.png"), &config);
    assert!(err.to_string().contains("Vgg16"), "{err}");
}
