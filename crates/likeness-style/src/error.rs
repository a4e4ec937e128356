//! The typed error of the style crate.

use likeness_nn::NnError;

/// Result with [`StyleError`].
pub type Result<T, E = StyleError> = std::result::Result<T, E>;

/// What can stop a style transfer before it starts, or while it runs.
#[derive(Debug, thiserror::Error)]
pub enum StyleError {
    /// Reading weights or images, or running the network, failed.
    #[error(transparent)]
    Nn(#[from] NnError),
    /// The configuration asks for something impossible (unknown layer, negative weight...).
    #[error("invalid style configuration: {0}")]
    Config(String),
    /// The requested size would need more memory than the machine has free.
    #[error(
        "a {width}×{height} transfer needs about {needed_mib} MiB but only {available_mib} MiB \
         are available; a longest side of {fits} px would fit (or keep fewer L-BFGS history \
         vectors, or use Adam)"
    )]
    TooLarge {
        width: usize,
        height: usize,
        needed_mib: u64,
        available_mib: u64,
        fits: usize,
    },
    /// A tensor could not be read back from the device.
    #[error("tensor data: {0}")]
    Data(String),
}
