//! Drawing on images: what people look at (boxes on faces, curves, triptychs, contact sheets).
//!
//! Deliberately small: solid colours, 1-pixel primitives with a thickness, and a built-in 5×7
//! bitmap font (ASCII; lower case is drawn as upper case), so no font files are needed.

use crate::image::Image;

/// An RGB colour.
pub type Rgb = [u8; 3];

/// Colours used across Likeness's pictures.
pub const WHITE: Rgb = [255, 255, 255];
pub const BLACK: Rgb = [0, 0, 0];
pub const GREEN: Rgb = [40, 220, 90];
pub const RED: Rgb = [235, 60, 50];
pub const BLUE: Rgb = [60, 120, 235];
pub const YELLOW: Rgb = [250, 210, 40];
pub const GREY: Rgb = [128, 128, 128];

/// Width and height of one glyph cell of the built-in font, in font pixels (5×7 glyph + 1 gap).
pub const GLYPH_W: u32 = 6;
pub const GLYPH_H: u32 = 8;

/// A `width`×`height` image filled with `color`.
pub fn canvas(width: u32, height: u32, color: Rgb) -> Image {
    let n = width as usize * height as usize;
    Image {
        width: width.max(1),
        height: height.max(1),
        pixels: color.iter().copied().cycle().take(n.max(1) * 3).collect(),
    }
}

/// Sets one pixel; coordinates outside the image are ignored.
pub fn put(img: &mut Image, x: i64, y: i64, color: Rgb) {
    if x >= 0 && y >= 0 && (x as u32) < img.width && (y as u32) < img.height {
        let i = (y as usize * img.width as usize + x as usize) * 3;
        img.pixels[i..i + 3].copy_from_slice(&color);
    }
}

/// Fills the rectangle [x0, x1) × [y0, y1), clipped to the image.
pub fn fill_rect(img: &mut Image, x0: i64, y0: i64, x1: i64, y1: i64, color: Rgb) {
    let (x0, x1) = (x0.max(0), x1.min(img.width as i64));
    let (y0, y1) = (y0.max(0), y1.min(img.height as i64));
    for y in y0..y1 {
        for x in x0..x1 {
            put(img, x, y, color);
        }
    }
}

/// Outlines the rectangle with corners (x0, y0) and (x1, y1), `thickness` pixels inwards.
pub fn rect(img: &mut Image, x0: f32, y0: f32, x1: f32, y1: f32, color: Rgb, thickness: u32) {
    let (x0, y0, x1, y1) = (
        x0.round() as i64,
        y0.round() as i64,
        x1.round() as i64,
        y1.round() as i64,
    );
    let t = thickness.max(1) as i64;
    fill_rect(img, x0, y0, x1 + 1, y0 + t, color);
    fill_rect(img, x0, y1 + 1 - t, x1 + 1, y1 + 1, color);
    fill_rect(img, x0, y0, x0 + t, y1 + 1, color);
    fill_rect(img, x1 + 1 - t, y0, x1 + 1, y1 + 1, color);
}

/// A filled disc of radius `r` centred on (x, y).
pub fn dot(img: &mut Image, x: f32, y: f32, r: f32, color: Rgb) {
    let (cx, cy) = (x.round() as i64, y.round() as i64);
    let ri = r.ceil() as i64;
    for dy in -ri..=ri {
        for dx in -ri..=ri {
            if (dx * dx + dy * dy) as f32 <= r * r {
                put(img, cx + dx, cy + dy, color);
            }
        }
    }
}

/// A straight line from (x0, y0) to (x1, y1), `thickness` pixels wide.
pub fn line(img: &mut Image, x0: f32, y0: f32, x1: f32, y1: f32, color: Rgb, thickness: u32) {
    let steps = (x1 - x0).abs().max((y1 - y0).abs()).ceil().max(1.0) as usize;
    let r = (thickness.max(1) as f32 - 1.0) / 2.0;
    for i in 0..=steps {
        let t = i as f32 / steps as f32;
        let (x, y) = (x0 + (x1 - x0) * t, y0 + (y1 - y0) * t);
        if r < 0.5 {
            put(img, x.round() as i64, y.round() as i64, color);
        } else {
            dot(img, x, y, r, color);
        }
    }
}

