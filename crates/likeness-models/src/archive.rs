//! Taking named members out of `.whl` (zip) and `.tar.gz`/`.tgz` archives.
//!
//! Only the members asked for are read, by exact name, and only from regular-file entries whose
//! names are plain relative paths: an entry named with `..`, an absolute path or a drive prefix is
//! never matched, and links are never followed. Output paths never come from the archive.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufReader, Read};
use std::path::Path;

use crate::error::{ModelsError, Result};

/// True when `name` is a relative path of normal components only (no `..`, `.`, empty parts,
/// root, drive letters or backslashes): the only names we match members against.
pub fn is_safe_member_name(name: &str) -> bool {
    !name.is_empty()
        && !name.contains('\\')
        && !name.contains('\0')
        && name
            .split('/')
            .all(|part| !part.is_empty() && part != "." && part != ".." && !part.contains(':'))
}

/// Reads the members `wanted` out of the archive at `path` (format chosen by its name), returning
/// each member's bytes by name. Fails if any is missing.
pub fn read_members(path: &Path, wanted: &[&str]) -> Result<BTreeMap<String, Vec<u8>>> {
    let label = path.display().to_string();
    let file = File::open(path).map_err(|e| ModelsError::io(path, e))?;
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let found = if name.ends_with(".whl") || name.ends_with(".zip") {
        read_zip(BufReader::new(file), wanted, &label)?
    } else if name.ends_with(".tar.gz") || name.ends_with(".tgz") {
        read_tar_gz(BufReader::new(file), wanted, &label)?
    } else {
        return Err(ModelsError::Archive {
            archive: label,
            message: "unknown archive type (expected .whl, .zip, .tar.gz or .tgz)".into(),
        });
    };
    for member in wanted {
        if !found.contains_key(*member) {
            return Err(ModelsError::MemberMissing {
                archive: label,
                member: member.to_string(),
            });
        }
    }
    Ok(found)
}

/// The wanted members found so far in one archive.
struct Found<'a> {
    wanted: &'a [&'a str],
    label: &'a str,
    members: BTreeMap<String, Vec<u8>>,
}

impl<'a> Found<'a> {
    fn new(wanted: &'a [&'a str], label: &'a str) -> Self {
        Found {
            wanted,
            label,
            members: BTreeMap::new(),
        }
    }

    /// True for a safe name that is wanted and not yet read (the first of duplicates wins).
    fn wants(&self, name: &str) -> bool {
        is_safe_member_name(name) && self.wanted.contains(&name) && !self.members.contains_key(name)
    }

    /// Reads a member's bytes (`size_hint` only reserves; the entry decides the length).
    fn read(&mut self, name: String, mut entry: impl Read, size_hint: u64) -> Result<()> {
        let mut bytes = Vec::with_capacity(usize::try_from(size_hint).unwrap_or(0).min(1 << 30));
        entry
            .read_to_end(&mut bytes)
            .map_err(|e| ModelsError::Archive {
                archive: self.label.to_string(),
                message: format!("member `{name}`: {e}"),
            })?;
        self.members.insert(name, bytes);
        Ok(())
    }
}

fn read_zip<R: Read + std::io::Seek>(
    reader: R,
    wanted: &[&str],
    label: &str,
) -> Result<BTreeMap<String, Vec<u8>>> {
    let bad = |e: zip::result::ZipError| ModelsError::Archive {
        archive: label.to_string(),
        message: e.to_string(),
    };
    let mut zip = zip::ZipArchive::new(reader).map_err(bad)?;
    let mut found = Found::new(wanted, label);
    for i in 0..zip.len() {
        let entry = zip.by_index(i).map_err(bad)?;
        let Ok(name) = entry.name().map(|n| n.into_owned()) else {
            continue;
        };
        if entry.is_file() && !entry.is_symlink() && found.wants(&name) {
            let size = entry.size();
            found.read(name, entry, size)?;
        }
    }
    Ok(found.members)
}

