//! `likeness serve`: the Likeness HTTP service.
//!
//! - The networks are loaded once ([`Faces`]) and shared by a bounded pool of worker threads
//!   ([`pool`]); the async runtime only moves bytes. A full queue answers 429 with
//!   `Retry-After`.
//! - The API follows CompreFace's resource model under `/api/v1` ([`api`]); every error is
//!   JSON `{ "code", "message" }` ([`error`]); `/api/v1/openapi.json` describes it
//!   ([`openapi`]).
//! - API keys ([`keys`]): an admin key manages galleries and keys; every other key belongs to
//!   one gallery and a set of operations, so a key cannot even name another gallery.
//! - Style transfers are jobs with live progress over Server-Sent Events ([`style`]).
//! - The web page (`/`) is compiled into the binary ([`web`]).
//!
//! No face logic lives here: detection, embedding and comparison are `likeness-face`'s, the
//! galleries are `likeness-gallery`'s stores.

pub mod api;
pub mod error;
pub mod input;
pub mod keys;
pub mod liveness;
pub mod metrics;
pub mod openapi;
pub mod pool;
pub mod style;
pub mod web;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::{DefaultBodyLimit, MatchedPath, Request, State};
use axum::http::StatusCode;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use likeness_face::Faces;

use crate::error::ApiError;
use crate::keys::{AdminKey, KeyStore};
use crate::metrics::Metrics;
use crate::pool::CpuPool;
use crate::style::StyleJobs;

/// Default request body limit: 10 MB, a large phone photo.
pub const DEFAULT_BODY_LIMIT: usize = 10 * 1024 * 1024;
/// Default time a request may take, queue wait included.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

/// How the service runs.
#[derive(Clone, Debug)]
pub struct ServerConfig {
    pub listen: SocketAddr,
    /// Keys and galleries live here.
    pub data_dir: PathBuf,
    pub body_limit: usize,
    pub timeout: Duration,
    /// Face worker threads (default: the number of cores).
    pub workers: usize,
    /// Face jobs that may wait for a worker before requests get 429.
    pub queue: usize,
    /// Style jobs running at once, and waiting.
    pub style_workers: usize,
    pub style_queue: usize,
    /// Threads of each style job.
    pub style_threads: usize,
    /// The admin key (`LIKENESS_ADMIN_KEY`), else one is created on the first start.
    pub admin_key: Option<String>,
}

impl ServerConfig {
    /// Defaults for `data_dir`, sized to this machine's cores.
    pub fn new(listen: SocketAddr, data_dir: PathBuf) -> ServerConfig {
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        ServerConfig {
            listen,
            data_dir,
            body_limit: DEFAULT_BODY_LIMIT,
            timeout: DEFAULT_TIMEOUT,
            workers: cores,
            queue: 4 * cores,
            style_workers: 1,
            style_queue: 4,
            style_threads: (cores / 2).max(1),
            admin_key: None,
        }
    }
}

