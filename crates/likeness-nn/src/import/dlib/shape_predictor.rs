//! dlib's shape predictor (`shape_predictor_5_face_landmarks.dat` and kin): the regression-tree
//! cascade of Kazemi & Sullivan (2014), `dlib/image_processing/shape_predictor.h`.
//!
//! The file holds, in order: a version (1); the mean shape, a column of 2L floats
//! (x0, y0, x1, y1, … in coordinates normalised to the face box); the forests, one per cascade
//! level, each a list of trees, each tree a list of splits (feature indices `idx1`, `idx2`
//! and a threshold) in breadth-first order and a list of leaf values (2L-float shape
//! increments); then per level the feature pool: for each of its P pixels the landmark it is
//! anchored to and its offset (dx, dy) from that landmark, in normalised coordinates.
//!
//! The reader keeps all of it in a [`WeightMap`] of f32 tensors, indices stored exactly (they
//! are far below 2^24). With C levels, T trees per level, S splits and S + 1 leaves per tree,
//! L landmarks and P pool pixels per level:
//!
//! | name | shape | content |
//! |---|---|---|
//! | `initial_shape` | [L, 2] | mean shape, (x, y) per landmark |
//! | `split_idx1`, `split_idx2` | [C, T, S] | pool pixels compared at each split node |
//! | `split_thresh` | [C, T, S] | go right when `pixel[idx1] − pixel[idx2] > thresh` |
//! | `leaf_values` | [C, T, S + 1, L, 2] | shape increment of each leaf |
//! | `anchor_idx` | [C, P] | landmark each pool pixel is anchored to |
//! | `deltas` | [C, P, 2] | pool pixel offset from its anchor |
//!
//! Split node `i` has children `2i + 1` and `2i + 2`; leaf `j` is node `S + j` (dlib's
//! `regression_tree::operator()`).

use super::Reader;
use crate::error::{NnError, Result};
use crate::weights::WeightMap;

/// `shape_predictor`'s serialization version.
const SHAPE_PREDICTOR_VERSION: i64 = 1;

/// Largest index an f32 holds exactly.
const MAX_EXACT_INDEX: usize = 1 << 24;

/// The smallest number of bytes a split takes: three integers and a float of at least one
/// byte each (a zero-length integer is legal).
const MIN_SPLIT_BYTES: usize = 4;
/// A tree is at least two list lengths, a matrix at least its two dimensions.
const MIN_TREE_BYTES: usize = 2;
const MIN_MATRIX_BYTES: usize = 2;
const MIN_FLOAT_BYTES: usize = 2;

/// One tree as read, before the forest is checked to be uniform.
struct Tree {
    idx1: Vec<f32>,
    idx2: Vec<f32>,
    thresh: Vec<f32>,
    leaves: Vec<f32>,
}

/// Reads a dlib shape predictor into a [`WeightMap`] (names in the module documentation).
/// Fails with [`NnError::Malformed`] and the byte offset on truncated or corrupt bytes, and
/// with [`NnError::Mismatch`] when the cascade is not a regular one this layout can hold.
/// Every byte must be consumed.
pub fn read_shape_predictor(bytes: &[u8]) -> Result<WeightMap> {
    let mut r = Reader::new(bytes);
    r.expect_int(SHAPE_PREDICTOR_VERSION, "shape_predictor version")?;

    let start = r.offset();
    let (rows, cols, initial_shape) = r.matrix()?;
    if cols != 1 || rows == 0 || rows % 2 != 0 {
        return Err(NnError::Mismatch(format!(
            "initial shape at byte {start} is {rows}x{cols}, expected a column of (x, y) pairs"
        )));
    }
    let landmarks = rows / 2;

    let levels = r.vec_len(1)?;
    let mut forests: Vec<Vec<Tree>> = Vec::new();
    for _ in 0..levels {
        let n_trees = r.vec_len(MIN_TREE_BYTES)?;
        let mut trees = Vec::new();
        for _ in 0..n_trees {
            trees.push(read_tree(&mut r, rows)?);
        }
        forests.push(trees);
    }

    let start = r.offset();
    let anchor_levels = r.vec_len(1)?;
    let mut anchors: Vec<Vec<f32>> = Vec::new();
    for _ in 0..anchor_levels {
        let n = r.vec_len(1)?;
        let mut level = Vec::new();
        for _ in 0..n {
            let at = r.offset();
            let a = r.size()?;
            if a >= landmarks {
                return Err(NnError::Mismatch(format!(
                    "anchor landmark {a} at byte {at}, the shape has {landmarks} landmarks"
                )));
            }
            level.push(a as f32);
        }
        anchors.push(level);
    }
    if anchor_levels != levels {
        return Err(NnError::Mismatch(format!(
            "{anchor_levels} anchor lists at byte {start} for {levels} cascade levels"
        )));
    }

    let start = r.offset();
    let delta_levels = r.vec_len(1)?;
    let mut deltas: Vec<Vec<f32>> = Vec::new();
    for _ in 0..delta_levels {
        let n = r.vec_len(2 * MIN_FLOAT_BYTES)?;
        let mut level = Vec::new();
        for _ in 0..n {
            // dlib::vector<float,2>: x then y.
            level.push(r.float()? as f32);
            level.push(r.float()? as f32);
        }
        deltas.push(level);
    }
    r.finish()?;
    if delta_levels != levels {
        return Err(NnError::Mismatch(format!(
            "{delta_levels} offset lists at byte {start} for {levels} cascade levels"
        )));
    }

    build_map(landmarks, initial_shape, &forests, &anchors, &deltas)
}

