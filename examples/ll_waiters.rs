//! Many LL-HLS blocking playlist reloads held at once on one stream, and
//! how long after a part's availability the held requests are answered.
//!
//! Opens CONNECTIONS keep-alive HTTP/1.1 connections, reads the live
//! low-latency media playlist once and waits for its newest part to end,
//! then on every connection asks for the next part (`_HLS_msn`/`_HLS_part`
//! after the newest listed part, which is the one the preload hint names)
//! and, each time the answer comes, for the part after it: every round, all
//! connections wait for the same part. Requests carry `Accept-Encoding:
//! gzip`, as browsers' do.
//!
//! A part is available from its end: the `EXT-X-PROGRAM-DATE-TIME` before
//! its parent, plus the durations of the segments between, plus the
//! durations of the parent's parts up to and including it, all read from
//! the answer itself. The delay of an answer is the instant its last byte
//! was read minus that availability (one machine, one clock). The next
//! part asked for comes from each answer, as a player does: a connection
//! answered late asks for the part after the newest its answer lists.
//!
//! Prints per round and overall the delay percentiles, and, given the
//! server's process id, its resident memory while the requests are held
//! (`/proc/<pid>/status`) and its held-request gauge (`/metrics`). Exits
//! non-zero on any error.
//!
//! `--floor` runs, instead of the client, a minimal server (two runtime
//! workers, as pseudolive has on two cores) and prints its playlist's URL:
//! it holds each blocking request until its part exists, one timer per
//! instant, then writes an answer rendered once per instant, as large as
//! pseudolive's. That is the least work a server does per answer (one
//! read, one write, on loopback): what remains of the delays against it is
//! the kernel's and this client's.
//!
//! cargo run --release --example ll_waiters -- URL [CONNECTIONS=10000] [ROUNDS=10] [SERVER_PID]
//! cargo run --release --example ll_waiters -- --floor
//!   URL: a low-latency media playlist, e.g. http://127.0.0.1:5000/ll=0.5/demo_low.m3u8
//!   THREADS=<n> (environment): runtime threads of this client (default 1)

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::Notify;

/// A part's position: parent media sequence number, index in the parent.
type Pos = (u64, u64);

/// Connections opened at once (the server's listen backlog is finite).
const CONNECT_BATCH: usize = 256;
/// Longest wait for one answer.
const ANSWER_TIMEOUT: Duration = Duration::from_secs(15);

/// Unix time in nanoseconds.
fn now_ns() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as i64)
}

/// What one answer tells about the part it was asked for.
#[derive(Debug, Clone, Copy)]
struct PartInfo {
    /// When the part asked for became available, Unix ns.
    available_ns: i64,
    /// The part to ask for next: after the newest one listed.
    next: Pos,
}

/// The parts a playlist lists: each with its end instant (Unix ns), per
/// parent, in order.
fn listed_parts(text: &str) -> Result<(HashMap<u64, Vec<i64>>, Pos), String> {
    let mut msn: Option<u64> = None;
    let mut seg_start: Option<i64> = None;
    let mut into = 0i64;
    let mut parts: HashMap<u64, Vec<i64>> = HashMap::new();
    let mut newest: Option<Pos> = None;
    let secs_ns = |v: &str| -> Result<i64, String> {
        let s: f64 = v
            .trim()
            .parse()
            .map_err(|_| format!("bad duration {v:?}"))?;
        Ok((s * 1e9).round() as i64)
    };
    for line in text.lines() {
        if let Some(v) = line.strip_prefix("#EXT-X-MEDIA-SEQUENCE:") {
            msn = Some(v.trim().parse().map_err(|_| format!("bad {line}"))?);
        } else if let Some(v) = line.strip_prefix("#EXT-X-PROGRAM-DATE-TIME:") {
            let t = chrono::DateTime::parse_from_rfc3339(v.trim())
                .map_err(|e| format!("bad {line}: {e}"))?;
            seg_start = t.timestamp_nanos_opt();
        } else if let Some(attrs) = line.strip_prefix("#EXT-X-PART:") {
            let m = msn.ok_or("EXT-X-PART before EXT-X-MEDIA-SEQUENCE")?;
            let start = seg_start.ok_or("EXT-X-PART before any EXT-X-PROGRAM-DATE-TIME")?;
            let d = attrs
                .split(',')
                .find_map(|a| a.strip_prefix("DURATION="))
                .ok_or_else(|| format!("no DURATION in {line}"))?;
            into += secs_ns(d)?;
            let list = parts.entry(m).or_default();
            list.push(start + into);
            newest = Some((m, list.len() as u64 - 1));
        } else if let Some(v) = line.strip_prefix("#EXTINF:") {
            let d = secs_ns(v.split(',').next().unwrap_or_default())?;
            seg_start = seg_start.map(|s| s + d);
            msn = msn.map(|m| m + 1);
            into = 0;
        }
    }
    let (m, p) = newest.ok_or("no EXT-X-PART: not a low-latency playlist")?;
    Ok((parts, (m, p + 1)))
}

