//! The embedded store's approximate nearest-neighbour index: a 256-bit sign sketch of every
//! sample (random-hyperplane hashing, Charikar 2002), scanned whole by Hamming distance, then
//! the [`RERANK`] best re-ranked by exact Euclidean distance against the samples kept beside.
//!
//! # Why a sketch scan and not a graph
//!
//! The first version of this store used an HNSW graph of our own (M = 16, efConstruction =
//! 100). On bench/gallery's synthetic gallery, one sample per person and close to uniform in
//! a 127-dimensional cone, it found the exact nearest person for 63 % of queries at 100k and
//! 27 % at 1M (FAISS's IndexHNSWFlat with the same parameters: 54 % and 19 %). Greedy routing
//! has nothing to follow when every stored point is about equally far from every other.
//! Raising M to 32 and ef to 512 reached 0.994 at 100k but took 6.7 ms p50 there, so at 1M
//! the 10 ms budget was out of reach. The 1M graph also took 28 minutes to build on one core,
//! and it could not delete.
//!
//! The sketch needs no routing. A sample's sketch is the signs of [`BITS`] random Gaussian
//! projections of (sample − centre). Two samples at angle θ about the centre differ in each bit
//! with probability θ/π. Two samples of one person sit ~0.4 apart and other people ≥ 0.7, so
//! the person's own sample ranks near the top by Hamming distance and the exact re-rank
//! settles the order. On the same 1M gallery (bench/gallery, 1000 held-out queries) recall@1
//! is 0.996 from 64 candidates, 0.998 from 1024 (this module's default: 2.7 ms p50 for the
//! raw index, 3.1 ms through the store) and 1.000 from 4096; on the low-rank variant
//! (`gen --decay 0.5`, 100k) it is 1.000 from 512. The scan reads 32 bytes per sample, so 1M
//! samples is 32 MB of sequential popcounts. Building is one projection per sample (14 s at 1M
//! with the load from SQLite, not the graph's 28 minutes). Removal is a filtered row, and a
//! rebuild costs what loading does.
//!
//! The limit is linear cost: the scan grows with the gallery. bench/gallery/README.md has its
//! time per size; past a few million samples a graph or PostgreSQL is the tool.
//!
//! The centre is the mean of the samples when the index was built. It keeps the bits balanced
//! when every face embedding lies in one cone, as dlib's do. The index is rebuilt, re-centred,
//! when the gallery has doubled since then; over time that is O(1) work per enrolment.

use std::io::{Read, Write};
use std::path::Path;

use crate::error::{GalleryError, Result};
use crate::search::{Flat, TopOwners, dot, l2_squared};

/// Sketch length in bits. In a numpy prototype on bench/gallery's data, 128 bits put the
/// exact top-1 among the 1024 nearest sketches for 99.9 % of queries at 1M and 99.7 % on the
/// low-rank 100k set, 256 bits for 100 % of both. The scan's cost grows with the bits, but
/// 32 bytes per sample still streams at memory speed.
pub const BITS: usize = 256;
const WORDS: usize = BITS / 64;
/// Candidates re-ranked exactly per query (more when tombstones or `k` need them). At 1M on
/// bench/gallery: recall@1 0.996 from 64 candidates, 0.998 from 1024, 1.000 from 4096, and
/// the re-rank of 1024 rows (random reads into 512 MB of vectors) adds ~0.9 ms to the
/// 1.8 ms scan. 1024 keeps a margin for data less kind than the benchmark's.
pub const RERANK: usize = 1024;
/// The Gaussian projection's seed. The projection is part of the file format: a file records
/// its seed, so a future change of seed cannot mix sketches.
const SEED: u64 = 0x4C4B_534B_4554_4348;
/// File magic and format version of a saved index.
const MAGIC: &[u8; 8] = b"LKSKCH01";
/// Header words after the magic: dim, bits, seed, rows, centred_on, stamp[0], stamp[1].
const HEADER_WORDS: usize = 7;

