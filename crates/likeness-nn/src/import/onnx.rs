//! ONNX models, read for their weights (initializers) and their graph (nodes).
//!
//! We never run ONNX graphs: networks are written in Rust ([`crate::nets`]), and the graph is
//! read only to map initializers to layers and to check the architecture is the one expected.

use crate::error::{NnError, Result};
use crate::import::protobuf::{Fields, Value, push_floats, push_varints, string};
use crate::weights::WeightTensor;

const FORMAT: &str = "ONNX";

/// ONNX `TensorProto.DataType` values we can read.
const DT_FLOAT: i64 = 1;
const DT_INT32: i64 = 6;
const DT_INT64: i64 = 7;
const DT_DOUBLE: i64 = 11;

/// An attribute value of a node.
#[derive(Debug, Clone, PartialEq)]
pub enum Attribute {
    Int(i64),
    Float(f32),
    Ints(Vec<i64>),
    Floats(Vec<f32>),
    String(String),
    Tensor(WeightTensor),
    /// A kind we do not decode (graphs, sparse tensors...).
    Other,
}

/// One operator of the graph.
#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    pub name: String,
    pub op_type: String,
    pub inputs: Vec<String>,
    pub outputs: Vec<String>,
    pub attributes: Vec<(String, Attribute)>,
}

impl Node {
    /// The attribute called `name`.
    pub fn attr(&self, name: &str) -> Option<&Attribute> {
        self.attributes
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, a)| a)
    }

    /// An integer-list attribute (e.g. `strides`, `pads`).
    pub fn ints(&self, name: &str) -> Option<&[i64]> {
        match self.attr(name)? {
            Attribute::Ints(v) => Some(v),
            _ => None,
        }
    }

    /// An integer attribute (e.g. `group`).
    pub fn int(&self, name: &str) -> Option<i64> {
        match self.attr(name)? {
            Attribute::Int(v) => Some(*v),
            _ => None,
        }
    }
}

/// An ONNX model's graph: its nodes in file order and its initializers by name.
#[derive(Debug, Clone, Default)]
pub struct OnnxModel {
    pub nodes: Vec<Node>,
    pub initializers: Vec<(String, WeightTensor)>,
    pub inputs: Vec<String>,
    pub outputs: Vec<String>,
}

impl OnnxModel {
    /// Parses a whole `.onnx` file (external data is not supported).
    pub fn parse(bytes: &[u8]) -> Result<Self> {
        let mut model = OnnxModel::default();
        let mut fields = Fields::new(bytes, 0, FORMAT);
        let mut saw_graph = false;
        while let Some((number, value, at)) = fields.next_field()? {
            if number == 7 {
                let Value::Bytes(graph) = value else {
                    return Err(NnError::malformed(FORMAT, at, "graph is not a message"));
                };
                parse_graph(graph, at, &mut model)?;
                saw_graph = true;
            }
        }
        if !saw_graph {
            return Err(NnError::malformed(
                FORMAT,
                0,
                "no graph in the model (is this an ONNX file?)",
            ));
        }
        Ok(model)
    }

    /// The initializer called `name`.
    pub fn initializer(&self, name: &str) -> Result<&WeightTensor> {
        self.initializers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, t)| t)
            .ok_or_else(|| NnError::MissingTensor(name.to_string()))
    }

    /// Nodes of one operator type, in file order.
    pub fn nodes_of<'a>(&'a self, op_type: &'a str) -> impl Iterator<Item = &'a Node> + 'a {
        self.nodes.iter().filter(move |n| n.op_type == op_type)
    }
}

fn parse_graph(buf: &[u8], base: u64, model: &mut OnnxModel) -> Result<()> {
    let mut fields = Fields::new(buf, base, FORMAT);
    while let Some((number, value, at)) = fields.next_field()? {
        match (number, value) {
            (1, Value::Bytes(b)) => model.nodes.push(parse_node(b, at)?),
            (5, Value::Bytes(b)) => model.initializers.push(parse_tensor(b, at)?),
            (11, Value::Bytes(b)) => model.inputs.push(value_info_name(b, at)?),
            (12, Value::Bytes(b)) => model.outputs.push(value_info_name(b, at)?),
            _ => {}
        }
    }
    Ok(())
}

fn value_info_name(buf: &[u8], base: u64) -> Result<String> {
    let mut fields = Fields::new(buf, base, FORMAT);
    while let Some((number, value, at)) = fields.next_field()? {
        if number == 1 {
            return Ok(string(value, at, FORMAT)?.to_string());
        }
    }
    Ok(String::new())
}

fn parse_node(buf: &[u8], base: u64) -> Result<Node> {
    let mut node = Node {
        name: String::new(),
        op_type: String::new(),
        inputs: vec![],
        outputs: vec![],
        attributes: vec![],
    };
    let mut fields = Fields::new(buf, base, FORMAT);
    while let Some((number, value, at)) = fields.next_field()? {
        match number {
            1 => node.inputs.push(string(value, at, FORMAT)?.to_string()),
            2 => node.outputs.push(string(value, at, FORMAT)?.to_string()),
            3 => node.name = string(value, at, FORMAT)?.to_string(),
            4 => node.op_type = string(value, at, FORMAT)?.to_string(),
            5 => {
                let Value::Bytes(b) = value else {
                    return Err(NnError::malformed(FORMAT, at, "attribute is not a message"));
                };
                node.attributes.push(parse_attribute(b, at)?);
            }
            _ => {}
        }
    }
    Ok(node)
}

