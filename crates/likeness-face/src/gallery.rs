//! The gallery: enrolled people and their face embeddings, in one JSON file.
//!
//! - Default location `$LIKENESS_HOME/gallery.json` (`~/.cache/likeness/gallery.json`).
//! - Every change is read-modify-write under an exclusive advisory lock on a side file
//!   (`gallery.json.lock`), so concurrent writers queue instead of overwriting each other; the
//!   OS drops the lock when its holder dies, so a killed writer never leaves it stuck.
//! - The new content goes to a temporary file in the same directory, is flushed to disk,
//!   then renamed over the gallery (and the directory synced): readers see the old file or
//!   the new one, never a mix, and a killed write leaves the old file intact.
//! - The file carries a format version; a newer one is refused, untouched.
//!
//! Identification is exact nearest-neighbour search over every stored embedding.

use std::fs::{File, OpenOptions};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::compare::{DEFAULT_TOLERANCE, Embedding};
use crate::error::{FaceError, Result};

/// The gallery format this code writes, and the newest it reads.
pub const FORMAT_VERSION: u32 = 1;
/// The `format` field identifying a gallery file.
pub const FORMAT_NAME: &str = "likeness-gallery";
/// How long a writer waits for another to finish before giving up.
pub const DEFAULT_LOCK_TIMEOUT: Duration = Duration::from_secs(30);
/// Pause between attempts to take the lock.
const LOCK_POLL: Duration = Duration::from_millis(10);

/// One stored face of a person.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Sample {
    pub embedding: Embedding,
    /// Where the face came from (file name, and face index when a photo had several).
    pub source: String,
}

/// An enrolled person.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Person {
    /// Stable identifier, never reused within a gallery.
    pub id: u64,
    pub name: String,
    pub samples: Vec<Sample>,
}

/// The content of a gallery file.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct GalleryData {
    pub format: String,
    pub version: u32,
    /// Name of the embedding model every sample comes from, set by the first enrolment;
    /// embeddings of different models are not comparable.
    pub embedder: Option<String>,
    pub next_id: u64,
    pub persons: Vec<Person>,
}

impl Default for GalleryData {
    fn default() -> Self {
        GalleryData {
            format: FORMAT_NAME.into(),
            version: FORMAT_VERSION,
            embedder: None,
            next_id: 1,
            persons: Vec::new(),
        }
    }
}

impl GalleryData {
    /// The person called `who`, or whose id is `who` (`7` or `#7`).
    pub fn find(&self, who: &str) -> Option<&Person> {
        let i = self.position(who)?;
        Some(&self.persons[i])
    }

    fn position(&self, who: &str) -> Option<usize> {
        if let Some(i) = self.persons.iter().position(|p| p.name == who) {
            return Some(i);
        }
        let id: u64 = who.strip_prefix('#').unwrap_or(who).parse().ok()?;
        self.persons.iter().position(|p| p.id == id)
    }

    /// Refuses embeddings of another model than the gallery's: they are not comparable.
    pub fn check_embedder(&self, embedder: &str) -> Result<()> {
        match &self.embedder {
            Some(e) if e != embedder => Err(FaceError::Invalid(format!(
                "this gallery holds `{e}` embeddings; `{embedder}` ones cannot be compared with \
                 them (use the encoder it was enrolled with, or another --gallery)"
            ))),
            _ => Ok(()),
        }
    }

    /// Adds `samples` to the person named `name`, creating them if new; returns their id.
    pub fn enrol(&mut self, name: &str, embedder: &str, samples: Vec<Sample>) -> Result<u64> {
        let name = valid_name(name)?;
        if samples.is_empty() {
            return Err(FaceError::Invalid(format!(
                "no faces to enrol for `{name}`"
            )));
        }
        self.check_embedder(embedder)?;
        let len = self
            .persons
            .iter()
            .flat_map(|p| &p.samples)
            .map(|s| s.embedding.len())
            .next()
            .unwrap_or(samples[0].embedding.len());
        if let Some(s) = samples.iter().find(|s| s.embedding.len() != len) {
            return Err(FaceError::Dimension(len, s.embedding.len()));
        }
        self.embedder = Some(embedder.to_string());
        if let Some(p) = self.persons.iter_mut().find(|p| p.name == name) {
            p.samples.extend(samples);
            return Ok(p.id);
        }
        let id = self.next_id;
        self.next_id += 1;
        self.persons.push(Person { id, name, samples });
        Ok(id)
    }

