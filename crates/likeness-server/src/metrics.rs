//! `/metrics` in Prometheus' text format: requests by route and status, a latency histogram
//! by route, the CPU pool's queue and the style jobs.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Mutex;
use std::sync::atomic::Ordering;
use std::time::Duration;

use crate::pool::PoolStats;

/// Upper bounds of the latency histogram, seconds: from a detection on a small photo (~20 ms
/// here) to a queue wait under saturation (seconds).
const BUCKETS: [f64; 12] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

#[derive(Debug, Default)]
struct Histogram {
    counts: [u64; BUCKETS.len()],
    count: u64,
    sum: f64,
}

#[derive(Debug, Default)]
struct Inner {
    requests: BTreeMap<(String, String, u16), u64>,
    latency: BTreeMap<String, Histogram>,
}

/// Request counters and latencies.
#[derive(Debug, Default)]
pub struct Metrics {
    inner: Mutex<Inner>,
}

impl Metrics {
    pub fn record(&self, method: &str, route: &str, status: u16, elapsed: Duration) {
        let Ok(mut inner) = self.inner.lock() else {
            return;
        };
        *inner
            .requests
            .entry((method.to_string(), route.to_string(), status))
            .or_default() += 1;
        let h = inner.latency.entry(route.to_string()).or_default();
        let secs = elapsed.as_secs_f64();
        for (i, &bound) in BUCKETS.iter().enumerate() {
            if secs <= bound {
                h.counts[i] += 1;
            }
        }
        h.count += 1;
        h.sum += secs;
    }

    /// The text exposition.
    pub fn render(
        &self,
        pool: &PoolStats,
        workers: usize,
        style_running: usize,
        style_queued: usize,
    ) -> String {
        let mut out = String::new();
        let Ok(inner) = self.inner.lock() else {
            return out;
        };
        out.push_str("# HELP likeness_http_requests_total HTTP requests by route and status.\n");
        out.push_str("# TYPE likeness_http_requests_total counter\n");
        for ((method, route, status), n) in &inner.requests {
            let _ = writeln!(
                out,
                "likeness_http_requests_total{{method=\"{method}\",route=\"{}\",status=\"{status}\"}} {n}",
                escape(route)
            );
        }
        out.push_str(
            "# HELP likeness_http_request_duration_seconds Time from request to response.\n",
        );
        out.push_str("# TYPE likeness_http_request_duration_seconds histogram\n");
        for (route, h) in &inner.latency {
            let route = escape(route);
            for (i, bound) in BUCKETS.iter().enumerate() {
                let _ = writeln!(
                    out,
                    "likeness_http_request_duration_seconds_bucket{{route=\"{route}\",le=\"{bound}\"}} {}",
                    h.counts[i]
                );
            }
            let _ = writeln!(
                out,
                "likeness_http_request_duration_seconds_bucket{{route=\"{route}\",le=\"+Inf\"}} {}",
                h.count
            );
            let _ = writeln!(
                out,
                "likeness_http_request_duration_seconds_sum{{route=\"{route}\"}} {}",
                h.sum
            );
            let _ = writeln!(
                out,
                "likeness_http_request_duration_seconds_count{{route=\"{route}\"}} {}",
                h.count
            );
        }
        let gauges = [
            (
                "likeness_queue_depth",
                "Face jobs waiting for a worker.",
                "gauge",
                pool.queued.load(Ordering::Relaxed) as u64,
            ),
            (
                "likeness_jobs_running",
                "Face jobs running.",
                "gauge",
                pool.running.load(Ordering::Relaxed) as u64,
            ),
            (
                "likeness_workers",
                "Worker threads of the face pool.",
                "gauge",
                workers as u64,
            ),
            (
                "likeness_rejected_total",
                "Requests refused with 429 because the queue was full.",
                "counter",
                pool.rejected.load(Ordering::Relaxed),
            ),
            (
                "likeness_abandoned_total",
                "Queued jobs skipped because their client had gone.",
                "counter",
                pool.abandoned.load(Ordering::Relaxed),
            ),
            (
                "likeness_style_jobs_running",
                "Style-transfer jobs running.",
                "gauge",
                style_running as u64,
            ),
            (
                "likeness_style_jobs_queued",
                "Style-transfer jobs waiting.",
                "gauge",
                style_queued as u64,
            ),
        ];
        for (name, help, kind, value) in gauges {
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {value}"
            );
        }
        out
    }
}

fn escape(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_buckets_are_cumulative() {
        let m = Metrics::default();
        m.record("POST", "/a", 200, Duration::from_millis(30));
        m.record("POST", "/a", 429, Duration::from_millis(2));
        let text = m.render(&PoolStats::default(), 2, 0, 0);
        assert!(text.contains(
            "likeness_http_requests_total{method=\"POST\",route=\"/a\",status=\"429\"} 1"
        ));
        assert!(text.contains("duration_seconds_bucket{route=\"/a\",le=\"0.005\"} 1"));
        assert!(text.contains("duration_seconds_bucket{route=\"/a\",le=\"0.05\"} 2"));
        assert!(text.contains("duration_seconds_count{route=\"/a\"} 2"));
        assert!(text.contains("likeness_workers 2"));
    }
}
