//! The store behaviour on the JSON file store.

mod common;

use std::os::unix::fs::FileTypeExt;

use likeness_gallery::{GalleryStore, JsonGallery};

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

#[test]
fn a_fifo_at_the_gallery_path_is_refused_at_once_not_read() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("g.json");
    let made = std::process::Command::new("mkfifo")
        .arg(&path)
        .status()
        .unwrap();
    assert!(made.success());
    let (tx, rx) = std::sync::mpsc::channel();
    let p = path.clone();
    std::thread::spawn(move || {
        let _ = tx.send(JsonGallery::at(&p).list().map(|l| l.len()));
    });
    let answer = rx
        .recv_timeout(std::time::Duration::from_secs(20))
        .expect("reading a FIFO as the gallery blocked");
    let err = answer.unwrap_err().to_string();
    assert!(
        err.contains("g.json") && err.contains("not a regular file"),
        "{err}"
    );
    assert!(
        std::fs::symlink_metadata(&path)
            .unwrap()
            .file_type()
            .is_fifo(),
        "left as it was"
    );
}
