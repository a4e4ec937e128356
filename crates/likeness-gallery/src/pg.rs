//! The PostgreSQL + pgvector store, for galleries that outgrow one machine or belong in a
//! database people already run: `--gallery postgres://user@host/db`.
//!
//! - Schema created and migrated by Likeness on connect (`likeness_meta`, `likeness_persons`,
//!   `likeness_samples` with a `vector(128)` column and an HNSW index, `vector_l2_ops`,
//!   [`HNSW_M`] and [`HNSW_EF_CONSTRUCTION`]). Creating it once needs the right to
//!   `CREATE EXTENSION vector` (or an administrator who did).
//! - Import is two COPY streams (people, samples) in one transaction: 17,900 people/s at
//!   100k on bench/gallery, where row-by-row inserts managed 1,500. A large import into an
//!   empty gallery builds the HNSW index once after the copy ([`REINDEX_IMPORT_AT`]); the
//!   build's speed depends on the server's `maintenance_work_mem` (bench/gallery used 4 GB).
//! - Identification is one query per face: `ORDER BY embedding <-> $1 LIMIT n` over samples,
//!   joined with their people; the n samples are folded to people here (a person's best
//!   sample), over-fetching so k people survive the folding.
//! - Every change is one transaction that first takes a transaction-scoped advisory lock:
//!   writers from any number of processes queue (the enrolment's checks and its insert see
//!   one state); readers never wait.
//! - Embeddings travel as pgvector's text form, written with Rust's shortest round-trip
//!   float formatting, so what is stored is exactly what was enrolled.
//!
//! Synchronous `postgres` client: see the crate docs for why the store trait is sync.

use std::sync::Mutex;

use postgres::{Client, NoTls, Transaction};

use crate::GalleryStore;
use crate::document::GalleryData;
use crate::error::{GalleryError, Result};
use crate::model::{
    Candidate, EnrolRequest, Enrolment, Extra, ImportReport, Person, PersonRef, PersonSummary,
    Sample, Who, assess, check_embedding, valid_name,
};
use crate::search::TopOwners;

/// The schema version this code creates, and the newest it reads.
pub const SCHEMA_VERSION: u32 = 1;
/// The embedding length of the `vector` column (dlib's ResNet and SFace are both 128).
pub const DIM: usize = 128;
/// pgvector's HNSW links per node (`m`, its default 16) and build candidate list
/// (`ef_construction`, its default 64; 100 here, as FAISS was built beside it).
pub const HNSW_M: usize = 16;
/// See [`HNSW_M`].
pub const HNSW_EF_CONSTRUCTION: usize = 100;
/// pgvector's HNSW candidate list while searching (its default is 40). On bench/gallery's
/// isotropic synthetic galleries recall@1 is 0.98 at 10k and 0.69 at 100k: see
/// bench/gallery/README.md before relying on it.
pub const EF_SEARCH: usize = 100;
/// An import of at least this many samples into an empty gallery drops the HNSW index first
/// and builds it once after the COPY, as pgvector advises for bulk loads: inserting a million
/// rows into a live HNSW index one by one is many times slower than one build.
pub const REINDEX_IMPORT_AT: usize = 10_000;

/// The HNSW index of the samples' embeddings (created on connect, rebuilt by large imports).
fn hnsw_index_sql() -> String {
    format!(
        "CREATE INDEX IF NOT EXISTS likeness_samples_hnsw ON likeness_samples
             USING hnsw (embedding vector_l2_ops) WITH (m = {HNSW_M}, ef_construction = {HNSW_EF_CONSTRUCTION})"
    )
}

/// Bytes per COPY message of an import (see `PostgresGallery::copy_in`).
const COPY_CHUNK: usize = 1 << 20;
/// Key of the advisory lock writers take (any constant; "LKNS" in ASCII).
const WRITE_LOCK: i64 = 0x4C4B_4E53;

/// A gallery in a PostgreSQL database with pgvector.
pub struct PostgresGallery {
    location: String,
    client: Mutex<Client>,
}

impl std::fmt::Debug for PostgresGallery {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresGallery")
            .field("location", &self.location)
            .finish_non_exhaustive()
    }
}

fn vector_text(v: &[f32]) -> String {
    let mut s = String::with_capacity(v.len() * 12);
    s.push('[');
    for (i, x) in v.iter().enumerate() {
        if i > 0 {
            s.push(',');
        }
        s.push_str(&x.to_string());
    }
    s.push(']');
    s
}

