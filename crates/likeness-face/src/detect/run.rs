//! Running the plan: the inputs of every pass through the networks, decoding, mapping back to
//! photo pixels, dropping faces cut by tile borders, merging by weighted NMS, confirming.

use burn::tensor::{Device, Tensor};
use likeness_nn::nets::blazeface::{self, BlazeFace, BlazeFaceVariant};
use likeness_nn::weights::WeightMap;
use rayon::prelude::*;

use likeness_nn::image::Image;

use super::confirm::confirm;
use super::*;
use crate::error::{FaceError, Result};

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
pub(super) fn run_views<'a, F>(
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

/// Inputs per network call. Batching tiles gave no speed-up on burn-flex (33 back passes of
/// sample1.jpg: 2.7 s in batches of 34, 1.7–2.5 s one by one, on a loaded 2-core machine; and
/// with the batches in parallel, batches of 4 within ±5% of single inputs), so inputs go one at
/// a time; the batched path stays for backends where it pays.
pub(super) const MAX_BATCH: usize = 1;

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
pub(super) fn touches_inner_border(d: &Detection, tile: Region, image: &Image) -> bool {
    let margin = TILE_EDGE_MARGIN * tile.width.max(tile.height) as f32;
    let (x0, y0) = (tile.x as f32, tile.y as f32);
    let (x1, y1) = (x0 + tile.width as f32, y0 + tile.height as f32);
    (tile.x > 0 && d.bbox[0] < x0 + margin)
        || (tile.y > 0 && d.bbox[1] < y0 + margin)
        || (tile.x + tile.width < image.width && d.bbox[2] > x1 - margin)
        || (tile.y + tile.height < image.height && d.bbox[3] > y1 - margin)
}
