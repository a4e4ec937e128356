//! What face_recognition's two commands print, so that scripts written for them read ours:
//! `face_recognition KNOWN UNKNOWN` (`FILE,NAME`, `FILE,unknown_person`, `FILE,no_persons_found`,
//! with `--show-distance` a third column) and `face_detection` (`FILE,top,right,bottom,left`).
//!
//! The rules, from face_recognition 1.3.0's `face_recognition_cli.py` and
//! `face_detection_cli.py`:
//! - a known person's name is the file name without its last extension, as Python's
//!   `os.path.splitext(os.path.basename(f))[0]` makes it ([`known_name`]);
//! - one line per face of an unknown photo: every known person within the tolerance, in the
//!   known people's order, or `unknown_person`; one `no_persons_found` line for a photo without
//!   faces ([`recognition_lines`]);
//! - the distance is printed by Python's `str()` of a float ([`python_float`]): shortest digits
//!   that read back the same float, `0.0` rather than `0`, `None` where there is no distance;
//! - `face_detection` boxes are dlib rectangles `(top, right, bottom, left)` in whole pixels,
//!   right and bottom inclusive, trimmed to the image ([`css_box`]).
//!
//! Where we differ on purpose (each documented in the README's "Coming from face_recognition"):
//! fields that contain a comma, a double quote or a line break are quoted as CSV does
//! ([`csv_field`]; face_recognition prints them raw, which breaks the columns); warnings go to
//! stderr, not between the CSV lines; folders are read in name order, not the file system's.

use std::borrow::Cow;
use std::path::{Path, PathBuf};

use crate::align::DRect;
use crate::detect::Detection;
use crate::faces::dlib_box;

/// What face_recognition prints for a face that matches nobody.
pub const UNKNOWN_PERSON: &str = "unknown_person";
/// What face_recognition prints for a photo without faces.
pub const NO_PERSONS_FOUND: &str = "no_persons_found";
/// What Python prints for a missing distance.
pub const PYTHON_NONE: &str = "None";
/// Likeness's name for a face that failed `--liveness` (face_recognition has no such check):
/// printed where a name would be, with the distance `None`.
pub const SPOOF: &str = "spoof";
/// Extensions of the photos taken from folders (face_recognition's `jpg|jpeg|png`, any case).
pub const IMAGE_EXTENSIONS: [&str; 3] = ["jpg", "jpeg", "png"];

/// A float as Python's `repr`/`str` prints it: the shortest digits that read back as the same
/// value; positional notation for decimal exponents from −4 to 15, with at least one digit after
/// the point (`0.0`, `2.0`), scientific otherwise with a signed exponent of at least two digits
/// (`1e-05`, `1.5e+16`); `nan`, `inf`, `-inf`.
pub fn python_float(x: f64) -> String {
    if x.is_nan() {
        return "nan".into();
    }
    if x.is_infinite() {
        return if x > 0.0 { "inf" } else { "-inf" }.into();
    }
    let sign = if x.is_sign_negative() { "-" } else { "" };
    if x == 0.0 {
        return format!("{sign}0.0");
    }
    // Rust's `{:e}` prints the shortest round-trip digits, as Python's repr chooses them
    let sci = format!("{:e}", x.abs());
    let (mantissa, exponent) = sci.split_once('e').unwrap_or((&sci, "0"));
    let exponent: i32 = exponent.parse().unwrap_or(0);
    let digits: String = mantissa.chars().filter(|c| *c != '.').collect();
    if (-4..16).contains(&exponent) {
        let point = exponent + 1; // digits before the decimal point
        if point <= 0 {
            let zeros = "0".repeat((-point) as usize);
            format!("{sign}0.{zeros}{digits}")
        } else if point as usize >= digits.len() {
            let zeros = "0".repeat(point as usize - digits.len());
            format!("{sign}{digits}{zeros}.0")
        } else {
            let (int, frac) = digits.split_at(point as usize);
            format!("{sign}{int}.{frac}")
        }
    } else {
        let (first, rest) = digits.split_at(1);
        let mantissa = if rest.is_empty() {
            first.to_string()
        } else {
            format!("{first}.{rest}")
        };
        let esign = if exponent < 0 { '-' } else { '+' };
        format!("{sign}{mantissa}e{esign}{:02}", exponent.abs())
    }
}

