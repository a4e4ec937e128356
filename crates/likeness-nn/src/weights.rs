//! Named f32 tensors: what every importer produces and every network loads.
//!
//! On disk this is safetensors (the model cache's one format). Names follow the PyTorch habit,
//! `layer.index.weight`, and each network documents the names it reads.

use std::collections::BTreeMap;
use std::path::Path;

use burn::module::Param;
use burn::tensor::{Device, Tensor, TensorData};
use safetensors::tensor::{Dtype, SafeTensors, TensorView};

use crate::error::{NnError, Result};

/// One tensor: its shape and its values, row-major.
#[derive(Debug, Clone, PartialEq)]
pub struct WeightTensor {
    pub shape: Vec<usize>,
    pub data: Vec<f32>,
}

/// A network's weights by name, plus free-form string metadata (source, licence...).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct WeightMap {
    tensors: BTreeMap<String, WeightTensor>,
    metadata: BTreeMap<String, String>,
}

impl WeightMap {
    /// An empty map.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a tensor; its data must have as many values as its shape says, all finite.
    pub fn insert(
        &mut self,
        name: impl Into<String>,
        shape: Vec<usize>,
        data: Vec<f32>,
    ) -> Result<()> {
        let name = name.into();
        let n: usize = shape.iter().product();
        if n != data.len() {
            return Err(NnError::Mismatch(format!(
                "tensor `{name}` has shape {shape:?} ({n} values) but {} values were given",
                data.len()
            )));
        }
        // Every importer and every load goes through here: a NaN weight would make every
        // output NaN (0 faces found, "different: distance NaN").
        crate::error::check_finite(format_args!("tensor `{name}`"), &data)?;
        self.tensors.insert(name, WeightTensor { shape, data });
        Ok(())
    }

    /// The tensor called `name`.
    pub fn get(&self, name: &str) -> Result<&WeightTensor> {
        self.tensors
            .get(name)
            .ok_or_else(|| NnError::MissingTensor(name.to_string()))
    }

    /// The tensor called `name`, which must have exactly `shape`.
    pub fn expect(&self, name: &str, shape: &[usize]) -> Result<&WeightTensor> {
        let t = self.get(name)?;
        if t.shape != shape {
            return Err(NnError::Shape {
                name: name.to_string(),
                expected: shape.to_vec(),
                got: t.shape.clone(),
            });
        }
        Ok(t)
    }

    /// The tensor called `name` as a burn tensor of `shape` on `device`.
    pub fn tensor<const D: usize>(
        &self,
        name: &str,
        shape: [usize; D],
        device: &Device,
    ) -> Result<Tensor<D>> {
        let t = self.expect(name, &shape)?;
        Ok(Tensor::from_data(
            TensorData::new(t.data.clone(), shape),
            device,
        ))
    }

    /// The tensor called `name` as a module parameter.
    pub fn param<const D: usize>(
        &self,
        name: &str,
        shape: [usize; D],
        device: &Device,
    ) -> Result<Param<Tensor<D>>> {
        Ok(Param::from_tensor(self.tensor(name, shape, device)?))
    }