/// What the playlist `text`, the answer to a request for `asked`, tells
/// about that part. An index past a parent's last part means part 0 of
/// the next parent (RFC 8216bis 6.2.5.2).
fn part_info(text: &str, asked: Pos) -> Result<PartInfo, String> {
    let (parts, next) = listed_parts(text)?;
    let (m, p) = asked;
    let end = match parts.get(&m) {
        Some(list) if (p as usize) < list.len() => Some(list[p as usize]),
        Some(_) => parts.get(&(m + 1)).and_then(|l| l.first().copied()),
        None => None,
    };
    let available_ns = end.ok_or_else(|| format!("part {m}.{p} is not listed in the answer"))?;
    Ok(PartInfo { available_ns, next })
}

/// One keep-alive connection and its read buffer.
struct Conn {
    stream: TcpStream,
    buf: Vec<u8>,
}

impl Conn {
    async fn open(addr: &str) -> Result<Conn, String> {
        let stream = TcpStream::connect(addr)
            .await
            .map_err(|e| format!("connect: {e}"))?;
        stream.set_nodelay(true).ok();
        Ok(Conn {
            stream,
            buf: Vec::with_capacity(4096),
        })
    }

    /// Sends a GET for `target`.
    async fn send(&mut self, host: &str, target: &str) -> Result<(), String> {
        // As browsers do.
        let req = format!("GET {target} HTTP/1.1\r\nHost: {host}\r\nAccept-Encoding: gzip\r\n\r\n");
        self.stream
            .write_all(req.as_bytes())
            .await
            .map_err(|e| format!("write: {e}"))
    }

    /// Reads one answer: its status and body (a range of `self.buf`), and
    /// the instant its last byte was read.
    async fn answer(&mut self) -> Result<Answer, String> {
        self.buf.clear();
        let mut head_end = None;
        let mut body_len = 0;
        loop {
            if let Some(h) = head_end
                && self.buf.len() >= h + body_len
            {
                let arrived_ns = now_ns();
                let head = std::str::from_utf8(&self.buf[..h]).map_err(|_| "head not UTF-8")?;
                return Ok(Answer {
                    status: status_of(head)?,
                    gzip: header(head, "content-encoding").is_some_and(|v| v == "gzip"),
                    body: h..h + body_len,
                    arrived_ns,
                });
            }
            if self.buf.capacity() - self.buf.len() < 1024 {
                self.buf.reserve(4096);
            }
            let n = self
                .stream
                .read_buf(&mut self.buf)
                .await
                .map_err(|e| format!("read: {e}"))?;
            if n == 0 {
                return Err("connection closed".into());
            }
            if head_end.is_none()
                && let Some(i) = self.buf.windows(4).position(|w| w == b"\r\n\r\n")
            {
                head_end = Some(i + 4);
                let head = std::str::from_utf8(&self.buf[..i]).map_err(|_| "head not UTF-8")?;
                body_len = header(head, "content-length")
                    .and_then(|v| v.parse().ok())
                    .ok_or("no content-length")?;
            }
        }
    }
}

/// One answer read.
struct Answer {
    status: u16,
    gzip: bool,
    /// Where the body is in the connection's buffer.
    body: std::ops::Range<usize>,
    /// When its last byte was read, Unix ns.
    arrived_ns: i64,
}

