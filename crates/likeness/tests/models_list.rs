//! After `likeness models fetch`, `likeness models list --json` reports every model and sample
//! present and verified. Fails (with the command to run) when the cache has not been filled.

use std::process::Command;

#[test]
fn every_model_and_sample_is_verified() {
    let output = Command::new(env!("CARGO_BIN_EXE_likeness"))
        .args(["models", "list", "--json"])
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "likeness models list failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let listing: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    let items = listing["items"].as_array().unwrap();
    let kinds = |k: &str| items.iter().filter(|i| i["kind"] == k).count();
    assert_eq!(kinds("model"), 5, "{listing:#}");
    assert!(kinds("sample") >= 10, "{listing:#}");
    let bad: Vec<String> = items
        .iter()
        .filter(|i| i["verified"] != true)
        .map(|i| format!("{} {}: {}", i["kind"], i["name"], i["problem"]))
        .collect();
    assert!(
        bad.is_empty(),
        "the model cache at {} is incomplete; run `cargo run -p likeness -- models fetch` \
         (set LIKENESS_HOME to use another cache):\n{}",
        listing["home"].as_str().unwrap_or("?"),
        bad.join("\n")
    );
}

#[test]
fn help_explains_fetch() {
    let output = Command::new(env!("CARGO_BIN_EXE_likeness"))
        .args(["models", "fetch", "--help"])
        .output()
        .unwrap();
    assert!(output.status.success());
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(text.contains("--from"), "{text}");
    assert!(text.contains("SHA-256"), "{text}");
}
