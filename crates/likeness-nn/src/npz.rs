//! numpy `.npy` / `.npz` reading: reference values for tests and benchmarks.
//!
//! Only what numpy writes for plain arrays: little-endian f4/f8/u1/i1/u2/i2/i4/u4/i8/u8/b1, C order.

use std::io::Read;
use std::path::Path;

use crate::error::{NnError, Result};

/// An array read from an `.npy`, with its values widened for convenience.
#[derive(Debug, Clone, PartialEq)]
pub struct NpyArray {
    pub shape: Vec<usize>,
    /// The dtype as numpy wrote it, e.g. `<f4`.
    pub descr: String,
    /// The values as f64 (exact for every supported dtype but i8 beyond 2^53).
    pub values: Vec<f64>,
}

impl NpyArray {
    /// The values as f32.
    pub fn to_f32(&self) -> Vec<f32> {
        self.values.iter().map(|&v| v as f32).collect()
    }

    /// The values as u8 (saturating).
    pub fn to_u8(&self) -> Vec<u8> {
        self.values
            .iter()
            .map(|&v| v.clamp(0.0, 255.0) as u8)
            .collect()
    }

    /// The single value of a 0-d or 1-element array.
    pub fn scalar(&self) -> Option<f64> {
        (self.values.len() == 1).then(|| self.values[0])
    }
}

/// Parses one `.npy` file's bytes.
pub fn parse_npy(bytes: &[u8]) -> Result<NpyArray> {
    let bad = |offset: usize, m: &str| NnError::malformed("npy", offset as u64, m);
    if bytes.len() < 10 || &bytes[..6] != b"\x93NUMPY" {
        return Err(bad(0, "not an .npy (magic)"));
    }
    let (header_len, start) = match bytes[6] {
        1 => (u16::from_le_bytes([bytes[8], bytes[9]]) as usize, 10),
        2 | 3 if bytes.len() >= 12 => (
            u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]) as usize,
            12,
        ),
        v => return Err(bad(6, &format!("unsupported version {v}"))),
    };
    let header = bytes
        .get(start..start + header_len)
        .ok_or_else(|| bad(start, "header runs past the end"))?;
    let header = std::str::from_utf8(header).map_err(|_| bad(start, "header is not text"))?;
    let field = |key: &str| -> Option<&str> {
        let at = header.find(&format!("'{key}':"))? + key.len() + 3;
        Some(header[at..].trim_start())
    };
    let descr = field("descr")
        .and_then(|s| s.strip_prefix('\''))
        .and_then(|s| s.split('\'').next())
        .ok_or_else(|| bad(start, "no descr"))?
        .to_string();
    if field("fortran_order").is_some_and(|s| s.starts_with("True")) {
        return Err(bad(start, "Fortran order is not supported"));
    }
    let shape_text = field("shape")
        .and_then(|s| s.strip_prefix('('))
        .and_then(|s| s.split(')').next())
        .ok_or_else(|| bad(start, "no shape"))?;
    let shape = shape_text
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| s.parse::<usize>().map_err(|_| bad(start, "bad shape")))
        .collect::<Result<Vec<_>>>()?;
    let n: usize = shape.iter().product();
    let body = &bytes[start + header_len..];
    let width = match descr.as_str() {
        "<f4" | "<i4" | "<u4" => 4,
        "<f8" | "<i8" | "<u8" => 8,
        "<i2" | "<u2" => 2,
        "|u1" | "|i1" | "|b1" => 1,
        d => return Err(bad(start, &format!("unsupported dtype {d}"))),
    };
    if body.len() < n * width {
        return Err(bad(
            start + header_len,
            &format!("needs {} data bytes, has {}", n * width, body.len()),
        ));
    }
    let values = body[..n * width]
        .chunks_exact(width)
        .map(|c| match descr.as_str() {
            "<f4" => f32::from_le_bytes([c[0], c[1], c[2], c[3]]) as f64,
            "<i2" => i16::from_le_bytes([c[0], c[1]]) as f64,
            "<u2" => u16::from_le_bytes([c[0], c[1]]) as f64,
            "<i4" => i32::from_le_bytes([c[0], c[1], c[2], c[3]]) as f64,
            "<u4" => u32::from_le_bytes([c[0], c[1], c[2], c[3]]) as f64,
            "<f8" => f64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]),
            "<i8" => i64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]) as f64,
            "<u8" => u64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]) as f64,
            "|i1" => c[0] as i8 as f64,
            _ => c[0] as f64,
        })
        .collect();
    Ok(NpyArray {
        shape,
        descr,
        values,
    })
}

/// All arrays of an `.npz`, by name (without the `.npy` suffix).
pub fn read_npz(path: &Path) -> Result<std::collections::BTreeMap<String, NpyArray>> {
    let file = std::fs::File::open(path).map_err(|e| NnError::io(path, e))?;
    let mut zip = zip::ZipArchive::new(file)
        .map_err(|e| NnError::malformed("npz", 0, format!("{}: {e}", path.display())))?;
    let mut out = std::collections::BTreeMap::new();
    for i in 0..zip.len() {
        let mut entry = zip
            .by_index(i)
            .map_err(|e| NnError::malformed("npz", 0, format!("{}: {e}", path.display())))?;
        let name = entry
            .name()
            .map_err(|e| NnError::malformed("npz", 0, format!("{}: {e}", path.display())))?
            .trim_end_matches(".npy")
            .to_string();
        let mut bytes = Vec::new();
        entry
            .read_to_end(&mut bytes)
            .map_err(|e| NnError::io(path, e))?;
        out.insert(name, parse_npy(&bytes)?);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn npy(descr: &str, shape: &str, data: &[u8]) -> Vec<u8> {
        let mut header =
            format!("{{'descr': '{descr}', 'fortran_order': False, 'shape': {shape}, }}");
        while (10 + header.len() + 1) % 64 != 0 {
            header.push(' ');
        }
        header.push('\n');
        let mut v = b"\x93NUMPY\x01\x00".to_vec();
        v.extend((header.len() as u16).to_le_bytes());
        v.extend(header.as_bytes());
        v.extend(data);
        v
    }

    #[test]
    fn reads_f4_matrix_and_scalar() {
        let data: Vec<u8> = [1.5f32, -2.0, 3.0, 4.25, 5.0, 6.0]
            .iter()
            .flat_map(|v| v.to_le_bytes())
            .collect();
        let a = parse_npy(&npy("<f4", "(2, 3)", &data)).unwrap();
        assert_eq!(a.shape, vec![2, 3]);
        assert_eq!(a.to_f32(), vec![1.5, -2.0, 3.0, 4.25, 5.0, 6.0]);
        let s = parse_npy(&npy("<f8", "()", &7.25f64.to_le_bytes())).unwrap();
        assert_eq!(s.scalar(), Some(7.25));
    }

    #[test]
    fn short_data_is_an_error() {
        assert!(parse_npy(&npy("<f4", "(4,)", &[0u8; 8])).is_err());
        assert!(parse_npy(b"not numpy at all").is_err());
    }
}
