//! Serving segment (and key, init) files from disk per RFC 9110: validators,
//! conditional requests and byte ranges, small files from a memory cache,
//! large ones streamed. Nothing outside the library root is ever served,
//! whatever the path or symlinks say.
//!
//! **Validators.** `ETag` is `"<length>-<mtime in ns>"` (hex) and
//! `Last-Modified` the modification time (never later than the moment the
//! file was looked at). The ETag is *strong* only when the file had not been
//! modified for [`STRONG_AFTER`] (2 s) when it was read: a write updates the
//! modification time with the file system's clock granularity (a kernel tick
//! on Linux, 2 s on FAT), so two writes of the same size within one tick keep
//! size and mtime; once the file has been quiet for longer than any
//! granularity, every later write changes the mtime, and the bytes read (and
//! served with that ETag) are the bytes of that mtime. A younger file gets
//! `W/"…"`, good for `If-None-Match` but never for `If-Range`. The inode is
//! left out on purpose: replicas with files copied with their times
//! (`cp -p`, `rsync -t`, both keep nanoseconds) send the same ETag, so a CDN
//! can revalidate against any replica. Files whose mtime an HTTP-date cannot
//! hold (before 1970, after 9999) get no validators at all.
//!
//! **Conditionals**, in RFC 9110 13.2.2 order: `If-Match` (strong comparison)
//! else `If-Unmodified-Since` → 412; `If-None-Match` (weak comparison, `*`)
//! else `If-Modified-Since` → 304 (`If-None-Match` takes precedence, 13.1.3);
//! then `Range`, honoured only when `If-Range` (if any) holds: a strong ETag
//! equal to the current one, or a date equal to `Last-Modified` while the
//! validators are strong. A 304 carries ETag, Last-Modified and Cache-Control
//! and no body.
//!
//! **Ranges.** One `bytes` range (the unit case-insensitive) is answered with
//! 206; a valid range set that no byte satisfies with 416 and
//! `Content-Range: bytes */<len>`. A syntactically invalid range set
//! (`bytes=5-2`, garbage) and an unknown unit are ignored (200, whole file),
//! as RFC 9110 14.2 allows; so is a set of several ranges: the whole file is
//! cheaper to send than a multipart body and every client accepts it.
//!
//! **Cache.** Files up to 16 MiB are read whole and kept (128 MiB of bodies
//! at most, least recently used out first); a cached file is checked on disk
//! again once the revalidation interval (1 s by default) has passed, so a
//! deleted file is a 404 within that interval. Concurrent misses on one file
//! share a single load. Bodies still referenced by responses in flight after
//! their eviction are not counted: at most one file per open connection.

use std::collections::{BTreeMap, HashMap};
use std::io::{Read, SeekFrom};
use std::ops::Bound;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use headers::{
    ContentRange, ETag, Header, HeaderMapExt, IfMatch, IfModifiedSince, IfNoneMatch, IfRange,
    IfUnmodifiedSince, LastModified,
};
use tokio::io::{AsyncReadExt, AsyncSeekExt};
use tokio::sync::OnceCell;
use warp::Reply;
use warp::http::{HeaderMap, HeaderValue, StatusCode, header};
use warp::reply::Response;

use super::reply::HttpError;

/// Cache lifetime of media files: they never change while served.
const SEGMENT_CACHE: &str = "public, max-age=86400";

/// How long a file must have been left alone before its validators are strong.
pub const STRONG_AFTER: Duration = Duration::from_secs(2);

/// The last second an HTTP-date can express (9999-12-31T23:59:59Z).
const LAST_HTTP_DATE_SECS: u64 = 253_402_300_799;

/// Content type by file extension.
fn content_type(path: &Path) -> &'static str {
    match path
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase)
        .as_deref()
    {
        Some("ts") => "video/mp2t",
        Some("aac") => "audio/aac",
        Some("ac3" | "ec3") => "audio/ac3",
        Some("mp3") => "audio/mpeg",
        Some("m4s" | "mp4" | "m4v" | "cmfv") => "video/mp4",
        Some("m4a" | "cmfa") => "audio/mp4",
        Some("cmft") => "application/mp4",
        Some("vtt" | "webvtt") => "text/vtt",
        Some("m3u8") => super::reply::M3U8,
        _ => "application/octet-stream",
    }
}