    /// Renames a person; the new name must be free.
    pub fn rename(&mut self, who: &str, new_name: &str) -> Result<()> {
        let new_name = valid_name(new_name)?;
        let i = self
            .position(who)
            .ok_or_else(|| FaceError::NoSuchPerson(who.into()))?;
        if self
            .persons
            .iter()
            .enumerate()
            .any(|(j, p)| j != i && p.name == new_name)
        {
            return Err(FaceError::DuplicateName(new_name));
        }
        self.persons[i].name = new_name;
        Ok(())
    }

    /// Removes a person and returns them.
    pub fn remove(&mut self, who: &str) -> Result<Person> {
        let i = self
            .position(who)
            .ok_or_else(|| FaceError::NoSuchPerson(who.into()))?;
        Ok(self.persons.remove(i))
    }

    /// Open-set identification of one face: the nearest person over all their samples, and
    /// whether they are within `tolerance`.
    pub fn identify(&self, query: &Embedding, tolerance: f32) -> Result<Identification> {
        let mut best: Option<(f32, &Person)> = None;
        for p in &self.persons {
            for s in &p.samples {
                let d = query.distance(&s.embedding)?;
                if best.is_none_or(|(bd, _)| d < bd) {
                    best = Some((d, p));
                }
            }
        }
        Ok(match best {
            Some((distance, p)) => Identification {
                known: distance <= tolerance,
                nearest: Some(NearestPerson {
                    id: p.id,
                    name: p.name.clone(),
                }),
                distance: Some(distance),
            },
            None => Identification {
                known: false,
                nearest: None,
                distance: None,
            },
        })
    }
}

fn valid_name(name: &str) -> Result<String> {
    let name = name.trim();
    if name.is_empty() || name.chars().any(char::is_control) {
        return Err(FaceError::Invalid(format!(
            "`{name}` is not a usable name (empty or control characters)"
        )));
    }
    Ok(name.to_string())
}

/// Who a face is, or that it is unknown.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Identification {
    /// The nearest person is within the tolerance.
    pub known: bool,
    /// The nearest enrolled person, known or not; `None` for an empty gallery.
    pub nearest: Option<NearestPerson>,
    pub distance: Option<f32>,
}

/// A person's identity, as reported by identification.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct NearestPerson {
    pub id: u64,
    pub name: String,
}

/// A gallery file and the rules for changing it.
#[derive(Clone, Debug)]
pub struct Gallery {
    path: PathBuf,
    lock_timeout: Duration,
}

impl Gallery {
    /// The gallery at `path` (nothing is read or created yet).
    pub fn at(path: impl Into<PathBuf>) -> Gallery {
        Gallery {
            path: path.into(),
            lock_timeout: DEFAULT_LOCK_TIMEOUT,
        }
    }

    /// `$LIKENESS_HOME/gallery.json`, `$LIKENESS_HOME` defaulting to `~/.cache/likeness`.
    pub fn default_path() -> PathBuf {
        let home = std::env::var_os("LIKENESS_HOME")
            .map(PathBuf::from)
            .unwrap_or_else(|| {
                std::env::var_os("HOME")
                    .map(PathBuf::from)
                    .unwrap_or_default()
                    .join(".cache")
                    .join("likeness")
            });
        home.join("gallery.json")
    }

    /// How long writers wait for the lock.
    pub fn with_lock_timeout(mut self, timeout: Duration) -> Gallery {
        self.lock_timeout = timeout;
        self
    }

