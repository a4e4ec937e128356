//! dlib's serialization format (`dlib/serialize.h`), as used by its `.dat` model files.
//!
//! dlib writes no header or schema: a file is the concatenation of each object's fields, so a
//! reader must know the object graph in advance. The primitives are:
//!
//! - integers: `pack_int`, a control byte (low nibble = number of magnitude bytes, bit 0x80 =
//!   negative) then the magnitude, little-endian. Zero is written as `01 00`.
//! - floating point: two integers, mantissa and exponent, value = mantissa · 2^exponent; the
//!   exponents 32000, 32001 and 32002-and-above mean +∞, −∞ and NaN (`float_details`).
//! - `bool`: one ASCII byte, `'1'` or `'0'`.
//! - strings: length, then the bytes.
//! - `std::vector`: length, then the elements.
//! - dense matrices: rows and columns (written negated by dlib ≥ 18), then the elements row by
//!   row as floating point.
//! - DNN tensors: a version (2), then n, k, nr, nc, then n·k·nr·nc raw little-endian `f32`.
//! - DNN alias tensors (views into a parameter tensor): a version (1), then n, k, nr, nc.
//!
//! [`Reader`] decodes these from a byte slice and reports the byte offset of anything corrupt
//! or truncated. [`read_resnet`] and [`read_shape_predictor`] build on it.

mod resnet;
mod shape_predictor;

pub use resnet::read_resnet;
pub use shape_predictor::read_shape_predictor;

use crate::error::{NnError, Result};

/// The format name in [`NnError::Malformed`] errors.
const FORMAT: &str = "dlib";

/// Exponents `float_details` reserves for non-finite values (`dlib/float_details.h`).
const EXPONENT_INF: i64 = 32000;
const EXPONENT_NEG_INF: i64 = 32001;

/// Version dlib writes before a DNN `resizable_tensor`: raw little-endian `f32` data.
const TENSOR_VERSION: i64 = 2;
/// Version dlib writes before a DNN `alias_tensor`.
const ALIAS_TENSOR_VERSION: i64 = 1;

/// Shape of a dlib DNN tensor: samples, channels (k), rows, columns.
pub type TensorShape = [usize; 4];

