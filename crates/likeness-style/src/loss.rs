//! The Gatys costs on activation tensors, exactly as DESIGN.md writes them.
//!
//! Every function takes NCHW activations and returns a one-element tensor, so that the same code
//! serves the forward value and, on an autodiff device, the gradient. Nothing is normalised
//! beyond what the formulas say: the content cost is ½‖a_C − a_G‖², Gram matrices are plain
//! sums over positions, and each style layer is divided by (2·n_H·n_W·n_C)².

use burn::tensor::{Tensor, TensorData};

use crate::error::{Result, StyleError};

/// J_content = ½‖a_C − a_G‖², summed over every element.
pub fn content_loss(generated: Tensor<4>, target: Tensor<4>) -> Tensor<1> {
    generated.sub(target).square().sum().mul_scalar(0.5)
}

/// Gram matrices G_kk' = Σ_ij a_ijk a_ijk' of NCHW activations: one `[C, C]` per batch item,
/// unnormalised.
pub fn gram(activations: Tensor<4>) -> Tensor<3> {
    let [n, c, h, w] = activations.dims();
    let a = activations.reshape([n, c, h * w]);
    a.clone().matmul(a.swap_dims(1, 2))
}

/// The normaliser of one style layer, 1/(2·n_H·n_W·n_C), applied before squaring so that the
/// squared differences of large Gram entries stay well inside f32's range.
pub fn style_scale(channels: usize, height: usize, width: usize) -> f64 {
    1.0 / (2.0 * channels as f64 * height as f64 * width as f64)
}

/// J_style^[l] = 1/(2·n_H·n_W·n_C)² ‖G_target − Gram(a_G)‖²_F, with the dimensions of the
/// generated image's activations.
pub fn style_layer_loss(generated: Tensor<4>, target_gram: Tensor<3>) -> Tensor<1> {
    let [_, c, h, w] = generated.dims();
    gram(generated)
        .sub(target_gram)
        .mul_scalar(style_scale(c, h, w))
        .square()
        .sum()
}

/// Total variation Σ (x_{i,j+1} − x_{i,j})² + (x_{i+1,j} − x_{i,j})² over every channel: the
/// squared (smooth) form, so that L-BFGS sees a differentiable cost.
pub fn total_variation(image: Tensor<4>) -> Tensor<1> {
    let [n, c, h, w] = image.dims();
    let mut tv = Tensor::zeros([1], &image.device());
    if w > 1 {
        let dx = image.clone().slice([0..n, 0..c, 0..h, 1..w])
            - image.clone().slice([0..n, 0..c, 0..h, 0..w - 1]);
        tv = tv + dx.square().sum();
    }
    if h > 1 {
        let dy = image.clone().slice([0..n, 0..c, 1..h, 0..w])
            - image.slice([0..n, 0..c, 0..h - 1, 0..w]);
        tv = tv + dy.square().sum();
    }
    tv
}

/// The value of one-element tensor as f64.
pub fn scalar(t: Tensor<1>) -> Result<f64> {
    let v = values(t.into_data())?;
    v.first()
        .map(|&x| x as f64)
        .ok_or_else(|| StyleError::Data("empty scalar tensor".into()))
}

/// All values of a tensor's data as f32.
pub(crate) fn values(data: TensorData) -> Result<Vec<f32>> {
    data.try_into_vec::<f32>()
        .map_err(|e| StyleError::Data(format!("{e:?}")))
}

/// The weighted terms of J = α·J_content + β·Σ_l λ_l J_style^[l] + tv·J_tv, as plain numbers.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LossTerms {
    /// J_content summed over content layers, each times its own weight (before α).
    pub content: f64,
    /// λ_l · J_style^[l] for each style layer, in the configuration's order (before β).
    pub style_layers: Vec<f64>,
    /// Σ_l λ_l J_style^[l] (before β).
    pub style: f64,
    /// J_tv (before its weight).
    pub tv: f64,
    /// The total J.
    pub total: f64,
}

/// Weights of the three costs.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CostWeights {
    /// α, the content weight.
    pub content: f64,
    /// β, the style weight.
    pub style: f64,
    /// The total-variation weight (0 disables the term).
    pub tv: f64,
}

/// The pieces of one evaluation of J, still as tensors (so J can be back-propagated).
pub struct Cost {
    /// J itself.
    pub total: Tensor<1>,
    /// The weighted content term (before α).
    pub content: Tensor<1>,
    /// λ_l · J_style^[l] per style layer (before β).
    pub style_layers: Vec<Tensor<1>>,
    /// The total-variation term (before its weight), if enabled.
    pub tv: Option<Tensor<1>>,
}

impl Cost {
    /// Combines weighted content terms (λ_c, activation, target) and style terms
    /// (λ_l, activation, target Gram) with α, β and the TV weight.
    pub fn new(
        image: Tensor<4>,
        content: Vec<(f64, Tensor<4>, Tensor<4>)>,
        style: Vec<(f64, Tensor<4>, Tensor<3>)>,
        weights: CostWeights,
    ) -> Self {
        let zero = Tensor::<1>::zeros([1], &image.device());
        let content = content.into_iter().fold(zero.clone(), |acc, (w, a, t)| {
            acc + content_loss(a, t).mul_scalar(w)
        });
        let style_layers: Vec<_> = style
            .into_iter()
            .map(|(w, a, g)| style_layer_loss(a, g).mul_scalar(w))
            .collect();
        let style_sum = style_layers.iter().fold(zero, |acc, s| acc + s.clone());
        let mut total =
            content.clone().mul_scalar(weights.content) + style_sum.mul_scalar(weights.style);
        let tv = (weights.tv != 0.0).then(|| total_variation(image));
        if let Some(tv) = &tv {
            total = total + tv.clone().mul_scalar(weights.tv);
        }
        Cost {
            total,
            content,
            style_layers,
            tv,
        }
    }