impl Answer {
    /// The body as text, gunzipped if need be.
    fn text(&self, buf: &[u8]) -> String {
        let body = &buf[self.body.clone()];
        if self.gzip {
            let mut text = String::new();
            use std::io::Read;
            let _ = flate2::read::GzDecoder::new(body).read_to_string(&mut text);
            text
        } else {
            String::from_utf8_lossy(body).into_owned()
        }
    }
}

fn status_of(head: &str) -> Result<u16, String> {
    head.split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| "bad status line".to_string())
}

/// The value of header `name` in a response head.
fn header<'a>(head: &'a str, name: &str) -> Option<&'a str> {
    head.split("\r\n").find_map(|l| {
        let (k, v) = l.split_once(':')?;
        k.eq_ignore_ascii_case(name).then(|| v.trim())
    })
}

/// Shared results.
struct Shared {
    rounds: usize,
    connections: usize,
    host: String,
    path: String,
    /// Per part asked for and answer (a hash of its bytes): what the
    /// answer tells. Answers at one instant are alike, so each is read once.
    parts: Mutex<HashMap<(Pos, u64), PartInfo>>,
    /// Per round: requests sent, and a wake-up when all are.
    sent: Vec<AtomicUsize>,
    all_sent: Vec<Notify>,
    /// Per round: the part asked for and the answers' delays in µs.
    delays: Vec<Mutex<Vec<i64>>>,
    asked: Vec<Mutex<Option<Pos>>>,
    errors: AtomicU64,
    first_errors: Mutex<Vec<String>>,
}

impl Shared {
    fn error(&self, what: String) {
        self.errors.fetch_add(1, Ordering::Relaxed);
        let mut e = self.first_errors.lock().unwrap();
        if e.len() < 10 {
            e.push(what);
        }
    }

    /// Counts a request of `round` as sent.
    fn sent(&self, round: usize) {
        if self.sent[round].fetch_add(1, Ordering::Relaxed) + 1 == self.connections {
            self.all_sent[round].notify_one();
        }
    }
}

/// One connection's rounds: ask for `first`, then for the part after the
/// one each answer lists last.
async fn waiter(mut conn: Conn, first: Pos, shared: Arc<Shared>) {
    let mut asked = first;
    for round in 0..shared.rounds {
        let target = format!("{}?_HLS_msn={}&_HLS_part={}", shared.path, asked.0, asked.1);
        if let Err(e) = conn.send(&shared.host, &target).await {
            shared.error(format!("round {round}: {e}"));
            return;
        }
        shared.sent(round);
        let answer = match tokio::time::timeout(ANSWER_TIMEOUT, conn.answer()).await {
            Ok(Ok(a)) => a,
            Ok(Err(e)) => return shared.error(format!("round {round}: {e}")),
            Err(_) => return shared.error(format!("round {round}: no answer in 15 s")),
        };
        if answer.status != 200 {
            let text = answer.text(&conn.buf);
            return shared.error(format!("round {round}: status {}: {text}", answer.status));
        }
        let key = (asked, {
            use std::hash::{BuildHasher, BuildHasherDefault, DefaultHasher};
            BuildHasherDefault::<DefaultHasher>::default().hash_one(&conn.buf[answer.body.clone()])
        });
        let known = shared.parts.lock().unwrap().get(&key).copied();
        let info = match known {
            Some(info) => info,
            None => {
                let text = answer.text(&conn.buf);
                match part_info(&text, asked) {
                    Ok(info) => {
                        shared.parts.lock().unwrap().insert(key, info);
                        info
                    }
                    Err(e) => return shared.error(format!("round {round}: {e}")),
                }
            }
        };
        shared.delays[round]
            .lock()
            .unwrap()
            .push((answer.arrived_ns - info.available_ns) / 1000);
        shared.asked[round].lock().unwrap().get_or_insert(asked);
        asked = info.next;
    }
}

/// One plain GET on a fresh connection: the body as text.
async fn get(addr: &str, host: &str, target: &str) -> Result<String, String> {
    let mut conn = Conn::open(addr).await?;
    conn.send(host, target).await?;
    let answer = conn.answer().await?;
    let text = answer.text(&conn.buf);
    if answer.status != 200 {
        return Err(format!("GET {target}: status {}: {text}", answer.status));
    }
    Ok(text)
}