/// One line of COPY's text format: fields already escaped, tab-separated.
fn copy_row(out: &mut Vec<u8>, fields: &[&str]) {
    for (i, f) in fields.iter().enumerate() {
        if i > 0 {
            out.push(b'\t');
        }
        out.extend_from_slice(f.as_bytes());
    }
    out.push(b'\n');
}

/// A text value escaped for COPY's text format (backslash, and the tab, newline and carriage
/// return that would otherwise end the field or the row).
fn copy_field(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\t' => out.push_str("\\t"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            c => out.push(c),
        }
    }
    out
}

/// A person's or sample's extra fields as a COPY jsonb field (`\N`, NULL, when there are none).
fn copy_extra(extra: &Extra) -> String {
    if extra.is_empty() {
        "\\N".into()
    } else {
        copy_field(&serde_json::Value::Object(extra.clone()).to_string())
    }
}

fn parse_vector(t: &str) -> Option<Vec<f32>> {
    t.trim()
        .strip_prefix('[')?
        .strip_suffix(']')?
        .split(',')
        .map(|x| x.trim().parse().ok())
        .collect()
}

pub use crate::pg_redact as redact;

impl PostgresGallery {
    /// Connects to `url` (`postgres://user[:password]@host[:port]/db`) and creates or
    /// migrates the schema.
    pub fn connect(url: &str) -> Result<PostgresGallery> {
        let location = redact(url);
        let client = Client::connect(url, NoTls).map_err(|e| GalleryError::Database {
            location: location.clone(),
            message: format!("cannot connect: {}", pg_message(&e)),
        })?;
        let store = PostgresGallery {
            location,
            client: Mutex::new(client),
        };
        store.migrate()?;
        Ok(store)
    }

