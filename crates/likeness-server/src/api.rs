//! The routes under `/api/v1` (CompreFace's resource model), `/healthz` and `/metrics`.
//!
//! Every face operation runs on the CPU pool; a handler only parses, authorises, hands the
//! work over and serialises the library's answer. The caller's gallery comes from its key,
//! never from the request, so a key of gallery A has no way to name gallery B.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use axum::extract::{FromRequestParts, Path as UrlPath, Query, Request, State};
use axum::http::request::Parts;
use axum::http::{StatusCode, header};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use axum::{Json, Router};
use likeness_face::faces::Verdict;
use likeness_face::faces::{DEFAULT_TOLERANCE, verify as verify_faces};
use likeness_face::liveness::LivenessCheck;
use likeness_face::report::DetectionOut;
use likeness_face::{Detection, Face, Faces};
use likeness_gallery::{
    Candidate, EmbeddedGallery, EnrolRequest, Enrolment, GalleryStore, JsonGallery, PersonRef,
    PersonSummary, Sample, Who,
};
use likeness_nn::image::Image;
use serde::{Deserialize, Serialize};

use crate::AppState;
use crate::error::{ApiError, ApiResult};
use crate::input::Form;
use crate::keys::{Caller, KeyError, KeyInfo, Scope};
use crate::liveness::{Plugins, is_spoof};
use crate::pool::PoolError;
use crate::style::{JobEvent, JobState, JobStatus, StyleOptions};

type AppRef = State<Arc<AppState>>;
type Params = Query<BTreeMap<String, String>>;

/// The name galleries record for the service's embedding network (the model cache's dlib
/// network, as the CLI records it), so the CLI and the service can share a gallery file.
pub const EMBEDDER: &str = likeness_face::faces::MODEL_EMBEDDER;

pub fn routes() -> Router<Arc<AppState>> {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics))
        .route("/api/v1/openapi.json", get(crate::openapi::document))
        .route("/api/v1/me", get(whoami))
        .route(
            "/api/v1/admin/galleries",
            post(create_gallery).get(list_galleries),
        )
        .route("/api/v1/admin/keys", post(create_key).get(list_keys))
        .route("/api/v1/admin/keys/{id}", delete(revoke_key))
        .route("/api/v1/detection/detect", post(detect))
        .route("/api/v1/verification/verify", post(verify))
        .route("/api/v1/recognition/recognize", post(recognize))
        .route(
            "/api/v1/liveness/challenge",
            post(crate::liveness::create_challenge),
        )
        .route(
            "/api/v1/liveness/challenge/{id}/frames",
            post(crate::liveness::challenge_frames),
        )
        .route(
            "/api/v1/recognition/embeddings/recognize",
            post(recognize_embeddings),
        )
        .route(
            "/api/v1/recognition/subjects",
            post(add_subject).get(list_subjects),
        )
        .route(
            "/api/v1/recognition/subjects/{subject}",
            axum::routing::put(rename_subject).delete(delete_subject),
        )
        .route(
            "/api/v1/recognition/faces",
            post(add_face).get(list_faces).delete(delete_subject_faces),
        )
        .route("/api/v1/recognition/faces/{image_id}", delete(delete_face))
        .route("/api/v1/recognition/faces/{image_id}/img", get(face_image))
        .route("/api/v1/style", post(style_submit))
        .route("/api/v1/style/{id}", get(style_status).delete(style_cancel))
        .route("/api/v1/style/{id}/events", get(style_events))
        .route("/api/v1/style/{id}/result", get(style_result))
}

// ---------------------------------------------------------------------------------------
// Keys

/// The caller, from `x-api-key` (CompreFace's header) or `Authorization: Bearer`.
pub struct Auth(pub Caller);

impl FromRequestParts<Arc<AppState>> for Auth {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &Arc<AppState>) -> ApiResult<Auth> {
        let key = parts
            .headers
            .get("x-api-key")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
            .or_else(|| {
                parts
                    .headers
                    .get(header::AUTHORIZATION)
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.strip_prefix("Bearer "))
                    .map(str::to_string)
            });
        let Some(key) = key else {
            return Err(ApiError::new(
                StatusCode::UNAUTHORIZED,
                "missing_key",
                "this endpoint needs an API key in the `x-api-key` header",
            ));
        };
        state
            .keys
            .authenticate(key.trim())
            .map(Auth)
            .ok_or_else(|| {
                ApiError::new(
                    StatusCode::UNAUTHORIZED,
                    "bad_key",
                    "the API key is not valid (unknown, mistyped or revoked)",
                )
            })
    }
}

impl Auth {
    /// The gallery key, if it may do `scope`.
    pub(crate) fn need(&self, scope: Scope) -> ApiResult<&KeyInfo> {
        match &self.0 {
            Caller::Admin => Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "admin_key",
                "the admin key manages galleries and keys only; use a gallery key (POST \
                 /api/v1/admin/keys makes one)",
            )),
            Caller::Key(k) if k.scopes.contains(&scope) => Ok(k),
            Caller::Key(_) => Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "scope",
                format!(
                    "this key may not `{}`; ask the administrator for a key with that scope",
                    scope.name()
                ),
            )),
        }
    }

    fn admin(&self) -> ApiResult<()> {
        match self.0 {
            Caller::Admin => Ok(()),
            Caller::Key(_) => Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "not_admin",
                "only the admin key manages galleries and keys",
            )),
        }
    }
}

