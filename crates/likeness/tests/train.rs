//! `likeness train encoder` end to end on a small folder of synthetic identities.

use std::process::Command;

use likeness_nn::image::Image;

#[test]
fn train_encoder_on_identity_folders() {
    let dir = std::env::temp_dir().join(format!("likeness-train-test-{}", std::process::id()));
    let data = dir.join("ids");
    // Identity k: a bright square at a k-dependent place on a dark ground, with noise.
    for id in 0..4u32 {
        let folder = data.join(format!("person{id}"));
        std::fs::create_dir_all(&folder).unwrap();
        for n in 0..3u32 {
            let mut px = Vec::new();
            for y in 0..32u32 {
                for x in 0..32u32 {
                    let on = x / 16 == id % 2 && y / 16 == id / 2;
                    let v = if on { 200 } else { 30 } + ((x * 7 + y * 13 + n * 5) % 20) as u8;
                    px.extend([v, v, v]);
                }
            }
            let img = Image::from_rgb(32, 32, px).unwrap();
            img.save_png(&folder.join(format!("{n}.png"))).unwrap();
        }
    }
    std::fs::write(data.join("person0/broken.png"), b"not an image").unwrap();
    std::fs::create_dir_all(data.join("alone")).unwrap();
    std::fs::copy(data.join("person1/0.png"), data.join("alone/0.png")).unwrap();
    let out = dir.join("enc.safetensors");
    let run = Command::new(env!("CARGO_BIN_EXE_likeness"))
        .args([
            "train",
            "encoder",
            "--data",
            data.to_str().unwrap(),
            "--out",
        ])
        .arg(&out)
        .args([
            "--epochs",
            "2",
            "--steps",
            "3",
            "--identities",
            "3",
            "--per-identity",
            "2",
        ])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(run.status.success(), "{stderr}");
    assert!(stderr.contains("cannot form positives"), "{stderr}");
    assert!(stderr.contains("1 unreadable"), "{stderr}");
    assert!(stderr.contains("epoch 2/2"), "{stderr}");
    assert!(std::fs::metadata(&out).unwrap().len() > 0);
    // The trained encoder embeds images for `eval` (and `train verifier`).
    let pairs = dir.join("pairs.csv");
    std::fs::write(
        &pairs,
        "person0/0.png,person0/1.png,1\nperson0/0.png,person1/0.png,0\n\
         person2/1.png,person2/2.png,1\nperson2/1.png,person3/2.png,0\n",
    )
    .unwrap();
    let eval = Command::new(env!("CARGO_BIN_EXE_likeness"))
        .args(["eval", "--pairs", pairs.to_str().unwrap(), "--images"])
        .arg(&data)
        .arg("--encoder")
        .arg(&out)
        .args(["--folds", "2", "--json"])
        .output()
        .unwrap();
    assert!(
        eval.status.success(),
        "{}",
        String::from_utf8_lossy(&eval.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&eval.stdout).unwrap();
    assert_eq!(v["pairs"], 4);
    // Resuming reads the checkpoint back.
    let again = Command::new(env!("CARGO_BIN_EXE_likeness"))
        .args([
            "train",
            "encoder",
            "--data",
            data.to_str().unwrap(),
            "--out",
        ])
        .arg(dir.join("enc2.safetensors"))
        .args([
            "--epochs",
            "3",
            "--steps",
            "3",
            "--identities",
            "3",
            "--per-identity",
            "2",
            "--json",
        ])
        .arg("--resume")
        .arg(&out)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&again.stderr);
    assert!(again.status.success(), "{stderr}");
    // The checkpoint says two epochs are done: only the third is left.
    assert!(
        stderr.contains("epoch 3/3") && !stderr.contains("epoch 2/3"),
        "{stderr}"
    );
    let reports: serde_json::Value = serde_json::from_slice(&again.stdout).unwrap();
    assert_eq!(reports.as_array().unwrap().len(), 1);
    assert_eq!(reports[0]["epoch"], 3);
    assert!(reports[0]["images_per_second"].as_f64().unwrap() > 0.0);
    // Resuming with the other network is refused, naming the right flag.
    let wrong = Command::new(env!("CARGO_BIN_EXE_likeness"))
        .args(["train", "encoder", "--init", "dlib", "--data"])
        .arg(&data)
        .arg("--out")
        .arg(dir.join("enc3.safetensors"))
        .arg("--resume")
        .arg(&out)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&wrong.stderr);
    assert!(!wrong.status.success());
    assert!(stderr.contains("--init small"), "{stderr}");
    std::fs::remove_dir_all(&dir).unwrap();
}