fn parse_attribute(buf: &[u8], base: u64) -> Result<(String, Attribute)> {
    let mut name = String::new();
    let (mut f, mut i, mut s, mut t) = (None, None, None, None);
    let (mut floats, mut ints) = (Vec::new(), Vec::new());
    let mut kind = 0;
    let mut fields = Fields::new(buf, base, FORMAT);
    while let Some((number, value, at)) = fields.next_field()? {
        match number {
            1 => name = string(value, at, FORMAT)?.to_string(),
            2 => {
                let mut v = vec![];
                push_floats(value, at, FORMAT, &mut v)?;
                f = v.first().copied();
            }
            3 => {
                let mut v = vec![];
                push_varints(value, at, FORMAT, &mut v)?;
                i = v.first().copied();
            }
            4 => s = Some(String::from_utf8_lossy(bytes_of(value, at)?).into_owned()),
            5 => t = Some(parse_tensor(bytes_of(value, at)?, at)?.1),
            7 => push_floats(value, at, FORMAT, &mut floats)?,
            8 => push_varints(value, at, FORMAT, &mut ints)?,
            20 => {
                if let Value::Varint(k) = value {
                    kind = k;
                }
            }
            _ => {}
        }
    }
    // AttributeProto.AttributeType: FLOAT=1 INT=2 STRING=3 TENSOR=4 FLOATS=6 INTS=7
    let attr = match (kind, f, i, s, t) {
        (1, Some(f), ..) => Attribute::Float(f),
        (2, _, Some(i), ..) => Attribute::Int(i),
        (3, _, _, Some(s), _) => Attribute::String(s),
        (4, .., Some(t)) => Attribute::Tensor(t),
        (6, ..) => Attribute::Floats(floats),
        (7, ..) => Attribute::Ints(ints),
        (2, ..) => Attribute::Int(0),
        (1, ..) => Attribute::Float(0.0),
        _ => Attribute::Other,
    };
    Ok((name, attr))
}

fn bytes_of(value: Value<'_>, at: u64) -> Result<&[u8]> {
    match value {
        Value::Bytes(b) => Ok(b),
        _ => Err(NnError::malformed(
            FORMAT,
            at,
            "expected a length-delimited field",
        )),
    }
}

/// Parses a `TensorProto` into (name, f32 tensor); integer tensors are converted to f32.
fn parse_tensor(buf: &[u8], base: u64) -> Result<(String, WeightTensor)> {
    let (mut name, mut dims, mut data_type) = (String::new(), Vec::new(), DT_FLOAT);
    let (mut floats, mut ints, mut doubles, mut raw) = (Vec::new(), Vec::new(), Vec::new(), None);
    let mut fields = Fields::new(buf, base, FORMAT);
    while let Some((number, value, at)) = fields.next_field()? {
        match number {
            1 => push_varints(value, at, FORMAT, &mut dims)?,
            2 => {
                if let Value::Varint(v) = value {
                    data_type = v as i64;
                }
            }
            4 => push_floats(value, at, FORMAT, &mut floats)?,
            5 | 7 => push_varints(value, at, FORMAT, &mut ints)?,
            8 => name = string(value, at, FORMAT)?.to_string(),
            9 => raw = Some((bytes_of(value, at)?, at)),
            10 => {
                match value {
                    Value::Fixed64(v) => doubles.push(f64::from_bits(v)),
                    Value::Bytes(b) => doubles.extend(b.chunks_exact(8).map(|c| {
                        f64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]])
                    })),
                    _ => {}
                }
            }
            14 => {
                if matches!(value, Value::Varint(1)) {
                    return Err(NnError::malformed(
                        FORMAT,
                        at,
                        format!("tensor `{name}` uses external data"),
                    ));
                }
            }
            _ => {}
        }
    }
    let shape = dims
        .iter()
        .map(|&d| {
            usize::try_from(d).map_err(|_| {
                NnError::malformed(FORMAT, base, format!("tensor `{name}` has dim {d}"))
            })
        })
        .collect::<Result<Vec<_>>>()?;
    // Checked: a corrupt file's dims must not overflow (n * 8 bytes must fit too).
    let n = shape
        .iter()
        .try_fold(1usize, |a, &d| a.checked_mul(d))
        .filter(|n| n.checked_mul(8).is_some())
        .ok_or_else(|| {
            NnError::malformed(FORMAT, base, format!("tensor `{name}` has shape {shape:?}"))
        })?;
    let data: Vec<f32> = if let Some((raw, at)) = raw {
        let width = match data_type {
            DT_FLOAT | DT_INT32 => 4,
            DT_INT64 | DT_DOUBLE => 8,
            t => {
                return Err(NnError::malformed(
                    FORMAT,
                    at,
                    format!("tensor `{name}` has unsupported data type {t}"),
                ));
            }
        };
        if raw.len() != n * width {
            return Err(NnError::malformed(
                FORMAT,
                at,
                format!(
                    "tensor `{name}` of shape {shape:?} has {} raw bytes, needs {}",
                    raw.len(),
                    n * width
                ),
            ));
        }
        raw.chunks_exact(width)
            .map(|c| match data_type {
                DT_FLOAT => f32::from_le_bytes([c[0], c[1], c[2], c[3]]),
                DT_INT32 => i32::from_le_bytes([c[0], c[1], c[2], c[3]]) as f32,
                DT_INT64 => {
                    i64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]) as f32
                }
                _ => f64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]) as f32,
            })
            .collect()
    } else if !floats.is_empty() {
        floats
    } else if !doubles.is_empty() {
        doubles.into_iter().map(|v| v as f32).collect()
    } else {
        ints.into_iter().map(|v| v as f32).collect()
    };
    if data.len() != n {
        return Err(NnError::malformed(
            FORMAT,
            base,
            format!(
                "tensor `{name}` of shape {shape:?} has {} values, needs {n}",
                data.len()
            ),
        ));
    }
    Ok((name, WeightTensor { shape, data }))
}