    fn db(&self) -> impl Fn(postgres::Error) -> GalleryError + '_ {
        move |e| GalleryError::Database {
            location: self.location.clone(),
            message: pg_message(&e),
        }
    }

    fn client(&self) -> std::sync::MutexGuard<'_, Client> {
        self.client.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn migrate(&self) -> Result<()> {
        let mut client = self.client();
        let mut tx = client.transaction().map_err(self.db())?;
        tx.execute("SELECT pg_advisory_xact_lock($1)", &[&WRITE_LOCK])
            .map_err(self.db())?;
        tx.batch_execute(&format!(
            "CREATE EXTENSION IF NOT EXISTS vector;
             CREATE TABLE IF NOT EXISTS likeness_meta (key text PRIMARY KEY, value text NOT NULL);
             CREATE TABLE IF NOT EXISTS likeness_persons (
                 id bigint PRIMARY KEY, name text NOT NULL UNIQUE, extra jsonb);
             CREATE TABLE IF NOT EXISTS likeness_samples (
                 id bigserial PRIMARY KEY,
                 person bigint NOT NULL REFERENCES likeness_persons(id) ON DELETE CASCADE,
                 source text NOT NULL, embedding vector({DIM}) NOT NULL, extra jsonb);
             CREATE INDEX IF NOT EXISTS likeness_samples_person ON likeness_samples (person);
             {HNSW_INDEX};
             INSERT INTO likeness_meta VALUES ('version', '{SCHEMA_VERSION}'), ('next_id', '1')
                 ON CONFLICT (key) DO NOTHING;",
            HNSW_INDEX = hnsw_index_sql(),
        ))
        .map_err(self.db())?;
        let version: u32 = meta_get(&mut tx, "version")
            .map_err(self.db())?
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        if version > SCHEMA_VERSION {
            return Err(GalleryError::Version {
                location: self.location.clone(),
                found: version,
                supported: SCHEMA_VERSION,
            });
        }
        tx.commit().map_err(self.db())?;
        client
            .batch_execute(&format!("SET hnsw.ef_search = {EF_SEARCH}"))
            .map_err(self.db())
    }

    /// A write transaction holding the writers' lock.
    fn write<T>(&self, f: impl FnOnce(&mut Transaction<'_>) -> Result<T>) -> Result<T> {
        let mut client = self.client();
        let mut tx = client.transaction().map_err(self.db())?;
        tx.execute("SELECT pg_advisory_xact_lock($1)", &[&WRITE_LOCK])
            .map_err(self.db())?;
        let out = f(&mut tx)?;
        tx.commit().map_err(self.db())?;
        Ok(out)
    }

    fn check_embedder(&self, tx: &mut impl postgres::GenericClient, offered: &str) -> Result<()> {
        match meta_get(tx, "embedder").map_err(self.db())? {
            Some(held) if held != offered => Err(GalleryError::EmbedderMismatch {
                location: self.location.clone(),
                held,
                offered: offered.to_string(),
            }),
            _ => Ok(()),
        }
    }

    fn find(&self, c: &mut impl postgres::GenericClient, who: &Who) -> Result<Option<PersonRef>> {
        let row = match who {
            Who::Id(id) => c.query_opt(
                "SELECT id, name FROM likeness_persons WHERE id = $1",
                &[&(*id as i64)],
            ),
            Who::Name(n) => c.query_opt(
                "SELECT id, name FROM likeness_persons WHERE name = $1",
                &[n],
            ),
        }
        .map_err(self.db())?;
        Ok(row.map(|r| PersonRef {
            id: r.get::<_, i64>(0) as u64,
            name: r.get(1),
        }))
    }

    /// The `k` nearest people to `q` other than `exclude`: one ORDER BY ... LIMIT query,
    /// widened if folding samples to people leaves fewer than `k`.
    fn nearest(
        &self,
        c: &mut impl postgres::GenericClient,
        q: &[f32],
        k: usize,
        exclude: Option<u64>,
    ) -> Result<Vec<(PersonRef, f32)>> {
        let text = vector_text(q);
        let exclude = exclude.map_or(-1, |e| e as i64);
        let mut want = (k * 8).max(32) as i64;
        loop {
            let rows = c
                .query(
                    "SELECT s.person, p.name, (s.embedding <-> $1::text::vector)::real
                     FROM likeness_samples s JOIN likeness_persons p ON p.id = s.person
                     WHERE s.person <> $2
                     ORDER BY s.embedding <-> $1::text::vector LIMIT $3",
                    &[&text, &exclude, &want],
                )
                .map_err(self.db())?;
            let mut names = std::collections::HashMap::new();
            let mut top = TopOwners::new(k);
            for r in &rows {
                let id = r.get::<_, i64>(0) as u64;
                let d: f32 = r.get(2);
                names.entry(id).or_insert_with(|| r.get::<_, String>(1));
                top.offer(id, d * d);
            }
            let found = top.finish();
            if found.len() >= k || (rows.len() as i64) < want || want > 1 << 16 {
                return Ok(found
                    .into_iter()
                    .map(|(id, d)| {
                        (
                            PersonRef {
                                id,
                                name: names.remove(&id).unwrap_or_default(),
                            },
                            d,
                        )
                    })
                    .collect());
            }
            want *= 4;
        }
    }

    /// Runs one `COPY ... FROM STDIN` in `tx`, `rows` sending its lines (fields escaped)
    /// through the callback it is given. Lines are streamed in 1 MiB messages: one message
    /// per call would exceed PostgreSQL's 1 GB message limit on a million-sample import.
    fn copy_in(
        &self,
        tx: &mut Transaction<'_>,
        sql: &str,
        rows: impl FnOnce(&mut dyn FnMut(&[&str]) -> Result<()>) -> Result<()>,
    ) -> Result<()> {
        use std::io::Write;
        let sent = |e: std::io::Error| GalleryError::Database {
            location: self.location.clone(),
            message: format!("sending the import: {e}"),
        };
        let writer = tx.copy_in(sql).map_err(self.db())?;
        let mut out = std::io::BufWriter::with_capacity(COPY_CHUNK, writer);
        let mut buf = Vec::new();
        rows(&mut |fields| {
            buf.clear();
            copy_row(&mut buf, fields);
            out.write_all(&buf).map_err(sent)
        })?;
        let writer = out.into_inner().map_err(|e| sent(e.into_error()))?;
        writer.finish().map_err(self.db())?;
        Ok(())
    }

    fn insert_samples(&self, tx: &mut Transaction<'_>, id: u64, samples: &[Sample]) -> Result<()> {
        let stmt = tx
            .prepare(
                "INSERT INTO likeness_samples (person, source, embedding, extra)
                 VALUES ($1, $2, $3::text::vector, $4::text::jsonb)",
            )
            .map_err(self.db())?;
        for s in samples {
            let extra = (!s.extra.is_empty())
                .then(|| serde_json::Value::Object(s.extra.clone()).to_string());
            tx.execute(
                &stmt,
                &[&(id as i64), &s.source, &vector_text(&s.embedding), &extra],
            )
            .map_err(self.db())?;
        }
        Ok(())
    }

    fn embeddings(&self, tx: &mut Transaction<'_>, id: u64) -> Result<Vec<(Vec<f32>, String)>> {
        let rows = tx
            .query(
                "SELECT embedding::text, source FROM likeness_samples WHERE person = $1 ORDER BY id",
                &[&(id as i64)],
            )
            .map_err(self.db())?;
        rows.iter()
            .map(|r| {
                let t: String = r.get(0);
                let v = parse_vector(&t).ok_or_else(|| GalleryError::Corrupt {
                    location: self.location.clone(),
                    message: format!("a stored embedding of #{id} does not parse"),
                })?;
                Ok((v, r.get(1)))
            })
            .collect()
    }

    fn check_dim(&self, v: &[f32], what: &str) -> Result<()> {
        check_embedding(v, Some(DIM), what)
    }
}

