//! J(G) and ∂J/∂G through a frozen VGG: the one function every optimiser step calls.

use burn::module::Module;
use burn::tensor::{Device, Tensor, TensorData};
use likeness_nn::nets::vgg::{Vgg, VggLayer};

use crate::direct::{Conv3x3, DirectObjective, Tap};
use crate::error::{Result, StyleError};
use crate::loss::{Cost, CostWeights, LossTerms, gram, values};

/// A layer and its weight λ.
pub type WeightedLayer = (VggLayer, f64);

/// One style image's input tensor and its blend weight.
pub struct StyleInput {
    /// `[1, 3, H, W]`, prepared the way the network expects.
    pub tensor: Tensor<4>,
    /// Its share of the blend (weights are normalised to sum to 1).
    pub weight: f64,
}

/// The costs of one transfer at one size: the frozen network and the targets it is measured
/// against (content activations, blended style Gram matrices).
pub struct StyleObjective {
    vgg: Vgg,
    device: Device,
    /// Every layer the forward pass must return, without repeats.
    layers: Vec<VggLayer>,
    /// (index into `layers`, λ, target activations).
    content: Vec<(usize, f64, Tensor<4>)>,
    /// (index into `layers`, λ, target Gram `[1, C, C]`).
    style: Vec<(usize, f64, Tensor<3>)>,
    weights: CostWeights,
    /// The shape of G, `[1, 3, H, W]`.
    shape: [usize; 4],
    /// The same costs evaluated without autodiff (what [`evaluate`](Self::evaluate) runs).
    direct: DirectObjective,
}

impl StyleObjective {
    /// Computes the targets. `vgg` must live on an autodiff `device`; it is frozen here so
    /// that no weight gradient is ever computed. The generated image has `shape` (the content
    /// tensor's). Each style's Gram matrices are rescaled by (H·W of G)/(H·W of the style) at
    /// every layer, so that a style image of another size (style scale) contributes a Gram of
    /// the magnitude G's own would have; at equal sizes the factor is 1.
    pub fn new(
        vgg: Vgg,
        device: &Device,
        content: Tensor<4>,
        styles: &[StyleInput],
        content_layers: &[WeightedLayer],
        style_layers: &[WeightedLayer],
        weights: CostWeights,
    ) -> Result<Self> {
        let vgg = vgg.no_grad();
        let mut layers: Vec<VggLayer> = Vec::new();
        let mut index = |l: VggLayer| match layers.iter().position(|&x| x == l) {
            Some(i) => i,
            None => {
                layers.push(l);
                layers.len() - 1
            }
        };
        let content_idx: Vec<usize> = content_layers.iter().map(|(l, _)| index(*l)).collect();
        let style_idx: Vec<usize> = style_layers.iter().map(|(l, _)| index(*l)).collect();

        let shape = content.dims();
        if shape[0] != 1 {
            return Err(StyleError::Config(format!(
                "one generated image at a time: the content tensor holds {}",
                shape[0]
            )));
        }
        let content_layer_names: Vec<VggLayer> = content_layers.iter().map(|(l, _)| *l).collect();
        let content_acts = vgg.forward_layers(content.detach(), &content_layer_names)?;
        let content: Vec<_> = content_layers
            .iter()
            .zip(content_idx)
            .zip(content_acts)
            .map(|(((_, w), i), a)| (i, *w, a.detach()))
            .collect();

        let total_weight: f64 = styles.iter().map(|s| s.weight).sum();
        if styles.is_empty() || total_weight <= 0.0 || !total_weight.is_finite() {
            return Err(StyleError::Config(
                "at least one style image with a positive blend weight is needed".into(),
            ));
        }
        let style_layer_names: Vec<VggLayer> = style_layers.iter().map(|(l, _)| *l).collect();
        let mut grams: Vec<Option<Tensor<3>>> = vec![None; style_layers.len()];
        for s in styles.iter().filter(|s| s.weight > 0.0) {
            let [_, _, hs, ws] = s.tensor.dims();
            let area = (shape[2] * shape[3]) as f64 / (hs * ws) as f64;
            let acts = vgg.forward_layers(s.tensor.clone().detach(), &style_layer_names)?;
            for (slot, a) in grams.iter_mut().zip(acts) {
                let g = gram(a).detach().mul_scalar(area * s.weight / total_weight);
                *slot = Some(match slot.take() {
                    Some(acc) => acc + g,
                    None => g,
                });
            }
        }
        let style = style_layers
            .iter()
            .zip(style_idx)
            .zip(grams)
            .map(|(((_, w), i), g)| {
                g.map(|g| (i, *w, g))
                    .ok_or_else(|| StyleError::Config("no style Gram computed".into()))
            })
            .collect::<Result<Vec<_>>>()?;

        let direct = direct_objective(&vgg, &layers, &content, &style, weights, shape)?;
        Ok(StyleObjective {
            vgg,
            device: device.clone(),
            layers,
            content,
            style,
            weights,
            shape,
            direct,
        })
    }

