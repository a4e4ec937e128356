//! The one image reader: every command that takes a photo (detect, encode, verify, recognise,
//! gallery, style, probe, eval, train) goes through [`read_file`], so all of them accept the
//! same files and refuse the same files with the same words.
//!
//! Why each rule is here:
//! - **Only regular files, at most [`MAX_FILE_BYTES`], checked before reading.** `detect
//!   /dev/zero` used to read until memory ran out (8 GB and growing); a FIFO blocked forever.
//!   The kind of file is checked on the path (without opening it: opening a FIFO blocks), then
//!   again on the opened handle, and the read itself stops one byte past the cap in case the file
//!   grows in between.
//! - **Format by content, not by name.** A labelled face set we tried had a WebP photo named
//!   `.jpg` among its JPEGs; every pair with it was lost. JPEG, PNG, WebP, BMP, TIFF and GIF
//!   (its first frame) are read; the extension is never consulted. (The `image` crate's TIFF
//!   decoder turns on features of `half`, which burn shares: taking it rebuilt burn once,
//!   ~10 minutes here; a clean build pays nothing extra.)
//! - **EXIF orientation applied.** Phones store photos sideways and set Orientation=6; ignored,
//!   such a photo verified as "different" from its upright copy (distance 0.65) and its boxes
//!   came back in the stored frame. Boxes and landmarks are now in the frame a person sees.
//! - **Truncated JPEGs refused, trailers kept.** The JPEG decoder fills a cut-off scan with grey
//!   without complaint, so the marker structure is walked first ([`jpeg_end`]): a stream that
//!   runs out before its end-of-image marker is truncated. Bytes after that marker are not
//!   looked at (Motion Photos append an MP4 there; searching the whole file backwards for markers,
//!   as before, found FF DA inside the video and called such photos truncated). The other
//!   formats' decoders report a cut-off file themselves (tests cover each).
//! - **At most [`MAX_PIXELS`]**, checked from the header before the pixels are allocated.

use std::io::Read;
use std::path::Path;

use image::{DynamicImage, ImageDecoder, ImageFormat, ImageReader};

use super::{Image, ImageError, MAX_PIXELS};

/// The largest image file read: 400 MB. Room for an uncompressed BMP of [`MAX_PIXELS`] RGB
/// pixels (300 MB) and its metadata; a phone photo is 2–12 MB. Larger files are refused before
/// a byte of them is read.
pub const MAX_FILE_BYTES: u64 = 400_000_000;

/// The formats read, in the words errors use.
pub const READ_FORMATS: &str = "JPEG, PNG, WebP, BMP, TIFF or GIF";

/// Reads and decodes an image file, checking everything listed in the module doc.
pub fn read_file(path: &Path) -> Result<Image, ImageError> {
    let bytes = read_bytes(path, MAX_FILE_BYTES)?;
    decode(&bytes)
}

/// The bytes of a regular file of at most `cap` bytes; anything else is refused before it is
/// read.
pub fn read_bytes(path: &Path, cap: u64) -> Result<Vec<u8>, ImageError> {
    let meta = std::fs::metadata(path).map_err(ImageError::Io)?;
    check_kind(&meta, cap)?;
    let file = std::fs::File::open(path).map_err(ImageError::Io)?;
    // The path may have been swapped between the two looks: check what was opened.
    let meta = file.metadata().map_err(ImageError::Io)?;
    check_kind(&meta, cap)?;
    let mut bytes = Vec::with_capacity(meta.len() as usize);
    file.take(cap + 1)
        .read_to_end(&mut bytes)
        .map_err(ImageError::Io)?;
    if bytes.len() as u64 > cap {
        return Err(ImageError::FileTooLarge {
            bytes: bytes.len() as u64,
            limit: cap,
        });
    }
    Ok(bytes)
}

fn check_kind(meta: &std::fs::Metadata, cap: u64) -> Result<(), ImageError> {
    let kind = meta.file_type();
    if kind.is_dir() {
        return Err(ImageError::NotAFile("a folder"));
    }
    if !kind.is_file() {
        return Err(ImageError::NotAFile(
            "a device, pipe or socket, not a regular file",
        ));
    }
    if meta.len() > cap {
        return Err(ImageError::FileTooLarge {
            bytes: meta.len(),
            limit: cap,
        });
    }
    Ok(())
}