    /// The gallery file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Reads the gallery; a missing file is an empty gallery.
    pub fn load(&self) -> Result<GalleryData> {
        let bytes = match std::fs::read(&self.path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Ok(GalleryData::default());
            }
            Err(e) => return Err(FaceError::io(&self.path, e)),
        };
        self.parse(&bytes)
    }

    fn parse(&self, bytes: &[u8]) -> Result<GalleryData> {
        let corrupt = |message: String| FaceError::GalleryCorrupt {
            path: self.path.clone(),
            message,
        };
        // Read the header first, so a newer format is reported as such even if the rest
        // of it no longer parses as this version's.
        #[derive(serde::Deserialize)]
        struct Header {
            format: String,
            version: u32,
        }
        let header: Header = serde_json::from_slice(bytes)
            .map_err(|e| corrupt(format!("not a gallery file ({e})")))?;
        if header.format != FORMAT_NAME {
            return Err(corrupt(format!(
                "format is `{}`, not `{FORMAT_NAME}`",
                header.format
            )));
        }
        if header.version > FORMAT_VERSION {
            return Err(FaceError::GalleryVersion {
                path: self.path.clone(),
                found: header.version,
                supported: FORMAT_VERSION,
            });
        }
        serde_json::from_slice(bytes).map_err(|e| corrupt(e.to_string()))
    }

    /// Changes the gallery: takes the writers' lock, reads the current content, applies
    /// `change`, and writes the result atomically. Nothing is written if `change` fails.
    pub fn update<T>(&self, change: impl FnOnce(&mut GalleryData) -> Result<T>) -> Result<T> {
        let _lock = self.lock()?;
        let mut data = self.load()?;
        let out = change(&mut data)?;
        data.format = FORMAT_NAME.into();
        data.version = FORMAT_VERSION;
        let mut bytes = serde_json::to_vec_pretty(&data)
            .map_err(|e| FaceError::Invalid(format!("cannot serialise the gallery: {e}")))?;
        bytes.push(b'\n');
        likeness_nn::weights::write_atomic(&self.path, &bytes)?;
        Ok(out)
    }

    /// Enrols faces for `name` (new or existing person); returns the person's id.
    pub fn enrol(&self, name: &str, embedder: &str, samples: Vec<Sample>) -> Result<u64> {
        self.update(|g| g.enrol(name, embedder, samples))
    }

    /// Renames the person `who` (name or id).
    pub fn rename(&self, who: &str, new_name: &str) -> Result<()> {
        self.update(|g| g.rename(who, new_name))
    }

    /// Removes the person `who` (name or id) and returns them.
    pub fn remove(&self, who: &str) -> Result<Person> {
        self.update(|g| g.remove(who))
    }

    /// Everyone enrolled.
    pub fn list(&self) -> Result<Vec<Person>> {
        Ok(self.load()?.persons)
    }

    /// Identifies one face with the default tolerance ([`DEFAULT_TOLERANCE`]) or another.
    pub fn identify(&self, query: &Embedding, tolerance: Option<f32>) -> Result<Identification> {
        self.load()?
            .identify(query, tolerance.unwrap_or(DEFAULT_TOLERANCE))
    }

    /// Takes the exclusive writers' lock, waiting up to the lock timeout.
    fn lock(&self) -> Result<File> {
        let lock_path = side_path(&self.path, ".lock");
        if let Some(dir) = self.path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| FaceError::io(dir, e))?;
        }
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(|e| FaceError::io(&lock_path, e))?;
        let start = Instant::now();
        loop {
            match file.try_lock() {
                Ok(()) => return Ok(file),
                Err(std::fs::TryLockError::WouldBlock) => {
                    if start.elapsed() >= self.lock_timeout {
                        return Err(FaceError::GalleryLocked {
                            path: self.path.clone(),
                            waited_s: start.elapsed().as_secs_f64(),
                        });
                    }
                    std::thread::sleep(LOCK_POLL);
                }
                Err(std::fs::TryLockError::Error(e)) => {
                    return Err(FaceError::io(&lock_path, e));
                }
            }
        }
    }
}

