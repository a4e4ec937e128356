//! Comparing face embeddings: distance, verification (1:1), identification (1:K), and
//! face_recognition's `face_distance` / `compare_faces` with the "every known face within the
//! tolerance" answer its command line prints ([`matches`]).

use crate::error::{FaceError, Result};

/// The tolerance of the default embedder (dlib's; [`crate::embedder::DLIB_TOLERANCE`] says
/// where 0.6 comes from). Other embedders carry their own in
/// [`EmbedderInfo::tolerance`](crate::embedder::EmbedderInfo::tolerance).
pub const DEFAULT_TOLERANCE: f32 = crate::embedder::DLIB_TOLERANCE;

/// A face embedding: 128 values for dlib's ResNet (L2-normalised there). Kept as a vector so
/// other embedders, with other lengths, fit the same gallery and comparisons.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(transparent)]
pub struct Embedding(pub Vec<f32>);

impl Embedding {
    /// Number of values.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether there are no values.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Euclidean distance to another embedding of the same length. Non-finite values are an
    /// error, never a NaN distance (every comparison with NaN is false, so it would read
    /// "different" or "unknown" when nothing was compared at all).
    pub fn distance(&self, other: &Embedding) -> Result<f32> {
        if self.len() != other.len() {
            return Err(FaceError::Dimension(self.len(), other.len()));
        }
        likeness_nn::check_finite("an embedding", &self.0)?;
        likeness_nn::check_finite("an embedding", &other.0)?;
        let sum: f64 = self
            .0
            .iter()
            .zip(&other.0)
            .map(|(&a, &b)| {
                let d = a as f64 - b as f64;
                d * d
            })
            .sum();
        Ok(sum.sqrt() as f32)
    }
}

/// The answer to "are these the same person?".
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Verdict {
    pub distance: f32,
    pub tolerance: f32,
    /// `distance ≤ tolerance`.
    pub same: bool,
}

/// Verification (1:1): same person iff the distance is at most `tolerance`.
pub fn verify(a: &Embedding, b: &Embedding, tolerance: f32) -> Result<Verdict> {
    let distance = a.distance(b)?;
    Ok(Verdict {
        distance,
        tolerance,
        same: distance <= tolerance,
    })
}

/// One candidate of an identification, by its index among the candidates given.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Match {
    pub index: usize,
    pub distance: f32,
}

/// Identification (1:K), exact: the `k` candidates nearest to `query`, nearest first (ties
/// keep the candidates' order). Every candidate must have the query's length.
pub fn nearest<'a>(
    query: &Embedding,
    candidates: impl IntoIterator<Item = &'a Embedding>,
    k: usize,
) -> Result<Vec<Match>> {
    let mut all = candidates
        .into_iter()
        .enumerate()
        .map(|(index, c)| {
            Ok(Match {
                index,
                distance: query.distance(c)?,
            })
        })
        .collect::<Result<Vec<_>>>()?;
    all.sort_by(|a, b| a.distance.total_cmp(&b.distance));
    all.truncate(k);
    Ok(all)
}

/// Open-set identification: the nearest candidate if it is within `tolerance`, else `None`
/// ("unknown").
pub fn identify<'a>(
    query: &Embedding,
    candidates: impl IntoIterator<Item = &'a Embedding>,
    tolerance: f32,
) -> Result<Option<Match>> {
    Ok(nearest(query, candidates, 1)?
        .into_iter()
        .next()
        .filter(|m| m.distance <= tolerance))
}

/// face_recognition's `face_distance`: the distance from `face` to each known embedding, in
/// their order.
pub fn face_distance(known: &[Embedding], face: &Embedding) -> Result<Vec<f32>> {
    known.iter().map(|k| face.distance(k)).collect()
}

/// face_recognition's `compare_faces`: for each known embedding, whether `face` is within
/// `tolerance` of it (inclusive, as [`verify`]).
pub fn compare_faces(known: &[Embedding], face: &Embedding, tolerance: f32) -> Result<Vec<bool>> {
    Ok(face_distance(known, face)?
        .into_iter()
        .map(|d| d <= tolerance)
        .collect())
}

/// A known person's face: a name and its embedding.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct KnownFace {
    pub name: String,
    pub embedding: Embedding,
}

