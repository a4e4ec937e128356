//! Style-transfer jobs: started by `POST /api/v1/style`, watched through Server-Sent Events,
//! fetched as PNG, cancelled by `DELETE`.
//!
//! A transfer takes seconds to minutes, so it is a job, not a request. At most
//! `style_workers` jobs run at once (default 1) and `style_queue` wait; each runs on its own
//! thread inside a rayon pool of `style_threads` threads (default half the cores, at least 1),
//! so a transfer never takes every core from the face endpoints: the face pool keeps the rest.
//!
//! Cancelling: `transfer` reports after every step through its progress callback and has no
//! cancel argument; the callback unwinds out of it with a private payload when the job is
//! cancelled (`resume_unwind`, which prints nothing), and the job thread catches exactly that
//! payload. Everything the transfer allocated is dropped on the way out. A cancelled job stops
//! within one step (one forward + backward pass of VGG at the job's size).

use std::collections::{BTreeMap, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use base64::Engine;
use likeness_nn::image::Image;
use likeness_nn::weights::WeightMap;
use likeness_style::StyleConfig;
use serde::{Deserialize, Serialize};
use tokio::sync::broadcast;

use crate::error::{ApiError, ApiResult};

/// The largest side a job may ask for: a 1024-pixel transfer already takes minutes per
/// hundred steps on two cores.
pub const MAX_SIZE: usize = 1024;
/// The most steps a job may ask for.
pub const MAX_ITERATIONS: usize = 2000;
/// Finished jobs kept for their result, oldest dropped first.
const KEEP_FINISHED: usize = 32;

/// The options of a job (a subset of `likeness style`'s, with its defaults).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct StyleOptions {
    /// Longest side of the result, pixels.
    pub size: usize,
    pub iterations: usize,
    pub content_weight: f64,
    pub style_weight: f64,
    pub tv_weight: f64,
    pub preserve_colors: bool,
    pub seed: u64,
    /// Send a preview every this many steps (0: none).
    pub preview_every: usize,
}

impl Default for StyleOptions {
    fn default() -> Self {
        let d = StyleConfig::default();
        StyleOptions {
            size: 256,
            iterations: 100,
            content_weight: d.content_weight,
            style_weight: d.style_weight,
            tv_weight: d.tv_weight,
            preserve_colors: d.preserve_colors,
            seed: d.seed,
            preview_every: 10,
        }
    }
}

/// Where a job is.
#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum JobState {
    Queued,
    Running,
    Done,
    Failed,
    Cancelled,
}

/// A job's public status (`POST /style`'s answer, and each `status` event).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct JobStatus {
    pub id: String,
    pub state: JobState,
    pub iteration: usize,
    pub iterations: usize,
    /// The objective J at the last step.
    pub loss: Option<f64>,
    pub elapsed_s: f64,
    pub error: Option<String>,
    pub options: StyleOptions,
}

/// What `/events` streams.
#[derive(Clone, Debug)]
pub enum JobEvent {
    Status(JobStatus),
    /// A PNG of the current image, as a `data:` URL.
    Preview(Arc<String>),
}

#[derive(Debug)]
pub struct Job {
    pub gallery: String,
    status: Mutex<JobStatus>,
    preview: Mutex<Option<Arc<String>>>,
    result: Mutex<Option<Arc<Vec<u8>>>>,
    cancel: AtomicBool,
    pub events: broadcast::Sender<JobEvent>,
    started: Instant,
}

impl Job {
    pub fn status(&self) -> JobStatus {
        self.status
            .lock()
            .map(|s| s.clone())
            .unwrap_or_else(|e| e.into_inner().clone())
    }

    pub fn preview(&self) -> Option<Arc<String>> {
        self.preview.lock().ok().and_then(|p| p.clone())
    }

    pub fn result(&self) -> Option<Arc<Vec<u8>>> {
        self.result.lock().ok().and_then(|p| p.clone())
    }

    fn update(&self, change: impl FnOnce(&mut JobStatus)) {
        let status = {
            let Ok(mut s) = self.status.lock() else {
                return;
            };
            change(&mut s);
            s.elapsed_s = self.started.elapsed().as_secs_f64();
            s.clone()
        };
        let _ = self.events.send(JobEvent::Status(status));
    }

    pub fn is_finished(&self) -> bool {
        matches!(
            self.status().state,
            JobState::Done | JobState::Failed | JobState::Cancelled
        )
    }
}

struct Cancelled;

/// A queued job with its decoded content and style images.
type Queued = (Arc<Job>, Image, Vec<Image>);

/// The jobs and the threads that run them.
#[derive(Debug)]
pub struct StyleJobs {
    jobs: Mutex<BTreeMap<String, Arc<Job>>>,
    finished: Mutex<VecDeque<String>>,
    sender: Mutex<Option<std::sync::mpsc::SyncSender<Queued>>>,
    pub running: Arc<AtomicUsize>,
    pub queued: Arc<AtomicUsize>,
    weights: Arc<OnceLock<Result<WeightMap, String>>>,
}

