//! The CPU pool: a fixed set of OS threads that run the networks, fed by a bounded queue.
//!
//! Why not `spawn_blocking`: tokio's blocking pool grows to 512 threads, so under load every
//! request would start at once, each slower than the last, and memory would grow with the
//! backlog. Here at most `workers` jobs run and at most `queue` wait; a request that finds the
//! queue full is answered at once with 429 and `Retry-After`, so a burst costs the clients a
//! retry instead of costing the server its memory and every client its latency.
//!
//! A job whose client has gone (timed out, disconnected) is skipped when its turn comes.
//!
//! Admission is a count of jobs running or waiting (at most `workers + queue`), not the
//! channel's capacity: a bounded channel alone refused a job that arrived just after another
//! while the idle worker had not yet taken the first off the channel (seen as a flaky
//! "eight requests, one 200" in tests/api.rs).

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc::{SyncSender, TrySendError, sync_channel};
use std::sync::{Arc, Mutex};

use tokio::sync::oneshot;

type Job = Box<dyn FnOnce() + Send>;

/// Why a job did not run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PoolError {
    /// The queue is full: answer 429.
    Full,
    /// The job panicked (a bug), or the pool is shutting down.
    Failed,
}

/// Counters exported on `/metrics`.
#[derive(Debug, Default)]
pub struct PoolStats {
    /// Jobs waiting for a worker.
    pub queued: AtomicUsize,
    /// Jobs running.
    pub running: AtomicUsize,
    /// Jobs refused because the queue was full.
    pub rejected: AtomicU64,
    /// Jobs skipped because their client had gone.
    pub abandoned: AtomicU64,
}

/// A bounded pool of worker threads.
#[derive(Debug)]
pub struct CpuPool {
    sender: Mutex<Option<SyncSender<Job>>>,
    /// Jobs running or waiting; a job leaves when it has run or been skipped.
    admitted: Arc<AtomicUsize>,
    pub workers: usize,
    pub queue: usize,
    pub stats: Arc<PoolStats>,
    threads: Mutex<Vec<std::thread::JoinHandle<()>>>,
}

impl CpuPool {
    /// `workers` threads (at least 1) and room for `queue` waiting jobs (0: none wait).
    pub fn new(name: &str, workers: usize, queue: usize) -> CpuPool {
        let workers = workers.max(1);
        // never full: admission (`admitted`) keeps at most this many jobs in it
        let (sender, receiver) = sync_channel::<Job>(workers + queue);
        let receiver = Arc::new(Mutex::new(receiver));
        let stats = Arc::new(PoolStats::default());
        let threads = (0..workers)
            .map(|i| {
                let receiver = Arc::clone(&receiver);
                std::thread::Builder::new()
                    .name(format!("{name}-{i}"))
                    .spawn(move || {
                        loop {
                            // The lock is held only while waiting for the next job.
                            let job = match receiver.lock() {
                                Ok(r) => r.recv(),
                                Err(_) => return,
                            };
                            match job {
                                Ok(job) => job(),
                                Err(_) => return,
                            }
                        }
                    })
                    .expect("spawning a worker thread at start-up")
            })
            .collect();
        CpuPool {
            sender: Mutex::new(Some(sender)),
            admitted: Arc::new(AtomicUsize::new(0)),
            workers,
            queue,
            stats,
            threads: Mutex::new(threads),
        }
    }

    /// Runs `work` on a worker and waits for its value; `Full` at once when the queue is full.
    pub async fn run<T, F>(&self, work: F) -> Result<T, PoolError>
    where
        T: Send + 'static,
        F: FnOnce() -> T + Send + 'static,
    {
        let (tx, rx) = oneshot::channel::<std::thread::Result<T>>();
        let stats = Arc::clone(&self.stats);
        let admitted = Arc::clone(&self.admitted);
        let job: Job = Box::new(move || {
            stats.queued.fetch_sub(1, Ordering::Relaxed);
            if tx.is_closed() {
                stats.abandoned.fetch_add(1, Ordering::Relaxed);
                admitted.fetch_sub(1, Ordering::AcqRel);
                return;
            }
            stats.running.fetch_add(1, Ordering::Relaxed);
            let out = std::panic::catch_unwind(std::panic::AssertUnwindSafe(work));
            stats.running.fetch_sub(1, Ordering::Relaxed);
            admitted.fetch_sub(1, Ordering::AcqRel);
            let _ = tx.send(out);
        });
        {
            let guard = self.sender.lock().map_err(|_| PoolError::Failed)?;
            let sender = guard.as_ref().ok_or(PoolError::Failed)?;
            if self.admitted.fetch_add(1, Ordering::AcqRel) >= self.workers + self.queue {
                self.admitted.fetch_sub(1, Ordering::AcqRel);
                self.stats.rejected.fetch_add(1, Ordering::Relaxed);
                return Err(PoolError::Full);
            }
            self.stats.queued.fetch_add(1, Ordering::Relaxed);
            match sender.try_send(job) {
                Ok(()) => {}
                Err(TrySendError::Full(_)) | Err(TrySendError::Disconnected(_)) => {
                    // Full cannot happen (admission bounds the channel); either way the job
                    // never reached a worker
                    self.stats.queued.fetch_sub(1, Ordering::Relaxed);
                    self.admitted.fetch_sub(1, Ordering::AcqRel);
                    return Err(PoolError::Failed);
                }
            }
        }
        match rx.await {
            Ok(Ok(value)) => Ok(value),
            _ => Err(PoolError::Failed),
        }
    }

