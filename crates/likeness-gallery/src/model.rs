//! What a gallery holds and says: people, their samples, who an argument means, what an
//! enrolment did, and who a face is. These serde types are printed as they are by the CLI and
//! the service.

use serde::{Deserialize, Serialize};

use crate::error::{GalleryError, Result};

/// Fields a newer (or another) writer put in the JSON document that this code does not know:
/// kept and written back, never dropped.
pub type Extra = serde_json::Map<String, serde_json::Value>;

/// One stored face of a person.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Sample {
    /// The embedding: finite values, the gallery's length (128 for dlib's ResNet).
    pub embedding: Vec<f32>,
    /// Where the face came from (file name, and face index when a photo had several).
    pub source: String,
    #[serde(flatten, default, skip_serializing_if = "Extra::is_empty")]
    pub extra: Extra,
}

impl Sample {
    /// A sample without extra fields.
    pub fn new(embedding: Vec<f32>, source: impl Into<String>) -> Sample {
        Sample {
            embedding,
            source: source.into(),
            extra: Extra::new(),
        }
    }
}

/// An enrolled person and every sample of them.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Person {
    /// Stable identifier, never reused within a gallery; written `#N` on the command line.
    pub id: u64,
    pub name: String,
    pub samples: Vec<Sample>,
    #[serde(flatten, default, skip_serializing_if = "Extra::is_empty")]
    pub extra: Extra,
}

/// A person as listed: who, and where their samples came from (no embeddings).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PersonSummary {
    pub id: u64,
    pub name: String,
    /// The sources of the samples, in enrolment order.
    pub samples: Vec<String>,
}

impl PersonSummary {
    /// People from the rows of a `persons LEFT JOIN samples` query ordered by person then
    /// sample: `(id, name, source)`, the source `None` for a person without samples.
    pub(crate) fn from_rows(
        rows: impl IntoIterator<Item = (u64, String, Option<String>)>,
    ) -> Vec<PersonSummary> {
        let mut out: Vec<PersonSummary> = Vec::new();
        for (id, name, source) in rows {
            if out.last().is_none_or(|p| p.id != id) {
                out.push(PersonSummary {
                    id,
                    name,
                    samples: Vec::new(),
                });
            }
            if let (Some(s), Some(p)) = (source, out.last_mut()) {
                p.samples.push(s);
            }
        }
        out
    }
}

impl From<&Person> for PersonSummary {
    fn from(p: &Person) -> Self {
        PersonSummary {
            id: p.id,
            name: p.name.clone(),
            samples: p.samples.iter().map(|s| s.source.clone()).collect(),
        }
    }
}

/// A person's identity.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PersonRef {
    pub id: u64,
    pub name: String,
}

impl std::fmt::Display for PersonRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} (#{})", self.name, self.id)
    }
}

/// Who an argument means: `#N` is the person with id N; anything else is a name (a bare
/// number too: `gallery remove 2` means the person called "2", never #2).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Who {
    Id(u64),
    Name(String),
}

impl Who {
    /// Reads a command-line argument: `#7` → id 7, `Ada` or `2` → a name.
    pub fn parse(arg: &str) -> Result<Who> {
        match arg.trim().strip_prefix('#') {
            Some(digits) => digits.parse().map(Who::Id).map_err(|_| {
                GalleryError::Invalid(format!(
                    "`{arg}` is not a person id: ids are written #N with N a whole number"
                ))
            }),
            None => Ok(Who::Name(arg.trim().to_string())),
        }
    }

    /// Whether `person` is the one meant.
    pub fn matches(&self, id: u64, name: &str) -> bool {
        match self {
            Who::Id(i) => *i == id,
            Who::Name(n) => n == name,
        }
    }
}

impl std::fmt::Display for Who {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Who::Id(id) => write!(f, "#{id}"),
            Who::Name(n) => write!(f, "`{n}`"),
        }
    }
}

/// A usable person name: trimmed, not empty, no control characters, not starting with `#`
/// (that is how ids are written).
pub fn valid_name(name: &str) -> Result<String> {
    let name = name.trim();
    if name.is_empty() || name.chars().any(char::is_control) || name.starts_with('#') {
        return Err(GalleryError::Invalid(format!(
            "`{name}` is not a usable name (empty, control characters, or starting with `#`, \
             which marks an id)"
        )));
    }
    Ok(name.to_string())
}

/// Refuses an embedding that is empty, of the wrong length (`expected`, when the gallery has
/// one) or not finite. `what` names it in the message (a file, a person's sample).
pub fn check_embedding(embedding: &[f32], expected: Option<usize>, what: &str) -> Result<()> {
    if embedding.is_empty() {
        return Err(GalleryError::Invalid(format!(
            "embedding of {what} is empty"
        )));
    }
    if let Some(expected) = expected.filter(|&e| e != embedding.len()) {
        return Err(GalleryError::Dimension {
            what: what.to_string(),
            expected,
            got: embedding.len(),
        });
    }
    if let Some((index, &value)) = embedding.iter().enumerate().find(|(_, v)| !v.is_finite()) {
        return Err(GalleryError::NonFinite {
            what: what.to_string(),
            index,
            value,
        });
    }
    Ok(())
}

