//! Many photos, several threads, output in order: what `recognise` and `detect` share when
//! they are given folders (and face_recognition's `--cpus`).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;

use anyhow::{Context, bail};
use likeness_face::compat;

/// The photos named by `inputs`: a folder gives its photos (jpg, jpeg, png, in name order), a
/// file itself. A missing input is an error naming it.
pub fn photos_in(inputs: &[PathBuf]) -> anyhow::Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    for input in inputs {
        if input.is_dir() {
            files.extend(
                compat::image_files_in_folder(input)
                    .with_context(|| format!("cannot read the folder {}", input.display()))?,
            );
        } else if input.exists() {
            files.push(input.clone());
        } else {
            bail!("{}: no such file or folder", input.display());
        }
    }
    Ok(files)
}

/// Worker threads from `--cpus` (face_recognition's: −1 for every core) or, without it,
/// `--jobs`.
pub fn threads(cpus: Option<i64>, jobs: u32) -> anyhow::Result<usize> {
    match cpus {
        Some(n) => compat::cpus_to_threads(n).map_err(anyhow::Error::msg),
        None => Ok(jobs.max(1) as usize),
    }
}

/// Runs `work` on every file on `threads` threads and hands each result to `sink` in the
/// files' order, as soon as it and all before it are done.
pub fn for_each_in_order<T: Send>(
    files: &[PathBuf],
    threads: usize,
    work: impl Fn(&Path) -> T + Sync,
    mut sink: impl FnMut(&Path, T),
) {
    if threads <= 1 || files.len() <= 1 {
        for path in files {
            sink(path, work(path));
        }
        return;
    }
    let next = AtomicUsize::new(0);
    let (tx, rx) = mpsc::channel::<(usize, T)>();
    std::thread::scope(|scope| {
        for _ in 0..threads.min(files.len()) {
            let (tx, next, work) = (tx.clone(), &next, &work);
            scope.spawn(move || {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(path) = files.get(i) else { break };
                    if tx.send((i, work(path))).is_err() {
                        break;
                    }
                }
            });
        }
        drop(tx);
        let mut pending = BTreeMap::new();
        let mut done = 0usize;
        for (i, result) in rx {
            pending.insert(i, result);
            while let Some(result) = pending.remove(&done) {
                sink(&files[done], result);
                done += 1;
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn results_come_in_the_files_order_whatever_finishes_first() {
        let files: Vec<PathBuf> = (0..20).map(|i| PathBuf::from(format!("{i}"))).collect();
        let work = |p: &Path| {
            let i: u64 = p.to_str().unwrap().parse().unwrap();
            // later files finish first
            std::thread::sleep(std::time::Duration::from_millis(20 - i));
            i * i
        };
        for threads in [1, 3, 8] {
            let mut seen = Vec::new();
            for_each_in_order(&files, threads, work, |p, v| {
                seen.push((p.to_path_buf(), v))
            });
            let expected: Vec<_> = (0..20u64)
                .map(|i| (PathBuf::from(format!("{i}")), i * i))
                .collect();
            assert_eq!(seen, expected, "{threads} threads");
        }
    }

    #[test]
    fn cpus_wins_over_jobs_and_minus_one_is_every_core() {
        assert_eq!(threads(None, 3).unwrap(), 3);
        assert_eq!(threads(Some(2), 3).unwrap(), 2);
        assert!(threads(Some(-1), 1).unwrap() >= 1);
        assert!(threads(Some(0), 1).is_err());
    }
}