/// The samples, their sketches, and the projection that made them.
#[derive(Clone, Debug)]
pub struct SketchIndex {
    rows: Flat,
    centre: Vec<f32>,
    /// `BITS × dim`, row-major: one hyperplane per bit.
    planes: Vec<f32>,
    codes: Vec<u64>,
    /// How many samples the centre was the mean of.
    centred_on: usize,
    /// What the caller says this index reflects (the store's last sample id and removal
    /// count): saved with it, so a stale file is recognised.
    pub stamp: [u64; 2],
}

/// SplitMix64 → Box–Muller: the projection's normals, the same on every machine.
fn gaussian_planes(dim: usize, seed: u64) -> Vec<f32> {
    let mut s = seed;
    let mut uniform = move || {
        s = s.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = s;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        ((z ^ (z >> 31)) >> 11) as f64 / (1u64 << 53) as f64
    };
    (0..BITS * dim)
        .map(|_| {
            let (u, v) = (1.0 - uniform(), uniform());
            ((-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * v).cos()) as f32
        })
        .collect()
}

impl SketchIndex {
    /// An index over `rows` (owner, vector), centred on their mean.
    pub fn build(rows: Flat) -> SketchIndex {
        let dim = rows.dim();
        let mut sum = vec![0f64; dim];
        for i in 0..rows.len() {
            for (s, x) in sum.iter_mut().zip(rows.row(i).1) {
                *s += *x as f64;
            }
        }
        let n = rows.len().max(1) as f64;
        let mut index = SketchIndex {
            centre: sum.iter().map(|s| (s / n) as f32).collect(),
            planes: gaussian_planes(dim, SEED),
            codes: Vec::with_capacity(rows.len() * WORDS),
            centred_on: rows.len(),
            rows,
            stamp: [0; 2],
        };
        for i in 0..index.rows.len() {
            let code = index.sketch(index.rows.row(i).1);
            index.codes.extend_from_slice(&code);
        }
        index
    }

    /// Samples held (removed people's included, until a rebuild).
    pub fn len(&self) -> usize {
        self.rows.len()
    }

    /// Whether it holds no sample.
    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// Vector length.
    pub fn dim(&self) -> usize {
        self.rows.dim()
    }

    /// Whether the gallery has outgrown the centre (doubled since it was computed), so a
    /// rebuild would re-balance the bits.
    pub fn wants_recentring(&self) -> bool {
        self.len() > 2 * self.centred_on.max(1)
    }

    /// Every sample: its owner and vector.
    pub fn rows(&self) -> impl Iterator<Item = (u64, &[f32])> {
        (0..self.rows.len()).map(|i| self.rows.row(i))
    }

    fn sketch(&self, v: &[f32]) -> [u64; WORDS] {
        let dim = self.dim();
        let centred: Vec<f32> = v.iter().zip(&self.centre).map(|(x, c)| x - c).collect();
        let mut code = [0u64; WORDS];
        for (bit, plane) in self.planes.chunks_exact(dim).enumerate() {
            if dot(plane, &centred) > 0.0 {
                code[bit / 64] |= 1 << (bit % 64);
            }
        }
        code
    }

    /// Adds a sample (`dim` long, finite) of `owner`.
    pub fn insert(&mut self, owner: u64, v: &[f32]) {
        debug_assert_eq!(v.len(), self.dim());
        let code = self.sketch(v);
        self.codes.extend_from_slice(&code);
        self.rows.push(owner, v);
    }

    /// The `k` nearest owners to `q` (not `exclude`) among the `candidates` rows whose
    /// sketches are nearest to `q`'s, by exact distance, nearest first.
    pub fn nearest_owners(
        &self,
        q: &[f32],
        k: usize,
        candidates: usize,
        exclude: Option<u64>,
    ) -> Vec<(u64, f32)> {
        if self.is_empty() || q.len() != self.dim() {
            return Vec::new();
        }
        let want = candidates.max(k).min(self.len());
        let mut top = TopOwners::new(k);
        for row in hamming_nearest(&self.codes, &self.sketch(q), want) {
            let (owner, v) = self.rows.row(row);
            if Some(owner) != exclude {
                top.offer(owner, l2_squared(q, v));
            }
        }
        top.finish()
    }