impl From<KeyError> for ApiError {
    fn from(e: KeyError) -> ApiError {
        let message = e.to_string();
        match e {
            KeyError::Invalid(_) => ApiError::bad_request("invalid", message),
            KeyError::NotFound(_) => ApiError::not_found("not_found", message),
            KeyError::Conflict(_) => ApiError::new(StatusCode::CONFLICT, "conflict", message),
            _ => ApiError::internal(message),
        }
    }
}

impl From<likeness_gallery::GalleryError> for ApiError {
    fn from(e: likeness_gallery::GalleryError) -> ApiError {
        use likeness_gallery::GalleryError as E;
        let message = e.to_string();
        match e {
            E::NoSuchPerson(_) => ApiError::not_found("unknown_subject", message),
            E::Invalid(_) | E::Dimension { .. } | E::NonFinite { .. } => {
                ApiError::bad_request("invalid", message)
            }
            E::EmbedderMismatch { .. } => ApiError::bad_request("embedder_mismatch", message),
            E::DuplicateName(_) => ApiError::new(StatusCode::CONFLICT, "subject_exists", message),
            E::Suspicious(_) => ApiError::new(
                StatusCode::CONFLICT,
                "enrolment_refused",
                format!("{message} (the API's flag is `insist=true`)"),
            ),
            E::Locked { .. } => ApiError {
                retry_after: Some(1),
                ..ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "gallery_locked", message)
            },
            _ => ApiError::internal(message),
        }
    }
}

#[derive(Serialize, Deserialize)]
pub struct Me {
    pub admin: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key: Option<KeyInfo>,
}

async fn whoami(auth: Auth) -> Json<Me> {
    Json(match auth.0 {
        Caller::Admin => Me {
            admin: true,
            key: None,
        },
        Caller::Key(k) => Me {
            admin: false,
            key: Some(k),
        },
    })
}

#[derive(Serialize, Deserialize)]
pub struct GalleryName {
    pub name: String,
}

#[derive(Serialize, Deserialize)]
pub struct GalleryList {
    pub galleries: Vec<String>,
}

async fn create_gallery(
    State(s): AppRef,
    auth: Auth,
    body: Result<Json<GalleryName>, axum::extract::rejection::JsonRejection>,
) -> ApiResult<(StatusCode, Json<GalleryName>)> {
    auth.admin()?;
    let Json(body) = body.map_err(json_rejection)?;
    s.keys.create_gallery(&body.name)?;
    Ok((StatusCode::CREATED, Json(body)))
}

async fn list_galleries(State(s): AppRef, auth: Auth) -> ApiResult<Json<GalleryList>> {
    auth.admin()?;
    Ok(Json(GalleryList {
        galleries: s.keys.galleries(),
    }))
}

#[derive(Serialize, Deserialize)]
pub struct NewKey {
    pub gallery: String,
    pub scopes: BTreeSet<Scope>,
    #[serde(default)]
    pub label: String,
}

#[derive(Serialize, Deserialize)]
pub struct CreatedKey {
    /// The key itself: shown this once, stored only as a hash.
    pub key: String,
    #[serde(flatten)]
    pub info: KeyInfo,
}

#[derive(Serialize, Deserialize)]
pub struct KeyList {
    pub keys: Vec<KeyInfo>,
}

async fn create_key(
    State(s): AppRef,
    auth: Auth,
    body: Result<Json<NewKey>, axum::extract::rejection::JsonRejection>,
) -> ApiResult<(StatusCode, Json<CreatedKey>)> {
    auth.admin()?;
    let Json(body) = body.map_err(json_rejection)?;
    let (key, info) = s.keys.create_key(&body.gallery, body.scopes, &body.label)?;
    Ok((StatusCode::CREATED, Json(CreatedKey { key, info })))
}

async fn list_keys(State(s): AppRef, auth: Auth) -> ApiResult<Json<KeyList>> {
    auth.admin()?;
    Ok(Json(KeyList {
        keys: s.keys.keys(),
    }))
}

async fn revoke_key(
    State(s): AppRef,
    auth: Auth,
    UrlPath(id): UrlPath<String>,
) -> ApiResult<Json<KeyInfo>> {
    auth.admin()?;
    Ok(Json(s.keys.revoke(&id)?))
}

fn json_rejection(e: axum::extract::rejection::JsonRejection) -> ApiError {
    ApiError::new(e.status(), "bad_json", e.body_text())
}

// ---------------------------------------------------------------------------------------
// Service

async fn healthz(State(s): AppRef) -> Json<serde_json::Value> {
    Json(serde_json::json!({
        "status": "ok",
        "workers": s.pool.workers,
        "queue_capacity": s.pool.queue,
        "body_limit": s.config.body_limit,
    }))
}

async fn metrics(State(s): AppRef) -> Response {
    use std::sync::atomic::Ordering;
    let text = s.metrics.render(
        &s.pool.stats,
        s.pool.workers,
        s.style.running.load(Ordering::Relaxed),
        s.style.queued.load(Ordering::Relaxed),
    );
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], text).into_response()
}

