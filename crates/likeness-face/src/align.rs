//! Face alignment: dlib's face-chip geometry, reproduced exactly.
//!
//! dlib's embedding network was trained on chips cut by `get_face_chip_details(shape, 150,
//! 0.25)` and `extract_image_chip` (dlib/image_transforms/interpolation.h). Matching them
//! pixel for pixel matters, so this module follows that code step by step:
//!
//! 1. a least-squares similarity transform (Umeyama, as `find_similarity_transform`) from the
//!    5-point template, padded and scaled to the chip, onto the landmarks;
//! 2. its rotation angle and a chip rectangle (`centered_drect` of the transformed chip centre,
//!    side 150·scale, with dlib's inclusive `drectangle` widths);
//! 3. when the rectangle is much larger than the chip, dlib's `pyramid_down<2>` (a 5-tap
//!    1-4-6-4-1 filter, integer arithmetic) on the surrounding crop, as many levels as dlib
//!    takes;
//! 4. bilinear sampling of each chip pixel with dlib's conventions: the chip's corners map to
//!    the rotated rectangle's corners, values are truncated to bytes, samples whose 2×2
//!    neighbourhood leaves the image are black.

use likeness_nn::image::Image;

use crate::detect::Detection;
use crate::error::{FaceError, Result};

/// Side of the chip dlib's ResNet embeds (`compute_face_descriptor`'s 150×150 input).
pub const CHIP_SIZE: u32 = 150;
/// Padding around the face in the chip, as a fraction of the template's extent: the 0.25 that
/// dlib's `compute_face_descriptor` and face_recognition use.
pub const CHIP_PADDING: f64 = 0.25;

/// dlib's 5-point face template, in [0, 1] face coordinates (`get_face_chip_details` for
/// 5-part shapes): outer and inner corner of the eye on the image's right, outer and inner
/// corner of the eye on the image's left, and the base of the nose.
pub const TEMPLATE_5: [(f64, f64); 5] = [
    (0.8595674595992, 0.2134981538014),
    (0.6460604764104, 0.2289674387677),
    (0.1205750620789, 0.2137274526848),
    (0.3340850613712, 0.2290642403242),
    (0.4901123135679, 0.6277975316475),
];

/// Where the nose base (under the nose) lies between BlazeFace's nose tip (0) and mouth
/// centre (1). Measured on the astronaut (dlib's landmark against BlazeFace's front and back
/// keypoints gave 0.43 and 0.32); approximate.
const NOSE_BASE_FRACTION: f64 = 0.4;

/// The five landmarks of dlib's `shape_predictor_5_face_landmarks`, in image pixels, in
/// dlib's order (see [`TEMPLATE_5`]).
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Landmarks5(pub [(f64, f64); 5]);

impl Landmarks5 {
    /// Approximate 5-point landmarks from BlazeFace's keypoints, for the fast path that skips
    /// the shape predictor: eye corners placed on the line through the eye centres at the
    /// template's proportions, the nose base between nose tip and mouth
    /// ([`NOSE_BASE_FRACTION`]). Good enough for a roughly upright frontal face; the shape
    /// predictor is more faithful to what dlib's network expects.
    pub fn from_detection(d: &Detection) -> Landmarks5 {
        let p = |i: usize| (d.keypoints[i].0 as f64, d.keypoints[i].1 as f64);
        // BlazeFace keypoint 0 is the subject's right eye: the eye on the image's left.
        let (left_eye, right_eye, nose, mouth) = (p(0), p(1), p(2), p(3));
        let t = TEMPLATE_5;
        // Half the corner-to-corner span of an eye, along the eye axis, as a fraction of the
        // distance between the eye centres, from the template itself.
        let centre_r = mid(t[0], t[1]);
        let centre_l = mid(t[2], t[3]);
        let axis = (centre_r.0 - centre_l.0, centre_r.1 - centre_l.1);
        let half = ((t[0].0 - t[1].0) * axis.0 + (t[0].1 - t[1].1) * axis.1)
            / (2.0 * (axis.0 * axis.0 + axis.1 * axis.1));
        let u = (right_eye.0 - left_eye.0, right_eye.1 - left_eye.1);
        let along = |c: (f64, f64), k: f64| (c.0 + k * u.0, c.1 + k * u.1);
        Landmarks5([
            along(right_eye, half),
            along(right_eye, -half),
            along(left_eye, -half),
            along(left_eye, half),
            (
                nose.0 + NOSE_BASE_FRACTION * (mouth.0 - nose.0),
                nose.1 + NOSE_BASE_FRACTION * (mouth.1 - nose.1),
            ),
        ])
    }
}

