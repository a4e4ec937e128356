//! The whole transfer: images in, the stylised image out, with every option of neural-style
//! people use (layers and weights, several styles, style scale, init, optimiser, multi-scale,
//! colour preservation, pooling, checkpoints) and a progress callback.

use std::cell::RefCell;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use burn::tensor::{Device, Tensor, TensorData};
use likeness_nn::device::cpu_autodiff;
use likeness_nn::image::Image;
use likeness_nn::import::torch::load_torch;
use likeness_nn::nets::vgg::{CAFFE_BGR_MEAN, Pooling, Vgg, VggConfig, VggLayer, VggVariant};
use likeness_nn::weights::WeightMap;

use crate::color::preserve_colors;
use crate::error::{Result, StyleError};
use crate::loss::{CostWeights, LossTerms};
use crate::memory::{available_bytes, estimate_bytes, longest_side_that_fits};
use crate::objective::{StyleInput, StyleObjective, WeightedLayer};
use crate::optim::{Adam, AdamConfig, Evaluation, Lbfgs, LbfgsConfig, Minimizer, Stop};

/// Half-width, in 0–255 pixel units, of the uniform noise of random initialisation: the
/// course's `generate_noise_image` (uniform in [−20, 20] around the mean image).
pub const NOISE_AMPLITUDE: f32 = 20.0;
/// Smallest side of G: four poolings before relu5_1 must leave at least 2 pixels.
pub const MIN_SIDE: usize = 32;
/// Largest side the memory estimate computes with (2^20 px: ~10^14 bytes, far past any
/// machine, and small enough that the estimate's products fit 64 bits).
const MAX_ESTIMATED_SIDE: f64 = (1u64 << 20) as f64;

/// Where the optimisation starts.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Init {
    /// The content image.
    Content,
    /// Uniform noise of ±[`NOISE_AMPLITUDE`] around the mean pixel.
    Random,
    /// `ratio`·noise + (1 − ratio)·content (the course uses 0.6).
    Noise { ratio: f64 },
}

/// The optimiser and its settings.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Optimizer {
    /// L-BFGS, the quality default.
    Lbfgs(LbfgsConfig),
    /// Adam.
    Adam(AdamConfig),
}

/// Every option of a transfer. [`Default`] gives Gatys' setting: content at relu4_2, style at
/// relu1_1…relu5_1 with λ = 0.2 each, α/β = 10⁻⁴, 512 px, L-BFGS from the content image.
#[derive(Debug, Clone, PartialEq)]
pub struct StyleConfig {
    /// Longest side of the result, in pixels (the content's aspect is kept).
    pub size: usize,
    /// Content layers and their weights.
    pub content_layers: Vec<WeightedLayer>,
    /// Style layers and their weights λ_l.
    pub style_layers: Vec<WeightedLayer>,
    /// α.
    pub content_weight: f64,
    /// β.
    pub style_weight: f64,
    /// Weight of the total-variation smoothing term (0 disables it).
    pub tv_weight: f64,
    /// Blend weights of the style images, one per style (empty: equal shares).
    pub style_blend: Vec<f64>,
    /// Style images are resized to a longest side of `style_scale` × the current size.
    pub style_scale: f64,
    /// Where G starts.
    pub init: Init,
    /// The optimiser.
    pub optimizer: Optimizer,
    /// Optimiser steps at each scale.
    pub iterations: usize,
    /// Seed of the noise of random initialisation.
    pub seed: u64,
    /// Keep the content's colours (luminance transfer).
    pub preserve_colors: bool,
    /// VGG's pooling (average is smoother for style transfer).
    pub pooling: Pooling,
    /// Number of scales, coarse to fine, each twice the previous, ending at `size`; G is
    /// carried up between them.
    pub scales: usize,
    /// Hand a checkpoint image to the progress callback every this many iterations (0: never).
    pub save_every: usize,
    /// The network expected in the weights.
    pub model: VggVariant,
    /// A weights file (safetensors or torch `.pth`) instead of the model cache's. [`transfer`]
    /// takes the loaded weights; callers read them from here with [`load_weights`].
    pub weights: Option<PathBuf>,
    /// Memory the transfer may use, in bytes (default: what the system has available).
    pub memory_limit: Option<u64>,
}