/// What a file's validators are made of, as seen at one instant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Validators {
    len: u64,
    /// Modification time in ns since the Unix epoch, when an HTTP-date can hold it.
    mtime_ns: Option<u128>,
    /// The modification time, capped at the moment the file was looked at.
    last_modified: Option<SystemTime>,
    /// Unchanged for [`STRONG_AFTER`] when looked at: the ETag promises the bytes.
    strong: bool,
}

impl Validators {
    /// The validators of a `len`-byte file modified at `mtime`, looked at `now`.
    fn observe(len: u64, mtime: Option<SystemTime>, now: SystemTime) -> Self {
        let mtime = mtime.filter(|m| {
            m.duration_since(UNIX_EPOCH)
                .is_ok_and(|d| d.as_secs() <= LAST_HTTP_DATE_SECS)
        });
        Validators {
            len,
            mtime_ns: mtime.and_then(|m| m.duration_since(UNIX_EPOCH).ok().map(|d| d.as_nanos())),
            last_modified: mtime.map(|m| m.min(now.max(UNIX_EPOCH))),
            strong: mtime
                .and_then(|m| m.checked_add(STRONG_AFTER))
                .is_some_and(|quiet| quiet <= now),
        }
    }

    fn etag(&self) -> Option<ETag> {
        let ns = self.mtime_ns?;
        let weak = if self.strong { "" } else { "W/" };
        format!("{weak}\"{:x}-{ns:x}\"", self.len).parse().ok()
    }
}

/// What to answer, once the conditional headers and Range are weighed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Answer {
    /// 200 with the whole file.
    Whole,
    /// 206 with bytes `start..=end`.
    Part { start: u64, end: u64 },
    /// 304.
    NotModified,
    /// 412.
    PreconditionFailed,
    /// 416.
    Unsatisfiable,
}

/// RFC 9110 13.2.2: the preconditions in their order, then the range.
fn evaluate(headers: &HeaderMap, v: &Validators) -> Answer {
    let etag = v.etag();
    if let Some(wanted) = headers.typed_get::<IfMatch>() {
        let passes =
            wanted.is_any() || etag.as_ref().is_some_and(|t| wanted.precondition_passes(t));
        if !passes {
            return Answer::PreconditionFailed;
        }
    } else if let (Some(since), Some(modified)) =
        (headers.typed_get::<IfUnmodifiedSince>(), v.last_modified)
        && !since.precondition_passes(modified)
    {
        return Answer::PreconditionFailed;
    }
    if let Some(none_match) = headers.typed_get::<IfNoneMatch>() {
        let matched = none_match == IfNoneMatch::any()
            || etag
                .as_ref()
                .is_some_and(|t| !none_match.precondition_passes(t));
        if matched {
            return Answer::NotModified;
        }
    } else if let (Some(since), Some(modified)) =
        (headers.typed_get::<IfModifiedSince>(), v.last_modified)
        && !since.is_modified(modified)
    {
        return Answer::NotModified;
    }
    let range = requested_range(headers, v.len);
    if range == Answer::Whole {
        return range;
    }
    match headers.typed_try_get::<IfRange>() {
        Ok(None) => range,
        Ok(Some(if_range)) => {
            let by_tag = etag
                .as_ref()
                .is_some_and(|t| !if_range.is_modified(Some(t), None));
            let by_date = v.strong
                && v.last_modified
                    .is_some_and(|m| if_range == IfRange::date(m));
            if by_tag || by_date {
                range
            } else {
                Answer::Whole
            }
        }
        // A validator that is neither an entity tag nor a date never matches.
        Err(_) => Answer::Whole,
    }
}