    /// The shape of G, `[1, 3, H, W]`.
    pub fn shape(&self) -> [usize; 4] {
        self.shape
    }

    /// The cost terms at `g` (no gradient).
    pub fn cost(&self, g: Tensor<4>) -> Result<Cost> {
        let acts = self.vgg.forward_layers(g.clone(), &self.layers)?;
        let content = self
            .content
            .iter()
            .map(|(i, w, t)| (*w, acts[*i].clone(), t.clone()))
            .collect();
        let style = self
            .style
            .iter()
            .map(|(i, w, t)| (*w, acts[*i].clone(), t.clone()))
            .collect();
        Ok(Cost::new(g, content, style, self.weights))
    }

    /// J's terms and ∂J/∂G at the flat pixels `x` (as long as `shape` says), by the direct
    /// evaluator (no autodiff graph; see [`crate::direct`]).
    pub fn evaluate(&self, x: &[f32]) -> Result<(LossTerms, Vec<f32>)> {
        self.direct.evaluate(x)
    }

    /// The same as [`evaluate`](Self::evaluate) through burn's autodiff: the reference the
    /// direct evaluator is tested against.
    pub fn evaluate_autodiff(&self, x: &[f32]) -> Result<(LossTerms, Vec<f32>)> {
        let g = Tensor::<4>::from_data(TensorData::new(x.to_vec(), self.shape), &self.device)
            .require_grad();
        let cost = self.cost(g.clone())?;
        let terms = cost.terms()?;
        let grads = cost.total.backward();
        let grad = g
            .grad(&grads)
            .ok_or_else(|| StyleError::Data("no gradient reached the image".into()))?;
        Ok((terms, values(grad.into_data())?))
    }
}

/// The direct evaluator of the same costs: the network's weights read out once, each target
/// attached to its layer's position.
fn direct_objective(
    vgg: &Vgg,
    layers: &[VggLayer],
    content: &[(usize, f64, Tensor<4>)],
    style: &[(usize, f64, Tensor<3>)],
    weights: CostWeights,
    shape: [usize; 4],
) -> Result<DirectObjective> {
    let config = vgg.config();
    let convs = vgg
        .convs()
        .iter()
        .map(|conv| {
            let [c_out, c_in, _, _] = conv.weight.dims();
            let bias = match &conv.bias {
                Some(b) => values(b.val().into_data())?,
                None => vec![0.0; c_out],
            };
            Conv3x3::new(&values(conv.weight.val().into_data())?, bias, c_in, c_out)
        })
        .collect::<Result<Vec<_>>>()?;
    let position = |i: usize| {
        layers[i].position(config.variant).ok_or_else(|| {
            StyleError::Config(format!("{:?} has no layer {}", config.variant, layers[i]))
        })
    };
    let mut taps = Vec::new();
    for (i, w, t) in content {
        let target = values(t.clone().into_data())?;
        taps.push((position(*i)?, Tap::Content { weight: *w, target }));
    }
    for (i, w, g) in style {
        let target = values(g.clone().into_data())?;
        taps.push((position(*i)?, Tap::Style { weight: *w, target }));
    }
    DirectObjective::new(
        config.variant,
        convs,
        config.pooling,
        taps,
        weights,
        shape[2],
        shape[3],
    )
}