impl AppState {
    /// Runs CPU work on the pool; a full queue is 429.
    pub(crate) async fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> ApiResult<T> + Send + 'static,
    ) -> ApiResult<T> {
        match self.pool.run(work).await {
            Ok(out) => out,
            Err(PoolError::Full) => Err(ApiError::busy("the service's queue", 1)),
            Err(PoolError::Failed) => Err(ApiError::internal(
                "the request failed inside the service (a bug: the log has the details)",
            )),
        }
    }
}

// ---------------------------------------------------------------------------------------
// Faces

/// The options every face endpoint takes (CompreFace's names).
#[derive(Clone, Copy, Debug)]
struct FaceOptions {
    /// At most this many faces, largest first (0: all).
    limit: usize,
    /// Drop detections scoring below this.
    det_prob_threshold: Option<f32>,
    /// Subjects returned per face.
    prediction_count: usize,
    tolerance: f32,
    /// `face_plugins`.
    plugins: Plugins,
}

impl FaceOptions {
    fn from_form(form: &Form) -> ApiResult<FaceOptions> {
        Ok(FaceOptions {
            limit: form.count("limit", 0..=10_000)?.unwrap_or(0),
            det_prob_threshold: form
                .number("det_prob_threshold", 0.0..=1.0)?
                .map(|v| v as f32),
            prediction_count: form.count("prediction_count", 1..=1000)?.unwrap_or(1),
            tolerance: form
                .number("tolerance", 0.0..=4.0)?
                .map_or(DEFAULT_TOLERANCE, |v| v as f32),
            plugins: Plugins::from_form(form)?,
        })
    }
}

fn decode(bytes: &[u8], field: &str) -> ApiResult<Image> {
    if bytes.is_empty() {
        return Err(ApiError::bad_request(
            "bad_image",
            format!("`{field}` is empty: send the image's bytes"),
        ));
    }
    Image::decode(bytes).map_err(|e| {
        ApiError::bad_request(
            "bad_image",
            format!("`{field}` is not an image the service can read (JPEG or PNG): {e}"),
        )
    })
}

/// The faces of `image` passing the options, largest first, each encoded once (the
/// face-ness check, which needs the embedding, shares it).
fn encoded(faces: &Faces, image: &Image, opts: &FaceOptions) -> ApiResult<Vec<Face>> {
    let mut found = faces.encode_where(image, |d| {
        opts.det_prob_threshold.is_none_or(|t| d.score >= t)
    })?;
    let area = |f: &Face| {
        let b = f.detection.bbox;
        (b[2] - b[0]) * (b[3] - b[1])
    };
    found.sort_by(|a, b| area(b).total_cmp(&area(a)));
    if opts.limit > 0 {
        found.truncate(opts.limit);
    }
    Ok(found)
}

/// The detections of `image` passing the options, largest first.
fn detections(faces: &Faces, image: &Image, opts: &FaceOptions) -> ApiResult<Vec<Detection>> {
    Ok(encoded(faces, image, opts)?
        .into_iter()
        .map(|f| f.detection)
        .collect())
}

/// The largest face of an image, encoded; `no_face` naming the field when there is none.
fn largest_face(faces: &Faces, image: &Image, field: &str, opts: &FaceOptions) -> ApiResult<Face> {
    let mut found = encoded(faces, image, opts)?;
    found.truncate(1);
    if found.is_empty() {
        return Err(ApiError::bad_request(
            "no_face",
            format!(
                "no face found in `{field}` ({}x{}); faces smaller than about 40 pixels are \
                 not looked for",
                image.width, image.height
            ),
        ));
    }
    found
        .pop()
        .ok_or_else(|| ApiError::internal("encoding returned no face"))
}

/// A face as the API answers it: the CLI's `detect --json` face, and what the face plugins
/// asked for added to it.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct FaceOut {
    #[serde(flatten)]
    pub face: DetectionOut,
    /// With `face_plugins=liveness`: likeness-face's check of the face (the CLI's
    /// `liveness --json` face).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub liveness: Option<LivenessCheck>,
}

impl FaceOut {
    fn new(d: &Detection, liveness: Option<LivenessCheck>) -> FaceOut {
        FaceOut {
            face: d.into(),
            liveness,
        }
    }
}

impl AppState {
    /// The liveness network when `plugins` ask for it (loaded on first use).
    fn checker(
        &self,
        plugins: Plugins,
    ) -> ApiResult<Option<Arc<likeness_face::liveness::LivenessChecker>>> {
        if plugins.liveness {
            self.liveness.get().map(Some)
        } else {
            Ok(None)
        }
    }
}

/// `POST detection/detect`'s answer.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct DetectResponse {
    pub width: u32,
    pub height: u32,
    /// Largest first (the CLI's `detect --json` faces).
    pub result: Vec<FaceOut>,
}

async fn detect(
    State(s): AppRef,
    auth: Auth,
    Query(q): Params,
    request: Request,
) -> ApiResult<Json<DetectResponse>> {
    auth.need(Scope::Detect)?;
    let form = Form::read(request, &["file"], s.config.body_limit, q).await?;
    let opts = FaceOptions::from_form(&form)?;
    let bytes = form.image("file")?.to_vec();
    let faces = Arc::clone(&s.faces);
    let checker = s.checker(opts.plugins)?;
    let out = s
        .run(move || {
            let image = decode(&bytes, "file")?;
            let found = detections(&faces, &image, &opts)?;
            let checks = crate::liveness::checks(checker.as_deref(), &image, &found)?;
            Ok(DetectResponse {
                width: image.width,
                height: image.height,
                result: found
                    .iter()
                    .zip(checks)
                    .map(|(d, c)| FaceOut::new(d, c))
                    .collect(),
            })
        })
        .await?;
    Ok(Json(out))
}

