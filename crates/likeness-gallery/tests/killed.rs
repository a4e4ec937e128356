//! Nothing lost: writers killed with SIGKILL mid-enrolment and mid-import, over and over,
//! on the JSON and the embedded store; then every acknowledged enrolment is there and the
//! index agrees with the store. Also two processes enrolling at once, a damaged index rebuilt,
//! and a damaged database reported and never emptied.
//!
//! The writer is this test binary run again (`child_writer`, inert unless its environment
//! variable is set): it prints `ack N` after each enrolment returns, the parent kills it at a
//! random moment and checks.

mod common;

use std::io::{BufRead, BufReader};
use std::os::unix::fs::FileTypeExt;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use likeness_gallery::{
    EmbeddedGallery, EnrolRequest, GalleryData, GalleryStore, JsonGallery, Person, Sample, Who,
    open,
};

const CHILD: &str = "LIKENESS_GALLERY_TEST_CHILD";

/// Person `i`'s face: a pseudo-random unit vector (distinct people ~1.4 apart).
fn person_face(i: usize) -> Vec<f32> {
    let mut s = i as u64 + 1;
    let v: Vec<f32> = (0..128)
        .map(|_| {
            s = s
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((s >> 40) as f32 / (1u64 << 24) as f32) - 0.5
        })
        .collect();
    let n = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    v.iter().map(|x| x / n).collect()
}

fn enrol_request(i: usize) -> EnrolRequest {
    EnrolRequest {
        insist: true,
        ..common::request(&format!("p{i}"), &[person_face(i)])
    }
}

fn document(from: usize, n: usize) -> GalleryData {
    GalleryData {
        embedder: Some(common::DLIB.into()),
        next_id: (from + n + 1) as u64,
        persons: (from..from + n)
            .map(|i| Person {
                id: (i + 1) as u64,
                name: format!("bulk{i}"),
                samples: vec![Sample::new(person_face(i), format!("bulk{i}.jpg"))],
                extra: Default::default(),
            })
            .collect(),
        ..GalleryData::default()
    }
}

fn store_at(spec: &str) -> Box<dyn GalleryStore> {
    if spec.ends_with(".json") {
        Box::new(JsonGallery::at(spec))
    } else {
        // the index from the first sample, its file rewritten every 5: kills land in writes
        Box::new(
            EmbeddedGallery::open(spec)
                .unwrap()
                .with_exact_below(0)
                .with_persist_lag(5),
        )
    }
}

/// The writer: `enrol FROM COUNT` or `import FROM COUNT`, acknowledging on stdout.
#[test]
fn child_writer() {
    let Ok(job) = std::env::var(CHILD) else {
        return;
    };
    let parts: Vec<&str> = job.split(' ').collect();
    let (what, spec, from, n) = (
        parts[0],
        parts[1],
        parts[2].parse::<usize>().unwrap(),
        parts[3].parse::<usize>().unwrap(),
    );
    let store = store_at(spec);
    match what {
        "enrol" => {
            for i in from..from + n {
                store.enrol(enrol_request(i)).unwrap();
                println!("ack {i}");
            }
        }
        _ => {
            store.import(document(from, n)).unwrap();
            println!("ack import");
        }
    }
}

fn spawn(job: &str) -> Child {
    Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "child_writer", "--nocapture", "--test-threads=1"])
        .env(CHILD, job)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

/// Runs `job`, kills it after `after`, returns the acknowledged lines.
fn run_and_kill(job: &str, after: Duration) -> Vec<String> {
    let mut child = spawn(job);
    let stdout = child.stdout.take().unwrap();
    let reader = std::thread::spawn(move || {
        BufReader::new(stdout)
            .lines()
            .map_while(|l| l.ok())
            .filter(|l| l.starts_with("ack "))
            .collect::<Vec<_>>()
    });
    std::thread::sleep(after);
    let _ = child.kill(); // SIGKILL
    let _ = child.wait();
    reader.join().unwrap()
}

