//! The JSON file store: today's `gallery.json`, one document read and rewritten whole.
//!
//! - Every change is read-modify-write under an exclusive advisory lock on a side file
//!   (`gallery.json.lock`), so concurrent writers queue instead of overwriting each other; the
//!   OS drops the lock when its holder dies, so a killed writer never leaves it stuck.
//! - The new content goes to a temporary file in the same directory, is flushed to disk, then
//!   renamed over the gallery (and the directory synced): readers see the old file or the new
//!   one, never a mix, and a killed write leaves the old file intact.
//! - The file carries a format version; a newer one is refused, untouched. Fields this code
//!   does not know are kept on rewrite.
//! - A change is validated before it is written ([`GalleryData::validate`]): a document a
//!   change would leave broken is never written, and a damaged one (a `null` embedding from
//!   an older Likeness) can still be repaired by removing the person it names.
//!
//! Fine for hundreds of people; at 100,000 (one sample each) every call parses 287 MB (1.15 s
//! per identify, issue 12): use the embedded store for galleries that size.

use std::fs::{File, OpenOptions};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::GalleryStore;
use crate::document::GalleryData;
use crate::error::{GalleryError, Result};
use crate::model::{
    Candidate, EnrolRequest, Enrolment, ImportReport, PersonRef, PersonSummary, Who,
};

/// How long a writer waits for another to finish before giving up.
pub const DEFAULT_LOCK_TIMEOUT: Duration = Duration::from_secs(30);
/// Pause between attempts to take the lock.
const LOCK_POLL: Duration = Duration::from_millis(10);

/// A gallery JSON file and the rules for changing it.
#[derive(Clone, Debug)]
pub struct JsonGallery {
    path: PathBuf,
    lock_timeout: Duration,
}

impl JsonGallery {
    /// The gallery at `path` (nothing is read or created yet).
    pub fn at(path: impl Into<PathBuf>) -> JsonGallery {
        JsonGallery {
            path: path.into(),
            lock_timeout: DEFAULT_LOCK_TIMEOUT,
        }
    }

    /// How long writers wait for the lock.
    pub fn with_lock_timeout(mut self, timeout: Duration) -> JsonGallery {
        self.lock_timeout = timeout;
        self
    }

    /// The gallery file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn location(&self) -> String {
        self.path.display().to_string()
    }

    /// Reads the document without checking its content; a missing file is an empty gallery.
    fn read(&self) -> Result<GalleryData> {
        crate::check_regular(&self.path)?;
        let bytes = match std::fs::read(&self.path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Ok(GalleryData::default());
            }
            Err(e) => return Err(GalleryError::io(&self.path, e)),
        };
        GalleryData::parse(&bytes, &self.location())
    }

    /// Reads and validates the gallery; a missing file is an empty gallery.
    pub fn load(&self) -> Result<GalleryData> {
        let data = self.read()?;
        data.validate(&self.location())?;
        Ok(data)
    }

    /// Changes the gallery: takes the writers' lock, reads the current content, applies
    /// `change`, validates the result and writes it atomically. Nothing is written if
    /// `change` or the validation fails.
    pub fn update<T>(&self, change: impl FnOnce(&mut GalleryData) -> Result<T>) -> Result<T> {
        let _lock = self.lock()?;
        let mut data = self.read()?;
        let out = change(&mut data)?;
        data.format = crate::document::FORMAT_NAME.into();
        data.version = crate::document::FORMAT_VERSION;
        data.validate(&self.location())?;
        likeness_fs::write_atomic(&self.path, &data.to_bytes()?)?;
        Ok(out)
    }

    /// Takes the exclusive writers' lock, waiting up to the lock timeout.
    pub(crate) fn lock(&self) -> Result<File> {
        let lock_path = crate::side_path(&self.path, ".lock");
        if let Some(dir) = self.path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| GalleryError::io(dir, e))?;
        }
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(|e| GalleryError::io(&lock_path, e))?;
        let start = Instant::now();
        loop {
            match file.try_lock() {
                Ok(()) => return Ok(file),
                Err(std::fs::TryLockError::WouldBlock) => {
                    if start.elapsed() >= self.lock_timeout {
                        return Err(GalleryError::Locked {
                            location: self.location(),
                            waited_s: start.elapsed().as_secs_f64(),
                        });
                    }
                    std::thread::sleep(LOCK_POLL);
                }
                Err(std::fs::TryLockError::Error(e)) => {
                    return Err(GalleryError::io(&lock_path, e));
                }
            }
        }
    }
}

impl GalleryStore for JsonGallery {
    fn location(&self) -> String {
        JsonGallery::location(self)
    }

    fn embedder(&self) -> Result<Option<String>> {
        Ok(self.load()?.embedder)
    }

    fn enrol(&self, request: EnrolRequest) -> Result<Enrolment> {
        let location = self.location();
        self.update(|g| g.enrol(request, &location))
    }

    fn rename(&self, who: &Who, new_name: &str) -> Result<PersonRef> {
        self.update(|g| g.rename(who, new_name))
    }

    fn remove(&self, who: &Who) -> Result<PersonSummary> {
        self.update(|g| g.remove(who))
    }

    fn list(&self) -> Result<Vec<PersonSummary>> {
        Ok(self.load()?.summaries())
    }

    fn identify(
        &self,
        embedder: &str,
        queries: &[Vec<f32>],
        k: usize,
        tolerance: f32,
    ) -> Result<Vec<Vec<Candidate>>> {
        self.load()?
            .identify(embedder, queries, k, tolerance, &self.location())
    }

    fn export(&self) -> Result<GalleryData> {
        self.load()
    }

    fn import(&self, data: GalleryData) -> Result<ImportReport> {
        let location = self.location();
        self.update(|g| g.import(data, &location))
    }
}
