//! A small 1D ConvNet for ECG windows: three conv1d–ReLU–max-pool stages and a two-layer head.

use burn::module::Module;
use burn::nn::Linear;
use burn::tensor::activation::relu;
use burn::tensor::{Device, Tensor};
use likeness_nn::nets::convnd::{Conv1d, Conv1dConfig, MaxPool1d, PoolConfig};

use crate::train::{Classifier, dense};
use crate::{Error, Result};
use likeness_nn::rng::SplitMix64;

/// Pooling after each conv stage; their product must divide the window length.
const POOLS: [usize; 3] = [4, 3, 3];

/// The network's sizes. Input `[batch, 1, length]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EcgNetConfig {
    /// Samples per window (divisible by 36, the pools' product).
    pub length: usize,
    pub classes: usize,
    /// Filters of the first conv layer; the later ones have twice as many.
    pub width: usize,
    /// Units of the hidden dense layer.
    pub hidden: usize,
}

/// conv1d 9 → pool 4 → conv1d 7 → pool 3 → conv1d 5 → pool 3 (each conv "same"-padded and
/// ReLU'd) → flatten → dense → ReLU → dense. The flatten keeps where things happen in the
/// window, which the beat's timing relative to its neighbours needs.
#[derive(Module, Debug)]
pub struct EcgNet {
    conv1: Conv1d,
    conv2: Conv1d,
    conv3: Conv1d,
    pool1: MaxPool1d,
    pool2: MaxPool1d,
    pool3: MaxPool1d,
    hidden: Linear,
    head: Linear,
}

impl EcgNet {
    /// Fresh weights drawn from `seed`.
    pub fn init(config: &EcgNetConfig, seed: u64, device: &Device) -> Result<Self> {
        let stride: usize = POOLS.iter().product();
        if config.length == 0 || !config.length.is_multiple_of(stride) || config.width == 0 {
            return Err(Error::Options(format!(
                "window length {} must be a positive multiple of {stride}, width positive",
                config.length
            )));
        }
        let mut rng = SplitMix64::new(seed);
        let w = config.width;
        let mut conv = |c_in: usize, c_out: usize, k: usize| {
            Conv1d::init(
                &Conv1dConfig::new(c_in, c_out, [k]).with_padding([k / 2]),
                rng.next_u64(),
                device,
            )
        };
        let (conv1, conv2, conv3) = (conv(1, w, 9)?, conv(w, 2 * w, 7)?, conv(2 * w, 2 * w, 5)?);
        let pool = |k: usize| MaxPool1d::new(&PoolConfig::new([k]));
        let flat = 2 * w * config.length / stride;
        Ok(Self {
            conv1,
            conv2,
            conv3,
            pool1: pool(POOLS[0])?,
            pool2: pool(POOLS[1])?,
            pool3: pool(POOLS[2])?,
            hidden: dense(flat, config.hidden, &mut rng, device),
            head: dense(config.hidden, config.classes, &mut rng, device),
        })
    }

    pub fn forward(&self, x: Tensor<3>) -> Tensor<2> {
        let x = self.pool1.forward(relu(self.conv1.forward(x)));
        let x = self.pool2.forward(relu(self.conv2.forward(x)));
        let x = self.pool3.forward(relu(self.conv3.forward(x)));
        self.head
            .forward(relu(self.hidden.forward(x.flatten(1, 2))))
    }
}

impl Classifier<3> for EcgNet {
    fn logits(&self, x: Tensor<3>) -> Tensor<2> {
        self.forward(x)
    }
}
