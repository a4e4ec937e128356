//! The likeness half of the style-transfer benchmark against PyTorch (`bench/style/run.sh`
//! runs it beside `bench/style/torch_style.py`).
//!
//! ```text
//! cargo run -p likeness-style --example bench_style -- time  SIZE REPS  OUT_DIR
//! cargo run -p likeness-style --example bench_style -- lbfgs SIZE ITERS OUT_DIR
//! ```
//!
//! Both modes build the objective of `likeness style`'s defaults (content relu4_2, style
//! relu1_1…relu5_1 with λ = 0.2, α = 1, β = 10⁴, max pooling, Caffe-BGR input) from the cache's
//! astronaut (content) and gravel (style) resized to SIZE, and write the resized images as
//! `content_SIZE.png` / `style_SIZE.png` so that PyTorch reads exactly the same pixels.
//! `time`: seconds of one J + ∂J/∂G evaluation at the content image, one warm-up then REPS
//! timed → `likeness_time_SIZE.json`. `lbfgs`: ITERS L-BFGS steps (the default L-BFGS:
//! m = 100, strong Wolfe) from the content image → `likeness_lbfgs_SIZE.csv` and `.json`.
//! Peak memory is the process's VmHWM.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::time::Instant;

use likeness_nn::device::cpu_autodiff;
use likeness_nn::image::Image;
use likeness_nn::nets::vgg::Vgg;
use likeness_style::loss::CostWeights;
use likeness_style::objective::{StyleInput, StyleObjective};
use likeness_style::optim::{Lbfgs, LbfgsConfig, Minimizer};
use likeness_style::{StyleConfig, load_weights};
use likeness_testdata::cache_home;

type BoxResult<T> = Result<T, Box<dyn std::error::Error>>;

/// CPU seconds (user + system) this process has used, if /proc says: unlike wall time, it
/// hardly depends on what else the machine runs.
fn cpu_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let ticks: f64 = fields.get(11)?.parse::<f64>().ok()? + fields.get(12)?.parse::<f64>().ok()?;
    Some(ticks / 100.0)
}

/// The process's peak resident set (VmHWM) in MiB, if /proc says.
fn peak_rss_mib() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024.0)
}

/// The objective at `size`² and the content image as the starting point.
fn objective(size: usize, out: &Path) -> BoxResult<(StyleObjective, Vec<f32>)> {
    let home = cache_home();
    let weights = load_weights(&home.join("models/vgg16.safetensors"))?;
    let content =
        Image::open(&home.join("samples/astronaut.png"))?.resize(size as u32, size as u32);
    let style = Image::open(&home.join("samples/gravel.png"))?.resize(size as u32, size as u32);
    content.save_png(&out.join(format!("content_{size}.png")))?;
    style.save_png(&out.join(format!("style_{size}.png")))?;

    let config = StyleConfig::default();
    let device = cpu_autodiff();
    let vgg = Vgg::load(&weights, &device)?.with_pooling(config.pooling);
    let content_t = vgg.image_to_tensor(&content, &device);
    let x0 = content_t
        .to_data()
        .try_to_vec::<f32>()
        .map_err(|e| format!("{e:?}"))?;
    let style_t = vgg.image_to_tensor(&style, &device);
    let objective = StyleObjective::new(
        vgg,
        &device,
        content_t,
        &[StyleInput {
            tensor: style_t,
            weight: 1.0,
        }],
        &config.content_layers,
        &config.style_layers,
        CostWeights {
            content: config.content_weight,
            style: config.style_weight,
            tv: config.tv_weight,
        },
    )?;
    Ok((objective, x0))
}

fn time(size: usize, reps: usize, out: &Path) -> BoxResult<()> {
    let (objective, x0) = objective(size, out)?;
    let (terms, _) = objective.evaluate(&x0)?; // warm-up
    let mut seconds = Vec::with_capacity(reps);
    let cpu_start = cpu_seconds().unwrap_or(f64::NAN);
    for _ in 0..reps {
        let t = Instant::now();
        let (_, grad) = objective.evaluate(&x0)?;
        seconds.push(t.elapsed().as_secs_f64());
        std::hint::black_box(grad);
    }
    let cpu_per_eval = (cpu_seconds().unwrap_or(f64::NAN) - cpu_start) / reps as f64;
    let mut sorted = seconds.clone();
    sorted.sort_by(f64::total_cmp);
    let median = sorted[sorted.len() / 2];
    let json = format!(
        "{{\"impl\": \"likeness\", \"size\": {size}, \"seconds\": {seconds:?}, \"median_s\": {median}, \"cpu_s_per_eval\": {cpu_per_eval}, \
         \"loss\": {}, \"content\": {}, \"style\": {}, \"peak_rss_mib\": {}}}\n",
        terms.total,
        terms.content,
        terms.style,
        peak_rss_mib().unwrap_or(f64::NAN)
    );
    std::fs::write(out.join(format!("likeness_time_{size}.json")), &json)?;
    print!("{json}");
    Ok(())
}

fn lbfgs(size: usize, iterations: usize, out: &Path) -> BoxResult<()> {
    let (objective, x0) = objective(size, out)?;
    let mut f = |x: &[f32]| {
        let (terms, grad) = objective.evaluate(x)?;
        Ok(likeness_style::optim::Evaluation {
            loss: terms.total,
            grad,
        })
    };
    let mut opt = Lbfgs::new(LbfgsConfig::default(), x0);
    let start = Instant::now();
    // Written line by line, so that an interrupted run still leaves its curve.
    let mut csv = std::io::BufWriter::new(std::fs::File::create(
        out.join(format!("likeness_lbfgs_{size}.csv")),
    )?);
    writeln!(csv, "iteration,loss,evaluations,seconds")?;
    let mut last = None;
    for _ in 0..iterations {
        let report = opt.step(&mut f)?;
        if report.stop.is_some() && last.is_some_and(|(i, _, _)| i == report.iteration) {
            break;
        }
        writeln!(
            csv,
            "{},{},{},{:.3}",
            report.iteration,
            report.loss,
            report.evaluations,
            start.elapsed().as_secs_f64()
        )?;
        csv.flush()?;
        last = Some((report.iteration, report.loss, report.evaluations));
        if report.stop.is_some() {
            break;
        }
    }
    let (iters, loss, evals) = last.ok_or("no L-BFGS step was taken")?;
    let json = format!(
        "{{\"impl\": \"likeness\", \"size\": {size}, \"iterations\": {iters}, \"evaluations\": {evals}, \
         \"final_loss\": {loss}, \"seconds\": {:.3}, \"peak_rss_mib\": {}}}\n",
        start.elapsed().as_secs_f64(),
        peak_rss_mib().unwrap_or(f64::NAN)
    );
    std::fs::write(out.join(format!("likeness_lbfgs_{size}.json")), &json)?;
    print!("{json}");
    Ok(())
}

fn main() -> BoxResult<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [mode, size, n, out] = args.as_slice() else {
        return Err("usage: bench_style time|lbfgs SIZE N OUT_DIR".into());
    };
    let (size, n): (usize, usize) = (size.parse()?, n.parse()?);
    let out = PathBuf::from(out);
    std::fs::create_dir_all(&out)?;
    match mode.as_str() {
        "time" => time(size, n, &out),
        "lbfgs" => lbfgs(size, n, &out),
        other => Err(format!("unknown mode {other}: time or lbfgs").into()),
    }
}