/// Gatys et al.'s α/β = 10⁻⁴ ("Image Style Transfer Using CNNs", 2016, fig. 3), with α = 1.
pub const DEFAULT_STYLE_WEIGHT: f64 = 1e4;

impl Default for StyleConfig {
    fn default() -> Self {
        StyleConfig {
            size: 512,
            content_layers: vec![(VggLayer::Relu(4, 2), 1.0)],
            style_layers: (1..=5).map(|b| (VggLayer::Relu(b, 1), 0.2)).collect(),
            content_weight: 1.0,
            style_weight: DEFAULT_STYLE_WEIGHT,
            tv_weight: 0.0,
            style_blend: Vec::new(),
            style_scale: 1.0,
            init: Init::Content,
            optimizer: Optimizer::Lbfgs(LbfgsConfig::default()),
            iterations: 500,
            seed: 0,
            preserve_colors: false,
            pooling: Pooling::Max,
            scales: 1,
            save_every: 0,
            model: VggVariant::Vgg16,
            weights: None,
            memory_limit: None,
        }
    }
}

impl StyleConfig {
    /// Checks the options against each other, for `n_styles` style images.
    pub fn validate(&self, n_styles: usize) -> Result<()> {
        let bad = |m: String| Err(StyleError::Config(m));
        let finite_nonneg = |x: f64| x.is_finite() && x >= 0.0;
        if self.size < MIN_SIDE {
            return bad(format!(
                "size {} is below the minimum of {MIN_SIDE} px",
                self.size
            ));
        }
        if n_styles == 0 {
            return bad("at least one style image is needed".into());
        }
        if !self.style_blend.is_empty() && self.style_blend.len() != n_styles {
            return bad(format!(
                "{} blend weights for {n_styles} style images",
                self.style_blend.len()
            ));
        }
        if !self.style_blend.iter().all(|&w| finite_nonneg(w))
            || (!self.style_blend.is_empty() && self.style_blend.iter().sum::<f64>() <= 0.0)
        {
            return bad("style blend weights must be ≥ 0 and not all zero".into());
        }
        if self.style_layers.is_empty() {
            return bad("no style layer given".into());
        }
        for (name, layers) in [
            ("content", &self.content_layers),
            ("style", &self.style_layers),
        ] {
            if let Some((l, w)) = layers.iter().find(|(_, w)| !finite_nonneg(*w)) {
                return bad(format!(
                    "{name} layer {l} has weight {w}; weights must be ≥ 0"
                ));
            }
        }
        for (name, w) in [
            ("content weight", self.content_weight),
            ("style weight", self.style_weight),
            ("TV weight", self.tv_weight),
        ] {
            if !finite_nonneg(w) {
                return bad(format!("{name} {w} must be a number ≥ 0"));
            }
        }
        if !(self.style_scale.is_finite() && self.style_scale > 0.0) {
            return bad(format!("style scale {} must be > 0", self.style_scale));
        }
        if let Init::Noise { ratio } = self.init
            && !(0.0..=1.0).contains(&ratio)
        {
            return bad(format!("noise ratio {ratio} must be within 0…1"));
        }
        if self.scales == 0 || self.size >> (self.scales - 1) < MIN_SIDE {
            return bad(format!(
                "{} scales from {} px would start below {MIN_SIDE} px",
                self.scales, self.size
            ));
        }
        Ok(())
    }

    fn all_layers(&self) -> Vec<VggLayer> {
        self.content_layers
            .iter()
            .chain(&self.style_layers)
            .map(|(l, _)| *l)
            .collect()
    }