    /// Writes the index atomically to `path` (through a buffer: a 1M index is ~550 MB, and
    /// is never held twice in memory).
    pub fn save(&self, path: &Path) -> Result<()> {
        let mut file = likeness_fs::AtomicFile::create(path)?;
        let temp = file.temp_path().to_path_buf();
        let mut out = std::io::BufWriter::with_capacity(IO_BUFFER, &mut file);
        self.write_to(&mut out)
            .and_then(|()| out.flush())
            .map_err(|e| GalleryError::io(&temp, e))?;
        drop(out);
        Ok(file.commit()?)
    }

    /// Reads an index [`SketchIndex::save`] wrote; anything else (truncated, altered, another
    /// version or projection) is an error naming `path`.
    pub fn load(path: &Path) -> Result<SketchIndex> {
        let file = std::fs::File::open(path).map_err(|e| GalleryError::io(path, e))?;
        let len = file
            .metadata()
            .map_err(|e| GalleryError::io(path, e))?
            .len();
        SketchIndex::read_from(
            std::io::BufReader::with_capacity(IO_BUFFER, file),
            len,
            path,
        )
    }

    /// The index as a stream: magic, header, centre, owners, vectors, sketches, and a
    /// checksum of all of them.
    pub fn write_to(&self, out: &mut impl Write) -> std::io::Result<()> {
        let mut out = Summed::new(out);
        out.put(MAGIC)?;
        for v in [
            self.dim() as u64,
            BITS as u64,
            SEED,
            self.len() as u64,
            self.centred_on as u64,
            self.stamp[0],
            self.stamp[1],
        ] {
            out.put(&v.to_le_bytes())?;
        }
        out.put_all(self.centre.iter().map(|x| x.to_le_bytes()))?;
        out.put_all(self.rows().map(|(owner, _)| owner.to_le_bytes()))?;
        out.put_all(
            self.rows()
                .flat_map(|(_, v)| v.iter().map(|x| x.to_le_bytes())),
        )?;
        out.put_all(self.codes.iter().map(|c| c.to_le_bytes()))?;
        let sum = out.sum();
        out.inner.write_all(&sum.to_le_bytes())
    }

    /// Reads what [`SketchIndex::write_to`] wrote, `len` bytes in all: the header's sizes are
    /// checked against `len` before anything is allocated, the checksum at the end.
    pub fn read_from(input: impl Read, len: u64, path: &Path) -> Result<SketchIndex> {
        let bad = |what: &str| GalleryError::Corrupt {
            location: path.display().to_string(),
            message: format!("index file {what}"),
        };
        let mut input = Summed::new(input);
        let mut magic = [0u8; 8];
        let mut header = [0u64; HEADER_WORDS];
        let fixed = (MAGIC.len() + 8 * HEADER_WORDS + 8) as u64;
        if len < fixed
            || input.take(&mut magic).is_err()
            || &magic != MAGIC
            || header
                .iter_mut()
                .try_for_each(|h| input.u64().map(|v| *h = v))
                .is_err()
        {
            return Err(bad("is not a Likeness sketch index (or another version)"));
        }
        let [dim, bits, seed, n, centred_on, s0, s1] = header;
        if dim == 0 || dim > 65_536 || bits != BITS as u64 || seed != SEED {
            return Err(bad("has another dimension, sketch length or projection"));
        }
        let (dim, n) = (dim as usize, n as usize);
        let need = (n as u64)
            .checked_mul((8 + 4 * dim + 8 * WORDS) as u64)
            .and_then(|rows| rows.checked_add(fixed + 4 * dim as u64));
        if need != Some(len) {
            return Err(bad("has the wrong size for its header (truncated?)"));
        }
        let truncated = |_| bad("is truncated");
        let centre = input.take_all(dim, f32::from_le_bytes).map_err(truncated)?;
        let owners = input.take_all(n, u64::from_le_bytes).map_err(truncated)?;
        let vectors = input
            .take_all(n * dim, f32::from_le_bytes)
            .map_err(truncated)?;
        let codes = input
            .take_all(n * WORDS, u64::from_le_bytes)
            .map_err(truncated)?;
        let sum = input.sum();
        let mut stored = [0u8; 8];
        input.inner.read_exact(&mut stored).map_err(truncated)?;
        if u64::from_le_bytes(stored) != sum {
            return Err(bad("fails its checksum"));
        }
        if !centre.iter().chain(&vectors).all(|x| x.is_finite()) {
            return Err(bad("holds a number that is not finite"));
        }
        let mut rows = Flat::new(dim);
        for (owner, v) in owners.iter().zip(vectors.chunks_exact(dim)) {
            rows.push(*owner, v);
        }
        Ok(SketchIndex {
            rows,
            centre,
            planes: gaussian_planes(dim, SEED),
            codes,
            centred_on: centred_on as usize,
            stamp: [s0, s1],
        })
    }
}

