//! dlib's shape predictor: five face landmarks from a face box, exactly as
//! `shape_predictor::operator()` (dlib/image_processing/shape_predictor.h) computes them.
//!
//! The predictor is Kazemi & Sullivan's cascade of regression forests. The shape lives in
//! coordinates normalised to the face box ((0, 0) its top-left, (1, 1) its bottom-right
//! corner). It starts as the mean shape; each cascade level reads a pool of pixels, each placed
//! at an offset from one landmark of the mean shape, carried onto the current shape by the
//! least-squares similarity from mean to current shape and then into the image by the box;
//! every tree of the level compares pixel pairs down to a leaf whose shape increment is added.
//!
//! dlib's conventions, kept here because the trees were trained with them:
//! - the pixel value is `get_pixel_intensity` of an `rgb_pixel`: `(r + g + b) / 3` in integer
//!   arithmetic; a pixel outside the image reads 0;
//! - positions are rounded to whole pixels as dlib's `vector<double> → point` conversion does,
//!   `floor(v + 0.5)`, and so are the returned landmarks;
//! - the box maps to the unit square by the affine map through its top-left, top-right and
//!   bottom-right corners (`unnormalizing_tform`), so width is `right − left`, not dlib's
//!   inclusive `right − left + 1`;
//! - the pool offsets and the shape are `float`, the similarity is computed in `double` and
//!   used in `float`, the map to the image in `double`;
//! - a split sends the pixels to the left child `2i + 1` when `pixel[idx1] − pixel[idx2] >
//!   thresh`, else to the right child `2i + 2`.
//!
//! Weights are the tensors of `likeness_nn::import::dlib::read_shape_predictor` (names and
//! shapes in its documentation), from the model cache's `dlib_shape_predictor_5.safetensors`.

use likeness_nn::NnError;
use likeness_nn::image::Image;
use likeness_nn::weights::WeightMap;

use crate::align::{DRect, Landmarks5, similarity_transform};
use crate::error::{FaceError, Result};

/// Landmarks of the model [`ShapePredictor::predict`] returns as [`Landmarks5`].
const FIVE: usize = 5;

/// The sizes of a cascade, read from its tensors' shapes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ShapePredictorConfig {
    /// Landmarks in a shape (5 for `shape_predictor_5_face_landmarks`).
    pub landmarks: usize,
    /// Cascade levels (15).
    pub levels: usize,
    /// Trees per level (500).
    pub trees: usize,
    /// Split nodes per tree (15: depth 4); a tree has one more leaf than splits.
    pub splits: usize,
    /// Pixels in each level's feature pool (800).
    pub pool: usize,
}

/// One split node: compare two pool pixels against a threshold.
#[derive(Clone, Copy, Debug)]
struct Split {
    idx1: u32,
    idx2: u32,
    thresh: f32,
}

/// One pool pixel: the landmark it hangs from and its offset, in normalised coordinates.
#[derive(Clone, Copy, Debug)]
struct PoolPixel {
    anchor: u32,
    delta: [f32; 2],
}

/// dlib's regression-tree cascade, ready to run.
#[derive(Clone, Debug)]
pub struct ShapePredictor {
    config: ShapePredictorConfig,
    /// The mean shape, x0, y0, x1, y1, … (dlib's `initial_shape`).
    initial_shape: Vec<f32>,
    /// [levels, trees, splits].
    splits: Vec<Split>,
    /// [levels, trees, splits + 1, landmarks · 2].
    leaves: Vec<f32>,
    /// [levels, pool].
    pool: Vec<PoolPixel>,
}

