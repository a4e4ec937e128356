//! Labelled pair lists: LFW's `pairs.txt` and simple CSV files (`a,b,same`), and precomputed
//! embeddings keyed by image path.

use std::collections::BTreeMap;
use std::path::Path;

use crate::error::{LearnError, Result};

/// Two images (paths relative to an image root) and whether they show the same identity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pair {
    pub a: String,
    pub b: String,
    pub same: bool,
}

/// A pair list and, for LFW's files, the number of folds its header declares (the pairs then
/// come fold after fold, as the protocol requires).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PairList {
    pub pairs: Vec<Pair>,
    pub folds: Option<usize>,
}

/// LFW's image path for identity `name`, image `number` (1-based): `name/name_0001.jpg`.
pub fn lfw_path(name: &str, number: usize) -> String {
    format!("{name}/{name}_{number:04}.jpg")
}

/// Parses LFW's `pairs.txt` (or `pairsDevTrain.txt`): an optional header of one or two integers
/// (`folds pairs-per-half-fold`, or a count), then `name n1 n2` lines (same person) and
/// `name1 n1 name2 n2` lines (different people), separated by tabs or spaces.
pub fn parse_lfw(text: &str, source_name: &str) -> Result<PairList> {
    let text = without_bom(text);
    let mut pairs = Vec::new();
    let mut folds = None;
    let number = |s: &str, line: usize| -> Result<usize> {
        s.parse::<usize>().ok().filter(|&n| n > 0).ok_or_else(|| {
            LearnError::parse(source_name, line, format!("{s:?} is not an image number"))
        })
    };
    for (i, raw) in text.lines().enumerate() {
        let line = i + 1;
        let fields: Vec<&str> = raw.split_whitespace().collect();
        if fields.is_empty() {
            continue;
        }
        let header = pairs.is_empty()
            && folds.is_none()
            && fields.len() <= 2
            && fields.iter().all(|f| f.parse::<usize>().is_ok());
        if header {
            // "10 300": ten folds; a single count (pairsDevTrain.txt) names no folds.
            folds = Some(if fields.len() == 2 {
                number(fields[0], line)?
            } else {
                1
            });
            continue;
        }
        match fields.as_slice() {
            [name, n1, n2] => pairs.push(Pair {
                a: lfw_path(name, number(n1, line)?),
                b: lfw_path(name, number(n2, line)?),
                same: true,
            }),
            [name1, n1, name2, n2] => pairs.push(Pair {
                a: lfw_path(name1, number(n1, line)?),
                b: lfw_path(name2, number(n2, line)?),
                same: false,
            }),
            _ => {
                return Err(LearnError::parse(
                    source_name,
                    line,
                    format!(
                        "expected `name n1 n2` or `name1 n1 name2 n2`, found {} fields",
                        fields.len()
                    ),
                ));
            }
        }
    }
    if pairs.is_empty() {
        return Err(LearnError::Data(format!("{source_name}: no pairs")));
    }
    Ok(PairList { pairs, folds })
}

/// Reads a label: 1/0, true/false, yes/no (any case). Words like "same" are left out so
/// that a header `a,b,same` is not mistaken for a pair.
fn label(s: &str) -> Option<bool> {
    match s.trim().to_ascii_lowercase().as_str() {
        "1" | "true" | "yes" => Some(true),
        "0" | "false" | "no" => Some(false),
        _ => None,
    }
}

/// Text without a leading UTF-8 byte-order mark (Excel and Windows Notepad write one): left
/// in, it became part of the first image's name and that pair was silently lost.
fn without_bom(text: &str) -> &str {
    text.strip_prefix('\u{feff}').unwrap_or(text)
}

/// Splits one CSV line into fields (RFC 4180): a field in double quotes may hold commas and
/// doubled quotes (`"Smith, John.jpg"`, `"say ""hi"".jpg"`); unquoted fields are trimmed.
fn csv_fields(line: &str) -> std::result::Result<Vec<String>, String> {
    let mut fields = Vec::new();
    let mut chars = line.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| *c == ' ' || *c == '\t') {
            chars.next();
        }
        let mut field = String::new();
        if chars.peek() == Some(&'"') {
            chars.next();
            loop {
                match chars.next() {
                    Some('"') if chars.peek() == Some(&'"') => {
                        chars.next();
                        field.push('"');
                    }
                    Some('"') => break,
                    Some(c) => field.push(c),
                    None => return Err("a quoted field is not closed".into()),
                }
            }
            while chars.peek().is_some_and(|c| *c == ' ' || *c == '\t') {
                chars.next();
            }
            match chars.next() {
                None => {
                    fields.push(field);
                    return Ok(fields);
                }
                Some(',') => fields.push(field),
                Some(c) => return Err(format!("{c:?} after a quoted field")),
            }
        } else {
            loop {
                match chars.next() {
                    None => {
                        fields.push(field.trim().to_string());
                        return Ok(fields);
                    }
                    Some(',') => break,
                    Some(c) => field.push(c),
                }
            }
            fields.push(field.trim().to_string());
        }
    }
}

