//! Face detection around BlazeFace: preparing inputs (letterbox, tiles), decoding outputs, and
//! mapping detections back to the photo.
//!
//! # Images of any size
//! BlazeFace sees a square of 128² (front model) or 256² (back model) pixels. A photo is
//! letterboxed into it: scaled to fit, keeping its aspect, and padded with black. A face that
//! becomes tiny in that square is missed, so [`plan`] also cuts the photo into overlapping
//! square tiles, each run through the back model at its own scale:
//!
//! - level 0 is made for the smallest face wanted, [`DetectOptions::min_face`] = m pixels: its
//!   tiles are m·256/[`BACK_MIN_FACE`] pixels wide, so m-pixel faces appear
//!   [`BACK_MIN_FACE`] pixels wide in the model's input;
//! - each next level doubles the face size and the tile side, until a tile would cover the
//!   whole photo: that last level is the whole photo, letterboxed (one pass);
//! - tiles of a level overlap by 2·m (twice that level's face size), so every face the level is
//!   responsible for (m up to 2·m) lies entirely inside one of its tiles;
//! - the front model also sees the whole photo, for faces that fill much of it.
//!
//! Each pass is trusted with a range of face sizes ([`Pass::face_range`]): the front model
//! with faces of at least [`FRONT_MIN_FACE`] input pixels, tiles with faces of at most
//! [`TILE_MAX_FACE`]. Detections of a tile that touch one of its borders inside the photo are
//! cut faces and are dropped (a coarser level sees them whole); all the rest are merged by
//! weighted NMS.
//! For a 1920×1280 group photo with m = 40 that is about 34 passes of a 256² network, run in
//! parallel.
//!
//! # Confirmation
//! BlazeFace also fires on face-like things (a cat, a cup, a wall plate). Each merged candidate
//! is shown to the front model again, in a square crop a little wider than its box, and kept
//! only if the front model finds it there too ([`DetectOptions::confirm`]).

pub mod decode;
pub mod faceness;

pub use decode::{Model, NMS_IOU, NUM_KEYPOINTS};

use burn::tensor::{Device, Tensor};
use likeness_nn::image::Image;
use likeness_nn::nets::blazeface::{self, BlazeFace, BlazeFaceVariant};
use likeness_nn::weights::WeightMap;
use rayon::prelude::*;

use crate::error::{FaceError, Result};

/// Width, in the back model's 256² input, of the smallest face it is relied on to find.
/// Its smallest anchors are 0.15625·256 = 40 px (MediaPipe's `min_scale` for the back graph);
/// the regressors shrink them somewhat, and 24 px keeps clear of the model's limit.
pub const BACK_MIN_FACE: f32 = 24.0;
/// Width, in the front model's 128² input, of the smallest face taken from it: a quarter of
/// its side. Smaller "faces" from the front model were found mislocated (boxes twice the face)
/// on the group photos; the back model covers those sizes.
pub const FRONT_MIN_FACE: f32 = 32.0;
/// Widest face, in the back model's input, taken from a tile: twice the widest a tile level is
/// responsible for (2·[`BACK_MIN_FACE`]). Coarser levels see bigger faces whole; big "faces"
/// in fine tiles were found to be texture (a false positive on sample1.jpg).
pub const TILE_MAX_FACE: f32 = 4.0 * BACK_MIN_FACE;
/// Fraction of a tile's side within which a detection touching an interior tile border is
/// treated as a cut face.
const TILE_EDGE_MARGIN: f32 = 0.02;
/// Sides, in widths of a candidate's box, of the square crops around it in which the front model
/// re-examines it ([`DetectOptions::confirm`]): the face then spans two thirds and half of the
/// front model's input, the close-up framing it was made for. Two views because on our samples
/// a real face scored low in one or the other (turned, tilted, 40 px faces), never in both; the
/// second runs only for candidates the first did not confirm.
pub const CONFIRM_CONTEXTS: [f32; 2] = [1.5, 2.0];
/// Default score the front model must give a candidate in one of the close-up views. Measured
/// on the samples (tests/detection.rs), best of the two views: the 29 real faces, also with the
/// photos shrunk to 0.5, 0.3 and 0.2 of their size (faces of 20–250 px), scored 0.69 at least;
/// the false faces (cat on chelsea.png, coffee.png's cup, a wall plate on sample3.jpg) 0.60 at
/// most. 0.65 is the middle, and the back model's own threshold ([`Model::min_score`]).
pub const CONFIRM_MIN_SCORE: f32 = 0.65;
/// Overlap (IoU) a detection of a close-up view must have with the candidate to confirm it: the
/// same face, not a neighbour that entered the crop.
pub const CONFIRM_IOU: f32 = 0.5;