/// `POST verification/verify`'s answer: the largest face of each image and the verdict.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct VerifyResponse {
    pub source_face: FaceOut,
    pub target_face: FaceOut,
    #[serde(flatten)]
    pub verdict: Verdict,
    /// 1 − d²/2: the cosine similarity of the two (unit-length) embeddings.
    pub similarity: f32,
}

/// The one face of `image` judged when `checker` is given.
fn check_one(
    checker: Option<&likeness_face::liveness::LivenessChecker>,
    image: &Image,
    face: &Face,
) -> ApiResult<Option<LivenessCheck>> {
    Ok(
        crate::liveness::checks(checker, image, std::slice::from_ref(&face.detection))?
            .pop()
            .flatten(),
    )
}

/// Cosine similarity of unit-length embeddings at L2 distance `d` (dlib's are unit-length).
fn similarity(distance: f32) -> f32 {
    1.0 - distance * distance / 2.0
}

async fn verify(
    State(s): AppRef,
    auth: Auth,
    Query(q): Params,
    request: Request,
) -> ApiResult<Json<VerifyResponse>> {
    auth.need(Scope::Verify)?;
    let form = Form::read(
        request,
        &["source_image", "target_image"],
        s.config.body_limit,
        q,
    )
    .await?;
    let opts = FaceOptions::from_form(&form)?;
    let a = form.image("source_image")?.to_vec();
    let b = form.image("target_image")?.to_vec();
    let faces = Arc::clone(&s.faces);
    let checker = s.checker(opts.plugins)?;
    let out = s
        .run(move || {
            let (ia, ib) = (decode(&a, "source_image")?, decode(&b, "target_image")?);
            let a = largest_face(&faces, &ia, "source_image", &opts)?;
            let b = largest_face(&faces, &ib, "target_image", &opts)?;
            let mut verdict = verify_faces(&a.embedding, &b.embedding, opts.tolerance)?;
            let la = check_one(checker.as_deref(), &ia, &a)?;
            let lb = check_one(checker.as_deref(), &ib, &b)?;
            if is_spoof(&la) || is_spoof(&lb) {
                // A picture of a face proves nothing about who is at the camera.
                verdict.same = false;
            }
            Ok(VerifyResponse {
                source_face: FaceOut::new(&a.detection, la),
                target_face: FaceOut::new(&b.detection, lb),
                similarity: similarity(verdict.distance),
                verdict,
            })
        })
        .await?;
    Ok(Json(out))
}

/// One candidate subject of a face.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Prediction {
    #[serde(flatten)]
    pub candidate: Candidate,
    pub similarity: f32,
}

/// One face of `POST recognition/recognize`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct RecognizedFace {
    /// Absent for `embeddings/recognize`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub face: Option<FaceOut>,
    /// The nearest subject within the tolerance, `"unknown"`, or `"spoof"` for a face the
    /// liveness plugin judged a picture of a face (it is never searched for).
    pub subject: String,
    /// The `prediction_count` nearest subjects, nearest first, known or not.
    pub subjects: Vec<Prediction>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct RecognizeResponse {
    pub tolerance: f32,
    /// Largest face first.
    pub result: Vec<RecognizedFace>,
}

/// The name given to a face matching nobody.
pub const UNKNOWN: &str = "unknown";
/// The name given to a face the liveness plugin judged a spoof (the CLI's word).
pub const SPOOF: &str = likeness_face::compat::SPOOF;

fn recognized(face: Option<FaceOut>, candidates: Vec<Candidate>) -> RecognizedFace {
    if face.as_ref().is_some_and(|f| is_spoof(&f.liveness)) {
        return RecognizedFace {
            face,
            subject: SPOOF.to_string(),
            subjects: Vec::new(),
        };
    }
    let subject = candidates
        .first()
        .filter(|c| c.known)
        .map_or_else(|| UNKNOWN.to_string(), |c| c.name.clone());
    RecognizedFace {
        face,
        subject,
        subjects: candidates
            .into_iter()
            .map(|c| Prediction {
                similarity: similarity(c.distance),
                candidate: c,
            })
            .collect(),
    }
}

