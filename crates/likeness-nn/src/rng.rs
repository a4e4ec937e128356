//! The one seedable random stream behind initialisation, data and shuffling, so that a seed
//! repeats a run exactly on every machine.

/// SplitMix64 (Steele, Lea & Flood 2014): tiny, portable and plenty for initialisation,
/// sampling and shuffling (not for cryptography).
#[derive(Debug, Clone)]
pub struct SplitMix64(u64);

/// The stream's increment, the golden ratio's 64-bit fraction (Steele, Lea & Flood).
const GAMMA: u64 = 0x9E37_79B9_7F4A_7C15;
/// The output mix's multipliers (Stafford's "Mix13", as in the paper's reference code).
const MIX: [u64; 2] = [0xBF58_476D_1CE4_E5B9, 0x94D0_49BB_1331_11EB];

impl SplitMix64 {
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }

    /// The whole state: `SplitMix64::new(rng.state())` continues the same stream.
    pub fn state(&self) -> u64 {
        self.0
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(GAMMA);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(MIX[0]);
        z = (z ^ (z >> 27)).wrapping_mul(MIX[1]);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1), from the top 53 bits (every value an exact f64).
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Uniform in [lo, hi).
    pub fn uniform(&mut self, lo: f64, hi: f64) -> f64 {
        lo + (hi - lo) * self.unit()
    }

    /// Uniform in `0..n` by remainder (biased by under n / 2^64: nothing at the sizes used);
    /// 0 when `n` is 0.
    pub fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            return 0;
        }
        (self.next_u64() % n as u64) as usize
    }

    /// Standard normal (Box–Muller, one of the pair).
    pub fn normal(&mut self) -> f64 {
        let u = 1.0 - self.unit();
        let v = self.unit();
        (-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * v).cos()
    }

    /// Fisher–Yates.
    pub fn shuffle<T>(&mut self, items: &mut [T]) {
        for i in (1..items.len()).rev() {
            let j = self.below(i + 1);
            items.swap(i, j);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The reference implementation's first outputs for seed 0 (Vigna's `splitmix64.c`).
    #[test]
    fn matches_the_reference_stream() {
        let mut rng = SplitMix64::new(0);
        assert_eq!(rng.next_u64(), 0xE220_A839_7B1D_CDAF);
        assert_eq!(rng.next_u64(), 0x6E78_9E6A_A1B9_65F4);
        assert_eq!(rng.next_u64(), 0x06C4_5D18_8009_454F);
        let mut again = SplitMix64::new(rng.state());
        assert_eq!(again.next_u64(), rng.next_u64());
        assert!(
            (0..1000)
                .map(|_| rng.unit())
                .all(|u| (0.0..1.0).contains(&u))
        );
    }

    #[test]
    fn draws_stay_in_range_and_a_shuffle_is_a_permutation() {
        let mut rng = SplitMix64::new(9);
        assert_eq!(rng.below(0), 0);
        let mut counts = [0usize; 3];
        for _ in 0..3000 {
            counts[rng.below(3)] += 1;
        }
        assert!(
            counts.iter().all(|&c| (900..1100).contains(&c)),
            "{counts:?}"
        );
        assert!((0..1000).all(|_| (2.0..5.0).contains(&rng.uniform(2.0, 5.0))));
        let normals: Vec<f64> = (0..20_000).map(|_| rng.normal()).collect();
        let mean = normals.iter().sum::<f64>() / normals.len() as f64;
        let var = normals.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / normals.len() as f64;
        assert!(
            mean.abs() < 0.03 && (var - 1.0).abs() < 0.05,
            "{mean} {var}"
        );
        let mut items: Vec<u32> = (0..50).collect();
        rng.shuffle(&mut items);
        assert_ne!(items, (0..50).collect::<Vec<_>>());
        items.sort_unstable();
        assert_eq!(items, (0..50).collect::<Vec<_>>());
    }
}
