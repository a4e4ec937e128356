//! `likeness probe`: the input patches that excite chosen units of a network most.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::{Args, ValueEnum};
use indicatif::{ProgressBar, ProgressStyle};
use likeness_models::Cache;
use likeness_nn::device::cpu;
use likeness_nn::image::Image;
use likeness_nn::nets::dlib_resnet::{CHIP_SIZE, DlibResNet};
use likeness_nn::nets::vgg::{Vgg, VggLayer, VggVariant};
use likeness_nn::weights::WeightMap;
use likeness_probe::sheet::write_sheets;
use likeness_probe::{
    DlibProbeNet, ProbeConfig, ProbeNet, Prober, UnitSelection, VggProbeNet, fit_longer_side,
    list_images,
};

/// The networks `probe` knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ProbeModel {
    Vgg16,
    Vgg19,
    /// dlib's face ResNet; every image is resized to its 150×150 input (aligned face chips,
    /// e.g. from `likeness encode --chips DIR`, work best: that is what it was trained on).
    Dlib,
}

/// Show, for each chosen unit of some layers, the image patches that excite it most.
///
/// Streams the images through the network, keeps each unit's top activations (at most one per
/// half receptive field of an image, unless --all-positions), maps each back to the input patch
/// the unit sees, and writes per layer a contact sheet (a row per unit, its patches strongest
/// first) and an index.html to browse them.
#[derive(Debug, Args)]
pub struct ProbeArgs {
    /// The network.
    #[arg(long, value_enum, default_value = "vgg16")]
    pub model: ProbeModel,
    /// Weights file (safetensors or torchvision .pth) instead of the model cache's.
    #[arg(long)]
    pub weights: Option<PathBuf>,
    /// Folder of PNG/JPEG images to probe with.
    #[arg(long)]
    pub images: PathBuf,
    /// Layers to probe, comma-separated [default: VGG relu1_1,relu2_1,relu3_1,relu4_1,relu5_1;
    /// dlib pool,block2,block6,block9,block12 (also: stem, block0 … block13)].
    #[arg(long, value_delimiter = ',')]
    pub layers: Option<Vec<String>>,
    /// Probe the first N units of each layer.
    #[arg(long, default_value_t = 8, conflicts_with = "unit_ids", value_parser = crate::args::usize_in(1, 4_096))]
    pub units: usize,
    /// Probe these units of each layer (comma-separated indices) instead.
    #[arg(long, value_delimiter = ',', value_parser = crate::args::usize_in(0, 65_535))]
    pub unit_ids: Option<Vec<usize>>,
    /// Patches kept per unit.
    #[arg(long, default_value_t = 9, value_parser = crate::args::usize_in(1, 1_000))]
    pub top: usize,
    /// Longer side, in pixels, the images are scaled to before probing (VGG; dlib always
    /// takes 150×150).
    #[arg(long, default_value_t = 224, value_parser = crate::args::u32_in(32, 16_384))]
    pub size: u32,
    /// Side of each patch on the sheets, in pixels.
    #[arg(long, default_value_t = 48, value_parser = crate::args::u32_in(8, 1_024))]
    pub cell: u32,
    /// Allow several overlapping patches from one image per unit.
    #[arg(long)]
    pub all_positions: bool,
    /// Output folder for the sheets and index.html.
    #[arg(short, long, value_parser = crate::args::output_dir)]
    pub output: PathBuf,
}

/// Layers probed by default: VGG's first ReLU of each block.
const VGG_DEFAULT_LAYERS: &[&str] = &["relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1"];
/// Layers probed by default in dlib's ResNet: the pool and the last block of each of the first
/// four stages (fields 11, 59, 179, 355 and 707 px; the deeper ones see the whole 150-px chip).
const DLIB_DEFAULT_LAYERS: &[&str] = &["pool", "block2", "block6", "block9", "block12"];

/// Runs `likeness probe`.
pub fn run(args: ProbeArgs) -> anyhow::Result<()> {
    let started = Instant::now();
    let variant = match args.model {
        ProbeModel::Vgg16 => VggVariant::Vgg16,
        ProbeModel::Vgg19 => VggVariant::Vgg19,
        ProbeModel::Dlib => return run_dlib(&args, started),
    };
    crate::args::ensure_memory(
        "probing",
        probe_memory(&args, variant, args.size as usize),
        "--size, --cell, --units or --top",
    )?;
    let (weights_path, weights) = super::vgg_weights(variant, args.weights.as_deref())?;
    let device = cpu();
    let vgg = Vgg::load(&weights, &device)?;
    if vgg.config().variant != variant {
        bail!(
            "{} holds {:?} weights, not {variant:?}",
            weights_path.display(),
            vgg.config().variant
        );
    }
    let net = VggProbeNet::new(vgg, device);
    let size = args.size;
    probe(&net, &args, VGG_DEFAULT_LAYERS, started, |image| {
        fit_longer_side(image, size)
    })
}

