//! The one image reader, tried through the binary as users meet it: the same photo as WebP,
//! BMP, TIFF and GIF gives the faces of its JPEG; a photo stored sideways with EXIF
//! Orientation=6 gives boxes in the upright frame and verifies `same` against the upright
//! photo; a JPEG with a trailer (a Motion Photo's video) is read; a truncated JPEG is refused
//! by every command that reads images, naming the file.
//!
//! Needs the model cache (`cargo run -p likeness -- models fetch`).

mod common;

use std::path::{Path, PathBuf};

use common::{json_ok, likeness, s};
use likeness_face::faces::Faces;

/// Largest shift of a box edge, in pixels, between two encodings of the same photo. Lossless
/// formats decode to the JPEG's pixels exactly (measured 0 px); GIF's 256 colours moved an
/// edge of sample1.jpg's boxes (faces of 90-130 px) by 2.16 px at most.
const BOX_TOLERANCE_PX: f64 = 3.0;

fn sample(name: &str) -> PathBuf {
    common::sample_with(name, Faces::MODELS)
}

fn scratch(test: &str) -> PathBuf {
    common::scratch("image_formats", test)
}

/// The boxes `detect --json` finds in `path`, largest first as the command orders them.
fn boxes(path: &Path) -> Vec<[f64; 4]> {
    let report = json_ok(&["detect", "--json", s(path)]);
    report["faces"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            let b = f["box"].as_array().unwrap();
            [0, 1, 2, 3].map(|i| b[i].as_f64().unwrap())
        })
        .collect()
}

fn assert_same_boxes(what: &str, got: &[[f64; 4]], want: &[[f64; 4]]) {
    assert_eq!(got.len(), want.len(), "{what}: {got:?} vs {want:?}");
    for (g, w) in got.iter().zip(want) {
        let worst = g
            .iter()
            .zip(w)
            .map(|(a, b)| (a - b).abs())
            .fold(0.0, f64::max);
        assert!(
            worst <= BOX_TOLERANCE_PX,
            "{what}: box {g:?} is {worst} px from the JPEG's {w:?}"
        );
    }
}

fn rgb_of(jpeg: &Path) -> image::RgbImage {
    image::open(jpeg).unwrap().into_rgb8()
}

#[test]
fn webp_bmp_tiff_and_gif_copies_of_a_photo_give_the_faces_of_its_jpeg() {
    let jpeg = sample("sample1.jpg");
    let want = boxes(&jpeg);
    assert_eq!(want.len(), 3, "sample1.jpg shows three people");
    let dir = scratch("formats");
    let rgb = rgb_of(&jpeg);
    for (format, name) in [
        (image::ImageFormat::WebP, "webp.webp"),
        (image::ImageFormat::Bmp, "bmp.bmp"),
        (image::ImageFormat::Tiff, "tiff.tif"),
        (image::ImageFormat::Gif, "gif.gif"),
        // the content decides, not the name
        (image::ImageFormat::WebP, "webp-named.jpg"),
    ] {
        let path = dir.join(name);
        let picture = image::DynamicImage::ImageRgb8(rgb.clone());
        let picture = if format == image::ImageFormat::Gif {
            image::DynamicImage::ImageRgba8(picture.into_rgba8())
        } else {
            picture
        };
        picture.save_with_format(&path, format).unwrap();
        assert_same_boxes(name, &boxes(&path), &want);
    }
}

#[test]
fn a_photo_stored_sideways_with_exif_orientation_6_is_upright_and_verifies_same() {
    let upright = sample("sample4.jpg");
    let dir = scratch("exif");
    // Stored as a phone stores it: turned a quarter anticlockwise, EXIF saying "turn it a
    // quarter clockwise to show it".
    let stored = image::imageops::rotate270(&rgb_of(&upright));
    let mut jpeg = std::io::Cursor::new(Vec::new());
    image::DynamicImage::ImageRgb8(stored)
        .write_to(&mut jpeg, image::ImageFormat::Jpeg)
        .unwrap();
    let rotated = dir.join("sideways.jpg");
    std::fs::write(
        &rotated,
        likeness_testdata::jpeg_with_exif_orientation(jpeg.get_ref(), 6),
    )
    .unwrap();

    let want = boxes(&upright);
    assert!(!want.is_empty());
    assert_same_boxes("EXIF-rotated", &boxes(&rotated), &want);
    let verdict = json_ok(&["verify", "--json", s(&rotated), s(&upright)]);
    assert_eq!(verdict["same"], true, "{verdict}");
}