/// Default smallest face width looked for, in photo pixels: dlib's HOG detector with one
/// upsampling (face_recognition's default) finds faces down to about 40 px.
pub const DEFAULT_MIN_FACE: u32 = 40;
/// Smallest `min_face` the detector accepts: each halving of it adds a level of tiles (four
/// times as many passes), and below ~20 px BlazeFace's back model was not checked
/// (tests/detection.rs shrinks the samples' faces to 20 px at the least).
pub const MIN_FACE_FLOOR: u32 = 20;

/// A face found in an image: box, confidence and BlazeFace's six keypoints, all in the
/// pixel coordinates of the image given to the detector.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Detection {
    /// x0, y0, x1, y1 (left, top, right, bottom) in image pixels.
    pub bbox: [f32; 4],
    /// Probability that this is a face, after the sigmoid.
    pub score: f32,
    /// Right eye, left eye, nose tip, mouth centre, right ear, left ear (the subject's
    /// sides), each (x, y) in image pixels.
    pub keypoints: [(f32, f32); NUM_KEYPOINTS],
}

impl Detection {
    /// Box width in pixels.
    pub fn width(&self) -> f32 {
        self.bbox[2] - self.bbox[0]
    }

    /// Box height in pixels.
    pub fn height(&self) -> f32 {
        self.bbox[3] - self.bbox[1]
    }

    /// The same detection with every coordinate passed through `f`.
    pub fn map(&self, f: impl Fn(f32, f32) -> (f32, f32)) -> Detection {
        let (x0, y0) = f(self.bbox[0], self.bbox[1]);
        let (x1, y1) = f(self.bbox[2], self.bbox[3]);
        Detection {
            bbox: [x0, y0, x1, y1],
            score: self.score,
            keypoints: self.keypoints.map(|(x, y)| f(x, y)),
        }
    }
}

/// A rectangle of whole pixels inside an image.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Region {
    pub x: u32,
    pub y: u32,
    pub width: u32,
    pub height: u32,
}

impl Region {
    /// The whole of an image.
    pub fn whole(image: &Image) -> Region {
        Region {
            x: 0,
            y: 0,
            width: image.width,
            height: image.height,
        }
    }
}

/// How a region of a photo was placed in a square network input: scaled by `scale`, then
/// offset by the padding. Maps input pixels back to photo pixels.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Letterbox {
    pub region: Region,
    /// Side of the square input.
    pub size: u32,
    /// Size of the scaled region inside the input.
    pub scaled_width: u32,
    pub scaled_height: u32,
    /// Left and top padding, in input pixels.
    pub pad_x: u32,
    pub pad_y: u32,
}

impl Letterbox {
    /// Fits `region` into a `size`² square, centred, keeping its aspect.
    pub fn new(region: Region, size: u32) -> Letterbox {
        let long = region.width.max(region.height).max(1) as f64;
        let fit = |side: u32| ((side as f64 * size as f64 / long).round() as u32).clamp(1, size);
        let (scaled_width, scaled_height) = (fit(region.width), fit(region.height));
        Letterbox {
            region,
            size,
            scaled_width,
            scaled_height,
            pad_x: (size - scaled_width) / 2,
            pad_y: (size - scaled_height) / 2,
        }
    }

    /// A point of the network input, in photo pixels.
    pub fn to_image(&self, x: f32, y: f32) -> (f32, f32) {
        let sx = self.region.width as f32 / self.scaled_width as f32;
        let sy = self.region.height as f32 / self.scaled_height as f32;
        (
            self.region.x as f32 + (x - self.pad_x as f32) * sx,
            self.region.y as f32 + (y - self.pad_y as f32) * sy,
        )
    }

    /// The square of `side` photo pixels centred on `centre`, seen in a `size`² input: the part
    /// inside the `width`×`height` photo is scaled into place and the rest is black padding.
    /// `None` when the square misses the photo or is not a finite, positive size.
    pub fn around(
        width: u32,
        height: u32,
        centre: (f32, f32),
        side: f32,
        size: u32,
    ) -> Option<Letterbox> {
        if !(side.is_finite() && centre.0.is_finite() && centre.1.is_finite()) || side < 1.0 {
            return None;
        }
        // whole photo pixels, in f64 so that no size a network can report overflows
        let side = (side as f64).round();
        let x0 = (centre.0 as f64 - side / 2.0).round();
        let y0 = (centre.1 as f64 - side / 2.0).round();
        let (rx0, ry0) = (x0.max(0.0), y0.max(0.0));
        let (rx1, ry1) = (
            (x0 + side).min(width as f64),
            (y0 + side).min(height as f64),
        );
        if rx1 <= rx0 || ry1 <= ry0 || size == 0 {
            return None;
        }
        // input pixel of a photo offset from the square's corner
        let at = |v: f64| ((v * size as f64 / side).round() as u32).min(size);
        let (pad_x, pad_y) = (at(rx0 - x0).min(size - 1), at(ry0 - y0).min(size - 1));
        let scaled_width = at(rx1 - x0).saturating_sub(pad_x).clamp(1, size - pad_x);
        let scaled_height = at(ry1 - y0).saturating_sub(pad_y).clamp(1, size - pad_y);
        Some(Letterbox {
            // within the photo: 0 ≤ rx0 < rx1 ≤ width, all whole numbers
            region: Region {
                x: rx0 as u32,
                y: ry0 as u32,
                width: (rx1 - rx0) as u32,
                height: (ry1 - ry0) as u32,
            },
            size,
            scaled_width,
            scaled_height,
            pad_x,
            pad_y,
        })
    }

