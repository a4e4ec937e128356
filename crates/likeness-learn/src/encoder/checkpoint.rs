//! What a checkpoint holds besides the weights (epoch, RNG state, seed, which blocks were
//! trained) and saving a trained network.

use super::*;

/// Checkpoint metadata: epochs done, and the random stream's state.
pub(super) const EPOCH_KEY: &str = "train.epoch";
pub(super) const RNG_KEY: &str = "train.rng";
pub(super) const SEED_KEY: &str = "train.seed";
/// Checkpoint metadata: [`TrainConfig::train_last`], a block count or [`EVERY_LAYER`].
pub(super) const TRAIN_LAST_KEY: &str = "train.train_last";
pub(super) const EVERY_LAYER: &str = "all";

/// The `train_last` a checkpoint records: `None` if it records none (a bare network, or a
/// checkpoint written before it was recorded), else the value (`Some(None)`: every layer).
pub(super) fn recorded_train_last(checkpoint: &WeightMap) -> Result<Option<Option<usize>>> {
    let Some(value) = checkpoint.meta(TRAIN_LAST_KEY) else {
        return Ok(None);
    };
    if value == EVERY_LAYER {
        return Ok(Some(None));
    }
    value.parse().map(|n| Some(Some(n))).map_err(|_| {
        LearnError::Data(format!(
            "checkpoint metadata `{TRAIN_LAST_KEY}` is {value:?}, neither a block count nor \
             {EVERY_LAYER:?}"
        ))
    })
}

/// How a `train_last` reads in messages: the command's flag, or its absence.
pub(super) fn describe_train_last(blocks: Option<usize>) -> String {
    match blocks {
        Some(n) => format!("--train-last {n}"),
        None => "every layer (no --train-last)".into(),
    }
}

/// The `train_last` to resume `checkpoint` with, given the one asked for (`None`: not
/// asked): the recorded value when none is asked for; a different one is refused, since it
/// would silently make another run. A checkpoint that records none takes what is asked.
pub fn resumed_train_last(checkpoint: &WeightMap, asked: Option<usize>) -> Result<Option<usize>> {
    match (recorded_train_last(checkpoint)?, asked) {
        (None, asked) => Ok(asked),
        (Some(recorded), None) => Ok(recorded),
        (Some(recorded), Some(n)) if recorded == Some(n) => Ok(recorded),
        (Some(recorded), Some(n)) => Err(LearnError::Options(format!(
            "the checkpoint was trained with {}, not --train-last {n}: leave the flag out to \
             continue as it was trained",
            describe_train_last(recorded)
        ))),
    }
}

/// Saves a network's weights (without optimiser state) as safetensors.
pub fn save<N: TripletNet>(net: &N, path: &Path) -> Result<()> {
    Ok(net.weights()?.save(path)?)
}

/// Freezes all of dlib's network but its last `blocks` residual blocks and the final
/// projection (fine-tuning on a CPU: no gradient is computed below the trained part).
pub fn train_last_blocks(net: DlibResNet, blocks: usize) -> DlibResNet {
    let first = net.num_blocks().saturating_sub(blocks);
    optim::set_trainable(net, |path| {
        if path.starts_with("fc") {
            return true;
        }
        path.strip_prefix("blocks.")
            .and_then(|rest| rest.split('.').next())
            .and_then(|i| i.parse::<usize>().ok())
            .is_some_and(|i| i >= first)
    })
}