/// Size in pixels of `text` drawn at `scale`.
pub fn text_size(text: &str, scale: u32) -> (u32, u32) {
    let scale = scale.max(1);
    (
        text.chars().count() as u32 * GLYPH_W * scale,
        GLYPH_H * scale,
    )
}

/// Draws `text` with its top-left corner at (x, y), each font pixel `scale`×`scale`.
pub fn text(img: &mut Image, x: i64, y: i64, text: &str, color: Rgb, scale: u32) {
    let s = scale.max(1) as i64;
    for (k, ch) in text.chars().enumerate() {
        let rows = glyph(ch);
        let gx = x + k as i64 * GLYPH_W as i64 * s;
        for (row, bits) in rows.iter().enumerate() {
            for col in 0..5 {
                if bits & (0b10000 >> col) != 0 {
                    fill_rect(
                        img,
                        gx + col * s,
                        y + row as i64 * s,
                        gx + (col + 1) * s,
                        y + (row as i64 + 1) * s,
                        color,
                    );
                }
            }
        }
    }
}

/// Text on a filled background box (a label), clipped to stay inside the image when possible.
pub fn label(img: &mut Image, x: i64, y: i64, s: &str, fg: Rgb, bg: Rgb, scale: u32) {
    let (w, h) = text_size(s, scale);
    let pad = scale.max(1) as i64;
    let x = x.clamp(0, (img.width as i64 - w as i64 - 2 * pad).max(0));
    let y = y.clamp(0, (img.height as i64 - h as i64 - 2 * pad).max(0));
    fill_rect(
        img,
        x,
        y,
        x + w as i64 + 2 * pad,
        y + h as i64 + 2 * pad,
        bg,
    );
    text(img, x + pad, y + pad, s, fg, scale);
}

/// Copies `src` into `dst` with its top-left corner at (x, y), clipped.
pub fn paste(dst: &mut Image, src: &Image, x: i64, y: i64) {
    for sy in 0..src.height as i64 {
        let dy = y + sy;
        if dy < 0 || dy >= dst.height as i64 {
            continue;
        }
        for sx in 0..src.width as i64 {
            let p = src.pixel(sx as u32, sy as u32);
            put(dst, x + sx, dy, p);
        }
    }
}

/// Lays `images` out in a grid of `cols` columns, each cell as large as the largest image,
/// `gap` pixels apart on a `background`.
pub fn grid(images: &[Image], cols: usize, gap: u32, background: Rgb) -> Image {
    let cols = cols.max(1);
    let rows = images.len().div_ceil(cols).max(1);
    let cw = images.iter().map(|i| i.width).max().unwrap_or(1);
    let ch = images.iter().map(|i| i.height).max().unwrap_or(1);
    let w = cols as u32 * cw + (cols as u32 + 1) * gap;
    let h = rows as u32 * ch + (rows as u32 + 1) * gap;
    let mut out = canvas(w, h, background);
    for (k, img) in images.iter().enumerate() {
        let (c, r) = ((k % cols) as u32, (k / cols) as u32);
        paste(
            &mut out,
            img,
            (gap + c * (cw + gap)) as i64,
            (gap + r * (ch + gap)) as i64,
        );
    }
    out
}

/// `images` side by side, each scaled to `height` pixels high, with a caption under each.
pub fn captioned_row(images: &[(&Image, &str)], height: u32, background: Rgb) -> Image {
    let gap = 8u32;
    let scale = if height >= 256 { 2 } else { 1 };
    let caption_h = GLYPH_H * scale + 2 * gap;
    let scaled: Vec<Image> = images
        .iter()
        .map(|(img, _)| {
            let w = ((img.width as f32 * height as f32 / img.height as f32).round() as u32).max(1);
            img.resize(w, height)
        })
        .collect();
    let w = scaled.iter().map(|i| i.width + gap).sum::<u32>() + gap;
    let mut out = canvas(w, height + 2 * gap + caption_h, background);
    let mut x = gap as i64;
    for (img, (_, caption)) in scaled.iter().zip(images) {
        paste(&mut out, img, x, gap as i64);
        let (tw, _) = text_size(caption, scale);
        let tx = x + (img.width as i64 - tw as i64) / 2;
        text(
            &mut out,
            tx,
            (height + 2 * gap) as i64,
            caption,
            BLACK,
            scale,
        );
        x += (img.width + gap) as i64;
    }
    out
}

