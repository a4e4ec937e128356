//! bench/gallery's Rust half: makes the synthetic clustered galleries and measures each of
//! our stores on them (JSON file, embedded, PostgreSQL + pgvector, exact brute force). FAISS,
//! the anchor, is measured by bench/gallery/faiss_bench.py on the very same vectors (read
//! from the files `gen` writes). bench/gallery/run.sh drives both; bench/gallery/README.md
//! has the results and says how the data is made.
//!
//! ```text
//! gallery_bench gen  --people N --queries Q --out DIR [--seed S] [--decay A]
//! gallery_bench run  --store exact|embedded|json|postgres --data DIR --work DIR
//!                    [--pg-url URL] [--one-by-one N] [--queries Q] [--results FILE]
//! gallery_bench run  --store pg-curve --pg-url URL --data DIR --work DIR [--results FILE]
//! ```
//!
//! `pg-curve` searches the database a `postgres` run left (`likeness_bench_N`, index built)
//! at several `hnsw.ef_search`: pgvector's recall–latency curve.
//!
//! `run` prints one JSON object per measured store (and, for the embedded store's index, one
//! per re-ranked candidate count: the recall–latency curve) and appends it to `--results`. Each store runs in its own process, so RSS is that store's alone.
//!
//! Why synthetic and clustered: uniform random vectors in 128-D are all about equally far
//! apart, so an ANN index's recall on them says nothing about faces. Faces cluster by
//! identity: a person's samples lie close together (dlib: same person ~0.3–0.5 apart),
//! different people ~0.9–1.1 apart, and dlib's embeddings fill a cone, not the whole sphere.
//! The generator reproduces those three facts and prints the spread it achieved.
//!
//! `--decay A` makes the identities' own directions anisotropic: coordinate k of the random
//! part is scaled by (1+k)^-A before normalising, a PCA-like decaying spectrum (A = 0.5:
//! participation ratio ≈ 18 dimensions instead of 128). With one sample per person the
//! isotropic gallery (A = 0) is close to uniform in a 127-D cone, the hardest case for a
//! graph index; real embeddings are believed to be of much lower intrinsic dimension, but
//! this benchmark has no real 1M-face gallery to measure it on.

use std::error::Error;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use likeness_gallery::pg::{EF_SEARCH, HNSW_EF_CONSTRUCTION, HNSW_M};
use likeness_gallery::search::{Flat, l2};
use likeness_gallery::sketch::{BITS, RERANK, SketchIndex};
use likeness_gallery::{
    EmbeddedGallery, EnrolRequest, GalleryData, GalleryStore, JsonGallery, Person, PostgresGallery,
    Sample,
};
use serde_json::{Value, json};

type Res<T> = std::result::Result<T, Box<dyn Error>>;

/// Embedding length (dlib's ResNet).
const DIM: usize = 128;
/// The embedder id every sample is enrolled under.
const EMBEDDER: &str = "dlib_face_recognition_resnet_model_v1";
/// dlib's match tolerance.
const TOLERANCE: f32 = 0.6;
/// Weight of the shared direction in every identity's centre: centres are
/// normalise(√0.5·mean + √0.5·u) with u random, so two centres have cosine ≈ 0.5, i.e. are
/// ≈ 1.0 apart (dlib's different-people distance), and all lie in a cone like dlib's.
const SHARED: f32 = std::f32::consts::FRAC_1_SQRT_2;
/// Per-coordinate noise of a sample around its centre before normalising: 16·σ/√(1+128σ²)
/// ≈ 0.42 between two samples of one person (dlib's same-person distance).
const SIGMA: f32 = 0.027;
/// Log-normal spread of each identity's own noise scale (some people vary more than others).
const SIGMA_SPREAD: f32 = 0.25;
/// Queries answered before timing starts (page cache, branch predictors, SQLite statements),
/// at most a tenth of the queries.
const WARMUP: usize = 100;

fn warmup(d: &Data) -> &[Vec<f32>] {
    &d.queries[..WARMUP.min(d.queries.len() / 10)]
}
/// Re-ranked candidate counts measured on the raw index beside the store (the recall–latency
/// curve; the store uses `sketch::RERANK`).
const RAW_CANDIDATES: [usize; 6] = [64, 128, 256, 512, 1024, 4096];

/// SplitMix64 and Box–Muller: deterministic, dependency-free.
struct Rng {
    s: u64,
    spare: Option<f32>,
}

