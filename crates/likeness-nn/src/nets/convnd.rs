//! 1D and 3D convolution and pooling layers: the lecture's "same layers on signals and volumes".
//!
//! Convolutions wrap burn's `conv1d`/`conv3d` (forward and backward are burn's, checked against
//! PyTorch in `tests/conv_nd.rs`). burn 0.22 has no 3D max or average pooling, so
//! [`MaxPool3d`]/[`AvgPool3d`] are built from its 2D and 1D pooling: both are separable (a max
//! or a zero-padded mean over a box is the same reduction over H×W and then over D), and burn's
//! autodiff differentiates each stage.
//!
//! Tensors are channels-first: `[batch, channels, length]` and `[batch, channels, D, H, W]`.
//! Weights are PyTorch-style: `{prefix}.weight` `[out, in, k…]` and `{prefix}.bias` `[out]`.

use burn::module::{Module, Param};
use burn::tensor::module::{avg_pool1d, avg_pool2d, conv1d, conv3d, max_pool1d, max_pool2d};
use burn::tensor::ops::{AvgPoolOptions, ConvOptions, MaxPoolOptions};
use burn::tensor::{Device, Tensor, TensorData};

use crate::error::{NnError, Result};
use crate::rng::SplitMix64;
use crate::weights::WeightMap;

/// The builder methods both window geometries share (a macro, as the two structs differ in
/// their other fields).
macro_rules! window_builders {
    () => {
        pub fn with_stride(mut self, stride: [usize; N]) -> Self {
            self.stride = stride;
            self
        }

        pub fn with_padding(mut self, padding: [usize; N]) -> Self {
            self.padding = padding;
            self
        }

        pub fn with_dilation(mut self, dilation: [usize; N]) -> Self {
            self.dilation = dilation;
            self
        }
    };
}

/// The geometry of an N-dimensional convolution (N = 1 or 3 here).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConvConfig<const N: usize> {
    pub in_channels: usize,
    pub out_channels: usize,
    pub kernel: [usize; N],
    pub stride: [usize; N],
    /// Zeros added on both sides of each spatial dimension.
    pub padding: [usize; N],
    pub dilation: [usize; N],
}

/// A 1D convolution's geometry.
pub type Conv1dConfig = ConvConfig<1>;
/// A 3D convolution's geometry.
pub type Conv3dConfig = ConvConfig<3>;

impl<const N: usize> ConvConfig<N> {
    /// `out_channels` filters of size `kernel` over `in_channels`; stride 1, no padding.
    pub fn new(in_channels: usize, out_channels: usize, kernel: [usize; N]) -> Self {
        Self {
            in_channels,
            out_channels,
            kernel,
            stride: [1; N],
            padding: [0; N],
            dilation: [1; N],
        }
    }

    window_builders!();

    /// Checks what burn would otherwise panic on: zero sizes, strides or dilations.
    pub fn validate(&self) -> Result<()> {
        let zero = |v: &[usize]| v.contains(&0);
        if self.in_channels == 0
            || self.out_channels == 0
            || zero(&self.kernel)
            || zero(&self.stride)
            || zero(&self.dilation)
        {
            return Err(NnError::Mismatch(format!(
                "convolution {self:?}: channels, kernel, stride and dilation must be non-zero"
            )));
        }
        Ok(())
    }

    /// The output's spatial size for an input of spatial size `input`: the lecture's shape rule
    /// `⌊(n + 2p − d·(k − 1) − 1) / s⌋ + 1` per dimension (so 14 ∗ 5 → 10 with s = 1, p = 0).
    pub fn output_size(&self, input: [usize; N]) -> Result<[usize; N]> {
        self.validate()?;
        output_size(
            input,
            self.kernel,
            self.stride,
            self.padding,
            self.dilation,
            "convolution",
        )
    }

    /// The weight's shape `[out, in, k…]`.
    pub fn weight_shape(&self) -> Vec<usize> {
        let mut shape = vec![self.out_channels, self.in_channels];
        shape.extend(self.kernel);
        shape
    }

    fn fan_in(&self) -> usize {
        self.in_channels * self.kernel.iter().product::<usize>()
    }
}

