//! PyTorch checkpoints: the state dicts `torch.save` writes, in both of its file formats.
//!
//! - **zip** (torch ≥ 1.6): `<name>/data.pkl` holds the pickled state dict, each tensor's
//!   storage being a *persistent id* `("storage", torch.FloatStorage, key, location, numel)`
//!   whose bytes are the zip entry `<name>/data/<key>`.
//! - **legacy** (older torch, and torchvision's own downloads such as `vgg19-dcbb9e9d.pth`):
//!   five pickles in a row — a magic number, the protocol version 1001, a `sys_info` dict, the
//!   state dict (persistent ids `("storage", type, key, location, numel, view)`), the list of
//!   storage keys — then, for each key in that order, an i64 element count and the raw
//!   little-endian elements.
//!
//! The pickle machine below implements only what state dicts use: protocol 2–5 opcodes for
//! containers, numbers and strings, `GLOBAL`/`STACK_GLOBAL`, `REDUCE` of the few callables
//! torch uses to rebuild tensors and ordered dicts, and `BINPERSID`. It never imports or calls
//! anything: other callables become opaque values. A whole pickled `nn.Module` (rather than its
//! state dict) is refused.

use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap};
use std::io::Read;
use std::path::Path;
use std::rc::Rc;

use crate::error::{NnError, Result};
use crate::weights::WeightMap;

const FORMAT: &str = "torch";

/// `torch.serialization.MAGIC_NUMBER`, 0x1950a86a20f9469cfc6c, as pickle's little-endian LONG1.
const LEGACY_MAGIC: [u8; 10] = [0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19];
/// `torch.serialization.PROTOCOL_VERSION` of the legacy format.
const LEGACY_PROTOCOL: i64 = 1001;
/// Deepest nesting of dicts searched for tensors (pickles can hold cycles).
const MAX_DEPTH: usize = 32;
/// Keys under which training scripts commonly nest the state dict in a checkpoint.
const NESTED_STATE_DICT_KEYS: [&str; 4] = ["state_dict", "model_state_dict", "model", "net"];

/// Reads a torch checkpoint file (zip or legacy format) into a [`WeightMap`].
pub fn load_torch(path: &Path) -> Result<WeightMap> {
    let bytes = std::fs::read(path).map_err(|e| NnError::io(path, e))?;
    read_torch(&bytes)
}

/// Parses a torch checkpoint's bytes. Tensors get their state-dict names (`features.0.weight`);
/// a checkpoint that nests its state dict under `state_dict`/`model`/… yields that dict, and a
/// `module.` prefix on every name (left by `DataParallel`) is dropped. Every floating and integer
/// dtype is converted to f32.
pub fn read_torch(bytes: &[u8]) -> Result<WeightMap> {
    // On a thread of its own with a stack that holds the deepest value a pickle may build
    // (see MAX_NESTING_OPS): everything unpickled is freed before the thread ends.
    std::thread::scope(|scope| {
        std::thread::Builder::new()
            .name("torch-import".into())
            .stack_size(PARSE_STACK_BYTES)
            .spawn_scoped(scope, || parse_torch(bytes))
            .map_err(|e| NnError::io("torch-import thread", e))?
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
    })
}

fn parse_torch(bytes: &[u8]) -> Result<WeightMap> {
    let (root, storages) = if bytes.starts_with(b"PK\x03\x04") {
        read_zip(bytes)?
    } else {
        read_legacy(bytes)?
    };
    let mut tensors = Vec::new();
    collect_tensors(&state_dict_of(&root), "", 0, &mut tensors)?;
    if tensors.is_empty() {
        return Err(NnError::Mismatch(
            "no tensors found: not a state dict (a pickled nn.Module must be saved as its state_dict())"
                .into(),
        ));
    }
    let strip = tensors.iter().all(|(n, _)| n.starts_with("module."));
    let mut map = WeightMap::new();
    for (name, t) in tensors {
        let name = if strip {
            name["module.".len()..].to_string()
        } else {
            name
        };
        let data = storages.get(&t.storage.key).ok_or_else(|| {
            NnError::Mismatch(format!(
                "tensor `{name}`: storage `{}` is missing",
                t.storage.key
            ))
        })?;
        let values = gather(&name, &t, data)?;
        map.insert(name, t.shape.clone(), values)?;
    }
    map.set_meta("source_format", "torch");
    Ok(map)
}

// ---------------------------------------------------------------------------------------------
// The two containers