fn mid(a: (f64, f64), b: (f64, f64)) -> (f64, f64) {
    ((a.0 + b.0) / 2.0, (a.1 + b.1) / 2.0)
}

/// An affine map of the plane: `(x, y) ↦ m·(x, y) + t`.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Affine {
    pub m: [[f64; 2]; 2],
    pub t: [f64; 2],
}

impl Affine {
    /// Applies the map to a point.
    pub fn apply(&self, (x, y): (f64, f64)) -> (f64, f64) {
        (
            self.m[0][0] * x + self.m[0][1] * y + self.t[0],
            self.m[1][0] * x + self.m[1][1] * y + self.t[1],
        )
    }

    /// The inverse map; `None` when it is singular.
    pub fn inverse(&self) -> Option<Affine> {
        let [[a, b], [c, d]] = self.m;
        let det = a * d - b * c;
        if det == 0.0 || !det.is_finite() {
            return None;
        }
        let m = [[d / det, -b / det], [-c / det, a / det]];
        let t = [
            -(m[0][0] * self.t[0] + m[0][1] * self.t[1]),
            -(m[1][0] * self.t[0] + m[1][1] * self.t[1]),
        ];
        Some(Affine { m, t })
    }
}

/// A rectangle with real corners and dlib's `drectangle` conventions: right and bottom are
/// inclusive, so the width is `right − left + 1`.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct DRect {
    pub left: f64,
    pub top: f64,
    pub right: f64,
    pub bottom: f64,
}

impl DRect {
    /// dlib's `centered_drect(p, width, height)`.
    pub fn centered(p: (f64, f64), width: f64, height: f64) -> DRect {
        let (w, h) = ((width - 1.0) / 2.0, (height - 1.0) / 2.0);
        DRect {
            left: p.0 - w,
            top: p.1 - h,
            right: p.0 + w,
            bottom: p.1 + h,
        }
    }

    fn is_empty(&self) -> bool {
        self.top > self.bottom || self.left > self.right
    }

    fn width(&self) -> f64 {
        if self.is_empty() {
            0.0
        } else {
            self.right - self.left + 1.0
        }
    }

    fn height(&self) -> f64 {
        if self.is_empty() {
            0.0
        } else {
            self.bottom - self.top + 1.0
        }
    }

    fn area(&self) -> f64 {
        self.width() * self.height()
    }

    fn center(&self) -> (f64, f64) {
        (
            (self.left + self.right) / 2.0,
            (self.top + self.bottom) / 2.0,
        )
    }

    fn translate(&self, dx: f64, dy: f64) -> DRect {
        DRect {
            left: self.left + dx,
            top: self.top + dy,
            right: self.right + dx,
            bottom: self.bottom + dy,
        }
    }

    /// `pyramid_down<2>::rect_down`: where the rectangle lies one pyramid level down.
    fn down(&self) -> DRect {
        // dlib's pyramid_down_2_1::point_down is p/2 − (1.25, 0.75).
        DRect {
            left: self.left / 2.0 - 1.25,
            top: self.top / 2.0 - 0.75,
            right: self.right / 2.0 - 1.25,
            bottom: self.bottom / 2.0 - 0.75,
        }
    }

    /// The four corners rotated by `angle` about the centre: top-left, top-right,
    /// bottom-left, bottom-right.
    fn rotated_corners(&self, angle: f64) -> [(f64, f64); 4] {
        let c = self.center();
        let (s, k) = angle.sin_cos();
        let rot = |(x, y): (f64, f64)| {
            let (dx, dy) = (x - c.0, y - c.1);
            (c.0 + k * dx - s * dy, c.1 + s * dx + k * dy)
        };
        [
            rot((self.left, self.top)),
            rot((self.right, self.top)),
            rot((self.left, self.bottom)),
            rot((self.right, self.bottom)),
        ]
    }
}

/// Where a chip is cut from: dlib's `chip_details` (rectangle, rotation, output size).
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ChipDetails {
    pub rect: DRect,
    /// Rotation of the rectangle about its centre, radians.
    pub angle: f64,
    pub rows: u32,
    pub cols: u32,
}

