//! Runs both examples with their default options and prints the reports.
//!
//! `cargo run -p likeness-convnd --example convnd -- [ecg|clips] [path/to/ecg.dat] [epochs]`

use std::path::PathBuf;

use likeness_convnd::{ClipOptions, EcgOptions, run_clips, run_ecg};
use likeness_testdata::cache_home;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let which = args.first().map_or("both", String::as_str);
    if which == "ecg" || which == "both" {
        let path = args
            .get(1)
            .map_or_else(|| cache_home().join("samples/ecg.dat"), PathBuf::from);
        let mut options = EcgOptions::default();
        if let Some(epochs) = args.get(2) {
            options.epochs = epochs.parse()?;
        }
        println!("{}", run_ecg(&path, &options)?);
    }
    if which == "clips" || which == "both" {
        let mut options = ClipOptions::default();
        if let Some(epochs) = args.get(1) {
            options.epochs = epochs.parse()?;
        }
        println!("{}", run_clips(&options)?);
    }
    Ok(())
}