/// An enrolment to make: samples of one person under one name.
#[derive(Clone, Debug)]
pub struct EnrolRequest {
    pub name: String,
    /// The embedder's id (`dlib_face_recognition_resnet_model_v1`, or a fine-tuned file's).
    pub embedder: String,
    pub samples: Vec<Sample>,
    /// The embedder's match tolerance: a new face farther than this from every sample of the
    /// person it joins, or within it of someone else, is suspicious.
    pub tolerance: f32,
    /// Enrol even when suspicious (the warnings are still returned).
    pub insist: bool,
}

/// Why an enrolment looks wrong.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "warning", rename_all = "snake_case")]
pub enum EnrolWarning {
    /// The new face is farther than the tolerance from every other sample of the person.
    FarFromOwn {
        source: String,
        person: PersonRef,
        distance: f32,
        tolerance: f32,
    },
    /// The new face is within the tolerance of another person's sample.
    CloseToOther {
        source: String,
        other: PersonRef,
        distance: f32,
        tolerance: f32,
    },
}

impl std::fmt::Display for EnrolWarning {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            EnrolWarning::FarFromOwn {
                source,
                person,
                distance,
                tolerance,
            } => write!(
                f,
                "the face in {source} is {distance:.3} from {person}'s nearest other sample, \
                 beyond the tolerance {tolerance}: is it the same person?"
            ),
            EnrolWarning::CloseToOther {
                source,
                other,
                distance,
                tolerance,
            } => write!(
                f,
                "the face in {source} is {distance:.3} from {other}, within the tolerance \
                 {tolerance}: it may be them"
            ),
        }
    }
}

/// What an enrolment did.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Enrolment {
    pub id: u64,
    pub name: String,
    /// A new person was created (else samples were added to an existing one).
    pub created: bool,
    /// Samples added by this enrolment.
    pub added: usize,
    /// The person's samples after it.
    pub samples: usize,
    /// What looked wrong and was kept anyway (`insist`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<EnrolWarning>,
}

/// One candidate of an identification: a person and their best sample's distance.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Candidate {
    pub id: u64,
    pub name: String,
    /// The distance of the person's nearest sample to the face.
    pub distance: f32,
    /// `distance ≤ tolerance`.
    pub known: bool,
}

/// What an import did.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ImportReport {
    /// People created.
    pub created: usize,
    /// People who existed (same name) and got samples.
    pub merged: usize,
    /// Samples added.
    pub samples: usize,
    /// Samples already present (same embedding and source), skipped: importing twice
    /// changes nothing.
    pub skipped: usize,
}

impl ImportReport {
    /// Counts a merge into a person who exists: of the `offered` samples, those `held`
    /// already (same embedding and source) are skipped; the rest are returned to be stored.
    pub(crate) fn merge(
        &mut self,
        offered: Vec<Sample>,
        held: &[(Vec<f32>, String)],
    ) -> Vec<Sample> {
        let count = offered.len();
        let fresh: Vec<Sample> = offered
            .into_iter()
            .filter(|s| {
                !held
                    .iter()
                    .any(|(e, src)| *e == s.embedding && *src == s.source)
            })
            .collect();
        self.skipped += count - fresh.len();
        self.samples += fresh.len();
        self.merged += 1;
        fresh
    }
}

/// Judges samples about to join a person: each against the person's other samples (`own`:
/// existing ones; the request's others are added here) and against the nearest other person
/// (`nearest_other`, from the store's search, excluding the person).
pub fn assess(
    person: &PersonRef,
    new: &[Sample],
    own: &[&[f32]],
    mut nearest_other: impl FnMut(&[f32]) -> Result<Option<(PersonRef, f32)>>,
    tolerance: f32,
) -> Result<Vec<EnrolWarning>> {
    let mut warnings = Vec::new();
    for (i, s) in new.iter().enumerate() {
        let others = own.iter().copied().chain(
            new.iter()
                .enumerate()
                .filter(|&(j, _)| j != i)
                .map(|(_, t)| t.embedding.as_slice()),
        );
        let nearest_own = others
            .map(|o| crate::search::l2(&s.embedding, o))
            .min_by(f32::total_cmp);
        if let Some(d) = nearest_own.filter(|&d| d > tolerance) {
            warnings.push(EnrolWarning::FarFromOwn {
                source: s.source.clone(),
                person: person.clone(),
                distance: d,
                tolerance,
            });
        }
        if let Some((other, d)) = nearest_other(&s.embedding)?.filter(|(_, d)| *d <= tolerance) {
            warnings.push(EnrolWarning::CloseToOther {
                source: s.source.clone(),
                other,
                distance: d,
                tolerance,
            });
        }
    }
    Ok(warnings)
}