/// `path` with `suffix` appended to its file name.
fn side_path(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(suffix);
    path.with_file_name(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dir(name: &str) -> PathBuf {
        let d =
            std::env::temp_dir().join(format!("likeness-gallery-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    fn sample(x: f32, source: &str) -> Sample {
        let mut v = vec![0.0; 128];
        v[0] = x;
        Sample {
            embedding: Embedding(v),
            source: source.into(),
        }
    }

    const DLIB: &str = "dlib_face_recognition_resnet_model_v1";

    #[test]
    fn enrol_list_rename_remove_identify() {
        let d = dir("basic");
        let g = Gallery::at(d.join("gallery.json"));
        assert!(g.list().unwrap().is_empty());
        let ada = g.enrol("Ada", DLIB, vec![sample(0.0, "ada1.jpg")]).unwrap();
        let bob = g.enrol("Bob", DLIB, vec![sample(1.0, "bob.jpg")]).unwrap();
        // a second photo of Ada joins her record
        assert_eq!(
            g.enrol("Ada", DLIB, vec![sample(0.1, "ada2.jpg")]).unwrap(),
            ada
        );
        let people = g.list().unwrap();
        assert_eq!(people.len(), 2);
        assert_eq!(people[0].samples.len(), 2);

        let who = g.identify(&sample(0.95, "q").embedding, None).unwrap();
        assert!(who.known);
        assert_eq!(who.nearest.unwrap().id, bob);
        let stranger = g.identify(&sample(5.0, "q").embedding, None).unwrap();
        assert!(!stranger.known);
        assert!(stranger.distance.unwrap() > DEFAULT_TOLERANCE);

        g.rename("Bob", "Robert").unwrap();
        assert!(matches!(
            g.rename("Ada", "Robert"),
            Err(FaceError::DuplicateName(_))
        ));
        assert!(matches!(
            g.rename("Nobody", "X"),
            Err(FaceError::NoSuchPerson(_))
        ));
        assert_eq!(g.remove(&format!("#{bob}")).unwrap().name, "Robert");
        assert_eq!(g.list().unwrap().len(), 1);
        // ids are not reused
        assert!(g.enrol("Cy", DLIB, vec![sample(2.0, "cy.jpg")]).unwrap() > bob);
        // wrong embedder or length is refused, and nothing changes
        assert!(g.enrol("Dee", "other", vec![sample(3.0, "d.jpg")]).is_err());
        let short = Sample {
            embedding: Embedding(vec![0.0; 3]),
            source: "x".into(),
        };
        assert!(g.enrol("Dee", DLIB, vec![short]).is_err());
        assert!(g.enrol(" ", DLIB, vec![sample(3.0, "d.jpg")]).is_err());
        assert_eq!(g.list().unwrap().len(), 2);
        let _ = std::fs::remove_dir_all(d);
    }

    #[test]
    fn concurrent_writers_lose_nothing() {
        let d = dir("concurrent");
        let path = d.join("gallery.json");
        let threads: Vec<_> = (0..4)
            .map(|t| {
                let g = Gallery::at(&path);
                std::thread::spawn(move || {
                    for i in 0..15 {
                        g.enrol(&format!("p{t}-{i}"), DLIB, vec![sample(i as f32, "x")])
                            .unwrap();
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        let data = Gallery::at(&path).load().unwrap();
        assert_eq!(data.persons.len(), 60);
        let mut ids: Vec<_> = data.persons.iter().map(|p| p.id).collect();
        ids.sort();
        ids.dedup();
        assert_eq!(ids.len(), 60);
        let _ = std::fs::remove_dir_all(d);
    }

    #[test]
    fn a_second_writer_waits_then_fails_clearly() {
        let d = dir("locked");
        let g = Gallery::at(d.join("gallery.json")).with_lock_timeout(Duration::from_millis(100));
        let held = g.lock().unwrap();
        let err = g.enrol("Ada", DLIB, vec![sample(0.0, "a")]).unwrap_err();
        assert!(matches!(err, FaceError::GalleryLocked { .. }), "{err}");
        drop(held);
        g.enrol("Ada", DLIB, vec![sample(0.0, "a")]).unwrap();
        let _ = std::fs::remove_dir_all(d);
    }

    #[test]
    fn a_killed_write_leaves_the_old_gallery_intact() {
        let d = dir("killed");
        let path = d.join("gallery.json");
        let g = Gallery::at(&path);
        g.enrol("Ada", DLIB, vec![sample(0.0, "a")]).unwrap();
        let before = std::fs::read(&path).unwrap();
        // what a writer killed mid-write leaves: a partial temporary file beside the gallery
        std::fs::write(side_path(&path, ".tmp-99999"), &before[..before.len() / 2]).unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), before);
        assert_eq!(g.list().unwrap().len(), 1);
        g.enrol("Bob", DLIB, vec![sample(1.0, "b")]).unwrap();
        assert_eq!(g.list().unwrap().len(), 2);
        // a failing change writes nothing
        let after = std::fs::read(&path).unwrap();
        assert!(g.remove("Nobody").is_err());
        assert_eq!(std::fs::read(&path).unwrap(), after);
        let _ = std::fs::remove_dir_all(d);
    }

    #[test]
    fn newer_versions_and_garbage_are_refused_untouched() {
        let d = dir("version");
        let path = d.join("gallery.json");
        let newer = r#"{"format":"likeness-gallery","version":2,"people":{"new":"layout"}}"#;
        std::fs::write(&path, newer).unwrap();
        let g = Gallery::at(&path);
        let err = g.load().unwrap_err();
        assert!(
            matches!(
                err,
                FaceError::GalleryVersion {
                    found: 2,
                    supported: 1,
                    ..
                }
            ),
            "{err}"
        );
        assert!(err.to_string().contains("gallery.json"));
        assert!(g.enrol("Ada", DLIB, vec![sample(0.0, "a")]).is_err());
        assert_eq!(std::fs::read_to_string(&path).unwrap(), newer);

        std::fs::write(&path, b"{\"format\":\"likeness-gallery\",\"vers").unwrap();
        assert!(matches!(g.load(), Err(FaceError::GalleryCorrupt { .. })));
        std::fs::write(&path, br#"{"format":"something-else","version":1}"#).unwrap();
        assert!(matches!(g.load(), Err(FaceError::GalleryCorrupt { .. })));
        let _ = std::fs::remove_dir_all(d);
    }
}
