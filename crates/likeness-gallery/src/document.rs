//! The gallery document: today's JSON format, the format of `gallery export` and `gallery
//! import`, and the in-memory model the JSON store changes. Every rule of the gallery model
//! (names, `#N` ids never reused, one embedder, finite embeddings of one length, suspicious
//! enrolments refused) is applied here for the JSON store; the other stores apply the same
//! rules through the same helpers ([`crate::model`]).

use serde::{Deserialize, Deserializer, Serialize};

use crate::error::{GalleryError, Result};
use crate::model::{
    Candidate, EnrolRequest, Enrolment, Extra, ImportReport, Person, PersonRef, PersonSummary, Who,
    assess, check_embedding, valid_name,
};
use crate::search::{TopOwners, l2_squared};

/// The gallery format this code writes, and the newest it reads.
pub const FORMAT_VERSION: u32 = 1;
/// The `format` field identifying a gallery document.
pub const FORMAT_NAME: &str = "likeness-gallery";

/// A whole gallery as one document (the JSON store's file, and the export format).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct GalleryData {
    pub format: String,
    pub version: u32,
    /// Name of the embedding model every sample comes from, set by the first enrolment;
    /// embeddings of different models are not comparable.
    pub embedder: Option<String>,
    pub next_id: u64,
    #[serde(deserialize_with = "persons_lenient")]
    pub persons: Vec<Person>,
    #[serde(flatten, default, skip_serializing_if = "Extra::is_empty")]
    pub extra: Extra,
}

impl Default for GalleryData {
    fn default() -> Self {
        GalleryData {
            format: FORMAT_NAME.into(),
            version: FORMAT_VERSION,
            embedder: None,
            next_id: 1,
            persons: Vec::new(),
            extra: Extra::new(),
        }
    }
}

/// Reads persons whose embeddings may hold `null` (an older Likeness wrote NaN that way): the
/// nulls become NaN here, so [`GalleryData::validate`] can name the sample and the gallery
/// stays repairable (`gallery remove '#N'`) instead of unreadable.
fn persons_lenient<'de, D: Deserializer<'de>>(d: D) -> std::result::Result<Vec<Person>, D::Error> {
    #[derive(Deserialize)]
    struct RawSample {
        embedding: Vec<Option<f32>>,
        source: String,
        #[serde(flatten)]
        extra: Extra,
    }
    #[derive(Deserialize)]
    struct RawPerson {
        id: u64,
        name: String,
        samples: Vec<RawSample>,
        #[serde(flatten)]
        extra: Extra,
    }
    let raw: Vec<RawPerson> = Vec::deserialize(d)?;
    Ok(raw
        .into_iter()
        .map(|p| Person {
            id: p.id,
            name: p.name,
            extra: p.extra,
            samples: p
                .samples
                .into_iter()
                .map(|s| crate::Sample {
                    embedding: s
                        .embedding
                        .into_iter()
                        .map(|v| v.unwrap_or(f32::NAN))
                        .collect(),
                    source: s.source,
                    extra: s.extra,
                })
                .collect(),
        })
        .collect())
}

