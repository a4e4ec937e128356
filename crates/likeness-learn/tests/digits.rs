//! The one-shot digits bar on the real data (scikit-learn's digits from the model cache), with a
//! shortened training run: the triplet-trained CNN must beat raw pixels with one example per
//! held-out class.

use likeness_learn::digits::{Digits, OneShotConfig, one_shot};

fn digits() -> Digits {
    let cache = likeness_models::Cache::from_env().unwrap();
    let path = cache.sample_path("digits.csv.gz").unwrap_or_else(|e| {
        panic!("{e}: run `cargo run -p likeness -- models fetch` to get the digits sample")
    });
    Digits::load(&path).unwrap()
}

#[test]
fn one_shot_beats_raw_pixels_and_the_untrained_network() {
    let digits = digits();
    assert_eq!(digits.labels.len(), 1797);
    // Shortened training (the command runs twice as many steps); held-out classes 6–9 are
    // never seen in training.
    let config = OneShotConfig {
        steps: 300,
        trials: 100,
        ..OneShotConfig::default()
    };
    assert!(
        config
            .test_classes
            .iter()
            .all(|c| !config.train_classes.contains(c))
    );
    let (_, report) = one_shot(&digits, &config).unwrap();
    eprintln!("{report:#?}");
    assert_eq!(report.train_images + report.test_images, 1797);
    // Clear margins: several points, on the same 100 random choices of the single examples.
    assert!(
        report.cnn_top1 > report.pixel_top1 + 0.05,
        "one-shot CNN {:.3} vs raw pixels {:.3}",
        report.cnn_top1,
        report.pixel_top1
    );
    assert!(
        report.cnn_top1 > report.untrained_top1 + 0.02,
        "one-shot CNN {:.3} vs the same network untrained {:.3}",
        report.cnn_top1,
        report.untrained_top1
    );
    let first = report.loss_curve[0];
    let last = *report.loss_curve.last().unwrap();
    assert!(
        last < first,
        "the triplet loss fell: {:?}",
        report.loss_curve
    );
}