    fn history(&self) -> usize {
        match self.optimizer {
            Optimizer::Lbfgs(c) => c.history,
            Optimizer::Adam(_) => 0,
        }
    }

    /// The result's width and height for a content image of `width`×`height`, at each scale,
    /// coarse to fine.
    pub fn sizes(&self, width: usize, height: usize) -> Vec<(usize, usize)> {
        (0..self.scales)
            .rev()
            .map(|k| fit_longest(width, height, self.size >> k))
            .collect()
    }

    /// Estimated peak memory of the finest scale, in bytes. `memory`'s per-activation figure
    /// was measured on transfers with `style_scale` 1, so it covers style images up to the
    /// result's size; a larger `style_scale` adds the difference (square, the worst aspect).
    /// Without that term `--style-scale` went around the check: 7.5 GB and growing for a
    /// 64 px result.
    pub fn estimate_bytes(&self, width: usize, height: usize) -> u64 {
        let (w, h) = fit_longest(width, height, self.size);
        let layers = self.all_layers();
        let g = estimate_bytes(w, h, self.model, &layers, self.history());
        let longest = w.max(h);
        // Clamped so the products in the estimate cannot overflow; any side near the clamp is
        // refused anyway.
        let side = (longest as f64 * self.style_scale).clamp(1.0, MAX_ESTIMATED_SIDE) as usize;
        let style = |s: usize| estimate_bytes(s, s, self.model, &layers, 0);
        g.saturating_add(style(side).saturating_sub(style(longest)))
    }
}

/// `width`×`height` scaled so that the longest side is `longest` (each side at least 1).
fn fit_longest(width: usize, height: usize, longest: usize) -> (usize, usize) {
    let scale = longest as f64 / width.max(height).max(1) as f64;
    let side = |s: usize| ((s as f64 * scale).round() as usize).max(1);
    (side(width), side(height))
}

/// Loads VGG weights from a safetensors or torch (`.pth`/`.pt`) file.
pub fn load_weights(path: &Path) -> Result<WeightMap> {
    let ext = path
        .extension()
        .and_then(|e| e.to_str())
        .unwrap_or("")
        .to_ascii_lowercase();
    Ok(match ext.as_str() {
        "pth" | "pt" | "bin" | "ckpt" => load_torch(path)?,
        _ => WeightMap::load(path)?,
    })
}

/// What the progress callback sees after each step.
pub struct Progress<'a> {
    /// Scale index, 0 = coarsest.
    pub scale: usize,
    /// Number of scales.
    pub scales: usize,
    /// G's size at this scale.
    pub width: usize,
    /// See `width`.
    pub height: usize,
    /// Steps done at this scale.
    pub iteration: usize,
    /// Steps done over all scales, and their planned total.
    pub total_iteration: usize,
    /// See `total_iteration`.
    pub total_iterations: usize,
    /// Objective evaluations (forward + backward passes) so far.
    pub evaluations: usize,
    /// The cost terms at the current G.
    pub terms: &'a LossTerms,
    /// Time since the transfer began.
    pub elapsed: Duration,
    /// Set when `save_every` divides `total_iteration`: the current result.
    pub checkpoint: Option<&'a Image>,
}

/// The result of a transfer.
#[derive(Debug, Clone)]
pub struct StyleOutput {
    /// The stylised image (the last good one if the run stopped on NaN/Inf).
    pub image: Image,
    /// The cost terms of `image` (None with zero iterations).
    pub terms: Option<LossTerms>,
    /// Steps taken over all scales.
    pub iterations: usize,
    /// Forward + backward passes.
    pub evaluations: usize,
    /// Why the optimiser stopped early, if it did (at the last scale it ran).
    pub stopped: Option<Stop>,
    /// Wall time.
    pub elapsed: Duration,
}