/// The rows of the `want` sketches nearest to `query` by Hamming distance (ties go to the
/// earlier row), in no particular order.
///
/// One pass with a tightening bound, the way a top-k scan avoids a heap: rows under the bound
/// join a buffer; when the buffer holds [`BUFFER_FACTOR`]·`want`, it is cut back to the best
/// `want` (a counting sort: distances are small integers) and the bound drops to the worst
/// distance kept. Most rows fail the bound, so the inner loop is popcounts and one compare.
/// A micro-benchmark while writing it (1M random sketches, this machine): 1.3 ms with
/// AVX-512's vector popcount, ~2.3 ms with the scalar one; writing every distance out and
/// selecting afterwards, the first version, took 4–5 ms and made the store's p50 8 ms.
fn hamming_nearest(codes: &[u64], query: &[u64; WORDS], want: usize) -> Vec<usize> {
    let mut best = Nearest::new(want);
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx512vpopcntdq")
            && std::arch::is_x86_feature_detected!("avx512f")
        {
            // SAFETY: both features the function is compiled with were detected on this CPU
            // on the lines above.
            #[allow(unsafe_code)]
            unsafe {
                scan_avx512(codes, query, &mut best)
            };
            return best.finish();
        }
        if std::arch::is_x86_feature_detected!("popcnt") {
            // SAFETY: the only feature the function is compiled with beyond x86-64's baseline,
            // `popcnt`, was detected on this CPU on the line above.
            #[allow(unsafe_code)]
            unsafe {
                scan_popcnt(codes, query, &mut best)
            };
            return best.finish();
        }
    }
    scan(codes, query, &mut best);
    best.finish()
}

/// The buffer of [`hamming_nearest`] is cut back when it holds this many times `want` rows.
const BUFFER_FACTOR: usize = 4;
/// Rows whose distances are computed before the bound is checked: a block of independent
/// popcounts the compiler can put in vector registers.
const BLOCK: usize = 16;

/// The best rows seen so far and the bound a new row must beat.
struct Nearest {
    want: usize,
    /// Rows at a distance below this may enter (exclusive; starts above the largest).
    bound: u32,
    rows: Vec<(u32, usize)>,
}

impl Nearest {
    fn new(want: usize) -> Nearest {
        let want = want.max(1);
        Nearest {
            want,
            bound: BITS as u32 + 1,
            rows: Vec::with_capacity(BUFFER_FACTOR * want),
        }
    }

    #[inline(always)]
    fn offer(&mut self, row: usize, d: u32) {
        if d < self.bound {
            self.rows.push((d, row));
            if self.rows.len() >= BUFFER_FACTOR * self.want {
                self.cut();
            }
        }
    }

    /// Keeps the best `want` rows (by distance, then row order, which is arrival order) and
    /// lowers the bound to the worst distance kept once `want` rows are held.
    fn cut(&mut self) {
        let mut count = [0usize; BITS + 2];
        for &(d, _) in &self.rows {
            count[d as usize] += 1;
        }
        let (mut worst, mut below) = (0usize, 0usize);
        while worst <= BITS && below + count[worst] < self.want {
            below += count[worst];
            worst += 1;
        }
        let mut at_worst = self.want.saturating_sub(below);
        self.rows.retain(|&(d, _)| {
            let d = d as usize;
            if d < worst {
                true
            } else if d == worst && at_worst > 0 {
                at_worst -= 1;
                true
            } else {
                false
            }
        });
        if self.rows.len() >= self.want {
            // `want` rows at `worst` or better are held, and earlier rows win ties
            self.bound = worst as u32;
        }
    }

