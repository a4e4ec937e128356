//! Runs both examples with their default options and prints the reports.
//!
//! `cargo run -p likeness-convnd --example convnd -- [ecg|clips] [path/to/ecg.dat] [epochs]`

use std::path::PathBuf;

use likeness_convnd::{ClipOptions, EcgOptions, run_clips, run_ecg};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let which = args.first().map_or("both", String::as_str);
    if which == "ecg" || which == "both" {
        let path = args.get(1).map(PathBuf::from).unwrap_or_else(|| {
            let home = std::env::var_os("LIKENESS_HOME").map_or_else(
                || {
                    PathBuf::from(std::env::var_os("HOME").unwrap_or_default())
                        .join(".cache/likeness")
                },
                PathBuf::from,
            );
            home.join("samples/ecg.dat")
        });
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
