//! The real binary on a real socket: start-up, headers over TCP, errors,
//! signals; and the `probe` command.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::util::{expected, fixture, make_stream, temp_dir};

const BIN: &str = env!("CARGO_BIN_EXE_pseudolive");

/// A server process killed on drop.
pub struct Server {
    pub child: Child,
    pub port: u16,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Starts the binary on a free port and waits until it answers.
pub fn start(root: &std::path::Path, extra: &[&str]) -> Server {
    let port = free_port();
    let child = Command::new(BIN)
        .args(["127.0.0.1", &port.to_string(), "--static"])
        .arg(root)
        .args(extra)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let server = Server { child, port };
    let deadline = Instant::now() + Duration::from_secs(20);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "server did not start");
        std::thread::sleep(Duration::from_millis(20));
    }
    server
}

/// A raw HTTP/1.1 exchange: (status, lower-cased headers, body).
pub fn request(
    port: u16,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
) -> (u16, Vec<(String, String)>, Vec<u8>) {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let mut req = format!("{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n");
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    s.write_all(req.as_bytes()).unwrap();
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).unwrap();
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("a complete response head");
    let head = String::from_utf8_lossy(&raw[..split]).into_owned();
    let mut lines = head.lines();
    let status = lines
        .next()
        .unwrap()
        .split(' ')
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    (status, headers, raw[split + 4..].to_vec())
}

pub fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

#[test]
fn serves_over_tcp_with_the_right_headers() {
    let root = temp_dir("bin-serve").join("static");
    make_stream(&root, "show", &["lo", "hi"], "av25");
    let server = start(&root, &["--window", "4"]);
    let (status, headers, body) = request(
        server.port,
        "GET",
        "/show_lo.m3u8",
        &[("Accept-Encoding", "gzip")],
    );
    assert_eq!(status, 200);
    assert_eq!(
        header(&headers, "content-type"),
        Some("application/vnd.apple.mpegurl")
    );
    assert_eq!(header(&headers, "content-encoding"), Some("gzip"));
    assert_eq!(header(&headers, "access-control-allow-origin"), Some("*"));
    let mut text = String::new();
    flate2::read::GzDecoder::new(&body[..])
        .read_to_string(&mut text)
        .unwrap();
    assert!(
        text.starts_with("#EXTM3U\n") && text.contains("show/lo/seg_"),
        "{text}"
    );
    // TD 2 → window of max(4 segments, 6 s) = 4 segments.
    assert_eq!(text.matches("#EXTINF:").count(), 4, "{text}");

    let (status, headers, body) = request(
        server.port,
        "GET",
        "/show/hi/seg_000.ts",
        &[("Range", "bytes=0-187")],
    );
    assert_eq!(status, 206);
    assert_eq!(header(&headers, "content-type"), Some("video/mp2t"));
    assert_eq!(body.len(), 188);
    assert_eq!(body[0], 0x47);

    let (status, headers, body) = request(server.port, "HEAD", "/show.m3u8", &[]);
    assert_eq!(status, 200);
    assert!(body.is_empty());
    assert_eq!(header(&headers, "access-control-allow-origin"), Some("*"));

    let (status, _, body) = request(server.port, "GET", "/show/%2e%2e/%2e%2e/etc/passwd", &[]);
    assert_eq!(status, 400);
    assert!(!String::from_utf8_lossy(&body).contains("root:"));
    let (status, _, _) = request(server.port, "BREW", "/show.m3u8", &[]);
    assert_eq!(status, 405);
}

#[test]
fn port_in_use_is_one_clear_line_and_a_failure_exit() {
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    let out = Command::new(BIN)
        .args(["127.0.0.1", &port.to_string(), "--static", "static"])
        .current_dir(crate::util::root())
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&format!("cannot listen on 127.0.0.1:{port}")),
        "{err}"
    );
    assert!(!err.contains("panicked"), "{err}");
}

#[test]
fn unreadable_root_is_a_clear_error() {
    let file = temp_dir("root-file").join("not-a-dir");
    std::fs::write(&file, "x").unwrap();
    for root in [std::path::PathBuf::from("/nonexistent/library"), file] {
        let out = Command::new(BIN)
            .args(["127.0.0.1", &free_port().to_string(), "--static"])
            .arg(&root)
            .output()
            .unwrap();
        assert!(!out.status.success());
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains(&*root.to_string_lossy()) && err.contains("cannot read the library root"),
            "{err}"
        );
        assert!(!err.contains("panicked"), "{err}");
    }
}

