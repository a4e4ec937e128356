//! `likeness demo`: the main job on the sample images. Writes a folder a person opens
//! (index.html, report.md, pictures), one section per capability.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::Context;
use clap::{Args, ValueEnum};
use likeness_learn::digits::{Digits, OneShotConfig, one_shot};
use likeness_models::Cache;
use likeness_nn::draw;
use likeness_nn::image::Image;
use likeness_style::{StyleConfig, transfer};

/// Run Likeness on the sample images of the model cache and write a report folder.
///
/// With no section named, runs them all (about 70 s on 2 cores). `likeness demo conv1d` and
/// `likeness demo conv3d` train the 1D and 3D ConvNet examples and print their accuracy.
#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Sections to run (default: all).
    #[arg(value_enum)]
    sections: Vec<Section>,
    /// The output folder (created; files in it are replaced).
    #[arg(short, long, default_value = "demo-out", value_parser = crate::args::output_dir)]
    output: PathBuf,
    /// Style transfer size (longest side, pixels) and iterations: the demo keeps them small.
    #[arg(long, default_value_t = 224, value_parser = crate::args::usize_in(32, crate::args::MAX_SIDE))]
    style_size: usize,
    /// L-BFGS iterations of the style transfer.
    #[arg(long, default_value_t = 40, value_parser = crate::args::usize_in(1, 100_000))]
    style_iterations: usize,
    /// β, the style weight of the demo's transfer (α = 1). Lower than `likeness style`'s
    /// default so that the astronaut stays recognisable after few iterations.
    #[arg(long, default_value_t = 1e3, value_parser = crate::args::f64_positive)]
    style_weight: f64,
}

/// A part of the demo.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Section {
    /// Detect faces on the group photos and compare the people found.
    Faces,
    /// Paint the astronaut in the style of a texture.
    Style,
    /// Train a small CNN with the triplet loss and recognise unseen digits from one example.
    Digits,
    /// The image patches that excite VGG-16's units most, layer by layer.
    Probe,
    /// A 1D ConvNet classifying heartbeats of a real ECG recording.
    Conv1d,
    /// A 3D ConvNet telling which way a blob moves in short clips.
    Conv3d,
}

/// The report under construction: markdown and HTML side by side.
struct Report {
    dir: PathBuf,
    md: String,
    html: String,
}

impl Report {
    fn new(dir: &Path) -> Self {
        Report {
            dir: dir.to_path_buf(),
            md: "# Likeness demo\n\n".into(),
            html: "<!doctype html><meta charset=utf-8><title>Likeness demo</title>\
                   <style>body{font-family:sans-serif;max-width:1100px;margin:auto}img{max-width:100%}\
                   pre{background:#f4f4f4;padding:8px}</style><h1>Likeness demo</h1>\n"
                .into(),
        }
    }

    fn heading(&mut self, title: &str) {
        let _ = write!(self.md, "## {title}\n\n");
        let _ = writeln!(self.html, "<h2>{}</h2>", escape(title));
    }

    fn para(&mut self, text: &str) {
        let _ = write!(self.md, "{text}\n\n");
        let _ = writeln!(self.html, "<p>{}</p>", escape(text));
    }

    fn pre(&mut self, text: &str) {
        let _ = write!(self.md, "```\n{text}\n```\n\n");
        let _ = writeln!(self.html, "<pre>{}</pre>", escape(text));
    }

    fn picture(&mut self, name: &str, image: &Image, caption: &str) -> anyhow::Result<()> {
        let path = self.dir.join(name);
        image
            .save_png(&path)
            .with_context(|| format!("writing {}", path.display()))?;
        self.figure(name, caption);
        Ok(())
    }

    /// A picture already in the folder, at `name` relative to it.
    fn figure(&mut self, name: &str, caption: &str) {
        let _ = write!(self.md, "![{caption}]({name})\n\n");
        let _ = writeln!(
            self.html,
            "<figure><img src=\"{name}\"><figcaption>{}</figcaption></figure>",
            escape(caption)
        );
    }

