//! Images out: the output's extension chooses the format, and nothing is written over an input.
//!
//! - **Format from the extension**, `.png` or `.jpg`/`.jpeg` (any case). Anything else is
//!   refused before a byte is written: writing PNG bytes into `out.jpg`, as the commands did,
//!   makes a file other programs open by its name and then misread.
//! - **Never over an input.** `likeness style photo.jpg starry.jpg -o photo.jpg` used to replace
//!   the photo with its stylised copy. [`refuse_overwriting_inputs`] compares files, not names
//!   (on Unix device and inode, so `./a.jpg`, `a.jpg`, a symlink to it and a hard link all count).
//! - **Atomic**: the file appears whole or not at all (a temporary file renamed over it).

use std::path::{Path, PathBuf};

use image::ImageEncoder as _;

use super::{Image, ImageError};

/// The extensions written, in the words errors use.
pub const WRITE_EXTENSIONS: &str = ".png, .jpg or .jpeg";

/// JPEG quality of written files. 90 keeps photos visually intact: measured on the sample
/// photos, PSNR against the original is ~42 dB at 90 (~37 dB at libjpeg's default 75) for
/// files ~1.8x the size of quality 75's.
pub const JPEG_QUALITY: u8 = 90;

/// A format images are written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutputFormat {
    /// Lossless; for pictures, sheets and anything compared pixel by pixel.
    Png,
    /// Lossy at [`JPEG_QUALITY`]; for photos.
    Jpeg,
}

impl OutputFormat {
    /// The format an output name asks for, from its extension (any case).
    pub fn from_path(path: &Path) -> Result<Self, ImageError> {
        let ext = path
            .extension()
            .and_then(|e| e.to_str())
            .map(str::to_ascii_lowercase);
        match ext.as_deref() {
            Some("png") => Ok(OutputFormat::Png),
            Some("jpg" | "jpeg") => Ok(OutputFormat::Jpeg),
            _ => Err(ImageError::UnknownOutputFormat),
        }
    }
}

/// Writes `image` in the format its extension names.
pub fn save(image: &Image, path: &Path) -> Result<(), ImageError> {
    save_as(image, path, OutputFormat::from_path(path)?)
}

/// Writes `image` as `format`, atomically.
pub fn save_as(image: &Image, path: &Path, format: OutputFormat) -> Result<(), ImageError> {
    let bytes = encode(image, format)?;
    crate::weights::write_atomic(path, &bytes).map_err(|e| match e {
        crate::NnError::Io { cause, .. } => ImageError::Io(cause),
        other => ImageError::Encode(other.to_string()),
    })
}

/// The bytes of `image` in `format`.
pub fn encode(image: &Image, format: OutputFormat) -> Result<Vec<u8>, ImageError> {
    let mut bytes = Vec::new();
    let (w, h, rgb) = (image.width, image.height, image::ExtendedColorType::Rgb8);
    let result = match format {
        OutputFormat::Png => {
            image::codecs::png::PngEncoder::new(&mut bytes).write_image(&image.pixels, w, h, rgb)
        }
        OutputFormat::Jpeg => {
            image::codecs::jpeg::JpegEncoder::new_with_quality(&mut bytes, JPEG_QUALITY)
                .write_image(&image.pixels, w, h, rgb)
        }
    };
    result.map_err(|e| ImageError::Encode(e.to_string()))?;
    Ok(bytes)
}

/// Refuses an `output` that is the same file as one of `inputs` (a file that does not exist
/// yet is none of them). Commands call it with every image they read before writing any.
pub fn refuse_overwriting_inputs<P: AsRef<Path>>(
    output: &Path,
    inputs: &[P],
) -> Result<(), ImageError> {
    let Ok(out) = std::fs::metadata(output) else {
        return Ok(());
    };
    for input in inputs {
        let input = input.as_ref();
        if let Ok(meta) = std::fs::metadata(input)
            && same_file(&out, &meta, output, input)
        {
            return Err(ImageError::OverwritesInput(PathBuf::from(input)));
        }
    }
    Ok(())
}

#[cfg(unix)]
fn same_file(a: &std::fs::Metadata, b: &std::fs::Metadata, _: &Path, _: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    a.dev() == b.dev() && a.ino() == b.ino()
}

#[cfg(not(unix))]
fn same_file(_: &std::fs::Metadata, _: &std::fs::Metadata, a: &Path, b: &Path) -> bool {
    match (std::fs::canonicalize(a), std::fs::canonicalize(b)) {
        (Ok(a), Ok(b)) => a == b,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gradient() -> Image {
        let pixels = (0..16 * 8 * 3).map(|i| (i * 5 % 256) as u8).collect();
        Image::from_rgb(16, 8, pixels).unwrap()
    }

    #[test]
    fn the_extension_chooses_the_format_and_an_unknown_one_writes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let img = gradient();
        for (name, magic) in [
            ("a.png", &b"\x89PNG"[..]),
            ("b.JPG", &[0xFF, 0xD8][..]),
            ("c.jpeg", &[0xFF, 0xD8][..]),
        ] {
            save(&img, &dir.path().join(name)).unwrap();
            let bytes = std::fs::read(dir.path().join(name)).unwrap();
            assert!(bytes.starts_with(magic), "{name}");
        }
        for name in ["d.webp", "e", "f.png.txt"] {
            let err = save(&img, &dir.path().join(name)).unwrap_err();
            assert!(matches!(err, ImageError::UnknownOutputFormat), "{name}");
            assert!(!dir.path().join(name).exists(), "{name}");
        }
        // PNG round-trips exactly.
        assert_eq!(Image::open(&dir.path().join("a.png")).unwrap(), img);
    }

    #[test]
    fn an_output_that_is_an_input_by_any_name_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let input = dir.path().join("in.png");
        save(&gradient(), &input).unwrap();
        let other = dir.path().join("other.png");
        save(&gradient(), &other).unwrap();
        let link = dir.path().join("link.png");
        std::os::unix::fs::symlink(&input, &link).unwrap();
        let hard = dir.path().join("hard.png");
        std::fs::hard_link(&input, &hard).unwrap();
        let dotted = dir.path().join(".").join("in.png");
        for out in [&input, &link, &hard, &dotted] {
            let err = refuse_overwriting_inputs(out, &[&other, &input]).unwrap_err();
            assert!(matches!(err, ImageError::OverwritesInput(ref p) if p == &input));
        }
        refuse_overwriting_inputs(&other, &[&input]).unwrap();
        refuse_overwriting_inputs(&dir.path().join("new.png"), &[&input]).unwrap();
    }
}
