//! conv1d/conv3d forward and gradients against PyTorch (`shared/reference/conv_nd.npz`), the
//! lecture's shape rules, and 3D pooling against direct loops.

use std::collections::BTreeMap;

use burn::tensor::{Device, Tensor, TensorData};
use likeness_nn::device::{cpu, cpu_autodiff};
use likeness_nn::nets::convnd::{
    AvgPool3d, Conv1d, Conv1dConfig, Conv3d, Conv3dConfig, ConvConfig, ConvNd, MaxPool1d,
    MaxPool3d, PoolConfig, Rank, RankOps,
};
use likeness_nn::npz::NpyArray;
use likeness_testdata::reference_npz;

/// Relative tolerance of the bar: |ours − torch| ≤ TOL · max|torch| for every element.
const TOL: f64 = 1e-4;

fn reference() -> BTreeMap<String, NpyArray> {
    reference_npz("conv_nd.npz")
}

fn tensor<const D: usize>(a: &NpyArray, device: &Device) -> Tensor<D> {
    let shape: [usize; D] = a.shape.clone().try_into().unwrap();
    Tensor::from_data(TensorData::new(a.to_f32(), shape), device)
}

fn ints<const N: usize>(a: &NpyArray) -> [usize; N] {
    let v: Vec<usize> = a.values.iter().map(|&v| v as usize).collect();
    v.try_into().unwrap()
}

/// Asserts `ours` matches `want` elementwise within TOL relative to the largest |want|.
fn check(what: &str, shape: Vec<usize>, ours: Vec<f32>, want: &NpyArray) {
    assert_eq!(shape, want.shape, "{what}: shape");
    let scale = want.values.iter().fold(0f64, |m, v| m.max(v.abs()));
    let worst = ours
        .iter()
        .zip(&want.values)
        .map(|(&a, &b)| (a as f64 - b).abs())
        .fold(0f64, f64::max);
    eprintln!("{what}: max |diff| = {worst:.3e}, max |torch| = {scale:.3e}");
    assert!(
        worst <= TOL * scale,
        "{what}: max |diff| {worst:e} exceeds {TOL} × max |torch| {scale:e}"
    );
}

fn values<const D: usize>(t: Tensor<D>) -> (Vec<usize>, Vec<f32>) {
    (
        t.dims().to_vec(),
        t.into_data().try_into_vec::<f32>().unwrap(),
    )
}

/// One PyTorch case `{name}.*` of `r`: the output, the shape rule, and the gradients of
/// loss = sum(y²) with respect to input, weight and bias.
fn check_case<const N: usize, const D: usize>(r: &BTreeMap<String, NpyArray>, name: &str)
where
    Rank<N, D>: RankOps<N, D>,
{
    let get = |k: &str| &r[&format!("{name}.{k}")];
    let device = cpu_autodiff();
    let w: Tensor<D> = tensor(get("w"), &device);
    let w_dims = w.dims();
    let config = ConvConfig::new(w_dims[1], w_dims[0], w_dims[2..].try_into().unwrap())
        .with_stride(ints(get("stride")))
        .with_padding(ints(get("padding")))
        .with_dilation(ints(get("dilation")));
    let conv = ConvNd::<N, D>::from_tensors(
        &config,
        w.require_grad(),
        tensor(get("b"), &device).require_grad(),
    )
    .unwrap();
    let x: Tensor<D> = tensor::<D>(get("x"), &device).require_grad();
    let y = conv.forward(x.clone());
    let (x_dims, y_dims) = (x.dims(), y.dims());
    let spatial: [usize; N] = x_dims[2..].try_into().unwrap();
    assert_eq!(
        config.output_size(spatial).unwrap()[..],
        y_dims[2..],
        "{name}: shape rule"
    );
    assert_eq!(
        y_dims[..2],
        [x_dims[0], w_dims[0]],
        "{name}: batch and channels"
    );
    let grads = y.clone().powi_scalar(2).sum().backward();
    let dx = x.grad(&grads).unwrap();
    let dw = conv.weight.val().grad(&grads).unwrap();
    let db = conv.bias.val().grad(&grads).unwrap();
    for (what, (shape, ours)) in [
        ("y", values(y)),
        ("dx", values(dx)),
        ("dw", values(dw)),
        ("db", values(db)),
    ] {
        check(&format!("{name}.{what}"), shape, ours, get(what));
    }
}

#[test]
fn conv1d_matches_pytorch() {
    let r = reference();
    for name in ["lecture_1d", "strided_1d"] {
        check_case::<1, 3>(&r, name);
    }
}

#[test]
fn conv3d_matches_pytorch() {
    let r = reference();
    for name in ["lecture_3d", "strided_3d"] {
        check_case::<3, 5>(&r, name);
    }
}

/// The lecture: a 14×1 signal convolved with 16 filters of 5×1 gives 10×16.
#[test]
fn lecture_shape_rule_1d() {
    let device = cpu();
    let conv = Conv1d::init(&Conv1dConfig::new(1, 16, [5]), 1, &device).unwrap();
    let y = conv.forward(Tensor::zeros([1, 1, 14], &device));
    assert_eq!(y.dims(), [1, 16, 10]);
}

/// The lecture: a 14×14×14×1 volume convolved with 16 filters of 5×5×5×1 gives 10×10×10×16.
#[test]
fn lecture_shape_rule_3d() {
    let device = cpu();
    let conv = Conv3d::init(&Conv3dConfig::new(1, 16, [5, 5, 5]), 1, &device).unwrap();
    let y = conv.forward(Tensor::zeros([1, 1, 14, 14, 14], &device));
    assert_eq!(y.dims(), [1, 16, 10, 10, 10]);
}