/// The server's memory: `VmRSS` and `VmHWM` in kB.
fn memory_kb(pid: u32) -> Option<(u64, u64)> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))?
            .trim()
            .trim_end_matches(" kB")
            .parse()
            .ok()
    };
    Some((field("VmRSS:")?, field("VmHWM:")?))
}

/// The server's CPU time so far (user and system, all threads), in ms.
fn cpu_ms(pid: Option<u32>) -> Option<u64> {
    stat_cpu_ms(&std::fs::read_to_string(format!("/proc/{}/stat", pid?)).ok()?)
}

/// utime + stime of a `/proc/…/stat` line, in ms.
fn stat_cpu_ms(stat: &str) -> Option<u64> {
    // Fields after the command name (which may hold spaces): utime is the 14th.
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let ticks: u64 = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    // USER_HZ is 100 on Linux.
    Some(ticks * 10)
}

/// `pseudolive_held_requests` from `/metrics`.
async fn held(addr: &str, host: &str) -> Option<f64> {
    let text = get(addr, host, "/metrics").await.ok()?;
    text.lines()
        .find_map(|l| l.strip_prefix("pseudolive_held_requests "))?
        .trim()
        .parse()
        .ok()
}

fn percentile(sorted: &[i64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() - 1) as f64 * p).round() as usize;
    sorted[i] as f64 / 1000.0
}

fn summary(delays: &mut [i64]) -> String {
    delays.sort_unstable();
    format!(
        "delay_ms min={:.2} p50={:.2} p99={:.2} max={:.2}",
        percentile(delays, 0.0),
        percentile(delays, 0.5),
        percentile(delays, 0.99),
        percentile(delays, 1.0)
    )
}

