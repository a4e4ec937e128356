//! The hostile-input campaign of issue 11, as tests: every input is generated here, inside
//! cargo's per-test scratch folder (links, FIFOs, read-only files, corrupt model copies, NaN
//! options). Each test pins one defect class the campaign found; before the fix each of them
//! failed (a panic, a crash, a silent wrong answer or a replaced file).
//!
//! The model-cache tests build a private `LIKENESS_HOME` from copies of the real cache's files,
//! so the shared cache is only read.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use likeness_models::Cache;

fn scratch(test: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("hostile-{test}"));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn likeness(args: &[&str]) -> Output {
    run(Command::new(env!("CARGO_BIN_EXE_likeness")).args(args))
}

fn run(command: &mut Command) -> Output {
    command.stdin(Stdio::null()).output().unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// The command failed as a program should: an error message and exit status 1 or 2 (clap's
/// usage errors), never a panic (101) or a signal.
fn refused(out: &Output) -> String {
    let stderr = text(&out.stderr);
    let code = out.status.code();
    assert!(
        matches!(code, Some(1 | 2)),
        "expected a clean refusal, got {:?}\nstderr: {stderr}\nstdout: {}",
        out.status,
        text(&out.stdout)
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
    stderr
}

fn sample(name: &str) -> String {
    let path = Cache::from_env()
        .unwrap()
        .sample_path(name)
        .unwrap_or_else(|e| panic!("{e}"));
    path.to_str().unwrap().to_string()
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

fn mkfifo(path: &Path) {
    assert!(Command::new("mkfifo").arg(path).status().unwrap().success());
}

/// Separable embeddings and a CSV of their pairs, for `eval` and `train verifier`, which need
/// no model.
fn pairs_and_embeddings(dir: &Path, n: usize) -> (String, String) {
    let mut emb = serde_json::Map::new();
    let mut csv = String::new();
    for i in 0..n {
        emb.insert(format!("p{i}/a.jpg"), serde_json::json!([i as f32, 0.1]));
        emb.insert(format!("p{i}/b.jpg"), serde_json::json!([i as f32, -0.1]));
        csv += &format!(
            "p{i}/a.jpg,p{i}/b.jpg,1\np{i}/a.jpg,p{}/b.jpg,0\n",
            (i + 1) % n
        );
    }
    let e = dir.join("e.json");
    std::fs::write(&e, serde_json::Value::Object(emb).to_string()).unwrap();
    let p = dir.join("pairs.csv");
    std::fs::write(&p, csv).unwrap();
    (s(&p).to_string(), s(&e).to_string())
}

// ---------------------------------------------------------------------------------------------
// Numbers: NaN, infinities, negatives, zero and overflowing sizes, refused by name

#[test]
fn non_finite_negative_and_absurd_numbers_are_refused_by_the_option_they_came_in() {
    let dir = scratch("numbers");
    let img = s(&dir.join("missing.png")).to_string();
    let out = s(&dir.join("out.png")).to_string();
    let data = s(&dir).to_string();
    // Negative values are given as `--option=-x` (with a space clap takes `-x` for a flag,
    // and refuses that too, without naming the option).
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (
            vec!["verify", &img, &img, "--tolerance", "nan"],
            "--tolerance",
        ),
        (
            vec!["verify", &img, &img, "--tolerance=-0.5"],
            "--tolerance",
        ),
        (
            vec!["verify", &img, &img, "--tolerance", "inf"],
            "--tolerance",
        ),
        (
            vec!["recognise", &data, &img, "--tolerance", "NaN"],
            "--tolerance",
        ),
        (
            vec!["gallery", "identify", &img, "--tolerance=-1"],
            "--tolerance",
        ),
        (
            vec!["style", &img, &img, "-o", &out, "--learning-rate", "nan"],
            "--learning-rate",
        ),
        (
            vec!["style", &img, &img, "-o", &out, "--style-weight=-1"],
            "--style-weight",
        ),
        (
            vec!["style", &img, &img, "-o", &out, "--style-scale", "1e9"],
            "--style-scale",
        ),
        (
            vec!["style", &img, &img, "-o", &out, "--size", "100000000000"],
            "--size",
        ),
        (
            vec!["style", &img, &img, "-o", &out, "--noise-ratio", "2"],
            "--noise-ratio",
        ),
        (
            vec!["style", &img, &img, "-o", &out, "--scales", "0"],
            "--scales",
        ),
        (
            vec!["style", &img, &img, "-o", &out, "--style-blend", "1,nan"],
            "--style-blend",
        ),
        (
            vec![
                "probe",
                "--images",
                &data,
                "-o",
                &data,
                "--cell",
                "4000000000",
            ],
            "--cell",
        ),
        (
            vec!["probe", "--images", &data, "-o", &data, "--size", "0"],
            "--size",
        ),
        (
            vec!["probe", "--images", &data, "-o", &data, "--top", "0"],
            "--top",
        ),
        (
            vec![
                "train", "encoder", "--data", &data, "-o", &out, "--epochs", "0",
            ],
            "--epochs",
        ),
        (
            vec![
                "train", "encoder", "--data", &data, "-o", &out, "--lr", "nan",
            ],
            "--lr",
        ),
        (
            vec![
                "train",
                "encoder",
                "--data",
                &data,
                "-o",
                &out,
                "--margin=-1",
            ],
            "--margin",
        ),
        (
            vec![
                "train",
                "encoder",
                "--data",
                &data,
                "-o",
                &out,
                "--steps",
                "99999999999999999999",
            ],
            "--steps",
        ),
        (vec!["train", "digits", "--lr", "inf"], "--lr"),
        (vec!["train", "digits", "--symmetries", "9"], "--symmetries"),
        (
            vec![
                "eval",
                "--pairs",
                &img,
                "--embeddings",
                &img,
                "--folds",
                "1",
            ],
            "--folds",
        ),
        (
            vec!["demo", "-o", &data, "--style-size", "18446744073709551616"],
            "--style-size",
        ),
        (
            vec!["demo", "-o", &data, "--style-weight", "nan"],
            "--style-weight",
        ),
    ];
    for (args, option) in cases {
        let stderr = refused(&likeness(&args));
        assert!(stderr.contains(option), "{args:?}: {stderr}");
    }
}

#[test]
fn eval_refuses_more_folds_than_pairs() {
    let dir = scratch("folds");
    let (pairs, emb) = pairs_and_embeddings(&dir, 2);
    let out = likeness(&[
        "eval",
        "--pairs",
        &pairs,
        "--embeddings",
        &emb,
        "--folds",
        "10",
    ]);
    let stderr = refused(&out);
    assert!(stderr.contains("--folds"), "{stderr}");
    assert!(
        out.stdout.is_empty(),
        "printed a result: {}",
        text(&out.stdout)
    );
}

#[test]
fn an_embedding_that_overflows_f32_is_refused_not_compared() {
    let dir = scratch("overflow-embedding");
    let (pairs, _) = pairs_and_embeddings(&dir, 3);
    let mut emb = serde_json::Map::new();
    for i in 0..3 {
        emb.insert(format!("p{i}/a.jpg"), serde_json::json!([i as f32, 0.1]));
        emb.insert(format!("p{i}/b.jpg"), serde_json::json!([i as f32, -0.1]));
    }
    let path = dir.join("e.json");
    // 1e39 parses as an f32 infinity.
    let json = serde_json::Value::Object(emb)
        .to_string()
        .replacen("0.1", "1e39", 1);
    std::fs::write(&path, json).unwrap();
    let stderr = refused(&likeness(&[
        "eval",
        "--pairs",
        &pairs,
        "--embeddings",
        s(&path),
    ]));
    assert!(stderr.contains("non-finite"), "{stderr}");
}

// ---------------------------------------------------------------------------------------------
// Outputs: links, devices, FIFOs, folders and read-only files are refused before any work

#[test]
fn outputs_that_are_links_fifos_folders_or_read_only_are_refused_and_left_alone() {
    let dir = scratch("outputs");
    let photo = sample("sample1.jpg");
    let victim = dir.join("victim.txt");
    std::fs::write(&victim, b"precious").unwrap();
    let link = dir.join("link.png");
    std::os::unix::fs::symlink(&victim, &link).unwrap();
    // What `--draw /dev/null` did as root, without touching /dev: a link to it.
    let null_link = dir.join("null.png");
    std::os::unix::fs::symlink("/dev/null", &null_link).unwrap();
    let fifo = dir.join("fifo.png");
    mkfifo(&fifo);
    let folder = dir.join("folder.png");
    std::fs::create_dir(&folder).unwrap();
    let read_only = dir.join("read-only.png");
    std::fs::write(&read_only, b"keep").unwrap();
    std::fs::set_permissions(&read_only, std::fs::Permissions::from_mode(0o444)).unwrap();

    for (target, why) in [
        (&link, "symbolic link"),
        (&null_link, "symbolic link"),
        (&fifo, "FIFO"),
        (&folder, "folder"),
        (&read_only, "read-only"),
    ] {
        let stderr = refused(&likeness(&["detect", &photo, "--draw", s(target)]));
        assert!(stderr.contains(why), "{}: {stderr}", target.display());
    }
    assert_eq!(std::fs::read(&victim).unwrap(), b"precious");
    assert_eq!(std::fs::read(&read_only).unwrap(), b"keep");
    assert!(
        std::fs::symlink_metadata(&link)
            .unwrap()
            .file_type()
            .is_symlink()
    );
    use std::os::unix::fs::FileTypeExt;
    assert!(
        std::fs::symlink_metadata(&fifo)
            .unwrap()
            .file_type()
            .is_fifo()
    );
}

#[test]
fn an_unwritable_output_is_found_before_the_long_work() {
    let dir = scratch("late-failure");
    // A FIFO where the output's folder should be: no file can be created there, for root too.
    let fifo = dir.join("pipe");
    mkfifo(&fifo);
    let out = fifo.join("encoder.safetensors");
    // The training data does not even exist: the output is checked first, at parse time,
    // so the error is about the output (before: one epoch of training, then the failure).
    let stderr = refused(&likeness(&[
        "train",
        "encoder",
        "--data",
        s(&dir.join("no-such-data")),
        "-o",
        s(&out),
    ]));
    assert!(stderr.contains("not a folder"), "{stderr}");
    let stderr = refused(&likeness(&[
        "style",
        s(&dir.join("no-content.png")),
        s(&dir.join("no-style.png")),
        "-o",
        s(&out),
    ]));
    assert!(stderr.contains("not a folder"), "{stderr}");
}

#[test]
fn a_rewritten_output_keeps_its_permissions() {
    let dir = scratch("permissions");
    let (pairs, emb) = pairs_and_embeddings(&dir, 5);
    let head = dir.join("head.json");
    std::fs::write(&head, b"{}").unwrap();
    std::fs::set_permissions(&head, std::fs::Permissions::from_mode(0o600)).unwrap();
    let out = likeness(&[
        "train",
        "verifier",
        "--pairs",
        &pairs,
        "--embeddings",
        &emb,
        "-o",
        s(&head),
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let mode = std::fs::metadata(&head).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    assert!(std::fs::read_to_string(&head).unwrap().len() > 2);
    let leftovers: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains(likeness_fs::TEMP_MARKER))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

// ---------------------------------------------------------------------------------------------
// Printing: a full stdout is an error, not a panic

#[test]
fn a_full_stdout_is_an_error_not_a_panic() {
    let dir = scratch("dev-full");
    let (pairs, emb) = pairs_and_embeddings(&dir, 5);
    // /dev/full refuses every write with ENOSPC: the standard way to fill a disk in a test
    // (nothing is written anywhere).
    let full = std::fs::OpenOptions::new()
        .write(true)
        .open("/dev/full")
        .unwrap();
    let out = run(Command::new(env!("CARGO_BIN_EXE_likeness"))
        .args(["eval", "--pairs", &pairs, "--embeddings", &emb])
        .stdout(full));
    let stderr = refused(&out);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("No space left"), "{stderr}");
}

// ---------------------------------------------------------------------------------------------
// Pair lists: byte-order marks, bad first rows, quoting

#[test]
fn a_byte_order_mark_loses_no_pair_and_a_bad_first_label_is_an_error() {
    let dir = scratch("csv");
    let (pairs, emb) = pairs_and_embeddings(&dir, 5);
    let with_bom = dir.join("bom.csv");
    let mut bytes = "\u{feff}".as_bytes().to_vec();
    bytes.extend(std::fs::read(&pairs).unwrap());
    std::fs::write(&with_bom, bytes).unwrap();
    let out = likeness(&[
        "eval",
        "--pairs",
        s(&with_bom),
        "--embeddings",
        &emb,
        "--json",
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["pairs"], 10, "{v}");
    assert_eq!(v["skipped"], 0, "{v}");

    let bad_first = dir.join("bad-first.csv");
    let body = std::fs::read_to_string(&pairs).unwrap();
    std::fs::write(&bad_first, format!("p0/a.jpg,p0/b.jpg,maybe\n{body}")).unwrap();
    let stderr = refused(&likeness(&[
        "eval",
        "--pairs",
        s(&bad_first),
        "--embeddings",
        &emb,
    ]));
    assert!(
        stderr.contains("maybe") && stderr.contains("line 1"),
        "{stderr}"
    );
}

// ---------------------------------------------------------------------------------------------
// Model files: hash verified when opened, non-finite weights refused

/// A private cache home holding copies of the face models and the manifest.
fn private_home(dir: &Path) -> PathBuf {
    let real = Cache::from_env().unwrap();
    real.require(likeness_face::faces::Faces::MODELS)
        .unwrap_or_else(|e| panic!("{e}"));
    let home = dir.join("home");
    std::fs::create_dir_all(home.join("models")).unwrap();
    std::fs::copy(real.manifest_path(), home.join("manifest.json")).unwrap();
    for name in likeness_face::faces::Faces::MODELS {
        let rel = format!("models/{name}.safetensors");
        std::fs::copy(real.home().join(&rel), home.join(&rel)).unwrap();
    }
    home
}

/// Flips one byte in the middle of `path`: same size, other content.
fn corrupt_same_size(path: &Path) {
    let mut bytes = std::fs::read(path).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x55;
    std::fs::write(path, bytes).unwrap();
}

#[test]
fn a_same_size_corruption_of_a_model_is_refused_naming_the_file_and_the_fix() {
    let dir = scratch("corrupt-model");
    let home = private_home(&dir);
    let photo = sample("sample1.jpg");
    let with_home = |args: &[&str]| {
        run(Command::new(env!("CARGO_BIN_EXE_likeness"))
            .args(args)
            .env("LIKENESS_HOME", &home))
    };
    // The intact copies work (so what follows is the corruption's doing).
    let fine = with_home(&["detect", &photo]);
    assert!(fine.status.success(), "{}", text(&fine.stderr));

    let model = home.join("models/dlib_resnet.safetensors");
    corrupt_same_size(&model);
    let out = with_home(&["verify", &photo, &photo]);
    let stderr = refused(&out);
    assert!(stderr.contains(s(&model)), "{stderr}");
    assert!(stderr.contains("likeness models fetch --force"), "{stderr}");
    assert!(
        !text(&out.stdout).contains("different"),
        "{}",
        text(&out.stdout)
    );

    // `models list` is the health check: it says which file, and fails.
    let listed = with_home(&["models", "list", "--json"]);
    refused(&listed);
    let v: serde_json::Value = serde_json::from_slice(&listed.stdout).unwrap();
    let item = |name: &str| {
        v["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|i| i["name"] == name)
            .cloned()
            .unwrap()
    };
    assert_eq!(item("dlib_resnet")["verified"], false, "{v}");
    assert_eq!(item("blazeface_front")["verified"], true, "{v}");
}

#[test]
fn a_model_file_with_a_nan_weight_is_refused_and_no_nan_distance_is_printed() {
    let dir = scratch("nan-weights");
    let real = Cache::from_env().unwrap();
    let source = real
        .model_path("dlib_resnet")
        .unwrap_or_else(|e| panic!("{e}"));
    let mut bytes = std::fs::read(&source).unwrap();
    // safetensors: 8-byte header length, the JSON header, then the tensors' f32 data. Make
    // the first value of the data NaN.
    let header = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    bytes[8 + header..8 + header + 4].copy_from_slice(&f32::NAN.to_le_bytes());
    let encoder = dir.join("nan.safetensors");
    std::fs::write(&encoder, bytes).unwrap();
    let photo = sample("sample1.jpg");
    let out = likeness(&["verify", &photo, &photo, "--encoder", s(&encoder)]);
    let stderr = refused(&out);
    assert!(stderr.contains("non-finite"), "{stderr}");
    assert!(!text(&out.stdout).contains("NaN"), "{}", text(&out.stdout));
}

#[test]
fn a_deeply_nested_pickle_is_an_error_not_a_stack_overflow() {
    let dir = scratch("pickle");
    // A legacy torch file whose first pickle is a million nested tuples.
    let mut p = vec![0x80, 2, b')'];
    p.extend(std::iter::repeat_n(0x85u8, 1_000_000));
    p.push(b'.');
    let weights = dir.join("deep.pth");
    std::fs::write(&weights, p).unwrap();
    let stderr = refused(&likeness(&[
        "probe",
        "--weights",
        s(&weights),
        "--images",
        s(&dir),
        "-o",
        s(&dir.join("out")),
    ]));
    assert!(stderr.contains("nesting"), "{stderr}");
}

// ---------------------------------------------------------------------------------------------
// Memory: every size the user chooses goes through an estimate first

#[test]
fn sizes_that_cannot_fit_in_memory_are_refused_before_allocating() {
    let dir = scratch("memory");
    let stderr = refused(&likeness(&[
        "probe",
        "--images",
        s(&dir),
        "-o",
        s(&dir.join("out")),
        "--size",
        "16384",
        "--units",
        "4096",
        "--top",
        "1000",
        "--cell",
        "1024",
    ]));
    assert!(stderr.contains("available"), "{stderr}");
    let astronaut = sample("astronaut.png");
    let stderr = refused(&likeness(&[
        "style",
        &astronaut,
        &astronaut,
        "-o",
        s(&dir.join("out.png")),
        "--size",
        "2048",
        "--style-scale",
        "16",
        "-n",
        "1",
    ]));
    assert!(
        stderr.contains("MiB") || stderr.contains("memory"),
        "{stderr}"
    );
}

// ---------------------------------------------------------------------------------------------
// Faces: chips of photos with the same stem, --min-face

#[test]
fn chips_of_photos_with_the_same_stem_do_not_overwrite_each_other() {
    let dir = scratch("chips");
    let photo = sample("sample1.jpg");
    for sub in ["a", "b"] {
        std::fs::create_dir_all(dir.join(sub)).unwrap();
        std::fs::copy(&photo, dir.join(sub).join("group.jpg")).unwrap();
    }
    let chips = dir.join("chips");
    let out = likeness(&[
        "encode",
        s(&dir.join("a/group.jpg")),
        s(&dir.join("b/group.jpg")),
        "--chips",
        s(&chips),
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(chips.join("group_face0.png").is_file());
    assert!(chips.join("group-2_face0.png").is_file());
}

#[test]
fn min_face_really_skips_smaller_faces() {
    let photo = sample("sample1.jpg");
    let widths = |min_face: &str| -> Vec<f64> {
        let out = likeness(&["detect", &photo, "--json", "--min-face", min_face]);
        assert!(out.status.success(), "{}", text(&out.stderr));
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        v["faces"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| {
                let b = &f["box"];
                b[2].as_f64().unwrap() - b[0].as_f64().unwrap()
            })
            .collect()
    };
    let all = widths("40");
    assert!(all.len() >= 2, "{all:?}");
    let smallest = all.iter().cloned().fold(f64::INFINITY, f64::min);
    let limit = (smallest + 1.0).ceil();
    let kept = widths(&format!("{limit}"));
    assert!(kept.len() < all.len(), "{all:?} -> {kept:?}");
    assert!(kept.iter().all(|&w| w >= limit), "{kept:?} below {limit}");
}