fn pg_message(e: &postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => format!("{} ({})", db.message(), db.code().code()),
        None => {
            let mut s = e.to_string();
            let mut source = std::error::Error::source(e);
            while let Some(inner) = source {
                s.push_str(&format!(": {inner}"));
                source = inner.source();
            }
            s
        }
    }
}

fn meta_get(
    c: &mut impl postgres::GenericClient,
    key: &str,
) -> Result<Option<String>, postgres::Error> {
    Ok(
        c.query_opt("SELECT value FROM likeness_meta WHERE key = $1", &[&key])?
            .map(|r| r.get(0)),
    )
}

fn meta_set(
    c: &mut impl postgres::GenericClient,
    key: &str,
    value: &str,
) -> Result<(), postgres::Error> {
    c.execute(
        "INSERT INTO likeness_meta VALUES ($1, $2) ON CONFLICT (key) DO UPDATE SET value = $2",
        &[&key, &value],
    )
    .map(|_| ())
}

fn extra_of(v: Option<serde_json::Value>) -> Extra {
    match v {
        Some(serde_json::Value::Object(m)) => m,
        _ => Extra::new(),
    }
}

impl GalleryStore for PostgresGallery {
    fn location(&self) -> String {
        self.location.clone()
    }

    fn embedder(&self) -> Result<Option<String>> {
        meta_get(&mut *self.client(), "embedder").map_err(self.db())
    }

    fn enrol(&self, request: EnrolRequest) -> Result<Enrolment> {
        let name = valid_name(&request.name)?;
        if request.samples.is_empty() {
            return Err(GalleryError::Invalid(format!(
                "no faces to enrol for `{name}`"
            )));
        }
        for s in &request.samples {
            self.check_dim(&s.embedding, &s.source)?;
        }
        self.write(|tx| {
            self.check_embedder(tx, &request.embedder)?;
            let existing = self.find(tx, &Who::Name(name.clone()))?;
            let next_id: u64 = meta_get(tx, "next_id")
                .map_err(self.db())?
                .and_then(|v| v.parse().ok())
                .unwrap_or(1);
            let person = existing.clone().unwrap_or(PersonRef {
                id: next_id,
                name: name.clone(),
            });
            let own = match &existing {
                Some(p) => self.embeddings(tx, p.id)?,
                None => Vec::new(),
            };
            let own_refs: Vec<&[f32]> = own.iter().map(|(v, _)| v.as_slice()).collect();
            let warnings = assess(
                &person,
                &request.samples,
                &own_refs,
                |q| Ok(self.nearest(tx, q, 1, Some(person.id))?.pop()),
                request.tolerance,
            )?;
            if !warnings.is_empty() && !request.insist {
                return Err(GalleryError::Suspicious(warnings));
            }
            if existing.is_none() {
                tx.execute(
                    "INSERT INTO likeness_persons (id, name) VALUES ($1, $2)",
                    &[&(person.id as i64), &person.name],
                )
                .map_err(self.db())?;
                meta_set(tx, "next_id", &(next_id + 1).to_string()).map_err(self.db())?;
            }
            meta_set(tx, "embedder", &request.embedder).map_err(self.db())?;
            self.insert_samples(tx, person.id, &request.samples)?;
            Ok(Enrolment {
                id: person.id,
                name: person.name,
                created: existing.is_none(),
                added: request.samples.len(),
                samples: own.len() + request.samples.len(),
                warnings,
            })
        })
    }

    fn rename(&self, who: &Who, new_name: &str) -> Result<PersonRef> {
        let new_name = valid_name(new_name)?;
        self.write(|tx| {
            let p = self
                .find(tx, who)?
                .ok_or_else(|| GalleryError::NoSuchPerson(who.to_string()))?;
            if let Some(other) = self.find(tx, &Who::Name(new_name.clone()))?
                && other.id != p.id
            {
                return Err(GalleryError::DuplicateName(new_name));
            }
            tx.execute(
                "UPDATE likeness_persons SET name = $1 WHERE id = $2",
                &[&new_name, &(p.id as i64)],
            )
            .map_err(self.db())?;
            Ok(PersonRef {
                id: p.id,
                name: new_name,
            })
        })
    }