fn read_tree(r: &mut Reader, shape_len: usize) -> Result<Tree> {
    let n_splits = r.vec_len(MIN_SPLIT_BYTES)?;
    let mut tree = Tree {
        idx1: Vec::new(),
        idx2: Vec::new(),
        thresh: Vec::new(),
        leaves: Vec::new(),
    };
    for _ in 0..n_splits {
        for idx in [&mut tree.idx1, &mut tree.idx2] {
            let at = r.offset();
            let i = r.size()?;
            if i >= MAX_EXACT_INDEX {
                return Err(r.error_at(at, format!("split feature index {i} is implausible")));
            }
            idx.push(i as f32);
        }
        tree.thresh.push(r.float()? as f32);
    }
    let n_leaves = r.vec_len(MIN_MATRIX_BYTES)?;
    for _ in 0..n_leaves {
        let start = r.offset();
        let (rows, cols, values) = r.matrix()?;
        if rows != shape_len || cols != 1 {
            return Err(NnError::Mismatch(format!(
                "leaf value at byte {start} is {rows}x{cols}, the shape is {shape_len}x1"
            )));
        }
        tree.leaves.extend(values);
    }
    if n_leaves != n_splits + 1 {
        return Err(NnError::Mismatch(format!(
            "a tree before byte {} has {n_splits} splits and {n_leaves} leaves",
            r.offset()
        )));
    }
    Ok(tree)
}

/// Packs the cascade into fixed-shape tensors; every level must have as many trees, every tree
/// as many splits, every level as many pool pixels.
fn build_map(
    landmarks: usize,
    initial_shape: Vec<f32>,
    forests: &[Vec<Tree>],
    anchors: &[Vec<f32>],
    deltas: &[Vec<f32>],
) -> Result<WeightMap> {
    let levels = forests.len();
    let trees = forests.first().map_or(0, Vec::len);
    let splits = forests
        .first()
        .and_then(|f| f.first())
        .map_or(0, |t| t.thresh.len());
    let pool = anchors.first().map_or(0, Vec::len);
    let irregular = |what: &str| {
        NnError::Mismatch(format!(
            "the cascade is irregular ({what} differ between levels or trees)"
        ))
    };
    if forests.iter().any(|f| f.len() != trees) {
        return Err(irregular("tree counts"));
    }
    if forests.iter().flatten().any(|t| t.thresh.len() != splits) {
        return Err(irregular("tree depths"));
    }
    if anchors.iter().any(|a| a.len() != pool) || deltas.iter().any(|d| d.len() != 2 * pool) {
        return Err(irregular("feature pool sizes"));
    }
    if forests
        .iter()
        .flatten()
        .flat_map(|t| t.idx1.iter().chain(&t.idx2))
        .any(|&i| i as usize >= pool)
    {
        return Err(NnError::Mismatch(format!(
            "a split refers to a pixel beyond the feature pool of {pool}"
        )));
    }

    let all = |f: fn(&Tree) -> &Vec<f32>| -> Vec<f32> {
        forests
            .iter()
            .flatten()
            .flat_map(|t| f(t).iter().copied())
            .collect()
    };
    let mut map = WeightMap::new();
    map.set_meta("format", "dlib_shape_predictor");
    map.insert("initial_shape", vec![landmarks, 2], initial_shape)?;
    map.insert("split_idx1", vec![levels, trees, splits], all(|t| &t.idx1))?;
    map.insert("split_idx2", vec![levels, trees, splits], all(|t| &t.idx2))?;
    map.insert(
        "split_thresh",
        vec![levels, trees, splits],
        all(|t| &t.thresh),
    )?;
    map.insert(
        "leaf_values",
        vec![levels, trees, splits + 1, landmarks, 2],
        all(|t| &t.leaves),
    )?;
    map.insert("anchor_idx", vec![levels, pool], anchors.concat())?;
    map.insert("deltas", vec![levels, pool, 2], deltas.concat())?;
    Ok(map)
}
