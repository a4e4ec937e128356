//! `likeness style`'s answer as a serde type (printed by `--json`, and what a service would
//! send): the cost at the first and the last iteration, each style layer's share of it, the
//! work done and why it stopped.

use std::path::PathBuf;

use serde::{Deserialize, Serialize, Serializer};

use crate::loss::LossTerms;
use crate::objective::WeightedLayer;
use crate::optim::Stop;
use crate::transfer::StyleOutput;

/// The terms of J at one iterate, unweighted as [`LossTerms`] keeps them (J = α·content +
/// β·style + tv_weight·tv).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CostTerms {
    /// J itself.
    pub total: f64,
    pub content: f64,
    pub style: f64,
    pub tv: f64,
}

impl From<&LossTerms> for CostTerms {
    fn from(t: &LossTerms) -> Self {
        CostTerms {
            total: t.total,
            content: t.content,
            style: t.style,
            tv: t.tv,
        }
    }
}

/// A style layer at the last iterate: its name, its weight λ_l and λ_l·J_style^[l].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LayerCost {
    pub layer: String,
    pub weight: f64,
    pub cost: f64,
}

/// What a style transfer did.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StyleReport {
    /// Where the result was written.
    #[serde(serialize_with = "lossy_path")]
    pub output: PathBuf,
    pub width: u32,
    pub height: u32,
    /// Optimiser steps taken, over all scales.
    pub iterations: usize,
    /// Forward + backward passes (L-BFGS's line search makes several per step).
    pub evaluations: usize,
    pub seconds: f64,
    /// J after the first iteration (`null` if none was taken).
    pub first_j: Option<CostTerms>,
    /// J after the last iteration.
    pub last_j: Option<CostTerms>,
    /// Each style layer's weighted cost after the last iteration.
    pub style_layers: Vec<LayerCost>,
    /// Why it stopped before its iterations were done: `non-finite`, `line-search-failed`,
    /// `converged`; `null` if it ran them all.
    pub stopped: Option<String>,
}

fn lossy_path<S: Serializer>(path: &std::path::Path, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&path.to_string_lossy())
}

impl StyleReport {
    /// The report of `out`, written to `output`, whose first iteration had the terms `first`.
    pub fn new(
        output: PathBuf,
        out: &StyleOutput,
        first: Option<&LossTerms>,
        style_layers: &[WeightedLayer],
    ) -> Self {
        let layers = match &out.terms {
            Some(t) => style_layers
                .iter()
                .zip(&t.style_layers)
                .map(|((layer, weight), cost)| LayerCost {
                    layer: layer.to_string(),
                    weight: *weight,
                    cost: *cost,
                })
                .collect(),
            None => Vec::new(),
        };
        StyleReport {
            output,
            width: out.image.width,
            height: out.image.height,
            iterations: out.iterations,
            evaluations: out.evaluations,
            seconds: out.elapsed.as_secs_f64(),
            first_j: first.map(CostTerms::from),
            last_j: out.terms.as_ref().map(CostTerms::from),
            style_layers: layers,
            stopped: out.stopped.map(|s| stop_name(s).to_string()),
        }
    }
}

/// The report's word for why the optimiser stopped.
pub fn stop_name(stop: Stop) -> &'static str {
    match stop {
        Stop::NonFinite => "non-finite",
        Stop::LineSearchFailed => "line-search-failed",
        Stop::GradientTolerance | Stop::ChangeTolerance => "converged",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use likeness_nn::image::Image;
    use likeness_nn::nets::vgg::VggLayer;
    use std::time::Duration;

    #[test]
    fn the_report_names_each_style_layer_with_its_weight_and_cost() {
        let last = LossTerms {
            content: 2.0,
            style_layers: vec![0.5, 0.25],
            style: 0.75,
            tv: 0.0,
            total: 9.5,
        };
        let first = LossTerms {
            total: 100.0,
            ..last.clone()
        };
        let out = StyleOutput {
            image: Image {
                width: 3,
                height: 2,
                pixels: vec![0; 18],
            },
            terms: Some(last),
            iterations: 7,
            evaluations: 9,
            stopped: Some(Stop::ChangeTolerance),
            elapsed: Duration::from_millis(1500),
        };
        let layers: Vec<WeightedLayer> = vec![
            ("relu1_1".parse::<VggLayer>().unwrap(), 0.5),
            ("relu2_1".parse::<VggLayer>().unwrap(), 0.5),
        ];
        let r = StyleReport::new("out.png".into(), &out, Some(&first), &layers);
        let v = serde_json::to_value(&r).unwrap();
        assert_eq!(v["first_j"]["total"], 100.0);
        assert_eq!(v["last_j"]["total"], 9.5);
        assert_eq!(v["style_layers"][1]["layer"], "relu2_1");
        assert_eq!(v["style_layers"][1]["cost"], 0.25);
        assert_eq!(v["stopped"], "converged");
        assert_eq!(
            (v["width"].clone(), v["iterations"].clone()),
            (3.into(), 7.into())
        );
        assert_eq!(v["seconds"], 1.5);
    }
}
