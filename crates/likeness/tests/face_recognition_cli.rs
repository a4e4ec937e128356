//! `likeness recognise` and `likeness detect --csv` as drop-ins for face_recognition's
//! `face_recognition` and `face_detection` commands: the built binary, run as a script written
//! for those commands runs it, its output compared byte for byte with what face_recognition
//! 1.3.0 prints (its `face_recognition_cli.py` and `face_detection_cli.py`).
//!
//! Needs the model cache (`cargo run -p likeness -- models fetch`).

use std::path::PathBuf;

use likeness_face::faces::Faces;
use likeness_nn::npz::read_npz;
use likeness_testdata::reference_dir;

mod common;

use common::{likeness, s};

fn sample(name: &str) -> PathBuf {
    common::sample_with(name, Faces::MODELS)
}

fn scratch(test: &str) -> PathBuf {
    common::scratch("fr_cli", test)
}

/// Runs and expects success; returns stdout.
fn ok(args: &[&str]) -> String {
    let out = likeness(args);
    assert!(
        out.status.success(),
        "likeness {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// known/: the astronaut, and Tom Hanks under a name that needs CSV quoting; unknown/: the
/// astronaut again, a photo without faces, t1.jpg's six strangers, Tom Hanks.
fn people(test: &str) -> (PathBuf, PathBuf) {
    let dir = scratch(test);
    let (known, unknown) = (dir.join("known"), dir.join("unknown"));
    std::fs::create_dir_all(&known).unwrap();
    std::fs::create_dir_all(&unknown).unwrap();
    std::fs::copy(sample("astronaut.png"), known.join("Eileen.Collins.png")).unwrap();
    std::fs::copy(sample("Tom_Hanks_54745.png"), known.join("Hanks, Tom.png")).unwrap();
    std::fs::copy(sample("astronaut.png"), unknown.join("a.png")).unwrap();
    std::fs::copy(sample("coffee.png"), unknown.join("b.png")).unwrap();
    std::fs::copy(sample("t1.jpg"), unknown.join("c.jpg")).unwrap();
    std::fs::copy(sample("Tom_Hanks_54745.png"), unknown.join("d.PNG")).unwrap();
    std::fs::write(unknown.join("notes.txt"), "not a photo, not listed").unwrap();
    (known, unknown)
}

#[test]
fn recognise_prints_face_recognition_lines_byte_for_byte() {
    let (known, unknown) = people("recognise");
    let file = |name: &str| unknown.join(name).display().to_string();
    let plain = ok(&["recognise", s(&known), s(&unknown)]);
    // names are the file names less their last extension; one line per face
    let mut expected = format!(
        "{a},Eileen.Collins\n{b},no_persons_found\n{c}{d},\"Hanks, Tom\"\n",
        a = file("a.png"),
        b = file("b.png"),
        c = format!("{},unknown_person\n", file("c.jpg")).repeat(6),
        d = file("d.PNG"),
    );
    assert_eq!(plain, expected);

    // --show-distance true: Python's float (0.0 for the same photo) and None
    let shown = ok(&[
        "recognise",
        "--show-distance",
        "true",
        s(&known),
        s(&unknown),
    ]);
    let lines: Vec<&str> = shown.lines().collect();
    assert_eq!(lines.len(), 9, "{shown}");
    assert_eq!(lines[0], format!("{},Eileen.Collins,0.0", file("a.png")));
    assert_eq!(lines[1], format!("{},no_persons_found,None", file("b.png")));
    assert!(
        lines[2..8]
            .iter()
            .all(|l| *l == format!("{},unknown_person,None", file("c.jpg"))),
        "{shown}"
    );
    assert_eq!(lines[8], format!("{},\"Hanks, Tom\",0.0", file("d.PNG")));

    // the flag alone, and click's other spellings of true and false
    assert_eq!(
        ok(&["recognise", s(&known), s(&unknown), "--show-distance"]),
        shown
    );
    assert_eq!(
        ok(&[
            "recognise",
            "--show-distance",
            "Yes",
            s(&known),
            s(&unknown)
        ]),
        shown
    );
    assert_eq!(
        ok(&[
            "recognise",
            "--show-distance",
            "false",
            s(&known),
            s(&unknown)
        ]),
        plain
    );
    let bad = likeness(&[
        "recognise",
        "--show-distance",
        "maybe",
        s(&known),
        s(&unknown),
    ]);
    assert_eq!(bad.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&bad.stderr).contains("true or false"),
        "{}",
        String::from_utf8_lossy(&bad.stderr)
    );

    // one photo rather than a folder: its name as given
    expected = format!("{},\"Hanks, Tom\"\n", file("d.PNG"));
    assert_eq!(ok(&["recognise", s(&known), &file("d.PNG")]), expected);
}

#[test]
fn recognise_cpus_gives_the_same_lines_in_the_same_order() {
    let (known, unknown) = people("cpus");
    let one = ok(&["recognise", s(&known), s(&unknown), "--cpus", "1"]);
    assert_eq!(one.lines().count(), 9, "{one}");
    assert_eq!(
        ok(&["recognise", s(&known), s(&unknown), "--cpus", "2"]),
        one
    );
    assert_eq!(
        ok(&["recognise", "--cpus", "-1", s(&known), s(&unknown)]),
        one
    );
    for bad in ["0", "-2"] {
        let out = likeness(&["recognise", s(&known), s(&unknown), "--cpus", bad]);
        assert!(!out.status.success(), "--cpus {bad}");
        assert!(
            String::from_utf8_lossy(&out.stderr).contains("--cpus"),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

/// `(top, right, bottom, left)` of a `FILE,top,right,bottom,left` line of `file`.
fn css(line: &str, file: &str) -> [i64; 4] {
    let rest = line
        .strip_prefix(&format!("{file},"))
        .unwrap_or_else(|| panic!("{line:?} is not a line of {file}"));
    let v: Vec<i64> = rest.split(',').map(|x| x.parse().unwrap()).collect();
    [v[0], v[1], v[2], v[3]]
}

#[test]
fn detect_csv_prints_face_detection_lines_for_photos_and_folders() {
    let dir = scratch("detect");
    let folder = dir.join("photos");
    std::fs::create_dir_all(&folder).unwrap();
    std::fs::copy(sample("t1.jpg"), folder.join("t1.jpg")).unwrap();
    std::fs::copy(sample("coffee.png"), folder.join("coffee.png")).unwrap();
    let astronaut = dir.join("astronaut.png");
    std::fs::copy(sample("astronaut.png"), &astronaut).unwrap();

    let out = ok(&["detect", s(&astronaut), s(&folder), "--csv"]);
    let lines: Vec<&str> = out.lines().collect();
    // the astronaut's one face, no line for the coffee cup, t1.jpg's six faces
    assert_eq!(lines.len(), 7, "{out}");
    let box_ = css(lines[0], s(&astronaut));
    let t1 = folder.join("t1.jpg").display().to_string();
    assert!(
        lines[1..].iter().all(|l| l.starts_with(&format!("{t1},"))),
        "{out}"
    );

    // the astronaut's box is dlib's: face_recognition's (top, right, bottom, left) from the
    // reference box of real dlib, within a few pixels
    let reference = read_npz(&reference_dir().join("dlib_chips.npz")).unwrap();
    let names = std::fs::read_to_string(reference_dir().join("dlib_chips_names.txt")).unwrap();
    let i = names
        .lines()
        .position(|l| l.starts_with("astronaut.png"))
        .unwrap();
    let b = &reference["boxes"].values[4 * i..4 * i + 4];
    let dlib = [b[1] as i64, b[2] as i64, b[3] as i64, b[0] as i64];
    let off = box_
        .iter()
        .zip(dlib)
        .map(|(a, b)| (a - b).abs())
        .max()
        .unwrap();
    assert!(off <= 12, "ours {box_:?}, dlib's {dlib:?}");
    for l in &lines[1..] {
        let [top, right, bottom, left] = css(l, &t1);
        assert!(0 <= top && top < bottom && 0 <= left && left < right, "{l}");
    }

    // --cpus: the same lines in the same order
    assert_eq!(
        ok(&["detect", s(&astronaut), s(&folder), "--csv", "--cpus", "2"]),
        out
    );
}

#[test]
fn min_score_keeps_fewer_surer_faces_and_json_lists_several_photos() {
    let t1 = sample("t1.jpg");
    let astronaut = sample("astronaut.png");
    let all: serde_json::Value =
        serde_json::from_str(&ok(&["detect", s(&t1), s(&astronaut), "--json"])).unwrap();
    // several photos: an array, one object per photo in the order given
    let photos = all.as_array().unwrap();
    assert_eq!(photos.len(), 2);
    assert_eq!(photos[0]["file"], s(&t1));
    let scores = |v: &serde_json::Value| -> Vec<f64> {
        v["faces"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f["score"].as_f64().unwrap())
            .collect()
    };
    let every = scores(&photos[0]);
    assert_eq!(every.len(), 6);
    let threshold = 0.93;
    let sure: serde_json::Value = serde_json::from_str(&ok(&[
        "detect",
        s(&t1),
        "--json",
        "--min-score",
        &threshold.to_string(),
    ]))
    .unwrap();
    // one photo: one object; only the faces that scored at least 0.93 without the option
    let kept = scores(&sure);
    let expected = every.iter().filter(|&&v| v >= threshold).count();
    assert!(
        expected < every.len(),
        "t1.jpg's scores {every:?} do not test the option"
    );
    assert_eq!(kept.len(), expected, "{kept:?} of {every:?}");
    assert!(kept.iter().all(|&v| v >= threshold));
    for bad in ["1.5", "-0.1", "nan"] {
        let out = likeness(&["detect", s(&t1), "--min-score", bad]);
        assert_eq!(out.status.code(), Some(2), "--min-score {bad}");
    }
}