async fn recognize(
    State(s): AppRef,
    auth: Auth,
    Query(q): Params,
    request: Request,
) -> ApiResult<Json<RecognizeResponse>> {
    let key = auth.need(Scope::Recognize)?.clone();
    let form = Form::read(request, &["file"], s.config.body_limit, q).await?;
    let opts = FaceOptions::from_form(&form)?;
    let bytes = form.image("file")?.to_vec();
    let faces = Arc::clone(&s.faces);
    let store = s.galleries.store(&key.gallery)?;
    let checker = s.checker(opts.plugins)?;
    let out = s
        .run(move || {
            let image = decode(&bytes, "file")?;
            let encoded = encoded(&faces, &image, &opts)?;
            let detected: Vec<Detection> = encoded.iter().map(|f| f.detection.clone()).collect();
            let checks = crate::liveness::checks(checker.as_deref(), &image, &detected)?;
            // A spoof is never searched for, so it can never be named.
            let queries: Vec<Vec<f32>> = encoded
                .iter()
                .zip(&checks)
                .filter(|(_, c)| !is_spoof(c))
                .map(|(f, _)| f.embedding.0.clone())
                .collect();
            let mut answers = if queries.is_empty() {
                Vec::new()
            } else {
                store.identify(EMBEDDER, &queries, opts.prediction_count, opts.tolerance)?
            }
            .into_iter();
            Ok(RecognizeResponse {
                tolerance: opts.tolerance,
                result: encoded
                    .iter()
                    .zip(checks)
                    .map(|(f, c)| {
                        let candidates = if is_spoof(&c) {
                            Vec::new()
                        } else {
                            answers.next().unwrap_or_default()
                        };
                        recognized(Some(FaceOut::new(&f.detection, c)), candidates)
                    })
                    .collect(),
            })
        })
        .await?;
    Ok(Json(out))
}

async fn recognize_embeddings(
    State(s): AppRef,
    auth: Auth,
    Query(q): Params,
    request: Request,
) -> ApiResult<Json<RecognizeResponse>> {
    let key = auth.need(Scope::Recognize)?.clone();
    let form = Form::read(request, &[], s.config.body_limit, q).await?;
    let opts = FaceOptions::from_form(&form)?;
    let Some(value) = form.fields.get("embeddings") else {
        return Err(ApiError::bad_request(
            "missing_embeddings",
            "send JSON {\"embeddings\": [[128 numbers], …]}",
        ));
    };
    let queries: Vec<Vec<f32>> = serde_json::from_value(value.clone()).map_err(|e| {
        ApiError::bad_request(
            "bad_embeddings",
            format!("`embeddings` must be an array of arrays of numbers: {e}"),
        )
    })?;
    if queries.is_empty() || queries.len() > 1000 {
        return Err(ApiError::bad_request(
            "bad_embeddings",
            "send between 1 and 1000 embeddings",
        ));
    }
    let store = s.galleries.store(&key.gallery)?;
    let out = s
        .run(move || {
            let answers =
                store.identify(EMBEDDER, &queries, opts.prediction_count, opts.tolerance)?;
            Ok(RecognizeResponse {
                tolerance: opts.tolerance,
                result: answers.into_iter().map(|c| recognized(None, c)).collect(),
            })
        })
        .await?;
    Ok(Json(out))
}

// ---------------------------------------------------------------------------------------
// Galleries: subjects and faces

/// The service's galleries: one JSON store per gallery under `dir`, and each face's aligned
/// chip beside it (`NAME.chips/IMAGE_ID.jpg`) for the web page's thumbnails.
#[derive(Debug)]
pub struct Galleries {
    dir: PathBuf,
    stores: Mutex<HashMap<String, Arc<dyn GalleryStore>>>,
    /// Serialises this service's multi-step changes of one gallery (removing one face).
    writers: Mutex<HashMap<String, Arc<Mutex<()>>>>,
}

impl Galleries {
    pub fn new(dir: PathBuf) -> Galleries {
        Galleries {
            dir,
            stores: Mutex::new(HashMap::new()),
            writers: Mutex::new(HashMap::new()),
        }
    }

    /// The store of gallery `name` (a name from a key, so already validated).
    pub fn store(&self, name: &str) -> ApiResult<Arc<dyn GalleryStore>> {
        crate::keys::valid_gallery_name(name)?;
        let mut stores = self
            .stores
            .lock()
            .map_err(|_| ApiError::internal("gallery table unusable"))?;
        if let Some(store) = stores.get(name) {
            return Ok(Arc::clone(store));
        }
        // New galleries live in the embedded store; one kept from before it keeps its JSON.
        let json = self.dir.join(format!("{name}.json"));
        let store: Arc<dyn GalleryStore> = if json.exists() {
            Arc::new(JsonGallery::at(json))
        } else {
            Arc::new(EmbeddedGallery::open(self.dir.join(format!("{name}.db")))?)
        };
        stores.insert(name.to_string(), Arc::clone(&store));
        Ok(store)
    }

    fn writer(&self, name: &str) -> Arc<Mutex<()>> {
        let mut w = self.writers.lock().unwrap_or_else(|e| e.into_inner());
        Arc::clone(w.entry(name.to_string()).or_default())
    }

    fn chip_dir(&self, gallery: &str) -> PathBuf {
        self.dir.join(format!("{gallery}.chips"))
    }

    fn chip_path(&self, gallery: &str, image_id: &str) -> ApiResult<PathBuf> {
        valid_image_id(image_id)?;
        Ok(self.chip_dir(gallery).join(format!("{image_id}.jpg")))
    }
}

/// Image ids are 16 hex digits made here; anything else is refused before touching a path.
fn valid_image_id(id: &str) -> ApiResult<()> {
    if id.len() == 16 && id.bytes().all(|b| b.is_ascii_hexdigit()) {
        Ok(())
    } else {
        Err(ApiError::not_found(
            "unknown_face",
            format!("no face with image id `{id}` in this gallery"),
        ))
    }
}

fn new_image_id() -> String {
    let mut b = [0u8; 8];
    let _ = getrandom::fill(&mut b);
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn jpeg(image: &Image) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    image::ImageEncoder::write_image(
        image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, 85),
        &image.pixels,
        image.width,
        image.height,
        image::ExtendedColorType::Rgb8,
    )
    .map_err(|e| e.to_string())?;
    Ok(out)
}