/// A CSV field as written: unchanged unless it holds a comma, a double quote or a line break,
/// then in double quotes with its quotes doubled (RFC 4180; Python's `csv` module with
/// `QUOTE_MINIMAL` writes the same). face_recognition never quotes; for every file name without
/// those characters the output is the same.
pub fn csv_field(field: &str) -> Cow<'_, str> {
    if field.contains([',', '"', '\n', '\r']) {
        Cow::Owned(format!("\"{}\"", field.replace('"', "\"\"")))
    } else {
        Cow::Borrowed(field)
    }
}

/// The name face_recognition gives the person of a known photo: the file name without its last
/// extension, as Python's `os.path.splitext` cuts it (leading dots are not an extension:
/// `.hidden.jpg` → `.hidden`, `..jpg` → `..jpg`; `Ada.Lovelace.jpg` → `Ada.Lovelace`).
pub fn known_name(path: &Path) -> String {
    let base = path
        .file_name()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    match base.rfind('.') {
        // an extension only if something other than dots comes before the last dot
        Some(dot) if base[..dot].chars().any(|c| c != '.') => base[..dot].to_string(),
        _ => base,
    }
}

/// Whether face_recognition's commands take this file from a folder: its last extension is
/// jpg, jpeg or png, in any case. (face_recognition's pattern also takes names that merely
/// contain `.jpg`, such as `a.jpg.bak`; those are not photos and are left out here.)
pub fn is_image_name(path: &Path) -> bool {
    path.extension()
        .map(|e| e.to_string_lossy().to_ascii_lowercase())
        .is_some_and(|e| IMAGE_EXTENSIONS.contains(&e.as_str()))
}

/// The photos face_recognition's commands take from `dir`: its files (symbolic links followed)
/// with a jpg, jpeg or png extension ([`is_image_name`]), sorted by name so that the output
/// does not depend on the file system's order (face_recognition takes `os.listdir`'s).
pub fn image_files_in_folder(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if is_image_name(&path) && path.is_file() {
            files.push(path);
        }
    }
    files.sort();
    Ok(files)
}

/// A boolean option's value as face_recognition's command line (click's `BOOL` type) reads
/// it: `true`, `t`, `yes`, `y`, `on`, `1` or `false`, `f`, `no`, `n`, `off`, `0`, in any case,
/// surrounding spaces ignored.
pub fn parse_bool(value: &str) -> Result<bool, String> {
    match value.trim().to_ascii_lowercase().as_str() {
        "1" | "true" | "t" | "yes" | "y" | "on" => Ok(true),
        "0" | "false" | "f" | "no" | "n" | "off" => Ok(false),
        _ => Err(format!(
            "{value:?} is not a boolean: use true or false (also yes/no, on/off, 1/0)"
        )),
    }
}

/// Worker threads for face_recognition's `--cpus N`: N itself, or every core the system offers
/// for −1 (its "use all in system"). Zero and other negative numbers are refused, as its
/// process pool refuses them.
pub fn cpus_to_threads(cpus: i64) -> Result<usize, String> {
    match cpus {
        -1 => Ok(std::thread::available_parallelism().map_or(1, |n| n.get())),
        n if n >= 1 => Ok(usize::try_from(n).unwrap_or(usize::MAX)),
        n => Err(format!(
            "--cpus {n}: give a number of cores (1 or more), or -1 for all of them"
        )),
    }
}