    /// Builds the network input: the region resampled (antialiased bilinear) and padded black.
    pub fn apply(&self, image: &Image) -> Result<Image> {
        let scaled = resample(image, self.region, self.scaled_width, self.scaled_height)?;
        let size = self.size as usize;
        let mut pixels = vec![0u8; size * size * 3];
        let row = self.scaled_width as usize * 3;
        for y in 0..self.scaled_height as usize {
            let dst = ((y + self.pad_y as usize) * size + self.pad_x as usize) * 3;
            pixels[dst..dst + row].copy_from_slice(&scaled.pixels[y * row..(y + 1) * row]);
        }
        Ok(Image::from_rgb(self.size, self.size, pixels)?)
    }
}

/// Resamples `region` of `image` to `width`×`height` with a triangle (bilinear) filter whose
/// support widens with the reduction, as PIL's `Image.resize(BILINEAR)` does, so that strong
/// reductions average pixels instead of skipping them. (The BlazeFace reference inputs were
/// made with PIL's resize.)
pub fn resample(image: &Image, region: Region, width: u32, height: u32) -> Result<Image> {
    if width == 0
        || height == 0
        || region.width == 0
        || region.height == 0
        || region.x as u64 + region.width as u64 > image.width as u64
        || region.y as u64 + region.height as u64 > image.height as u64
    {
        return Err(FaceError::Invalid(format!(
            "cannot resample {region:?} of a {}x{} image to {width}x{height}",
            image.width, image.height
        )));
    }
    let xs = filter_taps(region.width, width);
    let ys = filter_taps(region.height, height);
    // Horizontal pass over every row of the region, then the vertical pass. Each output value
    // sums its taps in order from zero, however the loops are arranged: the same bits.
    let (row_len, stride) = (width as usize * 3, image.width as usize);
    let mut tmp = vec![0f32; region.height as usize * row_len];
    // one source row as floats (exact), converted once rather than once per tap
    let src_len = region.width as usize * 3;
    let mut src = vec![0f32; src_len];
    for (y, dst) in tmp.chunks_exact_mut(row_len).enumerate() {
        let first = ((region.y as usize + y) * stride + region.x as usize) * 3;
        for (s, &p) in src.iter_mut().zip(&image.pixels[first..first + src_len]) {
            *s = p as f32;
        }
        for ((start, weights), out) in xs.iter().zip(dst.chunks_exact_mut(3)) {
            let mut acc = [0f32; 3];
            for (w, p) in weights.iter().zip(src[start * 3..].chunks_exact(3)) {
                acc[0] += w * p[0];
                acc[1] += w * p[1];
                acc[2] += w * p[2];
            }
            // rounded to bytes between the passes, as PIL does
            for (o, a) in out.iter_mut().zip(acc) {
                *o = a.round().clamp(0.0, 255.0);
            }
        }
    }
    // the vertical pass a whole output row at a time: contiguous, so it vectorises
    let mut out = vec![0u8; row_len * height as usize];
    let mut acc = vec![0f32; row_len];
    for ((start, weights), dst) in ys.iter().zip(out.chunks_exact_mut(row_len)) {
        acc.fill(0.0);
        for (w, row) in weights
            .iter()
            .zip(tmp[start * row_len..].chunks_exact(row_len))
        {
            for (a, &p) in acc.iter_mut().zip(row) {
                *a += w * p;
            }
        }
        for (o, &a) in dst.iter_mut().zip(&acc) {
            *o = a.round().clamp(0.0, 255.0) as u8;
        }
    }
    Ok(Image::from_rgb(width, height, out)?)
}