impl ChipDetails {
    /// The map from chip pixels to image pixels (chip corners onto the rotated rectangle's).
    pub fn chip_to_image(&self) -> Affine {
        corner_map(&self.rect, self.angle, self.cols, self.rows)
    }
}

/// An aligned face: the chip and the map from its pixels to the photo's.
#[derive(Clone, Debug, PartialEq)]
pub struct Chip {
    pub image: Image,
    pub details: ChipDetails,
    /// Chip pixel → photo pixel.
    pub transform: Affine,
}

/// dlib's `find_similarity_transform(from, to)`: the least-squares rotation + uniform scale +
/// translation taking `from` onto `to`. In 2-D Umeyama's SVD solution has this closed form,
/// reflections included (the determinant correction gives the same optimum).
pub fn similarity_transform(from: &[(f64, f64)], to: &[(f64, f64)]) -> Affine {
    let n = from.len().min(to.len()).max(1) as f64;
    let mean = |p: &[(f64, f64)]| {
        let (sx, sy) = p.iter().fold((0.0, 0.0), |a, q| (a.0 + q.0, a.1 + q.1));
        (sx / n, sy / n)
    };
    let (mf, mt) = (mean(from), mean(to));
    let (mut sigma, mut a, mut b) = (0.0, 0.0, 0.0);
    for (f, t) in from.iter().zip(to) {
        let (fx, fy) = (f.0 - mf.0, f.1 - mf.1);
        let (tx, ty) = (t.0 - mt.0, t.1 - mt.1);
        sigma += fx * fx + fy * fy;
        a += fx * tx + fy * ty;
        b += fx * ty - fy * tx;
    }
    // dlib keeps scale 1 when the source points coincide
    let (a, b) = if sigma != 0.0 {
        (a / sigma, b / sigma)
    } else {
        (1.0, 0.0)
    };
    let m = [[a, -b], [b, a]];
    let t = [mt.0 - (a * mf.0 - b * mf.1), mt.1 - (b * mf.0 + a * mf.1)];
    Affine { m, t }
}

/// dlib's `get_face_chip_details(shape, size, padding)` for a 5-point shape.
pub fn face_chip_details(landmarks: &Landmarks5, size: u32, padding: f64) -> Result<ChipDetails> {
    if size < 2 || !padding.is_finite() || padding < 0.0 {
        return Err(FaceError::Invalid(format!(
            "chip size {size} and padding {padding}: need size ≥ 2 and padding ≥ 0"
        )));
    }
    if landmarks
        .0
        .iter()
        .any(|p| !p.0.is_finite() || !p.1.is_finite())
    {
        return Err(FaceError::Invalid(format!(
            "landmarks are not finite: {landmarks:?}"
        )));
    }
    let s = size as f64;
    let from = TEMPLATE_5.map(|(x, y)| {
        (
            (padding + x) / (2.0 * padding + 1.0) * s,
            (padding + y) / (2.0 * padding + 1.0) * s,
        )
    });
    let tform = similarity_transform(&from, &landmarks.0);
    let (px, py) = (tform.m[0][0], tform.m[1][0]);
    let angle = py.atan2(px);
    let scale = px.hypot(py);
    // NaN fails the comparison as well
    if scale.is_nan() || scale * s <= 1.0 {
        return Err(FaceError::Invalid(format!(
            "landmarks {landmarks:?} are too close together to align a face"
        )));
    }
    let centre = tform.apply((s / 2.0, s / 2.0));
    Ok(ChipDetails {
        rect: DRect::centered(centre, s * scale, s * scale),
        angle,
        rows: size,
        cols: size,
    })
}

/// The chip dlib's ResNet expects: [`CHIP_SIZE`] pixels, [`CHIP_PADDING`].
pub fn align(image: &Image, landmarks: &Landmarks5) -> Result<Chip> {
    let details = face_chip_details(landmarks, CHIP_SIZE, CHIP_PADDING)?;
    extract_chip(image, &details)
}

