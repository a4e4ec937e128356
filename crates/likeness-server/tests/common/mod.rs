//! Shared by the service's tests: a real `likeness serve` on a loopback port (networks from
//! the model cache), and a minimal HTTP/1.1 client over `std::net::TcpStream`, so the tests
//! speak real HTTP without pulling a client library into the build.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use likeness_face::Faces;
use likeness_server::{ServerConfig, start_with};
use serde_json::Value;

pub const ADMIN: &str = "test-admin-key-0123456789";

pub fn cache_file(rel: &str) -> PathBuf {
    let home = std::env::var_os("LIKENESS_HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(std::env::var_os("HOME").unwrap()).join(".cache/likeness")
        });
    let p = home.join(rel);
    assert!(
        p.exists(),
        "{} is missing: run `likeness models fetch` first",
        p.display()
    );
    p
}

pub fn sample(name: &str) -> Vec<u8> {
    std::fs::read(cache_file(&format!("samples/{name}"))).unwrap()
}

/// The networks, loaded once per test binary.
pub fn faces() -> Arc<Faces> {
    static FACES: OnceLock<Arc<Faces>> = OnceLock::new();
    Arc::clone(FACES.get_or_init(|| {
        let cache = likeness_models::Cache::from_env().unwrap();
        Arc::new(Faces::load(&cache).expect("models: run `likeness models fetch`"))
    }))
}

/// A running service and the folder it keeps its keys and galleries in.
pub struct Service {
    pub addr: SocketAddr,
    pub data: PathBuf,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
    _dir: tempfile::TempDir,
}

impl Service {
    /// Starts a service with `tune` applied to its configuration.
    pub fn start(tune: impl FnOnce(&mut ServerConfig)) -> Service {
        let dir = tempfile::tempdir().unwrap();
        let mut config = ServerConfig::new("127.0.0.1:0".parse().unwrap(), dir.path().join("data"));
        config.admin_key = Some(ADMIN.into());
        tune(&mut config);
        let data = config.data_dir.clone();
        let faces = faces();
        let (addr_tx, addr_rx) = std::sync::mpsc::channel();
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                let running = start_with(config, faces).await.unwrap();
                addr_tx.send(running.addr).unwrap();
                let _ = stop_rx.await;
                running.stop().await.unwrap();
            });
        });
        let addr = addr_rx.recv_timeout(Duration::from_secs(60)).unwrap();
        Service {
            addr,
            data,
            stop: Some(stop_tx),
            thread: Some(thread),
            _dir: dir,
        }
    }

    /// Stops it gracefully and waits.
    pub fn stop(mut self) {
        self.halt();
    }

    fn halt(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// A new gallery and a key for it with `scopes`.
    pub fn gallery_key(&self, gallery: &str, scopes: &[&str]) -> String {
        let r = self.send(
            &Req::post("/api/v1/admin/galleries")
                .key(ADMIN)
                .json(&serde_json::json!({ "name": gallery })),
        );
        assert!(r.status == 201 || r.status == 409, "{r:?}");
        let r = self.send(
            &Req::post("/api/v1/admin/keys")
                .key(ADMIN)
                .json(&serde_json::json!({ "gallery": gallery, "scopes": scopes })),
        );
        assert_eq!(r.status, 201, "{r:?}");
        r.json()["key"].as_str().unwrap().to_string()
    }

    pub fn send(&self, req: &Req) -> Resp {
        send(self.addr, req)
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        self.halt();
    }
}

