//! The second opinion: each merged candidate shown to the front model again in close-up crops
//! ([`CONFIRM_CONTEXTS`]), kept only if it finds the same face there.

use likeness_nn::image::Image;

use super::run::{RawOutput, run_views};
use super::*;
use crate::error::Result;

/// The candidates that the front model also finds, with at least `min_score` and the same box
/// (IoU ≥ [`CONFIRM_IOU`]), in one of the close-up crops of [`CONFIRM_CONTEXTS`]: a second
/// opinion at the scale the front model was made for.
pub(super) fn confirm<F>(
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