impl Rng {
    fn new(seed: u64) -> Rng {
        Rng {
            s: seed,
            spare: None,
        }
    }
    fn next_u64(&mut self) -> u64 {
        self.s = self.s.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.s;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn uniform(&mut self) -> f64 {
        ((self.next_u64() >> 11) as f64 + 0.5) / (1u64 << 53) as f64
    }
    fn gauss(&mut self) -> f32 {
        if let Some(g) = self.spare.take() {
            return g;
        }
        let (u, v) = (self.uniform(), self.uniform());
        let r = (-2.0 * u.ln()).sqrt();
        let t = 2.0 * std::f64::consts::PI * v;
        self.spare = Some((r * t.sin()) as f32);
        (r * t.cos()) as f32
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }
}

fn normalise(v: &mut [f32]) {
    let n = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    v.iter_mut().for_each(|x| *x /= n);
}

fn sample_of(rng: &mut Rng, centre: &[f32], sigma: f32) -> Vec<f32> {
    let mut v: Vec<f32> = centre.iter().map(|c| c + sigma * rng.gauss()).collect();
    normalise(&mut v);
    v
}

fn write_f32s(path: &Path, rows: impl Iterator<Item = f32>) -> Res<()> {
    let mut w = std::io::BufWriter::new(std::fs::File::create(path)?);
    for x in rows {
        w.write_all(&x.to_le_bytes())?;
    }
    w.flush()?;
    Ok(())
}

fn read_f32s(path: &Path) -> Res<Vec<f32>> {
    let b = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(b.chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect())
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((p / 100.0) * (sorted.len() - 1) as f64).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn spread(mut v: Vec<f64>) -> Value {
    v.sort_by(f64::total_cmp);
    let mean = v.iter().sum::<f64>() / v.len().max(1) as f64;
    json!({"mean": r3(mean), "p1": r3(percentile(&v, 1.0)), "p5": r3(percentile(&v, 5.0)),
           "p50": r3(percentile(&v, 50.0)), "p95": r3(percentile(&v, 95.0))})
}

fn r3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// `gen`: the gallery (one enrolled sample per person), held-out queries of a random subset
/// of them, and the exact top-1 of each query (the ground truth every store is scored on).
fn generate(people: usize, queries: usize, seed: u64, decay: f32, out: &Path) -> Res<()> {
    std::fs::create_dir_all(out)?;
    let mut rng = Rng::new(seed);
    let mut mean: Vec<f32> = (0..DIM).map(|_| rng.gauss()).collect();
    normalise(&mut mean);
    // which identities are queried, in query order
    let queries = queries.min(people);
    let mut slot = vec![usize::MAX; people];
    let mut chosen = Vec::with_capacity(queries);
    while chosen.len() < queries {
        let i = rng.below(people);
        if slot[i] == usize::MAX {
            slot[i] = chosen.len();
            chosen.push(i);
        }
    }
    let mut gallery = Flat::new(DIM);
    let mut qs = vec![Vec::new(); queries];
    for i in 0..people {
        let mut u: Vec<f32> = (0..DIM)
            .map(|k| rng.gauss() * (1.0 + k as f32).powf(-decay))
            .collect();
        normalise(&mut u);
        let mut centre: Vec<f32> = mean
            .iter()
            .zip(&u)
            .map(|(m, x)| SHARED * m + SHARED * x)
            .collect();
        normalise(&mut centre);
        let sigma = SIGMA * (SIGMA_SPREAD * rng.gauss()).exp();
        gallery.push(i as u64, &sample_of(&mut rng, &centre, sigma));
        if slot[i] != usize::MAX {
            qs[slot[i]] = sample_of(&mut rng, &centre, sigma);
        }
    }
    // ground truth and the spread achieved
    let t = Instant::now();
    let mut gt = Vec::with_capacity(queries);
    let (mut same, mut other, mut nearest_other) = (Vec::new(), Vec::new(), Vec::new());
    let mut own_is_nearest = 0;
    for (qi, q) in qs.iter().enumerate() {
        let top = gallery.nearest_owners(q, 2, None);
        gt.push(top[0].0 as u32);
        let own = chosen[qi];
        own_is_nearest += (top[0].0 as usize == own) as usize;
        same.push(l2(q, gallery.row(own).1) as f64);
        let nearest_not_own = top.iter().find(|(o, _)| *o as usize != own).map(|x| x.1);
        nearest_other.push(nearest_not_own.unwrap_or(f32::NAN) as f64);
        let mut j = rng.below(people);
        if j == own {
            j = (j + 1) % people;
        }
        other.push(l2(q, gallery.row(j).1) as f64);
    }
    let exact_s = t.elapsed().as_secs_f64();
    write_f32s(
        &out.join("gallery.f32"),
        (0..people).flat_map(|i| gallery.row(i).1.to_vec()),
    )?;
    write_f32s(&out.join("queries.f32"), qs.iter().flatten().copied())?;
    std::fs::write(
        out.join("gt.u32"),
        gt.iter().flat_map(|g| g.to_le_bytes()).collect::<Vec<u8>>(),
    )?;
    std::fs::write(
        out.join("owner.u32"),
        chosen
            .iter()
            .flat_map(|&g| (g as u32).to_le_bytes())
            .collect::<Vec<u8>>(),
    )?;
    let meta = json!({
        "people": people, "queries": queries, "dim": DIM, "seed": seed, "decay": decay,
        "sigma": SIGMA, "sigma_spread": SIGMA_SPREAD, "shared": SHARED,
        "same_person_distance": spread(same),
        "random_other_distance": spread(other),
        "nearest_other_distance": spread(nearest_other),
        "own_identity_is_exact_top1": own_is_nearest as f64 / queries.max(1) as f64,
        "ground_truth_seconds": r3(exact_s),
    });
    std::fs::write(out.join("meta.json"), serde_json::to_string_pretty(&meta)?)?;
    println!("{}", serde_json::to_string(&meta)?);
    Ok(())
}

struct Data {
    gallery: Vec<f32>,
    queries: Vec<Vec<f32>>,
    gt: Vec<u32>,
    people: usize,
}

fn load(dir: &Path, max_queries: usize) -> Res<Data> {
    let gallery = read_f32s(&dir.join("gallery.f32"))?;
    let q = read_f32s(&dir.join("queries.f32"))?;
    let gt: Vec<u32> = std::fs::read(dir.join("gt.u32"))?
        .chunks_exact(4)
        .map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect();
    let queries: Vec<Vec<f32>> = q
        .chunks_exact(DIM)
        .take(max_queries)
        .map(<[f32]>::to_vec)
        .collect();
    Ok(Data {
        people: gallery.len() / DIM,
        gallery,
        gt: gt[..queries.len()].to_vec(),
        queries,
    })
}

fn name(row: usize) -> String {
    format!("p{row}")
}

fn document(d: &Data) -> GalleryData {
    GalleryData {
        embedder: Some(EMBEDDER.into()),
        next_id: d.people as u64 + 1,
        persons: d
            .gallery
            .chunks_exact(DIM)
            .enumerate()
            .map(|(i, e)| Person {
                id: i as u64 + 1,
                name: name(i),
                samples: vec![Sample::new(e.to_vec(), format!("{i}.jpg"))],
                extra: Default::default(),
            })
            .collect(),
        ..GalleryData::default()
    }
}

/// Kernel memory figures of this process, in MiB: (VmRSS, VmHWM).
fn rss_mib(pid: Option<u32>) -> (f64, f64) {
    let path = match pid {
        Some(p) => format!("/proc/{p}/status"),
        None => "/proc/self/status".into(),
    };
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let field = |k: &str| {
        text.lines()
            .find(|l| l.starts_with(k))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse::<f64>().ok())
            .map_or(f64::NAN, |kb| r3(kb / 1024.0))
    };
    (field("VmRSS:"), field("VmHWM:"))
}

fn file_mib(paths: &[PathBuf]) -> f64 {
    let bytes: u64 = paths
        .iter()
        .filter_map(|p| std::fs::metadata(p).ok())
        .map(|m| m.len())
        .sum();
    r3(bytes as f64 / (1024.0 * 1024.0))
}

/// Per-query latency (one query per `identify` call, like the CLI and the service) and
/// recall@1 against the ground truth.
fn identify_all(store: &dyn GalleryStore, d: &Data) -> Res<(Vec<f64>, f64)> {
    let one = |q: &Vec<f32>| -> Res<Option<usize>> {
        let answer = store.identify(EMBEDDER, std::slice::from_ref(q), 1, TOLERANCE)?;
        Ok(answer
            .first()
            .and_then(|c| c.first())
            .and_then(|c| c.name.strip_prefix('p'))
            .and_then(|n| n.parse().ok()))
    };
    for q in warmup(d).iter() {
        one(q)?;
    }
    let mut lat = Vec::with_capacity(d.queries.len());
    let mut hits = 0;
    for (q, &g) in d.queries.iter().zip(&d.gt) {
        let t = Instant::now();
        let got = one(q)?;
        lat.push(ms(t.elapsed()));
        hits += (got == Some(g as usize)) as usize;
    }
    lat.sort_by(f64::total_cmp);
    Ok((lat, hits as f64 / d.queries.len().max(1) as f64))
}

/// `n` enrolments of new people, one call each (fresh vectors from another seed).
fn enrol_one_by_one(store: &dyn GalleryStore, n: usize) -> Res<f64> {
    if n == 0 {
        return Ok(f64::NAN);
    }
    let mut rng = Rng::new(0xE4_0701);
    let t = Instant::now();
    for i in 0..n {
        let mut v: Vec<f32> = (0..DIM).map(|_| rng.gauss()).collect();
        normalise(&mut v);
        store.enrol(EnrolRequest {
            name: format!("new{i}"),
            embedder: EMBEDDER.into(),
            samples: vec![Sample::new(v, format!("new{i}.jpg"))],
            tolerance: TOLERANCE,
            insist: true,
        })?;
    }
    Ok(n as f64 / t.elapsed().as_secs_f64())
}

fn row(store: &str, d: &Data, extra: Value) -> Value {
    let mut v = json!({"store": store, "people": d.people, "queries": d.queries.len()});
    if let (Some(o), Value::Object(e)) = (v.as_object_mut(), extra) {
        o.extend(e);
    }
    v
}

fn lat_fields(lat: &[f64], recall: f64) -> Value {
    json!({"p50_ms": r3(percentile(lat, 50.0)), "p99_ms": r3(percentile(lat, 99.0)),
           "recall_at_1": recall})
}

fn merge(mut a: Value, b: Value) -> Value {
    if let (Some(o), Value::Object(e)) = (a.as_object_mut(), b) {
        o.extend(e);
    }
    a
}

fn run_exact(d: &Data) -> Res<Vec<Value>> {
    let t = Instant::now();
    let mut flat = Flat::new(DIM);
    for (i, v) in d.gallery.chunks_exact(DIM).enumerate() {
        flat.push(i as u64, v);
    }
    let build = t.elapsed();
    for q in warmup(d).iter() {
        flat.nearest_owners(q, 1, None);
    }
    let mut lat = Vec::new();
    let mut hits = 0;
    for (q, &g) in d.queries.iter().zip(&d.gt) {
        let t = Instant::now();
        let top = flat.nearest_owners(q, 1, None);
        lat.push(ms(t.elapsed()));
        hits += (top[0].0 == g as u64) as usize;
    }
    lat.sort_by(f64::total_cmp);
    let (rss, hwm) = rss_mib(None);
    Ok(vec![row(
        "exact",
        d,
        merge(
            lat_fields(&lat, hits as f64 / d.queries.len() as f64),
            json!({"build_s": r3(build.as_secs_f64()), "rss_mib": rss, "peak_rss_mib": hwm,
                   "note": "likeness_gallery::search::Flat, in memory"}),
        ),
    )])
}

/// The embedded store's index file alone (no SQLite, no names) at several re-ranked candidate
/// counts: the recall–latency curve, comparable with FAISS's.
fn run_raw_sketch(index: &Path, d: &Data) -> Res<Vec<Value>> {
    let g = SketchIndex::load(index)?;
    let mut out = Vec::new();
    for candidates in RAW_CANDIDATES {
        for q in warmup(d).iter() {
            g.nearest_owners(q, 1, candidates, None);
        }
        let mut lat = Vec::new();
        let mut hits = 0;
        for (q, &truth) in d.queries.iter().zip(&d.gt) {
            let t = Instant::now();
            let top = g.nearest_owners(q, 1, candidates, None);
            lat.push(ms(t.elapsed()));
            // owners are person ids = row + 1
            hits += (top.first().map(|x| x.0) == Some(truth as u64 + 1)) as usize;
        }
        lat.sort_by(f64::total_cmp);
        out.push(row(
            "sketch-raw",
            d,
            merge(
                lat_fields(&lat, hits as f64 / d.queries.len() as f64),
                json!({"candidates": candidates, "bits": BITS}),
            ),
        ));
    }
    Ok(out)
}

fn run_embedded(d: &Data, work: &Path, one_by_one: usize) -> Res<Vec<Value>> {
    let db = work.join(format!("embedded-{}.db", d.people));
    let side = |s: &str| {
        let mut n = db.clone().into_os_string();
        n.push(s);
        PathBuf::from(n)
    };
    let files = [db.clone(), side("-wal"), side("-shm"), side(".index")];
    for f in &files {
        let _ = std::fs::remove_file(f);
    }
    let doc = document(d);
    let store = EmbeddedGallery::open(&db)?;
    let t = Instant::now();
    store.import(doc)?;
    let import = t.elapsed();
    // the first identify builds the index (above EXACT_BELOW) or loads the matrix
    let t = Instant::now();
    store.identify(EMBEDDER, &d.queries[..1], 1, TOLERANCE)?;
    let build = t.elapsed();
    let (lat, recall) = identify_all(&store, d)?;
    let (rss, hwm) = rss_mib(None);
    drop(store);
    let disk = file_mib(&files);
    let indexed = std::fs::metadata(side(".index")).is_ok();
    // cold start: a new handle (a new process does the same work; the files are in the page
    // cache) opening the database and answering its first query
    let t = Instant::now();
    let store = EmbeddedGallery::open(&db)?;
    store.identify(EMBEDDER, &d.queries[..1], 1, TOLERANCE)?;
    let cold = t.elapsed();
    let mut out = vec![row(
        "embedded",
        d,
        merge(
            lat_fields(&lat, recall),
            json!({
                "bulk_people_per_s": r3(d.people as f64 / import.as_secs_f64()),
                "import_s": r3(import.as_secs_f64()),
                "index_build_s": if indexed { json!(r3(build.as_secs_f64())) } else { Value::Null },
                "first_load_s": r3(build.as_secs_f64()),
                "cold_start_ms": r3(ms(cold)),
                "rss_mib": rss, "peak_rss_mib": hwm, "disk_mib": disk,
                "search": if indexed { format!("sketch bits={BITS} rerank={RERANK}") } else { "exact (below EXACT_BELOW)".into() },
            }),
        ),
    )];
    if indexed {
        out.extend(run_raw_sketch(&side(".index"), d)?);
    }
    let rate = enrol_one_by_one(&store, one_by_one)?;
    if let Some(o) = out[0].as_object_mut() {
        o.insert("one_by_one_people_per_s".into(), json!(r3(rate)));
        o.insert("one_by_one_n".into(), json!(one_by_one));
    }
    Ok(out)
}

/// pgvector's ef_search values measured by `pg-curve` (its default is 40, the store's 100,
/// its maximum 1000).
const PG_EF_SEARCHES: [usize; 5] = [40, 100, 200, 400, 1000];

/// pgvector's recall–latency curve on the database a `postgres` run built: one SQL query per
/// face, the nearest sample's person, as the store asks it (without the store's over-fetch).
fn run_pg_curve(d: &Data, url: &str) -> Res<Vec<Value>> {
    let base = url.rsplit_once('/').map_or(url, |(b, _)| b);
    let mut c = postgres::Client::connect(
        &format!("{base}/likeness_bench_{}", d.people),
        postgres::NoTls,
    )?;
    let text = |q: &[f32]| {
        let parts: Vec<String> = q.iter().map(f32::to_string).collect();
        format!("[{}]", parts.join(","))
    };
    let stmt = c.prepare(
        "SELECT person FROM likeness_samples ORDER BY embedding <-> $1::text::vector LIMIT 1",
    )?;
    let mut out = Vec::new();
    for ef in PG_EF_SEARCHES {
        c.batch_execute(&format!("SET hnsw.ef_search = {ef}"))?;
        for q in warmup(d) {
            c.query(&stmt, &[&text(q)])?;
        }
        let (mut lat, mut hits) = (Vec::new(), 0);
        for (q, &truth) in d.queries.iter().zip(&d.gt) {
            let t = Instant::now();
            let rows = c.query(&stmt, &[&text(q)])?;
            lat.push(ms(t.elapsed()));
            let person: Option<i64> = rows.first().map(|r| r.get(0));
            // person ids are row + 1 (the import keeps the document's ids)
            hits += (person == Some(truth as i64 + 1)) as usize;
        }
        lat.sort_by(f64::total_cmp);
        out.push(row(
            "pgvector-raw",
            d,
            merge(
                lat_fields(&lat, hits as f64 / d.queries.len() as f64),
                json!({"ef_search": ef, "m": HNSW_M, "ef_construction": HNSW_EF_CONSTRUCTION}),
            ),
        ));
    }
    Ok(out)
}

fn run_json(d: &Data, work: &Path, one_by_one: usize) -> Res<Vec<Value>> {
    let path = work.join(format!("gallery-{}.json", d.people));
    let _ = std::fs::remove_file(&path);
    let store = JsonGallery::at(&path);
    let t = Instant::now();
    store.import(document(d))?;
    let import = t.elapsed();
    let t = Instant::now();
    store.identify(EMBEDDER, &d.queries[..1], 1, TOLERANCE)?;
    let first = t.elapsed();
    let (lat, recall) = identify_all(&store, d)?;
    let (rss, hwm) = rss_mib(None);
    let disk = file_mib(std::slice::from_ref(&path));
    let rate = enrol_one_by_one(&store, one_by_one)?;
    Ok(vec![row(
        "json",
        d,
        merge(
            lat_fields(&lat, recall),
            json!({
                "bulk_people_per_s": r3(d.people as f64 / import.as_secs_f64()),
                "import_s": r3(import.as_secs_f64()),
                "index_build_s": Value::Null,
                "cold_start_ms": r3(ms(first)),
                "rss_mib": rss, "peak_rss_mib": hwm, "disk_mib": disk,
                "one_by_one_people_per_s": r3(rate), "one_by_one_n": one_by_one,
                "search": "exact; every call reads and parses the whole file",
            }),
        ),
    )])
}

fn run_postgres(d: &Data, url: &str, one_by_one: usize, index_timeout_s: u64) -> Res<Vec<Value>> {
    // a fresh database per size
    let db = format!("likeness_bench_{}", d.people);
    let mut admin = postgres::Client::connect(url, postgres::NoTls)?;
    admin.batch_execute(&format!("DROP DATABASE IF EXISTS {db}"))?;
    admin.batch_execute(&format!("CREATE DATABASE {db}"))?;
    let base = url.rsplit_once('/').map_or(url, |(b, _)| b);
    let db_url = format!("{base}/{db}");
    let store = PostgresGallery::connect(&db_url)?;
    let mut c = postgres::Client::connect(&db_url, postgres::NoTls)?;
    // bulk load the way a database is bulk loaded: without the index, then one index build
    c.batch_execute("DROP INDEX likeness_samples_hnsw")?;
    let t = Instant::now();
    store.import(document(d))?;
    let import = t.elapsed();
    c.batch_execute(&format!(
        "SET maintenance_work_mem = '4GB'; SET max_parallel_maintenance_workers = 1;
         SET statement_timeout = '{index_timeout_s}s'"
    ))?;
    let t = Instant::now();
    let built = c.batch_execute(&format!(
        "CREATE INDEX likeness_samples_hnsw ON likeness_samples
         USING hnsw (embedding vector_l2_ops) WITH (m = {HNSW_M}, ef_construction = {HNSW_EF_CONSTRUCTION})"
    ));
    let build = t.elapsed();
    if let Err(e) = built {
        return Ok(vec![row(
            "postgres",
            d,
            json!({"import_s": r3(import.as_secs_f64()),
                   "bulk_people_per_s": r3(d.people as f64 / import.as_secs_f64()),
                   "index_build_s": Value::Null,
                   "note": format!("index build stopped after {:.0} s: {e}", build.as_secs_f64())}),
        )]);
    }
    c.batch_execute("ANALYZE likeness_samples; ANALYZE likeness_persons")?;
    drop(store);
    // cold start: connect (the schema check) and the first answer; the server and its
    // buffer cache stay warm
    let t = Instant::now();
    let store = PostgresGallery::connect(&db_url)?;
    store.identify(EMBEDDER, &d.queries[..1], 1, TOLERANCE)?;
    let cold = t.elapsed();
    let (lat, recall) = identify_all(&store, d)?;
    let disk: i64 = c
        .query_one(
            "SELECT pg_total_relation_size('likeness_samples') + pg_total_relation_size('likeness_persons')",
            &[],
        )?
        .get(0);
    let index: i64 = c
        .query_one("SELECT pg_relation_size('likeness_samples_hnsw')", &[])?
        .get(0);
    // the backend that served the queries: the store's connection is the newest one
    let pid: Option<i32> = c
        .query_opt(
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database()
             AND pid <> pg_backend_pid() ORDER BY backend_start DESC LIMIT 1",
            &[],
        )?
        .map(|r| r.get(0));
    let (rss, hwm) = rss_mib(pid.map(|p| p as u32));
    let (client_rss, _) = rss_mib(None);
    let rate = enrol_one_by_one(&store, one_by_one)?;
    Ok(vec![row(
        "postgres",
        d,
        merge(
            lat_fields(&lat, recall),
            json!({
                "bulk_people_per_s": r3(d.people as f64 / import.as_secs_f64()),
                "import_s": r3(import.as_secs_f64()),
                "index_build_s": r3(build.as_secs_f64()),
                "cold_start_ms": r3(ms(cold)),
                "rss_mib": rss, "peak_rss_mib": hwm, "client_rss_mib": client_rss,
                "disk_mib": r3(disk as f64 / (1024.0 * 1024.0)),
                "index_mib": r3(index as f64 / (1024.0 * 1024.0)),
                "one_by_one_people_per_s": r3(rate), "one_by_one_n": one_by_one,
                "search": format!("pgvector hnsw m={HNSW_M} efc={HNSW_EF_CONSTRUCTION} ef_search={EF_SEARCH}"),
                "note": "rss = the serving backend (shared buffers it touched included)",
            }),
        ),
    )])
}

fn arg<'a>(args: &'a [String], key: &str) -> Option<&'a str> {
    args.iter()
        .position(|a| a == key)
        .and_then(|i| args.get(i + 1))
        .map(String::as_str)
}

