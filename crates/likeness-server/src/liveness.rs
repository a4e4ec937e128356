//! Liveness in the service: the passive check as a face plugin, and the active head-turn
//! challenge the server judges.
//!
//! - **The `liveness` face plugin** (CompreFace's way of adding a per-face check:
//!   `face_plugins=liveness` in the query or the body of detect, verify and recognize) gives
//!   each face likeness-face's [`LivenessCheck`], the very object `likeness liveness --json`
//!   prints. A face judged a spoof is never named by recognize and never a match for verify:
//!   a picture of a face proves nothing about who is at the camera.
//! - **The head-turn challenge**: `POST /api/v1/liveness/challenge` hands out a one-use id and
//!   an instruction; the page films the person for a few seconds and posts the frames to
//!   `POST /api/v1/liveness/challenge/{id}/frames`. The *server* finds the face in every frame
//!   and judges the keypoint track with [`likeness_face::challenge::judge_head_turn`] (why a
//!   held print fails it is explained there); the page is never asked for its opinion.
//!
//! The liveness network is loaded once, on the first request that needs it: most deployments
//! never ask for it, and the service starts no slower for those that do not.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::Json;
use axum::extract::{Path as UrlPath, Query, Request, State};
use axum::http::StatusCode;
use likeness_face::Faces;
use likeness_face::challenge::{ChallengeResult, Failure, Keypoints, judge_head_turn};
use likeness_face::liveness::{LivenessCheck, LivenessChecker};
use likeness_nn::image::Image;
use serde::{Deserialize, Serialize};

use crate::AppState;
use crate::api::Auth;
use crate::error::{ApiError, ApiResult};
use crate::input::Form;
use crate::keys::Scope;

/// The face plugin's name, as CompreFace's `face_plugins` lists plugins.
pub const PLUGIN_LIVENESS: &str = "liveness";

/// What the person is asked to do. Either direction counts (see [`judge_head_turn`]): the
/// judgement is whether the face turned the way a head turns, not which way.
pub const INSTRUCTION: &str = "turn your head left then right";
/// How long a challenge stays open: long enough to read the instruction and turn (the page
/// films [`crate::web`]'s 4 s), short enough that an id cannot be collected and replayed later.
pub const CHALLENGE_TTL: Duration = Duration::from_secs(60);
/// Open challenges kept at most; beyond that the oldest are dropped (each is a few bytes, the
/// bound only stops a key from growing the map without end).
pub const MAX_OPEN_CHALLENGES: usize = 10_000;
/// Frames judged at most per challenge (4 s at 10 frames a second is 40; a longer film adds
/// nothing but work).
pub const MAX_FRAMES: usize = 60;

/// The liveness network, loaded on first use and kept.
#[derive(Debug, Default)]
pub struct LazyLiveness {
    cell: OnceLock<Result<Arc<LivenessChecker>, String>>,
}

impl LazyLiveness {
    /// A checker already loaded (tests, or a caller that loads at start-up).
    pub fn loaded(checker: Arc<LivenessChecker>) -> LazyLiveness {
        let cell = OnceLock::new();
        let _ = cell.set(Ok(checker));
        LazyLiveness { cell }
    }

    /// The checker, loading it from the model cache the first time; a missing model is a 503
    /// naming the command that fetches it (and is not retried until the service restarts).
    pub fn get(&self) -> ApiResult<Arc<LivenessChecker>> {
        let loaded = self.cell.get_or_init(|| {
            let cache = likeness_models::Cache::from_env().map_err(|e| e.to_string())?;
            LivenessChecker::load(&cache)
                .map(Arc::new)
                .map_err(|e| e.to_string())
        });
        loaded.clone().map_err(|e| {
            ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "liveness_unavailable",
                format!("the liveness network could not be loaded: {e}"),
            )
        })
    }
}

/// The face plugins a request asked for (`face_plugins=liveness`, comma-separated).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Plugins {
    pub liveness: bool,
}