impl ShapePredictor {
    /// Builds the predictor from the importer's tensors, checking every index so that a
    /// damaged or foreign weight file is an error, never a panic.
    pub fn load(weights: &WeightMap) -> Result<Self> {
        let initial = weights.get("initial_shape")?;
        let &[landmarks, 2] = initial.shape.as_slice() else {
            return Err(mismatch(format!(
                "initial_shape has shape {:?}, expected [landmarks, 2]",
                initial.shape
            )));
        };
        let idx1 = weights.get("split_idx1")?;
        let &[levels, trees, splits] = idx1.shape.as_slice() else {
            return Err(mismatch(format!(
                "split_idx1 has shape {:?}, expected [levels, trees, splits]",
                idx1.shape
            )));
        };
        let anchors = weights.get("anchor_idx")?;
        let &[_, pool] = anchors.shape.as_slice() else {
            return Err(mismatch(format!(
                "anchor_idx has shape {:?}, expected [levels, pool]",
                anchors.shape
            )));
        };
        let config = ShapePredictorConfig {
            landmarks,
            levels,
            trees,
            splits,
            pool,
        };
        if landmarks == 0 {
            return Err(mismatch("the mean shape has no landmarks".into()));
        }

        let idx2 = expect(weights, "split_idx2", &[levels, trees, splits])?;
        let thresh = expect(weights, "split_thresh", &[levels, trees, splits])?;
        let leaves = expect(
            weights,
            "leaf_values",
            &[levels, trees, splits + 1, landmarks, 2],
        )?;
        let anchors = expect(weights, "anchor_idx", &[levels, pool])?;
        let deltas = expect(weights, "deltas", &[levels, pool, 2])?;
        let idx1 = expect(weights, "split_idx1", &[levels, trees, splits])?;
        let initial = expect(weights, "initial_shape", &[landmarks, 2])?;

        for (name, values) in [
            ("initial_shape", initial),
            ("split_thresh", thresh),
            ("leaf_values", leaves),
            ("deltas", deltas),
        ] {
            if let Some(i) = values.iter().position(|v| !v.is_finite()) {
                return Err(mismatch(format!("{name}[{i}] is not finite")));
            }
        }

        let split_nodes = idx1
            .iter()
            .zip(idx2)
            .zip(thresh)
            .enumerate()
            .map(|(i, ((&a, &b), &t))| {
                Ok(Split {
                    idx1: index("split_idx1", i, a, pool)?,
                    idx2: index("split_idx2", i, b, pool)?,
                    thresh: t,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        let pool_pixels = anchors
            .iter()
            .zip(deltas.chunks_exact(2))
            .enumerate()
            .map(|(i, (&a, d))| {
                Ok(PoolPixel {
                    anchor: index("anchor_idx", i, a, landmarks)?,
                    delta: [d[0], d[1]],
                })
            })
            .collect::<Result<Vec<_>>>()?;

        Ok(ShapePredictor {
            config,
            initial_shape: initial.to_vec(),
            splits: split_nodes,
            leaves: leaves.to_vec(),
            pool: pool_pixels,
        })
    }

    /// The cascade's sizes.
    pub fn config(&self) -> ShapePredictorConfig {
        self.config
    }

    /// The five landmarks inside `rect` (a face box in dlib's detector convention), in whole
    /// pixels as dlib returns them. Fails when the model does not predict five points or the
    /// box is not finite.
    pub fn predict(&self, image: &Image, rect: &DRect) -> Result<Landmarks5> {
        if self.config.landmarks != FIVE {
            return Err(FaceError::Invalid(format!(
                "this shape predictor gives {} landmarks, not 5",
                self.config.landmarks
            )));
        }
        let points = self.predict_points(image, rect)?;
        let mut out = [(0.0, 0.0); FIVE];
        out.copy_from_slice(&points);
        Ok(Landmarks5(out))
    }

    /// Every landmark of the model inside `rect`, in whole pixels, in the model's order.
    pub fn predict_points(&self, image: &Image, rect: &DRect) -> Result<Vec<(f64, f64)>> {
        let corners = [rect.left, rect.top, rect.right, rect.bottom];
        if corners.iter().any(|v| !v.is_finite()) {
            return Err(FaceError::Invalid(format!(
                "face box {rect:?} is not finite"
            )));
        }
        let needed = image.width as usize * image.height as usize * 3;
        if image.pixels.len() < needed {
            return Err(FaceError::Invalid(format!(
                "{}x{} image has {} bytes, RGB needs {needed}",
                image.width,
                image.height,
                image.pixels.len()
            )));
        }

        let c = self.config;
        let shape_len = 2 * c.landmarks;
        let leaf_stride = (c.splits + 1) * shape_len;
        let to_image = BoxMap::new(rect);
        let mean = points_f64(&self.initial_shape);
        let mut shape = self.initial_shape.clone();
        let mut features = vec![0.0f32; c.pool];

        for level in 0..c.levels {
            // dlib: matrix_cast<float>(find_tform_between_shapes(initial, current).get_m()).
            let m = if c.landmarks == 1 {
                [[1.0, 0.0], [0.0, 1.0]]
            } else {
                similarity_transform(&mean, &points_f64(&shape))
                    .m
                    .map(|row| row.map(|v| v as f32))
            };
            let pool = &self.pool[level * c.pool..(level + 1) * c.pool];
            for (value, px) in features.iter_mut().zip(pool) {
                let a = px.anchor as usize;
                let [dx, dy] = px.delta;
                let x = m[0][0] * dx + m[0][1] * dy + shape[2 * a];
                let y = m[1][0] * dx + m[1][1] * dy + shape[2 * a + 1];
                *value = intensity(image, to_image.apply(x, y));
            }

            let first_tree = level * c.trees;
            for tree in first_tree..first_tree + c.trees {
                let nodes = &self.splits[tree * c.splits..(tree + 1) * c.splits];
                let mut i = 0;
                while i < nodes.len() {
                    let s = nodes[i];
                    i = if features[s.idx1 as usize] - features[s.idx2 as usize] > s.thresh {
                        2 * i + 1
                    } else {
                        2 * i + 2
                    };
                }
                // The last split node's right child is 2·splits: the leaf index is ≤ splits.
                let leaf = tree * leaf_stride + (i - nodes.len()) * shape_len;
                for (v, d) in shape.iter_mut().zip(&self.leaves[leaf..leaf + shape_len]) {
                    *v += d;
                }
            }
        }

        Ok(shape
            .chunks_exact(2)
            .map(|p| {
                let (x, y) = to_image.apply(p[0], p[1]);
                (round_half_up(x), round_half_up(y))
            })
            .collect())
    }
}

/// dlib's `unnormalizing_tform(rect)`: the unit square onto the box, through its top-left,
/// top-right and bottom-right corners.
struct BoxMap {
    origin: (f64, f64),
    scale: (f64, f64),
}

impl BoxMap {
    fn new(rect: &DRect) -> Self {
        BoxMap {
            origin: (rect.left, rect.top),
            scale: (rect.right - rect.left, rect.bottom - rect.top),
        }
    }

    fn apply(&self, x: f32, y: f32) -> (f64, f64) {
        (
            self.scale.0 * x as f64 + self.origin.0,
            self.scale.1 * y as f64 + self.origin.1,
        )
    }
}

/// dlib's `get_pixel_intensity` of the `rgb_pixel` nearest to `p`, 0 outside the image.
fn intensity(image: &Image, (x, y): (f64, f64)) -> f32 {
    let (x, y) = (round_half_up(x), round_half_up(y));
    if !(x >= 0.0 && y >= 0.0 && x < image.width as f64 && y < image.height as f64) {
        return 0.0;
    }
    let i = 3 * (y as usize * image.width as usize + x as usize);
    let p = &image.pixels[i..i + 3];
    ((p[0] as u32 + p[1] as u32 + p[2] as u32) / 3) as f32
}

/// dlib's floating-point → integer point conversion.
fn round_half_up(v: f64) -> f64 {
    (v + 0.5).floor()
}

fn points_f64(shape: &[f32]) -> Vec<(f64, f64)> {
    shape
        .chunks_exact(2)
        .map(|p| (p[0] as f64, p[1] as f64))
        .collect()
}

fn mismatch(message: String) -> FaceError {
    FaceError::Nn(NnError::Mismatch(format!("shape predictor: {message}")))
}

/// The values of tensor `name`, which must have `shape` and as many values as it says.
fn expect<'a>(weights: &'a WeightMap, name: &str, shape: &[usize]) -> Result<&'a [f32]> {
    let t = weights.expect(name, shape)?;
    let n = shape.iter().try_fold(1usize, |n, &d| n.checked_mul(d));
    if n != Some(t.data.len()) {
        return Err(mismatch(format!(
            "{name} has {} values for shape {shape:?}",
            t.data.len()
        )));
    }
    Ok(&t.data)
}

/// An index stored as f32: a whole number below `bound`.
fn index(name: &str, at: usize, value: f32, bound: usize) -> Result<u32> {
    if value >= 0.0 && value.fract() == 0.0 && (value as usize) < bound {
        Ok(value as u32)
    } else {
        Err(mismatch(format!(
            "{name}[{at}] = {value} is not an index below {bound}"
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A one-level, one-split cascade over a 5-point mean shape on the unit square's centre
    /// line: pool pixel 0 sits at landmark 0, pool pixel 1 at landmark 4, both offset by
    /// (0.1, 0); the split asks whether pixel 0 is brighter than pixel 1 by more than 10.
    fn tiny() -> WeightMap {
        let mut w = WeightMap::new();
        let mean = vec![0.2, 0.5, 0.4, 0.5, 0.5, 0.5, 0.6, 0.5, 0.8, 0.5];
        w.insert("initial_shape", vec![5, 2], mean).unwrap();
        w.insert("split_idx1", vec![1, 1, 1], vec![0.0]).unwrap();
        w.insert("split_idx2", vec![1, 1, 1], vec![1.0]).unwrap();
        w.insert("split_thresh", vec![1, 1, 1], vec![10.0]).unwrap();
        // Left leaf moves every point down by 0.1, right leaf up by 0.1.
        let mut leaves = Vec::new();
        for dy in [0.1f32, -0.1] {
            for _ in 0..5 {
                leaves.extend([0.0, dy]);
            }
        }
        w.insert("leaf_values", vec![1, 1, 2, 5, 2], leaves)
            .unwrap();
        w.insert("anchor_idx", vec![1, 2], vec![0.0, 4.0]).unwrap();
        w.insert("deltas", vec![1, 2, 2], vec![0.1, 0.0, 0.1, 0.0])
            .unwrap();
        w
    }

    fn unit_box(side: f64) -> DRect {
        DRect {
            left: 0.0,
            top: 0.0,
            right: side,
            bottom: side,
        }
    }

    /// A 100² image, black except for the column x = 30 (where pool pixel 0 lands in a box
    /// 0..100: (0.2 + 0.1)·100) in the given colour.
    fn image_with_column(rgb: [u8; 3]) -> Image {
        let mut pixels = vec![0u8; 100 * 100 * 3];
        for y in 0..100 {
            let i = 3 * (y * 100 + 30);
            pixels[i..i + 3].copy_from_slice(&rgb);
        }
        Image::from_rgb(100, 100, pixels).unwrap()
    }

    #[test]
    fn brighter_first_pixel_goes_left() {
        let p = ShapePredictor::load(&tiny()).unwrap();
        // Intensity (200 + 10 + 0) / 3 = 70 > 0 + 10: left leaf, points move down 10 px.
        let marks = p
            .predict(&image_with_column([200, 10, 0]), &unit_box(100.0))
            .unwrap();
        assert_eq!(marks.0[0], (20.0, 60.0));
        assert_eq!(marks.0[4], (80.0, 60.0));
        // Intensity (20 + 10 + 0) / 3 = 10, not > 10: right leaf.
        let marks = p
            .predict(&image_with_column([20, 10, 0]), &unit_box(100.0))
            .unwrap();
        assert_eq!(marks.0[2], (50.0, 40.0));
    }

    #[test]
    fn pixels_outside_the_image_read_zero() {
        let p = ShapePredictor::load(&tiny()).unwrap();
        let image = image_with_column([255, 255, 255]);
        // Shifted far to the left, the box puts both pool pixels outside: 0 − 0 ≤ 10.
        let rect = DRect {
            left: -1000.0,
            top: 0.0,
            right: -900.0,
            bottom: 100.0,
        };
        let marks = p.predict(&image, &rect).unwrap();
        assert_eq!(marks.0[0], (-980.0, 40.0));
    }

    #[test]
    fn corrupt_weights_are_errors() {
        let mut w = tiny();
        w.insert("split_idx2", vec![1, 1, 1], vec![2.0]).unwrap();
        assert!(ShapePredictor::load(&w).is_err());
        let mut w = tiny();
        w.insert("anchor_idx", vec![1, 2], vec![0.0, 5.0]).unwrap();
        assert!(ShapePredictor::load(&w).is_err());
        let mut w = tiny();
        w.insert("split_idx1", vec![1, 1, 1], vec![0.5]).unwrap();
        assert!(ShapePredictor::load(&w).is_err());
        let mut w = tiny();
        w.insert("leaf_values", vec![1, 1, 3, 5, 2], vec![0.0; 30])
            .unwrap();
        assert!(ShapePredictor::load(&w).is_err());
        // A NaN threshold never reaches the predictor: the weight map refuses it.
        let mut w = tiny();
        assert!(
            w.insert("split_thresh", vec![1, 1, 1], vec![f32::NAN])
                .is_err()
        );
    }

    #[test]
    fn bad_boxes_and_images_are_errors() {
        let p = ShapePredictor::load(&tiny()).unwrap();
        let image = image_with_column([1, 2, 3]);
        let mut rect = unit_box(100.0);
        rect.right = f64::NAN;
        assert!(p.predict(&image, &rect).is_err());
        let short = Image {
            width: 100,
            height: 100,
            pixels: vec![0; 10],
        };
        assert!(p.predict(&short, &unit_box(100.0)).is_err());
    }
}
