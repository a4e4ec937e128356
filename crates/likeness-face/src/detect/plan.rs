//! The detection plan: which model sees which region of the photo (the whole photo letterboxed
//! for both models, then levels of overlapping tiles for the back model; see the module
//! documentation of [`super`]).

use super::*;

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
pub(super) fn tile_starts(len: u32, tile: u32, overlap: u32) -> Vec<u32> {
    if tile >= len {
        return vec![0];
    }
    let step = tile.saturating_sub(overlap).max(1);
    let count = (len - tile).div_ceil(step) + 1;
    (0..count)
        .map(|i| ((len - tile) as u64 * i as u64 / (count - 1) as u64) as u32)
        .collect()
}