/// The `Range` of a request on a `len`-byte file: `Whole` when there is none
/// or it is to be ignored (invalid, another unit, several ranges), a `Part`
/// when satisfiable, else `Unsatisfiable`.
fn requested_range(headers: &HeaderMap, len: u64) -> Answer {
    let mut values = headers.get_all(header::RANGE).iter();
    let (Some(value), None) = (values.next(), values.next()) else {
        return Answer::Whole;
    };
    let Some((unit, set)) = value.to_str().ok().and_then(|v| v.trim().split_once('=')) else {
        return Answer::Whole;
    };
    let specs: Vec<&str> = set
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .collect();
    if !unit.eq_ignore_ascii_case("bytes") || specs.len() != 1 || !valid_range_spec(specs[0]) {
        return Answer::Whole;
    }
    // `headers::Range` wants the unit in lower case; the spec is checked above,
    // because `satisfiable_ranges` silently skips what it cannot parse.
    let Some(range) = HeaderValue::from_str(&format!("bytes={}", specs[0]))
        .ok()
        .and_then(|v| headers::Range::decode(&mut std::iter::once(&v)).ok())
    else {
        return Answer::Whole;
    };
    match range.satisfiable_ranges(len).next() {
        Some((Bound::Included(start), end)) if start < len => {
            let end = match end {
                Bound::Included(e) => e.min(len - 1),
                Bound::Excluded(e) => e.saturating_sub(1).min(len - 1),
                Bound::Unbounded => len - 1,
            };
            Answer::Part { start, end }
        }
        // A suffix longer than the file means the whole file (RFC 9110 14.1.2).
        None if len > 0 => Answer::Part {
            start: 0,
            end: len - 1,
        },
        None => Answer::Whole,
        Some(_) => Answer::Unsatisfiable,
    }
}

/// RFC 9110 14.1.1: `first-"-"[last]` with `first <= last`, or `"-"suffix`.
fn valid_range_spec(spec: &str) -> bool {
    let number = |s: &str| {
        (!s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()))
            .then(|| s.parse::<u64>().ok())
            .flatten()
    };
    match spec.split_once('-') {
        Some(("", suffix)) => number(suffix).is_some(),
        Some((first, "")) => number(first).is_some(),
        Some((first, last)) => {
            matches!((number(first), number(last)), (Some(f), Some(l)) if f <= l)
        }
        None => false,
    }
}

/// Tunables of a [`FileCache`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CacheLimits {
    /// A cached file is checked on disk again once this old (zero: on every request).
    pub revalidate: Duration,
    /// File bodies kept in memory at most, in bytes; least recently used out first.
    pub budget_bytes: u64,
    /// Files up to this size are read whole and kept; larger ones are streamed.
    pub whole_file_max_bytes: u64,
}

impl Default for CacheLimits {
    /// Revalidate after 1 s; 128 MiB of bodies (the live edge of every
    /// variant fits many times over); files up to 16 MiB.
    fn default() -> Self {
        CacheLimits {
            revalidate: Duration::from_secs(1),
            budget_bytes: 128 << 20,
            whole_file_max_bytes: 16 << 20,
        }
    }
}

/// A file as last seen on disk.
#[derive(Debug)]
struct Seen {
    real: PathBuf,
    validators: Validators,
    /// The whole file, when small enough and not changing while read.
    body: Option<Bytes>,
    checked: Instant,
}

/// One shared load of a file: every concurrent miss awaits the same cell.
type Loading = Arc<OnceCell<Option<Arc<Seen>>>>;

#[derive(Debug)]
struct Cached {
    seen: Arc<Seen>,
    /// Position in `State::by_use`.
    used: u64,
}

#[derive(Debug, Default)]
struct State {
    entries: HashMap<PathBuf, Cached>,
    /// Entries by last use, oldest first.
    by_use: BTreeMap<u64, PathBuf>,
    uses: u64,
    /// Sum of the bodies in `entries`.
    held_bytes: u64,
    loading: HashMap<PathBuf, Loading>,
}