    /// Tensor names, sorted.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.tensors.keys().map(String::as_str)
    }

    /// Iterates over (name, tensor), sorted by name.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &WeightTensor)> {
        self.tensors.iter().map(|(k, v)| (k.as_str(), v))
    }

    /// Number of tensors.
    pub fn len(&self) -> usize {
        self.tensors.len()
    }

    /// True when there are no tensors.
    pub fn is_empty(&self) -> bool {
        self.tensors.is_empty()
    }

    /// Total number of values over all tensors.
    pub fn num_values(&self) -> usize {
        self.tensors.values().map(|t| t.data.len()).sum()
    }

    /// Sets a metadata entry (kept in the safetensors header).
    pub fn set_meta(&mut self, key: impl Into<String>, value: impl Into<String>) {
        self.metadata.insert(key.into(), value.into());
    }

    /// A metadata entry.
    pub fn meta(&self, key: &str) -> Option<&str> {
        self.metadata.get(key).map(String::as_str)
    }

    /// Serialises to safetensors bytes.
    pub fn to_safetensors(&self) -> Result<Vec<u8>> {
        let bytes: Vec<(String, Vec<usize>, Vec<u8>)> = self
            .tensors
            .iter()
            .map(|(k, t)| {
                let raw = t.data.iter().flat_map(|v| v.to_le_bytes()).collect();
                (k.clone(), t.shape.clone(), raw)
            })
            .collect();
        let views = bytes
            .iter()
            .map(|(k, shape, raw)| {
                TensorView::new(Dtype::F32, shape.clone(), raw)
                    .map(|v| (k.clone(), v))
                    .map_err(|e| NnError::Mismatch(format!("tensor `{k}`: {e}")))
            })
            .collect::<Result<Vec<_>>>()?;
        let meta = (!self.metadata.is_empty()).then(|| self.metadata.clone().into_iter().collect());
        let mut bytes =
            safetensors::serialize(views, meta).map_err(|e| NnError::Mismatch(e.to_string()))?;
        sort_header(&mut bytes)?;
        Ok(bytes)
    }

    /// Parses safetensors bytes. Only f32 tensors are accepted (f16/bf16/f64 are converted).
    pub fn from_safetensors(bytes: &[u8]) -> Result<Self> {
        let st = SafeTensors::deserialize(bytes)
            .map_err(|e| NnError::malformed("safetensors", 0, e.to_string()))?;
        let mut map = WeightMap::new();
        if let Ok((_, header)) = SafeTensors::read_metadata(bytes)
            && let Some(meta) = header.metadata()
        {
            for (k, v) in meta {
                map.set_meta(k.clone(), v.clone());
            }
        }
        for (name, view) in st.tensors() {
            let data = decode_floats(view.dtype(), view.data()).ok_or_else(|| {
                NnError::Mismatch(format!(
                    "tensor `{name}` has unsupported dtype {:?}",
                    view.dtype()
                ))
            })?;
            map.insert(name, view.shape().to_vec(), data)?;
        }
        Ok(map)
    }

    /// Reads a safetensors file.
    pub fn load(path: &Path) -> Result<Self> {
        let bytes = std::fs::read(path).map_err(|e| NnError::io(path, e))?;
        Self::from_safetensors(&bytes).map_err(|e| match e {
            NnError::Malformed {
                format,
                offset,
                message,
            } => NnError::Malformed {
                format,
                offset,
                message: format!("{}: {message}", path.display()),
            },
            other => other,
        })
    }

    /// Writes a safetensors file atomically: a temporary file beside it, then a rename, so a
    /// killed process never leaves a half-written model behind.
    pub fn save(&self, path: &Path) -> Result<()> {
        let bytes = self.to_safetensors()?;
        write_atomic(path, &bytes)
    }
}

/// Rewrites a safetensors header in place with its keys sorted. The safetensors crate takes the
/// metadata as a `HashMap`, so the same map can come out in any order; sorted, a saved file is a
/// function of its contents alone (a model imported twice is the same bytes, and has the same
/// SHA-256 in the cache's manifest). Same JSON, so the same length: offsets stay valid.
fn sort_header(bytes: &mut [u8]) -> Result<()> {
    let bad = |why: String| NnError::Mismatch(format!("safetensors header we wrote: {why}"));
    let len = bytes
        .first_chunk::<8>()
        .map(|n| u64::from_le_bytes(*n) as usize)
        .ok_or_else(|| bad("shorter than 8 bytes".into()))?;
    let header = bytes
        .get_mut(8..8 + len)
        .ok_or_else(|| bad(format!("length {len} past the end")))?;
    // serde_json's map is ordered by key (its `preserve_order` feature is off).
    let value: serde_json::Value =
        serde_json::from_slice(header).map_err(|e| bad(e.to_string()))?;
    let sorted = serde_json::to_vec(&value).map_err(|e| bad(e.to_string()))?;
    if sorted.len() > len {
        return Err(bad(format!("{} bytes sorted, {len} before", sorted.len())));
    }
    let (text, padding) = header.split_at_mut(sorted.len());
    text.copy_from_slice(&sorted);
    // safetensors pads the header to a multiple of 8 bytes with spaces.
    padding.fill(b' ');
    Ok(())
}