/// A request.
#[derive(Clone, Debug)]
pub struct Req {
    pub method: String,
    pub path: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Req {
    pub fn new(method: &str, path: &str) -> Req {
        Req {
            method: method.into(),
            path: path.into(),
            headers: Vec::new(),
            body: Vec::new(),
        }
    }
    pub fn get(path: &str) -> Req {
        Req::new("GET", path)
    }
    pub fn post(path: &str) -> Req {
        Req::new("POST", path)
    }
    pub fn put(path: &str) -> Req {
        Req::new("PUT", path)
    }
    pub fn delete(path: &str) -> Req {
        Req::new("DELETE", path)
    }
    pub fn header(mut self, k: &str, v: &str) -> Req {
        self.headers.push((k.into(), v.into()));
        self
    }
    pub fn key(self, key: &str) -> Req {
        self.header("x-api-key", key)
    }
    pub fn json(mut self, v: &Value) -> Req {
        self.body = serde_json::to_vec(v).unwrap();
        self.header("content-type", "application/json")
    }
    pub fn raw(mut self, content_type: &str, body: Vec<u8>) -> Req {
        self.body = body;
        self.header("content-type", content_type)
    }
    /// A multipart body: `(name, Some(file name), bytes)` for files, `None` for text fields.
    pub fn multipart(self, parts: &[(&str, Option<&str>, &[u8])]) -> Req {
        let boundary = "----likeness-test-boundary-7c1f";
        let mut body = Vec::new();
        for (name, file, bytes) in parts {
            body.extend_from_slice(format!("--{boundary}\r\n").as_bytes());
            match file {
                Some(f) => body.extend_from_slice(
                    format!(
                        "Content-Disposition: form-data; name=\"{name}\"; filename=\"{f}\"\r\nContent-Type: application/octet-stream\r\n\r\n"
                    )
                    .as_bytes(),
                ),
                None => body.extend_from_slice(
                    format!("Content-Disposition: form-data; name=\"{name}\"\r\n\r\n").as_bytes(),
                ),
            }
            body.extend_from_slice(bytes);
            body.extend_from_slice(b"\r\n");
        }
        body.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
        self.raw(&format!("multipart/form-data; boundary={boundary}"), body)
    }
    /// A multipart body with one image in `file`.
    pub fn file(self, bytes: &[u8]) -> Req {
        self.multipart(&[("file", Some("photo.jpg"), bytes)])
    }
}

/// A response.
#[derive(Clone)]
pub struct Resp {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl std::fmt::Debug for Resp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let text = String::from_utf8_lossy(&self.body);
        let text: String = text.chars().take(600).collect();
        write!(f, "{} {text}", self.status)
    }
}

impl Resp {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {self:?}"))
    }
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
    /// The error code of a JSON error body, checking its shape.
    pub fn code(&self) -> String {
        let v = self.json();
        assert!(
            v["message"].as_str().is_some_and(|m| !m.is_empty()),
            "an error has a message: {self:?}"
        );
        v["code"].as_str().unwrap().to_string()
    }
}

fn write_request(stream: &mut TcpStream, addr: SocketAddr, req: &Req) -> std::io::Result<()> {
    let mut head = format!(
        "{} {} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: {}\r\n",
        req.method,
        req.path,
        req.body.len()
    );
    for (k, v) in &req.headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes())?;
    stream.write_all(&req.body)
}

fn read_head(reader: &mut impl BufRead) -> (u16, Vec<(String, String)>) {
    let mut line = String::new();
    reader.read_line(&mut line).unwrap();
    let status: u16 = line
        .split_whitespace()
        .nth(1)
        .unwrap_or_else(|| panic!("no status line: {line:?}"))
        .parse()
        .unwrap();
    let mut headers = Vec::new();
    loop {
        line.clear();
        reader.read_line(&mut line).unwrap();
        let l = line.trim_end();
        if l.is_empty() {
            break;
        }
        if let Some((k, v)) = l.split_once(':') {
            headers.push((k.trim().to_ascii_lowercase(), v.trim().to_string()));
        }
    }
    (status, headers)
}

fn read_chunked(reader: &mut impl BufRead) -> Vec<u8> {
    let mut body = Vec::new();
    loop {
        let mut size = String::new();
        if reader.read_line(&mut size).unwrap() == 0 {
            break;
        }
        let n = usize::from_str_radix(size.trim(), 16).unwrap();
        if n == 0 {
            break;
        }
        let mut chunk = vec![0; n + 2];
        reader.read_exact(&mut chunk).unwrap();
        body.extend_from_slice(&chunk[..n]);
    }
    body
}