fn output_size<const N: usize>(
    input: [usize; N],
    kernel: [usize; N],
    stride: [usize; N],
    padding: [usize; N],
    dilation: [usize; N],
    what: &str,
) -> Result<[usize; N]> {
    let mut out = [0; N];
    for i in 0..N {
        let span = dilation[i] * (kernel[i] - 1) + 1;
        let padded = input[i] + 2 * padding[i];
        if padded < span {
            return Err(NnError::Mismatch(format!(
                "{what}: input size {input:?} (padded by {padding:?}) is smaller than the \
                 kernel's span in dimension {i} ({span})"
            )));
        }
        out[i] = (padded - span) / stride[i] + 1;
    }
    Ok(out)
}

/// A spatial rank `N` together with its tensors' rank `D = N + 2` (batch and channels first);
/// stable Rust cannot write `N + 2` in a type, so the pair is spelled out and only the pairs
/// with [`RankOps`] exist as layers.
#[derive(Debug, Clone, Copy)]
pub struct Rank<const N: usize, const D: usize>;

/// burn's operations at one rank: what differs between the 1D and 3D layers.
pub trait RankOps<const N: usize, const D: usize> {
    /// The operation's name in error messages.
    const CONV: &'static str;

    fn conv(x: Tensor<D>, weight: Tensor<D>, bias: Tensor<1>, options: ConvOptions<N>)
    -> Tensor<D>;

    fn max_pool(x: Tensor<D>, window: &PoolConfig<N>) -> Tensor<D>;
}

impl RankOps<1, 3> for Rank<1, 3> {
    const CONV: &'static str = "conv1d";

    fn conv(
        x: Tensor<3>,
        weight: Tensor<3>,
        bias: Tensor<1>,
        options: ConvOptions<1>,
    ) -> Tensor<3> {
        conv1d(x, weight, Some(bias), options)
    }

    fn max_pool(x: Tensor<3>, window: &PoolConfig<1>) -> Tensor<3> {
        max_pool1d(x, window.max_options())
    }
}

impl RankOps<3, 5> for Rank<3, 5> {
    const CONV: &'static str = "conv3d";

    fn conv(
        x: Tensor<5>,
        weight: Tensor<5>,
        bias: Tensor<1>,
        options: ConvOptions<3>,
    ) -> Tensor<5> {
        conv3d(x, weight, Some(bias), options)
    }

    /// A 2D max pool over each depth slice, then a 1D max pool along depth.
    fn max_pool(x: Tensor<5>, window: &PoolConfig<3>) -> Tensor<5> {
        let (depth, plane) = window.split();
        separable_pool3d(
            x,
            |x| max_pool2d(x, plane.max_options()),
            |x| max_pool1d(x, depth.max_options()),
        )
    }
}

/// An N-dimensional convolution with bias: `[B, C_in, spatial…] → [B, C_out, spatial'…]`.
#[derive(Module, Debug)]
pub struct ConvNd<const N: usize, const D: usize> {
    pub weight: Param<Tensor<D>>,
    pub bias: Param<Tensor<1>>,
    stride: [usize; N],
    padding: [usize; N],
    dilation: [usize; N],
}

/// A 1D convolution with bias: `[B, C_in, L] → [B, C_out, L']`.
pub type Conv1d = ConvNd<1, 3>;
/// A 3D convolution with bias: `[B, C_in, D, H, W] → [B, C_out, D', H', W']`.
pub type Conv3d = ConvNd<3, 5>;

impl<const N: usize, const D: usize> ConvNd<N, D>
where
    Rank<N, D>: RankOps<N, D>,
{
    /// Fresh weights, Kaiming-uniform as PyTorch initialises (bound 1/√fan_in for weights and
    /// bias), from `seed` so training runs repeat exactly.
    pub fn init(config: &ConvConfig<N>, seed: u64, device: &Device) -> Result<Self> {
        config.validate()?;
        let (w, b) = kaiming_uniform(
            config.weight_shape(),
            config.out_channels,
            config.fan_in(),
            seed,
        );
        let shape: [usize; D] = shape_array(&config.weight_shape())?;
        Self::from_tensors(
            config,
            Tensor::from_data(TensorData::new(w, shape), device),
            Tensor::from_data(TensorData::new(b, [config.out_channels]), device),
        )
    }

    /// The layer with these weights `[out, in, k…]` and bias `[out]`.
    pub fn from_tensors(
        config: &ConvConfig<N>,
        weight: Tensor<D>,
        bias: Tensor<1>,
    ) -> Result<Self> {
        config.validate()?;
        let name = <Rank<N, D>>::CONV;
        check_shape(
            &format!("{name} weight"),
            &config.weight_shape(),
            &weight.dims(),
        )?;
        check_shape(
            &format!("{name} bias"),
            &[config.out_channels],
            &bias.dims(),
        )?;
        Ok(Self {
            weight: Param::from_tensor(weight),
            bias: Param::from_tensor(bias),
            stride: config.stride,
            padding: config.padding,
            dilation: config.dilation,
        })
    }

    /// The layer from `{prefix}.weight` and `{prefix}.bias` of `weights`.
    pub fn load(
        config: &ConvConfig<N>,
        weights: &WeightMap,
        prefix: &str,
        device: &Device,
    ) -> Result<Self> {
        config.validate()?;
        let shape: [usize; D] = shape_array(&config.weight_shape())?;
        Self::from_tensors(
            config,
            weights.tensor(&format!("{prefix}.weight"), shape, device)?,
            weights.tensor(&format!("{prefix}.bias"), [config.out_channels], device)?,
        )
    }

    pub fn forward(&self, x: Tensor<D>) -> Tensor<D> {
        <Rank<N, D>>::conv(
            x,
            self.weight.val(),
            self.bias.val(),
            ConvOptions::new(self.stride, self.padding, self.dilation, 1),
        )
    }
}