/// Decodes image bytes (format by content), applies their EXIF orientation, and converts grey
/// and alpha to RGB (alpha is dropped, not composited).
pub fn decode(bytes: &[u8]) -> Result<Image, ImageError> {
    let format = image::guess_format(bytes).map_err(|_| ImageError::UnknownFormat)?;
    let bytes = match format {
        ImageFormat::Jpeg => match jpeg_end(bytes) {
            JpegEnd::Complete(end) => &bytes[..end],
            JpegEnd::Truncated => return Err(ImageError::TruncatedJpeg),
            JpegEnd::Malformed(at) => return Err(ImageError::MalformedJpeg(at)),
        },
        ImageFormat::Png
        | ImageFormat::WebP
        | ImageFormat::Bmp
        | ImageFormat::Tiff
        | ImageFormat::Gif => bytes,
        _ => return Err(ImageError::UnknownFormat),
    };
    let mut decoder = ImageReader::with_format(std::io::Cursor::new(bytes), format)
        .into_decoder()
        .map_err(|e| ImageError::Corrupt(e.to_string()))?;
    let (width, height) = decoder.dimensions();
    if width as u64 * height as u64 > MAX_PIXELS {
        return Err(ImageError::TooManyPixels { width, height });
    }
    // A malformed EXIF block costs the orientation, not the photo.
    let orientation = decoder
        .orientation()
        .unwrap_or(image::metadata::Orientation::NoTransforms);
    let mut decoded =
        DynamicImage::from_decoder(decoder).map_err(|e| ImageError::Corrupt(e.to_string()))?;
    decoded.apply_orientation(orientation);
    let rgb = decoded.into_rgb8();
    let (width, height) = rgb.dimensions();
    Image::from_rgb(width, height, rgb.into_raw())
        .map_err(|_| ImageError::Corrupt(format!("{width}x{height} has no pixels")))
}

/// Where a JPEG stream ends, found by walking its marker segments.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JpegEnd {
    /// The end-of-image marker ends at this offset; anything after it is a trailer.
    Complete(usize),
    /// The bytes ran out before the end-of-image marker.
    Truncated,
    /// A segment length is impossible (under 2) at this offset.
    Malformed(usize),
}

