//! The embedded store, the default for new galleries: people and samples in one SQLite file
//! (ACID, WAL journal, no server), with an approximate nearest-neighbour index beside it.
//!
//! # Why SQLite (rusqlite, bundled) rather than redb
//!
//! Both are ACID and crash-safe in one file. The difference that decides it is processes:
//! redb takes an exclusive lock on its file for as long as a `Database` is open, so a running
//! `likeness serve` would lock every `likeness gallery` command out, and two enrolling
//! processes would fail rather than queue. SQLite's WAL mode lets any number of processes
//! read while one writes, and writers queue on a busy timeout: the same behaviour as the JSON
//! store's lock, with no code of ours. It is also inspectable with any `sqlite3` shell.
//! Cost: the bundled C library builds in about a minute on this 2-core machine (not
//! measured in bench/gallery, which measures the stores, not their builds).
//!
//! # The index
//!
//! Galleries below [`EXACT_BELOW`] samples are searched exactly from a matrix loaded from the
//! database (always right, and about a millisecond at that size; see the constant).
//! Larger ones use [`crate::sketch`] (sign sketches scanned, the best re-ranked exactly),
//! kept in `FILE.index` beside the database:
//!
//! - It is a cache, never the only copy: every sample is in the database first, and the index
//!   is rebuilt from it when missing, damaged, from another state of the database, or when
//!   the gallery has doubled since its centre was computed.
//! - Each enrolment commits to the database, then inserts into the index in memory. The file
//!   is rewritten (atomically) when it lags the database by [`PERSIST_LAG`] samples or more; a
//!   process that opens a lagging file inserts the missing samples from the database (its
//!   stamp records the last sample id it holds).
//! - The index's owners are person ids. Removing a person leaves their rows in the index as
//!   tombstones: every answer is checked against the database, so they are never reported;
//!   when tombstones exceed [`TOMBSTONE_SHARE`] of the rows it is rebuilt. Renames change
//!   nothing in the index (names are read from the database).
//!
//! Durability: `synchronous=FULL` (every commit is on disk before `enrol` returns), writes
//! in `BEGIN IMMEDIATE` transactions (the enrolment's checks and its insert see one state),
//! writers wait up to 30 s for each other.

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

use rusqlite::{Connection, OpenFlags, OptionalExtension, TransactionBehavior, params};

use crate::GalleryStore;
use crate::document::GalleryData;
use crate::error::{GalleryError, Result};
use crate::model::{
    Candidate, EnrolRequest, Enrolment, Extra, ImportReport, Person, PersonRef, PersonSummary,
    Sample, Who, assess, check_embedding, valid_name,
};
use crate::search::Flat;
use crate::sketch::{RERANK, SketchIndex};

/// The `format` this store's database records.
pub const FORMAT: &str = "likeness-gallery-sqlite";
/// The schema version this code writes, and the newest it reads.
pub const VERSION: u32 = 1;
/// Below this many samples search is exact (no index file): it is always right, and it took
/// 0.46 ms per query at 10k samples on bench/gallery and 4.4 ms at 100k. Above it the sketch
/// index answers in 0.68 ms at 100k (recall@1 0.999) and 3.1 ms at 1M (0.998), where exact
/// search takes 88 ms (bench/gallery/README.md).
pub const EXACT_BELOW: usize = 20_000;
/// The index file is rewritten once it lags the database by this many samples (or 5 % of
/// them, whichever is more); below that, opening it catches up from the database.
pub const PERSIST_LAG: usize = 1_000;
/// Rebuild the index when this share of its rows belongs to removed people.
pub const TOMBSTONE_SHARE: f64 = 0.2;
/// How long a writer waits for another.
pub const BUSY_TIMEOUT: Duration = Duration::from_secs(30);

/// What the in-memory search reflects: the last sample id and the removal count.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Stamp {
    last_sample: u64,
    removals: u64,
}

#[derive(Debug)]
enum Searcher {
    /// Exact: every sample, owner = person id.
    Exact(Flat),
    /// The sketch index, owner = person id; `saved_at` is the last sample id the file holds.
    Sketch {
        index: Box<SketchIndex>,
        saved_at: u64,
    },
}

#[derive(Debug)]
struct State {
    stamp: Stamp,
    searcher: Searcher,
}

/// A gallery in an SQLite file (see the module docs).
#[derive(Debug)]
pub struct EmbeddedGallery {
    path: PathBuf,
    index_path: PathBuf,
    conn: Mutex<Connection>,
    state: Mutex<Option<State>>,
    exact_below: usize,
    persist_lag: usize,
    candidates: usize,
}

