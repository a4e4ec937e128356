//! Placing a region of a photo in a square network input (scaled to fit, padded) and mapping
//! the network's pixels back; the resampling that makes the inputs.

use likeness_nn::image::Image;

use crate::error::{FaceError, Result};

/// A rectangle of whole pixels inside an image.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Region {
    pub x: u32,
    pub y: u32,
    pub width: u32,
    pub height: u32,
}

impl Region {
    /// The whole of an image.
    pub fn whole(image: &Image) -> Region {
        Region {
            x: 0,
            y: 0,
            width: image.width,
            height: image.height,
        }
    }
}

/// How a region of a photo was placed in a square network input: scaled by `scale`, then
/// offset by the padding. Maps input pixels back to photo pixels.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Letterbox {
    pub region: Region,
    /// Side of the square input.
    pub size: u32,
    /// Size of the scaled region inside the input.
    pub scaled_width: u32,
    pub scaled_height: u32,
    /// Left and top padding, in input pixels.
    pub pad_x: u32,
    pub pad_y: u32,
}

impl Letterbox {
    /// Fits `region` into a `size`² square, centred, keeping its aspect.
    pub fn new(region: Region, size: u32) -> Letterbox {
        let long = region.width.max(region.height).max(1) as f64;
        let fit = |side: u32| ((side as f64 * size as f64 / long).round() as u32).clamp(1, size);
        let (scaled_width, scaled_height) = (fit(region.width), fit(region.height));
        Letterbox {
            region,
            size,
            scaled_width,
            scaled_height,
            pad_x: (size - scaled_width) / 2,
            pad_y: (size - scaled_height) / 2,
        }
    }

    /// A point of the network input, in photo pixels.
    pub fn to_image(&self, x: f32, y: f32) -> (f32, f32) {
        let sx = self.region.width as f32 / self.scaled_width as f32;
        let sy = self.region.height as f32 / self.scaled_height as f32;
        (
            self.region.x as f32 + (x - self.pad_x as f32) * sx,
            self.region.y as f32 + (y - self.pad_y as f32) * sy,
        )
    }

    /// The square of `side` photo pixels centred on `centre`, seen in a `size`² input: the part
    /// inside the `width`×`height` photo is scaled into place and the rest is black padding.
    /// `None` when the square misses the photo or is not a finite, positive size.
    pub fn around(
        width: u32,
        height: u32,
        centre: (f32, f32),
        side: f32,
        size: u32,
    ) -> Option<Letterbox> {
        if !(side.is_finite() && centre.0.is_finite() && centre.1.is_finite()) || side < 1.0 {
            return None;
        }
        // whole photo pixels, in f64 so that no size a network can report overflows
        let side = (side as f64).round();
        let x0 = (centre.0 as f64 - side / 2.0).round();
        let y0 = (centre.1 as f64 - side / 2.0).round();
        let (rx0, ry0) = (x0.max(0.0), y0.max(0.0));
        let (rx1, ry1) = (
            (x0 + side).min(width as f64),
            (y0 + side).min(height as f64),
        );
        if rx1 <= rx0 || ry1 <= ry0 || size == 0 {
            return None;
        }
        // input pixel of a photo offset from the square's corner
        let at = |v: f64| ((v * size as f64 / side).round() as u32).min(size);
        let (pad_x, pad_y) = (at(rx0 - x0).min(size - 1), at(ry0 - y0).min(size - 1));
        let scaled_width = at(rx1 - x0).saturating_sub(pad_x).clamp(1, size - pad_x);
        let scaled_height = at(ry1 - y0).saturating_sub(pad_y).clamp(1, size - pad_y);
        Some(Letterbox {
            // within the photo: 0 ≤ rx0 < rx1 ≤ width, all whole numbers
            region: Region {
                x: rx0 as u32,
                y: ry0 as u32,
                width: (rx1 - rx0) as u32,
                height: (ry1 - ry0) as u32,
            },
            size,
            scaled_width,
            scaled_height,
            pad_x,
            pad_y,
        })
    }