/// dlib's `extract_image_chip(img, details, chip)` with bilinear interpolation.
pub fn extract_chip(image: &Image, details: &ChipDetails) -> Result<Chip> {
    let (rows, cols) = (details.rows, details.cols);
    if rows < 2 || cols < 2 || !details.angle.is_finite() {
        return Err(FaceError::Invalid(format!(
            "cannot extract a {cols}x{rows} chip at angle {}",
            details.angle
        )));
    }
    let chip_area = rows as f64 * cols as f64;
    let transform = details.chip_to_image();
    let rect = details.rect;
    let black = || Image::from_rgb(cols, rows, vec![0; rows as usize * cols as usize * 3]);

    // dlib copies without resampling when nothing is rotated or scaled.
    if details.angle == 0.0 && rect.height() == rows as f64 && rect.width() == cols as f64 {
        let (x0, y0) = (round_half_up(rect.left), round_half_up(rect.top));
        let mut chip = black()?;
        for r in 0..rows as i64 {
            for c in 0..cols as i64 {
                let (x, y) = (x0 + c, y0 + r);
                if x >= 0 && y >= 0 && x < image.width as i64 && y < image.height as i64 {
                    let src = (y as usize * image.width as usize + x as usize) * 3;
                    let dst = (r as usize * cols as usize + c as usize) * 3;
                    chip.pixels[dst..dst + 3].copy_from_slice(&image.pixels[src..src + 3]);
                }
            }
        }
        return Ok(Chip {
            image: chip,
            details: *details,
            transform,
        });
    }

    // How deep a pyramid dlib builds, and the border it keeps around the rotated rectangle.
    let mut depth = 0;
    let mut grow = 2.0;
    let mut r = rect.down();
    while r.area() > chip_area {
        r = r.down();
        depth += 1;
        grow = grow * 2.0 + 2.0;
    }
    let corners = rect.rotated_corners(details.angle);
    let (mut bx0, mut by0, mut bx1, mut by1) = (f64::MAX, f64::MAX, f64::MIN, f64::MIN);
    for (x, y) in corners {
        bx0 = bx0.min(x);
        by0 = by0.min(y);
        bx1 = bx1.max(x);
        by1 = by1.max(y);
    }
    // grow, intersect with the image, round to whole pixels (drectangle → rectangle)
    let bbox = [
        round_half_up((bx0 - grow).max(0.0)),
        round_half_up((by0 - grow).max(0.0)),
        round_half_up((bx1 + grow).min(image.width as f64 - 1.0)),
        round_half_up((by1 + grow).min(image.height as f64 - 1.0)),
    ];
    if bbox[0] > bbox[2] || bbox[1] > bbox[3] {
        // the face lies outside the photo
        return Ok(Chip {
            image: black()?,
            details: *details,
            transform,
        });
    }
    let mut level = Plane::crop(image, bbox);
    let mut r = rect.translate(-bbox[0] as f64, -bbox[1] as f64);
    let mut levels = 0;
    while r.down().area() > chip_area && levels < depth {
        level = level.pyramid_down();
        r = r.down();
        levels += 1;
    }
    let sample = corner_map(&r, details.angle, cols, rows);
    let mut pixels = Vec::with_capacity(rows as usize * cols as usize * 3);
    for y in 0..rows {
        for x in 0..cols {
            let p = sample.apply((x as f64, y as f64));
            pixels.extend(level.bilinear(p).unwrap_or([0, 0, 0]));
        }
    }
    Ok(Chip {
        image: Image::from_rgb(cols, rows, pixels)?,
        details: *details,
        transform,
    })
}

/// dlib's drectangle → rectangle conversion: `floor(v + 0.5)`.
fn round_half_up(v: f64) -> i64 {
    (v + 0.5).floor() as i64
}

/// The affine map taking chip corners (0,0), (cols−1,0), (0,rows−1) onto the corners of
/// `rect` rotated by `angle` (dlib's `find_affine_transform` on those three pairs).
fn corner_map(rect: &DRect, angle: f64, cols: u32, rows: u32) -> Affine {
    let [tl, tr, bl, _] = rect.rotated_corners(angle);
    let (w, h) = ((cols - 1).max(1) as f64, (rows - 1).max(1) as f64);
    Affine {
        m: [
            [(tr.0 - tl.0) / w, (bl.0 - tl.0) / h],
            [(tr.1 - tl.1) / w, (bl.1 - tl.1) / h],
        ],
        t: [tl.0, tl.1],
    }
}

/// An RGB8 image region owned for pyramid building and sampling.
struct Plane {
    width: usize,
    height: usize,
    pixels: Vec<u8>,
}

impl Plane {
    /// Copies the inclusive pixel rectangle `[x0, y0, x1, y1]` (already inside the image).
    fn crop(image: &Image, [x0, y0, x1, y1]: [i64; 4]) -> Plane {
        let (width, height) = ((x1 - x0 + 1) as usize, (y1 - y0 + 1) as usize);
        let mut pixels = Vec::with_capacity(width * height * 3);
        for y in y0 as usize..=y1 as usize {
            let start = (y * image.width as usize + x0 as usize) * 3;
            pixels.extend_from_slice(&image.pixels[start..start + width * 3]);
        }
        Plane {
            width,
            height,
            pixels,
        }
    }