    fn remove(&self, who: &Who) -> Result<PersonSummary> {
        self.write(|tx| {
            let p = self
                .find(tx, who)?
                .ok_or_else(|| GalleryError::NoSuchPerson(who.to_string()))?;
            let samples = self
                .embeddings(tx, p.id)?
                .into_iter()
                .map(|(_, s)| s)
                .collect();
            tx.execute(
                "DELETE FROM likeness_persons WHERE id = $1",
                &[&(p.id as i64)],
            )
            .map_err(self.db())?;
            Ok(PersonSummary {
                id: p.id,
                name: p.name,
                samples,
            })
        })
    }

    fn list(&self) -> Result<Vec<PersonSummary>> {
        let rows = self
            .client()
            .query(
                "SELECT p.id, p.name, s.source FROM likeness_persons p
                 LEFT JOIN likeness_samples s ON s.person = p.id ORDER BY p.id, s.id",
                &[],
            )
            .map_err(self.db())?;
        Ok(PersonSummary::from_rows(
            rows.iter()
                .map(|r| (r.get::<_, i64>(0) as u64, r.get(1), r.get(2))),
        ))
    }

    fn identify(
        &self,
        embedder: &str,
        queries: &[Vec<f32>],
        k: usize,
        tolerance: f32,
    ) -> Result<Vec<Vec<Candidate>>> {
        let mut client = self.client();
        self.check_embedder(&mut *client, embedder)?;
        for (n, q) in queries.iter().enumerate() {
            self.check_dim(q, &format!("query face {n}"))?;
        }
        queries
            .iter()
            .map(|q| {
                Ok(self
                    .nearest(&mut *client, q, k.max(1), None)?
                    .into_iter()
                    .map(|(p, distance)| Candidate {
                        id: p.id,
                        name: p.name,
                        distance,
                        known: distance <= tolerance,
                    })
                    .collect())
            })
            .collect()
    }

    fn export(&self) -> Result<GalleryData> {
        let mut client = self.client();
        let mut tx = client
            .build_transaction()
            .isolation_level(postgres::IsolationLevel::RepeatableRead)
            .read_only(true)
            .start()
            .map_err(self.db())?;
        let mut data = GalleryData {
            embedder: meta_get(&mut tx, "embedder").map_err(self.db())?,
            next_id: meta_get(&mut tx, "next_id")
                .map_err(self.db())?
                .and_then(|v| v.parse().ok())
                .unwrap_or(1),
            ..GalleryData::default()
        };
        for r in tx
            .query(
                "SELECT id, name, extra FROM likeness_persons ORDER BY id",
                &[],
            )
            .map_err(self.db())?
        {
            data.persons.push(Person {
                id: r.get::<_, i64>(0) as u64,
                name: r.get(1),
                samples: Vec::new(),
                extra: extra_of(r.get(2)),
            });
        }
        let index: std::collections::HashMap<u64, usize> = data
            .persons
            .iter()
            .enumerate()
            .map(|(i, p)| (p.id, i))
            .collect();
        for r in tx
            .query(
                "SELECT person, source, embedding::text, extra FROM likeness_samples ORDER BY id",
                &[],
            )
            .map_err(self.db())?
        {
            let person = r.get::<_, i64>(0) as u64;
            let text: String = r.get(2);
            let embedding = parse_vector(&text).ok_or_else(|| GalleryError::Corrupt {
                location: self.location.clone(),
                message: format!("a stored embedding of #{person} does not parse"),
            })?;
            if let Some(&i) = index.get(&person) {
                data.persons[i].samples.push(Sample {
                    embedding,
                    source: r.get(1),
                    extra: extra_of(r.get(3)),
                });
            }
        }
        tx.commit().map_err(self.db())?;
        data.validate(&self.location)?;
        Ok(data)
    }