impl StyleJobs {
    /// `workers` jobs at once, `queue` waiting, each on `threads` rayon threads; VGG-16 is read
    /// from `vgg` on the first job.
    pub fn new(
        workers: usize,
        queue: usize,
        threads: usize,
        vgg: Option<std::path::PathBuf>,
    ) -> Arc<StyleJobs> {
        let (tx, rx) = std::sync::mpsc::sync_channel::<Queued>(queue);
        let rx = Arc::new(Mutex::new(rx));
        let jobs = Arc::new(StyleJobs {
            jobs: Mutex::new(BTreeMap::new()),
            finished: Mutex::new(VecDeque::new()),
            sender: Mutex::new(Some(tx)),
            running: Arc::new(AtomicUsize::new(0)),
            queued: Arc::new(AtomicUsize::new(0)),
            weights: Arc::new(OnceLock::new()),
        });
        for i in 0..workers.max(1) {
            let rx = Arc::clone(&rx);
            let me = Arc::downgrade(&jobs);
            let vgg = vgg.clone();
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(threads.max(1))
                .thread_name(move |t| format!("style-{i}-{t}"))
                .build();
            let _ = std::thread::Builder::new()
                .name(format!("style-{i}"))
                .spawn(move || {
                    let Ok(pool) = pool else {
                        return;
                    };
                    loop {
                        let next = match rx.lock() {
                            Ok(r) => r.recv(),
                            Err(_) => return,
                        };
                        let Ok((job, content, styles)) = next else {
                            return;
                        };
                        let Some(jobs) = me.upgrade() else {
                            return;
                        };
                        jobs.queued.fetch_sub(1, Ordering::Relaxed);
                        jobs.running.fetch_add(1, Ordering::Relaxed);
                        pool.install(|| jobs.run(&job, &content, &styles, vgg.as_deref()));
                        jobs.running.fetch_sub(1, Ordering::Relaxed);
                        jobs.retire(&job);
                    }
                });
        }
        jobs
    }

    fn weights(&self, vgg: Option<&std::path::Path>) -> Result<&WeightMap, String> {
        self.weights
            .get_or_init(|| {
                let path = match vgg {
                    Some(p) => p.to_path_buf(),
                    None => likeness_models::Cache::from_env()
                        .map_err(|e| e.to_string())?
                        .model_path("vgg16")
                        .map_err(|e| e.to_string())?,
                };
                likeness_style::load_weights(&path)
                    .map_err(|e| format!("loading VGG-16 from {}: {e}", path.display()))
            })
            .as_ref()
            .map_err(Clone::clone)
    }

