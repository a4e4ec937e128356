//! `likeness train encoder` end to end on a small folder of synthetic identities.

use std::path::Path;
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
    // Batches of two images of each of three identities, three batches an epoch.
    let train = |epochs: &str, to: &Path, extra: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_likeness"))
            .args(["train", "encoder", "--data"])
            .arg(&data)
            .arg("--out")
            .arg(to)
            .args(["--epochs", epochs, "--steps", "3", "--identities", "3"])
            .args(["--per-identity", "2"])
            .args(extra)
            .output()
            .unwrap()
    };
    let out = dir.join("enc.safetensors");
    let run = train("2", &out, &[]);
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(run.status.success(), "{stderr}");
    assert!(stderr.contains("cannot form positives"), "{stderr}");
    assert!(stderr.contains("1 unreadable"), "{stderr}");
    assert!(stderr.contains("epoch 2/2"), "{stderr}");
    assert!(std::fs::metadata(&out).unwrap().len() > 0);
    // The trained encoder embeds images for `eval` (and `train verifier`).
    let pairs = "person0/0.png,person0/1.png,1\nperson0/0.png,person1/0.png,0\n\
                 person2/1.png,person2/2.png,1\nperson2/1.png,person3/2.png,0\n";
    assert_eq!(eval_with_encoder(&dir, pairs, &data, &out)["pairs"], 4);
    // Resuming reads the checkpoint back.
    let resume = ["--json", "--resume", out.to_str().unwrap()];
    let again = train("3", &dir.join("enc2.safetensors"), &resume);
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

