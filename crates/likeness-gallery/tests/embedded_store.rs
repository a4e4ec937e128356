//! The store behaviour on the embedded (SQLite + index) store, exact and with the graph.

mod common;

use likeness_gallery::{EmbeddedGallery, JsonGallery};

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
