//! Colour preservation by luminance transfer (Gatys et al. 2016, "Preserving color in neural
//! artistic style transfer"): the result keeps its own luminance and takes the content's
//! chrominance, as neural-style's `-original_colors 1` does.

use likeness_nn::image::Image;

/// BT.601 luma weights of R, G, B (the full-range Y'CbCr of JPEG).
const LUMA: [f32; 3] = [0.299, 0.587, 0.114];
/// Cb = (B − Y)·CB_SCALE and Cr = (R − Y)·CR_SCALE: BT.601's 0.5/(1 − 0.114) and 0.5/(1 − 0.299).
const CB_SCALE: f32 = 0.564;
/// See [`CB_SCALE`].
const CR_SCALE: f32 = 0.713;

/// `generated`'s luminance with `content`'s chrominance (`content` is resized to fit).
pub fn preserve_colors(content: &Image, generated: &Image) -> Image {
    let content = if (content.width, content.height) == (generated.width, generated.height) {
        content.clone()
    } else {
        content.resize(generated.width, generated.height)
    };
    let mut pixels = Vec::with_capacity(generated.pixels.len());
    for (g, c) in generated
        .pixels
        .chunks_exact(3)
        .zip(content.pixels.chunks_exact(3))
    {
        let luma = |p: &[u8]| LUMA[0] * p[0] as f32 + LUMA[1] * p[1] as f32 + LUMA[2] * p[2] as f32;
        let y = luma(g);
        let yc = luma(c);
        let cb = (c[2] as f32 - yc) * CB_SCALE;
        let cr = (c[0] as f32 - yc) * CR_SCALE;
        let r = y + cr / CR_SCALE;
        let b = y + cb / CB_SCALE;
        let gg = (y - LUMA[0] * r - LUMA[2] * b) / LUMA[1];
        for v in [r, gg, b] {
            pixels.push(v.round().clamp(0.0, 255.0) as u8);
        }
    }
    Image {
        width: generated.width,
        height: generated.height,
        pixels,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_luminance_of_one_and_colour_of_the_other() {
        // A grey result over a red content: the red hue comes back at the grey's brightness.
        let content = Image::from_rgb(1, 1, vec![200, 40, 40]).unwrap();
        let grey = Image::from_rgb(1, 1, vec![100, 100, 100]).unwrap();
        let out = preserve_colors(&content, &grey);
        let p = out.pixel(0, 0);
        assert!(p[0] > p[1] && p[0] > p[2] && p[1] == p[2], "{p:?}");
        let y = LUMA[0] * p[0] as f32 + LUMA[1] * p[1] as f32 + LUMA[2] * p[2] as f32;
        assert!((y - 100.0).abs() < 1.0, "{y}");
        // Identity when both are the same image.
        assert_eq!(preserve_colors(&content, &content), content);
    }
}
