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
             each patch is scaled to {cell} px; hover over a unit for its activations, \
             images and positions (feature map, and the patch's first input pixel).</p>\n<div class=\"sheet\"><div class=\"labs\">",
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
                        "{:.3} @ {}, position ({}, {}), pixels from ({}, {})",
                        hit.value,
                        image_names.get(hit.image).map_or("?", |s| s.as_str()),
                        hit.x,
                        hit.y,
                        f.start(hit.x),
                        f.start(hit.y)
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::field::ReceptiveField;
    use crate::probe::UnitResult;
    use crate::topk::Hit;

    fn solid(size: u32, rgb: [u8; 3]) -> Image {
        Image::from_rgb(size, size, rgb.repeat((size * size) as usize)).unwrap()
    }

    #[test]
    fn sheet_has_a_row_per_unit_and_a_cell_per_hit() {
        let hit = |rgb| Hit {
            value: 1.0,
            image: 0,
            y: 2,
            x: 3,
            patch: solid(3, rgb),
        };
        let layer = LayerResult {
            layer: "relu1_1".into(),
            field: ReceptiveField {
                size: 3,
                stride: 1,
                offset: -1,
            },
            units: vec![
                UnitResult {
                    unit: 5,
                    hits: vec![hit([255, 0, 0]), hit([0, 255, 0])],
                },
                UnitResult {
                    unit: 9,
                    hits: vec![hit([0, 0, 255])],
                },
            ],
        };
        let cell = 10;
        let sheet = render_sheet(&layer, 3, cell);
        assert_eq!((sheet.width, sheet.height), (GAP + 3 * 12, GAP + 2 * 12));
        let at = |col: u32, row: u32| sheet.pixel(GAP + col * 12 + 5, GAP + row * 12 + 5);
        assert_eq!(at(0, 0), [255, 0, 0]);
        assert_eq!(at(1, 0), [0, 255, 0]);
        assert_eq!(at(2, 0), BACKGROUND);
        assert_eq!(at(0, 1), [0, 0, 255]);

        let dir = tempfile::tempdir().unwrap();
        let names = vec!["a<b>.png".to_string()];
        let paths = write_sheets(dir.path(), "Net", &[layer], &names, 3, cell).unwrap();
        assert_eq!(paths, [dir.path().join("relu1_1.png")]);
        let back = Image::open(&paths[0]).unwrap();
        assert_eq!(back, sheet);
        let html = std::fs::read_to_string(dir.path().join("index.html")).unwrap();
        assert!(html.contains("src=\"relu1_1.png\"") && html.contains("unit 9"));
        assert!(html.contains("a&lt;b&gt;.png, position (3, 2), pixels from (2, 1)"));
    }
}