fn read_zip(bytes: &[u8]) -> Result<(Value, HashMap<String, Vec<f32>>)> {
    let zip_err = |e: zip::result::ZipError| NnError::malformed(FORMAT, 0, format!("zip: {e}"));
    let mut archive = zip::ZipArchive::new(std::io::Cursor::new(bytes)).map_err(zip_err)?;
    let names: Vec<String> = archive
        .file_names()
        .filter_map(|n| n.ok().map(|n| n.into_owned()))
        .collect();
    let pkl = names
        .iter()
        .filter(|n| n.ends_with("data.pkl"))
        .min_by_key(|n| n.len())
        .ok_or_else(|| {
            NnError::malformed(FORMAT, 0, "zip has no data.pkl: not a torch checkpoint")
        })?
        .clone();
    let prefix = &pkl[..pkl.len() - "data.pkl".len()];
    if let Some(order) = names.iter().find(|n| *n == &format!("{prefix}byteorder")) {
        let (text, _) = read_entry(&mut archive, order)?;
        if text != b"little" {
            return Err(NnError::Mismatch(format!(
                "big-endian checkpoint ({:?}) is not supported",
                String::from_utf8_lossy(&text)
            )));
        }
    }
    let (pickle, pickle_at) = read_entry(&mut archive, &pkl)?;
    let mut storages: BTreeMap<String, Rc<Storage>> = BTreeMap::new();
    let (root, _) = unpickle(&pickle, pickle_at, &mut |pid, at| {
        let s = persistent_storage(pid, at, Container::Zip)?;
        Ok(Value::Storage(
            storages
                .entry(s.key.clone())
                .or_insert_with(|| Rc::new(s))
                .clone(),
        ))
    })?;
    let mut data = HashMap::new();
    for (key, s) in storages {
        let (raw, at) = read_entry(&mut archive, &format!("{prefix}data/{key}"))?;
        let need = s
            .numel
            .checked_mul(s.dtype.size())
            .filter(|&n| n <= raw.len());
        if need.is_none() {
            return Err(NnError::malformed(
                FORMAT,
                at,
                format!(
                    "storage `{key}` holds {} bytes, needs {} {:?}",
                    raw.len(),
                    s.numel,
                    s.dtype
                ),
            ));
        }
        data.insert(key, s.dtype.decode(&raw[..s.numel * s.dtype.size()]));
    }
    Ok((root, data))
}

/// A zip entry's bytes and the offset of its data in the archive.
fn read_entry(
    archive: &mut zip::ZipArchive<std::io::Cursor<&[u8]>>,
    name: &str,
) -> Result<(Vec<u8>, u64)> {
    let mut file = archive
        .by_name(name)
        .map_err(|e| NnError::malformed(FORMAT, 0, format!("zip entry `{name}`: {e}")))?;
    let at = file.data_start().unwrap_or(0);
    let mut out = Vec::new();
    file.read_to_end(&mut out)
        .map_err(|e| NnError::malformed(FORMAT, at, format!("zip entry `{name}`: {e}")))?;
    Ok((out, at))
}

fn read_legacy(bytes: &[u8]) -> Result<(Value, HashMap<String, Vec<f32>>)> {
    let no_persistent = &mut |_: Value, at: u64| -> Result<Value> {
        Err(NnError::malformed(FORMAT, at, "unexpected persistent id"))
    };
    let (magic, mut pos) = unpickle(bytes, 0, no_persistent).map_err(|e| match e {
        NnError::Malformed { offset, .. } if offset < 16 => NnError::malformed(
            FORMAT,
            offset,
            "neither a zip nor a legacy torch checkpoint",
        ),
        other => other,
    })?;
    if !matches!(&magic, Value::BigInt(b) if b[..] == LEGACY_MAGIC) {
        return Err(NnError::malformed(
            FORMAT,
            0,
            "not a torch checkpoint (no zip header, no legacy magic number)",
        ));
    }
    let (protocol, used) = unpickle(&bytes[pos..], pos as u64, no_persistent)?;
    if !matches!(protocol, Value::Int(LEGACY_PROTOCOL)) {
        return Err(NnError::malformed(
            FORMAT,
            pos as u64,
            format!(
                "legacy protocol {}, expected {LEGACY_PROTOCOL}",
                protocol.kind()
            ),
        ));
    }
    pos += used;
    let (_sys_info, used) = unpickle(&bytes[pos..], pos as u64, no_persistent)?;
    pos += used;
    let mut storages: BTreeMap<String, Rc<Storage>> = BTreeMap::new();
    let (root, used) = unpickle(&bytes[pos..], pos as u64, &mut |pid, at| {
        let s = persistent_storage(pid, at, Container::Legacy)?;
        let root = storages
            .entry(s.key.clone())
            .or_insert_with(|| {
                Rc::new(Storage {
                    view_offset: 0,
                    ..s.clone()
                })
            })
            .clone();
        if root.dtype != s.dtype || root.numel != s.numel {
            return Err(NnError::malformed(
                FORMAT,
                at,
                format!("storage `{}` is declared twice, differently", s.key),
            ));
        }
        Ok(Value::Storage(if s.view_offset == 0 {
            root
        } else {
            Rc::new(s)
        }))
    })?;
    pos += used;
    let (keys, used) = unpickle(&bytes[pos..], pos as u64, no_persistent)?;
    let keys_at = pos as u64;
    pos += used;
    let Value::List(keys) = keys else {
        return Err(NnError::malformed(
            FORMAT,
            keys_at,
            "storage keys are not a list",
        ));
    };
    let mut data = HashMap::new();
    for key in keys.borrow().iter() {
        let key = key_string(key)
            .ok_or_else(|| NnError::malformed(FORMAT, keys_at, "a storage key is not a string"))?;
        let s = storages.get(&key).ok_or_else(|| {
            NnError::malformed(
                FORMAT,
                keys_at,
                format!("storage `{key}` is not used by the state dict"),
            )
        })?;
        let count = bytes.get(pos..pos + 8).ok_or_else(|| {
            NnError::malformed(FORMAT, pos as u64, format!("storage `{key}`: file ends"))
        })?;
        let count = i64::from_le_bytes(count.try_into().unwrap_or([0; 8]));
        if usize::try_from(count).ok() != Some(s.numel) {
            return Err(NnError::malformed(
                FORMAT,
                pos as u64,
                format!(
                    "storage `{key}` has {count} elements, its tensor said {}",
                    s.numel
                ),
            ));
        }
        pos += 8;
        let len = s.numel.checked_mul(s.dtype.size());
        let raw = len
            .and_then(|len| bytes.get(pos..pos.checked_add(len)?))
            .ok_or_else(|| {
                NnError::malformed(
                    FORMAT,
                    pos as u64,
                    format!(
                        "storage `{key}` ({} × {:?}) runs past the end of the file",
                        s.numel, s.dtype
                    ),
                )
            })?;
        data.insert(key, s.dtype.decode(raw));
        pos += raw.len();
    }
    Ok((root, data))
}