/// A cursor over dlib-serialized bytes. Every read either advances past a complete value or
/// fails with [`NnError::Malformed`] at the offset where the value starts.
#[derive(Debug, Clone)]
pub struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    /// A reader at the start of `bytes`.
    pub fn new(bytes: &'a [u8]) -> Self {
        Reader { bytes, pos: 0 }
    }

    /// The byte offset of the next read.
    pub fn offset(&self) -> usize {
        self.pos
    }

    /// Bytes not yet read.
    pub fn remaining(&self) -> usize {
        self.bytes.len() - self.pos
    }

    /// An error at byte `offset`.
    pub fn error_at(&self, offset: usize, message: impl Into<String>) -> NnError {
        NnError::malformed(FORMAT, offset as u64, message)
    }

    /// Fails unless every byte has been read.
    pub fn finish(&self) -> Result<()> {
        if self.remaining() != 0 {
            return Err(self.error_at(
                self.pos,
                format!("{} unexpected bytes after the end", self.remaining()),
            ));
        }
        Ok(())
    }

    /// The next `n` bytes.
    pub fn bytes(&mut self, n: usize) -> Result<&'a [u8]> {
        if n > self.remaining() {
            return Err(self.error_at(
                self.pos,
                format!("truncated: {n} bytes needed, {} remain", self.remaining()),
            ));
        }
        let out = &self.bytes[self.pos..self.pos + n];
        self.pos += n;
        Ok(out)
    }

    fn byte(&mut self) -> Result<u8> {
        Ok(self.bytes(1)?[0])
    }

    /// A `pack_int` integer of at most `max_bytes` magnitude bytes (the C++ type's size).
    fn packed(&mut self, max_bytes: usize) -> Result<i64> {
        let start = self.pos;
        let control = self.byte()?;
        let size = usize::from(control & 0x0f);
        if control & 0x70 != 0 || size > max_bytes {
            self.pos = start;
            return Err(self.error_at(
                start,
                format!("invalid integer control byte {control:#04x}"),
            ));
        }
        let magnitude = self
            .bytes(size)
            .map_err(|_| self.error_at(start, "truncated integer"))?;
        let mut value: u64 = 0;
        for (i, b) in magnitude.iter().enumerate() {
            value |= u64::from(*b) << (8 * i);
        }
        let value = i64::try_from(value)
            .map_err(|_| self.error_at(start, format!("integer {value} out of range")))?;
        Ok(if control & 0x80 != 0 { -value } else { value })
    }

    /// A signed integer (`int`, `long`, `int64`).
    pub fn int(&mut self) -> Result<i64> {
        self.packed(8)
    }

    /// A non-negative integer (a size, count or index).
    pub fn size(&mut self) -> Result<usize> {
        let start = self.pos;
        let v = self.int()?;
        usize::try_from(v).map_err(|_| self.error_at(start, format!("negative size {v}")))
    }

    /// An integer that must equal `expected` (a version number or a fixed hyperparameter);
    /// `what` names it in the error.
    pub fn expect_int(&mut self, expected: i64, what: &str) -> Result<()> {
        let start = self.pos;
        let v = self.int()?;
        if v != expected {
            return Err(NnError::Mismatch(format!(
                "{what} is {v} at byte {start}, expected {expected}"
            )));
        }
        Ok(())
    }

    /// A `float`/`double` as dlib writes it: mantissa (int64) and exponent (int16).
    pub fn float(&mut self) -> Result<f64> {
        let mantissa = self.packed(8)?;
        let exponent = self.packed(2)?;
        Ok(decode_float(mantissa, exponent))
    }

    /// A `bool`: the ASCII byte `'1'` or `'0'`.
    pub fn bool(&mut self) -> Result<bool> {
        let start = self.pos;
        match self.byte()? {
            b'1' => Ok(true),
            b'0' => Ok(false),
            other => Err(self.error_at(start, format!("invalid bool byte {other:#04x}"))),
        }
    }

    /// A `std::string`; dlib's own strings are ASCII, anything else is corruption.
    pub fn string(&mut self) -> Result<&'a str> {
        let start = self.pos;
        let len = self.size()?;
        let raw = self
            .bytes(len)
            .map_err(|_| self.error_at(start, format!("truncated string of {len} bytes")))?;
        std::str::from_utf8(raw).map_err(|_| self.error_at(start, "string is not UTF-8"))
    }

    /// A string that must equal `expected` (dlib's layer and object tags).
    pub fn expect_string(&mut self, expected: &str) -> Result<()> {
        let start = self.pos;
        let s = self.string()?;
        if s != expected {
            return Err(NnError::Mismatch(format!(
                "found `{}` at byte {start}, expected `{expected}`",
                s.escape_debug()
            )));
        }
        Ok(())
    }

    /// The length of a `std::vector` whose elements take at least `min_element_bytes` each;
    /// checked against what remains so a corrupt length cannot cause a huge allocation.
    pub fn vec_len(&mut self, min_element_bytes: usize) -> Result<usize> {
        let start = self.pos;
        let n = self.size()?;
        if n.saturating_mul(min_element_bytes) > self.remaining() {
            return Err(self.error_at(
                start,
                format!(
                    "truncated: a list of {n} elements cannot fit in the {} bytes that remain",
                    self.remaining()
                ),
            ));
        }
        Ok(n)
    }

    /// A dense `matrix<float>`: its (rows, columns) and values, row-major.
    pub fn matrix(&mut self) -> Result<(usize, usize, Vec<f32>)> {
        let start = self.pos;
        // dlib >= 18 writes the dimensions negated; older files wrote them as is.
        let rows = self.int()?.unsigned_abs();
        let cols = self.int()?.unsigned_abs();
        let n = rows
            .checked_mul(cols)
            .and_then(|n| usize::try_from(n).ok())
            .filter(|n| n.saturating_mul(2) <= self.remaining())
            .ok_or_else(|| {
                self.error_at(
                    start,
                    format!("truncated or corrupt: a {rows}x{cols} matrix does not fit"),
                )
            })?;
        let data = (0..n)
            .map(|_| self.float().map(|v| v as f32))
            .collect::<Result<Vec<_>>>()?;
        Ok((rows as usize, cols as usize, data))
    }

    fn shape4(&mut self) -> Result<TensorShape> {
        let mut shape = [0usize; 4];
        for d in &mut shape {
            *d = self.size()?;
        }
        Ok(shape)
    }

    /// A DNN `resizable_tensor`: its shape and raw `f32` values.
    pub fn tensor(&mut self) -> Result<(TensorShape, Vec<f32>)> {
        let start = self.pos;
        let version = self.int()?;
        if version != TENSOR_VERSION {
            return Err(self.error_at(start, format!("unsupported tensor version {version}")));
        }
        let shape = self.shape4()?;
        let n = shape
            .iter()
            .try_fold(1usize, |acc, &d| acc.checked_mul(d))
            .filter(|n| n.saturating_mul(4) <= self.remaining())
            .ok_or_else(|| {
                self.error_at(
                    start,
                    format!(
                        "truncated or corrupt: a tensor of shape {shape:?} needs more than the {} bytes that remain",
                        self.remaining()
                    ),
                )
            })?;
        let raw = self.bytes(n * 4)?;
        let data = raw
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect();
        Ok((shape, data))
    }

    /// A DNN `alias_tensor`: only a shape.
    pub fn alias_tensor(&mut self) -> Result<TensorShape> {
        let start = self.pos;
        let version = self.int()?;
        if version != ALIAS_TENSOR_VERSION {
            return Err(self.error_at(start, format!("unsupported alias tensor version {version}")));
        }
        self.shape4()
    }
}