/// `likeness eval --json` with 2 folds on `pairs` (CSV text, saved as `dir/pairs.csv`) of the
/// images under `images`, embedded by the `encoder` file; its report, once it has succeeded.
fn eval_with_encoder(dir: &Path, pairs: &str, images: &Path, encoder: &Path) -> serde_json::Value {
    let path = dir.join("pairs.csv");
    std::fs::write(&path, pairs).unwrap();
    let eval = Command::new(env!("CARGO_BIN_EXE_likeness"))
        .args(["eval", "--pairs"])
        .arg(&path)
        .arg("--images")
        .arg(images)
        .arg("--encoder")
        .arg(encoder)
        .args(["--folds", "2", "--json"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&eval.stderr);
    assert!(eval.status.success(), "{stderr}");
    serde_json::from_slice(&eval.stdout).unwrap_or_else(|e| panic!("{e}: {stderr}"))
}

/// A horizontal mirror image (the second "photo" of an identity in the fine-tuning test).
fn mirrored(image: &Image) -> Image {
    let (w, h) = (image.width as usize, image.height as usize);
    let mut px = Vec::with_capacity(w * h * 3);
    for y in 0..h {
        for x in (0..w).rev() {
            px.extend_from_slice(&image.pixels[(y * w + x) * 3..(y * w + x) * 3 + 3]);
        }
    }
    Image::from_rgb(image.width, image.height, px).unwrap()
}

/// dlib's network fine-tuned on real faces (the cache's sample photos): one step lowers the
/// triplet loss of its batch and leaves the frozen blocks alone; the saved network loads as an
/// encoder; and the command does the same end to end, its output read back by `eval`.
#[test]
fn fine_tunes_dlibs_network() {
    use likeness_face::faces::Faces;
    use likeness_learn::encoder::{self, AnyEncoder, TrainConfig, TripletNet};
    use likeness_learn::triplet::Mining;
    use likeness_nn::device::{cpu, cpu_autodiff};
    use likeness_nn::nets::dlib_resnet::DlibResNet;
    use likeness_nn::optim::{Adam, AdamConfig};
    use likeness_nn::rng::SplitMix64;
    use likeness_nn::weights::WeightMap;
    use likeness_testdata::cache_file;

    let cache = likeness_models::Cache::from_env().unwrap();
    if let Err(e) = cache.require(Faces::MODELS) {
        panic!("{e}");
    }
    let faces = Faces::load(&cache).unwrap();
    // Four people: two from t1.jpg, the astronaut, Tom Hanks; each as the chip and its mirror.
    let mut people = Vec::new();
    for (name, take) in [
        ("t1.jpg", 2),
        ("astronaut.png", 1),
        ("Tom_Hanks_54745.png", 1),
    ] {
        let image = Image::open(&cache_file(&format!("samples/{name}"))).unwrap();
        for d in faces.detect(&image).unwrap().into_iter().take(take) {
            let landmarks = faces.landmarks(&image, &d).unwrap();
            people.push(faces.chip(&image, &landmarks).unwrap().image);
        }
    }
    assert_eq!(people.len(), 4, "faces found in the samples");
    let (mut chips, mut labels) = (Vec::new(), Vec::new());
    for (id, chip) in people.iter().enumerate() {
        chips.extend([chip.clone(), mirrored(chip)]);
        labels.extend([id, id]);
    }

    let weights = WeightMap::load(&cache_file("models/dlib_resnet.safetensors")).unwrap();
    let net = DlibResNet::load(&weights, &cpu_autodiff()).unwrap();
    let net = encoder::train_last_blocks(net, 2);
    let config = TrainConfig {
        mining: Mining::Hardest,
        // dlib already separates these faces by more than the default margin: a wide one
        // leaves a loss to lower.
        margin: 1.0,
        learning_rate: 1e-4,
        ..TrainConfig::default()
    };
    let mut adam = Adam::new(AdamConfig::new(config.learning_rate));
    let mut rng = SplitMix64::new(1);
    let x = encoder::image_batch(&chips, net.input_size(), &cpu_autodiff());
    let (net, first) =
        encoder::triplet_step(net, &mut adam, x.clone(), &labels, &config, &mut rng).unwrap();
    // The next step's loss (its hardest triplets, before its update) is the loss after one.
    let (net, second) =
        encoder::triplet_step(net, &mut adam, x, &labels, &config, &mut rng).unwrap();
    let (first, second) = (first.unwrap().0, second.unwrap().0);
    assert!(second < first, "one step: loss {first} -> {second}");
    let tuned = net.to_weights().unwrap();
    let same = |name: &str| tuned.get(name).unwrap().data == weights.get(name).unwrap().data;
    assert!(
        same("conv1.weight") && same("blocks.11.conv2.weight"),
        "frozen"
    );
    assert!(
        !same("blocks.12.conv1.weight") && !same("fc.weight"),
        "trained"
    );

    // Saved, it loads as an encoder that embeds chips as the trained network does.
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("train-fine-tune");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("tuned.safetensors");
    encoder::save(&net, &path).unwrap();
    let loaded = AnyEncoder::load(&WeightMap::load(&path).unwrap(), &cpu()).unwrap();
    assert!(loaded.wants_face_chips());
    let a = loaded.embed(&chips[..2]).unwrap();
    let b = encoder::embed_images(&net, &chips[..2]).unwrap();
    assert_eq!(a[0].len(), 128);
    for (x, y) in a.iter().flatten().zip(b.iter().flatten()) {
        assert!((x - y).abs() < 1e-5);
    }

    // The command: identity folders of chips, one step, the last block only.
    let data = dir.join("ids");
    for (id, pair) in chips.chunks(2).enumerate() {
        let folder = data.join(format!("person{id}"));
        std::fs::create_dir_all(&folder).unwrap();
        for (n, chip) in pair.iter().enumerate() {
            chip.save_png(&folder.join(format!("{n}.png"))).unwrap();
        }
    }
    let out = dir.join("cli.safetensors");
    let run = Command::new(env!("CARGO_BIN_EXE_likeness"))
        .args(["train", "encoder", "--init", "dlib", "--train-last", "1"])
        .arg("--data")
        .arg(&data)
        .arg("--out")
        .arg(&out)
        .args(["--epochs", "1", "--steps", "1", "--identities", "2"])
        .args(["--per-identity", "2", "--validation", "0"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(run.status.success(), "{stderr}");
    assert!(stderr.contains("epoch 1/1"), "{stderr}");
    let first_epoch = WeightMap::load(&out).unwrap();
    assert_eq!(first_epoch.meta("train.train_last"), Some("1"));
    let pairs = "person0/0.png,person0/1.png,1\nperson0/0.png,person1/0.png,0\n\
                 person2/0.png,person2/1.png,1\nperson2/1.png,person3/0.png,0\n";
    assert_eq!(eval_with_encoder(&dir, pairs, &data, &out)["pairs"], 4);

    // Resuming: another --train-last is refused, naming the file and both values; without
    // the flag the recorded one applies (block 12 stays frozen, as in the first epoch).
    let resume = |extra: &[&str], to: &Path| {
        Command::new(env!("CARGO_BIN_EXE_likeness"))
            .args(["train", "encoder", "--init", "dlib", "--data"])
            .arg(&data)
            .arg("--out")
            .arg(to)
            .arg("--resume")
            .arg(&out)
            .args(["--epochs", "2", "--steps", "1", "--identities", "2"])
            .args(["--per-identity", "2", "--validation", "0"])
            // A wide margin leaves hardest triplets to learn from (see above).
            .args(["--mining", "hardest", "--margin", "1.0"])
            .args(extra)
            .output()
            .unwrap()
    };
    let refused = resume(&["--train-last", "2"], &dir.join("refused.safetensors"));
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(!refused.status.success(), "{stderr}");
    assert!(
        stderr.contains("cli.safetensors")
            && stderr.contains("--train-last 1")
            && stderr.contains("--train-last 2"),
        "{stderr}"
    );
    assert!(!dir.join("refused.safetensors").exists());
    let resumed_path = dir.join("resumed.safetensors");
    let resumed = resume(&[], &resumed_path);
    let stderr = String::from_utf8_lossy(&resumed.stderr);
    assert!(resumed.status.success(), "{stderr}");
    assert!(
        stderr.contains("as recorded") && stderr.contains("epoch 2/2"),
        "{stderr}"
    );
    let second_epoch = WeightMap::load(&resumed_path).unwrap();
    assert_eq!(second_epoch.meta("train.train_last"), Some("1"));
    let moved =
        |name: &str| second_epoch.get(name).unwrap().data != first_epoch.get(name).unwrap().data;
    assert!(moved("blocks.13.conv1.weight"), "the last block trained");
    assert!(!moved("blocks.12.conv1.weight"), "block 12 stayed frozen");
    std::fs::remove_dir_all(&dir).unwrap();
}
