//! Load generator for `bench/serve/` (loopback only, bounded in count and time).
//!
//! ```text
//! load capacity PHOTO [SECONDS]            # in-process pipeline photos/s (the CLI's work)
//! load closed ADDR KEY PHOTO CONNS SECONDS [PID]   # CONNS clients back to back: saturation
//! load open ADDR KEY PHOTO RATE SECONDS [PID]      # RATE requests/s offered (open loop)
//! load pad PHOTO W H OUT.png                       # PHOTO centred on a grey W x H canvas
//! load serve ADDR DATA_DIR [WORKERS]               # the service `likeness serve` runs
//! ```
//!
//! Each request is `POST /api/v1/recognition/recognize` with the photo as multipart `file`,
//! on a new loopback connection. Prints one JSON line: offered/achieved rate, statuses,
//! p50/p99 latency of the 200s, errors (anything but 200/429, and failed connections), and
//! the server's peak RSS when its PID is given.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The most connections in flight the open-loop generator keeps (beyond it, arrivals count as
/// dropped by the generator, which would show as a shortfall, never as server errors).
const MAX_IN_FLIGHT: usize = 256;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("capacity") => capacity(&args[1], args.get(2).map_or(20.0, |s| s.parse().unwrap())),
        Some("closed") => closed(&args[1..]),
        Some("open") => open(&args[1..]),
        Some("pad") => pad(&args[1..]),
        Some("serve") => serve(&args[1..]),
        _ => {
            eprintln!("usage: see the top of crates/likeness-server/examples/load.rs");
            std::process::exit(2);
        }
    }
}

fn loopback(addr: &str) -> SocketAddr {
    let a: SocketAddr = addr.parse().expect("ADDR is IP:PORT");
    assert!(
        a.ip().is_loopback(),
        "the load generator only talks to 127.0.0.1"
    );
    a
}

fn body(photo: &[u8]) -> (String, Vec<u8>) {
    let boundary = "likeness-load-boundary";
    let mut b = format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"p.jpg\"\r\n\r\n"
    )
    .into_bytes();
    b.extend_from_slice(photo);
    b.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    (format!("multipart/form-data; boundary={boundary}"), b)
}

/// One request: status (0 when the connection failed) and latency.
fn request(addr: SocketAddr, key: &str, content_type: &str, body: &[u8]) -> (u16, Duration) {
    let start = Instant::now();
    let attempt = || -> std::io::Result<u16> {
        let mut s = TcpStream::connect(addr)?;
        s.set_read_timeout(Some(Duration::from_secs(60)))?;
        write!(
            s,
            "POST /api/v1/recognition/recognize HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nx-api-key: {key}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n\r\n",
            body.len()
        )?;
        s.write_all(body)?;
        let mut r = BufReader::new(s);
        let mut line = String::new();
        r.read_line(&mut line)?;
        let status = line
            .split_whitespace()
            .nth(1)
            .and_then(|x| x.parse().ok())
            .unwrap_or(0);
        let mut rest = Vec::new();
        r.read_to_end(&mut rest)?;
        Ok(status)
    };
    (attempt().unwrap_or(0), start.elapsed())
}

fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

struct Tally {
    results: Mutex<Vec<(u16, Duration)>>,
}

fn report(mode: &str, offered: Option<f64>, secs: f64, tally: &Tally, peak_rss: u64, extra: &str) {
    let results = tally.results.lock().unwrap();
    let mut ok: Vec<f64> = results
        .iter()
        .filter(|(s, _)| *s == 200)
        .map(|(_, d)| d.as_secs_f64() * 1e3)
        .collect();
    ok.sort_by(f64::total_cmp);
    let pct = |p: f64| {
        if ok.is_empty() {
            f64::NAN
        } else {
            ok[((ok.len() as f64 - 1.0) * p).round() as usize]
        }
    };
    let busy = results.iter().filter(|(s, _)| *s == 429).count();
    let other = results.len() - ok.len() - busy;
    println!(
        "{{\"mode\":\"{mode}\",{extra}\"offered_per_s\":{},\"seconds\":{secs:.1},\"sent\":{},\"ok\":{},\"busy_429\":{busy},\"other\":{other},\"ok_per_s\":{:.2},\"p50_ms\":{:.0},\"p99_ms\":{:.0},\"peak_rss_mib\":{:.0}}}",
        offered.map_or("null".into(), |o| format!("{o:.2}")),
        results.len(),
        ok.len(),
        ok.len() as f64 / secs,
        pct(0.5),
        pct(0.99),
        peak_rss as f64 / 1024.0
    );
}

