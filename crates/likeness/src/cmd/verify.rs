//! `likeness verify A B`: are these two photos of the same person?

use std::path::PathBuf;

use anyhow::Context;
use clap::Args;
use likeness_face::faces::verify;
use likeness_face::report::VerifyReport;
use likeness_learn::head::VerifierHead;

use likeness_face::liveness::LivenessChecker;

use super::common::{FacePipelineArgs, open_image, print_json, single_face};

/// Verify (1:1): the distance between the faces of two photos, and whether it is within the
/// tolerance. Each photo should show one face; if one shows several, the largest is used
/// (and a note says so); a photo without a face is an error.
#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// First photo.
    a: PathBuf,
    /// Second photo.
    b: PathBuf,
    /// Largest distance still judged the same person (lower is stricter) [default: the
    /// embedder's; 0.6 for dlib's network, its authors' convention].
    #[arg(long, value_parser = crate::args::f32_positive)]
    tolerance: Option<f32>,
    #[command(flatten)]
    pipeline: FacePipelineArgs,
    /// A verification head (`likeness train verifier`): also print its probability that the
    /// two faces are the same person, σ(Σ w_k·φ_k + b).
    #[arg(long, value_name = "HEAD.json")]
    head: Option<PathBuf>,
    /// Print JSON.
    #[arg(long)]
    json: bool,
    /// Check both faces for liveness first: if either is judged a picture of a face (a print,
    /// a screen) the verdict is `spoof`, never `same`. See `likeness liveness --help`.
    #[arg(long)]
    liveness: bool,
}

/// Runs `likeness verify`.
pub fn run(args: VerifyArgs) -> anyhow::Result<()> {
    // Read the head first: a wrong path should fail before the networks load.
    let head = match &args.head {
        Some(path) => Some(
            VerifierHead::load(path)
                .with_context(|| format!("reading the verification head {}", path.display()))?,
        ),
        None => None,
    };
    let faces = args.pipeline.load()?;
    let a = single_face(&faces, &args.a)?;
    let b = single_face(&faces, &args.b)?;
    let tolerance = args.tolerance.unwrap_or(faces.embedder().info().tolerance);
    let mut verdict = verify(&a.embedding, &b.embedding, tolerance)?;
    let liveness = if args.liveness {
        let checker = LivenessChecker::load(&likeness_models::Cache::from_env()?)?;
        let mut checks = Vec::with_capacity(2);
        for (path, face) in [(&args.a, &a), (&args.b, &b)] {
            let image = open_image(path)?;
            let mut c = checker
                .check(&image, std::slice::from_ref(&face.detection), None)
                .with_context(|| format!("{}: liveness check failed", path.display()))?;
            checks.extend(c.pop());
        }
        Some(checks)
    } else {
        None
    };
    let spoof = liveness
        .as_ref()
        .is_some_and(|c| c.iter().any(|c| !c.is_live()));
    if spoof {
        // A picture of a face proves nothing about who stands at the door.
        verdict.same = false;
    }
    let probability = match &head {
        Some(h) => Some(h.probability(&a.embedding.0, &b.embedding.0)?),
        None => None,
    };
    if args.json {
        let report = VerifyReport::new((&args.a, &a), (&args.b, &b), &verdict, probability);
        let mut value = serde_json::to_value(&report)?;
        if let Some(checks) = &liveness {
            value["liveness"] = serde_json::to_value(checks)?;
            value["spoof"] = serde_json::Value::Bool(spoof);
        }
        print_json(&value)?;
    } else {
        println!(
            "{}: distance {:.4} (tolerance {})",
            if spoof {
                "spoof"
            } else if verdict.same {
                "same"
            } else {
                "different"
            },
            verdict.distance,
            verdict.tolerance
        );
        if let Some(p) = probability {
            println!("verification head: probability of the same person {p:.4}");
        }
    }
    Ok(())
}