/// The container a persistent id comes from: legacy ids have a sixth element, the view.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Container {
    Zip,
    Legacy,
}

/// The storage a persistent id `("storage", type, key, location, numel)` names; legacy ids end
/// with a view, `None` or `(view key, offset into the root storage, view size)`.
fn persistent_storage(pid: Value, at: u64, container: Container) -> Result<Storage> {
    let bad = || {
        let view = match container {
            Container::Zip => "",
            Container::Legacy => ", view",
        };
        NnError::malformed(
            FORMAT,
            at,
            format!("persistent id is not (\"storage\", type, key, location, numel{view})"),
        )
    };
    let Value::Tuple(t) = pid else {
        return Err(bad());
    };
    let (ty, key, numel, rest) = match &t[..] {
        [
            Value::Str(tag),
            Value::Global(ty),
            key,
            _,
            Value::Int(numel),
            rest @ ..,
        ] if tag == "storage" => (ty, key, numel, rest),
        [Value::Str(tag), ..] if tag == "module" => {
            return Err(NnError::Mismatch(
                "this checkpoint pickles a whole nn.Module; save its state_dict() instead".into(),
            ));
        }
        _ => return Err(bad()),
    };
    let view_offset = match (container, rest) {
        (Container::Zip, _) | (Container::Legacy, [Value::None]) => 0,
        (Container::Legacy, [Value::Tuple(v)]) => match &v[..] {
            [_, Value::Int(off), Value::Int(_)] => usize::try_from(*off).map_err(|_| bad())?,
            _ => return Err(bad()),
        },
        (Container::Legacy, _) => return Err(bad()),
    };
    Ok(Storage {
        key: key_string(key).ok_or_else(bad)?,
        dtype: Dtype::of_storage(ty)
            .ok_or_else(|| NnError::Mismatch(format!("unsupported storage type `{ty}`")))?,
        numel: usize::try_from(*numel).map_err(|_| bad())?,
        view_offset,
    })
}

// ---------------------------------------------------------------------------------------------
// From the unpickled object to named tensors

/// The dict holding the weights: the root, or the state dict nested under a usual key.
fn state_dict_of(root: &Value) -> Value {
    if let Value::Dict(d) = root {
        for key in NESTED_STATE_DICT_KEYS {
            let nested = d
                .borrow()
                .iter()
                .find(|(k, _)| matches!(k, Value::Str(s) if s == key))
                .map(|(_, v)| v.clone());
            if let Some(v @ Value::Dict(_)) = nested {
                return v;
            }
        }
    }
    root.clone()
}

fn collect_tensors(
    v: &Value,
    prefix: &str,
    depth: usize,
    out: &mut Vec<(String, Rc<TensorRef>)>,
) -> Result<()> {
    match v {
        Value::Tensor(t) => out.push((prefix.to_string(), t.clone())),
        Value::Dict(d) if depth < MAX_DEPTH => {
            for (k, v) in d.borrow().iter() {
                let Some(k) = key_string(k) else { continue };
                let name = if prefix.is_empty() {
                    k
                } else {
                    format!("{prefix}.{k}")
                };
                collect_tensors(v, &name, depth + 1, out)?;
            }
        }
        Value::Object(name) if name.contains("_rebuild") => {
            return Err(NnError::Mismatch(format!(
                "`{prefix}` is a tensor kind we cannot read (`{name}`: quantized, sparse or meta)"
            )));
        }
        _ => {}
    }
    Ok(())
}

fn key_string(v: &Value) -> Option<String> {
    match v {
        Value::Str(s) => Some(s.clone()),
        Value::Int(i) => Some(i.to_string()),
        _ => None,
    }
}

/// The tensor's elements in row-major order, read through its strides.
fn gather(name: &str, t: &TensorRef, data: &[f32]) -> Result<Vec<f32>> {
    let bad = |m: String| NnError::Mismatch(format!("tensor `{name}`: {m}"));
    let numel = t
        .shape
        .iter()
        .try_fold(1usize, |a, &d| a.checked_mul(d))
        .ok_or_else(|| bad(format!("shape {:?} overflows", t.shape)))?;
    let start = t
        .storage
        .view_offset
        .checked_add(t.offset)
        .ok_or_else(|| bad("offset overflows".into()))?;
    if numel == 0 {
        return Ok(vec![]);
    }
    // The furthest element; refusing tensors larger than their storage (expanded views, which
    // state dicts never hold) bounds what a corrupt shape can make us allocate.
    let last = t
        .shape
        .iter()
        .zip(&t.stride)
        .try_fold(start, |a, (&d, &s)| a.checked_add((d - 1).checked_mul(s)?))
        .filter(|&last| last < data.len() && numel <= data.len())
        .ok_or_else(|| {
            bad(format!(
                "shape {:?}, strides {:?} at offset {start} do not fit its storage of {} elements",
                t.shape,
                t.stride,
                data.len()
            ))
        })?;
    let contiguous = t
        .shape
        .iter()
        .zip(&t.stride)
        .rev()
        .try_fold(1usize, |want, (&d, &s)| {
            (d == 1 || s == want).then(|| want * d)
        })
        .is_some();
    if contiguous {
        return Ok(data[start..=last].to_vec());
    }
    let mut out = Vec::with_capacity(numel);
    let mut index = vec![0usize; t.shape.len()];
    for _ in 0..numel {
        let at = start
            + index
                .iter()
                .zip(&t.stride)
                .map(|(i, s)| i * s)
                .sum::<usize>();
        out.push(data[at]);
        for k in (0..index.len()).rev() {
            index[k] += 1;
            if index[k] < t.shape[k] {
                break;
            }
            index[k] = 0;
        }
    }
    Ok(out)
}