fn write_file(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, bytes)?;
    std::fs::rename(&tmp, path)
}

/// `POST recognition/faces`'s answer.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct AddedFace {
    pub image_id: String,
    pub subject: String,
    pub face: DetectionOut,
    pub enrolment: Enrolment,
}

/// Enrols the largest face of the request's `file` for `subject`.
async fn enrol_face(
    s: &AppState,
    gallery: &str,
    subject: String,
    form: Form,
) -> ApiResult<AddedFace> {
    let opts = FaceOptions::from_form(&form)?;
    let insist = form.flag("insist")?;
    let bytes = form.image("file")?.to_vec();
    let faces = Arc::clone(&s.faces);
    let store = s.galleries.store(gallery)?;
    let chip_dir = s.galleries.chip_dir(gallery);
    s.run(move || {
        let image = decode(&bytes, "file")?;
        let face = largest_face(&faces, &image, "file", &opts)?;
        let chip = faces.chip(&image, &face.landmarks)?;
        let image_id = new_image_id();
        let enrolment = store.enrol(EnrolRequest {
            name: subject,
            embedder: EMBEDDER.to_string(),
            samples: vec![Sample::new(face.embedding.0.clone(), image_id.clone())],
            tolerance: opts.tolerance,
            insist,
        })?;
        // The thumbnail is a convenience: a failure to keep it loses no enrolment.
        if let Ok(jpg) = jpeg(&chip.image)
            && let Err(e) = write_file(&chip_dir.join(format!("{image_id}.jpg")), &jpg)
        {
            eprintln!("warning: the chip of face {image_id} was not kept: {e}");
        }
        Ok(AddedFace {
            image_id,
            subject: enrolment.name.clone(),
            face: (&face.detection).into(),
            enrolment,
        })
    })
    .await
}

async fn add_face(
    State(s): AppRef,
    auth: Auth,
    Query(q): Params,
    request: Request,
) -> ApiResult<(StatusCode, Json<AddedFace>)> {
    let key = auth.need(Scope::Manage)?.clone();
    let form = Form::read(request, &["file"], s.config.body_limit, q).await?;
    let Some(subject) = form.text("subject")? else {
        return Err(ApiError::bad_request(
            "missing_subject",
            "say whose face this is: `subject` in the query or the form",
        ));
    };
    let added = enrol_face(&s, &key.gallery, subject, form).await?;
    Ok((StatusCode::CREATED, Json(added)))
}

async fn add_subject(
    State(s): AppRef,
    auth: Auth,
    Query(q): Params,
    request: Request,
) -> ApiResult<(StatusCode, Json<AddedFace>)> {
    let key = auth.need(Scope::Manage)?.clone();
    let form = Form::read(request, &["file"], s.config.body_limit, q).await?;
    let Some(subject) = form.text("subject")? else {
        return Err(ApiError::bad_request(
            "missing_subject",
            "send the subject's name in `subject`",
        ));
    };
    if form.images("file").is_empty() {
        return Err(ApiError::bad_request(
            "needs_face",
            format!(
                "a subject is made by enrolling a face: send a photo of `{subject}` in `file` \
                 here, or POST it to /api/v1/recognition/faces?subject=…"
            ),
        ));
    }
    let added = enrol_face(&s, &key.gallery, subject, form).await?;
    Ok((StatusCode::CREATED, Json(added)))
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct SubjectList {
    /// Every subject; `samples` are their faces' image ids.
    pub subjects: Vec<PersonSummary>,
}

async fn list_subjects(State(s): AppRef, auth: Auth) -> ApiResult<Json<SubjectList>> {
    let key = auth.need(Scope::Manage)?.clone();
    let store = s.galleries.store(&key.gallery)?;
    let subjects = s.run(move || Ok(store.list()?)).await?;
    Ok(Json(SubjectList { subjects }))
}

async fn rename_subject(
    State(s): AppRef,
    auth: Auth,
    UrlPath(subject): UrlPath<String>,
    Query(q): Params,
    request: Request,
) -> ApiResult<Json<PersonRef>> {
    let key = auth.need(Scope::Manage)?.clone();
    let form = Form::read(request, &[], s.config.body_limit, q).await?;
    let Some(new_name) = form.text("subject")? else {
        return Err(ApiError::bad_request(
            "missing_subject",
            "send the new name as JSON {\"subject\": \"…\"}",
        ));
    };
    let who = Who::parse(&subject)?;
    let store = s.galleries.store(&key.gallery)?;
    let renamed = s.run(move || Ok(store.rename(&who, &new_name)?)).await?;
    Ok(Json(renamed))
}

async fn remove_subject(s: &AppState, gallery: &str, who: Who) -> ApiResult<PersonSummary> {
    let store = s.galleries.store(gallery)?;
    let chips = s.galleries.chip_dir(gallery);
    s.run(move || {
        let removed = store.remove(&who)?;
        for id in &removed.samples {
            if valid_image_id(id).is_ok() {
                let _ = std::fs::remove_file(chips.join(format!("{id}.jpg")));
            }
        }
        Ok(removed)
    })
    .await
}

async fn delete_subject(
    State(s): AppRef,
    auth: Auth,
    UrlPath(subject): UrlPath<String>,
) -> ApiResult<Json<PersonSummary>> {
    let key = auth.need(Scope::Manage)?.clone();
    let who = Who::parse(&subject)?;
    Ok(Json(remove_subject(&s, &key.gallery, who).await?))
}

async fn delete_subject_faces(
    State(s): AppRef,
    auth: Auth,
    Query(q): Params,
) -> ApiResult<Json<PersonSummary>> {
    let key = auth.need(Scope::Manage)?.clone();
    let Some(subject) = q.get("subject") else {
        return Err(ApiError::bad_request(
            "missing_subject",
            "say whose faces to delete: ?subject=NAME (one face: DELETE /faces/IMAGE_ID)",
        ));
    };
    let who = Who::parse(subject)?;
    Ok(Json(remove_subject(&s, &key.gallery, who).await?))
}

/// One enrolled face.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct FaceEntry {
    pub image_id: String,
    pub subject: String,
    pub subject_id: u64,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct FaceList {
    pub faces: Vec<FaceEntry>,
}

async fn list_faces(State(s): AppRef, auth: Auth, Query(q): Params) -> ApiResult<Json<FaceList>> {
    let key = auth.need(Scope::Manage)?.clone();
    let store = s.galleries.store(&key.gallery)?;
    let only = q.get("subject").map(|v| Who::parse(v)).transpose()?;
    let people = s.run(move || Ok(store.list()?)).await?;
    let faces = people
        .into_iter()
        .filter(|p| only.as_ref().is_none_or(|w| w.matches(p.id, &p.name)))
        .flat_map(|p| {
            p.samples.into_iter().map(move |image_id| FaceEntry {
                image_id,
                subject: p.name.clone(),
                subject_id: p.id,
            })
        })
        .collect();
    Ok(Json(FaceList { faces }))
}

/// `DELETE recognition/faces/{image_id}`'s answer.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct DeletedFace {
    pub image_id: String,
    pub subject: String,
    /// The subject's id afterwards (`None` when this was their last face and they are gone).
    pub subject_id: Option<u64>,
}