async fn run(url: String, connections: usize, rounds: usize, pid: Option<u32>) -> bool {
    let rest = url.strip_prefix("http://").unwrap_or(&url);
    let (addr, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    let (addr, path) = (addr.to_string(), path.to_string());

    // Every connection open before anything is asked.
    let opening = std::time::Instant::now();
    let mut conns = Vec::with_capacity(connections);
    while conns.len() < connections {
        let batch = CONNECT_BATCH.min(connections - conns.len());
        let opened = futures_util::future::join_all((0..batch).map(|_| Conn::open(&addr))).await;
        for c in opened {
            match c {
                Ok(c) => conns.push(c),
                Err(e) => {
                    eprintln!("error: {e} (after {} connections)", conns.len());
                    return false;
                }
            }
        }
    }
    let open_time = opening.elapsed();
    let idle_rss = pid
        .and_then(memory_kb)
        .map_or("?".into(), |m| m.0.to_string());
    // The newest part, then the part after it: once the newest part has
    // come, the next one is a whole part duration away.
    let first = match get(&addr, &addr, &path)
        .await
        .and_then(|t| listed_parts(&t).map(|(_, next)| next))
    {
        Ok(hint) => hint,
        Err(e) => {
            eprintln!("error: {e}");
            return false;
        }
    };
    let aligned = format!("{path}?_HLS_msn={}&_HLS_part={}", first.0, first.1);
    let first = match get(&addr, &addr, &aligned)
        .await
        .and_then(|t| part_info(&t, first))
    {
        Ok(info) => info.next,
        Err(e) => {
            eprintln!("error: {e}");
            return false;
        }
    };
    let shared = Arc::new(Shared {
        rounds,
        connections,
        host: addr.clone(),
        path,
        parts: Mutex::default(),
        sent: (0..rounds).map(|_| AtomicUsize::new(0)).collect(),
        all_sent: (0..rounds).map(|_| Notify::new()).collect(),
        delays: (0..rounds).map(|_| Mutex::default()).collect(),
        asked: (0..rounds).map(|_| Mutex::default()).collect(),
        errors: AtomicU64::new(0),
        first_errors: Mutex::default(),
    });
    let handles: Vec<_> = conns
        .into_iter()
        .map(|c| tokio::spawn(waiter(c, first, shared.clone())))
        .collect();
    // Per round, once every request is out: the held gauge and the memory.
    let mut held_rss = Vec::new();
    let mut cpu_from = None;
    let mut own_cpu_from = None;
    for round in 0..rounds {
        let all = shared.all_sent[round].notified();
        if shared.sent[round].load(Ordering::Relaxed) < connections
            && tokio::time::timeout(ANSWER_TIMEOUT, all).await.is_err()
        {
            break;
        }
        // Round 0 (not measured): wait until the server holds them all.
        let mut h = None;
        if round == 0 {
            let until = std::time::Instant::now() + Duration::from_millis(300);
            loop {
                h = held(&addr, &addr).await;
                if h.is_some_and(|h| h >= connections as f64) || std::time::Instant::now() > until {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        }
        let mem = pid.and_then(memory_kb);
        held_rss.push((h, mem));
        if round == 0 {
            cpu_from = cpu_ms(pid);
            own_cpu_from = cpu_ms(Some(std::process::id()));
        }
    }
    for h in handles {
        let _ = h.await;
    }
    let cpu = cpu_from.zip(cpu_ms(pid)).map(|(a, b)| b - a);
    let own_cpu = own_cpu_from
        .zip(cpu_ms(Some(std::process::id())))
        .map(|(a, b)| b - a);
    let mut all = Vec::new();
    println!(
        "connections={connections} rounds={rounds} url={url} (round 0 is not in the overall figures)"
    );
    println!(
        "opened in {:.2} s; server VmRSS={idle_rss} kB with every connection open and idle",
        open_time.as_secs_f64()
    );
    for round in 0..rounds {
        let mut d = shared.delays[round].lock().unwrap().clone();
        let asked = shared.asked[round].lock().unwrap().unwrap_or_default();
        let (h, mem) = held_rss.get(round).copied().unwrap_or_default();
        println!(
            "round {round}: part {}.{} answers={} {} | server VmRSS={} kB once all were sent{}",
            asked.0,
            asked.1,
            d.len(),
            summary(&mut d),
            mem.map_or("?".into(), |m| m.0.to_string()),
            h.map_or(String::new(), |h| format!(", {h} held")),
        );
        if round > 0 {
            all.extend(d);
        }
    }
    let errors = shared.errors.load(Ordering::Relaxed);
    println!(
        "overall: answers={} errors={errors} {}",
        all.len(),
        summary(&mut all)
    );
    if let Some((rss, hwm)) = pid.and_then(memory_kb) {
        println!("server: VmRSS={rss} kB VmHWM={hwm} kB (peak)");
    }
    for (who, ms) in [("server", cpu), ("client", own_cpu)] {
        if let Some(ms) = ms {
            println!(
                "{who} CPU from round 1 on: {ms} ms, {:.1} µs per answer",
                ms as f64 * 1000.0 / all.len().max(1) as f64
            );
        }
    }
    for e in shared.first_errors.lock().unwrap().iter() {
        eprintln!("error: {e}");
    }
    errors == 0 && all.len() == connections * rounds.saturating_sub(1)
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let Some(url) = args.get(1).cloned() else {
        eprintln!("usage: ll_waiters URL [CONNECTIONS=10000] [ROUNDS=10] [SERVER_PID] | --floor");
        std::process::exit(2);
    };
    if url == "--floor" {
        floor::serve();
    }
    let connections: usize = args.get(2).and_then(|v| v.parse().ok()).unwrap_or(10_000);
    let rounds: usize = args
        .get(3)
        .and_then(|v| v.parse().ok())
        .unwrap_or(10)
        .max(2);
    let pid: Option<u32> = args.get(4).and_then(|v| v.parse().ok());
    let threads: usize = std::env::var("THREADS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1);
    let runtime = if threads <= 1 {
        tokio::runtime::Builder::new_current_thread()
    } else {
        let mut b = tokio::runtime::Builder::new_multi_thread();
        b.worker_threads(threads);
        b
    }
    .enable_all()
    .build()
    .expect("runtime");
    let ok = runtime.block_on(run(url, connections, rounds, pid));
    if !ok {
        std::process::exit(1);
    }
}

/// The minimal server of `--floor`: segments of one 0.4 s part each, part
/// `k` of the Unix-time timeline ending at `(k + 1) × 0.4 s`.
mod floor {
    use std::collections::HashMap;
    use std::sync::{Arc, Mutex};
    use std::time::{Duration, UNIX_EPOCH};

    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::{TcpListener, TcpStream};
    use tokio::sync::watch;

    const PART_NS: i64 = 400_000_000;
    /// The size of pseudolive's answer to a blocking request on the demo's
    /// low-latency playlist, gzip-compressed (head and body).
    const ANSWER_BYTES: usize = 850;

    #[derive(Default)]
    pub(super) struct State {
        /// One timer per instant waited for (as pseudolive's `Waits`).
        waits: Mutex<HashMap<i64, watch::Receiver<bool>>>,
        /// The answer of the latest instant, rendered once.
        rendered: Mutex<Option<(i64, bytes::Bytes)>>,
    }

    impl State {
        async fn until(self: &Arc<Self>, unix_ns: i64) {
            let rx = self
                .waits
                .lock()
                .unwrap()
                .entry(unix_ns)
                .or_insert_with(|| {
                    let (tx, rx) = watch::channel(false);
                    let state = self.clone();
                    tokio::spawn(async move {
                        let left = unix_ns - super::now_ns();
                        if left > 0 {
                            tokio::time::sleep(Duration::from_nanos(left as u64)).await;
                        }
                        while super::now_ns() < unix_ns {
                            tokio::task::yield_now().await;
                        }
                        let _ = tx.send(true);
                        state.waits.lock().unwrap().remove(&unix_ns);
                    });
                    rx
                })
                .clone();
            let mut rx = rx;
            let _ = rx.wait_for(|&w| w).await;
        }

        /// The answer at `now_ns`: the newest two complete segments.
        pub(super) fn answer(&self, now_ns: i64) -> bytes::Bytes {
            let newest = now_ns / PART_NS - 1;
            let mut kept = self.rendered.lock().unwrap();
            if let Some((n, b)) = kept.as_ref()
                && *n == newest
            {
                return b.clone();
            }
            let first = newest - 1;
            let pdt = chrono::DateTime::<chrono::Utc>::from(
                UNIX_EPOCH + Duration::from_nanos((first * PART_NS) as u64),
            )
            .format("%Y-%m-%dT%H:%M:%S%.3fZ");
            let mut body = format!(
                "#EXTM3U\n#EXT-X-TARGETDURATION:1\n#EXT-X-PART-INF:PART-TARGET=0.4\n\
                 #EXT-X-MEDIA-SEQUENCE:{first}\n#EXT-X-PROGRAM-DATE-TIME:{pdt}\n"
            );
            for g in first..=newest {
                body.push_str(&format!(
                    "#EXT-X-PART:DURATION=0.4,URI=\"{g}.0.ts\",INDEPENDENT=YES\n#EXTINF:0.4,\n{g}.ts\n"
                ));
            }
            let head = "HTTP/1.1 200 OK\r\ncontent-type: application/vnd.apple.mpegurl\r\n";
            // A comment line fills the answer up to its size: "content-length: "
            // and its digits, the blank line, "#" and "\n".
            let fixed = head.len() + 16 + 4 + body.len() + 2;
            let mut pad = ANSWER_BYTES.saturating_sub(fixed + 3);
            let digits = (body.len() + pad + 2).to_string().len();
            pad = ANSWER_BYTES.saturating_sub(fixed + digits);
            body.push_str(&format!("#{}\n", "x".repeat(pad)));
            let answer = bytes::Bytes::from(format!(
                "{head}content-length: {}\r\n\r\n{body}",
                body.len()
            ));
            *kept = Some((newest, answer.clone()));
            answer
        }
    }

    /// The part a request asks for, from `_HLS_msn`/`_HLS_part`: its end.
    pub(super) fn wanted_ns(head: &str) -> Option<i64> {
        let query = head.split(' ').nth(1)?.split_once('?')?.1;
        let mut msn = None;
        let mut part = 0;
        for kv in query.split('&') {
            match kv.split_once('=') {
                Some(("_HLS_msn", v)) => msn = v.parse::<i64>().ok(),
                Some(("_HLS_part", v)) => part = v.parse::<i64>().ok()?,
                _ => {}
            }
        }
        // One part per segment: a later index is part 0 of the next one.
        let msn = msn? + i64::from(part > 0);
        Some((msn + 1) * PART_NS)
    }

    async fn connection(mut stream: TcpStream, state: Arc<State>) {
        stream.set_nodelay(true).ok();
        let mut buf = Vec::with_capacity(1024);
        loop {
            let head_end = loop {
                if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                    break i + 4;
                }
                match stream.read_buf(&mut buf).await {
                    Ok(0) | Err(_) => return,
                    Ok(_) => {}
                }
            };
            let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
            buf.drain(..head_end);
            if let Some(at) = wanted_ns(&head)
                && super::now_ns() < at
            {
                state.until(at).await;
            }
            let answer = state.answer(super::now_ns());
            if stream.write_all(&answer).await.is_err() {
                return;
            }
        }
    }

    /// Serves on a free port until killed, after printing the playlist's URL.
    pub fn serve() -> ! {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("runtime");
        runtime.block_on(async move {
            let socket = tokio::net::TcpSocket::new_v4().expect("socket");
            socket.bind("127.0.0.1:0".parse().unwrap()).expect("bind");
            let listener: TcpListener = socket.listen(1024).expect("listen");
            let addr = listener.local_addr().expect("address");
            println!("http://{addr}/floor.m3u8");
            let state = Arc::new(State::default());
            loop {
                if let Ok((stream, _)) = listener.accept().await {
                    tokio::spawn(connection(stream, state.clone()));
                }
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PLAYLIST: &str = "#EXTM3U\n#EXT-X-TARGETDURATION:2\n\
        #EXT-X-MEDIA-SEQUENCE:10\n\
        #EXT-X-PROGRAM-DATE-TIME:2026-01-01T00:00:00.000Z\n\
        #EXTINF:2.00000,\na.ts\n\
        #EXT-X-PART:DURATION=0.32,URI=\"p0\",INDEPENDENT=YES\n\
        #EXT-X-PART:DURATION=0.44,URI=\"p1\"\n\
        #EXTINF:0.76000,\nb.ts\n\
        #EXT-X-PART:DURATION=0.5,URI=\"q0\",INDEPENDENT=YES\n\
        #EXT-X-PRELOAD-HINT:TYPE=PART,URI=\"q1\"\n";

    #[test]
    fn parts_are_available_from_their_end() {
        let t0 = 1_767_225_600_000_000_000i64;
        let s = 1_000_000_000i64;
        let p = part_info(PLAYLIST, (11, 1)).unwrap();
        assert_eq!(p.available_ns, t0 + 2 * s + 760_000_000);
        assert_eq!(p.next, (12, 1));
        let p = part_info(PLAYLIST, (12, 0)).unwrap();
        assert_eq!(p.available_ns, t0 + 2 * s + 760_000_000 + 500_000_000);
        // Past the parent's last part: part 0 of the next parent.
        let p = part_info(PLAYLIST, (11, 2)).unwrap();
        assert_eq!(p.available_ns, t0 + 2 * s + 760_000_000 + 500_000_000);
        assert!(part_info(PLAYLIST, (12, 1)).is_err());
        assert!(part_info("#EXTM3U\n", (1, 0)).is_err());
    }

    #[test]
    fn the_floor_server_lists_what_the_client_asks_for() {
        let state = floor::State::default();
        let t = 1_767_225_600_000_000_000i64 + 7 * 400_000_000 + 1000;
        let answer = state.answer(t);
        let text = std::str::from_utf8(&answer).unwrap();
        let body = &text[text.find("\r\n\r\n").unwrap() + 4..];
        let (_, next) = listed_parts(body).unwrap();
        // The newest part ended at t (less 1 µs); the next one asked for ends 0.4 s later.
        let asked_then = floor::wanted_ns(&format!(
            "GET /?_HLS_msn={}&_HLS_part={} HTTP/1.1",
            next.0, next.1
        ));
        assert_eq!(asked_then, Some(t - 1000 + 400_000_000));
        let info = part_info(body, (next.0 - 1, 1)).unwrap();
        assert_eq!(info.available_ns, t - 1000);
        assert_eq!(answer.len(), 850);
    }
}