impl Plugins {
    /// Reads `face_plugins`; an unknown plugin is refused rather than silently ignored (a
    /// caller asking for a check must not believe it was done).
    pub fn from_form(form: &Form) -> ApiResult<Plugins> {
        let Some(value) = form.fields.get("face_plugins") else {
            return Ok(Plugins::default());
        };
        let names: Vec<String> = match value {
            serde_json::Value::String(s) => s.split(',').map(|p| p.trim().to_string()).collect(),
            serde_json::Value::Array(items) => items
                .iter()
                .map(|v| v.as_str().unwrap_or("").trim().to_string())
                .collect(),
            _ => {
                return Err(ApiError::bad_request(
                    "bad_face_plugins",
                    "`face_plugins` is a comma-separated list of plugin names",
                ));
            }
        };
        let mut plugins = Plugins::default();
        for name in names.iter().filter(|n| !n.is_empty()) {
            match name.as_str() {
                PLUGIN_LIVENESS => plugins.liveness = true,
                other => {
                    return Err(ApiError::bad_request(
                        "unknown_face_plugin",
                        format!("no face plugin `{other}`: this service has `{PLUGIN_LIVENESS}`"),
                    ));
                }
            }
        }
        Ok(plugins)
    }
}

/// Each detection's liveness check, in order, when the plugin was asked for.
pub fn checks(
    checker: Option<&LivenessChecker>,
    image: &Image,
    detections: &[likeness_face::Detection],
) -> ApiResult<Vec<Option<LivenessCheck>>> {
    match checker {
        None => Ok(vec![None; detections.len()]),
        Some(c) => Ok(c
            .check(image, detections, None)?
            .into_iter()
            .map(Some)
            .collect()),
    }
}

/// Whether a face's check (if any) called it a spoof.
pub fn is_spoof(check: &Option<LivenessCheck>) -> bool {
    check.as_ref().is_some_and(|c| !c.is_live())
}

// ---------------------------------------------------------------------------------------
// The head-turn challenge

#[derive(Clone, Debug)]
struct Open {
    gallery: String,
    expires: SystemTime,
}

/// The open challenges, by id.
#[derive(Debug, Default)]
pub struct Challenges {
    open: Mutex<HashMap<String, Open>>,
}

impl Challenges {
    fn create(&self, gallery: &str, now: SystemTime) -> (String, SystemTime) {
        let id = new_id();
        let expires = now + CHALLENGE_TTL;
        let mut open = self.open.lock().unwrap_or_else(|p| p.into_inner());
        open.retain(|_, c| c.expires > now);
        if open.len() >= MAX_OPEN_CHALLENGES
            && let Some(oldest) = open
                .iter()
                .min_by_key(|(_, c)| c.expires)
                .map(|(k, _)| k.clone())
        {
            open.remove(&oldest);
        }
        open.insert(
            id.clone(),
            Open {
                gallery: gallery.to_string(),
                expires,
            },
        );
        (id, expires)
    }

    /// Takes the challenge out (one try per id); `None` when unknown, expired, or another
    /// gallery's.
    fn take(&self, id: &str, gallery: &str, now: SystemTime) -> Option<Open> {
        let mut open = self.open.lock().unwrap_or_else(|p| p.into_inner());
        let c = open.remove(id)?;
        (c.expires > now && c.gallery == gallery).then_some(c)
    }
}

fn new_id() -> String {
    let mut b = [0u8; 16];
    let _ = getrandom::fill(&mut b);
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn unix(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

/// `POST liveness/challenge`'s answer.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ChallengeOut {
    pub id: String,
    /// What to ask the person to do.
    pub instruction: String,
    /// Seconds since the Unix epoch after which the frames are refused.
    pub expires: u64,
    /// Frames judged at most (later ones are ignored).
    pub max_frames: usize,
}

/// `POST liveness/challenge/{id}/frames`' answer: likeness-face's judgement, why in words,
/// and how many frames had no face (those are left out of the track).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ChallengeVerdict {
    #[serde(flatten)]
    pub result: ChallengeResult,
    /// Empty when passed.
    pub reason: String,
    pub frames_without_face: usize,
}

/// What a failure means, for people.
pub fn reason(failure: Option<Failure>) -> &'static str {
    match failure {
        None => "",
        Some(Failure::NoTurn) => "the face did not turn far enough (a still picture, or no turn)",
        Some(Failure::WrongWay) => "the face turned the other way than asked",
        Some(Failure::Planar) => "the face turned the way a flat picture turns, not a head",
    }
}