/// mantissa · 2^exponent, with `float_details`' codes for non-finite values.
fn decode_float(mantissa: i64, exponent: i64) -> f64 {
    match exponent {
        EXPONENT_INF => f64::INFINITY,
        EXPONENT_NEG_INF => f64::NEG_INFINITY,
        e if e > EXPONENT_NEG_INF => f64::NAN,
        // Two steps, so that a large mantissa with a very negative exponent does not go
        // through an intermediate power of two that underflows (or overflows) on its own.
        e => {
            let half = (e / 2) as i32;
            (mantissa as f64) * 2f64.powi(half) * 2f64.powi(e as i32 - half)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pack_int_decodes_hand_made_bytes() {
        // 0 is one zero byte; 300 = 0x012c little-endian; −5; 2^40 in 6 bytes.
        let bytes = [
            0x01, 0x00, 0x02, 0x2c, 0x01, 0x81, 0x05, 0x06, 0, 0, 0, 0, 0, 1,
        ];
        let mut r = Reader::new(&bytes);
        assert_eq!(r.int().unwrap(), 0);
        assert_eq!(r.int().unwrap(), 300);
        assert_eq!(r.int().unwrap(), -5);
        assert_eq!(r.int().unwrap(), 1i64 << 40);
        r.finish().unwrap();
    }

    #[test]
    fn pack_int_rejects_bad_control_bytes_and_truncation_with_the_offset() {
        // Nine magnitude bytes cannot come from a 64-bit integer.
        let err = Reader::new(&[0x09, 0, 0, 0, 0, 0, 0, 0, 0, 1])
            .int()
            .unwrap_err();
        assert!(err.to_string().contains("byte 0"), "{err}");
        let mut r = Reader::new(&[0x01, 0x07, 0x31]);
        r.int().unwrap();
        let err = r.int().unwrap_err().to_string();
        assert!(err.contains("byte 2") && err.contains("control"), "{err}");
        let mut r = Reader::new(&[0x01, 0x07, 0x03, 0xaa, 0xbb]);
        r.int().unwrap();
        let err = r.int().unwrap_err().to_string();
        assert!(err.contains("byte 2") && err.contains("truncated"), "{err}");
        let err = Reader::new(&[0x81, 0x01]).size().unwrap_err().to_string();
        assert!(err.contains("negative"), "{err}");
    }

    #[test]
    fn floats_decode_mantissa_times_two_to_the_exponent() {
        // The bytes of loss_metric's margin and threshold in dlib's face model:
        // 0xa3d70a · 2^-28 = 0.04 (as f32), 0x99999a · 2^-24 = 0.6 (as f32);
        // 1.0 as a double is 16 · 2^-4; 0.0 is 0 · 2^11; −3.5 is −7 · 2^-1.
        let bytes = [
            0x03, 0x0a, 0xd7, 0xa3, 0x81, 0x1c, //
            0x03, 0x9a, 0x99, 0x99, 0x81, 0x18, //
            0x01, 0x10, 0x81, 0x04, //
            0x01, 0x00, 0x01, 0x0b, //
            0x81, 0x07, 0x81, 0x01,
        ];
        let mut r = Reader::new(&bytes);
        assert_eq!(r.float().unwrap() as f32, 0.04f32);
        assert_eq!(r.float().unwrap() as f32, 0.6f32);
        assert_eq!(r.float().unwrap(), 1.0);
        assert_eq!(r.float().unwrap(), 0.0);
        assert_eq!(r.float().unwrap(), -3.5);
        r.finish().unwrap();
    }

    #[test]
    fn floats_decode_the_non_finite_codes() {
        // exponent 32000 = 0x7d00, 32001, 32002.
        let bytes = [
            0x01, 0x00, 0x02, 0x00, 0x7d, //
            0x01, 0x00, 0x02, 0x01, 0x7d, //
            0x01, 0x00, 0x02, 0x02, 0x7d,
        ];
        let mut r = Reader::new(&bytes);
        assert_eq!(r.float().unwrap(), f64::INFINITY);
        assert_eq!(r.float().unwrap(), f64::NEG_INFINITY);
        assert!(r.float().unwrap().is_nan());
        // An exponent is an int16: three magnitude bytes are corrupt.
        assert!(Reader::new(&[0x01, 0x01, 0x03, 0, 0, 1]).float().is_err());
    }

    #[test]
    fn strings_bools_tensors_and_matrices() {
        let mut bytes = vec![0x01, 0x03, b'a', b'b', b'c', b'1', b'0'];
        // tensor version 2, shape 1x2x1x1, values 1.5 and -2.
        bytes.extend([0x01, 0x02, 0x01, 0x01, 0x01, 0x02, 0x01, 0x01, 0x01, 0x01]);
        bytes.extend(1.5f32.to_le_bytes());
        bytes.extend((-2f32).to_le_bytes());
        // matrix -2 x -1 (dlib's negated dimensions): 0.5 = 1 · 2^-1, 3 = 3 · 2^0.
        bytes.extend([
            0x81, 0x02, 0x81, 0x01, 0x01, 0x01, 0x81, 0x01, 0x01, 0x03, 0x01, 0x00,
        ]);
        let mut r = Reader::new(&bytes);
        assert_eq!(r.string().unwrap(), "abc");
        assert!(r.bool().unwrap());
        assert!(!r.bool().unwrap());
        assert_eq!(r.tensor().unwrap(), ([1, 2, 1, 1], vec![1.5, -2.0]));
        assert_eq!(r.matrix().unwrap(), (2, 1, vec![0.5, 3.0]));
        r.finish().unwrap();
        assert!(Reader::new(b"x").bool().is_err());
        // A string claiming more bytes than there are.
        let err = Reader::new(&[0x01, 0x09, b'a']).string().unwrap_err();
        assert!(err.to_string().contains("byte 0"), "{err}");
    }

    #[test]
    fn a_tensor_larger_than_the_input_is_refused_before_allocating() {
        // 2^40 x 2^20 x 1 x 1 values.
        let bytes = [
            0x01, 0x02, 0x06, 0, 0, 0, 0, 0, 1, 0x03, 0, 0, 0x10, 0x01, 0x01, 0x01, 0x01,
        ];
        let err = Reader::new(&bytes).tensor().unwrap_err().to_string();
        assert!(err.contains("byte 0") && err.contains("truncated"), "{err}");
        let mut r = Reader::new(&[0x02, 0xff, 0xff, 0x00]);
        assert!(r.vec_len(1).is_err());
    }
}