    fn finish(mut self) -> Vec<usize> {
        self.cut();
        self.rows.into_iter().map(|(_, row)| row).collect()
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512vpopcntdq")]
fn scan_avx512(codes: &[u64], query: &[u64; WORDS], best: &mut Nearest) {
    scan(codes, query, best);
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "popcnt")]
fn scan_popcnt(codes: &[u64], query: &[u64; WORDS], best: &mut Nearest) {
    scan(codes, query, best);
}

/// The scan itself, compiled once per instruction set by the wrappers above.
#[inline(always)]
fn scan(codes: &[u64], query: &[u64; WORDS], best: &mut Nearest) {
    let blocks = codes.chunks_exact(WORDS * BLOCK);
    let tail = blocks.remainder();
    let mut row = 0;
    for block in blocks {
        let mut d = [0u32; BLOCK];
        for (j, code) in block.chunks_exact(WORDS).enumerate() {
            let mut ones = 0;
            for w in 0..WORDS {
                ones += (code[w] ^ query[w]).count_ones();
            }
            d[j] = ones;
        }
        if d.iter().any(|&x| x < best.bound) {
            for (j, &x) in d.iter().enumerate() {
                best.offer(row + j, x);
            }
        }
        row += BLOCK;
    }
    for code in tail.chunks_exact(WORDS) {
        let mut ones = 0;
        for w in 0..WORDS {
            ones += (code[w] ^ query[w]).count_ones();
        }
        best.offer(row, ones);
        row += 1;
    }
}

/// Buffer of the index file's reads and writes.
const IO_BUFFER: usize = 1 << 20;
/// Bytes gathered per checksummed write or read of an array.
const CHUNK: usize = 1 << 16;
const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
const FNV_PRIME: u64 = 0x0000_0100_0000_01b3;

/// A reader or writer that keeps the checksum of what passes through: FNV-1a over 64-bit
/// little-endian words, eight times faster than byte-wise FNV on a 0.5 GB index. It detects a
/// torn or altered file, not an adversary: the index is a cache rebuilt from the store, never
/// trusted over it. Every field is 4 or 8 bytes long, so only the words' boundaries need
/// carrying over between fields.
struct Summed<T> {
    inner: T,
    hash: u64,
    word: [u8; 8],
    filled: usize,
}

impl<T> Summed<T> {
    fn new(inner: T) -> Summed<T> {
        Summed {
            inner,
            hash: FNV_OFFSET,
            word: [0; 8],
            filled: 0,
        }
    }

    fn absorb(&mut self, mut bytes: &[u8]) {
        if self.filled == 0 {
            let words = bytes.chunks_exact(8);
            let tail = words.remainder();
            for w in words {
                let mut word = [0u8; 8];
                word.copy_from_slice(w);
                self.hash = (self.hash ^ u64::from_le_bytes(word)).wrapping_mul(FNV_PRIME);
            }
            bytes = tail;
        }
        for &b in bytes {
            self.word[self.filled] = b;
            self.filled += 1;
            if self.filled == 8 {
                self.hash = (self.hash ^ u64::from_le_bytes(self.word)).wrapping_mul(FNV_PRIME);
                self.filled = 0;
            }
        }
    }

    /// The checksum of everything so far (a partial last word byte by byte).
    fn sum(&self) -> u64 {
        self.word[..self.filled]
            .iter()
            .fold(self.hash, |h, &b| (h ^ b as u64).wrapping_mul(FNV_PRIME))
    }
}

impl<W: Write> Summed<W> {
    fn put(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        self.absorb(bytes);
        self.inner.write_all(bytes)
    }

    /// Writes fields of `N` bytes each, gathered into chunks of [`CHUNK`] bytes.
    fn put_all<const N: usize>(
        &mut self,
        fields: impl Iterator<Item = [u8; N]>,
    ) -> std::io::Result<()> {
        let mut chunk = Vec::with_capacity(CHUNK);
        for f in fields {
            chunk.extend_from_slice(&f);
            if chunk.len() + N > CHUNK {
                self.put(&chunk)?;
                chunk.clear();
            }
        }
        self.put(&chunk)
    }
}

impl<R: Read> Summed<R> {
    fn take(&mut self, buf: &mut [u8]) -> std::io::Result<()> {
        self.inner.read_exact(buf)?;
        self.absorb(buf);
        Ok(())
    }