/// Whether the first row `fields` is a header: its label column is a word (letters, `_`,
/// `-`, spaces) and its image columns do not look like image paths (no `.` or `/`). A row of
/// image paths with a bad label is a bad row, not a header: taken for one, it was silently
/// dropped.
fn is_header(fields: &[String]) -> bool {
    let word = |f: &str| {
        !f.is_empty()
            && f.chars()
                .all(|c| c.is_alphabetic() || c == '_' || c == '-' || c == ' ')
    };
    let path_like = |f: &str| f.contains('.') || f.contains('/') || f.contains('\\');
    word(&fields[2]) && !path_like(&fields[0]) && !path_like(&fields[1])
}

/// Parses a CSV pair list `a,b,same`: one pair a line, an optional header line (see
/// [`is_header`]), blank lines and `#` comments skipped, fields optionally in double quotes,
/// a leading byte-order mark ignored.
pub fn parse_csv(text: &str, source_name: &str) -> Result<PairList> {
    let text = without_bom(text);
    let mut pairs = Vec::new();
    let mut first = true;
    for (i, raw) in text.lines().enumerate() {
        let line = i + 1;
        let trimmed = raw.trim();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        let fields =
            csv_fields(trimmed).map_err(|why| LearnError::parse(source_name, line, why))?;
        if fields.len() != 3 {
            return Err(LearnError::parse(
                source_name,
                line,
                format!("expected 3 fields `a,b,same`, found {}", fields.len()),
            ));
        }
        let was_first = std::mem::replace(&mut first, false);
        let Some(same) = label(&fields[2]) else {
            if was_first && is_header(&fields) {
                continue;
            }
            return Err(LearnError::parse(
                source_name,
                line,
                format!("{:?} is not a label (1/0, true/false, yes/no)", fields[2]),
            ));
        };
        if fields[0].is_empty() || fields[1].is_empty() {
            return Err(LearnError::parse(source_name, line, "empty image name"));
        }
        let [a, b, _] = <[String; 3]>::try_from(fields)
            .map_err(|_| LearnError::parse(source_name, line, "expected 3 fields `a,b,same`"))?;
        pairs.push(Pair { a, b, same });
    }
    if pairs.is_empty() {
        return Err(LearnError::Data(format!("{source_name}: no pairs")));
    }
    Ok(PairList { pairs, folds: None })
}

/// Reads a pair list, telling the formats apart by their first meaningful line: a comma makes
/// it CSV, anything else LFW.
pub fn read_pairs(path: &Path) -> Result<PairList> {
    let text = std::fs::read_to_string(path).map_err(|e| LearnError::io(path, e))?;
    let name = path.display().to_string();
    let first = without_bom(&text)
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty() && !l.starts_with('#'));
    match first {
        Some(l) if l.contains(',') => parse_csv(&text, &name),
        Some(_) => parse_lfw(&text, &name),
        None => Err(LearnError::Data(format!("{name}: no pairs"))),
    }
}

/// Precomputed embeddings, a JSON object `{"path/of/image.jpg": [v0, v1, …], …}`.
pub type EmbeddingMap = BTreeMap<String, Vec<f32>>;

