//! Pictures of answers: a photo with its faces boxed, their keypoints dotted and a label above
//! each (`detect --draw`, `gallery identify --draw`, the demo's report).

use likeness_nn::draw;
use likeness_nn::image::Image;

use crate::detect::Detection;

/// Draws `d`'s box in `color`, its keypoints in yellow and `label` (if not empty) above the
/// box; line widths and text size grow with the face, so a label stays readable on large
/// photos and does not cover small faces.
pub fn draw_detection(canvas: &mut Image, d: &Detection, label: &str, color: draw::Rgb) {
    let thickness = (d.width() / 60.0).clamp(2.0, 8.0) as u32;
    let [x0, y0, x1, y1] = d.bbox;
    draw::rect(canvas, x0, y0, x1, y1, color, thickness);
    for &(x, y) in &d.keypoints {
        draw::dot(canvas, x, y, thickness as f32 + 1.0, draw::YELLOW);
    }
    if !label.is_empty() {
        let scale = (d.width() / 80.0).clamp(2.0, 6.0) as u32;
        let (_, h) = draw::text_size(label, scale);
        draw::label(
            canvas,
            x0 as i64,
            y0 as i64 - h as i64 - 2 * scale as i64,
            label,
            draw::BLACK,
            color,
            scale,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_box_is_drawn_in_its_colour_and_the_keypoints_in_yellow() {
        let mut canvas = draw::canvas(200, 200, draw::WHITE);
        let d = Detection {
            bbox: [50.0, 60.0, 150.0, 160.0],
            score: 0.9,
            keypoints: [(100.0, 110.0); 6],
        };
        draw_detection(&mut canvas, &d, "0", draw::GREEN);
        let px = |x: u32, y: u32| {
            let i = ((y * canvas.width + x) * 3) as usize;
            [canvas.pixels[i], canvas.pixels[i + 1], canvas.pixels[i + 2]]
        };
        assert_eq!(px(100, 60), draw::GREEN);
        assert_eq!(px(100, 110), draw::YELLOW);
        assert_eq!(px(100, 100), draw::WHITE);
        // the label sits above the box
        let above = (36..56).any(|y| px(52, y) == draw::GREEN || px(52, y) == draw::BLACK);
        assert_eq!(px(52, 20), draw::WHITE);
        assert!(above);
    }
}
