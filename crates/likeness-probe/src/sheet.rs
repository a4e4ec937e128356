//! Contact sheets: per layer a PNG grid, one row per unit, its top patches left to right; and an
//! `index.html` that shows every sheet with the units' activation values and source images.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use image::codecs::png::{CompressionType, FilterType as PngFilter, PngEncoder};
use image::imageops::{FilterType, resize};
use image::{ExtendedColorType, ImageEncoder, RgbImage};
use likeness_nn::image::Image;

use crate::error::{ProbeError, Result};
use crate::probe::LayerResult;

/// Pixels between cells of a sheet.
pub const GAP: u32 = 2;
/// Sheet background (also the colour of empty cells).
pub const BACKGROUND: [u8; 3] = [24, 24, 24];

/// A patch drawn into a `cell × cell` square: enlarged with nearest neighbours so that small
/// fields stay crisp pixels, reduced with a triangle filter so that large ones do not alias.
fn scaled(patch: &Image, cell: u32) -> RgbImage {
    let src = RgbImage::from_raw(patch.width, patch.height, patch.pixels.clone())
        .unwrap_or_else(|| RgbImage::new(1, 1));
    let filter = if patch.width < cell {
        FilterType::Nearest
    } else {
        FilterType::Triangle
    };
    resize(&src, cell, cell, filter)
}

/// The sheet of one layer: `units` rows × `top` columns of `cell`-pixel patches.
pub fn render_sheet(layer: &LayerResult, top: usize, cell: u32) -> Image {
    let cols = top.max(1) as u32;
    let rows = layer.units.len().max(1) as u32;
    let width = GAP + cols * (cell + GAP);
    let height = GAP + rows * (cell + GAP);
    let mut sheet = RgbImage::from_pixel(width, height, image::Rgb(BACKGROUND));
    for (r, unit) in layer.units.iter().enumerate() {
        for (c, hit) in unit.hits.iter().take(cols as usize).enumerate() {
            let tile = scaled(&hit.patch, cell);
            let (x, y) = (GAP + c as u32 * (cell + GAP), GAP + r as u32 * (cell + GAP));
            image::imageops::replace(&mut sheet, &tile, x as i64, y as i64);
        }
    }
    Image {
        width,
        height,
        pixels: sheet.into_raw(),
    }
}

/// Writes `image` as a PNG at the strongest compression: sheets are meant for documentation,
/// where a few hundred kilobytes matter more than a few milliseconds.
pub fn save_png_small(image: &Image, path: &Path) -> Result<()> {
    let encode_error = |e: image::ImageError| ProbeError::Encode {
        path: path.to_path_buf(),
        message: e.to_string(),
    };
    let file = std::fs::File::create(path).map_err(|e| ProbeError::io(path, e))?;
    let encoder = PngEncoder::new_with_quality(
        std::io::BufWriter::new(file),
        CompressionType::Best,
        PngFilter::Adaptive,
    );
    encoder
        .write_image(
            &image.pixels,
            image.width,
            image.height,
            ExtendedColorType::Rgb8,
        )
        .map_err(encode_error)
}

/// File name of a layer's sheet.
pub fn sheet_file_name(layer: &str) -> String {
    format!("{layer}.png")
}

/// Writes one sheet per layer and `index.html` into `dir` (created if needed); returns the
/// sheets' paths.
pub fn write_sheets(
    dir: &Path,
    network: &str,
    layers: &[LayerResult],
    image_names: &[String],
    top: usize,
    cell: u32,
) -> Result<Vec<PathBuf>> {
    std::fs::create_dir_all(dir).map_err(|e| ProbeError::io(dir, e))?;
    let mut paths = Vec::new();
    for layer in layers {
        let path = dir.join(sheet_file_name(&layer.layer));
        save_png_small(&render_sheet(layer, top, cell), &path)?;
        paths.push(path);
    }
    let html = index_html(network, layers, image_names, cell);
    let index = dir.join("index.html");
    std::fs::write(&index, html).map_err(|e| ProbeError::io(&index, e))?;
    Ok(paths)
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// The browsing page: a section per layer with its sheet and, beside each row, the unit and the
/// activation, image and position of each patch (as tooltips, left to right).
pub fn index_html(
    network: &str,
    layers: &[LayerResult],
    image_names: &[String],
    cell: u32,
) -> String {
    let mut h = String::new();
    let _ = write!(
        h,
        "<!doctype html>\n<meta charset=\"utf-8\">\n<title>{net} probe</title>\n<style>\
         body{{font-family:sans-serif;background:#181818;color:#ddd}}\
         .row{{display:flex;align-items:center;height:{row}px}}\
         .lab{{width:11em;font-size:12px}} img{{image-rendering:pixelated}}\
         .sheet{{display:flex}} .labs{{padding-top:{gap}px}} a{{color:#9cf}}</style>\n\
         <h1>{net}: the patches that excite each unit most</h1>\n<p>Layers: ",
        net = escape(network),
        row = cell + GAP,
        gap = GAP,
    );
    for l in layers {
        let _ = write!(h, "<a href=\"#{0}\">{0}</a> ", escape(&l.layer));
    }
    let _ = writeln!(h, "</p>");
    for l in layers {
        let f = l.field;
        let _ = write!(
            h,
            "<h2 id=\"{name}\">{name}</h2>\n<p>Receptive field {size}×{size} px, stride {stride} px; \
             each patch is scaled to {cell} px.</p>\n<div class=\"sheet\"><div class=\"labs\">",
            name = escape(&l.layer),
            size = f.size,
            stride = f.stride,
        );
        for u in &l.units {
            let tips: Vec<String> = u
                .hits
                .iter()
                .map(|hit| {
                    format!(
                        "{:.3} @ {} ({}, {})",
                        hit.value,
                        image_names.get(hit.image).map_or("?", |s| s.as_str()),
                        hit.x,
                        hit.y
                    )
                })
                .collect();
            let best = u.hits.first().map_or(0.0, |h| h.value);
            let _ = write!(
                h,
                "<div class=\"row lab\" title=\"{}\">unit {} · max {:.2}</div>",
                escape(&tips.join("\n")),
                u.unit,
                best
            );
        }
        let _ = writeln!(
            h,
            "</div><img src=\"{}\" alt=\"{} sheet\"></div>",
            escape(&sheet_file_name(&l.layer)),
            escape(&l.layer)
        );
    }
    let _ = writeln!(h, "<h2>Images</h2>\n<ol start=\"0\">");
    for name in image_names {
        let _ = writeln!(h, "<li>{}</li>", escape(name));
    }
    let _ = writeln!(h, "</ol>");
    h
}