impl State {
    /// A cached file checked less than `revalidate` ago, marked as just used.
    fn fresh(&mut self, path: &Path, revalidate: Duration) -> Option<Arc<Seen>> {
        let entry = self.entries.get_mut(path)?;
        if entry.seen.checked.elapsed() >= revalidate {
            return None;
        }
        self.uses += 1;
        if let Some(key) = self.by_use.remove(&entry.used) {
            self.by_use.insert(self.uses, key);
        }
        entry.used = self.uses;
        Some(entry.seen.clone())
    }

    fn remove(&mut self, path: &Path) {
        if let Some(old) = self.entries.remove(path) {
            self.by_use.remove(&old.used);
            self.held_bytes -= old.seen.body.as_ref().map_or(0, |b| b.len() as u64);
        }
    }

    /// Keeps `seen` (if it has a body that fits), then evicts the least
    /// recently used entries until the bodies fit `budget_bytes`.
    fn keep(&mut self, path: &Path, seen: Arc<Seen>, budget_bytes: u64) {
        self.remove(path);
        let size = match &seen.body {
            Some(body) if (body.len() as u64) <= budget_bytes => body.len() as u64,
            _ => return,
        };
        self.uses += 1;
        self.by_use.insert(self.uses, path.to_path_buf());
        self.entries.insert(
            path.to_path_buf(),
            Cached {
                seen,
                used: self.uses,
            },
        );
        self.held_bytes += size;
        while self.held_bytes > budget_bytes {
            let Some((_, oldest)) = self.by_use.pop_first() else {
                break;
            };
            if let Some(old) = self.entries.remove(&oldest) {
                self.held_bytes -= old.seen.body.as_ref().map_or(0, |b| b.len() as u64);
            }
        }
    }
}

/// Recently served files, so the players of a live stream, who all ask for
/// the same few newest segments, are answered from memory: one `Bytes` clone,
/// no syscall, re-checked on disk once per revalidation interval.
#[derive(Debug)]
pub struct FileCache {
    root: PathBuf,
    /// `root` with symlinks resolved, once: what every served file must be under.
    real_root: PathBuf,
    limits: CacheLimits,
    state: Mutex<State>,
    /// Whole-file reads so far.
    reads: Arc<AtomicU64>,
}

impl FileCache {
    /// A cache for files under `root`, with the default [`CacheLimits`].
    pub fn new(root: &Path) -> Self {
        Self::with_revalidate(root, CacheLimits::default().revalidate)
    }

    /// A cache for files under `root` that checks a cached file on disk again
    /// once it is `revalidate` old (zero: on every request).
    pub fn with_revalidate(root: &Path, revalidate: Duration) -> Self {
        Self::with_limits(
            root,
            CacheLimits {
                revalidate,
                ..CacheLimits::default()
            },
        )
    }