/// For each output sample: first source index and normalised triangle-filter weights.
fn filter_taps(src: u32, dst: u32) -> Vec<(usize, Vec<f32>)> {
    let scale = src as f64 / dst as f64;
    let support = scale.max(1.0);
    (0..dst)
        .map(|i| {
            let centre = (i as f64 + 0.5) * scale;
            let lo = ((centre - support + 0.5).floor().max(0.0)) as usize;
            let hi = ((centre + support + 0.5).floor() as usize)
                .min(src as usize)
                .max(lo + 1);
            let mut w: Vec<f64> = (lo..hi)
                .map(|j| (1.0 - ((j as f64 + 0.5 - centre) / support).abs()).max(0.0))
                .collect();
            let total: f64 = w.iter().sum();
            if total > 0.0 {
                w.iter_mut().for_each(|v| *v /= total);
            } else {
                w = vec![0.0; hi - lo];
                w[0] = 1.0;
            }
            (lo, w.into_iter().map(|v| v as f32).collect())
        })
        .collect()
}

/// What to look for and how hard.
#[derive(Clone, Debug, PartialEq)]
pub struct DetectOptions {
    /// Smallest face width wanted, in photo pixels (sets the finest tiles; at least
    /// [`MIN_FACE_FLOOR`]).
    pub min_face: u32,
    /// Minimum score; `None` uses each model's default ([`Model::min_score`]).
    pub min_score: Option<f32>,
    /// IoU above which detections merge.
    pub nms_iou: f32,
    /// Tile the photo for small faces (else only whole-photo passes run).
    pub tile: bool,
    /// Keep only the candidates that the front model, shown each one close up
    /// ([`CONFIRM_CONTEXTS`]), also finds with at least this score; `None` keeps them all.
    /// Removes face-like things (a cat, a cup, a wall plate) the passes of [`plan`] report.
    pub confirm: Option<f32>,
    /// How much more candidates of [`faceness::LARGE_FACE`] pixels or more must score in the
    /// close-up views than `confirm` asks ([`faceness::close_up_min_score`]); 0 asks the same
    /// of every size.
    pub large_face_extra: f32,
}

impl Default for DetectOptions {
    fn default() -> Self {
        DetectOptions {
            min_face: DEFAULT_MIN_FACE,
            min_score: None,
            nms_iou: NMS_IOU,
            tile: true,
            confirm: Some(CONFIRM_MIN_SCORE),
            large_face_extra: faceness::LARGE_FACE_EXTRA_SCORE,
        }
    }
}

/// One network run: which model sees which region of the photo.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Pass {
    pub model: Model,
    pub region: Region,
    /// True for tiles (part of the photo), whose cut faces are dropped.
    pub is_tile: bool,
    /// Range of face widths, in the model's input pixels, this pass is trusted with.
    pub face_range: (f32, f32),
}

/// The passes that find faces from `options.min_face` pixels up in a `width`×`height` photo
/// (see the module documentation).
pub fn plan(width: u32, height: u32, options: &DetectOptions) -> Vec<Pass> {
    let whole = Region {
        x: 0,
        y: 0,
        width,
        height,
    };
    let mut passes = vec![
        Pass {
            model: Model::Front,
            region: whole,
            is_tile: false,
            face_range: (FRONT_MIN_FACE, f32::INFINITY),
        },
        Pass {
            model: Model::Back,
            region: whole,
            is_tile: false,
            face_range: (0.0, f32::INFINITY),
        },
    ];
    if !options.tile {
        return passes;
    }
    let back = Model::Back.input_size() as f32;
    let mut face = options.min_face.max(MIN_FACE_FLOOR) as f32;
    loop {
        let tile = (face * back / BACK_MIN_FACE).ceil() as u32;
        if tile >= width.max(height) {
            break;
        }
        let overlap = (2.0 * face).ceil() as u32;
        for y in tile_starts(height, tile, overlap) {
            for x in tile_starts(width, tile, overlap) {
                passes.push(Pass {
                    model: Model::Back,
                    region: Region {
                        x,
                        y,
                        width: tile.min(width),
                        height: tile.min(height),
                    },
                    is_tile: true,
                    face_range: (0.0, TILE_MAX_FACE),
                });
            }
        }
        face *= 2.0;
    }
    passes
}

/// Evenly spread starts of `tile`-long windows covering `0..len`, neighbours overlapping by at
/// least `overlap`.
fn tile_starts(len: u32, tile: u32, overlap: u32) -> Vec<u32> {
    if tile >= len {
        return vec![0];
    }
    let step = tile.saturating_sub(overlap).max(1);
    let count = (len - tile).div_ceil(step) + 1;
    (0..count)
        .map(|i| ((len - tile) as u64 * i as u64 / (count - 1) as u64) as u32)
        .collect()
}

/// Raw outputs of one BlazeFace run on one input: 896 score logits and 896×16 regressors.
pub type RawOutput = (Vec<f32>, Vec<f32>);