/// The lines `face_recognition` prints for one unknown photo, given for each face found the
/// known people within the tolerance (name and distance, in the known people's order).
/// `show_distance` adds the third column (`None` where there is no distance).
pub fn recognition_lines(
    file: &str,
    faces: &[Vec<(&str, Option<f64>)>],
    show_distance: bool,
) -> String {
    let file = csv_field(file);
    let mut out = String::new();
    let mut line = |name: &str, distance: Option<f64>| {
        out.push_str(&file);
        out.push(',');
        out.push_str(&csv_field(name));
        if show_distance {
            out.push(',');
            match distance {
                Some(d) => out.push_str(&python_float(d)),
                None => out.push_str(PYTHON_NONE),
            }
        }
        out.push('\n');
    };
    if faces.is_empty() {
        line(NO_PERSONS_FOUND, None);
    }
    for matches in faces {
        if matches.is_empty() {
            line(UNKNOWN_PERSON, None);
        }
        for (name, distance) in matches {
            line(name, *distance);
        }
    }
    out
}

/// A face box as `face_detection` prints it: dlib's `(top, right, bottom, left)`, whole pixels,
/// right and bottom inclusive, trimmed to the `width`×`height` image as face_recognition's
/// `_trim_css_to_bounds` does (top and left at least 0, right at most `width`, bottom at most
/// `height`).
pub fn css_box(rect: &DRect, width: u32, height: u32) -> [i64; 4] {
    let px = |v: f64| v.round() as i64;
    [
        px(rect.top).max(0),
        px(rect.right).min(width as i64),
        px(rect.bottom).min(height as i64),
        px(rect.left).max(0),
    ]
}

/// face_recognition's `face_locations` tuple `(top, right, bottom, left)` for a detection in a
/// `width`×`height` photo: the box dlib's HOG detector would draw ([`dlib_box`], fitted to
/// dlib's boxes on the reference faces), trimmed as face_recognition trims it.
pub fn face_location(detection: &Detection, width: u32, height: u32) -> [i64; 4] {
    css_box(&dlib_box(detection), width, height)
}