/// Peak bytes of a probe, estimated from the user's numbers before anything is allocated: the
/// network's forward pass at `--size` (VGG; the style transfer's per-activation measurement,
/// which also covers a backward pass, so this errs high) and the sheets, `--units` × `--top`
/// cells of `--cell`² RGB pixels per layer, held twice while drawn. Unbounded before: `--size`
/// took 11 GB, `--cell` aborted allocating 120 GB.
fn probe_memory(args: &ProbeArgs, variant: VggVariant, size: usize) -> u128 {
    let network = if size > 0 {
        let blocks: Vec<VggLayer> = (1..=5).map(|b| VggLayer::Relu(b, 1)).collect();
        u128::from(likeness_style::memory::estimate_bytes(
            size, size, variant, &blocks, 0,
        ))
    } else {
        0
    };
    let layers = args.layers.as_ref().map_or(5, Vec::len) as u128;
    let units = args.unit_ids.as_ref().map_or(args.units, Vec::len) as u128;
    let cell = u128::from(args.cell);
    network + 2 * layers * units * args.top as u128 * cell * cell * 3
}

/// `probe --model dlib`: every image resized to the network's 150×150 input.
fn run_dlib(args: &ProbeArgs, started: Instant) -> anyhow::Result<()> {
    crate::args::ensure_memory(
        "probing",
        probe_memory(args, VggVariant::Vgg16, 0),
        "--cell, --units or --top",
    )?;
    let weights_path = match &args.weights {
        Some(p) => p.clone(),
        None => Cache::from_env()?.model_path("dlib_resnet")?,
    };
    let weights = WeightMap::load(&weights_path)
        .with_context(|| format!("loading dlib weights from {}", weights_path.display()))?;
    let device = cpu();
    let net = DlibProbeNet::new(DlibResNet::load(&weights, &device)?, device);
    let side = CHIP_SIZE as u32;
    probe(&net, args, DLIB_DEFAULT_LAYERS, started, |image| {
        image.resize(side, side)
    })
}

/// Streams the images through `net` (each after `prepare`) and writes the sheets.
fn probe<N: ProbeNet>(
    net: &N,
    args: &ProbeArgs,
    default_layers: &[&str],
    started: Instant,
    prepare: impl Fn(&Image) -> Image,
) -> anyhow::Result<()> {
    let layers = match &args.layers {
        Some(l) => l.clone(),
        None => default_layers.iter().map(|s| s.to_string()).collect(),
    };
    let config = ProbeConfig {
        layers,
        units: match &args.unit_ids {
            Some(ids) => UnitSelection::Ids(ids.clone()),
            None => UnitSelection::First(args.units),
        },
        top: args.top,
        distinct: !args.all_positions,
    };
    let mut prober = Prober::new(net, &config)?;
    let paths = list_images(&args.images)?;

    let bar = ProgressBar::new(paths.len() as u64);
    bar.set_style(
        ProgressStyle::with_template("{bar:30} {pos}/{len} images  {per_sec}  ETA {eta}  {msg}")
            .context("progress bar template")?,
    );
    bar.enable_steady_tick(Duration::from_millis(500));
    let mut skipped = 0;
    for path in &paths {
        let name = path.file_name().map_or_else(
            || path.display().to_string(),
            |n| n.to_string_lossy().into(),
        );
        bar.set_message(name.clone());
        match Image::open(path) {
            Ok(image) => prober.observe(&name, &prepare(&image))?,
            Err(e) => {
                bar.println(format!("skipping {}: {e}", path.display()));
                skipped += 1;
            }
        }
        bar.inc(1);
    }
    bar.finish_and_clear();
    if prober.image_names().is_empty() {
        bail!(
            "none of the {} images in {} could be read",
            paths.len(),
            args.images.display()
        );
    }
    let (layers, names) = prober.finish();
    let sheets = write_sheets(
        &args.output,
        &net.name(),
        &layers,
        &names,
        args.top,
        args.cell,
    )?;
    for (layer, sheet) in layers.iter().zip(&sheets) {
        println!(
            "{:<8} field {:>3} px, stride {:>2}  {}",
            layer.layer,
            layer.field.size,
            layer.field.stride,
            sheet.display()
        );
    }
    println!(
        "{} images ({} skipped) probed in {:.1} s; browse {}",
        names.len(),
        skipped,
        started.elapsed().as_secs_f64(),
        args.output.join("index.html").display()
    );
    Ok(())
}
