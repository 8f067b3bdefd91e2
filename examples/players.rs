//! Simulated HLS players for load and soak tests.
//!
//! Each player reloads one live media playlist every target duration / 2 and
//! downloads every segment that appears (the newest three at start), over one
//! keep-alive HTTP/1.1 connection, like a real player. Prints errors,
//! playlist latency percentiles and bytes received, and exits non-zero on
//! any error.
//!
//! cargo run --release --example players -- URL [PLAYERS] [SECONDS]
//!   URL: a media playlist, e.g. http://127.0.0.1:5000/demo_low.m3u8
//!   (several comma-separated URLs are spread over the players)

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio::sync::Mutex;

#[derive(Default)]
struct Stats {
    playlists: AtomicU64,
    segments: AtomicU64,
    bytes: AtomicU64,
    errors: AtomicU64,
    latencies_us: Mutex<Vec<u64>>,
    first_errors: Mutex<Vec<String>>,
}

impl Stats {
    async fn error(&self, what: String) {
        self.errors.fetch_add(1, Ordering::Relaxed);
        let mut e = self.first_errors.lock().await;
        if e.len() < 10 {
            e.push(what);
        }
    }
}

/// One keep-alive connection; reconnects after an error.
struct Conn {
    addr: String,
    stream: Option<BufReader<TcpStream>>,
}

impl Conn {
    async fn get(&mut self, path: &str) -> Result<(u16, Vec<u8>), String> {
        if self.stream.is_none() {
            let s = TcpStream::connect(&self.addr)
                .await
                .map_err(|e| format!("connect: {e}"))?;
            s.set_nodelay(true).ok();
            self.stream = Some(BufReader::new(s));
        }
        let result = self.exchange(path).await;
        if result.is_err() {
            self.stream = None;
        }
        result
    }

    async fn exchange(&mut self, path: &str) -> Result<(u16, Vec<u8>), String> {
        let s = self.stream.as_mut().ok_or("no connection")?;
        let req = format!(
            "GET {path} HTTP/1.1\r\nHost: {}\r\nUser-Agent: pseudolive-players\r\n\r\n",
            self.addr
        );
        s.get_mut()
            .write_all(req.as_bytes())
            .await
            .map_err(|e| format!("write: {e}"))?;
        let mut line = String::new();
        s.read_line(&mut line)
            .await
            .map_err(|e| format!("read: {e}"))?;
        let status: u16 = line
            .split(' ')
            .nth(1)
            .and_then(|c| c.parse().ok())
            .ok_or(format!("bad status line {line:?}"))?;
        let mut len = None;
        loop {
            line.clear();
            s.read_line(&mut line)
                .await
                .map_err(|e| format!("read: {e}"))?;
            if line == "\r\n" || line.is_empty() {
                break;
            }
            if let Some((k, v)) = line.split_once(':')
                && k.eq_ignore_ascii_case("content-length")
            {
                len = v.trim().parse::<usize>().ok();
            }
        }
        let len = len.ok_or("no content-length")?;
        let mut body = vec![0; len];
        s.read_exact(&mut body)
            .await
            .map_err(|e| format!("body: {e}"))?;
        Ok((status, body))
    }
}

async fn player(url: String, until: Instant, stats: Arc<Stats>) {
    let rest = url.strip_prefix("http://").unwrap_or(&url);
    let (addr, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    let base = &path[..path.rfind('/').map_or(0, |i| i + 1)];
    let mut conn = Conn {
        addr: addr.to_string(),
        stream: None,
    };
    // Media sequence number of the newest segment downloaded.
    let mut newest: Option<u64> = None;
    // Spread the players' reload phases.
    tokio::time::sleep(Duration::from_millis(rand_ms(1000))).await;
    while Instant::now() < until {
        let started = Instant::now();
        let (status, body) = match conn.get(path).await {
            Ok(r) => r,
            Err(e) => {
                stats.error(format!("{path}: {e}")).await;
                tokio::time::sleep(Duration::from_millis(500)).await;
                continue;
            }
        };
        stats
            .latencies_us
            .lock()
            .await
            .push(started.elapsed().as_micros() as u64);
        stats.playlists.fetch_add(1, Ordering::Relaxed);
        if status != 200 {
            stats.error(format!("{path}: status {status}")).await;
            tokio::time::sleep(Duration::from_millis(500)).await;
            continue;
        }
        let text = String::from_utf8_lossy(&body);
        let td: u64 = text
            .lines()
            .find_map(|l| l.strip_prefix("#EXT-X-TARGETDURATION:"))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(2);
        let msn: u64 = text
            .lines()
            .find_map(|l| l.strip_prefix("#EXT-X-MEDIA-SEQUENCE:"))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0);
        let uris: Vec<&str> = text
            .lines()
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
            .collect();
        // The newest three at start, then every segment not downloaded yet.
        let from = newest.map_or(msn + uris.len().saturating_sub(3) as u64, |n| n + 1);
        for (i, uri) in uris.iter().enumerate() {
            let sequence = msn + i as u64;
            if sequence < from {
                continue;
            }
            newest = Some(sequence);
            let seg_path = format!("{base}{uri}");
            match conn.get(&seg_path).await {
                Ok((200, body)) => {
                    stats.segments.fetch_add(1, Ordering::Relaxed);
                    stats.bytes.fetch_add(body.len() as u64, Ordering::Relaxed);
                }
                Ok((status, _)) => stats.error(format!("{seg_path}: status {status}")).await,
                Err(e) => stats.error(format!("{seg_path}: {e}")).await,
            }
        }
        let wait = Duration::from_millis(td * 500).saturating_sub(started.elapsed());
        tokio::time::sleep(wait).await;
    }
}

/// A cheap pseudo-random number of milliseconds below `max`.
fn rand_ms(max: u64) -> u64 {
    use std::hash::{BuildHasher, RandomState};
    RandomState::new().hash_one(Instant::now()) % max.max(1)
}

fn percentile(sorted: &[u64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() - 1) as f64 * p).round() as usize;
    sorted[i] as f64 / 1000.0
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let Some(urls) = args.get(1) else {
        eprintln!("usage: players URL[,URL...] [PLAYERS=100] [SECONDS=60]");
        std::process::exit(2);
    };
    let urls: Vec<String> = urls.split(',').map(String::from).collect();
    let n: usize = args.get(2).and_then(|v| v.parse().ok()).unwrap_or(100);
    let seconds: u64 = args.get(3).and_then(|v| v.parse().ok()).unwrap_or(60);
    let stats = Arc::new(Stats::default());
    let until = Instant::now() + Duration::from_secs(seconds);
    let handles: Vec<_> = (0..n)
        .map(|i| tokio::spawn(player(urls[i % urls.len()].clone(), until, stats.clone())))
        .collect();
    for h in handles {
        let _ = h.await;
    }
    let mut lat = stats.latencies_us.lock().await.clone();
    lat.sort_unstable();
    let errors = stats.errors.load(Ordering::Relaxed);
    println!(
        "players={n} seconds={seconds} playlists={} segments={} MB={:.1} errors={errors} playlist_ms_p50={:.2} p99={:.2} max={:.2}",
        stats.playlists.load(Ordering::Relaxed),
        stats.segments.load(Ordering::Relaxed),
        stats.bytes.load(Ordering::Relaxed) as f64 / 1e6,
        percentile(&lat, 0.5),
        percentile(&lat, 0.99),
        percentile(&lat, 1.0),
    );
    for e in stats.first_errors.lock().await.iter() {
        eprintln!("error: {e}");
    }
    if errors > 0 {
        std::process::exit(1);
    }
}