/// Sends one request on a new connection and reads the whole response.
pub fn send(addr: SocketAddr, req: &Req) -> Resp {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(120)))
        .unwrap();
    // A server may answer before reading the whole body (401, 413) and close: the write then
    // fails, and the answer is still there to read.
    let _ = write_request(&mut stream, addr, req);
    let mut reader = BufReader::new(stream);
    let (status, headers) = read_head(&mut reader);
    let chunked = headers
        .iter()
        .any(|(k, v)| k == "transfer-encoding" && v.contains("chunked"));
    let body = if chunked {
        read_chunked(&mut reader)
    } else if let Some(len) = headers
        .iter()
        .find(|(k, _)| k == "content-length")
        .and_then(|(_, v)| v.parse::<usize>().ok())
    {
        let mut b = vec![0; len];
        reader.read_exact(&mut b).unwrap();
        b
    } else {
        let mut b = Vec::new();
        let _ = reader.read_to_end(&mut b);
        b
    };
    Resp {
        status,
        headers,
        body,
    }
}

/// Reads a Server-Sent Events stream until `stop` says so; returns `(event, data)` pairs.
pub fn events(
    addr: SocketAddr,
    req: &Req,
    mut stop: impl FnMut(&str, &str) -> bool,
) -> Vec<(String, String)> {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(300)))
        .unwrap();
    write_request(&mut stream, addr, req).unwrap();
    let mut reader = BufReader::new(stream);
    let (status, headers) = read_head(&mut reader);
    assert_eq!(status, 200, "{headers:?}");
    assert!(
        headers
            .iter()
            .any(|(k, v)| k == "content-type" && v.starts_with("text/event-stream")),
        "{headers:?}"
    );
    let chunked = headers
        .iter()
        .any(|(k, v)| k == "transfer-encoding" && v.contains("chunked"));
    let mut out = Vec::new();
    let mut buffer = String::new();
    loop {
        let data = if chunked {
            let mut size = String::new();
            if reader.read_line(&mut size).unwrap() == 0 {
                break;
            }
            let n = usize::from_str_radix(size.trim(), 16).unwrap();
            if n == 0 {
                break;
            }
            let mut chunk = vec![0; n + 2];
            reader.read_exact(&mut chunk).unwrap();
            chunk.truncate(n);
            chunk
        } else {
            let mut chunk = vec![0; 8192];
            let n = reader.read(&mut chunk).unwrap();
            if n == 0 {
                break;
            }
            chunk.truncate(n);
            chunk
        };
        buffer.push_str(&String::from_utf8_lossy(&data));
        while let Some(cut) = buffer.find("\n\n") {
            let block: String = buffer[..cut].to_string();
            buffer = buffer[cut + 2..].to_string();
            let mut event = "message".to_string();
            let mut lines = Vec::new();
            for line in block.lines() {
                if let Some(e) = line.strip_prefix("event:") {
                    event = e.trim().to_string();
                } else if let Some(d) = line.strip_prefix("data:") {
                    lines.push(d.strip_prefix(' ').unwrap_or(d).to_string());
                }
            }
            if lines.is_empty() {
                continue;
            }
            let data = lines.join("\n");
            let done = stop(&event, &data);
            out.push((event, data));
            if done {
                return out;
            }
        }
    }
    out
}

// ---------------------------------------------------------------------------------------
// Camera frames for the head-turn challenge: what a presentation attack films

/// The fake camera's frame size (Chromium's default capture size).
pub const FRAME_W: u32 = 640;
pub const FRAME_H: u32 = 480;
/// Frames per film: 3 s at the y4m's 10 frames a second.
pub const FILM_FRAMES: usize = 30;
/// Focal length of the simulated camera, in pixels, and the print's distance from it in the
/// same units: with both equal a print facing the camera is shown at its own pixel size.
const FOCAL: f64 = 700.0;