fn num(args: &[String], key: &str, default: usize) -> Res<usize> {
    Ok(match arg(args, key) {
        Some(v) => v.parse().map_err(|_| format!("{key}: not a number: {v}"))?,
        None => default,
    })
}

fn main() -> Res<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("gen") => {
            let out = arg(&args, "--out").ok_or("gen needs --out DIR")?;
            generate(
                num(&args, "--people", 10_000)?,
                num(&args, "--queries", 1000)?,
                num(&args, "--seed", 12)? as u64,
                match arg(&args, "--decay") {
                    Some(v) => v
                        .parse()
                        .map_err(|_| format!("--decay: not a number: {v}"))?,
                    None => 0.0,
                },
                Path::new(out),
            )
        }
        Some("run") => {
            let data = arg(&args, "--data").ok_or("run needs --data DIR")?;
            let work = PathBuf::from(arg(&args, "--work").ok_or("run needs --work DIR")?);
            std::fs::create_dir_all(&work)?;
            let d = load(Path::new(data), num(&args, "--queries", usize::MAX)?)?;
            let n = num(&args, "--one-by-one", 1000)?;
            let rows = match arg(&args, "--store") {
                Some("exact") => run_exact(&d)?,
                Some("embedded") => run_embedded(&d, &work, n)?,
                Some("pg-curve") => run_pg_curve(
                    &d,
                    arg(&args, "--pg-url").ok_or("--store pg-curve needs --pg-url")?,
                )?,
                Some("json") => run_json(&d, &work, n)?,
                Some("postgres") => run_postgres(
                    &d,
                    arg(&args, "--pg-url").ok_or("--store postgres needs --pg-url")?,
                    n,
                    num(&args, "--index-timeout", 1800)? as u64,
                )?,
                other => return Err(format!("unknown --store {other:?}").into()),
            };
            let mut results = match arg(&args, "--results") {
                Some(p) => Some(
                    std::fs::OpenOptions::new()
                        .create(true)
                        .append(true)
                        .open(p)?,
                ),
                None => None,
            };
            let decay = std::fs::read_to_string(Path::new(data).join("meta.json"))
                .ok()
                .and_then(|m| serde_json::from_str::<Value>(&m).ok())
                .and_then(|m| m.get("decay").and_then(Value::as_f64))
                .unwrap_or(0.0);
            for mut r in rows {
                if let Some(o) = r.as_object_mut() {
                    o.insert("decay".into(), json!(decay));
                }
                let line = serde_json::to_string(&r)?;
                println!("{line}");
                if let Some(f) = results.as_mut() {
                    writeln!(f, "{line}")?;
                }
            }
            Ok(())
        }
        _ => Err(
            "usage: gallery_bench gen --people N --queries Q --out DIR | \
                  run --store exact|embedded|json|postgres --data DIR --work DIR [...]"
                .into(),
        ),
    }
}
