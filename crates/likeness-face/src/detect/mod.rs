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

mod confirm;
pub mod decode;
pub mod faceness;
mod letterbox;
mod plan;
mod run;

pub use decode::{Model, NMS_IOU, NUM_KEYPOINTS};
pub use letterbox::{Letterbox, Region, resample};
pub use plan::{DetectOptions, Pass, plan};
pub use run::{Detector, RawOutput, detect_with};

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

#[cfg(test)]
mod tests {
    use super::letterbox::*;
    use super::plan::*;
    use super::run::*;
    use super::*;
    use likeness_nn::image::Image;

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