    fn finish(&self) -> anyhow::Result<()> {
        for (name, text) in [("report.md", &self.md), ("index.html", &self.html)] {
            let path = self.dir.join(name);
            likeness_nn::weights::write_atomic(&path, text.as_bytes())
                .with_context(|| format!("writing {}", path.display()))?;
        }
        Ok(())
    }
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

pub fn run(args: DemoArgs) -> anyhow::Result<()> {
    let sections = if args.sections.is_empty() {
        vec![
            Section::Faces,
            Section::Style,
            Section::Digits,
            Section::Probe,
            Section::Conv1d,
            Section::Conv3d,
        ]
    } else {
        args.sections.clone()
    };
    let cache = Cache::from_env()?;
    std::fs::create_dir_all(&args.output)
        .with_context(|| format!("creating {}", args.output.display()))?;
    let mut report = Report::new(&args.output);
    let start = Instant::now();
    for section in sections {
        let t = Instant::now();
        eprintln!("demo: {section:?}…");
        match section {
            Section::Faces => faces(&cache, &mut report)?,
            Section::Style => style(&cache, &mut report, &args)?,
            Section::Digits => digits(&cache, &mut report)?,
            Section::Probe => probe(&cache, &mut report)?,
            Section::Conv1d => conv1d(&cache, &mut report)?,
            Section::Conv3d => conv3d(&mut report)?,
        }
        eprintln!(
            "demo: {section:?} done in {:.1} s",
            t.elapsed().as_secs_f64()
        );
        // Keep what is done readable even if a later section fails.
        report.finish()?;
    }
    report.para(&format!(
        "Whole demo: {:.0} s on this machine.",
        start.elapsed().as_secs_f64()
    ));
    report.finish()?;
    println!("demo: open {}", args.output.join("index.html").display());
    Ok(())
}

fn sample(cache: &Cache, name: &str) -> anyhow::Result<Image> {
    let path = cache.sample_path(name)?;
    Image::open(&path).with_context(|| format!("reading sample {}", path.display()))
}

fn style(cache: &Cache, report: &mut Report, args: &DemoArgs) -> anyhow::Result<()> {
    report.heading("Style: neural style transfer (Gatys et al.)");
    let content = sample(cache, "astronaut.png")?;
    let style_image = sample(cache, "gravel.png")?;
    let weights = likeness_nn::weights::WeightMap::load(&cache.model_path("vgg16")?)?;
    let config = StyleConfig {
        size: args.style_size,
        iterations: args.style_iterations,
        style_weight: args.style_weight,
        // The style is a grey texture: keep the astronaut's colours, take only its luminance.
        preserve_colors: true,
        ..StyleConfig::default()
    };
    let out = transfer(
        &content,
        std::slice::from_ref(&style_image),
        &weights,
        &config,
        &mut |p| {
            if p.iteration % 10 == 0 {
                eprintln!(
                    "  style: iteration {}/{}, J = {:.4e}",
                    p.total_iteration, p.total_iterations, p.terms.total
                );
            }
        },
    )?;
    let triptych = draw::captioned_row(
        &[
            (&content, "content"),
            (&style_image, "style"),
            (&out.image, "result"),
        ],
        256,
        draw::WHITE,
    );
    report.para(&format!(
        "VGG-16 (ImageNet weights), content at relu4_2, style at relu1_1…relu5_1 (λ = 0.2 each), \
         α = 1, β = {:.0e}, L-BFGS from the content image, colours kept, {} iterations at {} px, {:.0} s.",
        args.style_weight,
        out.iterations,
        args.style_size,
        out.elapsed.as_secs_f64()
    ));
    if let Some(terms) = &out.terms {
        report.pre(&format!(
            "J = {:.4e}   J_content = {:.4e}   J_style = {:.4e}",
            terms.total, terms.content, terms.style
        ));
    }
    report.picture("style.png", &triptych, "content | style | result")
}

fn digits(cache: &Cache, report: &mut Report) -> anyhow::Result<()> {
    report.heading("Learning a similarity: one-shot digits with the triplet loss");
    let data = Digits::load(&cache.sample_path("digits.csv.gz")?)?;
    let config = OneShotConfig::default();
    let (_, r) = one_shot(&data, &config)?;
    report.para(&format!(
        "A small CNN trained with the triplet loss (semi-hard triplets, margin {}) on scikit-learn's \
         8×8 digits {:?} only, then asked to recognise digits {:?}, never seen in training, from a \
         single example of each (nearest neighbour in the embedding; {} random choices of the \
         examples). The same search on raw pixels and on the untrained network for comparison.",
        config.margin, config.train_classes, config.test_classes, r.trials
    ));
    report.pre(&super::train::digits_summary(&r));
    Ok(())
}

fn probe(cache: &Cache, report: &mut Report) -> anyhow::Result<()> {
    report.heading("Probe: what VGG-16's units respond to");
    let images = cache
        .sample_path("astronaut.png")?
        .parent()
        .map(Path::to_path_buf)
        .context("the model cache's samples folder")?;
    let layers = ["relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1"];
    super::probe::run(super::probe::ProbeArgs {
        model: super::probe::ProbeModel::Vgg16,
        weights: None,
        images,
        layers: Some(layers.iter().map(|l| l.to_string()).collect()),
        units: 8,
        unit_ids: None,
        top: 9,
        size: 224,
        cell: 48,
        all_positions: false,
        output: report.dir.join("probe"),
    })?;
    report.para(
        "For eight units of each layer, the nine patches of the sample images that excite it most, \
         strongest first (each the unit's receptive field, from VGG-16's kernels, strides and \
         paddings; grey where it passes the image's edge). Early units answer to colours and \
         edges, middle ones to textures, the deepest to parts of objects and faces. \
         probe/index.html shows each patch's activation and position.",
    );
    for layer in layers {
        report.figure(&format!("probe/{layer}.png"), &format!("VGG-16 {layer}"));
    }
    Ok(())
}

fn conv1d(cache: &Cache, report: &mut Report) -> anyhow::Result<()> {
    report.heading("1D convolution: heartbeats of a real ECG");
    let path = cache.sample_path("ecg.dat")?;
    let r = likeness_convnd::run_ecg(&path, &likeness_convnd::EcgOptions::default())?;
    println!("{r}");
    report.para("A small 1D ConvNet on 2-second windows of scipy's ECG recording (MIT-BIH, 360 Hz), labelled normal or premature by the RR-interval rule documented in likeness-convnd's ecg.rs; trained on the first 70 % of the recording, tested on the rest.");
    report.pre(&r.to_string());
    Ok(())
}

fn conv3d(report: &mut Report) -> anyhow::Result<()> {
    report.heading("3D convolution: which way does the blob move?");
    let r = likeness_convnd::run_clips(&likeness_convnd::ClipOptions::default())?;
    println!("{r}");
    report.para("A small 3D ConvNet on synthetic 16-frame clips (a noisy moving blob and a still distractor), eight directions.");
    report.pre(&r.to_string());
    Ok(())
}

/// The group photos the faces section runs on (sample names in the model cache).
const FACE_PHOTOS: &[&str] = &[
    "astronaut.png",
    "t1.jpg",
    "sample1.jpg",
    "sample2.jpg",
    "sample3.jpg",
    "sample4.jpg",
    "sample5.jpg",
    "sample6.jpg",
];

fn faces(cache: &Cache, report: &mut Report) -> anyhow::Result<()> {
    use likeness_face::faces::Faces;
    report.heading("Faces: detect → align → encode → compare");
    let faces = Faces::load(cache)?;
    let mut lines = String::new();
    let mut thumbs = Vec::new();
    // (label, chip, embedding) of every face found
    let mut found: Vec<(String, Image, likeness_face::compare::Embedding)> = Vec::new();
    for name in FACE_PHOTOS {
        let mut image = sample(cache, name)?;
        let (encoded, times) = faces.encode_timed(&image)?;
        let _ = writeln!(
            lines,
            "{name:<14} {:>3} faces   detect {:>6.0} ms  landmarks {:>4.0} ms  align {:>4.0} ms  encode {:>5.0} ms",
            encoded.len(),
            times.detect.as_secs_f64() * 1e3,
            times.landmarks.as_secs_f64() * 1e3,
            times.align.as_secs_f64() * 1e3,
            times.encode.as_secs_f64() * 1e3,
        );
        let thick = (image.width.max(image.height) / 400).max(2);
        for (i, face) in encoded.iter().enumerate() {
            let chip = faces.chip(&image, &face.landmarks)?;
            let label = format!("{}#{i}", name.split('.').next().unwrap_or(name));
            found.push((label.clone(), chip.image, face.embedding.clone()));
            let [x0, y0, x1, y1] = face.detection.bbox;
            draw::rect(&mut image, x0, y0, x1, y1, draw::GREEN, thick);
            for &(x, y) in &face.landmarks.0 {
                draw::dot(&mut image, x as f32, y as f32, thick as f32, draw::YELLOW);
            }
            draw::label(
                &mut image,
                x0 as i64,
                y1 as i64 + 2,
                &label,
                draw::BLACK,
                draw::GREEN,
                thick,
            );
        }
        let h = 360;
        let w = (image.width as f32 * h as f32 / image.height as f32).round() as u32;
        thumbs.push(image.resize(w.max(1), h));
    }
    report.para(
        "Boxes from BlazeFace (front model for close faces, back model on tiles for small ones), \
         dlib's five landmarks (yellow) from its shape predictor, then dlib's 150×150 chip and \
         its ResNet's 128-D embedding. Times per photo on this machine:",
    );
    report.pre(lines.trim_end());
    report.picture(
        "faces.png",
        &draw::grid(&thumbs, 2, 8, draw::WHITE),
        "faces found",
    )?;

    let chips: Vec<Image> = found
        .iter()
        .map(|(label, chip, _)| {
            let mut c = chip.clone();
            draw::label(&mut c, 0, 140, label, draw::WHITE, draw::BLACK, 1);
            c
        })
        .collect();
    report.para("The aligned chips the network sees (dlib's geometry: 150 px, padding 0.25):");
    report.picture(
        "chips.png",
        &draw::grid(&chips, 8, 4, draw::WHITE),
        "aligned chips",
    )?;

    // Every pair's distance: the closest pairs show what the verifier would accept at τ = 0.6.
    let mut pairs = Vec::new();
    for i in 0..found.len() {
        for j in i + 1..found.len() {
            pairs.push((found[i].2.distance(&found[j].2)?, i, j));
        }
    }
    pairs.sort_by(|a, b| a.0.total_cmp(&b.0));
    let tau = likeness_face::compare::DEFAULT_TOLERANCE;
    let same = pairs.iter().filter(|p| p.0 <= tau).count();
    report.para(&format!(
        "{} faces, {} pairs; {} pairs at distance ≤ τ = {tau} (dlib's convention: same person). \
         The five closest pairs and the five farthest:",
        found.len(),
        pairs.len(),
        same
    ));
    let mut rows = Vec::new();
    let shown: Vec<_> = pairs
        .iter()
        .take(5)
        .chain(pairs.iter().rev().take(5).rev())
        .collect();
    for &&(d, i, j) in &shown {
        let verdict = if d <= tau { "SAME" } else { "DIFFERENT" };
        let mut row = draw::grid(&[found[i].1.clone(), found[j].1.clone()], 2, 4, draw::WHITE);
        draw::label(
            &mut row,
            4,
            4,
            &format!("d={d:.3} {verdict}"),
            draw::WHITE,
            draw::BLUE,
            1,
        );
        rows.push(row);
    }
    report.picture(
        "pairs.png",
        &draw::grid(&rows, 5, 6, draw::WHITE),
        "closest and farthest pairs",
    )
}