/// Walks a JPEG's marker segments from its start-of-image marker to its end-of-image marker.
///
/// Segments are skipped by their length (so a thumbnail's markers inside EXIF are never seen);
/// after a start-of-scan segment the entropy-coded data runs to the first FF that is not byte
/// stuffing (FF 00), a restart marker (FF D0–D7) or fill (FF FF). Progressive JPEGs, with many
/// scans and tables between them, are walked the same way. `bytes` must start with FF D8.
pub fn jpeg_end(bytes: &[u8]) -> JpegEnd {
    let len = bytes.len();
    let mut i = 2;
    loop {
        // Between segments: skip stray bytes, then any fill FFs before the marker code.
        match bytes[i.min(len)..].iter().position(|&b| b == 0xFF) {
            Some(skip) => i += skip,
            None => return JpegEnd::Truncated,
        }
        while i < len && bytes[i] == 0xFF {
            i += 1;
        }
        let Some(&marker) = bytes.get(i) else {
            return JpegEnd::Truncated;
        };
        i += 1;
        match marker {
            0xD9 => return JpegEnd::Complete(i),
            // Markers without a segment: TEM, restart markers, a repeated SOI.
            0x01 | 0xD0..=0xD8 => continue,
            _ => {}
        }
        let Some(length) = bytes.get(i..i + 2) else {
            return JpegEnd::Truncated;
        };
        let length = u16::from_be_bytes([length[0], length[1]]) as usize;
        if length < 2 {
            return JpegEnd::Malformed(i);
        }
        i += length;
        if i > len {
            return JpegEnd::Truncated;
        }
        if marker == 0xDA {
            // Entropy-coded data up to the next real marker.
            loop {
                match bytes[i..].iter().position(|&b| b == 0xFF) {
                    Some(skip) => i += skip,
                    None => return JpegEnd::Truncated,
                }
                match bytes.get(i + 1) {
                    None => return JpegEnd::Truncated,
                    Some(0x00 | 0xD0..=0xD7) => i += 2,
                    Some(0xFF) => i += 1,
                    Some(_) => break,
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// SOI, an APP0 segment, a scan whose data holds stuffing and a restart marker, EOI.
    fn tiny_jpeg_structure() -> Vec<u8> {
        let mut b = vec![0xFF, 0xD8];
        b.extend([0xFF, 0xE0, 0x00, 0x04, 0xAA, 0xBB]);
        b.extend([0xFF, 0xDA, 0x00, 0x03, 0x01]);
        b.extend([0x12, 0xFF, 0x00, 0x34, 0xFF, 0xD3, 0x56]);
        b.extend([0xFF, 0xD9]);
        b
    }

    #[test]
    fn a_jpeg_walk_finds_the_end_through_stuffing_and_restarts() {
        let b = tiny_jpeg_structure();
        assert_eq!(jpeg_end(&b), JpegEnd::Complete(b.len()));
    }

    #[test]
    fn a_trailer_after_the_end_marker_is_not_read_as_part_of_the_jpeg() {
        let mut b = tiny_jpeg_structure();
        let end = b.len();
        // What a Motion Photo's video might hold: a scan marker and no end marker.
        b.extend([
            0x00, 0x00, 0x00, 0x18, b'f', b't', b'y', b'p', 0xFF, 0xDA, 0x01,
        ]);
        assert_eq!(jpeg_end(&b), JpegEnd::Complete(end));
    }

    #[test]
    fn every_cut_of_a_jpeg_before_its_end_marker_is_truncated() {
        let b = tiny_jpeg_structure();
        for cut in 2..b.len() {
            assert_eq!(jpeg_end(&b[..cut]), JpegEnd::Truncated, "cut at {cut}");
        }
    }

    #[test]
    fn an_end_marker_inside_a_segment_is_skipped_with_the_segment() {
        // An EXIF thumbnail carries its own FF D9 inside APP1; the walk must not stop there.
        let mut b = vec![0xFF, 0xD8, 0xFF, 0xE1, 0x00, 0x06, 0xFF, 0xD8, 0xFF, 0xD9];
        b.extend([0xFF, 0xDA, 0x00, 0x03, 0x01, 0x42]);
        assert_eq!(jpeg_end(&b), JpegEnd::Truncated);
        b.extend([0xFF, 0xD9]);
        assert_eq!(jpeg_end(&b), JpegEnd::Complete(b.len()));
    }

    #[test]
    fn an_impossible_segment_length_is_malformed() {
        let b = [0xFF, 0xD8, 0xFF, 0xE0, 0x00, 0x01, 0x00];
        assert_eq!(jpeg_end(&b), JpegEnd::Malformed(4));
    }

    // Files generated from the sample photos, never checked in.

    use image::ImageEncoder as _;
    use likeness_testdata::cache_file;

    fn sample(name: &str) -> (Vec<u8>, Image) {
        let bytes = std::fs::read(cache_file(&format!("samples/{name}"))).unwrap();
        let image = decode(&bytes).unwrap();
        (bytes, image)
    }

    fn encode_with(image: &Image, format: ImageFormat) -> Vec<u8> {
        let (w, h, rgb) = (image.width, image.height, image::ExtendedColorType::Rgb8);
        let mut out = std::io::Cursor::new(Vec::new());
        match format {
            ImageFormat::WebP => image::codecs::webp::WebPEncoder::new_lossless(&mut out)
                .write_image(&image.pixels, w, h, rgb)
                .unwrap(),
            ImageFormat::Bmp => image::codecs::bmp::BmpEncoder::new(&mut out)
                .write_image(&image.pixels, w, h, rgb)
                .unwrap(),
            ImageFormat::Tiff => image::codecs::tiff::TiffEncoder::new(&mut out)
                .write_image(&image.pixels, w, h, rgb)
                .unwrap(),
            ImageFormat::Gif => {
                let rgba = image::RgbImage::from_raw(w, h, image.pixels.clone()).unwrap();
                let rgba = image::DynamicImage::ImageRgb8(rgba).into_rgba8();
                image::codecs::gif::GifEncoder::new_with_speed(&mut out, 30)
                    .encode(rgba.as_raw(), w, h, image::ExtendedColorType::Rgba8)
                    .unwrap();
            }
            other => panic!("{other:?}"),
        }
        out.into_inner()
    }

    fn mean_abs_difference(a: &Image, b: &Image) -> f64 {
        assert_eq!((a.width, a.height), (b.width, b.height));
        let sum: u64 = a
            .pixels
            .iter()
            .zip(&b.pixels)
            .map(|(&x, &y)| x.abs_diff(y) as u64)
            .sum();
        sum as f64 / a.pixels.len() as f64
    }

    #[test]
    fn webp_bmp_and_tiff_copies_of_a_photo_decode_to_its_pixels_whatever_their_name() {
        let (_, photo) = sample("sample1.jpg");
        let dir = tempfile::tempdir().unwrap();
        for format in [ImageFormat::WebP, ImageFormat::Bmp, ImageFormat::Tiff] {
            // Named .jpg on purpose: the content decides.
            let path = dir.path().join(format!("{format:?}.jpg"));
            std::fs::write(&path, encode_with(&photo, format)).unwrap();
            assert_eq!(read_file(&path).unwrap(), photo, "{format:?}");
        }
    }

    #[test]
    fn a_gif_copy_of_a_photo_decodes_to_its_first_frame_close_to_the_photo() {
        let (_, photo) = sample("sample2.jpg");
        let gif = decode(&encode_with(&photo, ImageFormat::Gif)).unwrap();
        // 256 colours: close, not equal (measured ~4 levels of 255 on average).
        let d = mean_abs_difference(&gif, &photo);
        assert!(d > 0.0 && d < 8.0, "mean difference {d}");
    }

    #[test]
    fn every_format_cut_in_half_is_refused() {
        let (jpeg, photo) = sample("sample2.jpg");
        let small = photo.resize(200, 150);
        let mut files = vec![("JPEG", jpeg)];
        for format in [
            ImageFormat::WebP,
            ImageFormat::Bmp,
            ImageFormat::Tiff,
            ImageFormat::Gif,
        ] {
            files.push((format.extensions_str()[0], encode_with(&small, format)));
        }
        files.push((
            "PNG",
            crate::image::write::encode(&small, crate::image::write::OutputFormat::Png).unwrap(),
        ));
        // Cuts that lose pixel data. (A cut of the last few bytes can leave every pixel in:
        // PNG's IEND checksum, GIF's trailer, WebP's padding; those decode, rightly.)
        for (name, bytes) in files {
            for cut in [bytes.len() / 2, bytes.len() * 99 / 100] {
                let err = decode(&bytes[..cut]).unwrap_err();
                assert!(
                    matches!(err, ImageError::TruncatedJpeg | ImageError::Corrupt(_)),
                    "{name} cut at {cut}: {err}"
                );
            }
        }
    }

    #[test]
    fn a_jpeg_with_a_video_appended_reads_as_the_photo() {
        let (mut bytes, photo) = sample("sample3.jpg");
        // A Motion Photo's trailer: an MP4 whose bytes contain scan and end markers.
        bytes.extend(b"\0\0\0\x18ftypmp42");
        bytes.extend((0..100_000u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8));
        bytes.extend([0xFF, 0xDA, 0x00, 0x08, 0xFF, 0xD9, 0xFF, 0xDA]);
        assert_eq!(decode(&bytes).unwrap(), photo);
    }

    #[test]
    fn a_truncated_jpeg_is_refused_as_truncated() {
        let (bytes, _) = sample("sample3.jpg");
        let err = decode(&bytes[..bytes.len() * 6 / 10]).unwrap_err();
        assert!(matches!(err, ImageError::TruncatedJpeg), "{err}");
        assert!(err.to_string().contains("truncated JPEG"));
    }

    #[test]
    fn a_sideways_stored_photo_with_orientation_6_reads_upright() {
        let (_, upright) = sample("sample4.jpg");
        // Stored as a phone stores it: turned a quarter anticlockwise, EXIF saying "turn it
        // a quarter clockwise to show it".
        let stored =
            image::RgbImage::from_raw(upright.width, upright.height, upright.pixels.clone())
                .unwrap();
        let stored = image::imageops::rotate270(&stored);
        let stored = Image::from_rgb(stored.width(), stored.height(), stored.into_raw()).unwrap();
        let jpeg =
            crate::image::write::encode(&stored, crate::image::write::OutputFormat::Jpeg).unwrap();
        let raw = decode(&jpeg).unwrap();
        assert_eq!((raw.width, raw.height), (upright.height, upright.width));
        let turned = decode(&likeness_testdata::jpeg_with_exif_orientation(&jpeg, 6)).unwrap();
        assert_eq!(
            (turned.width, turned.height),
            (upright.width, upright.height)
        );
        let d = mean_abs_difference(&turned, &upright);
        assert!(d < 3.0, "mean difference {d} from the upright photo");
    }

    #[test]
    fn all_eight_orientations_bring_a_corner_marker_to_the_top_left() {
        // A 40x24 grey picture with a white 8x8 block at the stored corner that each
        // orientation moves to the top left.
        for (orientation, corner) in [
            (1, (0, 0)),
            (2, (1, 0)),
            (3, (1, 1)),
            (4, (0, 1)),
            (5, (0, 0)),
            (6, (0, 1)),
            (7, (1, 1)),
            (8, (1, 0)),
        ] {
            let (w, h) = (40u32, 24u32);
            let mut pixels = vec![60u8; (w * h * 3) as usize];
            let (cx, cy) = (corner.0 * (w - 8), corner.1 * (h - 8));
            for y in cy..cy + 8 {
                for x in cx..cx + 8 {
                    let i = ((y * w + x) * 3) as usize;
                    pixels[i..i + 3].copy_from_slice(&[255, 255, 255]);
                }
            }
            let stored = Image::from_rgb(w, h, pixels).unwrap();
            let jpeg =
                crate::image::write::encode(&stored, crate::image::write::OutputFormat::Jpeg)
                    .unwrap();
            let shown = decode(&likeness_testdata::jpeg_with_exif_orientation(
                &jpeg,
                orientation,
            ))
            .unwrap();
            let quarter_turn = orientation >= 5;
            assert_eq!(
                (shown.width, shown.height),
                if quarter_turn { (h, w) } else { (w, h) },
                "orientation {orientation}"
            );
            assert!(
                shown.pixel(3, 3)[0] > 200,
                "orientation {orientation}: top left is not the marker"
            );
            assert!(
                shown.pixel(shown.width - 4, shown.height - 4)[0] < 100,
                "orientation {orientation}"
            );
        }
    }

    #[test]
    fn folders_pipes_and_oversized_files_are_refused_before_reading() {
        let dir = tempfile::tempdir().unwrap();
        let err = read_file(dir.path()).unwrap_err();
        assert!(matches!(err, ImageError::NotAFile("a folder")), "{err}");
        let fifo = dir.path().join("pipe.jpg");
        let made = std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap();
        assert!(made.success());
        // Opening a FIFO with no writer blocks: refusing it proves it was never opened.
        let err = read_file(&fifo).unwrap_err();
        assert!(matches!(err, ImageError::NotAFile(_)), "{err}");
        // A sparse file one byte over the cap: refused from its size, costing no disk.
        let huge = dir.path().join("huge.jpg");
        std::fs::File::create(&huge)
            .unwrap()
            .set_len(MAX_FILE_BYTES + 1)
            .unwrap();
        let err = read_file(&huge).unwrap_err();
        assert!(matches!(err, ImageError::FileTooLarge { .. }), "{err}");
        // A symlink to a photo is fine.
        let link = dir.path().join("link.jpg");
        std::os::unix::fs::symlink(cache_file("samples/sample1.jpg"), &link).unwrap();
        assert!(read_file(&link).is_ok());
    }

    #[test]
    fn a_header_claiming_too_many_pixels_is_refused_before_decoding() {
        // A BMP header for 20000x20000 24-bit pixels and no pixel data.
        let mut bmp = b"BM".to_vec();
        bmp.extend(54u32.to_le_bytes()); // file size (a lie)
        bmp.extend([0; 4]);
        bmp.extend(54u32.to_le_bytes()); // pixel offset
        bmp.extend(40u32.to_le_bytes()); // BITMAPINFOHEADER
        bmp.extend(20_000i32.to_le_bytes());
        bmp.extend(20_000i32.to_le_bytes());
        bmp.extend(1u16.to_le_bytes());
        bmp.extend(24u16.to_le_bytes());
        bmp.extend([0; 24]);
        let err = decode(&bmp).unwrap_err();
        assert!(
            matches!(
                err,
                ImageError::TooManyPixels {
                    width: 20_000,
                    height: 20_000
                }
            ),
            "{err}"
        );
    }

    #[test]
    fn bytes_of_no_known_format_are_refused_as_such() {
        let err = decode(b"GIF87 not quite; just text").unwrap_err();
        assert!(matches!(err, ImageError::UnknownFormat), "{err}");
        assert!(err.to_string().contains("WebP"));
    }
}