/// Writes `bytes` to `path` atomically with the project's one writer
/// ([`likeness_fs::write_atomic`]: exclusive unpredictable temporary, no links followed,
/// non-regular and read-only targets refused, mode and owner kept, fsynced).
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    Ok(likeness_fs::write_atomic(path, bytes)?)
}

fn decode_floats(dtype: Dtype, raw: &[u8]) -> Option<Vec<f32>> {
    Some(match dtype {
        Dtype::F32 => raw
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect(),
        Dtype::F64 => raw
            .chunks_exact(8)
            .map(|c| f64::from_le_bytes(c.try_into().unwrap_or([0; 8])) as f32)
            .collect(),
        Dtype::F16 => raw
            .chunks_exact(2)
            .map(|c| burn::tensor::f16::from_le_bytes([c[0], c[1]]).to_f32())
            .collect(),
        Dtype::BF16 => raw
            .chunks_exact(2)
            .map(|c| burn::tensor::bf16::from_le_bytes([c[0], c[1]]).to_f32())
            .collect(),
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn safetensors_round_trip_keeps_values_shapes_and_metadata() {
        let mut w = WeightMap::new();
        w.insert(
            "a.weight",
            vec![2, 3],
            vec![1.0, -2.0, 3.5, 0.0, 1e-7, -1e7],
        )
        .unwrap();
        w.insert("b", vec![1], vec![42.0]).unwrap();
        w.set_meta("source", "test");
        let back = WeightMap::from_safetensors(&w.to_safetensors().unwrap()).unwrap();
        assert_eq!(back, w);
    }

    #[test]
    fn the_same_map_is_always_the_same_bytes() {
        // Several metadata keys: in safetensors' HashMap their order differs between maps.
        let mut w = WeightMap::new();
        w.insert("w", vec![2], vec![1.0, 2.0]).unwrap();
        for k in 0..12 {
            w.set_meta(format!("key{k}"), format!("value {k}"));
        }
        let first = w.to_safetensors().unwrap();
        for _ in 0..5 {
            assert_eq!(w.to_safetensors().unwrap(), first);
        }
        // Still a valid file, with the header's keys in order.
        assert_eq!(WeightMap::from_safetensors(&first).unwrap(), w);
        let text = String::from_utf8_lossy(&first);
        assert!(text.find("key0").unwrap() < text.find("key11").unwrap());
        assert!(text.find("key11").unwrap() < text.find("key2").unwrap());
    }

    #[test]
    fn insert_rejects_a_shape_that_does_not_match_the_data() {
        let mut w = WeightMap::new();
        assert!(w.insert("x", vec![2, 2], vec![1.0; 3]).is_err());
    }

    #[test]
    fn expect_names_the_tensor_whose_shape_is_wrong() {
        let mut w = WeightMap::new();
        w.insert("conv.weight", vec![4], vec![0.0; 4]).unwrap();
        let err = w.expect("conv.weight", &[2, 2]).unwrap_err().to_string();
        assert!(
            err.contains("conv.weight") && err.contains("[2, 2]"),
            "{err}"
        );
        assert!(matches!(
            w.expect("nope", &[1]),
            Err(NnError::MissingTensor(_))
        ));
    }

    #[test]
    fn truncated_safetensors_is_an_error_not_a_panic() {
        let mut w = WeightMap::new();
        w.insert("x", vec![8], vec![1.0; 8]).unwrap();
        let bytes = w.to_safetensors().unwrap();
        for cut in [0, 4, 8, 20, bytes.len() - 1] {
            assert!(
                WeightMap::from_safetensors(&bytes[..cut]).is_err(),
                "cut at {cut}"
            );
        }
    }
}