    /// dlib's `pyramid_down<2>` for RGB: a separable 1-4-6-4-1 filter keeping every other
    /// row and column, output `((h−3)/2) × ((w−3)/2)`, sums in integers divided by 256 with
    /// truncation. Images of 8 pixels or fewer on a side become empty, as in dlib.
    fn pyramid_down(&self) -> Plane {
        if self.width <= 8 || self.height <= 8 {
            return Plane {
                width: 0,
                height: 0,
                pixels: Vec::new(),
            };
        }
        let (w, h) = ((self.width - 3) / 2, (self.height - 3) / 2);
        const TAPS: [u32; 5] = [1, 4, 6, 4, 1];
        let mut rows = vec![0u32; self.height * w * 3];
        for y in 0..self.height {
            for x in 0..w {
                for c in 0..3 {
                    let mut acc = 0;
                    for (k, tap) in TAPS.iter().enumerate() {
                        acc += tap * self.pixels[(y * self.width + 2 * x + k) * 3 + c] as u32;
                    }
                    rows[(y * w + x) * 3 + c] = acc;
                }
            }
        }
        let mut pixels = Vec::with_capacity(w * h * 3);
        for y in 0..h {
            for x in 0..w {
                for c in 0..3 {
                    let mut acc = 0;
                    for (k, tap) in TAPS.iter().enumerate() {
                        acc += tap * rows[((2 * y + k) * w + x) * 3 + c];
                    }
                    pixels.push((acc / 256) as u8);
                }
            }
        }
        Plane {
            width: w,
            height: h,
            pixels,
        }
    }

