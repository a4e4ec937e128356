//! The lecture's 1D and 3D convolutions put to work: two small ConvNets that train from scratch
//! on two CPU cores in a minute or two, and report held-out accuracy.
//!
//! - [`run_ecg`]: a 1D ConvNet tells premature heart beats from normal ones in a real
//!   electrocardiogram (the MIT-BIH excerpt that scipy ≤ 1.11 ships as `scipy/misc/ecg.dat`);
//!   beats are found and labelled by a documented rule ([`ecg`]).
//! - [`run_clips`]: a 3D ConvNet tells which of 8 directions a blob moves in, in synthetic
//!   16-frame clips ([`clips`]).
//!
//! Both use `likeness_nn`'s conv layers, burn's autodiff and `likeness_nn::optim::Adam`, and are
//! seeded: the same options give the same report.

pub mod clip_net;
pub mod clips;
pub mod ecg;
pub mod ecg_net;
mod train;

use std::fmt;

pub use clips::{ClipOptions, run_clips};
pub use ecg::{EcgOptions, run_ecg};

/// What can go wrong running an example.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Nn(#[from] likeness_nn::NnError),
    /// The data do not allow the example (e.g. too few beats found in a recording).
    #[error("{0}")]
    Data(String),
    /// The options are unusable (e.g. zero epochs).
    #[error("invalid options: {0}")]
    Options(String),
}

/// Result with [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// The outcome of training one example and testing it on held-out data.
#[derive(Debug, Clone, PartialEq)]
pub struct Report {
    /// What was learnt, in a few words.
    pub task: String,
    pub classes: Vec<String>,
    pub train_examples: usize,
    pub test_examples: usize,
    pub epochs: usize,
    /// Mean training loss (cross-entropy) of the last epoch.
    pub final_train_loss: f64,
    /// Fraction of held-out examples classified correctly.
    pub test_accuracy: f64,
    /// Mean of the per-class recalls on the held-out set (robust to class imbalance).
    pub balanced_accuracy: f64,
    /// Accuracy of always answering the training set's most frequent class.
    pub baseline_accuracy: f64,
    /// `confusion[truth][predicted]` on the held-out set.
    pub confusion: Vec<Vec<usize>>,
    /// Wall-clock time of data preparation, training and testing.
    pub seconds: f64,
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "{}", self.task)?;
        writeln!(
            f,
            "  {} training / {} held-out examples, {} epochs, {:.1} s",
            self.train_examples, self.test_examples, self.epochs, self.seconds
        )?;
        writeln!(
            f,
            "  held-out accuracy {:.1} % (balanced {:.1} %), majority-class baseline {:.1} %",
            100.0 * self.test_accuracy,
            100.0 * self.balanced_accuracy,
            100.0 * self.baseline_accuracy
        )?;
        writeln!(f, "  confusion (rows truth, columns predicted):")?;
        let width = self.classes.iter().map(String::len).max().unwrap_or(0);
        for (name, row) in self.classes.iter().zip(&self.confusion) {
            let cells: Vec<String> = row.iter().map(|n| format!("{n:5}")).collect();
            writeln!(f, "    {name:>width$} {}", cells.join(""))?;
        }
        Ok(())
    }
}