/// The geometry of an N-dimensional pooling window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolConfig<const N: usize> {
    pub kernel: [usize; N],
    /// Defaults to the kernel (non-overlapping windows).
    pub stride: [usize; N],
    /// Implicit −∞ (max) or zeros (average) on both sides; at most half the kernel.
    pub padding: [usize; N],
    /// Max pooling only.
    pub dilation: [usize; N],
}

impl<const N: usize> PoolConfig<N> {
    /// Non-overlapping windows of size `kernel`.
    pub fn new(kernel: [usize; N]) -> Self {
        Self {
            kernel,
            stride: kernel,
            padding: [0; N],
            dilation: [1; N],
        }
    }

    window_builders!();

    /// Checks what burn would otherwise panic on, with PyTorch's rule that padding is at most
    /// half the kernel (so every window sees at least one real value).
    pub fn validate(&self) -> Result<()> {
        let bad_zero =
            self.kernel.contains(&0) || self.stride.contains(&0) || self.dilation.contains(&0);
        let bad_pad = (0..N).any(|i| 2 * self.padding[i] > self.kernel[i]);
        if bad_zero || bad_pad {
            return Err(NnError::Mismatch(format!(
                "pooling {self:?}: kernel, stride and dilation must be non-zero and padding at \
                 most half the kernel"
            )));
        }
        Ok(())
    }

    /// The output's spatial size for an input of spatial size `input` (floor mode).
    pub fn output_size(&self, input: [usize; N]) -> Result<[usize; N]> {
        self.validate()?;
        output_size(
            input,
            self.kernel,
            self.stride,
            self.padding,
            self.dilation,
            "pooling",
        )
    }

    fn max_options(&self) -> MaxPoolOptions<N> {
        MaxPoolOptions::new(self.kernel)
            .with_stride(self.stride)
            .with_padding(self.padding)
            .with_dilation(self.dilation)
    }

    fn avg_options(&self) -> AvgPoolOptions<N> {
        AvgPoolOptions::new(self.kernel)
            .with_stride(self.stride)
            .with_padding(self.padding)
    }
}

impl PoolConfig<3> {
    /// The depth window and the H×W window of a separable 3D pool.
    fn split(&self) -> (PoolConfig<1>, PoolConfig<2>) {
        let [k, s, p, d] = [self.kernel, self.stride, self.padding, self.dilation];
        let depth = PoolConfig {
            kernel: [k[0]],
            stride: [s[0]],
            padding: [p[0]],
            dilation: [d[0]],
        };
        let plane = PoolConfig {
            kernel: [k[1], k[2]],
            stride: [s[1], s[2]],
            padding: [p[1], p[2]],
            dilation: [d[1], d[2]],
        };
        (depth, plane)
    }
}

/// Max pooling over `[B, C, spatial…]`; in 3D a 2D max pool over each depth slice, then a 1D
/// max pool along depth (burn has no 3D max pool).
#[derive(Module, Debug)]
pub struct MaxPoolNd<const N: usize, const D: usize> {
    #[module(skip)]
    window: PoolConfig<N>,
}

/// Max pooling over `[B, C, L]`.
pub type MaxPool1d = MaxPoolNd<1, 3>;
/// Max pooling over `[B, C, D, H, W]`.
pub type MaxPool3d = MaxPoolNd<3, 5>;