#[test]
fn a_jpeg_with_a_video_appended_is_read_as_its_photo() {
    let jpeg = sample("sample3.jpg");
    let dir = scratch("trailer");
    let mut bytes = std::fs::read(&jpeg).unwrap();
    // A Motion Photo's trailer: an MP4 whose bytes hold scan and end markers.
    bytes.extend(b"\0\0\0\x18ftypmp42");
    bytes.extend((0..50_000u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8));
    bytes.extend([0xFF, 0xDA, 0x00, 0x08, 0xFF, 0xD9]);
    let motion = dir.join("motion.jpg");
    std::fs::write(&motion, bytes).unwrap();
    assert_same_boxes("with trailer", &boxes(&motion), &boxes(&jpeg));
}

#[test]
fn a_truncated_jpeg_is_refused_by_every_command_that_reads_images() {
    let jpeg = sample("sample1.jpg");
    let good = sample("sample2.jpg");
    let dir = scratch("truncated");
    let bytes = std::fs::read(&jpeg).unwrap();
    let cut = dir.join("cut.jpg");
    std::fs::write(&cut, &bytes[..bytes.len() * 6 / 10]).unwrap();
    // folders for the commands that read folders: the cut photo among good ones
    let known = dir.join("known");
    let people = dir.join("people").join("ada");
    for d in [&known, &people] {
        std::fs::create_dir_all(d).unwrap();
        std::fs::copy(&cut, d.join("cut.jpg")).unwrap();
    }
    std::fs::copy(&good, known.join("good.jpg")).unwrap();
    std::fs::copy(&good, people.join("good.jpg")).unwrap();
    let pairs = dir.join("pairs.csv");
    std::fs::write(&pairs, "a,b,same\nknown/cut.jpg,known/good.jpg,1\n").unwrap();
    let gallery = dir.join("gallery.db");
    let (cut_s, good_s, out) = (s(&cut), s(&good), dir.join("out.png"));
    let out_s = s(&out);
    let commands: Vec<Vec<&str>> = vec![
        vec!["detect", cut_s],
        vec!["encode", cut_s],
        vec!["liveness", cut_s],
        vec!["verify", cut_s, good_s],
        vec!["verify", good_s, cut_s],
        vec!["gallery", "--gallery", s(&gallery), "enrol", "ada", cut_s],
        vec!["gallery", "--gallery", s(&gallery), "identify", cut_s],
        vec!["recognise", s(&known), cut_s],
        vec![
            "style",
            cut_s,
            good_s,
            "--output",
            out_s,
            "--iterations",
            "1",
        ],
        vec![
            "style",
            good_s,
            cut_s,
            "--output",
            out_s,
            "--iterations",
            "1",
        ],
    ];
    for args in &commands {
        let output = likeness(args);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(
            !output.status.success(),
            "likeness {args:?} accepted a cut JPEG"
        );
        assert!(
            stderr.contains("truncated") && stderr.contains("cut.jpg"),
            "likeness {args:?} did not say which file is truncated: {stderr}"
        );
    }
    assert!(!out.exists(), "style wrote a picture from a cut JPEG");
    // Commands over folders report the cut photo by name (and go on with the others).
    let folder_commands: Vec<Vec<&str>> = vec![
        vec!["recognise", s(&known), s(&known)],
        vec!["detect", s(&known)],
        vec!["eval", "--pairs", s(&pairs), "--images", s(&dir)],
    ];
    for args in &folder_commands {
        let output = likeness(args);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(
            stderr.contains("truncated") && stderr.contains("cut.jpg"),
            "likeness {args:?} did not report the cut JPEG: {stderr}"
        );
    }
}
