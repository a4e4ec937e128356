//! Keeping the k strongest activations of a unit over a stream of images.

use likeness_nn::image::Image;

/// One strong activation of a unit: where it happened and the input patch it saw.
#[derive(Debug, Clone, PartialEq)]
pub struct Hit {
    pub value: f32,
    /// Index of the image in the stream.
    pub image: usize,
    /// Feature-map position.
    pub y: usize,
    pub x: usize,
    /// The receptive field's input pixels (`size × size`; parts outside the image are grey).
    pub patch: Image,
}

/// The `k` largest hits seen so far, largest first.
#[derive(Debug, Clone)]
pub struct TopK {
    k: usize,
    hits: Vec<Hit>,
}

impl TopK {
    /// An empty list keeping at most `k` hits.
    pub fn new(k: usize) -> Self {
        TopK {
            k,
            hits: Vec::with_capacity(k + 1),
        }
    }

    /// The value a new hit must exceed to enter (−∞ while fewer than k are held).
    pub fn threshold(&self) -> f32 {
        if self.hits.len() < self.k {
            f32::NEG_INFINITY
        } else {
            self.hits.last().map_or(f32::NEG_INFINITY, |h| h.value)
        }
    }

    /// Adds `hit` if it beats the threshold; ties keep the earlier hit.
    pub fn insert(&mut self, hit: Hit) {
        if self.k == 0 || hit.value.is_nan() || hit.value <= self.threshold() {
            return;
        }
        let at = self.hits.partition_point(|h| h.value >= hit.value);
        self.hits.insert(at, hit);
        self.hits.truncate(self.k);
    }

    /// The hits, largest first.
    pub fn hits(&self) -> &[Hit] {
        &self.hits
    }

    /// The hits, largest first.
    pub fn into_hits(self) -> Vec<Hit> {
        self.hits
    }
}

/// Up to `k` peaks of an `h × w` map above `threshold`, largest first: the maximum, then the
/// maximum of what lies farther than `radius` positions (Chebyshev) from every peak taken, and so
/// on, so that one image does not fill a unit's list with near-copies of one patch. Returns
/// `(value, y, x)`.
pub fn peaks(
    map: &[f32],
    h: usize,
    w: usize,
    k: usize,
    radius: usize,
    threshold: f32,
) -> Vec<(f32, usize, usize)> {
    let mut taken: Vec<(f32, usize, usize)> = Vec::with_capacity(k);
    let near = |taken: &[(f32, usize, usize)], y: usize, x: usize| {
        taken
            .iter()
            .any(|&(_, ty, tx)| ty.abs_diff(y) <= radius && tx.abs_diff(x) <= radius)
    };
    while taken.len() < k {
        let mut best: Option<(f32, usize, usize)> = None;
        for y in 0..h {
            for (x, &v) in map[y * w..(y + 1) * w].iter().enumerate() {
                // NaN compares false: never a peak.
                if v > threshold && best.is_none_or(|b| v > b.0) && !near(&taken, y, x) {
                    best = Some((v, y, x));
                }
            }
        }
        match best {
            Some(b) => taken.push(b),
            None => break,
        }
    }
    taken
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hit(value: f32, image: usize) -> Hit {
        Hit {
            value,
            image,
            y: 0,
            x: 0,
            patch: Image::from_rgb(1, 1, vec![0; 3]).unwrap(),
        }
    }

    #[test]
    fn keeps_the_k_largest_in_order() {
        let mut t = TopK::new(3);
        for (i, v) in [1.0, 5.0, f32::NAN, 3.0, 4.0, 2.0, 5.0]
            .into_iter()
            .enumerate()
        {
            t.insert(hit(v, i));
        }
        let got: Vec<(f32, usize)> = t.hits().iter().map(|h| (h.value, h.image)).collect();
        // The later 5.0 ranks after the earlier one.
        assert_eq!(got, [(5.0, 1), (5.0, 6), (4.0, 4)]);
        assert_eq!(t.threshold(), 4.0);
    }

    #[test]
    fn peaks_are_separated() {
        // 1×6 map: the two largest values are neighbours; radius 1 skips the second.
        let map = [0.0, 9.0, 8.0, 1.0, 7.0, 0.5];
        assert_eq!(peaks(&map, 1, 6, 3, 1, 0.0), [(9.0, 0, 1), (7.0, 0, 4)]);
        assert_eq!(peaks(&map, 1, 6, 2, 0, 0.0), [(9.0, 0, 1), (8.0, 0, 2)]);
        assert_eq!(peaks(&map, 1, 6, 3, 0, 7.5), [(9.0, 0, 1), (8.0, 0, 2)]);
    }
}