/// Sends SIGTERM and waits (at most `limit`) for the exit: its status and how long it took.
pub fn terminate(server: &mut Server, limit: Duration) -> (std::process::ExitStatus, Duration) {
    let started = Instant::now();
    Command::new("kill")
        .args(["-TERM", &server.child.id().to_string()])
        .status()
        .unwrap();
    loop {
        if let Some(status) = server.child.try_wait().unwrap() {
            return (status, started.elapsed());
        }
        assert!(
            started.elapsed() < limit,
            "still running {limit:?} after SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn sigterm_exits_zero_promptly() {
    let root = temp_dir("bin-term").join("static");
    make_stream(&root, "show", &["lo"], "av25");
    let mut server = start(&root, &[]);
    // An idle keep-alive connection must not hold the shutdown beyond the drain timeout.
    let _idle = TcpStream::connect(("127.0.0.1", server.port)).unwrap();
    let (status, took) = terminate(&mut server, Duration::from_secs(10));
    assert!(status.success(), "{status}");
    assert!(took < Duration::from_secs(7), "{took:?}");
}

#[test]
fn probe_json_reproduces_the_fixture_values() {
    for name in [
        "av25",
        "av2997",
        "bframes",
        "audio_only",
        "mp2_audio",
        "wrap",
        "discontinuity",
        "truncated",
    ] {
        let out = Command::new(BIN)
            .args(["probe", "--json", "--probe", "native"])
            .arg(fixture(name).join("index.m3u8"))
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{name}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let lines: Vec<serde_json::Value> = String::from_utf8(out.stdout)
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        let want = expected(name);
        assert_eq!(lines.len(), want.len());
        for (i, (row, e)) in lines.iter().zip(&want).enumerate() {
            let keys: Vec<&String> = row.as_object().unwrap().keys().collect();
            assert_eq!(
                keys,
                [
                    "duration", "error", "index", "method", "playlist", "ticks", "uri"
                ]
            );
            assert_eq!(row["uri"], e.uri.as_str());
            assert_eq!(row["index"], i);
            assert_eq!(row["method"], "native");
            assert!(row["error"].is_null());
            let ticks = row["ticks"].as_u64().unwrap();
            let tolerance = if e.rule == "span" { 3003 } else { 90 };
            assert!(
                ticks.abs_diff(e.ticks) <= tolerance,
                "{name} {}: {ticks} vs {}",
                e.uri,
                e.ticks
            );
            assert!((row["duration"].as_f64().unwrap() - ticks as f64 / 90_000.0).abs() < 1e-6);
        }
    }
}

#[test]
fn probe_garbage_exits_non_zero_naming_the_file() {
    let dir = temp_dir("probe-garbage");
    let file = dir.join("noise.ts");
    std::fs::write(
        &file,
        (0..10_000u32)
            .map(|i| (i * 7919 % 251) as u8)
            .collect::<Vec<_>>(),
    )
    .unwrap();
    let out = Command::new(BIN)
        .args(["probe", "--probe", "native"])
        .arg(&file)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let all = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        all.contains("noise.ts") && all.contains("not MPEG-TS"),
        "{all}"
    );
    assert!(!all.contains("panicked"));
    let out = Command::new(BIN)
        .args(["probe", "/no/such/file.ts"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("/no/such/file.ts"));
}

#[test]
fn probe_table_reads_a_stream_directory() {
    let out = Command::new(BIN)
        .args(["probe"])
        .arg(crate::util::root().join("static/demo"))
        .output()
        .unwrap();
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    assert_eq!(
        text.lines().filter(|l| l.contains(" native ")).count(),
        45,
        "{text}"
    );
}

/// Fetches the same path from two servers at (nearly) the same moment until
/// both answers fall inside one window (a window boundary between the two
/// fetches is retried, not ignored).
fn fetch_pair(a: u16, b: u16, path: &str) -> (Vec<u8>, Vec<u8>) {
    for _ in 0..20 {
        let (sa, _, ba) = request(a, "GET", path, &[]);
        let (sb, _, bb) = request(b, "GET", path, &[]);
        assert_eq!((sa, sb), (200, 200), "{path}");
        let (_, _, again) = request(a, "GET", path, &[]);
        if again == ba {
            return (ba, bb);
        }
    }
    panic!("{path}: the window moved during every attempt");
}

#[test]
fn replicas_with_one_epoch_serve_identical_playlists() {
    let root = temp_dir("replicas").join("static");
    make_stream(&root, "show", &["lo", "hi"], "av25");
    // Copied with its time, as `rsync -t` would: settled, so strong validators
    // (a file written within the last 2 s has weak ones).
    std::fs::File::options()
        .write(true)
        .open(root.join("show/lo/seg_001.ts"))
        .unwrap()
        .set_modified(std::time::UNIX_EPOCH + Duration::from_secs(1_700_000_000))
        .unwrap();
    let epoch = ["--epoch", "2026-01-01T00:00:00Z"];
    let a = start(&root, &epoch);
    std::thread::sleep(Duration::from_millis(1500));
    let b = start(&root, &epoch);
    for path in ["/show.m3u8", "/show_lo.m3u8", "/show_hi.m3u8"] {
        let (x, y) = fetch_pair(a.port, b.port, path);
        assert_eq!(
            String::from_utf8_lossy(&x),
            String::from_utf8_lossy(&y),
            "{path}"
        );
    }
    // A restarted replica joins the same timeline.
    let port_b = b.port;
    drop(b);
    let b = start(&root, &epoch);
    assert_ne!(b.port, port_b);
    let (x, y) = fetch_pair(a.port, b.port, "/show_lo.m3u8");
    assert_eq!(x, y);
    // Without a common epoch, each replica starts its own timeline.
    let c = start(&root, &[]);
    std::thread::sleep(Duration::from_millis(50));
    let (_, _, own) = request(c.port, "GET", "/show_lo.m3u8", &[]);
    assert_ne!(own, x);
    // Segment validators are equal across replicas.
    let (_, ha, _) = request(a.port, "HEAD", "/show/lo/seg_001.ts", &[]);
    let (_, hb, _) = request(b.port, "HEAD", "/show/lo/seg_001.ts", &[]);
    assert!(header(&ha, "etag").is_some_and(|t| t.starts_with('"')));
    for h in ["etag", "last-modified", "content-length"] {
        assert!(header(&ha, h).is_some());
        assert_eq!(header(&ha, h), header(&hb, h), "{h}");
    }
}

/// Reads the server's log lines until one contains `needle` (at most `limit`).
fn wait_for_log(server: &mut Server, needle: &str, limit: Duration) -> String {
    let stderr = server.child.stderr.take().expect("stderr is piped");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        use std::io::BufRead;
        for line in std::io::BufReader::new(stderr)
            .lines()
            .map_while(Result::ok)
        {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let deadline = Instant::now() + limit;
    let mut seen = String::new();
    while let Some(left) = deadline.checked_duration_since(Instant::now()) {
        match rx.recv_timeout(left) {
            Ok(line) => {
                seen.push_str(&line);
                seen.push('\n');
                if line.contains(needle) {
                    return seen;
                }
            }
            Err(_) => break,
        }
    }
    panic!("no log line with {needle:?} within {limit:?}:\n{seen}");
}

#[test]
fn sigterm_during_loading_exits_within_the_drain_limit() {
    let dir = temp_dir("bin-term-loading");
    let root = dir.join("static");
    make_stream(&root, "show", &["lo"], "not_ts");
    // An ffprobe that hangs, as one on a stuck network mount would.
    let started = dir.join("ffprobe-started");
    let fake = dir.join("ffprobe");
    std::fs::write(
        &fake,
        format!("#!/bin/sh\ntouch '{}'\nexec sleep 30\n", started.display()),
    )
    .unwrap();
    std::process::Command::new("chmod")
        .args(["+x", &fake.to_string_lossy()])
        .status()
        .unwrap();
    let mut server = start(&root, &["--ffprobe", &fake.to_string_lossy()]);
    let deadline = Instant::now() + Duration::from_secs(20);
    while !started.exists() {
        assert!(Instant::now() < deadline, "the fallback never ran");
        std::thread::sleep(Duration::from_millis(20));
    }
    let (status, took) = terminate(&mut server, Duration::from_secs(20));
    assert!(status.success(), "{status}");
    assert!(took < Duration::from_secs(7), "{took:?}");
}

#[test]
fn a_future_epoch_is_announced() {
    let root = temp_dir("bin-future-epoch").join("static");
    make_stream(&root, "show", &["lo"], "av25");
    let mut server = start(&root, &["--epoch", "2099-01-01T00:00:00Z"]);
    let log = wait_for_log(&mut server, "in the future", Duration::from_secs(10));
    assert!(log.contains("2099-01-01"), "{log}");
    let (_, _, _) = request(server.port, "GET", "/show_lo.m3u8", &[]);
    let (_, _, body) = request(server.port, "GET", "/streams.json", &[]);
    let json: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(json[0]["starts_at"], "2099-01-01T00:00:00Z", "{json}");
    let (_, _, page) = request(server.port, "GET", "/", &[]);
    assert!(String::from_utf8_lossy(&page).contains("starts at 2099-01-01T00:00:00Z"));
}

#[test]
fn probe_says_when_the_server_would_refuse_a_stream() {
    let root = temp_dir("probe-refuse").join("static");
    make_stream(&root, "uneven", &["lo", "hi"], "av25");
    // One variant a segment short: every segment measures, the stream is refused.
    let playlist = root.join("uneven/hi/index.m3u8");
    let text = std::fs::read_to_string(&playlist).unwrap();
    let cut = text.rfind("#EXTINF").unwrap();
    std::fs::write(&playlist, &text[..cut]).unwrap();
    let out = Command::new(BIN)
        .args(["probe"])
        .arg(root.join("uneven"))
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{err}");
    assert!(
        err.contains("would refuse") && err.contains("hi/index.m3u8"),
        "{err}"
    );
    // A good stream still exits 0.
    make_stream(&root, "fine", &["lo", "hi"], "av25");
    let out = Command::new(BIN)
        .args(["probe"])
        .arg(root.join("fine"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Sends one GET and reads what arrives until the server closes or `limit`
/// passes: (the raw bytes, whether the server closed the connection).
fn raw_get(port: u16, path: &str, limit: Duration) -> (Vec<u8>, bool) {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(limit)).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut raw = Vec::new();
    let mut buf = [0u8; 65536];
    loop {
        match s.read(&mut buf) {
            Ok(0) => return (raw, true),
            Ok(n) => raw.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return (raw, true),
            Err(_) => return (raw, false),
        }
    }
}

#[test]
fn cut_and_hang_faults_on_a_real_socket() {
    let root = temp_dir("bin-faults").join("static");
    make_stream(&root, "show", &["lo"], "av25");
    let server = start(&root, &[]);
    let size = std::fs::metadata(root.join("show/lo/seg_000.ts"))
        .unwrap()
        .len() as usize;
    // cut: the full length announced, half the body sent, then the connection closed.
    let (raw, closed) = raw_get(
        server.port,
        "/fault=cut/show/lo/seg_000.ts",
        Duration::from_secs(10),
    );
    assert!(closed);
    let split = raw.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
    let head = String::from_utf8_lossy(&raw[..split]).to_lowercase();
    assert!(head.contains(&format!("content-length: {size}")), "{head}");
    assert_eq!(raw.len() - split, size / 2);
    // hang: nothing at all, while other requests are answered.
    let port = server.port;
    let hung = std::thread::spawn(move || {
        raw_get(
            port,
            "/fault=hang/show/lo/seg_000.ts",
            Duration::from_secs(2),
        )
    });
    let (status, _, _) = request(server.port, "GET", "/show_lo.m3u8", &[]);
    assert_eq!(status, 200);
    let (raw, closed) = hung.join().unwrap();
    assert!(
        raw.is_empty() && !closed,
        "{}",
        String::from_utf8_lossy(&raw)
    );
}

#[test]
fn ffmpeg_reads_every_playlist_across_loop_points_with_continuous_timestamps() {
    let root = temp_dir("bin-ffmpeg-continuous").join("static");
    // 10 s loops: 20 s of media crosses two loop points.
    make_stream(&root, "show", &["lo", "hi"], "av25");
    let server = start(&root, &[]);
    let url = format!("http://127.0.0.1:{}/ts=continuous/show.m3u8", server.port);
    let started = Instant::now();
    let out = Command::new("timeout")
        .args(["60", "ffmpeg", "-nostdin", "-v", "error", "-i", &url])
        .args(["-map", "0", "-t", "20", "-f", "null", "-"])
        .output()
        .expect("ffmpeg is installed (scripts/test.sh installs it)");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{:?} {err}", out.status);
    assert!(!err.contains("non monotonically"), "{err}");
    assert!(
        started.elapsed() < Duration::from_secs(45),
        "{:?}",
        started.elapsed()
    );
}
