//! Shared by the command-line tests: the model cache's sample photos, a scratch folder per
//! test, running the real `likeness` binary, and the face of t1.jpg that the liveness network
//! judges a spoof (the gate tests of `liveness_cli.rs` are all built on it).
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use likeness_models::Cache;
use likeness_nn::image::Image;
use serde_json::Value;

/// A sample photo of the model cache, after checking that `models` are fetched.
pub fn sample_with(name: &str, models: &[&str]) -> PathBuf {
    let cache = Cache::from_env().unwrap();
    if let Err(e) = cache.require(models) {
        panic!("{e}");
    }
    cache.sample_path(name).unwrap_or_else(|e| panic!("{e}"))
}

/// An empty folder for one test (`suite-test` under Cargo's test scratch folder).
pub fn scratch(suite: &str, test: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("{suite}-{test}"));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Runs the `likeness` binary.
pub fn likeness(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_likeness"))
        .args(args)
        .output()
        .unwrap()
}

/// Runs it, asserts success, parses stdout as JSON.
pub fn json_ok(args: &[&str]) -> Value {
    let out = likeness(args);
    assert!(
        out.status.success(),
        "likeness {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// Runs it, asserts success, returns stdout.
pub fn text_ok(args: &[&str]) -> String {
    let out = likeness(args);
    assert!(
        out.status.success(),
        "likeness {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

pub fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// The face of t1.jpg at about (1133, 299)–(1230, 395): the liveness network scores it 0.16,
/// under the threshold, while the other five faces of the photo score 0.53–1.0.
pub const SPOOF_FACE_X0: f64 = 1133.0;

/// Whether a face object (with a `box`) is that face.
pub fn is_spoof_face(face: &Value) -> bool {
    (face["box"][0].as_f64().unwrap() - SPOOF_FACE_X0).abs() < 15.0
}

/// `rect` (x, y, width, height) of `photo`, written as a PNG to `out`.
pub fn cut(photo: &Path, rect: [u32; 4], out: &Path) {
    let img = Image::open(photo).unwrap();
    let [x0, y0, w, h] = rect;
    let mut px = Vec::with_capacity((w * h * 3) as usize);
    for y in y0..y0 + h {
        for x in x0..x0 + w {
            px.extend_from_slice(&img.pixel(x, y));
        }
    }
    Image::from_rgb(w, h, px).unwrap().save_png(out).unwrap();
}

/// A 200-px crop of t1.jpg around the spoof face, written to `out`: the photo a person is
/// enrolled from (the detector finds that one face in it).
pub fn enrol_photo_of_spoof_face(t1: &Path, out: &Path) {
    cut(t1, [1080, 250, 200, 200], out);
}