/// `photo` scaled to the frame's height and centred on a dark grey frame (a person holding a
/// print up to the camera fills the view with it).
fn print_of(photo: &[u8]) -> image::RgbImage {
    let img = image::load_from_memory(photo).unwrap().to_rgb8();
    let side = FRAME_H * 9 / 10;
    let w = (img.width() * side / img.height()).min(FRAME_W);
    image::imageops::resize(&img, w, side, image::imageops::FilterType::Triangle)
}

/// The photo held still in front of the camera, [`FILM_FRAMES`] times.
pub fn still_print_film(photo: &[u8]) -> Vec<image::RgbImage> {
    vec![turned(&print_of(photo), [0.0, 1.0, 0.0], 0.0); FILM_FRAMES]
}

/// The photo as a held print turned about an oblique axis (`axis`, camera coordinates: x
/// right, y down, z away) back and forth by up to `max_deg` degrees over [`FILM_FRAMES`]:
/// every frame is the flat print carried by a homography, as a real print would film.
pub fn turned_print_film(photo: &[u8], axis: [f64; 3], max_deg: f64) -> Vec<image::RgbImage> {
    let print = print_of(photo);
    (0..FILM_FRAMES)
        .map(|i| {
            let phase = i as f64 / FILM_FRAMES as f64 * std::f64::consts::TAU;
            turned(&print, axis, max_deg.to_radians() * phase.sin())
        })
        .collect()
}

/// The print rotated by `angle` about `axis` through its centre, `FOCAL` from a pinhole
/// camera, rendered into a frame (inverse mapping through the homography, bilinear).
fn turned(print: &image::RgbImage, axis: [f64; 3], angle: f64) -> image::RgbImage {
    let n = (axis[0] * axis[0] + axis[1] * axis[1] + axis[2] * axis[2]).sqrt();
    let [x, y, z] = axis.map(|a| a / n);
    let (s, c) = angle.sin_cos();
    let t = 1.0 - c;
    // Rodrigues: the rotation's first two columns carry the print's plane.
    let r = [
        [t * x * x + c, t * x * y - z * s, t * x * z + y * s],
        [t * x * y + z * s, t * y * y + c, t * y * z - x * s],
        [t * x * z - y * s, t * y * z + x * s, t * z * z + c],
    ];
    let (cx, cy) = (f64::from(FRAME_W) / 2.0, f64::from(FRAME_H) / 2.0);
    // H maps print coordinates (X, Y, 1), from its centre, to frame pixels.
    let h = [
        [
            FOCAL * r[0][0] + cx * r[2][0],
            FOCAL * r[0][1] + cx * r[2][1],
            cx * FOCAL,
        ],
        [
            FOCAL * r[1][0] + cy * r[2][0],
            FOCAL * r[1][1] + cy * r[2][1],
            cy * FOCAL,
        ],
        [r[2][0], r[2][1], FOCAL],
    ];
    let inv = invert3(h);
    let (pw, ph) = (print.width() as f64, print.height() as f64);
    let mut frame = image::RgbImage::from_pixel(FRAME_W, FRAME_H, image::Rgb([40, 40, 44]));
    for (u, v, px) in frame.enumerate_pixels_mut() {
        let (u, v) = (f64::from(u) + 0.5, f64::from(v) + 0.5);
        let w = inv[2][0] * u + inv[2][1] * v + inv[2][2];
        let sx = (inv[0][0] * u + inv[0][1] * v + inv[0][2]) / w + pw / 2.0 - 0.5;
        let sy = (inv[1][0] * u + inv[1][1] * v + inv[1][2]) / w + ph / 2.0 - 0.5;
        if sx >= 0.0 && sy >= 0.0 && sx < pw - 1.0 && sy < ph - 1.0 {
            let (x0, y0) = (sx.floor() as u32, sy.floor() as u32);
            let (fx, fy) = (sx - sx.floor(), sy - sy.floor());
            let mut out = [0.0f64; 3];
            for (dx, dy, wgt) in [
                (0, 0, (1.0 - fx) * (1.0 - fy)),
                (1, 0, fx * (1.0 - fy)),
                (0, 1, (1.0 - fx) * fy),
                (1, 1, fx * fy),
            ] {
                let p = print.get_pixel(x0 + dx, y0 + dy).0;
                for k in 0..3 {
                    out[k] += wgt * f64::from(p[k]);
                }
            }
            *px = image::Rgb(out.map(|v| v.round().clamp(0.0, 255.0) as u8));
        }
    }
    frame
}

