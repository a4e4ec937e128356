//! A small 3D ConvNet for 16-frame clips: two conv3d–ReLU–max-pool stages and a linear head.

use burn::module::Module;
use burn::nn::Linear;
use burn::tensor::activation::relu;
use burn::tensor::{Device, Tensor};
use likeness_nn::nets::convnd::{Conv3d, Conv3dConfig, MaxPool3d, PoolConfig};

use crate::Result;
use crate::train::{Classifier, dense};
use likeness_nn::rng::SplitMix64;

/// The network's sizes. Input `[batch, 1, frames, side, side]`; frames and side divisible by 4.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClipNetConfig {
    pub frames: usize,
    pub side: usize,
    pub classes: usize,
    /// Filters of the first conv layer; the second has twice as many.
    pub width: usize,
}

/// conv3d 3³ (pad 1) → ReLU → max-pool 2³ → conv3d 3³ (pad 1) → ReLU → max-pool 2³ → linear.
#[derive(Module, Debug)]
pub struct ClipNet {
    conv1: Conv3d,
    conv2: Conv3d,
    pool: MaxPool3d,
    head: Linear,
}

impl ClipNet {
    /// Fresh weights drawn from `seed`.
    pub fn init(config: &ClipNetConfig, seed: u64, device: &Device) -> Result<Self> {
        let mut rng = SplitMix64::new(seed);
        let w = config.width;
        let conv1 = Conv3d::init(
            &Conv3dConfig::new(1, w, [3; 3]).with_padding([1; 3]),
            rng.next_u64(),
            device,
        )?;
        let conv2 = Conv3d::init(
            &Conv3dConfig::new(w, 2 * w, [3; 3]).with_padding([1; 3]),
            rng.next_u64(),
            device,
        )?;
        let flat = 2 * w * (config.frames / 4) * (config.side / 4) * (config.side / 4);
        Ok(Self {
            conv1,
            conv2,
            pool: MaxPool3d::new(&PoolConfig::new([2; 3]))?,
            head: dense(flat, config.classes, &mut rng, device),
        })
    }

    pub fn forward(&self, x: Tensor<5>) -> Tensor<2> {
        let x = self.pool.forward(relu(self.conv1.forward(x)));
        let x = self.pool.forward(relu(self.conv2.forward(x)));
        self.head.forward(x.flatten(1, 4))
    }
}

impl Classifier<5> for ClipNet {
    fn logits(&self, x: Tensor<5>) -> Tensor<2> {
        self.forward(x)
    }
}
