//! Comparing face embeddings: distance, verification (1:1) and identification (1:K).

use crate::error::{FaceError, Result};

/// dlib's conventional decision threshold on the L2 distance between its embeddings: two
/// faces closer than this are the same person (dlib's face_recognition example, LFW 99.38 %).
pub const DEFAULT_TOLERANCE: f32 = 0.6;

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

    /// Euclidean distance to another embedding of the same length.
    pub fn distance(&self, other: &Embedding) -> Result<f32> {
        if self.len() != other.len() {
            return Err(FaceError::Dimension(self.len(), other.len()));
        }
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
}