/// A known person `face` is within the tolerance of.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct NamedMatch {
    pub name: String,
    pub distance: f32,
}

/// Every known face within `tolerance` of `face`, in the known faces' order (what
/// face_recognition's command line prints: one row per match, `unknown_person` when there is
/// none). Unlike [`identify`], a face may match several people.
pub fn matches(known: &[KnownFace], face: &Embedding, tolerance: f32) -> Result<Vec<NamedMatch>> {
    let mut out = Vec::new();
    for k in known {
        let distance = face.distance(&k.embedding)?;
        if distance <= tolerance {
            out.push(NamedMatch {
                name: k.name.clone(),
                distance,
            });
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unit(i: usize, n: usize) -> Embedding {
        let mut v = vec![0.0; n];
        v[i] = 1.0;
        Embedding(v)
    }

    #[test]
    fn distance_is_euclidean_and_checks_lengths() {
        let a = Embedding(vec![0.0, 3.0]);
        let b = Embedding(vec![4.0, 0.0]);
        assert_eq!(a.distance(&b).unwrap(), 5.0);
        assert_eq!(a.distance(&a).unwrap(), 0.0);
        assert!(matches!(
            a.distance(&unit(0, 3)),
            Err(FaceError::Dimension(2, 3))
        ));
    }

    #[test]
    fn verify_uses_the_tolerance_inclusively() {
        let a = Embedding(vec![0.0; 128]);
        let mut v = vec![0.0; 128];
        v[7] = 0.6;
        let b = Embedding(v);
        assert!(verify(&a, &b, DEFAULT_TOLERANCE).unwrap().same);
        assert!(!verify(&a, &b, 0.59).unwrap().same);
    }

    #[test]
    fn nearest_and_open_set_identify() {
        let gallery = [unit(0, 4), unit(1, 4), unit(2, 4)];
        let q = Embedding(vec![0.1, 0.9, 0.0, 0.0]);
        let top = nearest(&q, &gallery, 2).unwrap();
        assert_eq!(top.iter().map(|m| m.index).collect::<Vec<_>>(), vec![1, 0]);
        assert!(top[0].distance < top[1].distance);
        assert_eq!(identify(&q, &gallery, 0.6).unwrap().unwrap().index, 1);
        // far from everyone: unknown
        assert_eq!(identify(&unit(3, 4), &gallery, 0.6).unwrap(), None);
        assert_eq!(identify(&q, &[], 0.6).unwrap(), None);
        assert!(nearest(&q, &[unit(0, 5)], 1).is_err());
    }

    #[test]
    fn compare_faces_answers_for_each_known_face_in_order() {
        let known = [unit(0, 3), unit(1, 3), Embedding(vec![0.9, 0.1, 0.0])];
        let q = unit(0, 3);
        let d = face_distance(&known, &q).unwrap();
        assert_eq!(d[0], 0.0);
        assert!((d[1] - 2f32.sqrt()).abs() < 1e-6);
        assert!((d[2] - 0.02f32.sqrt()).abs() < 1e-6);
        assert_eq!(
            compare_faces(&known, &q, 0.6).unwrap(),
            vec![true, false, true]
        );
        assert!(compare_faces(&[unit(0, 4)], &q, 0.6).is_err());
    }

    #[test]
    fn matches_lists_every_known_person_within_the_tolerance_in_known_order() {
        let known = vec![
            KnownFace {
                name: "far".into(),
                embedding: unit(2, 3),
            },
            KnownFace {
                name: "close".into(),
                embedding: Embedding(vec![0.8, 0.0, 0.0]),
            },
            KnownFace {
                name: "exact".into(),
                embedding: unit(0, 3),
            },
        ];
        let found = matches(&known, &unit(0, 3), 0.6).unwrap();
        let names: Vec<&str> = found.iter().map(|m| m.name.as_str()).collect();
        // not sorted by distance: face_recognition prints the known people in their order
        assert_eq!(names, ["close", "exact"]);
        assert!((found[0].distance - 0.2).abs() < 1e-6);
        assert!(matches(&known, &unit(1, 3), 0.6).unwrap().is_empty());
    }
}