impl<const N: usize, const D: usize> MaxPoolNd<N, D>
where
    Rank<N, D>: RankOps<N, D>,
{
    pub fn new(config: &PoolConfig<N>) -> Result<Self> {
        config.validate()?;
        Ok(Self { window: *config })
    }

    pub fn forward(&self, x: Tensor<D>) -> Tensor<D> {
        <Rank<N, D>>::max_pool(x, &self.window)
    }
}

/// Average pooling over `[B, C, D, H, W]`, padding counted as zeros in the mean (PyTorch's
/// default `count_include_pad`), which keeps the mean separable.
#[derive(Module, Debug)]
pub struct AvgPool3d {
    #[module(skip)]
    window: PoolConfig<3>,
}

impl AvgPool3d {
    /// Fails for a dilated window: average pooling has none.
    pub fn new(config: &PoolConfig<3>) -> Result<Self> {
        config.validate()?;
        if config.dilation != [1; 3] {
            return Err(NnError::Mismatch(
                "average pooling has no dilation".to_string(),
            ));
        }
        Ok(Self { window: *config })
    }

    pub fn forward(&self, x: Tensor<5>) -> Tensor<5> {
        let (depth, plane) = self.window.split();
        separable_pool3d(
            x,
            |x| avg_pool2d(x, plane.avg_options()),
            |x| avg_pool1d(x, depth.avg_options()),
        )
    }
}

/// Pools H×W with `plane` (on `[B, C·D, H, W]`), then D with `depth` (on `[B, C·H'·W', D]`).
fn separable_pool3d(
    x: Tensor<5>,
    plane: impl Fn(Tensor<4>) -> Tensor<4>,
    depth: impl Fn(Tensor<3>) -> Tensor<3>,
) -> Tensor<5> {
    let [b, c, d, h, w] = x.dims();
    let x = plane(x.reshape([b, c * d, h, w]));
    let [_, _, h2, w2] = x.dims();
    let x = x
        .reshape([b, c, d, h2 * w2])
        .swap_dims(2, 3)
        .reshape([b, c * h2 * w2, d]);
    let x = depth(x);
    let [_, _, d2] = x.dims();
    x.reshape([b, c, h2 * w2, d2])
        .swap_dims(2, 3)
        .reshape([b, c, d2, h2, w2])
}

fn check_shape(what: &str, expected: &[usize], got: &[usize]) -> Result<()> {
    if expected != got {
        return Err(NnError::Shape {
            name: what.to_string(),
            expected: expected.to_vec(),
            got: got.to_vec(),
        });
    }
    Ok(())
}

fn shape_array<const D: usize>(shape: &[usize]) -> Result<[usize; D]> {
    shape
        .try_into()
        .map_err(|_| NnError::Mismatch(format!("shape {shape:?} does not have {D} dimensions")))
}

/// PyTorch's default convolution initialisation (`kaiming_uniform_(a=√5)` for the weight,
/// which is U(±1/√fan_in), and U(±1/√fan_in) for the bias), from a [`SplitMix64`] stream.
fn kaiming_uniform(
    weight_shape: Vec<usize>,
    out_channels: usize,
    fan_in: usize,
    seed: u64,
) -> (Vec<f32>, Vec<f32>) {
    let bound = 1.0 / (fan_in as f64).sqrt();
    let mut rng = SplitMix64::new(seed);
    let mut next = move || ((2.0 * rng.unit() - 1.0) * bound) as f32;
    let n: usize = weight_shape.iter().product();
    let w = (0..n).map(|_| next()).collect();
    let b = (0..out_channels).map(|_| next()).collect();
    (w, b)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shape_rule_and_validation() {
        let c = Conv1dConfig::new(1, 16, [5]);
        assert_eq!(c.output_size([14]).unwrap(), [10]);
        let c = Conv3dConfig::new(1, 16, [5, 5, 5]);
        assert_eq!(c.output_size([14, 14, 14]).unwrap(), [10, 10, 10]);
        assert!(Conv1dConfig::new(1, 16, [5]).output_size([4]).is_err());
        assert!(Conv1dConfig::new(1, 16, [0]).validate().is_err());
        assert!(PoolConfig::new([2]).with_padding([2]).validate().is_err());
        assert_eq!(
            PoolConfig::new([2, 2, 2]).output_size([16, 9, 8]).unwrap(),
            [8, 4, 4]
        );
    }
}