/// Finds faces in `image`: runs `network` on the inputs of every pass of [`plan`] (all inputs
/// of one model at once, so it can batch them), decodes, maps back to photo pixels, drops cut
/// faces of tiles, merges by weighted NMS and keeps the candidates the front model confirms
/// ([`DetectOptions::confirm`]). Best first.
pub fn detect_with<F>(
    image: &Image,
    options: &DetectOptions,
    mut network: F,
) -> Result<Vec<Detection>>
where
    F: FnMut(Model, &[Image]) -> Result<Vec<RawOutput>>,
{
    let passes = plan(image.width, image.height, options);
    let mut all = Vec::new();
    for model in [Model::Front, Model::Back] {
        let mine: Vec<(&Pass, Letterbox)> = passes
            .iter()
            .filter(|p| p.model == model)
            .map(|p| (p, Letterbox::new(p.region, model.input_size())))
            .collect();
        let outputs = run_views(
            image,
            model,
            mine.iter().map(|(_, lb)| lb),
            &mut network,
            "BlazeFace batch",
        )?;
        let min_score = options.min_score.unwrap_or(model.min_score());
        for ((pass, letterbox), (scores, regressors)) in mine.iter().zip(outputs) {
            for d in decode::decode(model, &scores, &regressors, min_score)? {
                let (lo, hi) = pass.face_range;
                if d.width() < lo || d.width() > hi {
                    continue;
                }
                let d = d.map(|x, y| letterbox.to_image(x, y));
                if pass.is_tile && touches_inner_border(&d, pass.region, image) {
                    continue;
                }
                all.push(d);
            }
        }
    }
    // `min_face` is a promise, not only a tiling plan: the whole-photo passes also report
    // faces below it, which the README says are skipped.
    let min_face = options.min_face.max(MIN_FACE_FLOOR) as f32;
    let candidates: Vec<Detection> = decode::weighted_nms(all, options.nms_iou)
        .into_iter()
        .filter(|d| d.width() >= min_face)
        .collect();
    match options.confirm {
        Some(min_score) => confirm(
            image,
            candidates,
            min_score,
            options.large_face_extra,
            &mut network,
        ),
        None => Ok(candidates),
    }
}

/// Runs `model` on the `letterboxes` views of `image` (inputs prepared in parallel), checking
/// that `network` answers each.
fn run_views<'a, F>(
    image: &Image,
    model: Model,
    letterboxes: impl Iterator<Item = &'a Letterbox>,
    network: &mut F,
    what: &'static str,
) -> Result<Vec<RawOutput>>
where
    F: FnMut(Model, &[Image]) -> Result<Vec<RawOutput>>,
{
    let letterboxes: Vec<&Letterbox> = letterboxes.collect();
    let inputs = letterboxes
        .par_iter()
        .map(|lb| lb.apply(image))
        .collect::<Result<Vec<_>>>()?;
    let outputs = network(model, &inputs)?;
    if outputs.len() != inputs.len() {
        return Err(FaceError::OutputSize {
            what,
            expected: inputs.len(),
            got: outputs.len(),
        });
    }
    Ok(outputs)
}

/// The candidates that the front model also finds, with at least `min_score` and the same box
/// (IoU ≥ [`CONFIRM_IOU`]), in one of the close-up crops of [`CONFIRM_CONTEXTS`]: a second
/// opinion at the scale the front model was made for.
fn confirm<F>(
    image: &Image,
    candidates: Vec<Detection>,
    min_score: f32,
    large_face_extra: f32,
    network: &mut F,
) -> Result<Vec<Detection>>
where
    F: FnMut(Model, &[Image]) -> Result<Vec<RawOutput>>,
{
    let model = Model::Front;
    let mut confirmed = vec![false; candidates.len()];
    // one view at a time, each only for the candidates the previous views left unconfirmed
    for context in CONFIRM_CONTEXTS {
        let views: Vec<(usize, Letterbox)> = candidates
            .iter()
            .enumerate()
            .filter(|(i, _)| !confirmed[*i])
            .filter_map(|(i, d)| {
                let centre = ((d.bbox[0] + d.bbox[2]) / 2.0, (d.bbox[1] + d.bbox[3]) / 2.0);
                let side = context * d.width().max(d.height());
                Letterbox::around(image.width, image.height, centre, side, model.input_size())
                    .map(|lb| (i, lb))
            })
            .collect();
        if views.is_empty() {
            break;
        }
        let letterboxes = views.iter().map(|(_, lb)| lb);
        let outputs = run_views(
            image,
            model,
            letterboxes,
            network,
            "BlazeFace confirmation batch",
        )?;
        for ((i, letterbox), (scores, regressors)) in views.iter().zip(outputs) {
            // large candidates need a surer close-up (see faceness)
            let needed = faceness::close_up_min_score(&candidates[*i], min_score, large_face_extra);
            confirmed[*i] = decode::decode(model, &scores, &regressors, needed)?
                .iter()
                .any(|d| {
                    let d = d.map(|x, y| letterbox.to_image(x, y));
                    decode::iou(&d.bbox, &candidates[*i].bbox) >= CONFIRM_IOU
                });
        }
    }
    Ok(candidates
        .into_iter()
        .zip(confirmed)
        .filter_map(|(d, ok)| ok.then_some(d))
        .collect())
}

