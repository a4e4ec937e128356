//! Exact search: Euclidean distance and the top-k *people* (not samples) nearest to a face,
//! each with their best sample's distance.
//!
//! The distance kernel keeps eight independent partial sums so the compiler turns it into
//! vector instructions (SSE2 on every x86-64, 4 lanes × 2; the crate is built at opt-level 3
//! even in dev builds, see the workspace's Cargo.toml). bench/gallery measures it beside FAISS.

/// Euclidean distance between two embeddings of the same length (the caller checks lengths).
pub fn l2(a: &[f32], b: &[f32]) -> f32 {
    l2_squared(a, b).sqrt()
}

/// Squared Euclidean distance (monotone in the distance: enough to rank).
pub fn l2_squared(a: &[f32], b: &[f32]) -> f32 {
    debug_assert_eq!(a.len(), b.len());
    let mut acc = [0.0f32; 8];
    let (ca, cb) = (a.chunks_exact(8), b.chunks_exact(8));
    let (ra, rb) = (ca.remainder(), cb.remainder());
    for (x, y) in ca.zip(cb) {
        for i in 0..8 {
            let d = x[i] - y[i];
            acc[i] += d * d;
        }
    }
    let mut tail = 0.0;
    for (x, y) in ra.iter().zip(rb) {
        let d = x - y;
        tail += d * d;
    }
    (acc[0] + acc[4]) + (acc[1] + acc[5]) + (acc[2] + acc[6]) + (acc[3] + acc[7]) + tail
}

/// Dot product, with the same eight partial sums as [`l2_squared`] so it vectorises.
pub fn dot(a: &[f32], b: &[f32]) -> f32 {
    debug_assert_eq!(a.len(), b.len());
    let mut acc = [0.0f32; 8];
    let (ca, cb) = (a.chunks_exact(8), b.chunks_exact(8));
    let tail: f32 = ca
        .remainder()
        .iter()
        .zip(cb.remainder())
        .map(|(x, y)| x * y)
        .sum();
    for (x, y) in ca.zip(cb) {
        for i in 0..8 {
            acc[i] += x[i] * y[i];
        }
    }
    (acc[0] + acc[4]) + (acc[1] + acc[5]) + (acc[2] + acc[6]) + (acc[3] + acc[7]) + tail
}

/// The `k` nearest distinct owners seen so far, nearest first, by squared distance.
#[derive(Clone, Debug)]
pub struct TopOwners {
    k: usize,
    best: Vec<(f32, u64)>,
}

impl TopOwners {
    /// Keeps the best `k` owners (at least one).
    pub fn new(k: usize) -> TopOwners {
        TopOwners {
            k: k.max(1),
            best: Vec::with_capacity(k.max(1) + 1),
        }
    }

    /// The squared distance a new candidate must beat to enter (infinite while not full).
    #[inline]
    pub fn bound(&self) -> f32 {
        if self.best.len() < self.k {
            f32::INFINITY
        } else {
            self.best[self.best.len() - 1].0
        }
    }

    /// Offers a sample of `owner` at squared distance `d2`.
    #[inline]
    pub fn offer(&mut self, owner: u64, d2: f32) {
        if d2 >= self.bound() {
            return;
        }
        if let Some(i) = self.best.iter().position(|&(_, o)| o == owner) {
            if d2 >= self.best[i].0 {
                return;
            }
            self.best.remove(i);
        }
        let at = self.best.partition_point(|&(d, _)| d <= d2);
        self.best.insert(at, (d2, owner));
        self.best.truncate(self.k);
    }

    /// (owner, distance), nearest first.
    pub fn finish(self) -> Vec<(u64, f32)> {
        self.best
            .into_iter()
            .map(|(d2, o)| (o, d2.sqrt()))
            .collect()
    }
}

/// Every sample of a gallery as one row-major matrix, with the owner of each row: the layout
/// exact search streams through.
#[derive(Clone, Debug, Default)]
pub struct Flat {
    dim: usize,
    data: Vec<f32>,
    owners: Vec<u64>,
}

impl Flat {
    /// An empty matrix of `dim`-long rows.
    pub fn new(dim: usize) -> Flat {
        Flat {
            dim,
            data: Vec::new(),
            owners: Vec::new(),
        }
    }

    /// Row length.
    pub fn dim(&self) -> usize {
        self.dim
    }

    /// Number of rows.
    pub fn len(&self) -> usize {
        self.owners.len()
    }

    /// Whether there are no rows.
    pub fn is_empty(&self) -> bool {
        self.owners.is_empty()
    }

    /// Appends a row (`row.len()` must be `dim`).
    pub fn push(&mut self, owner: u64, row: &[f32]) {
        debug_assert_eq!(row.len(), self.dim);
        self.data.extend_from_slice(row);
        self.owners.push(owner);
    }

    /// Row `i` and its owner.
    pub fn row(&self, i: usize) -> (u64, &[f32]) {
        (self.owners[i], &self.data[i * self.dim..(i + 1) * self.dim])
    }

    /// The `k` nearest owners to `query` (each at its best row's distance), nearest first,
    /// leaving out `exclude`.
    pub fn nearest_owners(&self, query: &[f32], k: usize, exclude: Option<u64>) -> Vec<(u64, f32)> {
        let mut top = TopOwners::new(k);
        if self.dim == 0 {
            return Vec::new();
        }
        for (row, &owner) in self.data.chunks_exact(self.dim).zip(&self.owners) {
            if Some(owner) == exclude {
                continue;
            }
            top.offer(owner, l2_squared(query, row));
        }
        top.finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn distance_is_euclidean_at_every_length() {
        // 3-4-5 triangle in the tail, and a 130-long pair whose distance is sqrt(130)
        assert_eq!(l2(&[0.0, 3.0], &[4.0, 0.0]), 5.0);
        let a = vec![1.0f32; 130];
        let b = vec![0.0f32; 130];
        assert!((l2(&a, &b) - 130f32.sqrt()).abs() < 1e-5);
        // against the obvious sum in f64
        let x: Vec<f32> = (0..128).map(|i| (i as f32 * 0.37).sin()).collect();
        let y: Vec<f32> = (0..128).map(|i| (i as f32 * 0.11).cos()).collect();
        let reference: f64 = x
            .iter()
            .zip(&y)
            .map(|(&a, &b)| (a as f64 - b as f64).powi(2))
            .sum::<f64>()
            .sqrt();
        assert!((l2(&x, &y) as f64 - reference).abs() < 1e-5);
        let inner: f64 = x.iter().zip(&y).map(|(&a, &b)| a as f64 * b as f64).sum();
        assert!((dot(&x, &y) as f64 - inner).abs() < 1e-5);
        assert_eq!(dot(&[1.0, 2.0, 3.0], &[4.0, 5.0, 6.0]), 32.0);
    }

    #[test]
    fn top_k_is_per_owner_with_the_best_sample() {
        let mut flat = Flat::new(1);
        // owner 7 has samples at 5 and 1; owner 8 at 2; owner 9 at 3 and 0.5
        for (o, x) in [(7, 5.0), (8, 2.0), (7, 1.0), (9, 3.0), (9, 0.5)] {
            flat.push(o, &[x]);
        }
        let top = flat.nearest_owners(&[0.0], 2, None);
        assert_eq!(top, vec![(9, 0.5), (7, 1.0)]);
        let all = flat.nearest_owners(&[0.0], 5, None);
        assert_eq!(all, vec![(9, 0.5), (7, 1.0), (8, 2.0)]);
        assert_eq!(flat.nearest_owners(&[0.0], 1, Some(9)), vec![(7, 1.0)]);
    }
}