/// Deterministic values without ties (so the max's argmax, and thus its gradient, is unique).
fn distinct_values(n: usize) -> Vec<f32> {
    (0..n)
        .map(|i| ((i * 7919) % 1009) as f32 / 1009.0 - 0.5 + i as f32 * 1e-6)
        .collect()
}

/// Max and average 3D pooling (stride, padding, dilation) and their input gradients for
/// loss = sum(y²), against direct loops over each window.
#[test]
fn pool3d_matches_direct_loops() {
    let device = cpu_autodiff();
    let (b, c, d, h, w) = (2, 3, 7, 8, 9);
    let xs = distinct_values(b * c * d * h * w);
    let at = |n: usize, ch: usize, z: isize, y: isize, x: isize| -> Option<f32> {
        let inside = (0..d as isize).contains(&z)
            && (0..h as isize).contains(&y)
            && (0..w as isize).contains(&x);
        inside.then(|| xs[(((n * c + ch) * d + z as usize) * h + y as usize) * w + x as usize])
    };
    let flat = |n: usize, ch: usize, z: isize, y: isize, x: isize| {
        (((n * c + ch) * d + z as usize) * h + y as usize) * w + x as usize
    };
    for (config, is_max) in [
        (PoolConfig::new([2, 2, 2]), true),
        (
            PoolConfig::new([3, 3, 2])
                .with_stride([2, 1, 2])
                .with_padding([1, 1, 0])
                .with_dilation([1, 2, 1]),
            true,
        ),
        (
            PoolConfig::new([2, 3, 3])
                .with_stride([1, 2, 2])
                .with_padding([1, 1, 1]),
            false,
        ),
    ] {
        let x = Tensor::<5>::from_data(TensorData::new(xs.clone(), [b, c, d, h, w]), &device)
            .require_grad();
        let y = if is_max {
            MaxPool3d::new(&config).unwrap().forward(x.clone())
        } else {
            AvgPool3d::new(&config).unwrap().forward(x.clone())
        };
        let [od, oh, ow] = config.output_size([d, h, w]).unwrap();
        assert_eq!(y.dims(), [b, c, od, oh, ow], "{config:?}");
        let ys: Vec<f32> = y.clone().into_data().try_into_vec::<f32>().unwrap();
        let grads = y.powi_scalar(2).sum().backward();
        let dx: Vec<f32> = x
            .grad(&grads)
            .unwrap()
            .into_data()
            .try_into_vec::<f32>()
            .unwrap();

        let mut want_y = Vec::new();
        let mut want_dx = vec![0f32; xs.len()];
        let (k, s, p, dl) = (
            config.kernel,
            config.stride,
            config.padding,
            config.dilation,
        );
        for n in 0..b {
            for ch in 0..c {
                for (oz, oy, ox) in
                    (0..od).flat_map(|z| (0..oh).flat_map(move |y| (0..ow).map(move |x| (z, y, x))))
                {
                    let mut best: Option<(f32, usize)> = None;
                    let mut sum = 0f32;
                    let mut cells = Vec::new();
                    for (kz, ky, kx) in (0..k[0]).flat_map(|a| {
                        (0..k[1]).flat_map(move |bb| (0..k[2]).map(move |cc| (a, bb, cc)))
                    }) {
                        let z = (oz * s[0] + kz * dl[0]) as isize - p[0] as isize;
                        let yy = (oy * s[1] + ky * dl[1]) as isize - p[1] as isize;
                        let xx = (ox * s[2] + kx * dl[2]) as isize - p[2] as isize;
                        if let Some(v) = at(n, ch, z, yy, xx) {
                            sum += v;
                            cells.push(flat(n, ch, z, yy, xx));
                            if best.is_none_or(|(bv, _)| v > bv) {
                                best = Some((v, flat(n, ch, z, yy, xx)));
                            }
                        }
                    }
                    if is_max {
                        let (v, i) = best.unwrap();
                        want_y.push(v);
                        want_dx[i] += 2.0 * v;
                    } else {
                        // Padding counts in the denominator (PyTorch's count_include_pad).
                        let v = sum / (k[0] * k[1] * k[2]) as f32;
                        want_y.push(v);
                        for i in cells {
                            want_dx[i] += 2.0 * v / (k[0] * k[1] * k[2]) as f32;
                        }
                    }
                }
            }
        }
        for (what, ours, want) in [("y", &ys, &want_y), ("dx", &dx, &want_dx)] {
            let worst = ours
                .iter()
                .zip(want.iter())
                .map(|(a, b)| (a - b).abs())
                .fold(0f32, f32::max);
            assert!(
                worst < 1e-5,
                "{config:?} max={is_max} {what}: max |diff| {worst}"
            );
        }
    }
}

#[test]
fn max_pool1d_halves() {
    let device = cpu();
    let x = Tensor::<3>::from_data(
        TensorData::new(vec![1f32, 5., 2., 0., 3., 4.], [1, 1, 6]),
        &device,
    );
    let y = MaxPool1d::new(&PoolConfig::new([2])).unwrap().forward(x);
    assert_eq!(
        y.into_data().try_into_vec::<f32>().unwrap(),
        vec![5., 2., 4.]
    );
}