    /// A cache for files under `root` with the given limits.
    pub fn with_limits(root: &Path, limits: CacheLimits) -> Self {
        FileCache {
            root: root.to_path_buf(),
            real_root: std::fs::canonicalize(root).unwrap_or_else(|_| root.to_path_buf()),
            limits,
            state: Mutex::new(State::default()),
            reads: Arc::new(AtomicU64::new(0)),
        }
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The file at `path` (absent, outside the root or not a regular file: `None`).
    async fn get(&self, path: &Path) -> Option<Arc<Seen>> {
        let (cell, previous) = {
            let mut state = self.state();
            if let Some(seen) = state.fresh(path, self.limits.revalidate) {
                return Some(seen);
            }
            let previous = state.entries.get(path).map(|e| e.seen.clone());
            let cell = state.loading.entry(path.to_path_buf()).or_default().clone();
            (cell, previous)
        };
        cell.get_or_init(|| self.load_shared(path, previous, &cell))
            .await
            .clone()
    }

    /// Loads `path` off the executor, then files the result, all in the one
    /// task that runs the shared load.
    async fn load_shared(
        &self,
        path: &Path,
        previous: Option<Arc<Seen>>,
        cell: &Loading,
    ) -> Option<Arc<Seen>> {
        let real_root = self.real_root.clone();
        let owned = path.to_path_buf();
        let max = self.limits.whole_file_max_bytes;
        let reads = self.reads.clone();
        let seen = tokio::task::spawn_blocking(move || {
            load_from_disk(&real_root, &owned, previous.as_deref(), max, &reads)
        })
        .await
        .ok()
        .flatten()
        .map(Arc::new);
        let mut state = self.state();
        if state
            .loading
            .get(path)
            .is_some_and(|c| Arc::ptr_eq(c, cell))
        {
            state.loading.remove(path);
        }
        match &seen {
            Some(s) => state.keep(path, s.clone(), self.limits.budget_bytes),
            None => state.remove(path),
        }
        seen
    }
}

/// Resolves, checks and (when small) reads a file: blocking IO. The body of
/// `previous` is reused while the file looks the same, unless its validators
/// were weak and could be strong now (then it is read again).
fn load_from_disk(
    real_root: &Path,
    path: &Path,
    previous: Option<&Seen>,
    whole_file_max_bytes: u64,
    reads: &AtomicU64,
) -> Option<Seen> {
    let real = std::fs::canonicalize(path).ok()?;
    if !real.starts_with(real_root) {
        tracing::warn!(path = %path.display(), "refused: resolves outside the library root");
        return None;
    }
    // Checked by path before opening: opening a FIFO would block.
    let meta = std::fs::metadata(&real).ok()?;
    if !meta.is_file() {
        return None;
    }
    let validators = Validators::observe(meta.len(), meta.modified().ok(), SystemTime::now());
    let checked = Instant::now();
    if let Some(p) = previous
        && p.real == real
        && p.body.is_some()
        && (p.validators.len, p.validators.mtime_ns, p.validators.strong)
            == (validators.len, validators.mtime_ns, validators.strong)
    {
        return Some(Seen {
            real,
            validators: p.validators,
            body: p.body.clone(),
            checked,
        });
    }
    let body = if validators.len <= whole_file_max_bytes {
        read_whole(&real, &validators, reads)
    } else {
        None
    };
    Some(Seen {
        real,
        validators,
        body,
        checked,
    })
}

/// The file's bytes, if it still has the size and mtime of `validators`
/// after the read; `None` when it is changing (it is then streamed).
fn read_whole(real: &Path, validators: &Validators, reads: &AtomicU64) -> Option<Bytes> {
    let mut file = std::fs::File::open(real).ok()?;
    let capacity = usize::try_from(validators.len).ok()?;
    let mut data = Vec::with_capacity(capacity);
    file.read_to_end(&mut data).ok()?;
    reads.fetch_add(1, Ordering::Relaxed);
    let after = file.metadata().ok()?;
    let unchanged = data.len() as u64 == validators.len
        && after.len() == validators.len
        && Validators::observe(after.len(), after.modified().ok(), SystemTime::now()).mtime_ns
            == validators.mtime_ns;
    unchanged.then(|| Bytes::from(data))
}

/// Where the bytes of an answer come from.
enum Source {
    Memory(Bytes),
    Disk(tokio::fs::File),
}

/// A whole file's bytes, for rewriting before they are sent.
#[derive(Debug, Clone)]
pub struct FileBytes {
    pub data: Bytes,
    pub content_type: &'static str,
    /// Whether `data` is the cache's copy, the same allocation for every
    /// request until the file changes; otherwise it was read for this
    /// request alone (too large to be cached, or changing while read).
    pub cached: bool,
}

/// The whole of `root/<parts...>` (for rewriting before it is sent):
/// from the cache, or read once when it is too large to be cached.
pub async fn bytes(cache: &FileCache, parts: &[String]) -> Result<FileBytes, HttpError> {
    let wanted = parts.join("/");
    let not_found = || HttpError::NotFound(format!("no such file: /{wanted}"));
    let mut path = cache.root.clone();
    parts.iter().for_each(|p| path.push(p));
    let seen = cache.get(&path).await.ok_or_else(not_found)?;
    let kind = content_type(&seen.real);
    if let Some(body) = &seen.body {
        return Ok(FileBytes {
            data: body.clone(),
            content_type: kind,
            cached: true,
        });
    }
    let real = seen.real.clone();
    let data = tokio::task::spawn_blocking(move || {
        let len = std::fs::metadata(&real)?.len();
        if len > crate::probe::MAX_SEGMENT_BYTES {
            return Err(std::io::Error::other(format!(
                "{len} bytes: too large to rewrite"
            )));
        }
        std::fs::read(&real)
    })
    .await
    .map_err(|e| HttpError::Io(format!("cannot read /{wanted}: {e}")))?
    .map_err(|e| HttpError::Io(format!("cannot read /{wanted}: {e}")))?;
    Ok(FileBytes {
        data: Bytes::from(data),
        content_type: kind,
        cached: false,
    })
}

/// Serves `root/<parts...>`. `parts` are already decoded and free of `..`.
/// `head`: headers only.
pub async fn serve(
    cache: &FileCache,
    parts: &[String],
    headers: &HeaderMap,
    head: bool,
) -> Result<Response, HttpError> {
    let wanted = parts.join("/");
    let not_found = || HttpError::NotFound(format!("no such file: /{wanted}"));
    let mut path = cache.root.clone();
    parts.iter().for_each(|p| path.push(p));
    let seen = cache.get(&path).await.ok_or_else(not_found)?;
    let (validators, source) = match &seen.body {
        Some(body) => (seen.validators, Source::Memory(body.clone())),
        None => {
            // Streamed: the validators are those of the file actually opened.
            let file = tokio::fs::File::open(&seen.real)
                .await
                .map_err(|_| not_found())?;
            let meta = file.metadata().await.map_err(|_| not_found())?;
            if !meta.is_file() {
                return Err(not_found());
            }
            let v = Validators::observe(meta.len(), meta.modified().ok(), SystemTime::now());
            (v, Source::Disk(file))
        }
    };
    let len = validators.len;
    let (status, start, count) = match evaluate(headers, &validators) {
        Answer::PreconditionFailed => {
            return Err(HttpError::PreconditionFailed(format!(
                "/{wanted} no longer matches If-Match or If-Unmodified-Since"
            )));
        }
        Answer::Unsatisfiable => return Err(HttpError::RangeNotSatisfiable(len)),
        Answer::NotModified => (StatusCode::NOT_MODIFIED, 0, 0),
        Answer::Whole => (StatusCode::OK, 0, len),
        Answer::Part { start, end } => (StatusCode::PARTIAL_CONTENT, start, end - start + 1),
    };
    let mut res = if head || count == 0 {
        Response::new(Bytes::new().into())
    } else {
        match source {
            Source::Memory(body) => {
                let from = usize::try_from(start).unwrap_or(body.len()).min(body.len());
                let to = usize::try_from(start + count)
                    .unwrap_or(body.len())
                    .min(body.len());
                Response::new(body.slice(from..to).into())
            }
            Source::Disk(mut file) => {
                file.seek(SeekFrom::Start(start))
                    .await
                    .map_err(|e| HttpError::Io(format!("cannot read /{wanted}: {e}")))?;
                let stream =
                    tokio_util::io::ReaderStream::with_capacity(file.take(count), 256 * 1024);
                warp::reply::stream(stream).into_response()
            }
        }
    };
    *res.status_mut() = status;
    let h = res.headers_mut();
    if status != StatusCode::NOT_MODIFIED {
        h.insert(header::CONTENT_LENGTH, HeaderValue::from(count));
        h.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
        h.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static(content_type(&seen.real)),
        );
    }
    if status == StatusCode::PARTIAL_CONTENT
        && let Ok(range) = ContentRange::bytes(start..start + count, len)
    {
        h.typed_insert(range);
    }
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static(SEGMENT_CACHE),
    );
    if let Some(etag) = validators.etag() {
        h.typed_insert(etag);
    }
    if let Some(modified) = validators.last_modified {
        h.typed_insert(LastModified::from(modified));
    }
    Ok(res)
}

#[cfg(test)]
mod tests;
