//! Shortened, seeded runs of both examples: they must learn clearly better than chance.

use std::path::PathBuf;

use likeness_convnd::{ClipOptions, EcgOptions, run_clips, run_ecg};
use likeness_testdata::cache_file;

/// scipy's `ecg.dat` in the model cache's samples, as `likeness models fetch` puts it.
fn ecg_path() -> PathBuf {
    cache_file("samples/ecg.dat")
}

#[test]
fn ecg_convnet_beats_the_majority_baseline() {
    let report = run_ecg(&ecg_path(), &EcgOptions::quick()).unwrap();
    eprintln!("{report}");
    // Premature beats are the minority: a classifier must find them, not just be accurate.
    assert!(
        report.test_accuracy > report.baseline_accuracy + 0.03,
        "{report}"
    );
    assert!(report.balanced_accuracy > 0.8, "{report}");
    let again = run_ecg(&ecg_path(), &EcgOptions::quick()).unwrap();
    assert_eq!(again.confusion, report.confusion, "seeded runs must repeat");
}

#[test]
fn clip_convnet_finds_the_direction() {
    let report = run_clips(&ClipOptions::quick()).unwrap();
    eprintln!("{report}");
    // Chance is 1/8; this shortened run reaches about 49 % (the full one about 78 %).
    assert!(report.test_accuracy > 0.35, "{report}");
}