/// Errors that stop the service from starting.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error(transparent)]
    Keys(#[from] keys::KeyError),
    #[error("loading the face networks: {0}")]
    Faces(#[from] likeness_face::FaceError),
    #[error("{0}")]
    Models(String),
    #[error("listening on {addr}: {cause}")]
    Listen {
        addr: SocketAddr,
        cause: std::io::Error,
    },
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

/// Everything the handlers share.
#[derive(Debug)]
pub struct AppState {
    pub config: ServerConfig,
    pub faces: Arc<Faces>,
    pub pool: CpuPool,
    pub keys: KeyStore,
    pub galleries: api::Galleries,
    /// The liveness network, loaded on the first request asking for it.
    pub liveness: liveness::LazyLiveness,
    /// Open head-turn challenges.
    pub challenges: liveness::Challenges,
    pub style: Arc<StyleJobs>,
    pub metrics: Metrics,
    pub shutdown: tokio::sync::watch::Receiver<bool>,
}

/// A started service: its address, and how to stop it.
pub struct Running {
    pub addr: SocketAddr,
    pub admin: AdminKey,
    stop: tokio::sync::watch::Sender<bool>,
    task: tokio::task::JoinHandle<Result<(), ServeError>>,
    state: Arc<AppState>,
}

impl Running {
    /// Stops accepting, finishes the accepted requests, ends the style jobs.
    pub async fn stop(self) -> Result<(), ServeError> {
        let _ = self.stop.send(true);
        let out = self
            .task
            .await
            .map_err(|e| ServeError::Io(std::io::Error::other(e.to_string())))?;
        self.state.pool.close();
        self.state.style.close();
        out
    }

    /// Waits until the service ends (after SIGTERM or Ctrl-C).
    pub async fn wait(self) -> Result<(), ServeError> {
        let out = self
            .task
            .await
            .map_err(|e| ServeError::Io(std::io::Error::other(e.to_string())))?;
        self.state.pool.close();
        self.state.style.close();
        out
    }
}

/// Loads the networks, opens the keys, binds, and serves until SIGTERM/Ctrl-C or
/// [`Running::stop`].
pub async fn start(config: ServerConfig) -> Result<Running, ServeError> {
    let cache =
        likeness_models::Cache::from_env().map_err(|e| ServeError::Models(e.to_string()))?;
    let faces = tokio::task::spawn_blocking(move || Faces::load(&cache))
        .await
        .map_err(|e| ServeError::Models(e.to_string()))??;
    start_with(config, Arc::new(faces)).await
}

/// [`start`] with networks already loaded.
pub async fn start_with(config: ServerConfig, faces: Arc<Faces>) -> Result<Running, ServeError> {
    std::fs::create_dir_all(&config.data_dir)?;
    let (keys, admin) = KeyStore::open(&config.data_dir, config.admin_key.as_deref())?;
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .map_err(|cause| ServeError::Listen {
            addr: config.listen,
            cause,
        })?;
    let addr = listener.local_addr()?;
    let (stop, shutdown) = tokio::sync::watch::channel(false);
    let state = Arc::new(AppState {
        pool: CpuPool::new("faces", config.workers, config.queue),
        galleries: api::Galleries::new(config.data_dir.join("galleries")),
        liveness: liveness::LazyLiveness::default(),
        challenges: liveness::Challenges::default(),
        style: StyleJobs::new(
            config.style_workers,
            config.style_queue,
            config.style_threads,
            None,
        ),
        faces,
        keys,
        metrics: Metrics::default(),
        shutdown: shutdown.clone(),
        config,
    });
    let app = router(Arc::clone(&state));
    let mut signal = shutdown.clone();
    let task = tokio::spawn(async move {
        axum::serve(listener, app)
            .with_graceful_shutdown(async move {
                tokio::select! {
                    _ = signal.wait_for(|s| *s) => {}
                    _ = terminate() => {}
                }
            })
            .await
            .map_err(ServeError::Io)
    });
    // SSE streams end when the shutdown flag is set, or graceful shutdown would wait for
    // them forever: the task above sets it on a signal too.
    let flag = stop.clone();
    let mut watch_task = shutdown;
    tokio::spawn(async move {
        tokio::select! {
            _ = watch_task.wait_for(|s| *s) => {}
            _ = terminate() => { let _ = flag.send(true); }
        }
    });
    Ok(Running {
        addr,
        admin,
        stop,
        task,
        state,
    })
}

async fn terminate() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {}
        _ = term => {}
    }
}

/// The whole service's routes.
pub fn router(state: Arc<AppState>) -> Router {
    let limit = state.config.body_limit;
    Router::new()
        .merge(api::routes())
        .merge(web::routes())
        .fallback(|| async {
            ApiError::not_found(
                "no_route",
                "no such endpoint; the API is described at /api/v1/openapi.json",
            )
        })
        .layer(middleware::from_fn_with_state(Arc::clone(&state), observe))
        // Multipart bodies are bounded by this; JSON bodies by `Form::read`'s own limit.
        .layer(DefaultBodyLimit::max(limit))
        .with_state(state)
}

/// Metrics and the per-request timeout around every request.
async fn observe(State(state): State<Arc<AppState>>, request: Request, next: Next) -> Response {
    let start = Instant::now();
    let method = request.method().to_string();
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_string(), |p| p.as_str().to_string());
    let response = match tokio::time::timeout(state.config.timeout, next.run(request)).await {
        Ok(r) => r,
        Err(_) => ApiError {
            retry_after: Some(5),
            ..ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "timeout",
                format!(
                    "the request took longer than the service's {} s limit; try again later \
                     or with a smaller image",
                    state.config.timeout.as_secs_f64()
                ),
            )
        }
        .into_response(),
    };
    state
        .metrics
        .record(&method, &route, response.status().as_u16(), start.elapsed());
    response
}
