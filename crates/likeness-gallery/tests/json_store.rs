//! The store behaviour on the JSON file store.

mod common;

use likeness_gallery::JsonGallery;

fn store(dir: &tempfile::TempDir, name: &str) -> JsonGallery {
    JsonGallery::at(dir.path().join(name))
}

#[test]
fn json_enrol_identify_list_rename_remove() {
    let dir = tempfile::tempdir().unwrap();
    common::enrol_identify_list_rename_remove(&store(&dir, "g.json"));
}

#[test]
fn json_bad_input_is_refused_and_nothing_stored() {
    let dir = tempfile::tempdir().unwrap();
    let s = store(&dir, "g.json");
    common::bad_input_is_refused_and_nothing_stored(&s);
}

#[test]
fn json_export_import_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    common::export_import_round_trip(&store(&dir, "a.json"), &store(&dir, "b.json"));
}

#[test]
fn json_concurrent_enrolments_lose_nothing() {
    let dir = tempfile::tempdir().unwrap();
    common::concurrent_enrolments_lose_nothing(&store(&dir, "g.json"), 4, 10);
}