fn read_tar_gz<R: Read>(
    reader: R,
    wanted: &[&str],
    label: &str,
) -> Result<BTreeMap<String, Vec<u8>>> {
    let bad = |e: std::io::Error| ModelsError::Archive {
        archive: label.to_string(),
        message: e.to_string(),
    };
    let mut tar = tar::Archive::new(flate2::read::GzDecoder::new(reader));
    let mut found = Found::new(wanted, label);
    for entry in tar.entries().map_err(bad)? {
        let entry = entry.map_err(bad)?;
        let kind = entry.header().entry_type();
        if !(kind.is_file() || kind == tar::EntryType::Continuous) {
            continue;
        }
        // The raw name bytes (with GNU/PAX long names applied): `path()` would normalise them.
        let name = match std::str::from_utf8(&entry.path_bytes()) {
            Ok(n) => n.to_string(),
            Err(_) => continue,
        };
        if found.wants(&name) {
            found.read(name, entry, 0)?;
        }
    }
    Ok(found.members)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tar_gz(entries: &[(&str, tar::EntryType, &[u8])]) -> Vec<u8> {
        let gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        let mut builder = tar::Builder::new(gz);
        for (name, kind, data) in entries {
            let mut header = tar::Header::new_gnu();
            // Write the name bytes directly: `set_path` refuses `..`, and we want to test that.
            let field = &mut header.as_old_mut().name;
            field[..name.len()].copy_from_slice(name.as_bytes());
            header.set_entry_type(*kind);
            header.set_size(data.len() as u64);
            header.set_mode(0o644);
            header.set_cksum();
            builder.append(&header, *data).unwrap();
        }
        builder.into_inner().unwrap().finish().unwrap()
    }

    fn write_temp(name: &str, bytes: &[u8]) -> (tempfile::TempDir, std::path::PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(name);
        std::fs::write(&path, bytes).unwrap();
        (dir, path)
    }

    #[test]
    fn safe_names() {
        assert!(is_safe_member_name("package/ONNX/a.onnx"));
        for bad in [
            "",
            "../a",
            "a/../../b",
            "a/./b",
            "/etc/passwd",
            "a//b",
            "C:/x",
            "a\\..\\b",
            "a/",
        ] {
            assert!(!is_safe_member_name(bad), "{bad:?} accepted");
        }
    }

    #[test]
    fn tar_gz_takes_wanted_regular_members_only() {
        let bytes = tar_gz(&[
            ("package/other.txt", tar::EntryType::Regular, b"no"),
            ("package/model.onnx", tar::EntryType::Regular, b"weights"),
        ]);
        let (_dir, path) = write_temp("p-1.0.tgz", &bytes);
        let got = read_members(&path, &["package/model.onnx"]).unwrap();
        assert_eq!(got.len(), 1);
        assert_eq!(got["package/model.onnx"], b"weights");
    }

    #[test]
    fn tar_gz_path_traversal_is_never_matched() {
        // The wanted name only exists under a traversing name or as a symlink.
        let bytes = tar_gz(&[
            ("../../evil/model.onnx", tar::EntryType::Regular, b"evil"),
            ("package/../model.onnx", tar::EntryType::Regular, b"evil"),
            ("package/model.onnx", tar::EntryType::Symlink, b""),
        ]);
        let (_dir, path) = write_temp("p-1.0.tar.gz", &bytes);
        for wanted in [
            "../../evil/model.onnx",
            "package/../model.onnx",
            "package/model.onnx",
        ] {
            let err = read_members(&path, &[wanted]).unwrap_err();
            assert!(matches!(err, ModelsError::MemberMissing { .. }), "{err}");
        }
    }

    #[test]
    fn zip_takes_members_and_rejects_traversal() {
        let mut w = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
        let opts = zip::write::SimpleFileOptions::default()
            .compression_method(zip::CompressionMethod::Deflated);
        for (name, data) in [("pkg/data/a.png", &b"png"[..]), ("../pkg/b.png", b"evil")] {
            w.start_file(name, opts).unwrap();
            std::io::Write::write_all(&mut w, data).unwrap();
        }
        let bytes = w.finish().unwrap().into_inner();
        let (_dir, path) = write_temp("p-1.0-py3-none-any.whl", &bytes);
        let got = read_members(&path, &["pkg/data/a.png"]).unwrap();
        assert_eq!(got["pkg/data/a.png"], b"png");
        let err = read_members(&path, &["../pkg/b.png"]).unwrap_err();
        assert!(matches!(err, ModelsError::MemberMissing { .. }), "{err}");
    }

    #[test]
    fn corrupt_archive_is_an_error() {
        let (_dir, path) = write_temp("p-1.0.tgz", b"not gzip at all");
        let err = read_members(&path, &["a"]).unwrap_err();
        assert!(matches!(err, ModelsError::Archive { .. }), "{err}");
    }
}
