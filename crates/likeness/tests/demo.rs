//! `likeness demo`, the README's main job, on two of its quicker sections: the folder it writes
//! is whole (every picture the report shows exists and is a PNG) and what it reports holds (the
//! 1D ConvNet beats the majority-class baseline it prints).
//!
//! Needs the model cache (`cargo run -p likeness -- models fetch`).

use std::path::Path;
use std::process::Command;

/// `held-out accuracy 94.9 % …, majority-class baseline 86.0 %` → (94.9, 86.0).
fn accuracy_and_baseline(report: &str) -> (f64, f64) {
    let line = report
        .lines()
        .find(|l| l.contains("held-out accuracy"))
        .expect("an accuracy line");
    let number_after = |key: &str| -> f64 {
        let rest = &line[line.find(key).expect(key) + key.len()..];
        rest.split_whitespace().next().unwrap().parse().unwrap()
    };
    (number_after("held-out accuracy"), number_after("baseline"))
}

#[test]
fn demo_writes_a_whole_report_and_what_it_says_holds() {
    let out = Path::new(env!("CARGO_TARGET_TMPDIR")).join("demo");
    let _ = std::fs::remove_dir_all(&out);
    let run = Command::new(env!("CARGO_BIN_EXE_likeness"))
        .args(["demo", "probe", "conv1d", "-o"])
        .arg(&out)
        .output()
        .unwrap();
    assert!(
        run.status.success(),
        "likeness demo failed (run `cargo run -p likeness -- models fetch` first?): {}",
        String::from_utf8_lossy(&run.stderr)
    );
    let report = std::fs::read_to_string(out.join("report.md")).unwrap();
    let html = std::fs::read_to_string(out.join("index.html")).unwrap();
    assert!(report.contains("## Probe") && report.contains("## 1D convolution"));

    // Every picture of the report, in both forms, is there.
    let pictures: Vec<&str> = report
        .split("](")
        .skip(1)
        .map(|rest| &rest[..rest.find(')').unwrap()])
        .collect();
    assert_eq!(
        pictures.len(),
        5,
        "one sheet per probed layer: {pictures:?}"
    );
    for picture in &pictures {
        let bytes = std::fs::read(out.join(picture)).unwrap();
        assert!(bytes.starts_with(b"\x89PNG"), "{picture} is not a PNG");
        assert!(
            html.contains(&format!("src=\"{picture}\"")),
            "{picture} not in index.html"
        );
    }
    assert!(out.join("probe/index.html").is_file());

    let (accuracy, baseline) = accuracy_and_baseline(&report);
    assert!(
        accuracy > baseline + 5.0,
        "the 1D ConvNet ({accuracy} %) does not clearly beat the baseline ({baseline} %)"
    );
}