    fn import(&self, data: GalleryData) -> Result<ImportReport> {
        data.validate("the imported file")?;
        let mut report = ImportReport {
            created: 0,
            merged: 0,
            samples: 0,
            skipped: 0,
        };
        let Some(file_dim) = data.dim() else {
            return Ok(report);
        };
        if file_dim != DIM {
            return Err(GalleryError::Dimension {
                what: "the imported file".into(),
                expected: DIM,
                got: file_dim,
            });
        }
        self.write(|tx| {
            let embedder = data.embedder.clone().unwrap_or_default();
            self.check_embedder(tx, &embedder)?;
            let persons: i64 = tx
                .query_one("SELECT count(*) FROM likeness_persons", &[])
                .map_err(self.db())?
                .get(0);
            let mut next_id: u64 = meta_get(tx, "next_id")
                .map_err(self.db())?
                .and_then(|v| v.parse().ok())
                .unwrap_or(1);
            let keep_ids = persons == 0 && next_id == 1;
            meta_set(tx, "embedder", &embedder).map_err(self.db())?;
            // which of the file's people exist already: one query, not one per person
            let names: Vec<&str> = data.persons.iter().map(|p| p.name.as_str()).collect();
            let existing: std::collections::HashMap<String, u64> = tx
                .query(
                    "SELECT name, id FROM likeness_persons WHERE name = ANY($1)",
                    &[&names],
                )
                .map_err(self.db())?
                .iter()
                .map(|r| (r.get::<_, String>(0), r.get::<_, i64>(1) as u64))
                .collect();
            // new people go in by COPY, two streams (people, then samples): one round trip
            // for the whole file instead of three per person
            let mut fresh_people = Vec::new();
            for p in data.persons {
                if let Some(&id) = existing.get(&p.name) {
                    let held = self.embeddings(tx, id)?;
                    let fresh = report.merge(p.samples, &held);
                    self.insert_samples(tx, id, &fresh)?;
                    continue;
                }
                let id = if keep_ids {
                    p.id
                } else {
                    next_id += 1;
                    next_id - 1
                };
                report.created += 1;
                report.samples += p.samples.len();
                fresh_people.push((id, p));
            }
            let copied: usize = fresh_people.iter().map(|(_, p)| p.samples.len()).sum();
            // a bulk load into an empty gallery: no index while copying, one build after
            // (only when the index is there: a caller that dropped it builds it itself)
            let reindex = persons == 0
                && copied >= REINDEX_IMPORT_AT
                && tx
                    .query_one(
                        "SELECT to_regclass('likeness_samples_hnsw') IS NOT NULL",
                        &[],
                    )
                    .map_err(self.db())?
                    .get::<_, bool>(0);
            if reindex {
                tx.batch_execute("DROP INDEX likeness_samples_hnsw")
                    .map_err(self.db())?;
            }
            if !fresh_people.is_empty() {
                self.copy_in(
                    tx,
                    "COPY likeness_persons (id, name, extra) FROM STDIN",
                    |line| {
                        for (id, p) in &fresh_people {
                            line(&[&id.to_string(), &copy_field(&p.name), &copy_extra(&p.extra)])?;
                        }
                        Ok(())
                    },
                )?;
                self.copy_in(
                    tx,
                    "COPY likeness_samples (person, source, embedding, extra) FROM STDIN",
                    |line| {
                        for (id, p) in &fresh_people {
                            for s in &p.samples {
                                line(&[
                                    &id.to_string(),
                                    &copy_field(&s.source),
                                    &vector_text(&s.embedding),
                                    &copy_extra(&s.extra),
                                ])?;
                            }
                        }
                        Ok(())
                    },
                )?;
            }
            if reindex {
                tx.batch_execute(&hnsw_index_sql()).map_err(self.db())?;
            }
            if keep_ids {
                let max: i64 = tx
                    .query_one("SELECT coalesce(max(id), 0) FROM likeness_persons", &[])
                    .map_err(self.db())?
                    .get(0);
                next_id = data.next_id.max(max as u64 + 1);
            }
            meta_set(tx, "next_id", &next_id.to_string()).map_err(self.db())?;
            Ok(report)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vectors_round_trip_through_text_exactly() {
        let v = vec![0.1f32, -1.5e-7, 3.4028235e38, 1.0 / 3.0, 0.0];
        assert_eq!(parse_vector(&vector_text(&v)).unwrap(), v);
        assert_eq!(parse_vector("[1, 2,3]").unwrap(), vec![1.0, 2.0, 3.0]);
        assert!(parse_vector("1,2").is_none());
    }

    #[test]
    fn urls_are_shown_without_their_password() {
        assert_eq!(
            redact("postgres://u:secret@h:5/db"),
            "postgres://u:***@h:5/db"
        );
        assert_eq!(redact("postgres://u@h/db"), "postgres://u@h/db");
    }
}