/// Every acknowledged person is there, the index holds exactly the stored samples (plus
/// tombstones), and identification finds them.
fn check(spec: &str, acked: &[usize]) -> usize {
    if !spec.ends_with(".json") {
        let g = EmbeddedGallery::open(spec).unwrap().with_exact_below(0);
        let (nodes, stored, tombstones) = g.verify_index().unwrap();
        assert_eq!(nodes, stored + tombstones, "{spec}");
    }
    let store = store_at(spec);
    let list = store.list().unwrap();
    for &i in acked {
        assert!(
            list.iter().any(|p| p.name == format!("p{i}")),
            "p{i} lost in {spec}"
        );
    }
    let faces: Vec<Vec<f32>> = acked.iter().map(|&i| person_face(i)).collect();
    let answers = store.identify(common::DLIB, &faces, 1, 0.01).unwrap();
    // approximate search: nearly all, on these evenly spread synthetic faces
    let found = acked
        .iter()
        .zip(&answers)
        .filter(|(i, a)| a[0].name == format!("p{i}") && a[0].distance < 1e-5)
        .count();
    assert!(
        found * 100 >= acked.len() * 95,
        "{found} of {} found",
        acked.len()
    );
    list.len()
}

fn pseudo_random(seed: &mut u64, below: u64) -> u64 {
    *seed = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    (*seed >> 33) % below
}

fn kill_loop(spec: &str, runs: usize) -> (usize, usize) {
    let mut seed = 7;
    let mut acked_all: Vec<usize> = Vec::new();
    let mut next = 0;
    let start = Instant::now();
    for _ in 0..runs {
        let after = Duration::from_millis(30 + pseudo_random(&mut seed, 300));
        let acks = run_and_kill(&format!("enrol {spec} {next} 1000"), after);
        let acked: Vec<usize> = acks
            .iter()
            .map(|l| l["ack ".len()..].parse().unwrap())
            .collect();
        acked_all.extend(&acked);
        // the next run starts past anything this one may have written unacknowledged
        next += 1000;
        let present = check(spec, &acked_all);
        assert!(present >= acked_all.len());
    }
    eprintln!(
        "{spec}: {runs} kills, {} acknowledged enrolments, 0 lost ({:.1} s)",
        acked_all.len(),
        start.elapsed().as_secs_f64()
    );
    (runs, acked_all.len())
}

#[test]
fn killed_enrolments_lose_nothing_json() {
    let dir = tempfile::tempdir().unwrap();
    let (_, acked) = kill_loop(dir.path().join("g.json").to_str().unwrap(), 12);
    assert!(
        acked > 0,
        "no enrolment was acknowledged: the kills came too early to test"
    );
}

#[test]
fn killed_enrolments_lose_nothing_embedded() {
    let dir = tempfile::tempdir().unwrap();
    let (_, acked) = kill_loop(dir.path().join("g.db").to_str().unwrap(), 12);
    assert!(
        acked > 0,
        "no enrolment was acknowledged: the kills came too early to test"
    );
}

#[test]
fn a_killed_bulk_import_is_all_or_nothing() {
    for name in ["g.json", "g.db"] {
        let dir = tempfile::tempdir().unwrap();
        let spec = dir.path().join(name);
        let spec = spec.to_str().unwrap();
        let mut seed = 11;
        let mut outcomes = [0; 2];
        for run in 0..6 {
            let before = store_at(spec).list().unwrap().len();
            let after = Duration::from_millis(20 + pseudo_random(&mut seed, 400));
            let acks = run_and_kill(&format!("import {spec} {} 3000", run * 3000), after);
            let now = store_at(spec).list().unwrap().len();
            if acks.is_empty() {
                assert!(
                    now == before || now == before + 3000,
                    "{spec}: {before} → {now}"
                );
            } else {
                assert_eq!(now, before + 3000, "{spec}");
            }
            outcomes[(now > before) as usize] += 1;
        }
        eprintln!(
            "{spec}: 6 killed imports: {} whole, {} none",
            outcomes[1], outcomes[0]
        );
    }
}

#[test]
fn two_processes_enrolling_at_once_lose_nothing() {
    for name in ["g.json", "g.db"] {
        let dir = tempfile::tempdir().unwrap();
        let spec = dir.path().join(name);
        let spec = spec.to_str().unwrap();
        let mut a = spawn(&format!("enrol {spec} 0 40"));
        let mut b = spawn(&format!("enrol {spec} 1000 40"));
        assert!(a.wait().unwrap().success() && b.wait().unwrap().success());
        let acked: Vec<usize> = (0..40).chain(1000..1040).collect();
        assert_eq!(check(spec, &acked), 80);
    }
}

