//! `likeness eval` end to end on precomputed embeddings (no models needed).

use std::path::Path;
use std::process::Command;

fn likeness(args: &[&str]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_likeness"))
        .args(args)
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn write(dir: &Path, name: &str, text: &str) -> String {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path.to_str().unwrap().to_string()
}

#[test]
fn eval_on_embeddings_separable_pairs_and_bad_input() {
    let dir = std::env::temp_dir().join(format!("likeness-eval-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    // Identity i sits at (i, 0) with its two images ±0.1 apart; different identities are
    // at least 1 apart, so the pairs are perfectly separable.
    let mut emb = serde_json::Map::new();
    let mut csv = String::from("a,b,same\n");
    for i in 0..20 {
        emb.insert(format!("p{i}/a.jpg"), serde_json::json!([i as f32, 0.1]));
        emb.insert(format!("p{i}/b.jpg"), serde_json::json!([i as f32, -0.1]));
        csv += &format!(
            "p{i}/a.jpg,p{i}/b.jpg,1\np{i}/a.jpg,p{}/b.jpg,0\n",
            (i + 1) % 20
        );
    }
    csv += "p0/a.jpg,nobody.jpg,0\n";
    let emb = write(&dir, "e.json", &serde_json::Value::Object(emb).to_string());
    let pairs = write(&dir, "pairs.csv", &csv);
    let roc = &dir.join("roc.png");
    let (ok, stdout, stderr) = likeness(&[
        "eval",
        "--pairs",
        &pairs,
        "--embeddings",
        &emb,
        "--json",
        "--roc",
        roc.to_str().unwrap(),
    ]);
    assert!(ok, "{stderr}");
    let v: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(v["pairs"], 40);
    assert_eq!(v["skipped"], 1);
    assert_eq!(v["accuracy"], 1.0);
    assert_eq!(v["auc"], 1.0);
    assert_eq!(v["eer"], 0.0);
    let t = v["best_threshold"].as_f64().unwrap();
    assert!(t > 0.2 && t < 1.0, "{t}");
    assert!(stderr.contains("nobody.jpg"), "{stderr}");
    assert!(std::fs::metadata(roc).unwrap().len() > 0);

    // The verification head on the same pairs: it separates them too.
    let head = dir.join("head.json");
    let (ok, stdout, stderr) = likeness(&[
        "train",
        "verifier",
        "--pairs",
        &pairs,
        "--embeddings",
        &emb,
        "--out",
        head.to_str().unwrap(),
    ]);
    assert!(ok, "{stderr}");
    assert!(stdout.contains("training accuracy 1.0000"), "{stdout}");
    let saved: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&head).unwrap()).unwrap();
    assert_eq!(saved["weights"].as_array().unwrap().len(), 2);

    let bad = write(&dir, "bad.csv", "a,b,same\nx,y,1\nx,y,perhaps\n");
    let (ok, _, stderr) = likeness(&["eval", "--pairs", &bad, "--embeddings", &emb]);
    assert!(!ok && stderr.contains("line 3"), "{stderr}");
    let empty = write(&dir, "empty.csv", "a,b,same\n");
    let (ok, _, stderr) = likeness(&["eval", "--pairs", &empty, "--embeddings", &emb]);
    assert!(!ok && stderr.contains("no pairs"), "{stderr}");
    let lost = write(&dir, "lost.csv", "x.jpg,y.jpg,1\n");
    let (ok, _, stderr) = likeness(&["eval", "--pairs", &lost, "--embeddings", &emb]);
    assert!(!ok && stderr.contains("none of the 1 pairs"), "{stderr}");
    std::fs::remove_dir_all(&dir).unwrap();
}