/// One `face_detection` line: `FILE,top,right,bottom,left`.
pub fn detection_line(file: &str, css: [i64; 4]) -> String {
    let [top, right, bottom, left] = css;
    format!("{},{top},{right},{bottom},{left}\n", csv_field(file))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn floats_print_as_python_prints_them() {
        // each pair checked against CPython 3's repr()
        for (x, python) in [
            (0.0, "0.0"),
            (-0.0, "-0.0"),
            (2.0, "2.0"),
            (0.5, "0.5"),
            (0.2354740260232157, "0.2354740260232157"),
            (0.34573490066247703, "0.34573490066247703"),
            (0.1 + 0.2, "0.30000000000000004"),
            (0.0001, "0.0001"),
            (0.00001, "1e-05"),
            (0.000015, "1.5e-05"),
            (123456.789, "123456.789"),
            (1e15, "1000000000000000.0"),
            (1e16, "1e+16"),
            (1.5e16, "1.5e+16"),
            (1e100, "1e+100"),
            (-3.25e-7, "-3.25e-07"),
            (f64::NAN, "nan"),
            (f64::INFINITY, "inf"),
            (f64::NEG_INFINITY, "-inf"),
        ] {
            assert_eq!(python_float(x), python, "{x:e}");
        }
        // f32 distances widened to f64 print all of the f64's digits, as numpy's float64 would
        assert_eq!(python_float(0.6f32 as f64), "0.6000000238418579");
    }

    #[test]
    fn csv_fields_are_quoted_only_when_they_need_it() {
        assert_eq!(csv_field("unknown/obama.jpg"), "unknown/obama.jpg");
        assert_eq!(csv_field("a b.jpg"), "a b.jpg");
        assert_eq!(csv_field("Smith, John.jpg"), "\"Smith, John.jpg\"");
        assert_eq!(csv_field("say \"hi\".png"), "\"say \"\"hi\"\".png\"");
        assert_eq!(csv_field("two\nlines.png"), "\"two\nlines.png\"");
    }

    #[test]
    fn known_names_are_cut_as_os_path_splitext_cuts_them() {
        for (file, name) in [
            ("known/obama.jpg", "obama"),
            ("known/Ada.Lovelace.JPG", "Ada.Lovelace"),
            ("known/.hidden.png", ".hidden"),
            ("known/..jpg", "..jpg"),
            ("known/.jpg", ".jpg"),
            ("known/noext", "noext"),
            ("known/Jean Dupont.jpeg", "Jean Dupont"),
        ] {
            assert_eq!(known_name(Path::new(file)), name, "{file}");
        }
    }

    #[test]
    fn folders_give_jpeg_and_png_files_only() {
        for (file, taken) in [
            ("a.jpg", true),
            ("a.JPEG", true),
            ("a.Png", true),
            ("a.gif", false),
            ("a.jpg.bak", false),
            ("jpg", false),
        ] {
            assert_eq!(is_image_name(Path::new(file)), taken, "{file}");
        }
    }

    #[test]
    fn booleans_are_read_as_click_reads_them() {
        for yes in ["true", "True", "TRUE", "t", "yes", "Y", "on", "1", " true "] {
            assert_eq!(parse_bool(yes), Ok(true), "{yes}");
        }
        for no in ["false", "False", "f", "no", "N", "off", "0"] {
            assert_eq!(parse_bool(no), Ok(false), "{no}");
        }
        for bad in ["", "2", "maybe", "known/"] {
            assert!(parse_bool(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn cpus_minus_one_means_every_core() {
        assert_eq!(cpus_to_threads(1), Ok(1));
        assert_eq!(cpus_to_threads(3), Ok(3));
        assert!(cpus_to_threads(-1).unwrap() >= 1);
        assert!(cpus_to_threads(0).is_err());
        assert!(cpus_to_threads(-2).is_err());
    }

    #[test]
    fn folders_list_their_photos_in_name_order() {
        let dir = std::env::temp_dir().join(format!("likeness-compat-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("sub.jpg")).unwrap();
        for name in ["b.JPG", "a.png", "c.jpeg", "notes.txt", "d.jpg.bak"] {
            std::fs::write(dir.join(name), b"x").unwrap();
        }
        let files = image_files_in_folder(&dir).unwrap();
        let names: Vec<_> = files
            .iter()
            .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
            .collect();
        // a folder named like a photo is not one
        assert_eq!(names, ["a.png", "b.JPG", "c.jpeg"]);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn recognition_lines_match_face_recognition_byte_for_byte() {
        // expected lines as face_recognition 1.3.0 prints them
        let one = vec![vec![("obama", Some(0.0))]];
        assert_eq!(
            recognition_lines("unknown/obama.jpg", &one, false),
            "unknown/obama.jpg,obama\n"
        );
        assert_eq!(
            recognition_lines("unknown/obama.jpg", &one, true),
            "unknown/obama.jpg,obama,0.0\n"
        );
        // two faces: one matching two people, one nobody
        let two = vec![vec![("a", Some(0.25)), ("b", Some(0.5))], vec![]];
        assert_eq!(
            recognition_lines("g.png", &two, true),
            "g.png,a,0.25\ng.png,b,0.5\ng.png,unknown_person,None\n"
        );
        assert_eq!(
            recognition_lines("empty.png", &[], true),
            "empty.png,no_persons_found,None\n"
        );
        assert_eq!(
            recognition_lines("empty.png", &[], false),
            "empty.png,no_persons_found\n"
        );
        assert_eq!(
            recognition_lines("x,y.png", &[], false),
            "\"x,y.png\",no_persons_found\n"
        );
        // a face that failed --liveness: named spoof, no distance
        let spoof = vec![vec![(SPOOF, None)]];
        assert_eq!(
            recognition_lines("door.jpg", &spoof, true),
            "door.jpg,spoof,None\n"
        );
    }

    #[test]
    fn detection_boxes_are_trimmed_dlib_rectangles() {
        let rect = DRect {
            left: -3.4,
            top: 10.6,
            right: 120.2,
            bottom: 250.0,
        };
        // the right edge past the 100-px-wide image stops at 100, as face_recognition's does
        assert_eq!(css_box(&rect, 100, 300), [11, 100, 250, 0]);
        assert_eq!(
            detection_line("p.jpg", css_box(&rect, 100, 300)),
            "p.jpg,11,100,250,0\n"
        );
    }
}
