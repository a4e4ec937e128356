//! Where tests and benchmarks find reference values and the model cache.
//!
//! The reference values live in `$LIKENESS_REFERENCE`, or else in the repository's
//! `testdata/reference` (how they were made: its README.md); the model cache in `$LIKENESS_HOME`, or else `~/.cache/likeness`. These
//! helpers panic (naming the path, and for the cache the command that fills it) instead of
//! returning errors: they are for tests and benchmarks, where a missing file must fail loudly,
//! never for library code.

use std::collections::BTreeMap;
use std::path::PathBuf;

use likeness_nn::npz::{NpyArray, read_npz};

/// What to run when a model-cache file is missing.
pub const FETCH_COMMAND: &str = "cargo run -p likeness -- models fetch";

/// The reference directory: `$LIKENESS_REFERENCE`, or else the repository's `testdata/reference`
/// (every crate sits at `crates/<name>`, so this path is right for all of them).
pub fn reference_dir() -> PathBuf {
    std::env::var_os("LIKENESS_REFERENCE")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/../../testdata/reference"
            ))
        })
}

/// The path of the reference file `name` (not checked for existence).
pub fn reference_file(name: &str) -> PathBuf {
    reference_dir().join(name)
}

/// The arrays of the reference `.npz` file `name`; panics with the path when unreadable.
pub fn reference_npz(name: &str) -> BTreeMap<String, NpyArray> {
    let path = reference_file(name);
    read_npz(&path).unwrap_or_else(|e| panic!("reference values {}: {e}", path.display()))
}

/// The model cache's root: `$LIKENESS_HOME`, or else `~/.cache/likeness`; panics when neither
/// that variable nor `HOME` is set.
pub fn cache_home() -> PathBuf {
    likeness_fs::home_dir().unwrap_or_else(|e| panic!("{e}"))
}

/// The model-cache file at `relative` (e.g. `models/vgg16.safetensors`, `samples/astronaut.png`);
/// panics, saying to run [`FETCH_COMMAND`], when it is missing.
pub fn cache_file(relative: &str) -> PathBuf {
    let path = cache_home().join(relative);
    assert!(
        path.exists(),
        "{} is missing: run `{FETCH_COMMAND}` first",
        path.display()
    );
    path
}

/// `jpeg` with an EXIF APP1 segment holding only Orientation = `orientation`, right after its
/// start-of-image marker: a photo as a phone stores it, for the reader's orientation tests.
pub fn jpeg_with_exif_orientation(jpeg: &[u8], orientation: u16) -> Vec<u8> {
    let mut tiff = b"MM\0\x2a\0\0\0\x08".to_vec(); // big-endian, first IFD at 8
    tiff.extend(1u16.to_be_bytes()); // one entry
    tiff.extend(0x0112u16.to_be_bytes()); // Orientation
    tiff.extend(3u16.to_be_bytes()); // SHORT
    tiff.extend(1u32.to_be_bytes()); // one value
    tiff.extend(orientation.to_be_bytes());
    tiff.extend([0, 0]); // padding of the 4-byte value field
    tiff.extend(0u32.to_be_bytes()); // no next IFD
    let mut app1 = b"Exif\0\0".to_vec();
    app1.extend(tiff);
    let mut out = vec![0xFF, 0xD8, 0xFF, 0xE1];
    out.extend((app1.len() as u16 + 2).to_be_bytes());
    out.extend(app1);
    out.extend(&jpeg[2..]);
    out
}