fn f32s_to_blob(v: &[f32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

fn blob_to_f32s(b: &[u8]) -> Vec<f32> {
    b.chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect()
}

fn extra_to_text(e: &Extra) -> Option<String> {
    (!e.is_empty()).then(|| serde_json::Value::Object(e.clone()).to_string())
}

fn text_to_extra(t: Option<String>) -> Extra {
    t.and_then(|t| serde_json::from_str(&t).ok())
        .unwrap_or_default()
}

impl EmbeddedGallery {
    /// Opens (creating if absent) the gallery database at `path`. A file that is not this
    /// store's database, or is damaged, is refused and left untouched.
    pub fn open(path: impl Into<PathBuf>) -> Result<EmbeddedGallery> {
        let path = path.into();
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| GalleryError::io(dir, e))?;
        }
        crate::check_regular(&path)?;
        let location = path.display().to_string();
        let sql = |e: rusqlite::Error| sql_error(&location, e);
        let conn = Connection::open_with_flags(
            &path,
            OpenFlags::SQLITE_OPEN_READ_WRITE
                | OpenFlags::SQLITE_OPEN_CREATE
                | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(sql)?;
        conn.busy_timeout(BUSY_TIMEOUT).map_err(sql)?;
        // journal_mode reads the header: a file that is not a database fails here. Switching
        // to WAL needs the file to itself, and SQLite answers "busy" at once, without its
        // busy handler, while another process opens or switches the same new file: retry,
        // as the busy handler would (two processes creating one gallery hit it).
        let started = std::time::Instant::now();
        loop {
            match conn.pragma_update(None, "journal_mode", "WAL") {
                Err(e)
                    if matches!(
                        e.sqlite_error_code(),
                        Some(
                            rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked
                        )
                    ) && started.elapsed() < BUSY_TIMEOUT =>
                {
                    std::thread::sleep(Duration::from_millis(5));
                }
                other => break other.map_err(sql)?,
            }
        }
        conn.pragma_update(None, "synchronous", "FULL")
            .map_err(sql)?;
        conn.pragma_update(None, "foreign_keys", "ON")
            .map_err(sql)?;
        let index_path = crate::side_path(&path, ".index");
        let store = EmbeddedGallery {
            path,
            index_path,
            conn: Mutex::new(conn),
            state: Mutex::new(None),
            exact_below: EXACT_BELOW,
            persist_lag: PERSIST_LAG,
            candidates: RERANK,
        };
        store.migrate()?;
        Ok(store)
    }

    /// Changes the size below which search is exact (tests and the benchmark).
    pub fn with_exact_below(mut self, samples: usize) -> EmbeddedGallery {
        self.exact_below = samples;
        self
    }

    /// Changes how many candidates the index re-ranks per query (tests: a small number makes
    /// removed people fill the first candidates).
    pub fn with_candidates(mut self, candidates: usize) -> EmbeddedGallery {
        self.candidates = candidates.max(1);
        self
    }

    /// Changes how far the index file may lag the database (tests).
    pub fn with_persist_lag(mut self, samples: usize) -> EmbeddedGallery {
        self.persist_lag = samples.max(1);
        self
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The index file beside it.
    pub fn index_path(&self) -> &Path {
        &self.index_path
    }

    fn loc(&self) -> String {
        self.path.display().to_string()
    }

    fn sql(&self) -> impl Fn(rusqlite::Error) -> GalleryError + '_ {
        move |e| sql_error(&self.loc(), e)
    }

    fn conn(&self) -> std::sync::MutexGuard<'_, Connection> {
        self.conn.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Creates the schema in a new database; checks the format and version of an old one.
    fn migrate(&self) -> Result<()> {
        let mut conn = self.conn();
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(self.sql())?;
        let tables: i64 = tx
            .query_row("SELECT count(*) FROM sqlite_master", [], |r| r.get(0))
            .map_err(self.sql())?;
        let has_meta: bool = tx
            .query_row(
                "SELECT count(*) FROM sqlite_master WHERE type='table' AND name='meta'",
                [],
                |r| r.get::<_, i64>(0),
            )
            .map_err(self.sql())?
            > 0;
        if tables > 0 && !has_meta {
            return Err(GalleryError::Corrupt {
                location: self.loc(),
                message: "an SQLite database, but not a Likeness gallery".into(),
            });
        }
        if !has_meta {
            tx.execute_batch(
                "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
                 CREATE TABLE persons (id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE,
                                       extra TEXT);
                 CREATE TABLE samples (id INTEGER PRIMARY KEY AUTOINCREMENT,
                                       person INTEGER NOT NULL REFERENCES persons(id)
                                              ON DELETE CASCADE,
                                       source TEXT NOT NULL, embedding BLOB NOT NULL,
                                       extra TEXT);
                 CREATE INDEX samples_person ON samples(person);",
            )
            .map_err(self.sql())?;
            for (k, v) in [
                ("format", FORMAT.to_string()),
                ("version", VERSION.to_string()),
                ("next_id", "1".into()),
                ("removals", "0".into()),
            ] {
                tx.execute("INSERT INTO meta VALUES (?1, ?2)", params![k, v])
                    .map_err(self.sql())?;
            }
        } else {
            let format = meta_get(&tx, "format").map_err(self.sql())?;
            if format.as_deref() != Some(FORMAT) {
                return Err(GalleryError::Corrupt {
                    location: self.loc(),
                    message: format!("format is {format:?}, not `{FORMAT}`"),
                });
            }
            let version: u32 = meta_get(&tx, "version")
                .map_err(self.sql())?
                .and_then(|v| v.parse().ok())
                .unwrap_or(0);
            if version > VERSION {
                return Err(GalleryError::Version {
                    location: self.loc(),
                    found: version,
                    supported: VERSION,
                });
            }
        }
        tx.commit().map_err(self.sql())
    }

    /// Brings the search state up to date and checks it against the database: every stored
    /// sample is in it, under its person, with its exact embedding. Returns (nodes or rows
    /// searched, stored samples, tombstones). For tests and `gallery check`.
    pub fn verify_index(&self) -> Result<(usize, usize, usize)> {
        let conn = self.conn();
        let mut state = self.state();
        self.refresh(&conn, &mut state)?;
        let mut stored: std::collections::HashMap<u64, Vec<Vec<f32>>> = Default::default();
        let mut stmt = conn
            .prepare("SELECT person, embedding FROM samples")
            .map_err(self.sql())?;
        let mut rows = stmt.query([]).map_err(self.sql())?;
        let mut count = 0;
        while let Some(r) = rows.next().map_err(self.sql())? {
            let blob: Vec<u8> = r.get(1).map_err(self.sql())?;
            stored
                .entry(r.get::<_, i64>(0).map_err(self.sql())? as u64)
                .or_default()
                .push(blob_to_f32s(&blob));
            count += 1;
        }
        let mut held: std::collections::HashMap<u64, Vec<Vec<f32>>> = Default::default();
        let total = match state.as_ref().map(|s| &s.searcher) {
            Some(Searcher::Exact(flat)) => {
                for i in 0..flat.len() {
                    let (o, v) = flat.row(i);
                    held.entry(o).or_default().push(v.to_vec());
                }
                flat.len()
            }
            Some(Searcher::Sketch { index, .. }) => {
                for (o, v) in index.rows() {
                    held.entry(o).or_default().push(v.to_vec());
                }
                index.len()
            }
            None => 0,
        };
        let mut tombstones = 0;
        for (person, vs) in &held {
            match stored.get(person) {
                None => tombstones += vs.len(),
                Some(want) => {
                    for v in want {
                        if !vs.contains(v) {
                            return Err(GalleryError::Corrupt {
                                location: self.index_path.display().to_string(),
                                message: format!("the index lacks a sample of #{person}"),
                            });
                        }
                    }
                }
            }
        }
        if let Some(p) = stored.keys().find(|p| !held.contains_key(p)) {
            return Err(GalleryError::Corrupt {
                location: self.index_path.display().to_string(),
                message: format!("the index lacks person #{p}"),
            });
        }
        Ok((total, count, tombstones))
    }

    /// Checks the whole database file (SQLite's integrity check) and that every stored
    /// embedding has the gallery's length and is finite.
    pub fn check(&self) -> Result<()> {
        let conn = self.conn();
        let verdict: String = conn
            .query_row("PRAGMA integrity_check", [], |r| r.get(0))
            .map_err(self.sql())?;
        if verdict != "ok" {
            return Err(GalleryError::Corrupt {
                location: self.loc(),
                message: format!("integrity check: {verdict}"),
            });
        }
        Ok(())
    }

    /// Brings the in-memory search up to the database's state (`conn` is inside the caller's
    /// transaction when it writes), rebuilding or catching up as the module docs say.
    fn refresh(&self, conn: &Connection, state: &mut Option<State>) -> Result<()> {
        let now = read_stamp(conn).map_err(self.sql())?;
        if let Some(s) = state.as_ref()
            && s.stamp == now
        {
            return Ok(());
        }
        let live: usize = conn
            .query_row("SELECT count(*) FROM samples", [], |r| r.get::<_, i64>(0))
            .map_err(self.sql())? as usize;
        let dim = meta_get(conn, "dim")
            .map_err(self.sql())?
            .and_then(|d| d.parse::<usize>().ok())
            .unwrap_or(0);
        if live < self.exact_below {
            let (flat, _) = self.load_rows(conn, dim, 0)?;
            *state = Some(State {
                stamp: now,
                searcher: Searcher::Exact(flat),
            });
            return Ok(());
        }
        // the index: the one in memory if it is this database's, else the file; rebuilt
        // when neither fits; then the samples it lacks
        let mut current = match state.take() {
            Some(State {
                searcher: Searcher::Sketch { index, saved_at },
                ..
            }) => Some((index, saved_at)),
            _ => None,
        };
        if current.is_none() {
            current = self.read_index(dim);
        }
        let fits = |g: &SketchIndex| {
            g.dim() == dim
                && g.stamp[0] <= now.last_sample
                && !g.wants_recentring()
                && (g.len() as f64) * (1.0 - TOMBSTONE_SHARE)
                    <= (live + (now.last_sample - g.stamp[0]) as usize) as f64
        };
        let (mut index, mut saved_at) = match current {
            Some((g, at)) if fits(&g) => {
                let (fresh, last) = self.load_rows(conn, dim, g.stamp[0])?;
                let mut g = g;
                for i in 0..fresh.len() {
                    let (owner, v) = fresh.row(i);
                    g.insert(owner, v);
                }
                g.stamp[0] = last.max(g.stamp[0]);
                (g, at)
            }
            _ => {
                let (rows, _) = self.load_rows(conn, dim, 0)?;
                (Box::new(SketchIndex::build(rows)), 0)
            }
        };
        index.stamp = [now.last_sample, now.removals];
        let lag = (now.last_sample - saved_at.min(now.last_sample)) as usize;
        if saved_at == 0 || lag >= self.persist_lag.max(live / 20) {
            // best effort: a failed write leaves the old file, which is only a cache
            if index.save(&self.index_path).is_ok() {
                saved_at = now.last_sample;
            }
        }
        *state = Some(State {
            stamp: now,
            searcher: Searcher::Sketch { index, saved_at },
        });
        Ok(())
    }

    /// The samples after sample id `after`, in id order, checked, and the last id read.
    fn load_rows(&self, conn: &Connection, dim: usize, after: u64) -> Result<(Flat, u64)> {
        let mut flat = Flat::new(dim);
        let mut last = after;
        let mut stmt = conn
            .prepare_cached("SELECT id, person, embedding FROM samples WHERE id > ?1 ORDER BY id")
            .map_err(self.sql())?;
        let mut rows = stmt.query([after as i64]).map_err(self.sql())?;
        while let Some(r) = rows.next().map_err(self.sql())? {
            let blob: Vec<u8> = r.get(2).map_err(self.sql())?;
            let v = blob_to_f32s(&blob);
            self.check_stored(&v, dim)?;
            flat.push(r.get::<_, i64>(1).map_err(self.sql())? as u64, &v);
            last = r.get::<_, i64>(0).map_err(self.sql())? as u64;
        }
        Ok((flat, last))
    }

    /// The saved index, if there is a readable one (a damaged file is rebuilt over). Only a
    /// regular file is read: a FIFO planted at the name would block the open, and a link
    /// could point anywhere (the atomic writer refuses to replace either, so such a gallery
    /// searches from the store, rebuilt in memory, until the thing is removed).
    fn read_index(&self, dim: usize) -> Option<(Box<SketchIndex>, u64)> {
        let meta = std::fs::symlink_metadata(&self.index_path).ok()?;
        if !meta.file_type().is_file() {
            return None;
        }
        let g = SketchIndex::load(&self.index_path).ok()?;
        (g.dim() == dim).then(|| {
            let at = g.stamp[0];
            (Box::new(g), at)
        })
    }

    fn check_stored(&self, v: &[f32], dim: usize) -> Result<()> {
        check_embedding(v, Some(dim), "a stored sample").map_err(|e| GalleryError::Corrupt {
            location: self.loc(),
            message: e.to_string(),
        })
    }

    /// The `k` nearest people to `q` (not `exclude`), with names, from the current state.
    fn nearest(
        &self,
        conn: &Connection,
        state: &State,
        q: &[f32],
        k: usize,
        exclude: Option<u64>,
    ) -> Result<Vec<(PersonRef, f32)>> {
        let owners: Vec<(u64, f32)> = match &state.searcher {
            Searcher::Exact(flat) => flat.nearest_owners(q, k, exclude),
            Searcher::Sketch { index, .. } => {
                // over-fetch people, drop removed ones (tombstones); widen both the candidates
                // and the people kept from them while too few remain
                let (mut candidates, mut people) = (self.candidates, k + 8);
                loop {
                    let found = index.nearest_owners(q, people, candidates, exclude);
                    // every row re-ranked and every owner returned: nothing more to find
                    let exhausted = candidates >= index.len() && found.len() < people;
                    let alive: Vec<(u64, f32)> = found
                        .into_iter()
                        .filter(|(o, _)| person_name(conn, *o).ok().flatten().is_some())
                        .take(k)
                        .collect();
                    if alive.len() >= k || exhausted {
                        break alive;
                    }
                    candidates = candidates.saturating_mul(4);
                    people = people.saturating_mul(4);
                }
            }
        };
        owners
            .into_iter()
            .map(|(id, d)| {
                let name = person_name(conn, id).map_err(self.sql())?.ok_or_else(|| {
                    GalleryError::Corrupt {
                        location: self.loc(),
                        message: format!("a sample belongs to a missing person #{id}"),
                    }
                })?;
                Ok((PersonRef { id, name }, d))
            })
            .collect()
    }

    fn state(&self) -> std::sync::MutexGuard<'_, Option<State>> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn check_embedder(&self, conn: &Connection, offered: &str) -> Result<()> {
        match meta_get(conn, "embedder").map_err(self.sql())? {
            Some(held) if held != offered => Err(GalleryError::EmbedderMismatch {
                location: self.loc(),
                held,
                offered: offered.to_string(),
            }),
            _ => Ok(()),
        }
    }

    fn dim(&self, conn: &Connection) -> Result<Option<usize>> {
        Ok(meta_get(conn, "dim")
            .map_err(self.sql())?
            .and_then(|d| d.parse().ok()))
    }

    fn find(&self, conn: &Connection, who: &Who) -> Result<Option<PersonRef>> {
        let row = match who {
            Who::Id(id) => conn
                .query_row(
                    "SELECT id, name FROM persons WHERE id = ?1",
                    [*id as i64],
                    |r| Ok((r.get::<_, i64>(0)?, r.get(1)?)),
                )
                .optional(),
            Who::Name(n) => conn
                .query_row("SELECT id, name FROM persons WHERE name = ?1", [n], |r| {
                    Ok((r.get::<_, i64>(0)?, r.get(1)?))
                })
                .optional(),
        }
        .map_err(self.sql())?;
        Ok(row.map(|(id, name)| PersonRef {
            id: id as u64,
            name,
        }))
    }

    fn sources(&self, conn: &Connection, id: u64) -> Result<Vec<String>> {
        let mut stmt = conn
            .prepare_cached("SELECT source FROM samples WHERE person = ?1 ORDER BY id")
            .map_err(self.sql())?;
        let rows = stmt
            .query_map([id as i64], |r| r.get(0))
            .map_err(self.sql())?;
        rows.collect::<rusqlite::Result<Vec<String>>>()
            .map_err(self.sql())
    }

    fn embeddings(&self, conn: &Connection, id: u64) -> Result<Vec<Vec<f32>>> {
        let mut stmt = conn
            .prepare_cached("SELECT embedding FROM samples WHERE person = ?1 ORDER BY id")
            .map_err(self.sql())?;
        let rows = stmt
            .query_map([id as i64], |r| r.get::<_, Vec<u8>>(0))
            .map_err(self.sql())?;
        rows.map(|b| b.map(|b| blob_to_f32s(&b)))
            .collect::<rusqlite::Result<_>>()
            .map_err(self.sql())
    }

    /// Inserts one person's samples (the person exists), in the caller's transaction.
    fn insert_samples(&self, conn: &Connection, id: u64, samples: &[Sample]) -> Result<()> {
        let mut stmt = conn
            .prepare_cached(
                "INSERT INTO samples (person, source, embedding, extra) VALUES (?1, ?2, ?3, ?4)",
            )
            .map_err(self.sql())?;
        for s in samples {
            stmt.execute(params![
                id as i64,
                s.source,
                f32s_to_blob(&s.embedding),
                extra_to_text(&s.extra)
            ])
            .map_err(self.sql())?;
        }
        Ok(())
    }

    /// Runs `f` in one IMMEDIATE transaction with the search state brought up to date;
    /// commits when it succeeds. The state is dropped if the commit fails.
    fn write<T>(
        &self,
        f: impl FnOnce(&rusqlite::Transaction<'_>, &mut Option<State>) -> Result<T>,
    ) -> Result<T> {
        let mut conn = self.conn();
        let mut state = self.state();
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(self.sql())?;
        let out = f(&tx, &mut state);
        match out {
            Ok(v) => match tx.commit() {
                Ok(()) => Ok(v),
                Err(e) => {
                    *state = None;
                    Err(self.sql()(e))
                }
            },
            Err(e) => {
                *state = None;
                Err(e)
            }
        }
    }
}

fn sql_error(location: &str, e: rusqlite::Error) -> GalleryError {
    use rusqlite::ErrorCode;
    match e.sqlite_error_code() {
        Some(ErrorCode::NotADatabase) | Some(ErrorCode::DatabaseCorrupt) => GalleryError::Corrupt {
            location: location.to_string(),
            message: format!(
                "{e}; the file was left as it is (restore it from a backup or an export)"
            ),
        },
        Some(ErrorCode::DatabaseBusy) | Some(ErrorCode::DatabaseLocked) => GalleryError::Locked {
            location: location.to_string(),
            waited_s: BUSY_TIMEOUT.as_secs_f64(),
        },
        _ => GalleryError::Database {
            location: location.to_string(),
            message: e.to_string(),
        },
    }
}

fn meta_get(conn: &Connection, key: &str) -> rusqlite::Result<Option<String>> {
    conn.query_row("SELECT value FROM meta WHERE key = ?1", [key], |r| r.get(0))
        .optional()
}

fn meta_set(conn: &Connection, key: &str, value: &str) -> rusqlite::Result<()> {
    conn.execute(
        "INSERT INTO meta VALUES (?1, ?2) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
        params![key, value],
    )
    .map(|_| ())
}

fn meta_u64(conn: &Connection, key: &str) -> rusqlite::Result<u64> {
    Ok(meta_get(conn, key)?
        .and_then(|v| v.parse().ok())
        .unwrap_or(0))
}

fn read_stamp(conn: &Connection) -> rusqlite::Result<Stamp> {
    let last_sample: i64 = conn.query_row(
        "SELECT coalesce((SELECT seq FROM sqlite_sequence WHERE name = 'samples'), 0)",
        [],
        |r| r.get(0),
    )?;
    Ok(Stamp {
        last_sample: last_sample as u64,
        removals: meta_u64(conn, "removals")?,
    })
}

fn person_name(conn: &Connection, id: u64) -> rusqlite::Result<Option<String>> {
    conn.prepare_cached("SELECT name FROM persons WHERE id = ?1")?
        .query_row([id as i64], |r| r.get(0))
        .optional()
}

impl GalleryStore for EmbeddedGallery {
    fn location(&self) -> String {
        self.loc()
    }

    fn embedder(&self) -> Result<Option<String>> {
        meta_get(&self.conn(), "embedder").map_err(self.sql())
    }

    fn enrol(&self, request: EnrolRequest) -> Result<Enrolment> {
        let name = valid_name(&request.name)?;
        if request.samples.is_empty() {
            return Err(GalleryError::Invalid(format!(
                "no faces to enrol for `{name}`"
            )));
        }
        self.write(|tx, state| {
            self.check_embedder(tx, &request.embedder)?;
            let mut dim = self.dim(tx)?;
            for s in &request.samples {
                check_embedding(&s.embedding, dim, &s.source)?;
                dim = Some(s.embedding.len());
            }
            let dim = dim.unwrap_or(0);
            let existing = self.find(tx, &Who::Name(name.clone()))?;
            let next_id = meta_u64(tx, "next_id").map_err(self.sql())?.max(1);
            let person = existing.clone().unwrap_or(PersonRef {
                id: next_id,
                name: name.clone(),
            });
            let own = match &existing {
                Some(p) => self.embeddings(tx, p.id)?,
                None => Vec::new(),
            };
            let own_refs: Vec<&[f32]> = own.iter().map(Vec::as_slice).collect();
            meta_set(tx, "dim", &dim.to_string()).map_err(self.sql())?;
            self.refresh(tx, state)?;
            let current = state.as_ref().ok_or_else(|| {
                GalleryError::Invalid("the gallery's search state is missing".into())
            })?;
            let warnings = assess(
                &person,
                &request.samples,
                &own_refs,
                |q| Ok(self.nearest(tx, current, q, 1, Some(person.id))?.pop()),
                request.tolerance,
            )?;
            if !warnings.is_empty() && !request.insist {
                return Err(GalleryError::Suspicious(warnings));
            }
            if existing.is_none() {
                tx.execute(
                    "INSERT INTO persons (id, name) VALUES (?1, ?2)",
                    params![person.id as i64, person.name],
                )
                .map_err(self.sql())?;
                meta_set(tx, "next_id", &(next_id + 1).to_string()).map_err(self.sql())?;
            }
            meta_set(tx, "embedder", &request.embedder).map_err(self.sql())?;
            self.insert_samples(tx, person.id, &request.samples)?;
            let total = own.len() + request.samples.len();
            // the new samples join the search state now (the commit follows; a failed
            // commit drops the state)
            self.refresh(tx, state)?;
            Ok(Enrolment {
                id: person.id,
                name: person.name,
                created: existing.is_none(),
                added: request.samples.len(),
                samples: total,
                warnings,
            })
        })
    }

    fn rename(&self, who: &Who, new_name: &str) -> Result<PersonRef> {
        let new_name = valid_name(new_name)?;
        self.write(|tx, _| {
            let p = self
                .find(tx, who)?
                .ok_or_else(|| GalleryError::NoSuchPerson(who.to_string()))?;
            if let Some(other) = self.find(tx, &Who::Name(new_name.clone()))?
                && other.id != p.id
            {
                return Err(GalleryError::DuplicateName(new_name));
            }
            tx.execute(
                "UPDATE persons SET name = ?1 WHERE id = ?2",
                params![new_name, p.id as i64],
            )
            .map_err(self.sql())?;
            Ok(PersonRef {
                id: p.id,
                name: new_name,
            })
        })
    }

    fn remove(&self, who: &Who) -> Result<PersonSummary> {
        self.write(|tx, state| {
            let p = self
                .find(tx, who)?
                .ok_or_else(|| GalleryError::NoSuchPerson(who.to_string()))?;
            let samples = self.sources(tx, p.id)?;
            tx.execute("DELETE FROM persons WHERE id = ?1", [p.id as i64])
                .map_err(self.sql())?;
            let removals = meta_u64(tx, "removals").map_err(self.sql())? + 1;
            meta_set(tx, "removals", &removals.to_string()).map_err(self.sql())?;
            // the index keeps the person's rows as tombstones; the exact matrix is reloaded
            if matches!(
                state.as_ref().map(|s| &s.searcher),
                Some(Searcher::Exact(_))
            ) {
                *state = None;
            }
            Ok(PersonSummary {
                id: p.id,
                name: p.name,
                samples,
            })
        })
    }

    fn list(&self) -> Result<Vec<PersonSummary>> {
        let conn = self.conn();
        let mut stmt = conn
            .prepare(
                "SELECT p.id, p.name, s.source FROM persons p LEFT JOIN samples s
                 ON s.person = p.id ORDER BY p.id, s.id",
            )
            .map_err(self.sql())?;
        let mut rows = stmt.query([]).map_err(self.sql())?;
        let mut people = Vec::new();
        while let Some(r) = rows.next().map_err(self.sql())? {
            people.push((
                r.get::<_, i64>(0).map_err(self.sql())? as u64,
                r.get(1).map_err(self.sql())?,
                r.get(2).map_err(self.sql())?,
            ));
        }
        Ok(PersonSummary::from_rows(people))
    }

    fn identify(
        &self,
        embedder: &str,
        queries: &[Vec<f32>],
        k: usize,
        tolerance: f32,
    ) -> Result<Vec<Vec<Candidate>>> {
        let conn = self.conn();
        self.check_embedder(&conn, embedder)?;
        let dim = self.dim(&conn)?;
        for (n, q) in queries.iter().enumerate() {
            check_embedding(q, dim, &format!("query face {n}"))?;
        }
        if queries.is_empty() || dim.is_none() {
            return Ok(queries.iter().map(|_| Vec::new()).collect());
        }
        let mut state = self.state();
        // one read transaction: the state and the names come from one snapshot
        conn.execute_batch("BEGIN").map_err(self.sql())?;
        let answer = (|| {
            self.refresh(&conn, &mut state)?;
            let current = state.as_ref().ok_or_else(|| {
                GalleryError::Invalid("the gallery's search state is missing".into())
            })?;
            queries
                .iter()
                .map(|q| {
                    Ok(self
                        .nearest(&conn, current, q, k.max(1), None)?
                        .into_iter()
                        .map(|(p, distance)| Candidate {
                            id: p.id,
                            name: p.name,
                            distance,
                            known: distance <= tolerance,
                        })
                        .collect())
                })
                .collect::<Result<Vec<_>>>()
        })();
        conn.execute_batch("COMMIT").map_err(self.sql())?;
        answer
    }

    fn export(&self) -> Result<GalleryData> {
        let conn = self.conn();
        conn.execute_batch("BEGIN").map_err(self.sql())?;
        let out = (|| {
            let mut data = GalleryData {
                embedder: meta_get(&conn, "embedder").map_err(self.sql())?,
                next_id: meta_u64(&conn, "next_id").map_err(self.sql())?.max(1),
                ..GalleryData::default()
            };
            let mut stmt = conn
                .prepare("SELECT id, name, extra FROM persons ORDER BY id")
                .map_err(self.sql())?;
            let mut rows = stmt.query([]).map_err(self.sql())?;
            while let Some(r) = rows.next().map_err(self.sql())? {
                data.persons.push(Person {
                    id: r.get::<_, i64>(0).map_err(self.sql())? as u64,
                    name: r.get(1).map_err(self.sql())?,
                    samples: Vec::new(),
                    extra: text_to_extra(r.get(2).map_err(self.sql())?),
                });
            }
            let index: std::collections::HashMap<u64, usize> = data
                .persons
                .iter()
                .enumerate()
                .map(|(i, p)| (p.id, i))
                .collect();
            let mut stmt = conn
                .prepare("SELECT person, source, embedding, extra FROM samples ORDER BY id")
                .map_err(self.sql())?;
            let mut rows = stmt.query([]).map_err(self.sql())?;
            while let Some(r) = rows.next().map_err(self.sql())? {
                let person = r.get::<_, i64>(0).map_err(self.sql())? as u64;
                let blob: Vec<u8> = r.get(2).map_err(self.sql())?;
                if let Some(&i) = index.get(&person) {
                    data.persons[i].samples.push(Sample {
                        embedding: blob_to_f32s(&blob),
                        source: r.get(1).map_err(self.sql())?,
                        extra: text_to_extra(r.get(3).map_err(self.sql())?),
                    });
                }
            }
            data.validate(&self.loc())?;
            Ok(data)
        })();
        conn.execute_batch("COMMIT").map_err(self.sql())?;
        out
    }

    fn import(&self, data: GalleryData) -> Result<ImportReport> {
        data.validate("the imported file")?;
        self.write(|tx, _| {
            let mut report = ImportReport {
                created: 0,
                merged: 0,
                samples: 0,
                skipped: 0,
            };
            let Some(file_dim) = data.dim() else {
                return Ok(report);
            };
            let embedder = data.embedder.clone().unwrap_or_default();
            self.check_embedder(tx, &embedder)?;
            if let Some(d) = self.dim(tx)?.filter(|&d| d != file_dim) {
                return Err(GalleryError::Dimension {
                    what: "the imported file".into(),
                    expected: d,
                    got: file_dim,
                });
            }
            let persons: i64 = tx
                .query_row("SELECT count(*) FROM persons", [], |r| r.get(0))
                .map_err(self.sql())?;
            let mut next_id = meta_u64(tx, "next_id").map_err(self.sql())?.max(1);
            let keep_ids = persons == 0 && next_id == 1;
            meta_set(tx, "embedder", &embedder).map_err(self.sql())?;
            meta_set(tx, "dim", &file_dim.to_string()).map_err(self.sql())?;
            for p in data.persons {
                match self.find(tx, &Who::Name(p.name.clone()))? {
                    Some(existing) => {
                        let held: Vec<(Vec<f32>, String)> = self
                            .embeddings(tx, existing.id)?
                            .into_iter()
                            .zip(self.sources(tx, existing.id)?)
                            .collect();
                        let fresh = report.merge(p.samples, &held);
                        self.insert_samples(tx, existing.id, &fresh)?;
                    }
                    None => {
                        let id = if keep_ids {
                            p.id
                        } else {
                            next_id += 1;
                            next_id - 1
                        };
                        tx.execute(
                            "INSERT INTO persons (id, name, extra) VALUES (?1, ?2, ?3)",
                            params![id as i64, p.name, extra_to_text(&p.extra)],
                        )
                        .map_err(self.sql())?;
                        self.insert_samples(tx, id, &p.samples)?;
                        report.created += 1;
                        report.samples += p.samples.len();
                    }
                }
            }
            if keep_ids {
                let max: i64 = tx
                    .query_row("SELECT coalesce(max(id), 0) FROM persons", [], |r| r.get(0))
                    .map_err(self.sql())?;
                next_id = data.next_id.max(max as u64 + 1);
            }
            meta_set(tx, "next_id", &next_id.to_string()).map_err(self.sql())?;
            Ok(report)
        })
    }
}