    /// Stops taking jobs; the workers finish what was queued, then end.
    pub fn close(&self) {
        if let Ok(mut s) = self.sender.lock() {
            s.take();
        }
    }

    /// Waits for the workers after [`CpuPool::close`].
    pub fn join(&self) {
        let threads = self
            .threads
            .lock()
            .map(|mut t| std::mem::take(&mut *t))
            .unwrap_or_default();
        for t in threads {
            let _ = t.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_full_queue_refuses_at_once_and_the_pool_recovers() {
        let pool = Arc::new(CpuPool::new("t", 1, 1));
        let (release_tx, release_rx) = std::sync::mpsc::channel::<()>();
        let release_rx = Arc::new(Mutex::new(release_rx));
        // one running (blocked), one queued
        let mut held = Vec::new();
        for _ in 0..2 {
            let pool = Arc::clone(&pool);
            let rx = Arc::clone(&release_rx);
            held.push(tokio::spawn(async move {
                pool.run(move || {
                    let _ = rx.lock().unwrap().recv();
                    7
                })
                .await
            }));
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert_eq!(pool.stats.running.load(Ordering::Relaxed), 1);
        assert_eq!(pool.stats.queued.load(Ordering::Relaxed), 1);
        // the third finds the queue full
        assert_eq!(pool.run(|| 1).await, Err(PoolError::Full));
        assert_eq!(pool.stats.rejected.load(Ordering::Relaxed), 1);
        release_tx.send(()).unwrap();
        release_tx.send(()).unwrap();
        for h in held {
            assert_eq!(h.await.unwrap(), Ok(7));
        }
        assert_eq!(pool.run(|| 3).await, Ok(3));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn jobs_arriving_together_at_an_idle_pool_get_every_worker_and_seat() {
        // a job that arrives before the idle worker has taken the previous one off the
        // channel is still admitted: the seats are counted, not the channel's room
        for _ in 0..50 {
            let pool = Arc::new(CpuPool::new("t", 1, 1));
            let (release_tx, release_rx) = std::sync::mpsc::channel::<()>();
            let release_rx = Arc::new(Mutex::new(release_rx));
            let held: Vec<_> = (0..2)
                .map(|_| {
                    let rx = Arc::clone(&release_rx);
                    let pool = Arc::clone(&pool);
                    tokio::spawn(async move {
                        pool.run(move || {
                            let _ = rx.lock().unwrap().recv();
                        })
                        .await
                    })
                })
                .collect();
            // both are admitted before either can finish; a third is not
            while pool.admitted.load(Ordering::Acquire) < 2 {
                tokio::task::yield_now().await;
                if held.iter().any(|h| h.is_finished()) {
                    break;
                }
            }
            assert_eq!(pool.run(|| ()).await, Err(PoolError::Full));
            release_tx.send(()).unwrap();
            release_tx.send(()).unwrap();
            for h in held {
                assert_eq!(h.await.unwrap(), Ok(()));
            }
        }
    }

    #[tokio::test]
    async fn a_panicking_job_is_an_error_and_the_worker_lives_on() {
        let pool = CpuPool::new("t", 1, 4);
        let r: Result<(), _> = pool.run(|| panic!("boom")).await;
        assert_eq!(r, Err(PoolError::Failed));
        assert_eq!(pool.run(|| 5).await, Ok(5));
        pool.close();
        assert_eq!(pool.run(|| 5).await, Err(PoolError::Failed));
        pool.join();
    }
}