// ---------------------------------------------------------------------------------------------
// Storages and tensors as the pickle describes them

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Dtype {
    F32,
    F64,
    F16,
    BF16,
    I64,
    I32,
    I16,
    I8,
    U8,
    Bool,
}

impl Dtype {
    /// The dtype of a storage class, e.g. `torch.FloatStorage` (`torch.cuda.*` alike).
    fn of_storage(global: &str) -> Option<Self> {
        let class = global
            .strip_prefix("torch.cuda.")
            .or_else(|| global.strip_prefix("torch."))?;
        Some(match class {
            "FloatStorage" => Dtype::F32,
            "DoubleStorage" => Dtype::F64,
            "HalfStorage" => Dtype::F16,
            "BFloat16Storage" => Dtype::BF16,
            "LongStorage" => Dtype::I64,
            "IntStorage" => Dtype::I32,
            "ShortStorage" => Dtype::I16,
            "CharStorage" => Dtype::I8,
            "ByteStorage" => Dtype::U8,
            "BoolStorage" => Dtype::Bool,
            _ => return None,
        })
    }

    fn size(self) -> usize {
        match self {
            Dtype::F64 | Dtype::I64 => 8,
            Dtype::F32 | Dtype::I32 => 4,
            Dtype::F16 | Dtype::BF16 | Dtype::I16 => 2,
            Dtype::I8 | Dtype::U8 | Dtype::Bool => 1,
        }
    }

    /// Little-endian elements to f32; `raw` holds a whole number of elements.
    fn decode(self, raw: &[u8]) -> Vec<f32> {
        fn each<const N: usize>(raw: &[u8], f: impl Fn([u8; N]) -> f32) -> Vec<f32> {
            raw.chunks_exact(N)
                .map(|c| f(c.try_into().unwrap_or([0; N])))
                .collect()
        }
        match self {
            Dtype::F32 => each(raw, f32::from_le_bytes),
            Dtype::F64 => each(raw, |b| f64::from_le_bytes(b) as f32),
            Dtype::F16 => each(raw, |b| burn::tensor::f16::from_le_bytes(b).to_f32()),
            Dtype::BF16 => each(raw, |b| burn::tensor::bf16::from_le_bytes(b).to_f32()),
            Dtype::I64 => each(raw, |b| i64::from_le_bytes(b) as f32),
            Dtype::I32 => each(raw, |b| i32::from_le_bytes(b) as f32),
            Dtype::I16 => each(raw, |b| i16::from_le_bytes(b) as f32),
            Dtype::I8 => each(raw, |b: [u8; 1]| b[0] as i8 as f32),
            Dtype::U8 | Dtype::Bool => each(raw, |b: [u8; 1]| b[0] as f32),
        }
    }
}

#[derive(Debug, Clone)]
struct Storage {
    key: String,
    dtype: Dtype,
    /// Elements in the (root) storage.
    numel: usize,
    /// Legacy views: where this view starts in its root storage, in elements.
    view_offset: usize,
}

#[derive(Debug)]
struct TensorRef {
    storage: Rc<Storage>,
    offset: usize,
    shape: Vec<usize>,
    stride: Vec<usize>,
}

// ---------------------------------------------------------------------------------------------
// The pickle machine

/// A pickled value. Containers are shared (`Rc`) because the pickle memo gives several
/// references to one object, and mutations through one (SETITEMS) must show through all.
/// Scalar payloads are only ever shown in error messages.
#[derive(Debug, Clone)]
#[allow(dead_code)]
enum Value {
    None,
    Bool(bool),
    Int(i64),
    /// An integer too wide for i64, as little-endian two's-complement bytes.
    BigInt(Vec<u8>),
    Float(f64),
    Str(String),
    Bytes(Vec<u8>),
    Tuple(Rc<Vec<Value>>),
    List(Rc<RefCell<Vec<Value>>>),
    Dict(Rc<RefCell<Vec<(Value, Value)>>>),
    /// A class or function by its dotted name, never resolved.
    Global(String),
    Storage(Rc<Storage>),
    Tensor(Rc<TensorRef>),
    /// The result of calling a callable we do not model, named after it.
    Object(String),
}

impl Value {
    /// What the value is, in a word: for messages. Never the value's `Debug` form, which
    /// recurses as deep as the value nests (a hostile pickle nests as deep as it likes).
    fn kind(&self) -> &'static str {
        match self {
            Value::None => "None",
            Value::Bool(_) => "a bool",
            Value::Int(_) | Value::BigInt(_) => "an int",
            Value::Float(_) => "a float",
            Value::Str(_) => "a str",
            Value::Bytes(_) => "bytes",
            Value::Tuple(_) => "a tuple",
            Value::List(_) => "a list",
            Value::Dict(_) => "a dict",
            Value::Global(_) => "a global",
            Value::Storage(_) => "a storage",
            Value::Tensor(_) => "a tensor",
            Value::Object(_) => "an object",
        }
    }
}

