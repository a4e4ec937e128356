//! A minimal protobuf wire-format reader: enough to walk ONNX models without generated code.

use crate::error::{NnError, Result};

/// One field of a message: its number and its value as read from the wire.
#[derive(Debug, Clone, Copy)]
pub enum Value<'a> {
    Varint(u64),
    Fixed64(u64),
    Bytes(&'a [u8]),
    Fixed32(u32),
}

/// Iterates over the fields of one message, tracking absolute byte offsets for errors.
pub struct Fields<'a> {
    buf: &'a [u8],
    pos: usize,
    base: u64,
    format: &'static str,
}

impl<'a> Fields<'a> {
    /// Fields of `buf`, which starts at absolute offset `base` in the file.
    pub fn new(buf: &'a [u8], base: u64, format: &'static str) -> Self {
        Fields {
            buf,
            pos: 0,
            base,
            format,
        }
    }

    /// The absolute offset of the next byte.
    pub fn offset(&self) -> u64 {
        self.base + self.pos as u64
    }

    fn err(&self, message: &str) -> NnError {
        NnError::malformed(self.format, self.offset(), message)
    }

    fn varint(&mut self) -> Result<u64> {
        let mut value = 0u64;
        for shift in (0..70).step_by(7) {
            let byte = *self
                .buf
                .get(self.pos)
                .ok_or_else(|| self.err("truncated varint"))?;
            self.pos += 1;
            if shift == 63 && byte > 1 {
                return Err(self.err("varint overflows 64 bits"));
            }
            value |= u64::from(byte & 0x7f) << shift;
            if byte & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err(self.err("varint too long"))
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8]> {
        let end = self.pos.checked_add(n).filter(|&e| e <= self.buf.len());
        let end = end.ok_or_else(|| self.err(&format!("field of {n} bytes runs past the end")))?;
        let s = &self.buf[self.pos..end];
        self.pos = end;
        Ok(s)
    }

    /// The next field as (number, value, absolute offset of the value), or None at the end.
    pub fn next_field(&mut self) -> Result<Option<(u32, Value<'a>, u64)>> {
        if self.pos >= self.buf.len() {
            return Ok(None);
        }
        let key = self.varint()?;
        let number = (key >> 3) as u32;
        if number == 0 {
            return Err(self.err("field number 0"));
        }
        let at = self.offset();
        let value = match key & 7 {
            0 => Value::Varint(self.varint()?),
            1 => Value::Fixed64(u64::from_le_bytes(
                self.take(8)?.try_into().unwrap_or([0; 8]),
            )),
            2 => {
                let n = self.varint()?;
                let n = usize::try_from(n).map_err(|_| self.err("length too large"))?;
                let at = self.offset();
                return Ok(Some((number, Value::Bytes(self.take(n)?), at)));
            }
            5 => Value::Fixed32(u32::from_le_bytes(
                self.take(4)?.try_into().unwrap_or([0; 4]),
            )),
            w => return Err(self.err(&format!("unsupported wire type {w}"))),
        };
        Ok(Some((number, value, at)))
    }
}

/// Decodes a packed or single varint field into `out` (repeated int64 fields come either way).
pub fn push_varints(
    value: Value<'_>,
    at: u64,
    format: &'static str,
    out: &mut Vec<i64>,
) -> Result<()> {
    match value {
        Value::Varint(v) => out.push(v as i64),
        Value::Bytes(b) => {
            let mut f = Fields::new(b, at, format);
            while f.pos < b.len() {
                out.push(f.varint()? as i64);
            }
        }
        _ => return Err(NnError::malformed(format, at, "expected an integer field")),
    }
    Ok(())
}

/// Decodes a packed or single f32 field into `out`.
pub fn push_floats(
    value: Value<'_>,
    at: u64,
    format: &'static str,
    out: &mut Vec<f32>,
) -> Result<()> {
    match value {
        Value::Fixed32(v) => out.push(f32::from_bits(v)),
        Value::Bytes(b) if b.len() % 4 == 0 => out.extend(
            b.chunks_exact(4)
                .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])),
        ),
        _ => return Err(NnError::malformed(format, at, "expected a float field")),
    }
    Ok(())
}

/// A length-delimited field as UTF-8 text.
pub fn string<'a>(value: Value<'a>, at: u64, format: &'static str) -> Result<&'a str> {
    match value {
        Value::Bytes(b) => std::str::from_utf8(b)
            .map_err(|_| NnError::malformed(format, at, "string is not UTF-8")),
        _ => Err(NnError::malformed(format, at, "expected a string")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_varint_bytes_and_fixed32_fields() {
        // field 1 varint 300; field 2 bytes "hi"; field 3 fixed32 1.5f
        let mut buf = vec![0x08, 0xac, 0x02, 0x12, 0x02, b'h', b'i', 0x1d];
        buf.extend(1.5f32.to_le_bytes());
        let mut f = Fields::new(&buf, 0, "test");
        let (n, v, _) = f.next_field().unwrap().unwrap();
        assert!(n == 1 && matches!(v, Value::Varint(300)));
        let (n, v, at) = f.next_field().unwrap().unwrap();
        assert_eq!((n, string(v, at, "test").unwrap(), at), (2, "hi", 5));
        let (n, v, _) = f.next_field().unwrap().unwrap();
        assert!(n == 3 && matches!(v, Value::Fixed32(b) if f32::from_bits(b) == 1.5));
        assert!(f.next_field().unwrap().is_none());
    }

    #[test]
    fn truncation_reports_the_offset() {
        let buf = [0x12, 0x05, b'a', b'b'];
        let err = Fields::new(&buf, 100, "test")
            .next_field()
            .unwrap_err()
            .to_string();
        assert!(err.contains("byte 102"), "{err}");
    }
}
