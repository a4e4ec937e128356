//! The training loop both examples share: mini-batch Adam on weighted cross-entropy, then a
//! confusion matrix on held-out data.

use burn::module::{Module, Param};
use burn::nn::Linear;
use burn::tensor::activation::log_softmax;
use burn::tensor::{Device, Tensor, TensorData};
use likeness_nn::device::{cpu, cpu_autodiff};
use likeness_nn::optim::{Adam, AdamConfig};

use crate::{Error, Report, Result};
use likeness_nn::rng::SplitMix64;

/// A network mapping a batch of rank-`D` inputs to class logits `[batch, classes]`.
pub(crate) trait Classifier<const D: usize>: Module {
    fn logits(&self, x: Tensor<D>) -> Tensor<2>;
}

/// Examples of one shape, stored contiguously, with their class labels.
pub(crate) struct Dataset {
    pub x: Vec<f32>,
    /// The shape of one example (without the batch dimension).
    pub example_shape: Vec<usize>,
    pub y: Vec<usize>,
}

impl Dataset {
    pub(crate) fn new(example_shape: Vec<usize>) -> Self {
        Self {
            x: Vec::new(),
            example_shape,
            y: Vec::new(),
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.y.len()
    }

    fn example_len(&self) -> usize {
        self.example_shape.iter().product()
    }

    pub(crate) fn push(&mut self, example: &[f32], label: usize) {
        self.x.extend_from_slice(example);
        self.y.push(label);
    }

    /// Examples `indices` as one tensor `[indices.len(), example_shape…]`.
    fn batch<const D: usize>(&self, indices: &[usize], device: &Device) -> Tensor<D> {
        let n = self.example_len();
        let mut values = Vec::with_capacity(indices.len() * n);
        for &i in indices {
            values.extend_from_slice(&self.x[i * n..(i + 1) * n]);
        }
        let mut shape = vec![indices.len()];
        shape.extend(&self.example_shape);
        Tensor::from_data(TensorData::new(values, shape), device)
    }

    /// How many examples of each class.
    pub(crate) fn class_counts(&self, classes: usize) -> Vec<usize> {
        let mut counts = vec![0; classes];
        for &y in &self.y {
            counts[y] += 1;
        }
        counts
    }
}

pub(crate) struct TrainOptions {
    pub epochs: usize,
    pub batch_size: usize,
    pub learning_rate: f64,
    /// Weight of each class in the loss (inverse frequency balances a skewed set).
    pub class_weights: Vec<f32>,
}

/// Trains `model` on `train`, tests it on `test` and reports both (`seconds` left 0 for the
/// caller, who knows when the example started).
pub(crate) fn train_and_test<const D: usize, M: Classifier<D>>(
    model: M,
    task: String,
    classes: &[&str],
    train: &Dataset,
    test: &Dataset,
    options: &TrainOptions,
    rng: &mut SplitMix64,
) -> Result<Report> {
    let (model, loss) = fit(model, train, options, rng)?;
    let confusion = confusion(&model, test, classes.len())?;
    Ok(report(
        task,
        classes,
        train,
        test,
        options.epochs,
        loss,
        confusion,
    ))
}

/// Trains `model` on `data`; returns it and the last epoch's mean loss.
fn fit<const D: usize, M: Classifier<D>>(
    mut model: M,
    data: &Dataset,
    options: &TrainOptions,
    rng: &mut SplitMix64,
) -> Result<(M, f64)> {
    if options.epochs == 0 || options.batch_size == 0 || data.len() == 0 {
        return Err(Error::Options(
            "epochs, batch size and training set must be non-empty".into(),
        ));
    }
    let device = cpu_autodiff();
    let classes = options.class_weights.len();
    let mut adam = Adam::new(AdamConfig::new(options.learning_rate));
    let mut order: Vec<usize> = (0..data.len()).collect();
    let mut last_loss = f64::NAN;
    for _ in 0..options.epochs {
        rng.shuffle(&mut order);
        let (mut total, mut batches) = (0.0, 0usize);
        for chunk in order.chunks(options.batch_size) {
            let x = data.batch::<D>(chunk, &device);
            // Weighted one-hot targets: the loss is PyTorch's weighted cross-entropy mean.
            let mut targets = vec![0f32; chunk.len() * classes];
            let mut weight_sum = 0f32;
            for (row, &i) in chunk.iter().enumerate() {
                let w = options.class_weights[data.y[i]];
                targets[row * classes + data.y[i]] = w;
                weight_sum += w;
            }
            let targets =
                Tensor::<2>::from_data(TensorData::new(targets, [chunk.len(), classes]), &device);
            let loss = (log_softmax(model.logits(x), 1) * targets)
                .sum()
                .neg()
                .div_scalar(weight_sum);
            total += scalar(loss.clone())?;
            batches += 1;
            let grads = loss.backward();
            model = adam.step(model, &grads);
        }
        last_loss = total / batches as f64;
    }
    Ok((model, last_loss))
}

/// `confusion[truth][predicted]` of `model` on `data`, without gradient bookkeeping.
fn confusion<const D: usize, M: Classifier<D>>(
    model: &M,
    data: &Dataset,
    classes: usize,
) -> Result<Vec<Vec<usize>>> {
    let model = model.valid();
    let device = cpu();
    let mut confusion = vec![vec![0; classes]; classes];
    let indices: Vec<usize> = (0..data.len()).collect();
    for chunk in indices.chunks(64) {
        let logits = model.logits(data.batch::<D>(chunk, &device));
        let predicted = logits
            .argmax(1)
            .into_data()
            .convert::<i64>()
            .try_into_vec::<i64>()
            .map_err(|e| Error::Data(format!("reading predictions: {e:?}")))?;
        for (&i, &p) in chunk.iter().zip(&predicted) {
            confusion[data.y[i]][p as usize] += 1;
        }
    }
    Ok(confusion)
}

fn scalar(t: Tensor<1>) -> Result<f64> {
    t.try_into_scalar::<f32>()
        .map(f64::from)
        .map_err(|e| Error::Data(format!("reading the loss: {e:?}")))
}

/// The report's accuracies from a confusion matrix and the training set's class counts
/// (`seconds` left 0).
fn report(
    task: String,
    classes: &[&str],
    train: &Dataset,
    test: &Dataset,
    epochs: usize,
    final_train_loss: f64,
    confusion: Vec<Vec<usize>>,
) -> Report {
    let total: usize = confusion.iter().flatten().sum();
    let correct: usize = (0..confusion.len()).map(|i| confusion[i][i]).sum();
    let recalls: Vec<f64> = confusion
        .iter()
        .enumerate()
        .filter(|(_, row)| row.iter().sum::<usize>() > 0)
        .map(|(i, row)| row[i] as f64 / row.iter().sum::<usize>() as f64)
        .collect();
    let counts = train.class_counts(classes.len());
    let majority = (0..counts.len()).max_by_key(|&c| counts[c]).unwrap_or(0);
    let test_counts = test.class_counts(classes.len());
    Report {
        task,
        classes: classes.iter().map(|s| s.to_string()).collect(),
        train_examples: train.len(),
        test_examples: test.len(),
        epochs,
        final_train_loss,
        test_accuracy: correct as f64 / total.max(1) as f64,
        balanced_accuracy: recalls.iter().sum::<f64>() / recalls.len().max(1) as f64,
        baseline_accuracy: test_counts[majority] as f64 / test.len().max(1) as f64,
        confusion,
        seconds: 0.0,
    }
}

/// A fully connected layer `[.., d_in] → [.., d_out]`, initialised as PyTorch does
/// (U(±1/√d_in) for weight and bias) from `rng`.
pub(crate) fn dense(d_in: usize, d_out: usize, rng: &mut SplitMix64, device: &Device) -> Linear {
    let bound = 1.0 / (d_in as f64).sqrt();
    let mut draw =
        |n: usize| -> Vec<f32> { (0..n).map(|_| rng.uniform(-bound, bound) as f32).collect() };
    let weight = Tensor::<2>::from_data(TensorData::new(draw(d_in * d_out), [d_in, d_out]), device);
    let bias = Tensor::<1>::from_data(TensorData::new(draw(d_out), [d_out]), device);
    Linear {
        weight: Param::from_tensor(weight),
        bias: Some(Param::from_tensor(bias)),
    }
}