pub async fn create_challenge(
    State(s): State<Arc<AppState>>,
    auth: Auth,
) -> ApiResult<(StatusCode, Json<ChallengeOut>)> {
    let key = auth.need(Scope::Recognize)?;
    let (id, expires) = s.challenges.create(&key.gallery, SystemTime::now());
    Ok((
        StatusCode::CREATED,
        Json(ChallengeOut {
            id,
            instruction: INSTRUCTION.to_string(),
            expires: unix(expires),
            max_frames: MAX_FRAMES,
        }),
    ))
}

pub async fn challenge_frames(
    State(s): State<Arc<AppState>>,
    auth: Auth,
    UrlPath(id): UrlPath<String>,
    Query(q): Query<std::collections::BTreeMap<String, String>>,
    request: Request,
) -> ApiResult<Json<ChallengeVerdict>> {
    let key = auth.need(Scope::Recognize)?.clone();
    let form = Form::read(request, &["frames"], s.config.body_limit, q).await?;
    let frames: Vec<Vec<u8>> = form
        .files
        .into_iter()
        .filter(|(name, _)| name == "frames")
        .map(|(_, bytes)| bytes)
        .take(MAX_FRAMES)
        .collect();
    if s.challenges
        .take(&id, &key.gallery, SystemTime::now())
        .is_none()
    {
        return Err(ApiError::not_found(
            "unknown_challenge",
            format!(
                "no open challenge `{id}`: it expired, was already answered, or was never \
                 given to this gallery; start a new one"
            ),
        ));
    }
    let faces = Arc::clone(&s.faces);
    let out = s.run(move || judge_frames(&faces, &frames)).await?;
    Ok(Json(out))
}

/// Finds the largest face of each frame and judges the track of its keypoints.
fn judge_frames(faces: &Faces, frames: &[Vec<u8>]) -> ApiResult<ChallengeVerdict> {
    let mut track: Vec<Keypoints> = Vec::with_capacity(frames.len());
    for (i, bytes) in frames.iter().enumerate() {
        let image = Image::decode(bytes).map_err(|e| {
            ApiError::bad_request(
                "bad_image",
                format!("frame {i} is not an image the service can read (JPEG or PNG): {e}"),
            )
        })?;
        let area = |d: &likeness_face::Detection| (d.bbox[2] - d.bbox[0]) * (d.bbox[3] - d.bbox[1]);
        if let Some(d) = faces
            .detect(&image)?
            .into_iter()
            .max_by(|a, b| area(a).total_cmp(&area(b)))
        {
            track.push(d.keypoints);
        }
    }
    let without = frames.len() - track.len();
    let result = judge_head_turn(&track, None).map_err(|e| {
        ApiError::bad_request(
            "too_few_faces",
            format!(
                "{e} ({} frame(s) sent, {without} without a face)",
                frames.len()
            ),
        )
    })?;
    Ok(ChallengeVerdict {
        reason: reason(result.failure).to_string(),
        result,
        frames_without_face: without,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_challenge_is_answered_once_and_only_by_its_own_gallery_before_it_expires() {
        let c = Challenges::default();
        let now = SystemTime::now();
        let (id, expires) = c.create("a", now);
        assert_eq!(expires, now + CHALLENGE_TTL);
        assert!(c.take(&id, "b", now).is_none(), "another gallery's key");
        let (id, _) = c.create("a", now);
        assert!(c.take(&id, "a", now).is_some());
        assert!(c.take(&id, "a", now).is_none(), "a second answer");
        let (id, _) = c.create("a", now);
        assert!(c.take(&id, "a", now + CHALLENGE_TTL).is_none(), "expired");
    }

    #[test]
    fn unknown_face_plugins_are_refused_and_liveness_is_read_from_a_list() {
        let mut form = Form::default();
        assert_eq!(Plugins::from_form(&form).unwrap(), Plugins::default());
        form.fields
            .insert("face_plugins".into(), "landmarks, liveness".into());
        assert!(Plugins::from_form(&form).is_err());
        form.fields.insert("face_plugins".into(), "liveness".into());
        assert!(Plugins::from_form(&form).unwrap().liveness);
        form.fields
            .insert("face_plugins".into(), serde_json::json!(["liveness"]));
        assert!(Plugins::from_form(&form).unwrap().liveness);
    }
}