/// Inputs per network call. Batching tiles gave no speed-up on burn-flex (33 back passes of
/// sample1.jpg: 2.7 s in batches of 34, 1.7–2.5 s one by one, on a loaded 2-core machine; and
/// with the batches in parallel, batches of 4 within ±5% of single inputs), so inputs go one at
/// a time; the batched path stays for backends where it pays.
const MAX_BATCH: usize = 1;

/// BlazeFace front and back, ready to run the detection plan.
#[derive(Debug)]
pub struct Detector {
    front: BlazeFace,
    back: BlazeFace,
    device: Device,
    /// What [`Detector::detect`] looks for.
    pub options: DetectOptions,
}

impl Detector {
    /// Wraps both networks (the front model for close faces, the back model for small ones).
    pub fn new(front: BlazeFace, back: BlazeFace, device: Device) -> Self {
        Detector {
            front,
            back,
            device,
            options: DetectOptions::default(),
        }
    }

    /// Builds both networks from their weights (the cache's `blazeface_front` and
    /// `blazeface_back`).
    pub fn load(front: &WeightMap, back: &WeightMap, device: &Device) -> Result<Self> {
        Ok(Detector::new(
            BlazeFace::load(front, device)?,
            BlazeFace::load(back, device)?,
            device.clone(),
        ))
    }

    /// The faces in `image`, best first, in its pixel coordinates.
    pub fn detect(&self, image: &Image) -> Result<Vec<Detection>> {
        detect_with(image, &self.options, |model, inputs| {
            self.run(model, inputs)
        })
    }

    /// Runs one model on square inputs of its size, in batches, the batches in parallel.
    pub fn run(&self, model: Model, inputs: &[Image]) -> Result<Vec<RawOutput>> {
        let batches = inputs
            .par_chunks(MAX_BATCH)
            .map(|batch| self.run_batch(model, batch))
            .collect::<Result<Vec<_>>>()?;
        Ok(batches.into_iter().flatten().collect())
    }

    /// Runs one model on one batch of inputs.
    fn run_batch(&self, model: Model, batch: &[Image]) -> Result<Vec<RawOutput>> {
        let (net, variant) = match model {
            Model::Front => (&self.front, BlazeFaceVariant::Front),
            Model::Back => (&self.back, BlazeFaceVariant::Back),
        };
        let mut out = Vec::with_capacity(batch.len());
        {
            let x = batch
                .iter()
                .map(|img| blazeface::image_input(img, variant, &self.device))
                .collect::<likeness_nn::Result<Vec<_>>>()?;
            let y = net.forward(Tensor::cat(x, 0));
            let values = |t: Tensor<3>| {
                t.into_data()
                    .try_into_vec::<f32>()
                    .map_err(|e| FaceError::Invalid(format!("BlazeFace output: {e:?}")))
            };
            let (scores, boxes) = (values(y.scores)?, values(y.boxes)?);
            let (ns, nb) = (
                decode::NUM_ANCHORS,
                decode::NUM_ANCHORS * decode::REGRESSOR_LEN,
            );
            if scores.len() != ns * batch.len() || boxes.len() != nb * batch.len() {
                return Err(FaceError::OutputSize {
                    what: "BlazeFace output",
                    expected: (ns + nb) * batch.len(),
                    got: scores.len() + boxes.len(),
                });
            }
            for i in 0..batch.len() {
                out.push((
                    scores[i * ns..(i + 1) * ns].to_vec(),
                    boxes[i * nb..(i + 1) * nb].to_vec(),
                ));
            }
        }
        Ok(out)
    }
}

