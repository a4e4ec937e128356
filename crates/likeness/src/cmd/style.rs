//! `likeness style CONTENT STYLE [STYLE…] -o OUT.png`: neural style transfer (Gatys et al.).

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, bail};
use clap::{Args, ValueEnum};
use indicatif::{ProgressBar, ProgressStyle};
use likeness_nn::image::Image;
use likeness_nn::nets::vgg::{Pooling, VggLayer, VggVariant};
use likeness_style::optim::{AdamConfig, LbfgsConfig, LineSearch, Stop};
use likeness_style::report::StyleReport;
use likeness_style::{Init, Optimizer, StyleConfig, transfer};

/// Paint CONTENT in the style of STYLE (several styles blend).
///
/// Optimises the pixels of the result G so that J(G) = α·J_content + β·Σ λ_l J_style^[l]
/// (+ tv·J_tv) falls, through a frozen VGG (VGG-16 from the model cache by default).
/// Layers are given as `name[:weight]`, comma-separated, e.g. `relu4_2` or
/// `relu1_1:0.2,relu2_1:0.2`; style layers without a weight share 1 equally.
#[derive(Debug, Args)]
pub struct StyleArgs {
    /// The content image (PNG or JPEG; grey and RGBA are converted).
    content: PathBuf,
    /// One or more style images.
    #[arg(required = true)]
    styles: Vec<PathBuf>,
    /// Where to write the result (PNG).
    #[arg(short, long, value_parser = crate::args::output_file)]
    output: PathBuf,
    /// Longest side of the result, in pixels.
    #[arg(long, default_value_t = 512, value_parser = crate::args::usize_in(32, crate::args::MAX_SIDE))]
    size: usize,
    /// Optimiser steps (at each scale).
    #[arg(short = 'n', long, default_value_t = 500, value_parser = crate::args::usize_in(1, 1_000_000))]
    iterations: usize,
    /// Content layers, `name[:weight]`, comma-separated.
    #[arg(long, default_value = "relu4_2")]
    content_layers: String,
    /// Style layers, `name[:weight]`, comma-separated.
    #[arg(long, default_value = "relu1_1,relu2_1,relu3_1,relu4_1,relu5_1")]
    style_layers: String,
    /// α, the content weight.
    #[arg(long, default_value_t = 1.0, value_parser = crate::args::f64_non_negative)]
    content_weight: f64,
    /// β, the style weight.
    #[arg(long, default_value_t = likeness_style::transfer::DEFAULT_STYLE_WEIGHT, value_parser = crate::args::f64_non_negative)]
    style_weight: f64,
    /// Total-variation weight (smoothness; 0 disables it).
    #[arg(long, default_value_t = 0.0, value_parser = crate::args::f64_non_negative)]
    tv_weight: f64,
    /// Blend weights of the style images, comma-separated (default: equal).
    #[arg(long, value_delimiter = ',', value_parser = crate::args::f64_non_negative)]
    style_blend: Vec<f64>,
    /// Style images are resized to this times the result's size.
    #[arg(long, default_value_t = 1.0, value_parser = crate::args::f64_in(0.01, 16.0))]
    style_scale: f64,
    /// Where G starts.
    #[arg(long, value_enum, default_value_t = InitArg::Content)]
    init: InitArg,
    /// With `--init noise`: the share of noise (the course uses 0.6).
    #[arg(long, default_value_t = 0.6, value_parser = crate::args::probability)]
    noise_ratio: f64,
    /// The optimiser.
    #[arg(long, value_enum, default_value_t = OptimizerArg::Lbfgs)]
    optimizer: OptimizerArg,
    /// Adam's learning rate (pixel units).
    #[arg(long, default_value_t = 10.0, value_parser = crate::args::f64_positive)]
    learning_rate: f64,
    /// L-BFGS history length.
    #[arg(long, default_value_t = 100, value_parser = crate::args::usize_in(1, 10_000))]
    lbfgs_history: usize,
    /// L-BFGS line search: strong Wolfe, or torch/neural-style's fixed step.
    #[arg(long, value_enum, default_value_t = LineSearchArg::Wolfe)]
    line_search: LineSearchArg,
    /// Seed of the initial noise.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Keep the content's colours (luminance-only transfer).
    #[arg(long)]
    preserve_colors: bool,
    /// VGG pooling (average is smoother).
    #[arg(long, value_enum, default_value_t = PoolingArg::Max)]
    pooling: PoolingArg,
    /// Number of scales, coarse to fine, each twice the last, ending at --size.
    #[arg(long, default_value_t = 1, value_parser = crate::args::usize_in(1, 8))]
    scales: usize,
    /// Write OUT_iterN.png every N iterations (0: never).
    #[arg(long, default_value_t = 0, value_parser = crate::args::usize_in(0, 1_000_000))]
    save_every: usize,
    /// The network.
    #[arg(long, value_enum, default_value_t = ModelArg::Vgg16)]
    model: ModelArg,
    /// Weights file (safetensors or torch .pth) instead of the cache's VGG-16; needed for
    /// VGG-19 (e.g. torchvision's vgg19-dcbb9e9d.pth).
    #[arg(long)]
    weights: Option<PathBuf>,
    /// Also print a JSON report on stdout: J after the first and the last iteration, each
    /// style layer's cost, iterations, passes and time (the progress stays on stderr).
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum InitArg {
    Content,
    Random,
    Noise,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum OptimizerArg {
    Lbfgs,
    Adam,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum LineSearchArg {
    Wolfe,
    Fixed,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum PoolingArg {
    Max,
    Avg,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum ModelArg {
    Vgg16,
    Vgg19,
}

/// Parses `relu4_2,relu5_1:0.5`; layers without a weight share what the others leave of
/// `default_total` (style) or get `default_each` (content).
fn parse_layers(spec: &str, default_each: Option<f64>) -> anyhow::Result<Vec<(VggLayer, f64)>> {
    let mut out = Vec::new();
    let mut unweighted = Vec::new();
    for item in spec.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let (name, weight) = match item.split_once(':') {
            Some((n, w)) => (
                n,
                Some(
                    w.parse::<f64>()
                        .with_context(|| format!("weight of `{item}`"))?,
                ),
            ),
            None => (item, None),
        };
        let layer: VggLayer = name.parse()?;
        if weight.is_none() {
            unweighted.push(out.len());
        }
        out.push((layer, weight.unwrap_or(0.0)));
    }
    if out.is_empty() {
        bail!("no layer in `{spec}`");
    }
    let share = default_each.unwrap_or(1.0 / unweighted.len().max(1) as f64);
    for i in unweighted {
        out[i].1 = share;
    }
    Ok(out)
}

fn open_image(path: &Path) -> anyhow::Result<Image> {
    Image::open(path).context("cannot use it as an image")
}

/// Runs `likeness style`.
pub fn run(args: StyleArgs) -> anyhow::Result<()> {
    let content = open_image(&args.content)?;
    let styles = args
        .styles
        .iter()
        .map(|p| open_image(p))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let model = match args.model {
        ModelArg::Vgg16 => VggVariant::Vgg16,
        ModelArg::Vgg19 => VggVariant::Vgg19,
    };
    let (_, weights) = super::vgg_weights(model, args.weights.as_deref())?;
    let optimizer = match args.optimizer {
        OptimizerArg::Lbfgs => Optimizer::Lbfgs(LbfgsConfig {
            history: args.lbfgs_history,
            line_search: match args.line_search {
                LineSearchArg::Wolfe => LineSearch::StrongWolfe,
                LineSearchArg::Fixed => LineSearch::Fixed,
            },
            ..LbfgsConfig::default()
        }),
        OptimizerArg::Adam => Optimizer::Adam(AdamConfig {
            learning_rate: args.learning_rate,
            ..AdamConfig::default()
        }),
    };
    let config = StyleConfig {
        size: args.size,
        content_layers: parse_layers(&args.content_layers, Some(1.0))?,
        style_layers: parse_layers(&args.style_layers, None)?,
        content_weight: args.content_weight,
        style_weight: args.style_weight,
        tv_weight: args.tv_weight,
        style_blend: args.style_blend.clone(),
        style_scale: args.style_scale,
        init: match args.init {
            InitArg::Content => Init::Content,
            InitArg::Random => Init::Random,
            InitArg::Noise => Init::Noise {
                ratio: args.noise_ratio,
            },
        },
        optimizer,
        iterations: args.iterations,
        seed: args.seed,
        preserve_colors: args.preserve_colors,
        pooling: match args.pooling {
            PoolingArg::Max => Pooling::Max,
            PoolingArg::Avg => Pooling::Average,
        },
        scales: args.scales,
        save_every: args.save_every,
        model,
        weights: args.weights.clone(),
        memory_limit: None,
    };
    config.validate(styles.len())?;

    let total = (config.iterations * config.scales) as u64;
    let bar = ProgressBar::new(total);
    bar.set_style(
        ProgressStyle::with_template("{bar:30} {pos}/{len} it  {per_sec}  ETA {eta}  {msg}")
            .context("progress bar template")?,
    );
    bar.enable_steady_tick(Duration::from_millis(500));
    let mut checkpoint_error = None;
    let mut first_terms = None;
    let output = args.output.clone();
    let result = transfer(&content, &styles, &weights, &config, &mut |p| {
        if first_terms.is_none() {
            first_terms = Some(p.terms.clone());
        }
        bar.set_position(p.total_iteration as u64);
        bar.set_message(format!(
            "{}×{}  J {:.4e}  content {:.4e}  style {:.4e}{}",
            p.width,
            p.height,
            p.terms.total,
            p.terms.content,
            p.terms.style,
            if p.terms.tv > 0.0 {
                format!("  tv {:.4e}", p.terms.tv)
            } else {
                String::new()
            }
        ));
        if let Some(img) = p.checkpoint {
            let path = checkpoint_path(&output, p.total_iteration);
            if let Err(e) = img.save_png(&path) {
                checkpoint_error.get_or_insert(e);
            }
        }
    });
    bar.finish_and_clear();
    let out = result?;
    if let Some(e) = checkpoint_error {
        eprintln!("warning: a checkpoint could not be written: {e}");
    }
    out.image
        .save_png(&args.output)
        .with_context(|| format!("writing {}", args.output.display()))?;

    let secs = out.elapsed.as_secs_f64();
    eprintln!(
        "wrote {} ({}×{}): {} iterations, {} forward+backward passes in {:.1} s ({:.2} s per pass)",
        args.output.display(),
        out.image.width,
        out.image.height,
        out.iterations,
        out.evaluations,
        secs,
        secs / out.evaluations.max(1) as f64
    );
    if let Some(t) = &out.terms {
        let layers: Vec<String> = config
            .style_layers
            .iter()
            .zip(&t.style_layers)
            .map(|((l, _), v)| format!("{l} {v:.3e}"))
            .collect();
        eprintln!(
            "J {:.4e} = α·{:.4e} (content) + β·{:.4e} (style: {}) + tv·{:.4e}",
            t.total,
            t.content,
            t.style,
            layers.join(", "),
            t.tv
        );
    }
    match out.stopped {
        Some(Stop::NonFinite) => eprintln!(
            "stopped: the loss became NaN or infinite; kept the last good image (try smaller \
             weights or Adam's learning rate)"
        ),
        Some(Stop::LineSearchFailed) => {
            eprintln!("stopped: the line search could not lower J any more (converged)")
        }
        Some(Stop::GradientTolerance | Stop::ChangeTolerance) => {
            eprintln!("stopped early: converged")
        }
        None => {}
    }
    if args.json {
        let report = StyleReport::new(
            args.output.clone(),
            &out,
            first_terms.as_ref(),
            &config.style_layers,
        );
        super::common::print_json(&report)?;
    }
    Ok(())
}

/// `out.png` → `out_iter100.png`.
fn checkpoint_path(output: &Path, iteration: usize) -> PathBuf {
    let stem = output
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "style".into());
    output.with_file_name(format!("{stem}_iter{iteration}.png"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layer_specs() {
        let s = parse_layers("relu1_1,relu2_1:0.5, relu3_1", None).unwrap();
        assert_eq!(s.len(), 3);
        assert_eq!((s[0].1, s[1].1, s[2].1), (0.5, 0.5, 0.5));
        let c = parse_layers("relu4_2", Some(1.0)).unwrap();
        assert_eq!(c[0].0.to_string(), "relu4_2");
        assert!(parse_layers("fc7", None).is_err());
        assert!(parse_layers("relu1_1:x", None).is_err());
        assert!(parse_layers("", None).is_err());
        assert_eq!(
            checkpoint_path(Path::new("a/out.png"), 100),
            Path::new("a/out_iter100.png")
        );
    }
}