/// The gallery store trait removes people, not single samples: a face is removed by removing
/// its person and enrolling their other samples again, under this service's per-gallery
/// writer lock. The person keeps their name; their id changes (ids are never reused).
async fn delete_face(
    State(s): AppRef,
    auth: Auth,
    UrlPath(image_id): UrlPath<String>,
) -> ApiResult<Json<DeletedFace>> {
    let key = auth.need(Scope::Manage)?.clone();
    valid_image_id(&image_id)?;
    let store = s.galleries.store(&key.gallery)?;
    let writer = s.galleries.writer(&key.gallery);
    let chip = s.galleries.chip_path(&key.gallery, &image_id)?;
    let id = image_id.clone();
    let out = s
        .run(move || {
            let _guard = writer.lock().unwrap_or_else(|e| e.into_inner());
            let data = store.export()?;
            let Some(person) = data
                .persons
                .iter()
                .find(|p| p.samples.iter().any(|x| x.source == id))
            else {
                return Err(ApiError::not_found(
                    "unknown_face",
                    format!("no face with image id `{id}` in this gallery"),
                ));
            };
            let rest: Vec<Sample> = person
                .samples
                .iter()
                .filter(|x| x.source != id)
                .cloned()
                .collect();
            store.remove(&Who::Id(person.id))?;
            let subject_id = if rest.is_empty() {
                None
            } else {
                Some(
                    store
                        .enrol(EnrolRequest {
                            name: person.name.clone(),
                            embedder: data.embedder.clone().unwrap_or_else(|| EMBEDDER.into()),
                            samples: rest,
                            tolerance: DEFAULT_TOLERANCE,
                            insist: true,
                        })?
                        .id,
                )
            };
            let _ = std::fs::remove_file(&chip);
            Ok(DeletedFace {
                image_id: id,
                subject: person.name.clone(),
                subject_id,
            })
        })
        .await?;
    Ok(Json(out))
}

async fn face_image(
    State(s): AppRef,
    auth: Auth,
    UrlPath(image_id): UrlPath<String>,
) -> ApiResult<Response> {
    let key = auth.need(Scope::Manage)?.clone();
    let path = s.galleries.chip_path(&key.gallery, &image_id)?;
    let store = s.galleries.store(&key.gallery)?;
    let id = image_id.clone();
    let bytes = s
        .run(move || {
            let known = store.list()?.iter().any(|p| p.samples.contains(&id));
            let missing = || {
                ApiError::not_found(
                    "unknown_face",
                    format!("no face with image id `{id}` in this gallery"),
                )
            };
            if !known {
                return Err(missing());
            }
            std::fs::read(&path).map_err(|_| missing())
        })
        .await?;
    Ok(([(header::CONTENT_TYPE, "image/jpeg")], bytes).into_response())
}

// ---------------------------------------------------------------------------------------
// Style