/// Opcodes that put existing values inside another: only they make values nest deeper, each
/// by at most one level, so counting them bounds the depth of everything a pickle builds.
const NESTING_OPS: [u8; 15] = [
    op::TUPLE,
    op::TUPLE1,
    op::TUPLE2,
    op::TUPLE3,
    op::LIST,
    op::APPEND,
    op::APPENDS,
    op::DICT,
    op::SETITEM,
    op::SETITEMS,
    op::ADDITEMS,
    op::FROZENSET,
    op::REDUCE,
    op::BUILD,
    op::NEWOBJ,
];

/// Most nesting opcodes one pickle may run. Values are freed (and, in messages, described)
/// recursively, so unbounded nesting overflowed the stack: a pickle of a million nested
/// tuples crashed the process. A state dict runs about ten per tensor (torchvision's VGG-16:
/// 32 tensors); this allows 20 000 tensors, and [`read_torch`] runs on a thread whose stack
/// holds that depth.
const MAX_NESTING_OPS: usize = 200_000;

/// Stack of the thread [`read_torch`] parses on: freeing a value [`MAX_NESTING_OPS`] deep
/// takes a few frames per level (about 100 MB measured at opt-level 1 for 200 000 levels,
/// see the test `a_pickle_nested_to_the_limit_is_freed_without_overflow`). Reserved, not
/// committed: only the pages a deep value touches are used.
const PARSE_STACK_BYTES: usize = 512 << 20;

mod op {
    pub const PROTO: u8 = 0x80;
    pub const FRAME: u8 = 0x95;
    pub const STOP: u8 = b'.';
    pub const MARK: u8 = b'(';
    pub const POP: u8 = b'0';
    pub const POP_MARK: u8 = b'1';
    pub const DUP: u8 = b'2';
    pub const NONE: u8 = b'N';
    pub const NEWTRUE: u8 = 0x88;
    pub const NEWFALSE: u8 = 0x89;
    pub const BININT: u8 = b'J';
    pub const BININT1: u8 = b'K';
    pub const BININT2: u8 = b'M';
    pub const LONG1: u8 = 0x8a;
    pub const LONG4: u8 = 0x8b;
    pub const BINFLOAT: u8 = b'G';
    pub const BINSTRING: u8 = b'T';
    pub const SHORT_BINSTRING: u8 = b'U';
    pub const BINUNICODE: u8 = b'X';
    pub const SHORT_BINUNICODE: u8 = 0x8c;
    pub const BINUNICODE8: u8 = 0x8d;
    pub const BINBYTES: u8 = b'B';
    pub const SHORT_BINBYTES: u8 = b'C';
    pub const BINBYTES8: u8 = 0x8e;
    pub const EMPTY_TUPLE: u8 = b')';
    pub const TUPLE: u8 = b't';
    pub const TUPLE1: u8 = 0x85;
    pub const TUPLE2: u8 = 0x86;
    pub const TUPLE3: u8 = 0x87;
    pub const EMPTY_LIST: u8 = b']';
    pub const LIST: u8 = b'l';
    pub const APPEND: u8 = b'a';
    pub const APPENDS: u8 = b'e';
    pub const EMPTY_DICT: u8 = b'}';
    pub const DICT: u8 = b'd';
    pub const SETITEM: u8 = b's';
    pub const SETITEMS: u8 = b'u';
    pub const EMPTY_SET: u8 = 0x8f;
    pub const ADDITEMS: u8 = 0x90;
    pub const FROZENSET: u8 = 0x91;
    pub const GLOBAL: u8 = b'c';
    pub const STACK_GLOBAL: u8 = 0x93;
    pub const REDUCE: u8 = b'R';
    pub const BUILD: u8 = b'b';
    pub const NEWOBJ: u8 = 0x81;
    pub const BINPERSID: u8 = b'Q';
    pub const BINGET: u8 = b'h';
    pub const LONG_BINGET: u8 = b'j';
    pub const BINPUT: u8 = b'q';
    pub const LONG_BINPUT: u8 = b'r';
    pub const MEMOIZE: u8 = 0x94;
}

