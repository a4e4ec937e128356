//! The one mechanism that checks the command line's numbers and output paths, at parse time.
//!
//! Every numeric option names its parser here (`#[arg(value_parser = args::f32_positive)]`),
//! so NaN, infinities, negative tolerances, zero epochs and sizes that overflow arithmetic are
//! refused by clap with the option's name before anything runs, instead of reaching the
//! optimiser (Adam with a NaN rate wrote an all-black image, exit 0) or a multiplication
//! (`--cell 4000000000` aborted allocating 120 GB). Output paths are checked the same way
//! ([`output_file`], [`output_dir`]): an unwritable `-o` is found in milliseconds, not after a
//! style run or a training epoch, and `/dev/null`, FIFOs and links are refused outright.

use std::path::PathBuf;

/// Parses a finite f64 (`nan`, `inf` and `-inf` are what Rust's parser also accepts).
fn finite(s: &str) -> Result<f64, String> {
    let v: f64 = s
        .trim()
        .parse()
        .map_err(|_| format!("`{s}` is not a number"))?;
    if !v.is_finite() {
        return Err(format!("`{s}` is not a finite number"));
    }
    Ok(v)
}

/// A finite number in `[lo, hi]`.
pub fn f64_in(lo: f64, hi: f64) -> impl Fn(&str) -> Result<f64, String> + Clone + Send + Sync {
    move |s| {
        let v = finite(s)?;
        if v < lo || v > hi {
            return Err(format!("{v} is outside [{lo}, {hi}]"));
        }
        Ok(v)
    }
}

/// A finite number > 0 (learning rates, margins, weights that must act).
pub fn f64_positive(s: &str) -> Result<f64, String> {
    let v = finite(s)?;
    if v <= 0.0 {
        return Err(format!("{v} must be greater than 0"));
    }
    Ok(v)
}

/// A finite number ≥ 0 (weights that may be switched off).
pub fn f64_non_negative(s: &str) -> Result<f64, String> {
    let v = finite(s)?;
    if v < 0.0 {
        return Err(format!("{v} must not be negative"));
    }
    Ok(v)
}

/// A probability or share, in [0, 1].
pub fn probability(s: &str) -> Result<f64, String> {
    f64_in(0.0, 1.0)(s)
}

/// A finite f32 > 0 (tolerances: a distance threshold of 0 or less matches nothing).
pub fn f32_positive(s: &str) -> Result<f32, String> {
    let v = f64_positive(s)?;
    let w = v as f32;
    if !w.is_finite() || w <= 0.0 {
        return Err(format!("{v} does not fit a 32-bit float"));
    }
    Ok(w)
}

/// A whole number in `[lo, hi]`: counts and sizes, bounded so that arithmetic on them
/// cannot overflow and allocations stay within what a memory estimate can judge.
pub fn usize_in(
    lo: usize,
    hi: usize,
) -> impl Fn(&str) -> Result<usize, String> + Clone + Send + Sync {
    move |s| {
        let v: usize = s
            .trim()
            .parse()
            .map_err(|_| format!("`{s}` is not a whole number ≥ 0"))?;
        if v < lo || v > hi {
            return Err(format!("{v} is outside {lo}..={hi}"));
        }
        Ok(v)
    }
}

/// [`usize_in`] for options typed `u32`.
pub fn u32_in(lo: u32, hi: u32) -> impl Fn(&str) -> Result<u32, String> + Clone + Send + Sync {
    move |s| {
        let v = usize_in(lo as usize, hi as usize)(s)?;
        Ok(v as u32)
    }
}

/// An output file: refused at parse time if it is a link, a device, a FIFO, a socket, a
/// folder or read-only, or if its folder cannot take a new file ([`likeness_fs::check_output`]).
pub fn output_file(s: &str) -> Result<PathBuf, String> {
    let path = PathBuf::from(s);
    likeness_fs::check_output(&path).map_err(|e| e.to_string())?;
    Ok(path)
}

/// An output folder: a folder (or creatable) that can take new files
/// ([`likeness_fs::check_output_dir`]).
pub fn output_dir(s: &str) -> Result<PathBuf, String> {
    let path = PathBuf::from(s);
    likeness_fs::check_output_dir(&path).map_err(|e| e.to_string())?;
    Ok(path)
}

/// Largest side, in pixels, any command makes an image or a network input: 2^14, which
/// bounds a 3-channel f32 image at 3 GiB and every size product below 2^31.
pub const MAX_SIDE: usize = 16_384;

/// Refuses work whose estimated peak memory does not fit what the system has free (the one
/// memory check in front of every command that allocates by the user's numbers), naming what
/// was asked and the option to lower.
pub fn ensure_memory(what: &str, bytes: u128, lower: &str) -> anyhow::Result<()> {
    let Some(available) = likeness_style::memory::available_bytes() else {
        return Ok(());
    };
    if bytes > u128::from(available) {
        anyhow::bail!(
            "{what} needs about {} but {} is available; lower {lower}",
            human(bytes),
            human(u128::from(available))
        );
    }
    Ok(())
}

fn human(bytes: u128) -> String {
    let gib = bytes as f64 / f64::from(1u32 << 30);
    if gib >= 1.0 {
        format!("{gib:.1} GiB")
    } else {
        format!("{:.0} MiB", bytes as f64 / f64::from(1u32 << 20))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_that_are_not_finite_or_in_range_are_refused() {
        for bad in ["nan", "NaN", "inf", "-inf", "1e400", "x", ""] {
            assert!(f64_positive(bad).is_err(), "{bad}");
            assert!(f32_positive(bad).is_err(), "{bad}");
        }
        assert!(f32_positive("-0.1").is_err());
        assert!(f32_positive("0").is_err());
        assert!(f32_positive("1e39").is_err(), "overflows f32");
        assert_eq!(f32_positive("0.6"), Ok(0.6));
        assert!(f64_non_negative("-1").is_err());
        assert_eq!(f64_non_negative("0"), Ok(0.0));
        assert!(probability("1.5").is_err());
        assert_eq!(probability("0.25"), Ok(0.25));
        assert!(usize_in(1, 10)("0").is_err());
        assert!(usize_in(1, 10)("-1").is_err());
        assert!(usize_in(1, 10)("99999999999999999999999").is_err());
        assert_eq!(usize_in(1, 10)("10"), Ok(10));
        assert_eq!(u32_in(1, 5)("3"), Ok(3));
    }
}