impl GalleryData {
    /// Parses a document, refusing other formats and newer versions by their header first
    /// (so a newer layout is reported as such even if the rest no longer parses). `location`
    /// names it in errors. The content is not validated: see [`GalleryData::validate`].
    pub fn parse(bytes: &[u8], location: &str) -> Result<GalleryData> {
        let corrupt = |message: String| GalleryError::Corrupt {
            location: location.to_string(),
            message,
        };
        #[derive(Deserialize)]
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
            return Err(GalleryError::Version {
                location: location.to_string(),
                found: header.version,
                supported: FORMAT_VERSION,
            });
        }
        serde_json::from_slice(bytes).map_err(|e| corrupt(e.to_string()))
    }

    /// The document as written: pretty JSON and a final newline.
    pub fn to_bytes(&self) -> Result<Vec<u8>> {
        let mut bytes = serde_json::to_vec_pretty(self)
            .map_err(|e| GalleryError::Invalid(format!("cannot serialise the gallery: {e}")))?;
        bytes.push(b'\n');
        Ok(bytes)
    }

    /// Checks the model's rules on the content: names usable and distinct, ids distinct and
    /// below `next_id`, every embedding finite and of one length, an embedder named when
    /// there are samples. `location` names the gallery in the error.
    pub fn validate(&self, location: &str) -> Result<()> {
        let corrupt = |message: String| GalleryError::Corrupt {
            location: location.to_string(),
            message,
        };
        let mut ids = std::collections::HashSet::new();
        let mut names = std::collections::HashSet::new();
        let mut dim = None;
        for p in &self.persons {
            if !ids.insert(p.id) {
                return Err(corrupt(format!("two people have the id #{}", p.id)));
            }
            if p.id == 0 || p.id >= self.next_id {
                return Err(corrupt(format!(
                    "person #{} has an id outside 1..next_id ({})",
                    p.id, self.next_id
                )));
            }
            if valid_name(&p.name).ok().as_deref() != Some(p.name.as_str()) {
                return Err(corrupt(format!(
                    "person #{} has an unusable name `{}` (empty, padded, control characters \
                     or a leading #)",
                    p.id, p.name
                )));
            }
            if !names.insert(p.name.as_str()) {
                return Err(corrupt(format!("two people are named `{}`", p.name)));
            }
            for (i, s) in p.samples.iter().enumerate() {
                let what = format!("{} (#{})'s sample {} ({})", p.name, p.id, i + 1, s.source);
                check_embedding(&s.embedding, dim, &what).map_err(|e| {
                    corrupt(format!(
                        "{e}; remove the person with `likeness gallery remove '#{}'` and enrol \
                         them again",
                        p.id
                    ))
                })?;
                dim = Some(s.embedding.len());
            }
        }
        if dim.is_some() && self.embedder.is_none() {
            return Err(corrupt("samples without an embedder name".into()));
        }
        Ok(())
    }

    /// The length of the embeddings held, if any.
    pub fn dim(&self) -> Option<usize> {
        self.persons
            .iter()
            .flat_map(|p| &p.samples)
            .map(|s| s.embedding.len())
            .next()
    }

    /// The index of the person `who` means.
    fn position(&self, who: &Who) -> Option<usize> {
        self.persons.iter().position(|p| who.matches(p.id, &p.name))
    }

    /// The person `who` means.
    pub fn find(&self, who: &Who) -> Option<&Person> {
        self.position(who).map(|i| &self.persons[i])
    }

    /// Refuses embeddings of another model than the gallery's: they are not comparable.
    pub fn check_embedder(&self, embedder: &str, location: &str) -> Result<()> {
        match &self.embedder {
            Some(held) if held != embedder => Err(GalleryError::EmbedderMismatch {
                location: location.to_string(),
                held: held.clone(),
                offered: embedder.to_string(),
            }),
            _ => Ok(()),
        }
    }

    /// The nearest person other than `exclude` to `query`, at their best sample's distance.
    fn nearest_other(&self, query: &[f32], exclude: Option<u64>) -> Option<(PersonRef, f32)> {
        let mut top = TopOwners::new(1);
        for (i, p) in self.persons.iter().enumerate() {
            if Some(p.id) == exclude {
                continue;
            }
            for s in &p.samples {
                top.offer(i as u64, l2_squared(query, &s.embedding));
            }
        }
        top.finish().into_iter().next().map(|(i, d)| {
            let p = &self.persons[i as usize];
            (
                PersonRef {
                    id: p.id,
                    name: p.name.clone(),
                },
                d,
            )
        })
    }

    /// Adds the request's samples to the person of that name, creating them if new. Refuses
    /// (nothing changed) a suspicious enrolment unless it insists.
    pub fn enrol(&mut self, request: EnrolRequest, location: &str) -> Result<Enrolment> {
        let name = valid_name(&request.name)?;
        if request.samples.is_empty() {
            return Err(GalleryError::Invalid(format!(
                "no faces to enrol for `{name}`"
            )));
        }
        self.check_embedder(&request.embedder, location)?;
        let mut dim = self.dim();
        for s in &request.samples {
            check_embedding(&s.embedding, dim, &s.source)?;
            dim = Some(s.embedding.len());
        }
        let existing = self.persons.iter().position(|p| p.name == name);
        let person = PersonRef {
            id: existing.map_or(self.next_id, |i| self.persons[i].id),
            name: name.clone(),
        };
        let own: Vec<&[f32]> = existing
            .map(|i| {
                self.persons[i]
                    .samples
                    .iter()
                    .map(|s| s.embedding.as_slice())
                    .collect()
            })
            .unwrap_or_default();
        let warnings = assess(
            &person,
            &request.samples,
            &own,
            |q| Ok(self.nearest_other(q, Some(person.id))),
            request.tolerance,
        )?;
        if !warnings.is_empty() && !request.insist {
            return Err(GalleryError::Suspicious(warnings));
        }
        let added = request.samples.len();
        self.embedder = Some(request.embedder);
        let (created, samples) = match existing {
            Some(i) => {
                self.persons[i].samples.extend(request.samples);
                (false, self.persons[i].samples.len())
            }
            None => {
                self.next_id += 1;
                self.persons.push(Person {
                    id: person.id,
                    name,
                    samples: request.samples,
                    extra: Extra::new(),
                });
                (true, added)
            }
        };
        Ok(Enrolment {
            id: person.id,
            name: person.name,
            created,
            added,
            samples,
            warnings,
        })
    }

    /// Renames a person; the new name must be free.
    pub fn rename(&mut self, who: &Who, new_name: &str) -> Result<PersonRef> {
        let new_name = valid_name(new_name)?;
        let i = self
            .position(who)
            .ok_or_else(|| GalleryError::NoSuchPerson(who.to_string()))?;
        if self
            .persons
            .iter()
            .enumerate()
            .any(|(j, p)| j != i && p.name == new_name)
        {
            return Err(GalleryError::DuplicateName(new_name));
        }
        self.persons[i].name = new_name;
        Ok(PersonRef {
            id: self.persons[i].id,
            name: self.persons[i].name.clone(),
        })
    }

    /// Removes a person and returns who they were.
    pub fn remove(&mut self, who: &Who) -> Result<PersonSummary> {
        let i = self
            .position(who)
            .ok_or_else(|| GalleryError::NoSuchPerson(who.to_string()))?;
        Ok(PersonSummary::from(&self.persons.remove(i)))
    }

    /// Everyone, without embeddings.
    pub fn summaries(&self) -> Vec<PersonSummary> {
        self.persons.iter().map(PersonSummary::from).collect()
    }

    /// The `k` people nearest to each query (exact search), nearest first.
    pub fn identify(
        &self,
        embedder: &str,
        queries: &[Vec<f32>],
        k: usize,
        tolerance: f32,
        location: &str,
    ) -> Result<Vec<Vec<Candidate>>> {
        self.check_embedder(embedder, location)?;
        let dim = self.dim();
        queries
            .iter()
            .enumerate()
            .map(|(n, q)| {
                check_embedding(q, dim, &format!("query face {n}"))?;
                let mut top = TopOwners::new(k);
                for (i, p) in self.persons.iter().enumerate() {
                    for s in &p.samples {
                        top.offer(i as u64, l2_squared(q, &s.embedding));
                    }
                }
                Ok(top
                    .finish()
                    .into_iter()
                    .map(|(i, distance)| {
                        let p = &self.persons[i as usize];
                        Candidate {
                            id: p.id,
                            name: p.name.clone(),
                            distance,
                            known: distance <= tolerance,
                        }
                    })
                    .collect())
            })
            .collect()
    }

    /// Imports another document (an export): people of a new name are created, samples of an
    /// existing name are added to them, samples already there (same embedding and source)
    /// are skipped. Into a gallery that never held anyone the ids are kept.
    pub fn import(&mut self, other: GalleryData, location: &str) -> Result<ImportReport> {
        other.validate("the imported file")?;
        if let Some(e) = &other.embedder
            && other.dim().is_some()
        {
            self.check_embedder(e, location)?;
        }
        if let (Some(a), Some(b)) = (self.dim(), other.dim())
            && a != b
        {
            return Err(GalleryError::Dimension {
                what: "the imported file".into(),
                expected: a,
                got: b,
            });
        }
        let mut report = ImportReport {
            created: 0,
            merged: 0,
            samples: 0,
            skipped: 0,
        };
        let keep_ids = self.persons.is_empty() && self.next_id == 1;
        if other.dim().is_some() {
            self.embedder = other.embedder.clone();
        }
        for p in other.persons {
            match self.persons.iter_mut().find(|q| q.name == p.name) {
                Some(q) => {
                    let before = q.samples.len();
                    for s in p.samples {
                        if q.samples
                            .iter()
                            .any(|t| t.embedding == s.embedding && t.source == s.source)
                        {
                            report.skipped += 1;
                        } else {
                            q.samples.push(s);
                        }
                    }
                    report.samples += q.samples.len() - before;
                    report.merged += 1;
                }
                None => {
                    let id = if keep_ids {
                        p.id
                    } else {
                        self.next_id += 1;
                        self.next_id - 1
                    };
                    report.created += 1;
                    report.samples += p.samples.len();
                    self.persons.push(Person { id, ..p });
                }
            }
        }
        if keep_ids {
            let max = self.persons.iter().map(|p| p.id).max().unwrap_or(0);
            self.next_id = other.next_id.max(max + 1);
        }
        Ok(report)
    }
}