/// The 5×7 glyph of `ch`: 7 rows, the 5 low bits of each, most significant bit leftmost.
fn glyph(ch: char) -> [u8; 7] {
    match ch.to_ascii_uppercase() {
        ' ' => [0, 0, 0, 0, 0, 0, 0],
        '0' => [0x0E, 0x11, 0x13, 0x15, 0x19, 0x11, 0x0E],
        '1' => [0x04, 0x0C, 0x04, 0x04, 0x04, 0x04, 0x0E],
        '2' => [0x0E, 0x11, 0x01, 0x02, 0x04, 0x08, 0x1F],
        '3' => [0x1F, 0x02, 0x04, 0x02, 0x01, 0x11, 0x0E],
        '4' => [0x02, 0x06, 0x0A, 0x12, 0x1F, 0x02, 0x02],
        '5' => [0x1F, 0x10, 0x1E, 0x01, 0x01, 0x11, 0x0E],
        '6' => [0x06, 0x08, 0x10, 0x1E, 0x11, 0x11, 0x0E],
        '7' => [0x1F, 0x01, 0x02, 0x04, 0x08, 0x08, 0x08],
        '8' => [0x0E, 0x11, 0x11, 0x0E, 0x11, 0x11, 0x0E],
        '9' => [0x0E, 0x11, 0x11, 0x0F, 0x01, 0x02, 0x0C],
        'A' => [0x0E, 0x11, 0x11, 0x1F, 0x11, 0x11, 0x11],
        'B' => [0x1E, 0x11, 0x11, 0x1E, 0x11, 0x11, 0x1E],
        'C' => [0x0E, 0x11, 0x10, 0x10, 0x10, 0x11, 0x0E],
        'D' => [0x1C, 0x12, 0x11, 0x11, 0x11, 0x12, 0x1C],
        'E' => [0x1F, 0x10, 0x10, 0x1E, 0x10, 0x10, 0x1F],
        'F' => [0x1F, 0x10, 0x10, 0x1E, 0x10, 0x10, 0x10],
        'G' => [0x0E, 0x11, 0x10, 0x17, 0x11, 0x11, 0x0F],
        'H' => [0x11, 0x11, 0x11, 0x1F, 0x11, 0x11, 0x11],
        'I' => [0x0E, 0x04, 0x04, 0x04, 0x04, 0x04, 0x0E],
        'J' => [0x07, 0x02, 0x02, 0x02, 0x02, 0x12, 0x0C],
        'K' => [0x11, 0x12, 0x14, 0x18, 0x14, 0x12, 0x11],
        'L' => [0x10, 0x10, 0x10, 0x10, 0x10, 0x10, 0x1F],
        'M' => [0x11, 0x1B, 0x15, 0x15, 0x11, 0x11, 0x11],
        'N' => [0x11, 0x11, 0x19, 0x15, 0x13, 0x11, 0x11],
        'O' => [0x0E, 0x11, 0x11, 0x11, 0x11, 0x11, 0x0E],
        'P' => [0x1E, 0x11, 0x11, 0x1E, 0x10, 0x10, 0x10],
        'Q' => [0x0E, 0x11, 0x11, 0x11, 0x15, 0x12, 0x0D],
        'R' => [0x1E, 0x11, 0x11, 0x1E, 0x14, 0x12, 0x11],
        'S' => [0x0F, 0x10, 0x10, 0x0E, 0x01, 0x01, 0x1E],
        'T' => [0x1F, 0x04, 0x04, 0x04, 0x04, 0x04, 0x04],
        'U' => [0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x0E],
        'V' => [0x11, 0x11, 0x11, 0x11, 0x11, 0x0A, 0x04],
        'W' => [0x11, 0x11, 0x11, 0x15, 0x15, 0x15, 0x0A],
        'X' => [0x11, 0x11, 0x0A, 0x04, 0x0A, 0x11, 0x11],
        'Y' => [0x11, 0x11, 0x11, 0x0A, 0x04, 0x04, 0x04],
        'Z' => [0x1F, 0x01, 0x02, 0x04, 0x08, 0x10, 0x1F],
        '.' => [0, 0, 0, 0, 0, 0x0C, 0x0C],
        ',' => [0, 0, 0, 0, 0x0C, 0x04, 0x08],
        ':' => [0, 0x0C, 0x0C, 0, 0x0C, 0x0C, 0],
        ';' => [0, 0x0C, 0x0C, 0, 0x0C, 0x04, 0x08],
        '-' => [0, 0, 0, 0x1F, 0, 0, 0],
        '+' => [0, 0x04, 0x04, 0x1F, 0x04, 0x04, 0],
        '=' => [0, 0, 0x1F, 0, 0x1F, 0, 0],
        '_' => [0, 0, 0, 0, 0, 0, 0x1F],
        '/' => [0, 0x01, 0x02, 0x04, 0x08, 0x10, 0],
        '(' => [0x02, 0x04, 0x08, 0x08, 0x08, 0x04, 0x02],
        ')' => [0x08, 0x04, 0x02, 0x02, 0x02, 0x04, 0x08],
        '%' => [0x18, 0x19, 0x02, 0x04, 0x08, 0x13, 0x03],
        '!' => [0x04, 0x04, 0x04, 0x04, 0x04, 0, 0x04],
        '?' => [0x0E, 0x11, 0x01, 0x02, 0x04, 0, 0x04],
        '\'' => [0x04, 0x04, 0x08, 0, 0, 0, 0],
        '#' => [0x0A, 0x0A, 0x1F, 0x0A, 0x1F, 0x0A, 0x0A],
        '<' => [0x02, 0x04, 0x08, 0x10, 0x08, 0x04, 0x02],
        '>' => [0x08, 0x04, 0x02, 0x01, 0x02, 0x04, 0x08],
        '*' => [0, 0x04, 0x15, 0x0E, 0x15, 0x04, 0],
        // Anything else: a hollow box, so missing glyphs are visible rather than silent.
        _ => [0x1F, 0x11, 0x11, 0x11, 0x11, 0x11, 0x1F],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn count(img: &Image, color: Rgb) -> usize {
        img.pixels.chunks_exact(3).filter(|p| *p == color).count()
    }

    #[test]
    fn rect_outline_has_the_expected_perimeter() {
        let mut img = canvas(20, 20, BLACK);
        rect(&mut img, 2.0, 3.0, 11.0, 8.0, RED, 1);
        // 10 wide, 6 high: 2·10 + 2·(6−2) pixels on the border
        assert_eq!(count(&img, RED), 28);
        assert_eq!(img.pixel(2, 3), RED);
        assert_eq!(img.pixel(5, 5), BLACK);
    }

    #[test]
    fn drawing_outside_the_image_is_clipped_not_a_panic() {
        let mut img = canvas(4, 4, BLACK);
        rect(&mut img, -10.0, -10.0, 100.0, 100.0, RED, 3);
        line(&mut img, -5.0, -5.0, 50.0, 2.0, RED, 2);
        text(&mut img, -3, 2, "HELLO", WHITE, 2);
        label(&mut img, 100, 100, "far away", WHITE, BLUE, 1);
    }

    #[test]
    fn text_draws_the_glyph_bits() {
        let mut img = canvas(12, 8, BLACK);
        text(&mut img, 0, 0, "1", WHITE, 1);
        // '1' has 1+2+1+1+1+1+3 = 10 lit pixels
        assert_eq!(count(&img, WHITE), 10);
        assert_eq!(text_size("ab", 2), (24, 16));
    }

    #[test]
    fn grid_places_cells_in_rows() {
        let a = canvas(3, 2, RED);
        let b = canvas(3, 2, GREEN);
        let g = grid(&[a.clone(), b, a], 2, 1, WHITE);
        assert_eq!((g.width, g.height), (2 * 3 + 3, 2 * 2 + 3));
        assert_eq!(g.pixel(1, 1), RED);
        assert_eq!(g.pixel(5, 1), GREEN);
        assert_eq!(g.pixel(1, 4), RED);
        assert_eq!(g.pixel(5, 4), WHITE);
    }
}
