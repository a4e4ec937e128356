//! The store behaviour on the embedded (SQLite + index) store, exact and with the index.

mod common;

use likeness_gallery::{EmbeddedGallery, GalleryStore, JsonGallery, Who};

fn store(dir: &tempfile::TempDir, name: &str, exact_below: usize) -> EmbeddedGallery {
    EmbeddedGallery::open(dir.path().join(name))
        .unwrap()
        .with_exact_below(exact_below)
}

#[test]
fn embedded_enrol_identify_list_rename_remove_exact_and_indexed() {
    for exact_below in [usize::MAX, 0] {
        let dir = tempfile::tempdir().unwrap();
        common::enrol_identify_list_rename_remove(&store(&dir, "g.db", exact_below));
    }
}

#[test]
fn embedded_bad_input_is_refused_and_nothing_stored() {
    let dir = tempfile::tempdir().unwrap();
    common::bad_input_is_refused_and_nothing_stored(&store(&dir, "g.db", 0));
}

#[test]
fn embedded_export_import_round_trip_both_ways() {
    let dir = tempfile::tempdir().unwrap();
    common::export_import_round_trip(
        &store(&dir, "a.db", 0),
        &JsonGallery::at(dir.path().join("b.json")),
    );
    common::export_import_round_trip(
        &JsonGallery::at(dir.path().join("c.json")),
        &store(&dir, "d.db", usize::MAX),
    );
}

#[test]
fn embedded_concurrent_enrolments_lose_nothing() {
    let dir = tempfile::tempdir().unwrap();
    common::concurrent_enrolments_lose_nothing(&store(&dir, "g.db", 0), 4, 10);
    // and through separate connections to one file (as separate processes would)
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("g.db");
    common::separate_writers_lose_nothing(
        &|| Box::new(EmbeddedGallery::open(&path).unwrap()),
        4,
        10,
    );
}

#[test]
fn removed_people_never_answer_even_when_they_fill_the_first_candidates() {
    // 60 people: ten of them (the query's nearest) removed, the index re-ranking only 4
    // candidates per query, so the first candidates are all tombstones and it must widen
    let dir = tempfile::tempdir().unwrap();
    let indexed = store(&dir, "g.db", 0).with_candidates(4);
    let exact = JsonGallery::at(dir.path().join("g.json"));
    let near = |i: usize| {
        // people 0..10 close to the query (axis 0), the others spread on other axes
        let mut e = common::face(if i < 10 { 0 } else { i }, 0.0);
        e[126] = 0.05 * i as f32;
        e
    };
    for i in 0..60 {
        for s in [&indexed as &dyn GalleryStore, &exact] {
            let mut r = common::request(&format!("p{i}"), &[near(i)]);
            r.insist = true;
            s.enrol(r).unwrap();
        }
    }
    for i in 0..10 {
        indexed.remove(&Who::Name(format!("p{i}"))).unwrap();
        exact.remove(&Who::Name(format!("p{i}"))).unwrap();
    }
    let query = common::face(0, 0.0);
    let got = indexed
        .identify(common::DLIB, std::slice::from_ref(&query), 3, 0.6)
        .unwrap();
    let want = exact.identify(common::DLIB, &[query], 3, 0.6).unwrap();
    assert_eq!(got[0].len(), 3, "{got:?}");
    assert!(
        got[0]
            .iter()
            .all(|c| c.name.trim_start_matches('p').parse::<usize>().unwrap() >= 10)
    );
    assert_eq!(
        got, want,
        "the same three as exact search over the people left"
    );
    // the index held the removed ten as tombstones (no rebuild at 10 of 60 rows)
    let (rows, stored, tombstones) = indexed.verify_index().unwrap();
    assert_eq!((rows, stored, tombstones), (60, 50, 10));
}