fn invert3(m: [[f64; 3]; 3]) -> [[f64; 3]; 3] {
    let det = m[0][0] * (m[1][1] * m[2][2] - m[1][2] * m[2][1])
        - m[0][1] * (m[1][0] * m[2][2] - m[1][2] * m[2][0])
        + m[0][2] * (m[1][0] * m[2][1] - m[1][1] * m[2][0]);
    let c =
        |r0: usize, c0: usize, r1: usize, c1: usize| m[r0][c0] * m[r1][c1] - m[r0][c1] * m[r1][c0];
    [
        [
            c(1, 1, 2, 2) / det,
            -c(0, 1, 2, 2) / det,
            c(0, 1, 1, 2) / det,
        ],
        [
            -c(1, 0, 2, 2) / det,
            c(0, 0, 2, 2) / det,
            -c(0, 0, 1, 2) / det,
        ],
        [
            c(1, 0, 2, 1) / det,
            -c(0, 0, 2, 1) / det,
            c(0, 0, 1, 1) / det,
        ],
    ]
}

/// A frame as JPEG, as the web page sends camera shots.
pub fn jpeg(frame: &image::RgbImage) -> Vec<u8> {
    let mut out = std::io::Cursor::new(Vec::new());
    frame.write_to(&mut out, image::ImageFormat::Jpeg).unwrap();
    out.into_inner()
}

/// A y4m video (4:2:0, BT.601 full range as `C420jpeg` says, 10 frames a second) of `frames`,
/// for Chromium's fake camera (`--use-file-for-fake-video-capture`), which loops it.
pub fn write_y4m(frames: &[image::RgbImage], path: &std::path::Path) {
    let (w, h) = (frames[0].width() & !1, frames[0].height() & !1);
    let mut out = format!("YUV4MPEG2 W{w} H{h} F10:1 Ip A1:1 C420jpeg\n").into_bytes();
    for img in frames {
        let px = |x: u32, yy: u32| {
            let p = img.get_pixel(x, yy).0;
            (f32::from(p[0]), f32::from(p[1]), f32::from(p[2]))
        };
        let mut y = Vec::with_capacity((w * h) as usize);
        let (mut u, mut v) = (Vec::new(), Vec::new());
        for row in 0..h {
            for col in 0..w {
                let (r, g, b) = px(col, row);
                y.push(
                    (0.299 * r + 0.587 * g + 0.114 * b)
                        .round()
                        .clamp(0.0, 255.0) as u8,
                );
            }
        }
        for row in (0..h).step_by(2) {
            for col in (0..w).step_by(2) {
                let (mut r, mut g, mut b) = (0.0, 0.0, 0.0);
                for (dx, dy) in [(0, 0), (1, 0), (0, 1), (1, 1)] {
                    let (pr, pg, pb) = px(col + dx, row + dy);
                    r += pr / 4.0;
                    g += pg / 4.0;
                    b += pb / 4.0;
                }
                u.push(
                    (128.0 - 0.168_736 * r - 0.331_264 * g + 0.5 * b)
                        .round()
                        .clamp(0.0, 255.0) as u8,
                );
                v.push(
                    (128.0 + 0.5 * r - 0.418_688 * g - 0.081_312 * b)
                        .round()
                        .clamp(0.0, 255.0) as u8,
                );
            }
        }
        out.extend_from_slice(b"FRAME\n");
        out.extend_from_slice(&y);
        out.extend_from_slice(&u);
        out.extend_from_slice(&v);
    }
    std::fs::write(path, out).unwrap();
}