fn watch_rss(pid: Option<u32>, stop: Arc<AtomicBool>) -> std::thread::JoinHandle<u64> {
    std::thread::spawn(move || {
        let mut peak = 0;
        while !stop.load(Ordering::Relaxed) {
            if let Some(pid) = pid {
                peak = peak.max(rss_kib(pid));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        peak
    })
}

fn closed(args: &[String]) {
    let addr = loopback(&args[0]);
    let key = args[1].clone();
    let photo = std::fs::read(&args[2]).unwrap();
    let conns: usize = args[3].parse().unwrap();
    let secs: f64 = args[4].parse().unwrap();
    assert!(
        conns <= MAX_IN_FLIGHT && secs <= 600.0,
        "bounded: at most {MAX_IN_FLIGHT} connections, 600 s"
    );
    let pid = args.get(5).map(|p| p.parse().unwrap());
    let (ct, body) = body(&photo);
    let tally = Arc::new(Tally {
        results: Mutex::new(Vec::new()),
    });
    let stop = Arc::new(AtomicBool::new(false));
    let rss = watch_rss(pid, Arc::clone(&stop));
    let start = Instant::now();
    let end = start + Duration::from_secs_f64(secs);
    let threads: Vec<_> = (0..conns)
        .map(|_| {
            let (key, ct, body, tally) =
                (key.clone(), ct.clone(), body.clone(), Arc::clone(&tally));
            std::thread::spawn(move || {
                while Instant::now() < end {
                    let r = request(addr, &key, &ct, &body);
                    tally.results.lock().unwrap().push(r);
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    let elapsed = start.elapsed().as_secs_f64();
    stop.store(true, Ordering::Relaxed);
    let peak = rss.join().unwrap();
    report(
        "closed",
        None,
        elapsed,
        &tally,
        peak,
        &format!("\"connections\":{conns},"),
    );
}

fn open(args: &[String]) {
    let addr = loopback(&args[0]);
    let key = args[1].clone();
    let photo = std::fs::read(&args[2]).unwrap();
    let rate: f64 = args[3].parse().unwrap();
    let secs: f64 = args[4].parse().unwrap();
    assert!(
        rate > 0.0 && rate <= 1000.0 && secs <= 600.0,
        "bounded: at most 1000/s for 600 s"
    );
    let pid = args.get(5).map(|p| p.parse().unwrap());
    let (ct, body) = body(&photo);
    let tally = Arc::new(Tally {
        results: Mutex::new(Vec::new()),
    });
    let stop = Arc::new(AtomicBool::new(false));
    let rss = watch_rss(pid, Arc::clone(&stop));
    let in_flight = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let mut dropped = 0usize;
    let start = Instant::now();
    let n = (rate * secs).round() as usize;
    let mut handles = Vec::with_capacity(n);
    for i in 0..n {
        let due = start + Duration::from_secs_f64(i as f64 / rate);
        if let Some(wait) = due.checked_duration_since(Instant::now()) {
            std::thread::sleep(wait);
        }
        if in_flight.load(Ordering::Relaxed) >= MAX_IN_FLIGHT {
            dropped += 1;
            continue;
        }
        in_flight.fetch_add(1, Ordering::Relaxed);
        let (key, ct, body, tally, in_flight) = (
            key.clone(),
            ct.clone(),
            body.clone(),
            Arc::clone(&tally),
            Arc::clone(&in_flight),
        );
        handles.push(std::thread::spawn(move || {
            let r = request(addr, &key, &ct, &body);
            tally.results.lock().unwrap().push(r);
            in_flight.fetch_sub(1, Ordering::Relaxed);
        }));
    }
    for h in handles {
        h.join().unwrap();
    }
    let elapsed = start.elapsed().as_secs_f64();
    stop.store(true, Ordering::Relaxed);
    let peak = rss.join().unwrap();
    report(
        "open",
        Some(rate),
        elapsed,
        &tally,
        peak,
        &format!("\"generator_dropped\":{dropped},"),
    );
}

/// The pipeline the CLI runs for `likeness gallery identify` on one photo (decode, detect,
/// landmarks, chips, embed), in this process, back to back for `secs`: photos per second on
/// the whole machine (its rayon pool spans the cores), with one and with as many pipelines in
/// parallel as cores; the better is the machine's capacity.
fn capacity(photo: &str, secs: f64) {
    let bytes = std::fs::read(photo).unwrap();
    let cache = likeness_models::Cache::from_env().unwrap();
    let faces = Arc::new(likeness_face::Faces::load(&cache).unwrap());
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
    let mut best = 0.0f64;
    let mut parts = Vec::new();
    for parallel in [1, cores] {
        let end = Instant::now() + Duration::from_secs_f64(secs);
        let start = Instant::now();
        let threads: Vec<_> = (0..parallel)
            .map(|_| {
                let (faces, bytes) = (Arc::clone(&faces), bytes.clone());
                std::thread::spawn(move || {
                    let mut n = 0usize;
                    let mut found = 0;
                    while Instant::now() < end {
                        let image = likeness_nn::image::Image::decode(&bytes).unwrap();
                        found = faces.encode(&image).unwrap().len();
                        n += 1;
                    }
                    (n, found)
                })
            })
            .collect();
        let mut n = 0;
        let mut found = 0;
        for t in threads {
            let (k, f) = t.join().unwrap();
            n += k;
            found = f;
        }
        let rate = n as f64 / start.elapsed().as_secs_f64();
        best = best.max(rate);
        parts.push(format!(
            "\"pipelines_{parallel}\":{rate:.2},\"faces\":{found}"
        ));
    }
    println!(
        "{{\"mode\":\"capacity\",{},\"capacity_per_s\":{best:.2}}}",
        parts.join(",")
    );
}

fn pad(args: &[String]) {
    let img = image::open(&args[0]).unwrap().to_rgb8();
    let (w, h): (u32, u32) = (args[1].parse().unwrap(), args[2].parse().unwrap());
    let mut canvas = image::RgbImage::from_pixel(w, h, image::Rgb([128, 128, 128]));
    let x = (w as i64 - img.width() as i64) / 2;
    let y = (h as i64 - img.height() as i64) / 2;
    image::imageops::overlay(&mut canvas, &img, x, y);
    canvas.save(&args[3]).unwrap();
}

/// The service exactly as `likeness serve` starts it (`likeness_server::start`), so the
/// benchmark needs no build of the whole command line.
fn serve(args: &[String]) {
    let addr = loopback(&args[0]);
    let mut config = likeness_server::ServerConfig::new(addr, args[1].clone().into());
    if let Some(w) = args.get(2) {
        config.workers = w.parse().unwrap();
        config.queue = 4 * config.workers;
    }
    config.admin_key = std::env::var("LIKENESS_ADMIN_KEY").ok();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async move {
        let running = likeness_server::start(config).await.unwrap();
        eprintln!("serving on {}", running.addr);
        running.wait().await.unwrap();
    });
}