/// SplitMix64 (Steele, Lea & Flood 2014): a seeded, portable stream for the initial noise.
struct SplitMix64(u64);

impl SplitMix64 {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in [−1, 1).
    fn symmetric(&mut self) -> f32 {
        ((self.next() >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
    }
}

/// Runs the transfer of `styles` onto `content` with VGG `weights`.
pub fn transfer(
    content: &Image,
    styles: &[Image],
    weights: &WeightMap,
    config: &StyleConfig,
    progress: &mut dyn FnMut(&Progress<'_>),
) -> Result<StyleOutput> {
    let start = Instant::now();
    config.validate(styles.len())?;
    let (cw, ch) = (content.width as usize, content.height as usize);
    let limit = config.memory_limit.or_else(available_bytes);
    let needed = config.estimate_bytes(cw, ch);
    if let Some(limit) = limit
        && needed > limit
    {
        let (width, height) = fit_longest(cw, ch, config.size);
        return Err(StyleError::TooLarge {
            width,
            height,
            needed_mib: needed >> 20,
            available_mib: limit >> 20,
            fits: longest_side_that_fits(width, height, needed, limit),
        });
    }

    let device = cpu_autodiff();
    let vgg_config = VggConfig::from_weights(weights)?.with_pooling(config.pooling);
    if vgg_config.variant != config.model {
        return Err(StyleError::Config(format!(
            "the weights hold {:?} but {:?} was asked for",
            vgg_config.variant, config.model
        )));
    }
    let vgg = vgg_config.load(weights, &device)?;
    let blend: Vec<f64> = if config.style_blend.is_empty() {
        vec![1.0; styles.len()]
    } else {
        config.style_blend.clone()
    };
    let cost_weights = CostWeights {
        content: config.content_weight,
        style: config.style_weight,
        tv: config.tv_weight,
    };

    let sizes = config.sizes(cw, ch);
    let total_iterations = config.iterations * sizes.len();
    let mut rng = SplitMix64(config.seed);
    let mut g: Option<(Vec<f32>, usize, usize)> = None;
    let mut terms: Option<LossTerms> = None;
    let (mut done, mut evaluations, mut stopped) = (0, 0, None);
    let input = vgg_config.input;
    let to_image = |x: &[f32], w: usize, h: usize| -> Result<Image> {
        let t = Tensor::<4>::from_data(TensorData::new(x.to_vec(), [1, 3, h, w]), &Device::flex());
        Ok(input.tensor_to_image(t)?)
    };
    let finish = |img: Image| {
        if config.preserve_colors {
            preserve_colors(content, &img)
        } else {
            img
        }
    };

    for (scale, &(w, h)) in sizes.iter().enumerate() {
        let content_img = content.resize(w as u32, h as u32);
        let content_t = vgg.image_to_tensor(&content_img, &device);
        let x0 = match g.take() {
            Some((x, pw, ph)) => resize_planes(&x, 3, ph, pw, h, w),
            None => initial(config.init, &content_t, &vgg, &device, &mut rng)?,
        };
        if config.iterations == 0 {
            g = Some((x0, w, h));
            continue;
        }
        let style_side = ((w.max(h) as f64 * config.style_scale).round() as usize).max(MIN_SIDE);
        let style_inputs: Vec<StyleInput> = styles
            .iter()
            .zip(&blend)
            .map(|(s, &weight)| {
                let (sw, sh) = fit_longest(s.width as usize, s.height as usize, style_side);
                StyleInput {
                    tensor: vgg.image_to_tensor(&s.resize(sw as u32, sh as u32), &device),
                    weight,
                }
            })
            .collect();
        let objective = StyleObjective::new(
            vgg.clone(),
            &device,
            content_t,
            &style_inputs,
            &config.content_layers,
            &config.style_layers,
            cost_weights,
        )?;

        // Terms of every evaluation of the current step, to report those of the accepted point.
        let evaluated: RefCell<Vec<LossTerms>> = RefCell::new(Vec::new());
        let mut f = |x: &[f32]| -> Result<Evaluation> {
            let (t, grad) = objective.evaluate(x)?;
            let loss = t.total;
            evaluated.borrow_mut().push(t);
            Ok(Evaluation { loss, grad })
        };
        let mut opt: Box<dyn Minimizer> = match config.optimizer {
            Optimizer::Lbfgs(c) => Box::new(Lbfgs::new(c, x0)),
            Optimizer::Adam(c) => Box::new(Adam::new(c, x0)),
        };
        let evaluations_before = evaluations;
        for iteration in 1..=config.iterations {
            let report = opt.step(&mut f)?;
            evaluations = evaluations_before + report.evaluations;
            if let Some(t) = evaluated
                .borrow()
                .iter()
                .rev()
                .find(|t| t.total == report.loss)
            {
                terms = Some(t.clone());
            }
            evaluated.borrow_mut().clear();
            if report.stop.is_some() && report.iteration < iteration {
                // Stopped without taking this step.
                stopped = report.stop;
                break;
            }
            done += 1;
            let checkpoint = if config.save_every > 0 && done % config.save_every == 0 {
                Some(finish(to_image(opt.x(), w, h)?))
            } else {
                None
            };
            if let Some(t) = &terms {
                progress(&Progress {
                    scale,
                    scales: sizes.len(),
                    width: w,
                    height: h,
                    iteration,
                    total_iteration: done,
                    total_iterations,
                    evaluations,
                    terms: t,
                    elapsed: start.elapsed(),
                    checkpoint: checkpoint.as_ref(),
                });
            }
            if report.stop.is_some() {
                stopped = report.stop;
                break;
            }
        }
        g = Some((opt.x().to_vec(), w, h));
        if stopped == Some(Stop::NonFinite) {
            // Keep the last good image at this scale; larger scales would start from it
            // only to meet the same blow-up.
            break;
        }
    }

    let (x, w, h) = g.ok_or_else(|| StyleError::Config("no scale ran".into()))?;
    Ok(StyleOutput {
        image: finish(to_image(&x, w, h)?),
        terms,
        iterations: done,
        evaluations,
        stopped,
        elapsed: start.elapsed(),
    })
}

/// G's first value at the coarsest scale.
fn initial(
    init: Init,
    content: &Tensor<4>,
    vgg: &Vgg,
    device: &Device,
    rng: &mut SplitMix64,
) -> Result<Vec<f32>> {
    let [_, _, h, w] = content.dims();
    let content_x = crate::loss::values(content.to_data())?;
    let ratio = match init {
        Init::Content => return Ok(content_x),
        Init::Random => 1.0,
        Init::Noise { ratio } => ratio as f32,
    };
    // Noise as an image around the mean pixel, so that it goes through the weights' own
    // input convention (Caffe BGR or torchvision RGB).
    let mean_rgb = [CAFFE_BGR_MEAN[2], CAFFE_BGR_MEAN[1], CAFFE_BGR_MEAN[0]];
    let pixels: Vec<u8> = (0..w * h * 3)
        .map(|i| {
            (mean_rgb[i % 3] + NOISE_AMPLITUDE * rng.symmetric())
                .round()
                .clamp(0.0, 255.0) as u8
        })
        .collect();
    let noise = Image::from_rgb(w as u32, h as u32, pixels)?;
    let noise_x = crate::loss::values(vgg.image_to_tensor(&noise, device).into_data())?;
    Ok(noise_x
        .iter()
        .zip(&content_x)
        .map(|(n, c)| ratio * n + (1.0 - ratio) * c)
        .collect())
}

/// Bilinear resampling of `channels` planes of `h`×`w` to `nh`×`nw`, with half-pixel centres
/// (the convention of [`Image::resize`]), in f32 so that G moves between scales unquantised.
fn resize_planes(x: &[f32], channels: usize, h: usize, w: usize, nh: usize, nw: usize) -> Vec<f32> {
    let (sy, sx) = (h as f32 / nh as f32, w as f32 / nw as f32);
    let coords = |n: usize, s: f32, len: usize| -> Vec<(usize, usize, f32)> {
        (0..n)
            .map(|i| {
                let f = ((i as f32 + 0.5) * s - 0.5).clamp(0.0, (len - 1) as f32);
                let i0 = f.floor() as usize;
                (i0, (i0 + 1).min(len - 1), f - i0 as f32)
            })
            .collect()
    };
    let (ys, xs) = (coords(nh, sy, h), coords(nw, sx, w));
    let mut out = Vec::with_capacity(channels * nh * nw);
    for c in 0..channels {
        let plane = &x[c * h * w..(c + 1) * h * w];
        for &(y0, y1, wy) in &ys {
            for &(x0, x1, wx) in &xs {
                let top = plane[y0 * w + x0] * (1.0 - wx) + plane[y0 * w + x1] * wx;
                let bottom = plane[y1 * w + x0] * (1.0 - wx) + plane[y1 * w + x1] * wx;
                out.push(top * (1.0 - wy) + bottom * wy);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_keep_the_aspect_and_double() {
        let config = StyleConfig {
            size: 512,
            scales: 3,
            ..StyleConfig::default()
        };
        assert_eq!(config.sizes(1000, 500), [(128, 64), (256, 128), (512, 256)]);
        config.validate(1).unwrap();
        let too_many = StyleConfig {
            scales: 6,
            ..config.clone()
        };
        assert!(too_many.validate(1).is_err());
    }

    #[test]
    fn validation_refuses_nonsense() {
        let ok = StyleConfig::default();
        ok.validate(2).unwrap();
        assert!(ok.validate(0).is_err());
        let cases = [
            StyleConfig {
                size: 8,
                ..ok.clone()
            },
            StyleConfig {
                style_blend: vec![1.0],
                ..ok.clone()
            },
            StyleConfig {
                style_blend: vec![0.0, 0.0],
                ..ok.clone()
            },
            StyleConfig {
                style_weight: f64::NAN,
                ..ok.clone()
            },
            StyleConfig {
                tv_weight: -1.0,
                ..ok.clone()
            },
            StyleConfig {
                style_scale: 0.0,
                ..ok.clone()
            },
            StyleConfig {
                init: Init::Noise { ratio: 1.5 },
                ..ok.clone()
            },
            StyleConfig {
                style_layers: vec![],
                ..ok.clone()
            },
        ];
        for c in cases {
            assert!(c.validate(2).is_err(), "{c:?}");
        }
        assert_eq!(ok.content_layers[0].0.to_string(), "relu4_2");
        assert_eq!(ok.style_layers[4].0.to_string(), "relu5_1");
    }

    #[test]
    fn resize_planes_is_exact_on_constants_and_identity_at_same_size() {
        let x: Vec<f32> = (0..2 * 3 * 4).map(|i| i as f32).collect();
        assert_eq!(resize_planes(&x, 2, 3, 4, 3, 4), x);
        let c = vec![7.5f32; 3 * 5 * 5];
        assert!(resize_planes(&c, 3, 5, 5, 10, 9).iter().all(|&v| v == 7.5));
    }

    #[test]
    fn noise_is_seeded() {
        let (mut a, mut b) = (SplitMix64(3), SplitMix64(3));
        let va: Vec<f32> = (0..100).map(|_| a.symmetric()).collect();
        let vb: Vec<f32> = (0..100).map(|_| b.symmetric()).collect();
        assert_eq!(va, vb);
        assert!(va.iter().all(|v| (-1.0..1.0).contains(v)));
        assert!(va.iter().any(|&v| v < -0.5) && va.iter().any(|&v| v > 0.5));
    }
}
