//! `likeness gallery` through the real binary: what enrolment says, `#N` ids, suspicious
//! enrolments, export and import.

use std::path::PathBuf;
use std::process::Command;

use likeness_face::faces::Faces;
use serde_json::Value;

mod common;

use common::{likeness, s};

fn sample(name: &str) -> PathBuf {
    common::sample_with(name, Faces::MODELS)
}

fn scratch(test: &str) -> PathBuf {
    common::scratch("gallery_cli", test)
}

fn ok(args: &[&str]) -> (String, String) {
    let out = likeness(args);
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "likeness {args:?} failed: {err}");
    (String::from_utf8_lossy(&out.stdout).into_owned(), err)
}

fn fails(args: &[&str]) -> String {
    let out = likeness(args);
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(!out.status.success(), "likeness {args:?} succeeded");
    assert!(!err.contains("panicked"), "{err}");
    err
}

fn names(gallery: &str) -> Vec<String> {
    let list: Value =
        serde_json::from_str(&ok(&["gallery", "--gallery", gallery, "list", "--json"]).0).unwrap();
    list["persons"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| format!("#{} {}", p["id"], p["name"].as_str().unwrap()))
        .collect()
}

#[test]
fn enrolment_says_what_it_did_and_refuses_a_stranger_under_a_known_name() {
    let dir = scratch("enrol");
    let gallery = dir.join("people.json");
    let g = s(&gallery);
    let (astronaut, other, group) = (
        sample("astronaut.png"),
        sample("sample2.jpg"),
        sample("t1.jpg"),
    );
    let (out, _) = ok(&["gallery", "--gallery", g, "enrol", "eileen", s(&astronaut)]);
    assert!(out.contains("a new person"), "{out}");
    let (out, _) = ok(&[
        "gallery",
        "--gallery",
        g,
        "enrol",
        "eileen",
        s(&astronaut),
        "--json",
    ]);
    let done: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(done["created"], false, "{done}");
    assert_eq!(
        (done["added"].as_u64(), done["samples"].as_u64()),
        (Some(1), Some(2))
    );

    // someone else's face under eileen's name, or eileen's face under a new name: refused,
    // naming the person, and the gallery is unchanged
    ok(&["gallery", "--gallery", g, "enrol", "someone", s(&other)]);
    let before = std::fs::read(&gallery).unwrap();
    let err = fails(&["gallery", "--gallery", g, "enrol", "eileen", s(&other)]);
    assert!(
        err.contains("eileen (#1)") && err.contains("--insist"),
        "{err}"
    );
    let err = fails(&[
        "gallery",
        "--gallery",
        g,
        "enrol",
        "impostor",
        s(&astronaut),
    ]);
    assert!(err.contains("eileen (#1)"), "{err}");
    assert_eq!(std::fs::read(&gallery).unwrap(), before);
    // insisting keeps it and still warns
    let (_, warned) = ok(&[
        "gallery",
        "--gallery",
        g,
        "enrol",
        "impostor",
        s(&astronaut),
        "--insist",
    ]);
    assert!(
        warned.contains("warning:") && warned.contains("eileen"),
        "{warned}"
    );

    // a bare number is a name: `remove 2` removes the person called "2", not #2
    ok(&[
        "gallery",
        "--gallery",
        g,
        "enrol",
        "2",
        s(&group),
        "--insist",
    ]);
    assert_eq!(names(g), ["#1 eileen", "#2 someone", "#3 impostor", "#4 2"]);
    ok(&["gallery", "--gallery", g, "remove", "2"]);
    ok(&["gallery", "--gallery", g, "remove", "#3"]);
    assert_eq!(names(g), ["#1 eileen", "#2 someone"]);
    let err = fails(&["gallery", "--gallery", g, "remove", "#9"]);
    assert!(err.contains("#9"), "{err}");
    let err = fails(&["gallery", "--gallery", g, "rename", "#x", "y"]);
    assert!(err.contains("#N"), "{err}");
}

