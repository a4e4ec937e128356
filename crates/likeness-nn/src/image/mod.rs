//! Decoded RGB images: the value type every pipeline stage starts from, and the one way
//! files become images ([`read`]) and images become files ([`write`]).

use std::path::{Path, PathBuf};

use crate::error::{NnError, Result};

pub mod read;
pub mod write;

pub use read::MAX_FILE_BYTES;
pub use write::refuse_overwriting_inputs;

/// The largest image we decode: 100 megapixels (~300 MB as RGB8). Larger files are refused with
/// a clear error rather than exhausting memory.
pub const MAX_PIXELS: u64 = 100_000_000;

/// Why an image file could not be read or written. The path is added by [`NnError::ImageFile`].
#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    /// A folder, device, FIFO or socket where an image file was expected.
    #[error("is {0}")]
    NotAFile(&'static str),
    /// Over [`MAX_FILE_BYTES`].
    #[error("is {bytes} bytes, over the limit of {limit} for an image file")]
    FileTooLarge { bytes: u64, limit: u64 },
    /// The bytes are none of the formats read.
    #[error("is not an image this tool reads ({})", read::READ_FORMATS)]
    UnknownFormat,
    /// A JPEG stream that stops before its end-of-image marker.
    #[error(
        "truncated JPEG (the data stops before its end-of-image marker); fetch or copy it again"
    )]
    TruncatedJpeg,
    /// A JPEG whose marker segments cannot be walked.
    #[error("corrupt JPEG (impossible segment length at byte {0})")]
    MalformedJpeg(usize),
    /// Over [`MAX_PIXELS`].
    #[error("{width}x{height} is over the limit of {MAX_PIXELS} pixels; shrink it first")]
    TooManyPixels { width: u32, height: u32 },
    /// The decoder gave up: corrupt or truncated data.
    #[error("corrupt or truncated image ({0})")]
    Corrupt(String),
    /// An output name whose extension chooses no format.
    #[error(
        "cannot tell the image format from the name; end it in {}",
        write::WRITE_EXTENSIONS
    )]
    UnknownOutputFormat,
    /// An output that is one of the inputs.
    #[error("would overwrite the input {}; choose another output name", .0.display())]
    OverwritesInput(PathBuf),
    /// Encoding failed.
    #[error("cannot encode ({0})")]
    Encode(String),
    /// The file system refused.
    #[error("{0}")]
    Io(std::io::Error),
}

/// An 8-bit RGB image, row-major, 3 bytes per pixel.
#[derive(Clone, PartialEq, Eq)]
pub struct Image {
    pub width: u32,
    pub height: u32,
    pub pixels: Vec<u8>,
}

impl std::fmt::Debug for Image {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Image({}x{})", self.width, self.height)
    }
}

impl Image {
    /// Wraps RGB8 pixels; their number must match the size.
    pub fn from_rgb(width: u32, height: u32, pixels: Vec<u8>) -> Result<Self> {
        if pixels.len() as u64 != width as u64 * height as u64 * 3 || width == 0 || height == 0 {
            return Err(NnError::Image(format!(
                "{width}x{height} RGB needs {} bytes, got {}",
                width as u64 * height as u64 * 3,
                pixels.len()
            )));
        }
        Ok(Image {
            width,
            height,
            pixels,
        })
    }

    /// Reads an image file the one way every command does (see [`read`]): a regular file
    /// under [`MAX_FILE_BYTES`], JPEG, PNG, WebP, BMP, TIFF or GIF by content, EXIF
    /// orientation applied, truncated JPEGs refused. The error names the file.
    pub fn open(path: &Path) -> Result<Self> {
        read::read_file(path).map_err(|error| NnError::image_file(path, error))
    }

    /// Decodes image bytes as [`Image::open`] does a file.
    pub fn decode(bytes: &[u8]) -> std::result::Result<Self, ImageError> {
        read::decode(bytes)
    }