/// Runs one pickle from the start of `buf` (which sits at `base` in the file) up to its STOP;
/// returns the value and the number of bytes it took. `persistent_load` turns a persistent id
/// (and its offset) into a value.
fn unpickle(
    buf: &[u8],
    base: u64,
    persistent_load: &mut dyn FnMut(Value, u64) -> Result<Value>,
) -> Result<(Value, usize)> {
    let mut m = Machine {
        buf,
        pos: 0,
        base,
        stack: Vec::new(),
        marks: Vec::new(),
        memo: HashMap::new(),
    };
    let mut nestings = 0usize;
    loop {
        let at = m.pos;
        let code = m.u8()?;
        if NESTING_OPS.contains(&code) {
            nestings += 1;
            if nestings > MAX_NESTING_OPS {
                return Err(m.error(
                    at,
                    format!(
                        "more than {MAX_NESTING_OPS} nesting operations: not a state dict \
                         (or a hostile file)"
                    ),
                ));
            }
        }
        match code {
            op::PROTO => {
                m.u8()?;
            }
            op::FRAME => {
                m.take(8)?;
            }
            op::STOP => {
                let v = m.pop(at)?;
                return Ok((v, m.pos));
            }
            op::MARK => m.marks.push(m.stack.len()),
            op::POP => {
                m.pop(at)?;
            }
            op::POP_MARK => {
                m.pop_mark(at)?;
            }
            op::DUP => {
                let v = m.top(at)?.clone();
                m.stack.push(v);
            }
            op::NONE => m.stack.push(Value::None),
            op::NEWTRUE => m.stack.push(Value::Bool(true)),
            op::NEWFALSE => m.stack.push(Value::Bool(false)),
            op::BININT => {
                let v = i32::from_le_bytes(m.array()?);
                m.stack.push(Value::Int(v as i64));
            }
            op::BININT1 => {
                let v = m.u8()?;
                m.stack.push(Value::Int(v as i64));
            }
            op::BININT2 => {
                let v = u16::from_le_bytes(m.array()?);
                m.stack.push(Value::Int(v as i64));
            }
            op::LONG1 | op::LONG4 => {
                let n = if code == op::LONG1 {
                    m.u8()? as usize
                } else {
                    m.len4(at)?
                };
                let v = long(m.take(n)?);
                m.stack.push(v);
            }
            op::BINFLOAT => {
                let v = f64::from_be_bytes(m.array()?);
                m.stack.push(Value::Float(v));
            }
            op::BINSTRING
            | op::SHORT_BINSTRING
            | op::BINUNICODE
            | op::SHORT_BINUNICODE
            | op::BINUNICODE8 => {
                let n = match code {
                    op::SHORT_BINSTRING | op::SHORT_BINUNICODE => m.u8()? as usize,
                    op::BINUNICODE8 => m.len8(at)?,
                    _ => m.len4(at)?,
                };
                let s = String::from_utf8_lossy(m.take(n)?).into_owned();
                m.stack.push(Value::Str(s));
            }
            op::BINBYTES | op::SHORT_BINBYTES | op::BINBYTES8 => {
                let n = match code {
                    op::SHORT_BINBYTES => m.u8()? as usize,
                    op::BINBYTES8 => m.len8(at)?,
                    _ => m.len4(at)?,
                };
                let b = m.take(n)?.to_vec();
                m.stack.push(Value::Bytes(b));
            }
            op::EMPTY_TUPLE => m.stack.push(Value::Tuple(Rc::new(vec![]))),
            op::TUPLE => {
                let items = m.pop_mark(at)?;
                m.stack.push(Value::Tuple(Rc::new(items)));
            }
            op::TUPLE1 | op::TUPLE2 | op::TUPLE3 => {
                let n = (code - op::TUPLE1 + 1) as usize;
                if m.stack.len() < n {
                    return Err(m.error(at, "stack underflow"));
                }
                let items = m.stack.split_off(m.stack.len() - n);
                m.stack.push(Value::Tuple(Rc::new(items)));
            }
            op::EMPTY_LIST => m.stack.push(Value::List(Rc::default())),
            op::EMPTY_SET => m.stack.push(Value::List(Rc::default())),
            op::LIST | op::FROZENSET => {
                let items = m.pop_mark(at)?;
                m.stack.push(Value::List(Rc::new(RefCell::new(items))));
            }
            op::APPEND => {
                let v = m.pop(at)?;
                m.extend(at, vec![v])?;
            }
            op::APPENDS | op::ADDITEMS => {
                let items = m.pop_mark(at)?;
                m.extend(at, items)?;
            }
            op::EMPTY_DICT => m.stack.push(Value::Dict(Rc::default())),
            op::DICT => {
                let items = m.pop_mark(at)?;
                let d = Value::Dict(Rc::default());
                m.stack.push(d);
                m.set_items(at, items)?;
            }
            op::SETITEM => {
                let v = m.pop(at)?;
                let k = m.pop(at)?;
                m.set_items(at, vec![k, v])?;
            }
            op::SETITEMS => {
                let items = m.pop_mark(at)?;
                m.set_items(at, items)?;
            }
            op::GLOBAL => {
                let module = m.line(at)?;
                let name = m.line(at)?;
                m.stack.push(Value::Global(format!("{module}.{name}")));
            }
            op::STACK_GLOBAL => {
                let name = m.pop(at)?;
                let module = m.pop(at)?;
                match (module, name) {
                    (Value::Str(module), Value::Str(name)) => {
                        m.stack.push(Value::Global(format!("{module}.{name}")))
                    }
                    _ => return Err(m.error(at, "STACK_GLOBAL needs two strings")),
                }
            }
            op::REDUCE | op::NEWOBJ => {
                let args = m.pop(at)?;
                let callable = m.pop(at)?;
                let v = reduce(callable, args).map_err(|msg| m.error(at, msg))?;
                m.stack.push(v);
            }
            op::BUILD => {
                // State set on an object (e.g. an OrderedDict's `_metadata`): not needed.
                m.pop(at)?;
                m.top(at)?;
            }
            op::BINPERSID => {
                let pid = m.pop(at)?;
                let v = persistent_load(pid, m.base + at as u64)?;
                m.stack.push(v);
            }
            op::BINGET | op::LONG_BINGET => {
                let key = if code == op::BINGET {
                    m.u8()? as u32
                } else {
                    u32::from_le_bytes(m.array()?)
                };
                let v = m
                    .memo
                    .get(&key)
                    .cloned()
                    .ok_or_else(|| m.error(at, format!("memo entry {key} is not set")))?;
                m.stack.push(v);
            }
            op::BINPUT | op::LONG_BINPUT | op::MEMOIZE => {
                let key = match code {
                    op::BINPUT => m.u8()? as u32,
                    op::LONG_BINPUT => u32::from_le_bytes(m.array()?),
                    _ => m.memo.len() as u32,
                };
                let v = m.top(at)?.clone();
                m.memo.insert(key, v);
            }
            other => {
                return Err(m.error(at, format!("unsupported pickle opcode 0x{other:02x}")));
            }
        }
    }
}