    /// The terms as numbers (reads every term back from the device).
    pub fn terms(&self) -> Result<LossTerms> {
        let style_layers = self
            .style_layers
            .iter()
            .map(|s| scalar(s.clone()))
            .collect::<Result<Vec<_>>>()?;
        Ok(LossTerms {
            content: scalar(self.content.clone())?,
            style: style_layers.iter().sum(),
            style_layers,
            tv: match &self.tv {
                Some(tv) => scalar(tv.clone())?,
                None => 0.0,
            },
            total: scalar(self.total.clone())?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use likeness_nn::device::{cpu, cpu_autodiff};

    fn t4(v: &[f32], shape: [usize; 4], device: &burn::tensor::Device) -> Tensor<4> {
        Tensor::from_data(TensorData::new(v.to_vec(), shape), device)
    }

    #[test]
    fn hand_computed_values() {
        let d = cpu();
        // ½((1−0)² + (2−4)²) = 2.5
        let c = content_loss(
            t4(&[1., 2.], [1, 1, 1, 2], &d),
            t4(&[0., 4.], [1, 1, 1, 2], &d),
        );
        assert_eq!(scalar(c).unwrap(), 2.5);

        // Channels [1, 2] and [3, 4] over two positions: G = [[5, 11], [11, 25]].
        let a = t4(&[1., 2., 3., 4.], [1, 2, 1, 2], &d);
        let g = values(gram(a.clone()).into_data()).unwrap();
        assert_eq!(g, vec![5., 11., 11., 25.]);

        // Against a zero target: (25 + 121 + 121 + 625) / (2·1·2·2)² = 892 / 64.
        let zero = Tensor::<3>::zeros([1, 2, 2], &d);
        let s = scalar(style_layer_loss(a.clone(), zero)).unwrap();
        assert!((s - 892.0 / 64.0).abs() < 1e-9, "{s}");

        // [[1, 2], [4, 8]]: horizontal 1² + 4², vertical 3² + 6² → 62.
        let tv = scalar(total_variation(t4(&[1., 2., 4., 8.], [1, 1, 2, 2], &d))).unwrap();
        assert_eq!(tv, 62.0);

        // Weighted: λ=0.5 on the style layer, α=10, β=40, tv weight 2.
        let cost = Cost::new(
            a.clone(),
            vec![(1.0, a.clone(), a.clone().mul_scalar(0.0))],
            vec![(0.5, a.clone(), Tensor::zeros([1, 2, 2], &d))],
            CostWeights {
                content: 10.0,
                style: 40.0,
                tv: 2.0,
            },
        );
        let terms = cost.terms().unwrap();
        // content ½(1+4+9+16) = 15; tv of the two channels: (1 + 1) = 2 (one row each).
        assert_eq!(terms.content, 15.0);
        assert!((terms.style - 0.5 * 892.0 / 64.0).abs() < 1e-9);
        assert_eq!(terms.tv, 2.0);
        let expected = 10.0 * 15.0 + 40.0 * 0.5 * 892.0 / 64.0 + 2.0 * 2.0;
        assert!((terms.total - expected).abs() < 1e-6, "{}", terms.total);
    }

    /// A deterministic pseudo-random sequence in [−1, 1).
    fn noise(n: usize, seed: u64) -> Vec<f32> {
        let mut s = seed;
        (0..n)
            .map(|_| {
                s = s
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                ((s >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
            })
            .collect()
    }

    /// J of a tiny problem: content + style + TV on x itself as the "activation".
    fn cost_of(x: Tensor<4>, content: &[f32], style_gram: &[f32]) -> Tensor<1> {
        let d = x.device();
        let shape = x.dims();
        let c = shape[1];
        Cost::new(
            x.clone(),
            vec![(1.0, x.clone(), t4(content, shape, &d))],
            vec![(
                0.7,
                x.clone().square(),
                Tensor::from_data(TensorData::new(style_gram.to_vec(), [1, c, c]), &d),
            )],
            CostWeights {
                content: 2.0,
                style: 300.0,
                tv: 0.3,
            },
        )
        .total
    }

    #[test]
    fn gradient_matches_finite_differences() {
        let shape = [1, 3, 4, 5];
        let n: usize = shape.iter().product();
        let x0 = noise(n, 1);
        let content = noise(n, 2);
        let style_gram: Vec<f32> = noise(9, 3).iter().map(|v| v.abs() * 4.0).collect();

        let ad = cpu_autodiff();
        let x = t4(&x0, shape, &ad).require_grad();
        let j = cost_of(x.clone(), &content, &style_gram);
        let grads = j.backward();
        let analytic = values(x.grad(&grads).unwrap().into_data()).unwrap();

        let d = cpu();
        let eps = 1e-2f32;
        let mut numeric = vec![0.0f64; n];
        for i in 0..n {
            let mut plus = x0.clone();
            plus[i] += eps;
            let mut minus = x0.clone();
            minus[i] -= eps;
            let jp = scalar(cost_of(t4(&plus, shape, &d), &content, &style_gram)).unwrap();
            let jm = scalar(cost_of(t4(&minus, shape, &d), &content, &style_gram)).unwrap();
            numeric[i] = (jp - jm) / (2.0 * eps as f64);
        }
        let diff: f64 = numeric
            .iter()
            .zip(&analytic)
            .map(|(a, b)| (a - *b as f64).powi(2))
            .sum::<f64>()
            .sqrt();
        let norm: f64 = numeric.iter().map(|a| a * a).sum::<f64>().sqrt();
        assert!(norm > 1.0, "degenerate test: gradient norm {norm}");
        assert!(diff / norm < 1e-3, "relative error {}", diff / norm);
    }
}