    /// dlib's `interpolate_bilinear` for RGB: `None` when the 2×2 neighbourhood leaves the
    /// image; each channel truncated to a byte.
    fn bilinear(&self, (x, y): (f64, f64)) -> Option<[u8; 3]> {
        if !x.is_finite() || !y.is_finite() {
            return None;
        }
        let (left, top) = (x.floor(), y.floor());
        if left < 0.0
            || top < 0.0
            || left + 1.0 >= self.width as f64
            || top + 1.0 >= self.height as f64
        {
            return None;
        }
        let (l, t) = (left as usize, top as usize);
        let (fx, fy) = (x - left, y - top);
        let at =
            |xx: usize, yy: usize, c: usize| self.pixels[(yy * self.width + xx) * 3 + c] as f64;
        let mut out = [0u8; 3];
        for (c, o) in out.iter_mut().enumerate() {
            let v = (1.0 - fy) * ((1.0 - fx) * at(l, t, c) + fx * at(l + 1, t, c))
                + fy * ((1.0 - fx) * at(l, t + 1, c) + fx * at(l + 1, t + 1, c));
            // dlib's assign_pixel saturates, then converts by truncation
            *o = v.clamp(0.0, 255.0) as u8;
        }
        Some(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gradient(width: u32, height: u32) -> Image {
        let px = (0..height)
            .flat_map(|y| (0..width).flat_map(move |x| [(x % 256) as u8, (y % 256) as u8, 128]))
            .collect();
        Image::from_rgb(width, height, px).unwrap()
    }

    #[test]
    fn similarity_transform_recovers_a_known_map() {
        let (a, b, tx, ty) = (1.7 * 0.3f64.cos(), 1.7 * 0.3f64.sin(), 12.0, -4.0);
        let from: Vec<_> = TEMPLATE_5
            .iter()
            .map(|&(x, y)| (x * 100.0, y * 100.0))
            .collect();
        let to: Vec<_> = from
            .iter()
            .map(|&(x, y)| (a * x - b * y + tx, b * x + a * y + ty))
            .collect();
        let t = similarity_transform(&from, &to);
        for (got, want) in t.m.iter().flatten().zip([a, -b, b, a]) {
            assert!((got - want).abs() < 1e-12);
        }
        assert!((t.t[0] - tx).abs() < 1e-9 && (t.t[1] - ty).abs() < 1e-9);
        let back = t.inverse().unwrap().apply(t.apply((3.0, 4.0)));
        assert!((back.0 - 3.0).abs() < 1e-9 && (back.1 - 4.0).abs() < 1e-9);
    }

    #[test]
    fn chip_of_the_template_itself_is_an_identity_crop() {
        // landmarks exactly where the template puts them in a 150² chip: the chip rectangle
        // is the chip's own square (centred on 75, inclusive width 150), unrotated
        let s = CHIP_SIZE as f64;
        let p = CHIP_PADDING;
        let lm = Landmarks5(
            TEMPLATE_5.map(|(x, y)| ((p + x) / (2.0 * p + 1.0) * s, (p + y) / (2.0 * p + 1.0) * s)),
        );
        let d = face_chip_details(&lm, CHIP_SIZE, CHIP_PADDING).unwrap();
        assert!(d.angle.abs() < 1e-12);
        assert!((d.rect.left - 0.5).abs() < 1e-9 && (d.rect.right - 149.5).abs() < 1e-9);
        let img = gradient(200, 200);
        let chip = align(&img, &lm).unwrap();
        assert_eq!((chip.image.width, chip.image.height), (150, 150));
        // chip pixel x samples the photo at x + 0.5 (or copies x + 1 when exactly unrotated)
        let px = chip.image.pixel(75, 40);
        assert!(
            (px[0] as i32 - 75).abs() <= 1 && (px[1] as i32 - 40).abs() <= 1,
            "{px:?}"
        );
    }

    #[test]
    fn large_faces_go_through_the_pyramid_and_still_match_the_small_chip() {
        // the same synthetic face at 1× and 4×: the 4× chip comes from a pyramid level and must
        // look like the 1× chip
        let small = gradient(220, 220);
        let big = Image::from_rgb(
            880,
            880,
            (0..880u32)
                .flat_map(|y| {
                    let small = &small;
                    (0..880u32).flat_map(move |x| small.pixel(x / 4, y / 4))
                })
                .collect(),
        )
        .unwrap();
        let lm = Landmarks5([
            (150.0, 80.0),
            (125.0, 82.0),
            (70.0, 80.0),
            (95.0, 82.0),
            (110.0, 125.0),
        ]);
        let lm4 = Landmarks5(lm.0.map(|(x, y)| (x * 4.0 + 1.5, y * 4.0 + 1.5)));
        let d4 = face_chip_details(&lm4, CHIP_SIZE, CHIP_PADDING).unwrap();
        assert!(d4.rect.down().down().area() > (CHIP_SIZE * CHIP_SIZE) as f64);
        let a = align(&small, &lm).unwrap().image;
        let b = align(&big, &lm4).unwrap().image;
        let mean: f64 = a
            .pixels
            .iter()
            .zip(&b.pixels)
            .map(|(&p, &q)| (p as f64 - q as f64).abs())
            .sum::<f64>()
            / a.pixels.len() as f64;
        assert!(mean < 3.0, "mean |Δ| {mean}");
    }

    #[test]
    fn faces_off_the_photo_give_black_chips_and_bad_landmarks_errors() {
        let img = gradient(50, 50);
        let far = Landmarks5([
            (1e4, 1e4),
            (1e4 - 20.0, 1e4),
            (1e4 - 60.0, 1e4),
            (1e4 - 40.0, 1e4),
            (1e4 - 30.0, 1e4 + 40.0),
        ]);
        let chip = align(&img, &far).unwrap();
        assert!(chip.image.pixels.iter().all(|&p| p == 0));
        assert!(align(&img, &Landmarks5([(5.0, 5.0); 5])).is_err());
        assert!(align(&img, &Landmarks5([(f64::NAN, 5.0); 5])).is_err());
    }

    #[test]
    fn blazeface_landmarks_put_eye_corners_around_the_eye_centres() {
        let d = Detection {
            bbox: [0.0, 0.0, 100.0, 100.0],
            score: 0.9,
            keypoints: [
                (30.0, 40.0),
                (70.0, 40.0),
                (50.0, 60.0),
                (50.0, 80.0),
                (10.0, 50.0),
                (90.0, 50.0),
            ],
        };
        let lm = Landmarks5::from_detection(&d);
        assert!(lm.0[0].0 > lm.0[1].0 && lm.0[1].0 > 50.0);
        assert!(lm.0[2].0 < lm.0[3].0 && lm.0[3].0 < 50.0);
        assert!(((lm.0[0].0 + lm.0[1].0) / 2.0 - 70.0).abs() < 1e-9);
        assert!((lm.0[4].1 - 68.0).abs() < 1e-9);
    }
}