    /// Builds the network input: the region resampled (antialiased bilinear) and padded black.
    pub fn apply(&self, image: &Image) -> Result<Image> {
        let scaled = resample(image, self.region, self.scaled_width, self.scaled_height)?;
        let size = self.size as usize;
        let mut pixels = vec![0u8; size * size * 3];
        let row = self.scaled_width as usize * 3;
        for y in 0..self.scaled_height as usize {
            let dst = ((y + self.pad_y as usize) * size + self.pad_x as usize) * 3;
            pixels[dst..dst + row].copy_from_slice(&scaled.pixels[y * row..(y + 1) * row]);
        }
        Ok(Image::from_rgb(self.size, self.size, pixels)?)
    }
}

/// Resamples `region` of `image` to `width`×`height` with a triangle (bilinear) filter whose
/// support widens with the reduction, as PIL's `Image.resize(BILINEAR)` does, so that strong
/// reductions average pixels instead of skipping them. (The BlazeFace reference inputs were
/// made with PIL's resize.)
pub fn resample(image: &Image, region: Region, width: u32, height: u32) -> Result<Image> {
    if width == 0
        || height == 0
        || region.width == 0
        || region.height == 0
        || region.x as u64 + region.width as u64 > image.width as u64
        || region.y as u64 + region.height as u64 > image.height as u64
    {
        return Err(FaceError::Invalid(format!(
            "cannot resample {region:?} of a {}x{} image to {width}x{height}",
            image.width, image.height
        )));
    }
    let xs = filter_taps(region.width, width);
    let ys = filter_taps(region.height, height);
    // Horizontal pass over every row of the region, then the vertical pass. Each output value
    // sums its taps in order from zero, however the loops are arranged: the same bits.
    let (row_len, stride) = (width as usize * 3, image.width as usize);
    let mut tmp = vec![0f32; region.height as usize * row_len];
    // one source row as floats (exact), converted once rather than once per tap
    let src_len = region.width as usize * 3;
    let mut src = vec![0f32; src_len];
    for (y, dst) in tmp.chunks_exact_mut(row_len).enumerate() {
        let first = ((region.y as usize + y) * stride + region.x as usize) * 3;
        for (s, &p) in src.iter_mut().zip(&image.pixels[first..first + src_len]) {
            *s = p as f32;
        }
        for ((start, weights), out) in xs.iter().zip(dst.chunks_exact_mut(3)) {
            let mut acc = [0f32; 3];
            for (w, p) in weights.iter().zip(src[start * 3..].chunks_exact(3)) {
                acc[0] += w * p[0];
                acc[1] += w * p[1];
                acc[2] += w * p[2];
            }
            // rounded to bytes between the passes, as PIL does
            for (o, a) in out.iter_mut().zip(acc) {
                *o = a.round().clamp(0.0, 255.0);
            }
        }
    }
    // the vertical pass a whole output row at a time: contiguous, so it vectorises
    let mut out = vec![0u8; row_len * height as usize];
    let mut acc = vec![0f32; row_len];
    for ((start, weights), dst) in ys.iter().zip(out.chunks_exact_mut(row_len)) {
        acc.fill(0.0);
        for (w, row) in weights
            .iter()
            .zip(tmp[start * row_len..].chunks_exact(row_len))
        {
            for (a, &p) in acc.iter_mut().zip(row) {
                *a += w * p;
            }
        }
        for (o, &a) in dst.iter_mut().zip(&acc) {
            *o = a.round().clamp(0.0, 255.0) as u8;
        }
    }
    Ok(Image::from_rgb(width, height, out)?)
}

/// For each output sample: first source index and normalised triangle-filter weights.
pub(super) fn filter_taps(src: u32, dst: u32) -> Vec<(usize, Vec<f32>)> {
    let scale = src as f64 / dst as f64;
    let support = scale.max(1.0);
    (0..dst)
        .map(|i| {
            let centre = (i as f64 + 0.5) * scale;
            let lo = ((centre - support + 0.5).floor().max(0.0)) as usize;
            let hi = ((centre + support + 0.5).floor() as usize)
                .min(src as usize)
                .max(lo + 1);
            let mut w: Vec<f64> = (lo..hi)
                .map(|j| (1.0 - ((j as f64 + 0.5 - centre) / support).abs()).max(0.0))
                .collect();
            let total: f64 = w.iter().sum();
            if total > 0.0 {
                w.iter_mut().for_each(|v| *v /= total);
            } else {
                w = vec![0.0; hi - lo];
                w[0] = 1.0;
            }
            (lo, w.into_iter().map(|v| v as f32).collect())
        })
        .collect()
}
