//! Forward time of each network, for `bench/nets` (which runs the reference implementations on
//! the same inputs beside it): VGG-16's conv stack at 224² (to pool5), and the same with the
//! gradient of Σ pool5 with respect to the input, weights frozen (style transfer's work) and not
//! (to show that frozen weights cost no gradients); dlib's ResNet-29 on 150×150 chips (one, and a
//! batch of eight); BlazeFace front (128²) and back (256²).
//!
//! Inputs are synthetic but identical on both sides: value `i` of the input, in the order the
//! reference reads it, is `(i · 7919) mod 255`. Each line of output is one JSON record with the
//! median and every timed run, and a checksum of the output that the collation compares with the
//! reference's (so both sides provably computed the same thing).
//!
//! `cargo run -p likeness-nn --example bench_nets -- [REPS]` (threads: `RAYON_NUM_THREADS`)

use std::time::Instant;

use burn::module::Module;
use burn::tensor::{Device, Tensor, TensorData};
use likeness_nn::device::{cpu, cpu_autodiff};
use likeness_nn::image::Image;
use likeness_nn::nets::blazeface::{BlazeFace, BlazeFaceVariant, nhwc_input};
use likeness_nn::nets::dlib_resnet::DlibResNet;
use likeness_nn::nets::vgg::Vgg;
use likeness_nn::weights::WeightMap;
use likeness_testdata::cache_file;

/// The shared synthetic input: 0…254, scrambled by a prime stride so no two neighbours repeat.
fn pattern(n: usize) -> Vec<u8> {
    (0..n).map(|i| ((i * 7919) % 255) as u8).collect()
}

type Error = Box<dyn std::error::Error>;

/// Runs `f` once to warm up (allocations, packed weights), then `reps` timed times; returns
/// the last result and the timings in milliseconds.
fn time<T>(reps: usize, mut f: impl FnMut() -> Result<T, Error>) -> Result<(T, Vec<f64>), Error> {
    let mut out = f()?;
    let mut runs = Vec::with_capacity(reps);
    for _ in 0..reps {
        let t = Instant::now();
        out = f()?;
        runs.push(t.elapsed().as_secs_f64() * 1e3);
    }
    Ok((out, runs))
}

fn report(net: &str, input: &str, batch: usize, runs: &[f64], checksum: f64) {
    let mut sorted = runs.to_vec();
    sorted.sort_by(f64::total_cmp);
    let median = sorted[sorted.len() / 2];
    let runs: Vec<String> = runs.iter().map(|r| format!("{r:.2}")).collect();
    println!(
        "{{\"impl\": \"likeness\", \"net\": \"{net}\", \"input\": \"{input}\", \"batch\": {batch}, \
         \"median_ms\": {median:.2}, \"runs_ms\": [{}], \"checksum\": {checksum:.6e}}}",
        runs.join(", ")
    );
}

/// Σ|v|: a checksum that does not cancel (gradients and embeddings have both signs).
fn abs_sum<const D: usize>(t: Tensor<D>) -> f64 {
    t.into_data()
        .try_to_vec::<f32>()
        .map(|v| v.iter().map(|&x| f64::from(x.abs())).sum())
        .unwrap_or(f64::NAN)
}

fn weights(name: &str) -> Result<WeightMap, Error> {
    Ok(WeightMap::load(&cache_file(&format!(
        "models/{name}.safetensors"
    )))?)
}

/// NCHW, centred on 0 like a mean-subtracted Caffe input.
fn vgg16_input() -> Vec<f32> {
    pattern(3 * 224 * 224)
        .into_iter()
        .map(|v| f32::from(v) - 127.0)
        .collect()
}

fn vgg16(device: &Device, reps: usize) -> Result<(), Error> {
    let vgg = Vgg::load(&weights("vgg16")?, device)?;
    let x = vgg16_input();
    let (out, runs) = time(reps, || {
        let t = Tensor::<4>::from_data(TensorData::new(x.clone(), [1, 3, 224, 224]), device);
        Ok(abs_sum(vgg.forward(t)?))
    })?;
    report("vgg16", "1x3x224x224", 1, &runs, out);
    Ok(())
}

/// ∂(Σ pool5)/∂x through VGG-16, with the weights frozen (`no_grad`) or trainable.
fn vgg16_input_gradient(reps: usize, frozen: bool) -> Result<(), Error> {
    let device = cpu_autodiff();
    let mut vgg = Vgg::load(&weights("vgg16")?, &device)?;
    if frozen {
        vgg = vgg.no_grad();
    }
    let x = vgg16_input();
    let (out, runs) = time(reps, || {
        let t = Tensor::<4>::from_data(TensorData::new(x.clone(), [1, 3, 224, 224]), &device)
            .require_grad();
        let grads = vgg.forward(t.clone())?.sum().backward();
        let g = t.grad(&grads).ok_or("no input gradient")?;
        Ok(abs_sum(g))
    })?;
    let net = if frozen {
        "vgg16 input gradient, weights frozen"
    } else {
        "vgg16 input gradient, weights trainable"
    };
    report(net, "1x3x224x224", 1, &runs, out);
    Ok(())
}

fn dlib(device: &Device, reps: usize, batch: usize) -> Result<(), Error> {
    let net = DlibResNet::load(&weights("dlib_resnet")?, device)?;
    // One chip, HWC RGB as dlib's Python API takes it; the batch repeats it.
    let chip = Image {
        width: 150,
        height: 150,
        pixels: pattern(150 * 150 * 3),
    };
    let chips = vec![chip; batch];
    let (out, runs) = time(reps, || {
        let rows = net.embed(&chips, device)?;
        Ok(rows[0].iter().map(|&v| f64::from(v.abs())).sum::<f64>())
    })?;
    report("dlib_resnet", "150x150 chip", batch, &runs, out);
    Ok(())
}

fn blazeface(device: &Device, reps: usize, variant: BlazeFaceVariant) -> Result<(), Error> {
    let name = format!("blazeface_{}", variant.name());
    let net = BlazeFace::load(&weights(&name)?, device)?;
    let s = variant.input_size();
    // NHWC, scaled to [-1, 1) as the detector expects.
    let x: Vec<f32> = pattern(s * s * 3)
        .into_iter()
        .map(|v| f32::from(v) / 127.5 - 1.0)
        .collect();
    let (out, runs) = time(reps, || {
        Ok(abs_sum(
            net.forward(nhwc_input(x.clone(), 1, variant, device)?)
                .scores,
        ))
    })?;
    report(&name, &format!("1x{s}x{s}x3"), 1, &runs, out);
    Ok(())
}

fn main() -> Result<(), Error> {
    let reps: usize = match std::env::args().nth(1) {
        Some(s) => s.parse()?,
        None => 10,
    };
    let device = cpu();
    vgg16(&device, reps)?;
    vgg16_input_gradient(reps, true)?;
    vgg16_input_gradient(reps, false)?;
    dlib(&device, reps, 1)?;
    dlib(&device, reps, 8)?;
    blazeface(&device, reps, BlazeFaceVariant::Front)?;
    blazeface(&device, reps, BlazeFaceVariant::Back)?;
    Ok(())
}