async fn style_submit(
    State(s): AppRef,
    auth: Auth,
    Query(q): Params,
    request: Request,
) -> ApiResult<(StatusCode, Json<JobStatus>)> {
    let key = auth.need(Scope::Style)?.clone();
    let form = Form::read(request, &["content", "style"], s.config.body_limit, q).await?;
    let d = StyleOptions::default();
    let options = StyleOptions {
        size: form
            .count("size", 16..=crate::style::MAX_SIZE)?
            .unwrap_or(d.size),
        iterations: form
            .count("iterations", 0..=crate::style::MAX_ITERATIONS)?
            .unwrap_or(d.iterations),
        content_weight: form
            .number("content_weight", 0.0..=1e12)?
            .unwrap_or(d.content_weight),
        style_weight: form
            .number("style_weight", 0.0..=1e12)?
            .unwrap_or(d.style_weight),
        tv_weight: form.number("tv_weight", 0.0..=1e12)?.unwrap_or(d.tv_weight),
        preserve_colors: form.flag("preserve_colors")?,
        seed: form.count("seed", 0..=u32::MAX as usize)?.unwrap_or(0) as u64,
        preview_every: form
            .count("preview_every", 0..=crate::style::MAX_ITERATIONS)?
            .unwrap_or(d.preview_every),
    };
    let content = form.image("content")?.to_vec();
    let styles: Vec<Vec<u8>> = form
        .images("style")
        .into_iter()
        .map(<[u8]>::to_vec)
        .collect();
    if styles.is_empty() {
        return Err(ApiError::bad_request(
            "missing_image",
            "no style image: send one or more in field `style`",
        ));
    }
    let (content, styles) = s
        .run(move || {
            let content = decode(&content, "content")?;
            let styles = styles
                .iter()
                .map(|b| decode(b, "style"))
                .collect::<ApiResult<Vec<_>>>()?;
            Ok((content, styles))
        })
        .await?;
    let status = s.style.submit(&key.gallery, content, styles, options)?;
    Ok((StatusCode::ACCEPTED, Json(status)))
}

async fn style_status(
    State(s): AppRef,
    auth: Auth,
    UrlPath(id): UrlPath<String>,
) -> ApiResult<Json<JobStatus>> {
    let key = auth.need(Scope::Style)?;
    Ok(Json(s.style.get(&key.gallery, &id)?.status()))
}

async fn style_cancel(
    State(s): AppRef,
    auth: Auth,
    UrlPath(id): UrlPath<String>,
) -> ApiResult<Json<JobStatus>> {
    let key = auth.need(Scope::Style)?;
    Ok(Json(s.style.cancel(&key.gallery, &id)?))
}

async fn style_result(
    State(s): AppRef,
    auth: Auth,
    UrlPath(id): UrlPath<String>,
) -> ApiResult<Response> {
    let key = auth.need(Scope::Style)?;
    let job = s.style.get(&key.gallery, &id)?;
    match job.result() {
        Some(png) => Ok((
            [
                (header::CONTENT_TYPE, "image/png".to_string()),
                (
                    header::CONTENT_DISPOSITION,
                    format!("attachment; filename=\"likeness-style-{id}.png\""),
                ),
            ],
            png.as_ref().clone(),
        )
            .into_response()),
        None => {
            let status = job.status();
            Err(ApiError::new(
                StatusCode::CONFLICT,
                "not_ready",
                format!(
                    "job `{id}` is {:?} (step {} of {}); the result exists once it is done",
                    status.state, status.iteration, status.iterations
                ),
            ))
        }
    }
}

/// Server-Sent Events: `status` (JSON [`JobStatus`]) after every step and `preview` (a PNG
/// `data:` URL) every `preview_every` steps; the stream starts with the current status and
/// preview and ends after the job does.
async fn style_events(
    State(s): AppRef,
    auth: Auth,
    UrlPath(id): UrlPath<String>,
) -> ApiResult<Response> {
    let key = auth.need(Scope::Style)?;
    let job = s.style.get(&key.gallery, &id)?;
    let receiver = job.events.subscribe();
    let mut first = vec![JobEvent::Status(job.status())];
    if let Some(p) = job.preview() {
        first.push(JobEvent::Preview(p));
    }
    let shutdown = s.shutdown.clone();
    struct St {
        first: std::vec::IntoIter<JobEvent>,
        receiver: tokio::sync::broadcast::Receiver<JobEvent>,
        shutdown: tokio::sync::watch::Receiver<bool>,
        done: bool,
    }
    let state = St {
        first: first.into_iter(),
        receiver,
        shutdown,
        done: false,
    };
    let stream = futures_util::stream::unfold(state, |mut st| async move {
        if st.done {
            return None;
        }
        let event = match st.first.next() {
            Some(e) => e,
            None => loop {
                tokio::select! {
                    r = st.receiver.recv() => match r {
                        Ok(e) => break e,
                        Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => continue,
                        Err(_) => return None,
                    },
                    _ = st.shutdown.wait_for(|s| *s) => return None,
                }
            },
        };
        let sse = match &event {
            JobEvent::Status(status) => {
                if matches!(
                    status.state,
                    JobState::Done | JobState::Failed | JobState::Cancelled
                ) {
                    st.done = true;
                }
                Event::default()
                    .event("status")
                    .data(serde_json::to_string(status).unwrap_or_default())
            }
            JobEvent::Preview(url) => Event::default().event("preview").data(url.as_str()),
        };
        Some((Ok::<_, std::convert::Infallible>(sse), st))
    });
    Ok(Sse::new(stream)
        .keep_alive(KeepAlive::new().interval(crate::style::SSE_KEEP_ALIVE))
        .into_response())
}