/// Pickle's LONG1/LONG4 payload: little-endian two's complement of any width.
fn long(bytes: &[u8]) -> Value {
    if bytes.len() > 8 {
        return Value::BigInt(bytes.to_vec());
    }
    let negative = bytes.last().is_some_and(|b| b & 0x80 != 0);
    let mut full = [if negative { 0xff } else { 0 }; 8];
    full[..bytes.len()].copy_from_slice(bytes);
    Value::Int(i64::from_le_bytes(full))
}

/// What calling `callable(*args)` gives, for the callables state dicts use.
fn reduce(callable: Value, args: Value) -> std::result::Result<Value, String> {
    let Value::Global(name) = callable else {
        return Err(format!("cannot call {}", callable.kind()));
    };
    let args = match args {
        Value::Tuple(t) => t,
        other => {
            return Err(format!(
                "arguments of `{name}` are not a tuple but {}",
                other.kind()
            ));
        }
    };
    Ok(match name.as_str() {
        // (storage, storage_offset, size, stride, requires_grad, backward_hooks[, metadata])
        "torch._utils._rebuild_tensor_v2" | "torch._utils._rebuild_tensor" => {
            let [
                Value::Storage(storage),
                Value::Int(offset),
                size,
                stride,
                ..,
            ] = &args[..]
            else {
                return Err(format!("unexpected arguments of `{name}`"));
            };
            let dims = |v: &Value| -> Option<Vec<usize>> {
                let Value::Tuple(t) = v else { return None };
                t.iter()
                    .map(|d| match d {
                        Value::Int(i) => usize::try_from(*i).ok(),
                        _ => None,
                    })
                    .collect()
            };
            let (shape, stride) = dims(size)
                .zip(dims(stride))
                .filter(|(a, b)| a.len() == b.len())
                .ok_or_else(|| format!("bad size/stride in `{name}`"))?;
            Value::Tensor(Rc::new(TensorRef {
                storage: storage.clone(),
                offset: usize::try_from(*offset).map_err(|_| "negative offset".to_string())?,
                shape,
                stride,
            }))
        }
        // nn.Parameter: (data, requires_grad, backward_hooks[, state])
        "torch._utils._rebuild_parameter" | "torch._utils._rebuild_parameter_with_state" => args
            .first()
            .cloned()
            .ok_or_else(|| format!("`{name}` without arguments"))?,
        "collections.OrderedDict" | "builtins.dict" | "__builtin__.dict" => {
            let mut items = Vec::new();
            if let Some(Value::List(pairs)) = args.first() {
                // (key, value) tuples, or [key, value] lists as Python 2 reduced OrderedDicts
                for p in pairs.borrow().iter() {
                    let kv = match p {
                        Value::Tuple(t) => t.to_vec(),
                        Value::List(l) => l.borrow().clone(),
                        _ => continue,
                    };
                    if let [k, v] = &kv[..] {
                        items.push((k.clone(), v.clone()));
                    }
                }
            }
            Value::Dict(Rc::new(RefCell::new(items)))
        }
        _ => Value::Object(name),
    })
}

struct Machine<'a> {
    buf: &'a [u8],
    pos: usize,
    base: u64,
    stack: Vec<Value>,
    marks: Vec<usize>,
    memo: HashMap<u32, Value>,
}

