//! The face commands, run as a user runs them: the built `likeness` binary on the model
//! cache's sample photos.
//!
//! Needs the model cache (`cargo run -p likeness -- models fetch`).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use likeness_face::faces::Faces;
use likeness_models::Cache;
use serde_json::Value;

/// Faces in sample1.jpg (three people; dlib's HOG detector finds the same three).
const SAMPLE1_FACES: usize = 3;

fn cache() -> Cache {
    let cache = Cache::from_env().unwrap();
    if let Err(e) = cache.require(Faces::MODELS) {
        panic!("{e}");
    }
    cache
}

fn sample(name: &str) -> PathBuf {
    cache().sample_path(name).unwrap_or_else(|e| panic!("{e}"))
}

/// A fresh folder for one test under cargo's per-test scratch space.
fn scratch(test: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("faces_cli-{test}"));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn likeness(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_likeness"))
        .args(args)
        .output()
        .unwrap()
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Runs and expects success; returns stdout.
fn ok(args: &[&str]) -> String {
    let out = likeness(args);
    assert!(
        out.status.success(),
        "likeness {args:?} failed: {}",
        stderr(&out)
    );
    stdout(&out)
}

/// Runs and expects a failure whose message is one `error:` line naming `file`.
fn fails_naming(args: &[&str], file: &Path) -> String {
    let out = likeness(args);
    let err = stderr(&out);
    assert!(!out.status.success(), "likeness {args:?} succeeded");
    let line = err
        .lines()
        .find(|l| l.starts_with("error:"))
        .unwrap_or_else(|| panic!("no error line: {err}"));
    assert!(
        line.contains(&file.display().to_string()),
        "the error does not name {}: {line}",
        file.display()
    );
    assert!(!err.contains("panicked"), "{err}");
    line.to_string()
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

#[test]
fn detect_finds_the_faces_of_sample1_and_draws_them() {
    let dir = scratch("detect");
    let drawn = dir.join("drawn.png");
    let photo = sample("sample1.jpg");
    let out: Value =
        serde_json::from_str(&ok(&["detect", s(&photo), "--json", "--draw", s(&drawn)])).unwrap();
    let faces = out["faces"].as_array().unwrap();
    assert!(faces.len() >= SAMPLE1_FACES, "{out}");
    for face in faces {
        assert_eq!(face["box"].as_array().unwrap().len(), 4);
        assert_eq!(face["keypoints"].as_array().unwrap().len(), 6);
        assert!(face["score"].as_f64().unwrap() > 0.5);
    }
    let bytes = std::fs::read(&drawn).unwrap();
    assert!(bytes.starts_with(b"\x89PNG"));
}

/// `--min-face`: the default is 40 px; a larger value searches fewer scales (its own unit test
/// counts the passes), so it may miss faces but never adds one; a value below the floor is
/// refused naming the option. Every face command takes it (gallery: before or after the verb).
#[test]
fn min_face_searches_less_and_adds_nothing() {
    let photo = sample("t1.jpg");
    let boxes = |extra: &[&str]| -> Vec<Vec<f64>> {
        let mut args = vec!["detect", s(&photo), "--json"];
        args.extend_from_slice(extra);
        let out: Value = serde_json::from_str(&ok(&args)).unwrap();
        out["faces"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| {
                let b = f["box"].as_array().unwrap();
                b.iter().map(|v| v.as_f64().unwrap()).collect()
            })
            .collect()
    };
    let default = boxes(&[]);
    assert_eq!(boxes(&["--min-face", "40"]), default);
    // Just under the widest face: the larger faces stay, every smaller one is skipped (the
    // README's promise; whole-photo passes used to report them anyway).
    let width = |b: &Vec<f64>| b[2] - b[0];
    let widest = default.iter().map(width).fold(0.0, f64::max);
    let floor = (widest * 0.8).floor();
    let coarse = boxes(&["--min-face", &format!("{floor}")]);
    assert!(!coarse.is_empty() && coarse.len() <= default.len());
    assert!(
        coarse.iter().all(|b| width(b) >= floor),
        "{coarse:?} under {floor}"
    );
    let iou = |a: &[f64], b: &[f64]| {
        let w = (a[2].min(b[2]) - a[0].max(b[0])).max(0.0);
        let h = (a[3].min(b[3]) - a[1].max(b[1])).max(0.0);
        let area = |r: &[f64]| (r[2] - r[0]) * (r[3] - r[1]);
        w * h / (area(a) + area(b) - w * h)
    };
    for b in &coarse {
        assert!(
            default.iter().any(|d| iou(b, d) > 0.5),
            "--min-face {floor} found a face the default does not: {b:?}"
        );
    }
    let out = likeness(&["detect", s(&photo), "--min-face", "5"]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("--min-face"), "{}", stderr(&out));
    let out = likeness(&["gallery", "--min-face", "5", "list"]);
    assert!(stderr(&out).contains("--min-face"), "{}", stderr(&out));
    let out = likeness(&["verify", s(&photo), s(&photo), "--min-face", "5"]);
    assert!(stderr(&out).contains("--min-face"), "{}", stderr(&out));
}

#[test]
fn encode_gives_landmarks_and_unit_embeddings() {
    let out: Value =
        serde_json::from_str(&ok(&["encode", s(&sample("astronaut.png")), "--json"])).unwrap();
    let faces = out[0]["faces"].as_array().unwrap();
    assert_eq!(faces.len(), 1, "{out}");
    assert_eq!(faces[0]["landmarks"].as_array().unwrap().len(), 5);
    let e: Vec<f64> = faces[0]["embedding"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_f64().unwrap())
        .collect();
    assert_eq!(e.len(), 128);
    let norm = e.iter().map(|v| v * v).sum::<f64>().sqrt();
    // dlib's descriptors are not normalised exactly, but close to it
    assert!((0.5..1.5).contains(&norm), "{norm}");
}

#[test]
fn encode_writes_each_face_chip_exactly_as_the_network_saw_it() {
    let dir = scratch("chips");
    let chips = dir.join("chips");
    let out: Value = serde_json::from_str(&ok(&[
        "encode",
        s(&sample("t1.jpg")),
        "--chips",
        s(&chips),
        "--json",
    ]))
    .unwrap();
    let faces = out[0]["faces"].as_array().unwrap();
    let mut names: Vec<String> = std::fs::read_dir(&chips)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    let expected: Vec<String> = (0..faces.len())
        .map(|i| format!("t1_face{i}.png"))
        .collect();
    assert_eq!(names, expected);
    assert_eq!(faces.len(), 6);

    // Embedding each written chip again gives the embedding `encode` printed for that face.
    let device = likeness_nn::device::cpu();
    let net = likeness_nn::nets::dlib_resnet::DlibResNet::load(
        &likeness_nn::weights::WeightMap::load(&cache().model_path("dlib_resnet").unwrap())
            .unwrap(),
        &device,
    )
    .unwrap();
    let images: Vec<_> = names
        .iter()
        .map(|n| likeness_nn::image::Image::open(&chips.join(n)).unwrap())
        .collect();
    assert!(images.iter().all(|i| (i.width, i.height) == (150, 150)));
    let again = net.embed(&images, &device).unwrap();
    for (i, (face, e)) in faces.iter().zip(&again).enumerate() {
        let printed: Vec<f64> = face["embedding"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_f64().unwrap())
            .collect();
        let worst = printed
            .iter()
            .zip(e)
            .map(|(a, b)| (a - *b as f64).abs())
            .fold(0.0, f64::max);
        assert!(worst < 1e-4, "face {i}: chip embedding differs by {worst}");
    }
}

#[test]
fn face_commands_embed_with_a_given_encoder() {
    let dir = scratch("encoder");
    let (a, b) = (sample("astronaut.png"), sample("Tom_Hanks_54745.png"));
    let distance = |extra: &[&str]| -> f64 {
        let mut args = vec!["verify", s(&a), s(&b), "--json"];
        args.extend_from_slice(extra);
        let out: Value = serde_json::from_str(&ok(&args)).unwrap();
        out["distance"].as_f64().unwrap()
    };
    // dlib's network ends in a linear layer without bias: doubling its weights doubles every
    // embedding, so every distance; a command that ignored --encoder would not see it.
    let mut weights =
        likeness_nn::weights::WeightMap::load(&cache().model_path("dlib_resnet").unwrap()).unwrap();
    let fc = weights.get("fc.weight").unwrap().clone();
    let doubled: Vec<f32> = fc.data.iter().map(|v| 2.0 * v).collect();
    weights
        .insert("fc.weight", fc.shape.clone(), doubled)
        .unwrap();
    let tuned = dir.join("tuned.safetensors");
    weights.save(&tuned).unwrap();
    let (plain, scaled) = (distance(&[]), distance(&["--encoder", s(&tuned)]));
    assert!(plain > 0.6, "{plain}");
    assert!((scaled / plain - 2.0).abs() < 1e-3, "{plain} → {scaled}");

    // A gallery remembers the network that enrolled it and neither compares nor mixes in
    // another's embeddings.
    let gallery = dir.join("tuned-gallery.json");
    let (g, t) = (s(&gallery), s(&tuned));
    ok(&[
        "gallery",
        "--gallery",
        g,
        "--encoder",
        t,
        "enrol",
        "eileen",
        s(&a),
    ]);
    let who: Value = serde_json::from_str(&ok(&[
        "gallery",
        "--gallery",
        g,
        "--encoder",
        t,
        "identify",
        s(&a),
        "--json",
    ]))
    .unwrap();
    assert_eq!(who["faces"][0]["name"], "eileen", "{who}");
    for args in [
        vec!["gallery", "--gallery", g, "identify", s(&a)],
        vec!["gallery", "--gallery", g, "enrol", "tom", s(&b)],
    ] {
        let out = likeness(&args);
        assert!(!out.status.success(), "{args:?}");
        assert!(
            stderr(&out).contains("cannot be compared"),
            "{}",
            stderr(&out)
        );
    }

    // A file of another network is refused, naming it.
    let vgg = cache().model_path("vgg16").unwrap();
    let message = fails_naming(&["verify", s(&a), s(&b), "--encoder", s(&vgg)], &vgg);
    assert!(message.contains("train encoder --init dlib"), "{message}");
}

#[test]
fn verify_says_same_for_the_astronaut_and_different_for_another_person() {
    let astronaut = sample("astronaut.png");
    let same: Value =
        serde_json::from_str(&ok(&["verify", s(&astronaut), s(&astronaut), "--json"])).unwrap();
    assert_eq!(same["same"], true);
    assert!(same["distance"].as_f64().unwrap() < 1e-6);
    // the fast alignment (BlazeFace's keypoints) still knows the astronaut
    let fast = ok(&[
        "verify",
        s(&astronaut),
        s(&astronaut),
        "--align",
        "keypoints",
    ]);
    assert!(fast.starts_with("same"), "{fast}");
    // t1.jpg shows six people; the largest face is used, with a note
    let out = likeness(&["verify", s(&astronaut), s(&sample("t1.jpg"))]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).starts_with("different"), "{}", stdout(&out));
    assert!(
        stderr(&out).contains("using the largest"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn verify_with_a_head_prints_its_probability() {
    // A hand-made head: φ = |a − b|, every weight −10, bias 3. Identical faces give φ = 0, so
    // p = σ(3); two different people (distance ~1 spread over 128 dimensions) give p ≈ 0.
    let dir = scratch("verify-head");
    let head = dir.join("head.json");
    let weights = vec![-10.0; 128];
    let json = serde_json::json!({"feature": "abs", "weights": weights, "bias": 3.0, "l2": 0.0});
    std::fs::write(&head, json.to_string()).unwrap();
    let astronaut = sample("astronaut.png");
    let same: Value = serde_json::from_str(&ok(&[
        "verify",
        s(&astronaut),
        s(&astronaut),
        "--head",
        s(&head),
        "--json",
    ]))
    .unwrap();
    let sigma3 = 1.0 / (1.0 + (-3.0f64).exp());
    assert!(
        (same["probability_same"].as_f64().unwrap() - sigma3).abs() < 1e-6,
        "{same}"
    );
    let other: Value = serde_json::from_str(&ok(&[
        "verify",
        s(&astronaut),
        s(&sample("t1.jpg")),
        "--head",
        s(&head),
        "--json",
    ]))
    .unwrap();
    assert!(
        other["probability_same"].as_f64().unwrap() < 0.01,
        "{other}"
    );
    // a head file that is not JSON is an error naming it
    let bad = dir.join("bad.json");
    std::fs::write(&bad, "not json").unwrap();
    fails_naming(
        &["verify", s(&astronaut), s(&astronaut), "--head", s(&bad)],
        &bad,
    );
}

#[test]
fn gallery_enrol_identify_rename_remove_round_trip() {
    let dir = scratch("gallery");
    let gallery = dir.join("people.json");
    let g = s(&gallery);
    let astronaut = sample("astronaut.png");
    ok(&["gallery", "--gallery", g, "enrol", "eileen", s(&astronaut)]);
    ok(&[
        "gallery",
        "--gallery",
        g,
        "enrol",
        "someone",
        s(&sample("sample2.jpg")),
    ]);
    let list: Value =
        serde_json::from_str(&ok(&["gallery", "list", "--gallery", g, "--json"])).unwrap();
    assert_eq!(list["persons"].as_array().unwrap().len(), 2, "{list}");

    let drawn = dir.join("who.png");
    let who: Value = serde_json::from_str(&ok(&[
        "gallery",
        "--gallery",
        g,
        "identify",
        s(&astronaut),
        "--json",
        "--draw",
        s(&drawn),
    ]))
    .unwrap();
    let faces = who["faces"].as_array().unwrap();
    assert_eq!(faces.len(), 1);
    assert_eq!(faces[0]["name"], "eileen", "{who}");
    assert!(drawn.exists());
    // nobody in t1.jpg is enrolled
    let who: Value = serde_json::from_str(&ok(&[
        "gallery",
        "--gallery",
        g,
        "identify",
        s(&sample("t1.jpg")),
        "--json",
    ]))
    .unwrap();
    assert!(
        who["faces"]
            .as_array()
            .unwrap()
            .iter()
            .all(|f| f["known"] == false),
        "{who}"
    );

    ok(&[
        "gallery",
        "--gallery",
        g,
        "rename",
        "eileen",
        "Eileen Collins",
    ]);
    let text = ok(&["gallery", "--gallery", g, "identify", s(&astronaut)]);
    assert!(text.contains("Eileen Collins"), "{text}");
    ok(&["gallery", "--gallery", g, "remove", "someone"]);
    let list: Value =
        serde_json::from_str(&ok(&["gallery", "--gallery", g, "list", "--json"])).unwrap();
    assert_eq!(list["persons"][0]["name"], "Eileen Collins");
    assert_eq!(list["persons"].as_array().unwrap().len(), 1);

    // enrolling from a photo without a face fails and leaves the gallery as it was
    let before = std::fs::read(&gallery).unwrap();
    let brick = sample("brick.png");
    let line = fails_naming(
        &["gallery", "--gallery", g, "enrol", "wall", s(&brick)],
        &brick,
    );
    assert!(line.contains("no face"), "{line}");
    assert_eq!(std::fs::read(&gallery).unwrap(), before);
    // a damaged gallery is reported, not overwritten
    std::fs::write(&gallery, b"{ not json").unwrap();
    fails_naming(
        &["gallery", "--gallery", g, "enrol", "eileen", s(&astronaut)],
        &gallery,
    );
    assert_eq!(std::fs::read(&gallery).unwrap(), b"{ not json");
}

#[test]
fn recognise_prints_face_recognition_csv() {
    let dir = scratch("recognise");
    let (known, unknown) = (dir.join("known"), dir.join("unknown"));
    std::fs::create_dir_all(&known).unwrap();
    std::fs::create_dir_all(&unknown).unwrap();
    std::fs::copy(sample("astronaut.png"), known.join("eileen.png")).unwrap();
    std::fs::copy(sample("astronaut.png"), unknown.join("a.png")).unwrap();
    std::fs::copy(sample("brick.png"), unknown.join("b.png")).unwrap();
    std::fs::copy(sample("t1.jpg"), unknown.join("c.jpg")).unwrap();
    std::fs::write(unknown.join("notes.txt"), "not a photo, not listed").unwrap();

    let csv = ok(&["recognise", s(&known), s(&unknown), "--jobs", "2"]);
    let lines: Vec<&str> = csv.lines().collect();
    let file = |name: &str| unknown.join(name).display().to_string();
    assert_eq!(lines[0], format!("{},eileen", file("a.png")), "{csv}");
    assert_eq!(
        lines[1],
        format!("{},no_persons_found", file("b.png")),
        "{csv}"
    );
    let rest = &lines[2..];
    assert_eq!(rest.len(), 6, "{csv}");
    assert!(
        rest.iter()
            .all(|l| *l == format!("{},unknown_person", file("c.jpg"))),
        "{csv}"
    );
    // one photo, with distances
    let one = ok(&[
        "recognise",
        s(&known),
        s(&unknown.join("a.png")),
        "--show-distance",
    ]);
    assert_eq!(one.trim(), format!("{},eileen,0.0", file("a.png")));
    // a corrupt photo among good ones: the others are still reported, the exit is non-zero
    let bad = unknown.join("d.jpg");
    let jpeg = std::fs::read(sample("sample1.jpg")).unwrap();
    std::fs::write(&bad, &jpeg[..jpeg.len() / 3]).unwrap();
    let out = likeness(&["recognise", s(&known), s(&unknown)]);
    assert!(!out.status.success());
    assert!(stdout(&out).contains("eileen"), "{}", stdout(&out));
    assert!(
        stderr(&out).contains(&bad.display().to_string()),
        "{}",
        stderr(&out)
    );
}

/// The PNG CRC (ISO 3309 CRC-32), for hand-made PNG headers.
fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = 0xFFFF_FFFFu32;
    for &b in bytes {
        crc ^= b as u32;
        for _ in 0..8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

/// A PNG that claims `width`×`height` pixels and holds none of them.
fn png_header_only(width: u32, height: u32) -> Vec<u8> {
    let mut png = b"\x89PNG\r\n\x1a\n".to_vec();
    let mut chunk = |kind: &[u8], data: &[u8]| {
        let mut body = kind.to_vec();
        body.extend(data);
        png.extend((data.len() as u32).to_be_bytes());
        png.extend(&body);
        png.extend(crc32(&body).to_be_bytes());
    };
    let mut ihdr = width.to_be_bytes().to_vec();
    ihdr.extend(height.to_be_bytes());
    ihdr.extend([8, 2, 0, 0, 0]); // 8-bit RGB, deflate, no filter, no interlace
    chunk(b"IHDR", &ihdr);
    // the start of a zlib stream, far too short for the pixels claimed
    chunk(b"IDAT", &[0x78, 0x9C, 0x03, 0x00]);
    chunk(b"IEND", &[]);
    png
}

#[test]
fn bad_input_gives_one_line_naming_the_file() {
    let dir = scratch("bad");
    let jpeg = std::fs::read(sample("sample1.jpg")).unwrap();
    let truncated = dir.join("truncated.jpg");
    std::fs::write(&truncated, &jpeg[..jpeg.len() / 2]).unwrap();
    let garbage = dir.join("garbage.png");
    std::fs::write(&garbage, b"this is not an image at all").unwrap();
    let huge = dir.join("huge.png");
    std::fs::write(&huge, png_header_only(40_000, 40_000)).unwrap();
    let missing = dir.join("missing.jpg");

    for file in [&truncated, &garbage, &huge, &missing] {
        fails_naming(&["detect", s(file)], file);
        fails_naming(&["verify", s(&sample("astronaut.png")), s(file)], file);
    }
    let line = fails_naming(&["detect", s(&huge)], &huge);
    assert!(line.contains("limit"), "{line}");
    // no face at all
    let brick = sample("brick.png");
    let line = fails_naming(&["verify", s(&brick), s(&sample("astronaut.png"))], &brick);
    assert!(line.contains("no face"), "{line}");
    // encode goes on past a bad file and still fails
    let out = likeness(&["encode", s(&garbage), s(&sample("astronaut.png"))]);
    assert!(!out.status.success());
    assert!(stdout(&out).contains("1 face(s)"), "{}", stdout(&out));
    assert!(stderr(&out).contains(&garbage.display().to_string()));
}

#[test]
fn an_empty_model_cache_says_how_to_fill_it() {
    let home = scratch("empty-home");
    let out = Command::new(env!("CARGO_BIN_EXE_likeness"))
        .args(["detect", s(&sample("astronaut.png"))])
        .env("LIKENESS_HOME", &home)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(err.contains("models fetch"), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
}

/// `--json` writes a path that is not UTF-8 lossily (U+FFFD for the bad byte) instead of
/// panicking, for every face command that prints paths.
#[cfg(unix)]
#[test]
fn json_output_with_a_non_utf8_path_works() {
    use std::ffi::OsStr;
    use std::os::unix::ffi::OsStrExt;
    let dir = scratch("non_utf8");
    let photo = dir.join(OsStr::from_bytes(b"astronaut-\xff.png"));
    std::fs::copy(sample("astronaut.png"), &photo).unwrap();
    let lossy = photo.to_string_lossy().into_owned();
    assert!(lossy.contains('\u{FFFD}'));
    let run = |args: &[&OsStr]| -> Value {
        let out = Command::new(env!("CARGO_BIN_EXE_likeness"))
            .args(args)
            .output()
            .unwrap();
        assert!(out.status.success(), "{args:?}: {}", stderr(&out));
        serde_json::from_slice(&out.stdout).unwrap()
    };
    let p = photo.as_os_str();
    let json = OsStr::new("--json");
    let detect = run(&[OsStr::new("detect"), p, json]);
    assert_eq!(detect["file"], lossy.as_str());
    assert_eq!(detect["faces"].as_array().unwrap().len(), 1);
    let encode = run(&[OsStr::new("encode"), p, json]);
    assert_eq!(encode[0]["file"], lossy.as_str());
    assert_eq!(
        encode[0]["faces"][0]["embedding"].as_array().unwrap().len(),
        128
    );
    let verify = run(&[OsStr::new("verify"), p, p, json]);
    assert_eq!(verify["a"]["file"], lossy.as_str());
    assert_eq!(verify["same"], true);
    let known = dir.join("known");
    std::fs::create_dir_all(&known).unwrap();
    std::fs::copy(sample("astronaut.png"), known.join("eileen.png")).unwrap();
    let recognise = run(&[OsStr::new("recognise"), known.as_os_str(), p, json]);
    assert_eq!(recognise["results"][0]["file"], lossy.as_str());
    assert_eq!(
        recognise["results"][0]["faces"][0]["matches"][0]["name"],
        "eileen"
    );
    let liveness = run(&[OsStr::new("liveness"), p, json]);
    assert_eq!(liveness[0]["file"], lossy.as_str());
    assert_eq!(liveness[0]["faces"].as_array().unwrap().len(), 1);
}
