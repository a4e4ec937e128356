//! `likeness serve`: the HTTP service (API, web page, style jobs) of `likeness-server`.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use clap::Args;
use likeness_server::ServerConfig;
use likeness_server::keys::AdminKey;

/// Serve the face API (CompreFace-style, under /api/v1), style jobs and the web page.
///
/// The networks load once; requests run on a pool of worker threads (one per core by
/// default) behind a bounded queue: when it is full, requests get 429 with Retry-After.
/// Keys: the admin key (LIKENESS_ADMIN_KEY, or created and printed once on the first start)
/// creates galleries and gallery keys (POST /api/v1/admin/galleries, /api/v1/admin/keys).
/// Open http://LISTEN/ for the web page. SIGTERM or Ctrl-C finishes accepted requests, then
/// exits.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address to listen on (loopback by default: put a TLS proxy in front to expose it).
    #[arg(long, default_value = "127.0.0.1:8686")]
    listen: SocketAddr,
    /// Keys and galleries live here [default: $LIKENESS_HOME/server].
    #[arg(long, value_name = "DIR")]
    data: Option<PathBuf>,
    /// Largest request body, bytes.
    #[arg(long, default_value_t = likeness_server::DEFAULT_BODY_LIMIT)]
    body_limit: usize,
    /// Longest a request may take, queue wait included, seconds.
    #[arg(long, default_value_t = likeness_server::DEFAULT_TIMEOUT.as_secs_f64())]
    timeout: f64,
    /// Face worker threads [default: the number of cores].
    #[arg(long)]
    workers: Option<usize>,
    /// Face requests that may wait for a worker before others get 429 [default: 4 per worker].
    #[arg(long)]
    queue: Option<usize>,
    /// Style-transfer jobs running at once.
    #[arg(long, default_value_t = 1)]
    style_jobs: usize,
}

pub fn run(args: ServeArgs) -> anyhow::Result<()> {
    let data = match args.data {
        Some(d) => d,
        None => likeness_models::Cache::from_env()?.home().join("server"),
    };
    let mut config = ServerConfig::new(args.listen, data);
    if !(args.timeout.is_finite() && args.timeout > 0.0 && args.timeout <= 86_400.0) {
        anyhow::bail!(
            "--timeout must be between 0 and 86400 seconds, got {}",
            args.timeout
        );
    }
    if args.body_limit < 1024 {
        anyhow::bail!(
            "--body-limit {} is too small to hold a photo (at least 1024 bytes)",
            args.body_limit
        );
    }
    config.body_limit = args.body_limit;
    config.timeout = Duration::from_secs_f64(args.timeout);
    if let Some(w) = args.workers {
        anyhow::ensure!(
            (1..=256).contains(&w),
            "--workers must be 1 to 256, got {w}"
        );
        config.workers = w;
        config.queue = 4 * w;
    }
    if let Some(q) = args.queue {
        anyhow::ensure!(q <= 100_000, "--queue must be at most 100000, got {q}");
        config.queue = q;
    }
    anyhow::ensure!(
        (1..=16).contains(&args.style_jobs),
        "--style-jobs must be 1 to 16"
    );
    config.style_workers = args.style_jobs;
    config.admin_key = std::env::var("LIKENESS_ADMIN_KEY")
        .ok()
        .filter(|k| !k.is_empty());
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(async move {
        let data = config.data_dir.clone();
        let running = likeness_server::start(config).await?;
        match &running.admin {
            AdminKey::Created(key) => eprintln!(
                "admin key (shown once; only its hash is kept in {}):\n  {key}",
                data.join("keys.json").display()
            ),
            AdminKey::FromEnvironment => eprintln!("admin key: from LIKENESS_ADMIN_KEY"),
            AdminKey::Existing => eprintln!(
                "admin key: the one printed on the first start (its hash is in {})",
                data.join("keys.json").display()
            ),
        }
        eprintln!(
            "likeness serve: listening on http://{}/ (web page at /, API at /api/v1)",
            running.addr
        );
        running.wait().await?;
        eprintln!("likeness serve: stopped");
        anyhow::Ok(())
    })
}