#[test]
fn export_then_import_moves_every_person_and_sample() {
    let dir = scratch("export");
    let (from, to, file) = (dir.join("a.json"), dir.join("b.json"), dir.join("out.json"));
    ok(&[
        "gallery",
        "--gallery",
        s(&from),
        "enrol",
        "eileen",
        s(&sample("astronaut.png")),
    ]);
    ok(&[
        "gallery",
        "--gallery",
        s(&from),
        "enrol",
        "someone",
        s(&sample("sample2.jpg")),
    ]);
    ok(&["gallery", "--gallery", s(&from), "export", s(&file)]);
    let (stdout, _) = ok(&["gallery", "--gallery", s(&from), "export", "-"]);
    assert_eq!(stdout.as_bytes(), std::fs::read(&file).unwrap());
    let (out, _) = ok(&["gallery", "--gallery", s(&to), "import", s(&file), "--json"]);
    let report: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        (report["created"].as_u64(), report["samples"].as_u64()),
        (Some(2), Some(2))
    );
    assert_eq!(names(s(&to)), names(s(&from)));
    // the same embeddings: the copy identifies as the original does
    let (who, _) = ok(&[
        "gallery",
        "--gallery",
        s(&to),
        "identify",
        s(&sample("astronaut.png")),
        "--json",
        "--top",
        "2",
    ]);
    let who: Value = serde_json::from_str(&who).unwrap();
    assert_eq!(who["faces"][0]["name"], "eileen", "{who}");
    assert_eq!(
        who["faces"][0]["candidates"].as_array().unwrap().len(),
        2,
        "{who}"
    );
    // a file that is not a gallery is refused naming it, and nothing changes
    std::fs::write(dir.join("bad.json"), b"[1,2]").unwrap();
    let err = fails(&[
        "gallery",
        "--gallery",
        s(&to),
        "import",
        s(&dir.join("bad.json")),
    ]);
    assert!(err.contains("bad.json"), "{err}");
}

/// The default gallery: an existing `gallery.json` in $LIKENESS_HOME keeps working (with a
/// note), `gallery migrate` moves it into the embedded store, which is the default after.
/// `--gallery` and $LIKENESS_GALLERY choose the store by what they name.
#[test]
fn an_old_default_json_gallery_keeps_working_and_migrates_in_one_command() {
    let home = scratch("migrate");
    let export = home.join("export.json");
    let face: Vec<String> = (0..128)
        .map(|i| format!("{}", (i as f32) / 1000.0))
        .collect();
    std::fs::write(
        &export,
        format!(
            r#"{{"format":"likeness-gallery","version":1,"embedder":"dlib_resnet","next_id":8,
               "persons":[{{"id":7,"name":"ada","samples":[{{"embedding":[{}],"source":"a.jpg"}}]}}]}}"#,
            face.join(",")
        ),
    )
    .unwrap();
    let json = home.join("gallery.json");
    ok(&["gallery", "--gallery", s(&json), "import", s(&export)]);
    let run = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_likeness"))
            .args(args)
            .env("LIKENESS_HOME", &home)
            .env_remove("LIKENESS_GALLERY")
            .output()
            .unwrap()
    };
    let out = run(&["gallery", "list", "--json"]);
    assert!(out.status.success());
    let list: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(
        list["gallery"].as_str().unwrap().ends_with("gallery.json"),
        "{list}"
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("gallery migrate"));

    let out = run(&["gallery", "migrate"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = run(&["gallery", "list", "--json"]);
    let list: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(
        list["gallery"].as_str().unwrap().ends_with("gallery.db"),
        "{list}"
    );
    assert_eq!(list["persons"][0]["id"], 7, "{list}");
    assert_eq!(list["persons"][0]["name"], "ada", "{list}");
    assert!(
        out.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // the JSON file is left as it was
    assert!(json.exists());

    // $LIKENESS_GALLERY names another store
    let other = home.join("other.db");
    let out = Command::new(env!("CARGO_BIN_EXE_likeness"))
        .args(["gallery", "import", s(&export), "--json"])
        .env("LIKENESS_HOME", &home)
        .env("LIKENESS_GALLERY", &other)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(other.exists());
    // a file that is not a gallery is refused by name and left alone
    let notes = home.join("notes.txt");
    std::fs::write(&notes, b"my notes").unwrap();
    let err = fails(&["gallery", "--gallery", s(&notes), "list"]);
    assert!(err.contains("notes.txt"), "{err}");
    assert_eq!(std::fs::read(&notes).unwrap(), b"my notes");
}