#[test]
fn a_damaged_index_is_rebuilt_from_the_store() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("g.db");
    let g = EmbeddedGallery::open(&path).unwrap().with_exact_below(0);
    for i in 0..50 {
        g.enrol(enrol_request(i)).unwrap();
    }
    let index = g.index_path().to_path_buf();
    drop(g);
    for damage in [b"garbage".to_vec(), Vec::new()] {
        std::fs::write(&index, &damage).unwrap();
        let acked: Vec<usize> = (0..50).collect();
        assert_eq!(check(path.to_str().unwrap(), &acked), 50);
    }
    // an index of another state of the store (a restored backup) is not trusted either
    std::fs::remove_file(&index).unwrap();
    assert_eq!(
        check(path.to_str().unwrap(), &(0..50).collect::<Vec<_>>()),
        50
    );
    // removals are tombstones: never reported
    let g = store_at(path.to_str().unwrap());
    g.remove(&Who::Name("p3".into())).unwrap();
    let a = g.identify(common::DLIB, &[person_face(3)], 3, 0.6).unwrap();
    assert!(a[0].iter().all(|c| c.name != "p3"), "{a:?}");
}

#[test]
fn a_fifo_or_a_link_at_the_index_name_is_never_opened_and_the_store_still_answers() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("g.db");
    let g = EmbeddedGallery::open(&path).unwrap().with_exact_below(0);
    for i in 0..30 {
        g.enrol(enrol_request(i)).unwrap();
    }
    let index = g.index_path().to_path_buf();
    drop(g);
    let elsewhere = dir.path().join("elsewhere");
    std::fs::write(&elsewhere, b"not to be touched").unwrap();
    for plant in ["fifo", "link"] {
        std::fs::remove_file(&index).unwrap();
        if plant == "fifo" {
            let made = Command::new("mkfifo").arg(&index).status().unwrap();
            assert!(made.success());
        } else {
            std::os::unix::fs::symlink(&elsewhere, &index).unwrap();
        }
        // a fresh process-like handle: answers from the store (opening the FIFO would hang)
        let (tx, rx) = std::sync::mpsc::channel();
        let spec = path.to_str().unwrap().to_string();
        std::thread::spawn(move || {
            let _ = tx.send(check(&spec, &(0..30).collect::<Vec<_>>()));
        });
        let found = rx
            .recv_timeout(std::time::Duration::from_secs(20))
            .unwrap_or_else(|_| panic!("the store blocked on a {plant} at the index name"));
        assert_eq!(found, 30);
        let meta = std::fs::symlink_metadata(&index).unwrap();
        assert_eq!(
            meta.file_type().is_fifo(),
            plant == "fifo",
            "left as it was"
        );
        assert_eq!(
            meta.file_type().is_symlink(),
            plant == "link",
            "left as it was"
        );
    }
    assert_eq!(std::fs::read(&elsewhere).unwrap(), b"not to be touched");
}

#[test]
fn a_damaged_database_is_reported_and_never_emptied() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("g.db");
    {
        let g = EmbeddedGallery::open(&path).unwrap();
        for i in 0..20 {
            g.enrol(enrol_request(i)).unwrap();
        }
    }
    let mut bytes = std::fs::read(&path).unwrap();
    // overwrite the header: no longer an SQLite file
    bytes[..16].copy_from_slice(b"not a database!!");
    std::fs::write(&path, &bytes).unwrap();
    let _ = std::fs::remove_file(dir.path().join("g.db-wal"));
    let err = EmbeddedGallery::open(&path).unwrap_err();
    assert!(err.to_string().contains("g.db"), "{err}");
    assert!(
        matches!(err, likeness_gallery::GalleryError::Corrupt { .. }),
        "{err}"
    );
    assert_eq!(
        std::fs::read(&path).unwrap(),
        bytes,
        "the damaged file was changed"
    );
    // a file of something else is not taken over either
    let other = dir.path().join("notes.txt");
    std::fs::write(&other, b"my notes").unwrap();
    assert!(open(other.to_str().unwrap()).is_err());
    assert_eq!(std::fs::read(&other).unwrap(), b"my notes");
}