impl Machine<'_> {
    fn error(&self, at: usize, message: impl Into<String>) -> NnError {
        NnError::malformed(FORMAT, self.base + at as u64, message)
    }

    fn take(&mut self, n: usize) -> Result<&[u8]> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|&e| e <= self.buf.len())
            .ok_or_else(|| self.error(self.pos, "pickle ends in the middle of an opcode"))?;
        let out = &self.buf[self.pos..end];
        self.pos = end;
        Ok(out)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N]> {
        let b = self.take(N)?;
        Ok(b.try_into().unwrap_or([0; N]))
    }

    fn u8(&mut self) -> Result<u8> {
        Ok(self.array::<1>()?[0])
    }

    fn len4(&mut self, at: usize) -> Result<usize> {
        let n = u32::from_le_bytes(self.array()?) as usize;
        self.check_len(at, n)
    }

    fn len8(&mut self, at: usize) -> Result<usize> {
        let n = u64::from_le_bytes(self.array()?);
        self.check_len(at, usize::try_from(n).unwrap_or(usize::MAX))
    }

    fn check_len(&self, at: usize, n: usize) -> Result<usize> {
        if n > self.buf.len() - self.pos {
            return Err(self.error(at, format!("length {n} runs past the end of the pickle")));
        }
        Ok(n)
    }

    fn line(&mut self, at: usize) -> Result<String> {
        let rest = &self.buf[self.pos..];
        let n = rest
            .iter()
            .position(|&b| b == b'\n')
            .ok_or_else(|| self.error(at, "GLOBAL name without a newline"))?;
        let s = String::from_utf8_lossy(&rest[..n]).into_owned();
        self.pos += n + 1;
        Ok(s)
    }

    fn pop(&mut self, at: usize) -> Result<Value> {
        if self.marks.last().is_some_and(|&m| m >= self.stack.len()) {
            return Err(self.error(at, "pop across a MARK"));
        }
        self.stack
            .pop()
            .ok_or_else(|| self.error(at, "stack underflow"))
    }

    fn top(&self, at: usize) -> Result<&Value> {
        self.stack
            .last()
            .ok_or_else(|| self.error(at, "stack underflow"))
    }

    fn pop_mark(&mut self, at: usize) -> Result<Vec<Value>> {
        let mark = self
            .marks
            .pop()
            .filter(|&m| m <= self.stack.len())
            .ok_or_else(|| self.error(at, "no MARK to pop to"))?;
        Ok(self.stack.split_off(mark))
    }

    fn extend(&mut self, at: usize, items: Vec<Value>) -> Result<()> {
        match self.top(at)? {
            Value::List(l) => l.borrow_mut().extend(items),
            Value::Object(_) => {}
            other => return Err(self.error(at, format!("APPEND to {}", other.kind()))),
        }
        Ok(())
    }

    fn set_items(&mut self, at: usize, items: Vec<Value>) -> Result<()> {
        if !items.len().is_multiple_of(2) {
            return Err(self.error(at, "odd number of items for a dict"));
        }
        match self.top(at)? {
            Value::Dict(d) => {
                let mut d = d.borrow_mut();
                let mut it = items.into_iter();
                while let (Some(k), Some(v)) = (it.next(), it.next()) {
                    d.push((k, v));
                }
            }
            Value::Object(_) => {}
            other => return Err(self.error(at, format!("SETITEMS on {}", other.kind()))),
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A pickle of `depth` tuples, each holding the previous: `() (()) ((())) …`.
    fn nested_tuples(depth: usize) -> Vec<u8> {
        let mut p = vec![op::PROTO, 2, op::EMPTY_TUPLE];
        p.extend(std::iter::repeat_n(op::TUPLE1, depth));
        p.push(op::STOP);
        p
    }

    #[test]
    fn a_pickle_nested_a_million_deep_is_refused_not_a_stack_overflow() {
        let err = read_torch(&nested_tuples(1_000_000)).unwrap_err();
        assert!(err.to_string().contains("nesting operations"), "{err}");
    }

    #[test]
    fn a_pickle_nested_to_the_limit_is_freed_without_overflow() {
        // Parses (the limit is not crossed), is not a checkpoint, and is freed on the import
        // thread's stack: an error, not a crash.
        let err = read_torch(&nested_tuples(MAX_NESTING_OPS)).unwrap_err();
        assert!(!err.to_string().contains("nesting operations"), "{err}");
    }

    fn run(p: &[u8]) -> Result<Value> {
        unpickle(p, 0, &mut |_, at| {
            Err(NnError::malformed(FORMAT, at, "no pid"))
        })
        .map(|r| r.0)
    }

    #[test]
    fn longs_are_little_endian_twos_complement() {
        assert!(matches!(long(&[]), Value::Int(0)));
        assert!(matches!(long(&[0xff]), Value::Int(-1)));
        assert!(matches!(long(&[0x00, 0x80]), Value::Int(-32768)));
        assert!(matches!(long(&[0xe9, 0x03]), Value::Int(1001)));
        assert!(matches!(long(&LEGACY_MAGIC), Value::BigInt(_)));
    }

    #[test]
    fn memo_shares_one_dict_between_references() {
        // } q\0  (  K1 K2 u  h\0 .   -> the memoised dict, filled after it was memoised
        let p = [
            b'}', b'q', 0, b'(', b'K', 1, b'K', 2, b'u', b'0', b'h', 0, b'.',
        ];
        let Value::Dict(d) = run(&p).unwrap() else {
            panic!()
        };
        assert_eq!(d.borrow().len(), 1);
    }

    #[test]
    fn malformed_pickles_are_errors_with_offsets() {
        let cases: [(&[u8], u64); 7] = [
            (b".", 0),                    // STOP on an empty stack
            (b"K", 1),                    // truncated argument
            (b"X\xff\xff\xff\x7fab.", 0), // length past the end
            (b"h\x05.", 0),               // unset memo
            (b"(.", 1),                   // STOP pops across a MARK
            (b"\xff", 0),                 // unknown opcode
            (b"u", 0),                    // SETITEMS without MARK
        ];
        for (p, at) in cases {
            match run(p) {
                Err(NnError::Malformed { offset, .. }) => assert_eq!(offset, at, "{p:?}"),
                other => panic!("{p:?}: {other:?}"),
            }
        }
    }

    #[test]
    fn strided_tensors_are_gathered_in_row_major_order() {
        let storage = Rc::new(Storage {
            key: "0".into(),
            dtype: Dtype::F32,
            numel: 6,
            view_offset: 0,
        });
        // the transpose of a 2×3 row-major matrix
        let t = TensorRef {
            storage,
            offset: 0,
            shape: vec![3, 2],
            stride: vec![1, 3],
        };
        let data = [0., 1., 2., 3., 4., 5.];
        assert_eq!(gather("t", &t, &data).unwrap(), [0., 3., 1., 4., 2., 5.]);
        let too_big = TensorRef {
            shape: vec![3, 3],
            ..t
        };
        assert!(gather("t", &too_big, &data).is_err());
    }
}