    fn u64(&mut self) -> std::io::Result<u64> {
        let mut b = [0u8; 8];
        self.take(&mut b)?;
        Ok(u64::from_le_bytes(b))
    }

    /// Reads `n` fields of `N` bytes each, in chunks of about [`CHUNK`] bytes.
    fn take_all<const N: usize, V>(
        &mut self,
        n: usize,
        decode: impl Fn([u8; N]) -> V,
    ) -> std::io::Result<Vec<V>> {
        let mut out = Vec::with_capacity(n);
        let mut chunk = vec![0u8; (CHUNK / N).max(1) * N];
        while out.len() < n {
            let count = (n - out.len()).min(chunk.len() / N);
            let part = &mut chunk[..count * N];
            self.take(part)?;
            out.extend(part.chunks_exact(N).map(|c| {
                let mut f = [0u8; N];
                f.copy_from_slice(c);
                decode(f)
            }));
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Identities as points in a cone (a shared direction plus a random one, as the
    /// benchmark's generator and dlib's embeddings), `per` noisy samples each.
    fn people(ids: usize, per: usize, dim: usize, seed: u64) -> Vec<Vec<f32>> {
        let normal = gaussian_planes(dim, seed);
        let mut noise = normal.iter().cycle().skip(dim);
        let unit = |v: Vec<f32>| {
            let n = v.iter().map(|x| x * x).sum::<f32>().sqrt();
            v.into_iter().map(|x| x / n).collect::<Vec<f32>>()
        };
        let shared = unit(normal[..dim].to_vec());
        let mut out = Vec::new();
        for _ in 0..ids {
            let own = unit((0..dim).map(|_| *noise.next().unwrap_or(&0.0)).collect());
            let centre = unit(shared.iter().zip(&own).map(|(a, b)| a + b).collect());
            for _ in 0..per {
                let sample = centre
                    .iter()
                    .map(|c| c + 0.03 * noise.next().unwrap_or(&0.0))
                    .collect();
                out.push(unit(sample));
            }
        }
        out
    }

    #[test]
    fn the_rerank_finds_the_exact_nearest_person_for_held_out_samples() {
        // 2000 people, two samples each: one enrolled, one held out as the query
        let all = people(2000, 2, 64, 3);
        let enrolled: Vec<(u64, &[f32])> = all
            .iter()
            .step_by(2)
            .enumerate()
            .map(|(i, v)| (i as u64, v.as_slice()))
            .collect();
        let mut flat = Flat::new(64);
        for &(o, v) in &enrolled {
            flat.push(o, v);
        }
        let index = SketchIndex::build(flat.clone());
        let mut hits = 0;
        for q in all.iter().skip(1).step_by(2).take(300) {
            let exact = flat.nearest_owners(q, 3, None);
            // 64 candidates of 2000: the sketch must rank the right ones near the top
            let approx = index.nearest_owners(q, 3, 64, None);
            assert_eq!(approx.len(), 3);
            for (o, d) in &approx {
                let truth = l2_squared(q, flat.row(*o as usize).1).sqrt();
                assert!((d - truth).abs() < 1e-6, "distances are exact");
            }
            hits += (approx[0].0 == exact[0].0) as usize;
        }
        assert!(hits >= 297, "recall@1 {hits}/300");
    }

    #[test]
    fn hamming_selection_keeps_exactly_the_nearest_sketches() {
        // rows whose sketch differs from the query's in `row % 7` bits
        let query = [0u64; WORDS];
        let codes: Vec<u64> = (0..100u64)
            .flat_map(|r| [(1u64 << (r % 7)) - 1, 0, 0, 0])
            .collect();
        let picked = hamming_nearest(&codes, &query, 31);
        assert_eq!(picked.len(), 31);
        // 15 rows at distance 0, 15 at distance 1, then the first of those at distance 2
        let mut dists: Vec<u32> = picked.iter().map(|&r| (r % 7) as u32).collect();
        dists.sort();
        assert_eq!(dists.iter().filter(|&&d| d == 0).count(), 15);
        assert_eq!(dists.iter().filter(|&&d| d == 1).count(), 15);
        assert_eq!(dists.iter().filter(|&&d| d == 2).count(), 1);
        assert!(picked.contains(&2), "the first row at the cut is kept");
        // the dispatched scan (AVX-512 or popcnt here) and the portable one agree, on more
        // rows than one cut of the buffer holds
        let many: Vec<u64> = (0..5000u64)
            .flat_map(|r| {
                let x = r.wrapping_mul(0x9E37_79B9_7F4A_7C15);
                [x, x.rotate_left(17), !x, x >> 3]
            })
            .collect();
        let q = [!0, 5, 0, 1 << 63];
        let mut portable = Nearest::new(100);
        scan(&many, &q, &mut portable);
        let (mut fast, mut slow) = (hamming_nearest(&many, &q, 100), portable.finish());
        fast.sort();
        slow.sort();
        assert_eq!(fast, slow);
        // and both are the true 100 nearest by (distance, row)
        let mut all: Vec<(u32, usize)> = many
            .chunks_exact(WORDS)
            .enumerate()
            .map(|(r, c)| ((0..WORDS).map(|w| (c[w] ^ q[w]).count_ones()).sum(), r))
            .collect();
        all.sort();
        let mut truth: Vec<usize> = all[..100].iter().map(|&(_, r)| r).collect();
        truth.sort();
        assert_eq!(fast, truth);
    }

    #[test]
    fn a_saved_index_reloads_identically_and_damage_is_detected() {
        let points = people(40, 3, 16, 5);
        let mut rows = Flat::new(16);
        for (i, p) in points.iter().enumerate() {
            rows.push(100 + i as u64, p);
        }
        let mut index = SketchIndex::build(rows);
        index.stamp = [7, 3];
        let mut bytes = Vec::new();
        index.write_to(&mut bytes).unwrap();
        let path = Path::new("gallery.db.index");
        let read = |b: &[u8]| SketchIndex::read_from(b, b.len() as u64, path);
        let back = read(&bytes).unwrap();
        assert_eq!(back.stamp, [7, 3]);
        assert_eq!(
            back.nearest_owners(&points[10], 3, 8, None),
            index.nearest_owners(&points[10], 3, 8, None)
        );
        let mut again = Vec::new();
        back.write_to(&mut again).unwrap();
        assert_eq!(again, bytes);
        // the streamed checksum is the word-wise FNV-1a of the whole body
        let (body, sum) = bytes.split_at(bytes.len() - 8);
        let mut whole = Summed::new(());
        whole.absorb(body);
        assert_eq!(whole.sum().to_le_bytes(), sum);
        for broken in [
            bytes[..bytes.len() / 2].to_vec(),
            {
                let mut b = bytes.clone();
                b[200] ^= 1;
                b
            },
            {
                // a header claiming more rows than the file holds: refused before allocating
                let mut b = bytes.clone();
                b[8 + 3 * 8..8 + 4 * 8].copy_from_slice(&u64::MAX.to_le_bytes());
                b
            },
            b"garbage".to_vec(),
            Vec::new(),
        ] {
            let err = read(&broken).unwrap_err();
            assert!(matches!(err, GalleryError::Corrupt { .. }), "{err}");
            assert!(err.to_string().contains("gallery.db.index"), "{err}");
        }
        // save and load through a file
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("g.db.index");
        index.save(&file).unwrap();
        assert_eq!(std::fs::read(&file).unwrap(), bytes);
        assert_eq!(SketchIndex::load(&file).unwrap().stamp, [7, 3]);
    }

    #[test]
    fn a_gallery_that_doubles_asks_to_be_recentred() {
        let points = people(10, 1, 8, 6);
        let mut rows = Flat::new(8);
        for p in &points[..4] {
            rows.push(0, p);
        }
        let mut index = SketchIndex::build(rows);
        for p in &points[4..8] {
            index.insert(1, p);
        }
        assert!(!index.wants_recentring(), "8 samples on a centre of 4");
        index.insert(1, &points[8]);
        assert!(index.wants_recentring(), "9 samples on a centre of 4");
    }
}
