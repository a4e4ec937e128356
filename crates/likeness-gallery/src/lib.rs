//! Galleries of enrolled people: the one store trait ([`GalleryStore`]), exact comparison and
//! top-k ([`search`]), and the stores behind it. Embeddings are plain `Vec<f32>` / `&[f32]`
//! here; this crate knows nothing of networks (it never builds burn), so database code and the
//! HTTP service's storage build in seconds.
//!
//! The model: a person has an id (`#N`, never reused), a unique name and one or more samples
//! (an embedding and where it came from); a gallery holds one embedder's embeddings, all of
//! one length and finite. Identification answers per person, at the best sample's distance.
//!
//! # Why the trait is synchronous
//!
//! Every store is blocking underneath: the JSON file and the embedded store are file I/O
//! under a lock, and an exact or ANN search is CPU work (about a millisecond per query on the
//! embedded store's index, bench/gallery). An `async` trait would make the CLI start a
//! runtime for each command and still need `spawn_blocking` inside those stores, so the colouring would buy nothing for
//! two of the three. The service (axum on tokio) holds an `Arc<dyn GalleryStore>` and calls it
//! in `tokio::task::spawn_blocking`, which is what it must do for CPU work anyway; the
//! PostgreSQL store uses the synchronous `postgres` client (tokio-postgres driven on its own
//! small runtime), so a query waits on a blocking-pool thread, never on a reactor thread.
//! The trait is object-safe and `Send + Sync`: one store can serve many threads.

pub mod document;
pub mod embedded;
pub mod error;
pub mod json;
pub mod model;
#[cfg(feature = "postgres")]
pub mod pg;
pub mod search;
pub mod sketch;

pub use document::{FORMAT_NAME, FORMAT_VERSION, GalleryData};
pub use embedded::EmbeddedGallery;
pub use error::{GalleryError, Result};
pub use json::JsonGallery;
pub use model::{
    Candidate, EnrolRequest, EnrolWarning, Enrolment, ImportReport, Person, PersonRef,
    PersonSummary, Sample, Who, check_embedding, valid_name,
};
#[cfg(feature = "postgres")]
pub use pg::PostgresGallery;

/// A gallery of enrolled people, wherever it is kept. Every method is one transaction: it
/// happens whole or not at all, and concurrent callers (threads or processes) never lose each
/// other's changes.
pub trait GalleryStore: Send + Sync + std::fmt::Debug {
    /// Where the gallery is (a path, or a URL without its password), for messages.
    fn location(&self) -> String;

    /// The id of the embedder whose embeddings the gallery holds (`None` while empty).
    fn embedder(&self) -> Result<Option<String>>;

    /// Adds samples to the person of that name, creating them if new. A sample far from the
    /// person's others or close to someone else's is refused unless the request insists.
    fn enrol(&self, request: EnrolRequest) -> Result<Enrolment>;

    /// Renames a person; the new name must be free.
    fn rename(&self, who: &Who, new_name: &str) -> Result<PersonRef>;

    /// Removes a person and every sample of theirs.
    fn remove(&self, who: &Who) -> Result<PersonSummary>;

    /// Everyone, by id.
    fn list(&self) -> Result<Vec<PersonSummary>>;

    /// For each query, the `k` people nearest to it (each at their best sample's distance),
    /// nearest first, `known` when within `tolerance`. Queries of another embedder than the
    /// gallery's are refused.
    fn identify(
        &self,
        embedder: &str,
        queries: &[Vec<f32>],
        k: usize,
        tolerance: f32,
    ) -> Result<Vec<Vec<Candidate>>>;

    /// The whole gallery in the JSON document format.
    fn export(&self) -> Result<GalleryData>;

    /// Adds a document's people (see [`GalleryData::import`] for the rules), in one
    /// transaction.
    fn import(&self, data: GalleryData) -> Result<ImportReport>;
}

#[cfg(test)]
mod tests;

/// Opens the gallery a `--gallery` argument names: a `postgres://` (or `postgresql://`) URL
/// is PostgreSQL, a path ending in `.json` is a JSON file, any other path is the embedded
/// store (created when absent).
pub fn open(spec: &str) -> Result<Box<dyn GalleryStore>> {
    if spec.starts_with("postgres://") || spec.starts_with("postgresql://") {
        #[cfg(feature = "postgres")]
        return Ok(Box::new(PostgresGallery::connect(spec)?));
        #[cfg(not(feature = "postgres"))]
        return Err(GalleryError::Invalid(format!(
            "{}: this Likeness was built without PostgreSQL support (`--no-default-features`); \
             build it with its default features",
            pg_redact(spec)
        )));
    }
    let path = std::path::Path::new(spec);
    if path
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("json"))
    {
        Ok(Box::new(JsonGallery::at(path)))
    } else {
        Ok(Box::new(EmbeddedGallery::open(path)?))
    }
}

/// A URL without its password, for messages.
pub fn pg_redact(url: &str) -> String {
    if let Some((scheme, rest)) = url.split_once("://")
        && let Some((auth, host)) = rest.split_once('@')
        && let Some((user, _)) = auth.split_once(':')
    {
        return format!("{scheme}://{user}:***@{host}");
    }
    url.to_string()
}

/// Refuses a gallery path that exists but is not a regular file (after links): a FIFO would
/// block the read, a device or folder is not a gallery. Absent is fine (a new gallery).
pub(crate) fn check_regular(path: &std::path::Path) -> Result<()> {
    match std::fs::metadata(path) {
        Ok(meta) if !meta.is_file() => Err(GalleryError::Invalid(format!(
            "{}: not a regular file (a FIFO, device or folder), so not a gallery",
            path.display()
        ))),
        _ => Ok(()),
    }
}

/// `path` with `suffix` appended to its file name: the lock, index and temporaries beside a store.
pub(crate) fn side_path(path: &std::path::Path, suffix: &str) -> std::path::PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(suffix);
    path.with_file_name(name)
}
