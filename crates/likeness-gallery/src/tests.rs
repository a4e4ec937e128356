//! The JSON store's durability and format tests (the trait's behaviour on every store is in
//! tests/stores.rs).

use std::path::PathBuf;
use std::time::Duration;

use crate::*;

const DLIB: &str = "dlib_face_recognition_resnet_model_v1";

fn sample(x: f32, source: &str) -> Sample {
    let mut v = vec![0.0; 128];
    v[0] = x;
    Sample::new(v, source)
}

fn enrol(name: &str, x: f32) -> EnrolRequest {
    EnrolRequest {
        name: name.into(),
        embedder: DLIB.into(),
        samples: vec![sample(x, &format!("{name}.jpg"))],
        tolerance: 0.6,
        insist: false,
    }
}

fn gallery(dir: &tempfile::TempDir) -> (PathBuf, JsonGallery) {
    let path = dir.path().join("gallery.json");
    (path.clone(), JsonGallery::at(path))
}

#[test]
fn concurrent_writers_lose_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let (path, _) = gallery(&dir);
    let threads: Vec<_> = (0..4)
        .map(|t| {
            let g = JsonGallery::at(&path);
            std::thread::spawn(move || {
                for i in 0..15 {
                    g.enrol(enrol(&format!("p{t}-{i}"), (t * 15 + i) as f32))
                        .unwrap();
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    let data = JsonGallery::at(&path).load().unwrap();
    assert_eq!(data.persons.len(), 60);
    let mut ids: Vec<_> = data.persons.iter().map(|p| p.id).collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 60);
}

#[test]
fn a_second_writer_waits_then_fails_clearly() {
    let dir = tempfile::tempdir().unwrap();
    let (_, g) = gallery(&dir);
    let g = g.with_lock_timeout(Duration::from_millis(100));
    let held = g.lock().unwrap();
    let err = g.enrol(enrol("Ada", 0.0)).unwrap_err();
    assert!(matches!(err, GalleryError::Locked { .. }), "{err}");
    drop(held);
    g.enrol(enrol("Ada", 0.0)).unwrap();
}

#[test]
fn a_killed_write_leaves_the_old_gallery_intact() {
    let dir = tempfile::tempdir().unwrap();
    let (path, g) = gallery(&dir);
    g.enrol(enrol("Ada", 0.0)).unwrap();
    let before = std::fs::read(&path).unwrap();
    // what a writer killed mid-write leaves: a partial temporary file beside the gallery
    std::fs::write(
        crate::side_path(&path, ".tmp-99999"),
        &before[..before.len() / 2],
    )
    .unwrap();
    assert_eq!(std::fs::read(&path).unwrap(), before);
    assert_eq!(g.list().unwrap().len(), 1);
    g.enrol(enrol("Bob", 1.0)).unwrap();
    assert_eq!(g.list().unwrap().len(), 2);
    // a failing change writes nothing
    let after = std::fs::read(&path).unwrap();
    assert!(g.remove(&Who::Name("Nobody".into())).is_err());
    assert_eq!(std::fs::read(&path).unwrap(), after);
}

#[test]
fn newer_versions_and_garbage_are_refused_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let (path, g) = gallery(&dir);
    let newer = r#"{"format":"likeness-gallery","version":2,"people":{"new":"layout"}}"#;
    std::fs::write(&path, newer).unwrap();
    let err = g.load().unwrap_err();
    assert!(
        matches!(
            err,
            GalleryError::Version {
                found: 2,
                supported: 1,
                ..
            }
        ),
        "{err}"
    );
    assert!(err.to_string().contains("gallery.json"));
    assert!(g.enrol(enrol("Ada", 0.0)).is_err());
    assert_eq!(std::fs::read_to_string(&path).unwrap(), newer);

    std::fs::write(&path, b"{\"format\":\"likeness-gallery\",\"vers").unwrap();
    assert!(matches!(g.load(), Err(GalleryError::Corrupt { .. })));
    std::fs::write(&path, br#"{"format":"something-else","version":1}"#).unwrap();
    assert!(matches!(g.load(), Err(GalleryError::Corrupt { .. })));
}

/// Today's file, byte for byte: what the JSON store writes has not changed format, and
/// fields it does not know (from a newer writer, or added by hand) survive a rewrite.
#[test]
fn the_file_format_is_unchanged_and_unknown_fields_survive_a_rewrite() {
    let dir = tempfile::tempdir().unwrap();
    let (path, g) = gallery(&dir);
    let old = format!(
        r#"{{
  "format": "likeness-gallery",
  "version": 1,
  "embedder": "{DLIB}",
  "next_id": 2,
  "persons": [
    {{
      "id": 1,
      "name": "Ada",
      "samples": [
        {{
          "embedding": [{}],
          "source": "ada.jpg",
          "camera": "front door"
        }}
      ],
      "team": "blue"
    }}
  ],
  "comment": "kept"
}}
"#,
        ["0.5"; 128].join(",")
    );
    std::fs::write(&path, &old).unwrap();
    g.rename(&Who::Name("Ada".into()), "Ada L").unwrap();
    let text = std::fs::read_to_string(&path).unwrap();
    let value: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(value["comment"], "kept");
    assert_eq!(value["persons"][0]["team"], "blue");
    assert_eq!(value["persons"][0]["samples"][0]["camera"], "front door");
    assert_eq!(value["persons"][0]["name"], "Ada L");
    g.rename(&Who::Id(1), "Ada").unwrap();
    // pretty-printed with the same keys in the same order: the old text, except that serde
    // writes the known fields first and the kept ones after them
    let rewritten = std::fs::read_to_string(&path).unwrap();
    let reparsed: serde_json::Value = serde_json::from_str(&rewritten).unwrap();
    let original: serde_json::Value = serde_json::from_str(&old).unwrap();
    assert_eq!(reparsed, original);
}

#[test]
fn duplicate_ids_empty_names_and_reused_ids_are_refused_on_load() {
    let dir = tempfile::tempdir().unwrap();
    let (path, g) = gallery(&dir);
    let doc = |persons: &str, next: u64| {
        format!(
            r#"{{"format":"likeness-gallery","version":1,"embedder":"{DLIB}","next_id":{next},"persons":[{persons}]}}"#
        )
    };
    let p = |id: u64, name: &str| {
        format!(
            r#"{{"id":{id},"name":"{name}","samples":[{{"embedding":[0.1,0.2],"source":"x"}}]}}"#
        )
    };
    for (bad, says) in [
        (doc(&format!("{},{}", p(1, "A"), p(1, "B")), 3), "#1"),
        (doc(&p(1, ""), 2), "unusable name"),
        (doc(&p(1, "  "), 2), "unusable name"),
        (
            doc(&format!("{},{}", p(1, "A"), p(2, "A")), 3),
            "two people are named",
        ),
        (doc(&p(5, "A"), 2), "outside"),
    ] {
        std::fs::write(&path, &bad).unwrap();
        let err = g.list().unwrap_err();
        assert!(matches!(err, GalleryError::Corrupt { .. }), "{err}");
        assert!(err.to_string().contains(says), "{err}");
        // and nothing is written over it
        assert!(g.enrol(enrol("C", 9.0)).is_err());
        assert_eq!(std::fs::read_to_string(&path).unwrap(), bad);
    }
}

/// Issue 11's worst defect: an older Likeness wrote a NaN embedding as `null`, and from then
/// on every command failed on the file. Now such a file is reported naming the person, and
/// removing that person repairs it.
#[test]
fn a_null_embedding_names_its_person_and_removing_them_repairs_the_gallery() {
    let dir = tempfile::tempdir().unwrap();
    let (path, g) = gallery(&dir);
    let good = ["0.0"; 128].join(",");
    let mut bad = vec!["0.0"; 128];
    bad[3] = "null";
    let bad = bad.join(",");
    std::fs::write(
        &path,
        format!(
            r#"{{"format":"likeness-gallery","version":1,"embedder":"{DLIB}","next_id":3,"persons":[
              {{"id":1,"name":"Ada","samples":[{{"embedding":[{good}],"source":"a.jpg"}}]}},
              {{"id":2,"name":"Tom","samples":[{{"embedding":[{bad}],"source":"t.jpg"}}]}}]}}"#
        ),
    )
    .unwrap();
    let err = g.list().unwrap_err().to_string();
    assert!(
        err.contains("Tom (#2)") && err.contains("non-finite"),
        "{err}"
    );
    assert!(err.contains("gallery remove '#2'"), "{err}");
    assert_eq!(g.remove(&Who::Id(2)).unwrap().name, "Tom");
    assert_eq!(g.list().unwrap().len(), 1);
}