/// Reads an [`EmbeddingMap`]; every vector must have the same, non-zero length.
pub fn read_embeddings(path: &Path) -> Result<EmbeddingMap> {
    let text = std::fs::read_to_string(path).map_err(|e| LearnError::io(path, e))?;
    let map: EmbeddingMap = serde_json::from_str(&text).map_err(|e| LearnError::json(path, e))?;
    let len = map.values().next().map_or(0, Vec::len);
    if let Some((k, v)) = map.iter().find(|(_, v)| v.len() != len || v.is_empty()) {
        return Err(LearnError::Data(format!(
            "{}: embedding of {k:?} has {} values, the first has {len} (all need the same, non-zero length)",
            path.display(),
            v.len()
        )));
    }
    for (k, v) in &map {
        likeness_nn::check_finite(
            format_args!("{}: the embedding of {k:?}", path.display()),
            v,
        )?;
    }
    Ok(map)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_byte_order_mark_does_not_eat_the_first_pair() {
        let list = parse_csv("\u{feff}a.jpg,b.jpg,1\nc.jpg,d.jpg,0\n", "p.csv").unwrap();
        assert_eq!(list.pairs.len(), 2);
        assert_eq!(list.pairs[0].a, "a.jpg");
        let lfw = parse_lfw("\u{feff}Abel 1 2\n", "pairs.txt").unwrap();
        assert_eq!(lfw.pairs[0].a, "Abel/Abel_0001.jpg");
    }

    #[test]
    fn a_bad_label_on_the_first_row_is_an_error_not_a_header() {
        let err = parse_csv("a.jpg,b.jpg,maybe\nc.jpg,d.jpg,1\n", "p.csv").unwrap_err();
        assert!(err.to_string().contains("line 1"), "{err}");
        assert!(err.to_string().contains("maybe"), "{err}");
        // A real header still is one.
        let list = parse_csv("left,right,same\nc.jpg,d.jpg,1\n", "p.csv").unwrap();
        assert_eq!(list.pairs.len(), 1);
    }

    #[test]
    fn quoted_fields_keep_their_commas_and_quotes() {
        let text = "\"Smith, John/1.jpg\",\"say \"\"hi\"\".jpg\", 1\n";
        let list = parse_csv(text, "p.csv").unwrap();
        assert_eq!(list.pairs[0].a, "Smith, John/1.jpg");
        assert_eq!(list.pairs[0].b, "say \"hi\".jpg");
        assert!(list.pairs[0].same);
        assert!(parse_csv("\"open,b.jpg,1\n", "p.csv").is_err());
    }

    #[test]
    fn lfw_three_and_four_column_lines() {
        let text = "2\t1\nAbel_Pacheco\t1\t4\nAbel_Pacheco 1 Jong_Thae_Hwa 2\n\n\
                    Zico\t2\t3\nA_B\t10\tC_D\t123\n";
        let list = parse_lfw(text, "pairs.txt").unwrap();
        assert_eq!(list.folds, Some(2));
        assert_eq!(list.pairs.len(), 4);
        assert_eq!(
            list.pairs[0],
            Pair {
                a: "Abel_Pacheco/Abel_Pacheco_0001.jpg".into(),
                b: "Abel_Pacheco/Abel_Pacheco_0004.jpg".into(),
                same: true
            }
        );
        assert_eq!(list.pairs[1].b, "Jong_Thae_Hwa/Jong_Thae_Hwa_0002.jpg");
        assert!(!list.pairs[1].same);
        assert_eq!(list.pairs[3].a, "A_B/A_B_0010.jpg");
        assert_eq!(list.pairs[3].b, "C_D/C_D_0123.jpg");
        // No header at all is fine too.
        assert_eq!(parse_lfw("X 1 2\n", "p").unwrap().folds, None);
    }

    #[test]
    fn lfw_errors_name_the_line() {
        let e = parse_lfw("10 300\nAbel 1 4\nAbel 1 x 2 3\n", "pairs.txt").unwrap_err();
        assert!(e.to_string().contains("pairs.txt, line 3"), "{e}");
        let e = parse_lfw("10 300\nAbel one 4\n", "pairs.txt").unwrap_err();
        assert!(
            e.to_string().contains("line 2") && e.to_string().contains("\"one\""),
            "{e}"
        );
        assert!(
            parse_lfw("10 300\n\n", "p").is_err(),
            "a header alone has no pairs"
        );
        assert!(parse_lfw("", "p").is_err());
    }

    #[test]
    fn csv_with_and_without_header() {
        let list = parse_csv(
            "a,b,same\nx.jpg, y.jpg ,1\n# note\nx.jpg,z.jpg,No\n",
            "l.csv",
        )
        .unwrap();
        assert_eq!(list.pairs.len(), 2);
        assert_eq!(list.pairs[0].b, "y.jpg");
        assert!(list.pairs[0].same && !list.pairs[1].same);
        assert_eq!(parse_csv("p,q,TRUE\n", "l").unwrap().pairs[0].a, "p");
        let e = parse_csv("a,b,same\nx,y,1\nx,y,maybe\n", "l.csv").unwrap_err();
        assert!(e.to_string().contains("l.csv, line 3"), "{e}");
        let e = parse_csv("x,y,1\nx,y\n", "l.csv").unwrap_err();
        assert!(e.to_string().contains("line 2"), "{e}");
        assert!(
            parse_csv("a,b,same\n", "l").is_err(),
            "header only: no pairs"
        );
        assert!(parse_csv("\n\n", "l").is_err());
    }

    #[test]
    fn read_pairs_tells_formats_apart_and_embeddings_are_checked() {
        let dir = std::env::temp_dir().join(format!("likeness-learn-pairs-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let csv = dir.join("p.csv");
        std::fs::write(&csv, "a.jpg,b.jpg,0\n").unwrap();
        assert!(!read_pairs(&csv).unwrap().pairs[0].same);
        let lfw = dir.join("pairs.txt");
        std::fs::write(&lfw, "1 1\nA 1 2\nA 1 B 1\n").unwrap();
        assert_eq!(read_pairs(&lfw).unwrap().pairs.len(), 2);
        let empty = dir.join("empty.txt");
        std::fs::write(&empty, "\n").unwrap();
        assert!(read_pairs(&empty).is_err());
        let emb = dir.join("e.json");
        std::fs::write(&emb, r#"{"a.jpg": [1, 2], "b.jpg": [3, 4]}"#).unwrap();
        assert_eq!(read_embeddings(&emb).unwrap()["b.jpg"], vec![3.0, 4.0]);
        std::fs::write(&emb, r#"{"a.jpg": [1, 2], "b.jpg": [3]}"#).unwrap();
        assert!(read_embeddings(&emb).is_err());
        std::fs::write(&emb, r#"{"a.jpg": [1, "#).unwrap();
        assert!(read_embeddings(&emb).is_err());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