    fn run(&self, job: &Job, content: &Image, styles: &[Image], vgg: Option<&std::path::Path>) {
        if job.cancel.load(Ordering::Relaxed) {
            job.update(|s| s.state = JobState::Cancelled);
            return;
        }
        job.update(|s| s.state = JobState::Running);
        let weights = match self.weights(vgg) {
            Ok(w) => w,
            Err(e) => {
                job.update(|s| {
                    s.state = JobState::Failed;
                    s.error = Some(e);
                });
                return;
            }
        };
        let options = job.status().options;
        let config = StyleConfig {
            size: options.size,
            iterations: options.iterations,
            content_weight: options.content_weight,
            style_weight: options.style_weight,
            tv_weight: options.tv_weight,
            preserve_colors: options.preserve_colors,
            seed: options.seed,
            save_every: options.preview_every,
            ..StyleConfig::default()
        };
        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            likeness_style::transfer(content, styles, weights, &config, &mut |p| {
                if job.cancel.load(Ordering::Relaxed) {
                    std::panic::resume_unwind(Box::new(Cancelled));
                }
                if let Some(img) = p.checkpoint
                    && let Ok(png) = png_bytes(img)
                {
                    let url = Arc::new(data_url(&png));
                    if let Ok(mut p) = job.preview.lock() {
                        *p = Some(Arc::clone(&url));
                    }
                    let _ = job.events.send(JobEvent::Preview(url));
                }
                job.update(|s| {
                    s.iteration = p.total_iteration;
                    s.loss = Some(p.terms.total);
                });
            })
        }));
        match outcome {
            Ok(Ok(out)) => match png_bytes(&out.image) {
                Ok(png) => {
                    let url = Arc::new(data_url(&png));
                    if let Ok(mut p) = job.preview.lock() {
                        *p = Some(Arc::clone(&url));
                    }
                    if let Ok(mut r) = job.result.lock() {
                        *r = Some(Arc::new(png));
                    }
                    let _ = job.events.send(JobEvent::Preview(url));
                    job.update(|s| {
                        s.state = JobState::Done;
                        s.iteration = out.iterations;
                        s.loss = out.terms.as_ref().map(|t| t.total);
                    });
                }
                Err(e) => job.update(|s| {
                    s.state = JobState::Failed;
                    s.error = Some(e);
                }),
            },
            Ok(Err(e)) => job.update(|s| {
                s.state = JobState::Failed;
                s.error = Some(e.to_string());
            }),
            Err(payload) if payload.is::<Cancelled>() => {
                job.update(|s| s.state = JobState::Cancelled)
            }
            Err(_) => job.update(|s| {
                s.state = JobState::Failed;
                s.error = Some("the transfer failed (an internal error; see the log)".into());
            }),
        }
    }

    fn retire(&self, job: &Job) {
        let id = job.status().id;
        let Ok(mut finished) = self.finished.lock() else {
            return;
        };
        finished.push_back(id);
        while finished.len() > KEEP_FINISHED {
            if let Some(old) = finished.pop_front()
                && let Ok(mut jobs) = self.jobs.lock()
            {
                jobs.remove(&old);
            }
        }
    }

    /// Queues a job for `gallery`; 429 when the queue is full.
    pub fn submit(
        &self,
        gallery: &str,
        content: Image,
        styles: Vec<Image>,
        options: StyleOptions,
    ) -> ApiResult<JobStatus> {
        let config = StyleConfig {
            size: options.size,
            iterations: options.iterations,
            content_weight: options.content_weight,
            style_weight: options.style_weight,
            tv_weight: options.tv_weight,
            ..StyleConfig::default()
        };
        config
            .validate(styles.len())
            .map_err(|e| ApiError::bad_request("bad_style_options", e.to_string()))?;
        let id = random_id();
        let (events, _) = broadcast::channel(64);
        let status = JobStatus {
            id: id.clone(),
            state: JobState::Queued,
            iteration: 0,
            iterations: options.iterations,
            loss: None,
            elapsed_s: 0.0,
            error: None,
            options,
        };
        let job = Arc::new(Job {
            gallery: gallery.to_string(),
            status: Mutex::new(status.clone()),
            preview: Mutex::new(None),
            result: Mutex::new(None),
            cancel: AtomicBool::new(false),
            events,
            started: Instant::now(),
        });
        let sender = self
            .sender
            .lock()
            .map_err(|_| ApiError::internal("style queue unusable"))?;
        let Some(sender) = sender.as_ref() else {
            return Err(ApiError::new(
                axum::http::StatusCode::SERVICE_UNAVAILABLE,
                "shutting_down",
                "the service is shutting down",
            ));
        };
        self.queued.fetch_add(1, Ordering::Relaxed);
        if sender
            .try_send((Arc::clone(&job), content, styles))
            .is_err()
        {
            self.queued.fetch_sub(1, Ordering::Relaxed);
            return Err(ApiError::busy("the style-job queue", 30));
        }
        if let Ok(mut jobs) = self.jobs.lock() {
            jobs.insert(id, job);
        }
        Ok(status)
    }

    /// The job `id` if it belongs to `gallery` (another gallery's job is "not found").
    pub fn get(&self, gallery: &str, id: &str) -> ApiResult<Arc<Job>> {
        self.jobs
            .lock()
            .ok()
            .and_then(|jobs| jobs.get(id).cloned())
            .filter(|j| j.gallery == gallery)
            .ok_or_else(|| ApiError::not_found("unknown_job", format!("no style job `{id}`")))
    }

    /// Asks a job to stop; it stops within one step.
    pub fn cancel(&self, gallery: &str, id: &str) -> ApiResult<JobStatus> {
        let job = self.get(gallery, id)?;
        job.cancel.store(true, Ordering::Relaxed);
        if job.status().state == JobState::Queued {
            job.update(|s| s.state = JobState::Cancelled);
        }
        Ok(job.status())
    }

    /// Shutdown: cancels every job and stops the workers.
    pub fn close(&self) {
        if let Ok(mut s) = self.sender.lock() {
            s.take();
        }
        if let Ok(jobs) = self.jobs.lock() {
            for job in jobs.values() {
                job.cancel.store(true, Ordering::Relaxed);
            }
        }
    }
}

fn random_id() -> String {
    let mut b = [0u8; 8];
    // the OS random source failing leaves zeros; ids then collide only within one process
    // run and a clash replaces an older job entry, which the map would show
    let _ = getrandom::fill(&mut b);
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// PNG bytes of an image.
pub fn png_bytes(img: &Image) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    image::ImageEncoder::write_image(
        image::codecs::png::PngEncoder::new(&mut out),
        &img.pixels,
        img.width,
        img.height,
        image::ExtendedColorType::Rgb8,
    )
    .map_err(|e| format!("encoding PNG: {e}"))?;
    Ok(out)
}

fn data_url(png: &[u8]) -> String {
    format!(
        "data:image/png;base64,{}",
        base64::engine::general_purpose::STANDARD.encode(png)
    )
}

/// How long a client may wait between two events before a keep-alive comment.
pub const SSE_KEEP_ALIVE: Duration = Duration::from_secs(15);