    /// Writes the image in the format its extension names (`.png`, `.jpg`/`.jpeg`),
    /// atomically; any other extension is refused before anything is written.
    pub fn save(&self, path: &Path) -> Result<()> {
        write::save(self, path).map_err(|error| NnError::image_file(path, error))
    }

    /// Writes a PNG atomically, whatever the extension.
    pub fn save_png(&self, path: &Path) -> Result<()> {
        write::save_as(self, path, write::OutputFormat::Png)
            .map_err(|error| NnError::image_file(path, error))
    }

    /// The pixel at (x, y) as [r, g, b].
    pub fn pixel(&self, x: u32, y: u32) -> [u8; 3] {
        let i = (y as usize * self.width as usize + x as usize) * 3;
        [self.pixels[i], self.pixels[i + 1], self.pixels[i + 2]]
    }

    /// Bilinear resampling to `width`×`height` with half-pixel centres (the convention of
    /// OpenCV's INTER_LINEAR and PyTorch's `align_corners=False`), no antialiasing.
    pub fn resize(&self, width: u32, height: u32) -> Image {
        let (sw, sh) = (self.width as f32, self.height as f32);
        let sx = sw / width as f32;
        let sy = sh / height as f32;
        let mut out = Vec::with_capacity(width as usize * height as usize * 3);
        for y in 0..height {
            let fy = ((y as f32 + 0.5) * sy - 0.5).clamp(0.0, sh - 1.0);
            let y0 = fy.floor() as u32;
            let y1 = (y0 + 1).min(self.height - 1);
            let wy = fy - y0 as f32;
            for x in 0..width {
                let fx = ((x as f32 + 0.5) * sx - 0.5).clamp(0.0, sw - 1.0);
                let x0 = fx.floor() as u32;
                let x1 = (x0 + 1).min(self.width - 1);
                let wx = fx - x0 as f32;
                let (a, b, c, d) = (
                    self.pixel(x0, y0),
                    self.pixel(x1, y0),
                    self.pixel(x0, y1),
                    self.pixel(x1, y1),
                );
                for k in 0..3 {
                    let top = a[k] as f32 * (1.0 - wx) + b[k] as f32 * wx;
                    let bottom = c[k] as f32 * (1.0 - wx) + d[k] as f32 * wx;
                    out.push((top * (1.0 - wy) + bottom * wy).round().clamp(0.0, 255.0) as u8);
                }
            }
        }
        Image {
            width,
            height,
            pixels: out,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resize_of_a_constant_image_is_constant_and_midpoints_interpolate() {
        let img = Image::from_rgb(2, 1, vec![0, 0, 0, 200, 100, 50]).unwrap();
        let up = img.resize(4, 1);
        // half-pixel centres: output x=1 samples source x=0.25, x=2 samples 0.75
        assert_eq!(up.pixel(0, 0), [0, 0, 0]);
        assert_eq!(up.pixel(1, 0), [50, 25, 13]);
        assert_eq!(up.pixel(2, 0), [150, 75, 38]);
        assert_eq!(up.pixel(3, 0), [200, 100, 50]);
    }

    #[test]
    fn garbage_and_truncated_files_are_errors() {
        assert!(Image::decode(b"definitely not an image").is_err());
        let img = Image::from_rgb(8, 8, vec![7; 192]).unwrap();
        let dir = std::env::temp_dir().join(format!("likeness-img-{}", std::process::id()));
        let path = dir.join("x.png");
        img.save_png(&path).unwrap();
        let bytes = std::fs::read(&path).unwrap();
        assert_eq!(Image::decode(&bytes).unwrap(), img);
        assert!(Image::decode(&bytes[..bytes.len() / 2]).is_err());
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn from_rgb_checks_the_length() {
        assert!(Image::from_rgb(2, 2, vec![0; 11]).is_err());
        assert!(Image::from_rgb(0, 0, vec![]).is_err());
    }
}