/// Whether a detection reaches a tile border that is not also the photo's border.
fn touches_inner_border(d: &Detection, tile: Region, image: &Image) -> bool {
    let margin = TILE_EDGE_MARGIN * tile.width.max(tile.height) as f32;
    let (x0, y0) = (tile.x as f32, tile.y as f32);
    let (x1, y1) = (x0 + tile.width as f32, y0 + tile.height as f32);
    (tile.x > 0 && d.bbox[0] < x0 + margin)
        || (tile.y > 0 && d.bbox[1] < y0 + margin)
        || (tile.x + tile.width < image.width && d.bbox[2] > x1 - margin)
        || (tile.y + tile.height < image.height && d.bbox[3] > y1 - margin)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn letterbox_round_trips_points_of_a_wide_region() {
        let lb = Letterbox::new(
            Region {
                x: 100,
                y: 50,
                width: 400,
                height: 200,
            },
            128,
        );
        assert_eq!(
            (lb.scaled_width, lb.scaled_height, lb.pad_x, lb.pad_y),
            (128, 64, 0, 32)
        );
        assert_eq!(lb.to_image(0.0, 32.0), (100.0, 50.0));
        assert_eq!(lb.to_image(128.0, 96.0), (500.0, 250.0));
    }

    #[test]
    fn letterbox_around_a_point_pads_what_lies_outside_the_photo() {
        // a 100-px square centred at (20, 50) of a 200×100 photo: 30 px hang over the left
        let lb = Letterbox::around(200, 100, (20.0, 50.0), 100.0, 50).unwrap();
        assert_eq!(
            lb.region,
            Region {
                x: 0,
                y: 0,
                width: 70,
                height: 100
            }
        );
        assert_eq!(
            (lb.pad_x, lb.pad_y, lb.scaled_width, lb.scaled_height),
            (15, 0, 35, 50)
        );
        // the input's corners are the square's corners, in photo pixels
        assert_eq!(lb.to_image(0.0, 0.0), (-30.0, 0.0));
        assert_eq!(lb.to_image(50.0, 50.0), (70.0, 100.0));
        let img = Image::from_rgb(200, 100, vec![90; 200 * 100 * 3]).unwrap();
        let input = lb.apply(&img).unwrap();
        assert_eq!(input.pixel(14, 25), [0, 0, 0]);
        assert_eq!(input.pixel(15, 25), [90, 90, 90]);
        assert_eq!(input.pixel(49, 49), [90, 90, 90]);
        // squares off the photo, empty or not finite: nothing to show
        assert!(Letterbox::around(200, 100, (-80.0, 50.0), 100.0, 50).is_none());
        assert!(Letterbox::around(200, 100, (20.0, 50.0), 0.4, 50).is_none());
        assert!(Letterbox::around(200, 100, (f32::NAN, 50.0), 100.0, 50).is_none());
        // an absurd box from a broken network: the whole photo, shrunk into the input's middle
        let huge = Letterbox::around(200, 100, (100.0, 50.0), 1e30, 50).unwrap();
        assert_eq!(huge.region, Region::whole(&img));
        assert!(huge.apply(&img).is_ok());
    }

    /// Raw outputs of a model that sees one face centred in its input, `1/fill` of the input
    /// wide, with score logit `logit`.
    fn centred_face(model: Model, fill: f32, logit: f32) -> RawOutput {
        let mut scores = vec![-20.0; decode::NUM_ANCHORS];
        let mut regressors = vec![0.0; decode::NUM_ANCHORS * decode::REGRESSOR_LEN];
        let size = model.input_size() as f32;
        let anchors = model.anchors();
        // the first anchor of the cell whose top-left corner is the input's centre
        let i = anchors
            .iter()
            .position(|a| a[0] * size > size / 2.0 && a[1] * size > size / 2.0)
            .unwrap();
        let (ax, ay) = (anchors[i][0] * size, anchors[i][1] * size);
        let w = size / fill;
        scores[i] = logit;
        let r = &mut regressors[i * decode::REGRESSOR_LEN..(i + 1) * decode::REGRESSOR_LEN];
        r[..4].copy_from_slice(&[size / 2.0 - ax, size / 2.0 - ay, w, w]);
        (scores, regressors)
    }

    #[test]
    fn confirmation_keeps_only_what_the_front_model_finds_close_up() {
        let photo = Image::from_rgb(200, 200, vec![128; 200 * 200 * 3]).unwrap();
        // every pass sees a face filling half of its input; the front model's close-up views
        // (every call after the two whole-photo passes) score it `close_up`
        let run = |options: &DetectOptions, close_up: f32| {
            let mut calls = Vec::new();
            let found = detect_with(&photo, options, |model, inputs| {
                calls.push((model, inputs.len()));
                let logit = if calls.len() > 2 { close_up } else { 3.0 };
                Ok(vec![centred_face(model, 2.0, logit); inputs.len()])
            })
            .unwrap();
            (found, calls)
        };
        let options = DetectOptions::default();
        let (found, calls) = run(&options, 2.0);
        assert_eq!(found.len(), 1);
        assert!((found[0].bbox[0] - 50.0).abs() < 1.0 && (found[0].bbox[2] - 150.0).abs() < 1.0);
        // whole-photo front and back passes, then the first close-up view, which confirms
        assert_eq!(
            calls,
            [(Model::Front, 1), (Model::Back, 1), (Model::Front, 1)]
        );
        // a close-up score of sigmoid(0) = 0.5 is under CONFIRM_MIN_SCORE: both views are tried
        let (found, calls) = run(&options, 0.0);
        assert!(found.is_empty());
        assert_eq!(calls.len(), 2 + CONFIRM_CONTEXTS.len());
        let unconfirmed = DetectOptions {
            confirm: None,
            ..options
        };
        let (found, calls) = run(&unconfirmed, 0.0);
        assert_eq!((found.len(), calls.len()), (1, 2));
    }

    #[test]
    fn letterbox_input_is_padded_black_around_the_scaled_photo() {
        let img = Image::from_rgb(4, 2, vec![200; 24]).unwrap();
        let lb = Letterbox::new(Region::whole(&img), 8);
        let input = lb.apply(&img).unwrap();
        assert_eq!((input.width, input.height), (8, 8));
        assert_eq!(input.pixel(0, 0), [0, 0, 0]);
        assert_eq!(input.pixel(3, 3), [200, 200, 200]);
        assert_eq!(input.pixel(3, 6), [0, 0, 0]);
    }

    #[test]
    fn resample_averages_when_shrinking_and_keeps_constants() {
        // a 1-pixel checkerboard shrunk 4× becomes mid-grey, not a sample of it
        let (w, h) = (16u32, 16u32);
        let px: Vec<u8> = (0..w * h)
            .flat_map(|i| {
                let v = if (i % w + i / w) % 2 == 0 { 0 } else { 255 };
                [v, v, v]
            })
            .collect();
        let img = Image::from_rgb(w, h, px).unwrap();
        let small = resample(&img, Region::whole(&img), 4, 4).unwrap();
        for p in small.pixels {
            assert!((120..=135).contains(&p), "{p}");
        }
        let flat = Image::from_rgb(5, 3, vec![77; 45]).unwrap();
        let up = resample(&flat, Region::whole(&flat), 11, 7).unwrap();
        assert!(up.pixels.iter().all(|&p| p == 77));
        assert!(
            resample(
                &flat,
                Region {
                    x: 3,
                    y: 0,
                    width: 3,
                    height: 3
                },
                2,
                2
            )
            .is_err()
        );
    }

    #[test]
    fn larger_min_face_means_fewer_passes() {
        // The figures `likeness detect --help` quotes for a 1920×1280 photo.
        let passes = |min_face| {
            let options = DetectOptions {
                min_face,
                ..DetectOptions::default()
            };
            plan(1920, 1280, &options).len()
        };
        assert_eq!(
            [passes(DEFAULT_MIN_FACE), passes(80), passes(160)],
            [34, 10, 4]
        );
        // Below the floor the plan is the floor's.
        assert_eq!(passes(1), passes(MIN_FACE_FLOOR));
        assert!(passes(MIN_FACE_FLOOR) > passes(DEFAULT_MIN_FACE));
    }

    #[test]
    fn plan_tiles_cover_the_photo_with_enough_overlap() {
        let options = DetectOptions::default();
        let passes = plan(1920, 1280, &options);
        assert_eq!(passes.iter().filter(|p| !p.is_tile).count(), 2);
        let tiles: Vec<_> = passes.iter().filter(|p| p.is_tile).collect();
        assert!(!tiles.is_empty() && tiles.len() < 60, "{}", tiles.len());
        // every point of the photo lies in a finest-level tile
        let finest = tiles[0].region.width;
        for y in (0..1280).step_by(37) {
            for x in (0..1920).step_by(37) {
                assert!(tiles.iter().any(|t| t.region.width == finest
                    && (t.region.x..t.region.x + t.region.width).contains(&x)
                    && (t.region.y..t.region.y + t.region.height).contains(&y)));
            }
        }
        assert!(
            tiles.iter().all(
                |t| t.region.x + t.region.width <= 1920 && t.region.y + t.region.height <= 1280
            )
        );
        // a small photo needs no tiles
        assert_eq!(plan(300, 200, &options).len(), 2);
        assert_eq!(
            plan(
                1920,
                1280,
                &DetectOptions {
                    tile: false,
                    ..options
                }
            )
            .len(),
            2
        );
    }

    #[test]
    fn tile_starts_overlap_by_at_least_the_requested_amount() {
        let s = tile_starts(1000, 300, 80);
        assert_eq!(s[0], 0);
        assert_eq!(*s.last().unwrap(), 700);
        assert!(s.windows(2).all(|w| w[0] + 300 >= w[1] + 80));
        assert_eq!(tile_starts(100, 300, 80), vec![0]);
    }
}
