//! How much memory a transfer needs, checked before it starts so that a too-large request is
//! refused with a size that fits instead of sending the machine into swap.

use likeness_nn::nets::vgg::{VggLayer, VggVariant};

use crate::optim::Lbfgs;

/// Output channels of each VGG block's convolutions.
const BLOCK_WIDTHS: [usize; 5] = [64, 128, 256, 512, 512];
/// Peak bytes per conv-output value of an evaluation by the direct evaluator (ReLU and pool
/// outputs kept for the backward pass, gradient planes, reused buffers). Measured with
/// `likeness style` (5 L-BFGS iterations, so little history) at 256, 512 and 768 px: peak RSS
/// 436, 909 and 1695 MiB, i.e. 9.3 bytes per value over ~280 MiB; 10.5 leaves a margin.
const BYTES_PER_ACTIVATION: f64 = 10.5;
/// What does not grow with the image: the weights (the loaded map, burn's module and the
/// direct evaluator's two layouts: VGG-16's 14.7 M weights are 59 MB each, VGG-19's 80 MB) and
/// the runtime; ~280 MiB measured as above.
const BASE_BYTES: u64 = 320 << 20;

/// Estimated peak bytes of one transfer at `width`×`height` through the deepest of `layers`,
/// with an L-BFGS history of `history` pairs (0 for Adam).
pub fn estimate_bytes(
    width: usize,
    height: usize,
    variant: VggVariant,
    layers: &[VggLayer],
    history: usize,
) -> u64 {
    let deepest_block = layers
        .iter()
        .map(|l| match *l {
            VggLayer::Conv(b, _) | VggLayer::Relu(b, _) | VggLayer::Pool(b) => b as usize,
        })
        .max()
        .unwrap_or(5)
        .clamp(1, 5);
    let per_block = variant.convs_per_block();
    let mut values = 0usize;
    for b in 0..deepest_block {
        let (h, w) = (height >> b, width >> b);
        values += per_block[b] * BLOCK_WIDTHS[b] * h * w;
    }
    let activations = (values as f64 * BYTES_PER_ACTIVATION) as u64;
    let optimiser = Lbfgs::memory_bytes(3 * width * height, history.max(2));
    BASE_BYTES + activations + optimiser
}

/// Bytes the system can give without swapping (`MemAvailable` of /proc/meminfo), if known.
pub fn available_bytes() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = text.lines().find(|l| l.starts_with("MemAvailable:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

/// The largest longest side (a multiple of 16) whose estimate fits in `limit`, for an image
/// of aspect `width`:`height` now estimated at `needed` bytes; every term but the base grows
/// with the pixel count.
pub fn longest_side_that_fits(width: usize, height: usize, needed: u64, limit: u64) -> usize {
    let longest = width.max(height) as f64;
    let scalable = needed.saturating_sub(BASE_BYTES).max(1) as f64;
    let room = limit.saturating_sub(BASE_BYTES) as f64;
    let side = longest * (room / scalable).sqrt();
    ((side as usize) / 16 * 16).max(16)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn estimate_grows_with_area_and_the_fitting_size_fits() {
        let layers = ["relu1_1", "relu5_1"].map(|l| l.parse().unwrap());
        let small = estimate_bytes(256, 256, VggVariant::Vgg16, &layers, 100);
        let big = estimate_bytes(512, 512, VggVariant::Vgg16, &layers, 100);
        let scal = |b: u64| (b - BASE_BYTES) as f64;
        assert!((scal(big) / scal(small) - 4.0).abs() < 0.05);
        let limit = small + (big - small) / 2;
        let side = longest_side_that_fits(512, 512, big, limit);
        assert!(side > 256 && side < 512, "{side}");
        assert!(estimate_bytes(side, side, VggVariant::Vgg16, &layers, 100) <= limit);
    }
}
