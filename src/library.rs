//! The library: every stream under the root, its load state, its anchor and
//! its rendered playlists. Streams load in the background, one at a time
//! (each measurement uses every core); a request for a queued stream moves it
//! to the front of the queue. Time is passed in by the caller.

use std::collections::{BTreeMap, VecDeque};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock, RwLock};
use std::time::{Duration, Instant};

use bytes::Bytes;
use tokio::sync::{Notify, watch};

use crate::loader::{self, Loaded};
use crate::model::{Stream, TrackTiming};
use crate::playlist::{self, MediaRequest};
use crate::probe::{Method, Prober};
use crate::restamp::ts::TsRestampPlan;
use crate::source::SourceError;
use crate::ticks::Ticks;
use crate::timeline::{Window, WindowRule};
use crate::urls::{self, MediaForm};

/// Settings of a running library.
#[derive(Debug, Clone)]
pub struct LibraryConfig {
    /// The directory holding one sub-directory per stream.
    pub root: PathBuf,
    /// Segments per live window, unless a request asks otherwise.
    pub window: u64,
    /// Fixed anchor (Unix time): identical playlists on every replica.
    pub epoch_unix: Option<Ticks>,
    /// How segments are measured.
    pub prober: Prober,
}

/// Where a stream is in its life.
#[derive(Debug, Clone)]
pub enum StreamState {
    /// Waiting to be measured, or being measured.
    Loading,
    /// Ready to serve.
    Ready(Arc<LiveStream>),
    /// Could not be loaded; the error names the file.
    Failed(Arc<SourceError>),
}

/// One rendered playlist, plain and gzip-compressed.
#[derive(Debug, Clone)]
pub struct Rendered {
    /// The playlist text.
    pub plain: Bytes,
    /// The same, gzip-compressed once a client asks for it.
    gzipped: Arc<OnceLock<Bytes>>,
}

impl Rendered {
    fn new(text: String) -> Rendered {
        Rendered {
            plain: Bytes::from(text),
            gzipped: Arc::default(),
        }
    }

    /// The playlist gzip-compressed (compressed on first use, then kept).
    pub fn gzip(&self) -> Bytes {
        self.gzipped
            .get_or_init(|| Bytes::from(gzip(&self.plain)))
            .clone()
    }
}

/// Renderings kept per track: the live edge, and a few option variants.
const CACHED_RENDERINGS: usize = 8;
/// Larger renderings (deep DVR windows) are not kept.
const CACHED_RENDERING_MAX_BYTES: usize = 512 << 10;

/// Everything a media playlist's text depends on, besides the stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct CacheKey {
    form: MediaForm,
    numbered: bool,
    window: Window,
    anchor_unix: Ticks,
}

/// A loaded stream plus its anchor and caches.
#[derive(Debug)]
pub struct LiveStream {
    /// The immutable stream.
    pub stream: Stream,
    /// Source URI of each track in the master.
    master_uris: Vec<(String, usize)>,
    /// How long loading took.
    pub load_time: Duration,
    /// The server's default window.
    pub default_rule: WindowRule,
    /// Unix time of the timeline's zero: from `--epoch`, or set by the first
    /// request from the server's clock.
    anchor: OnceLock<Ticks>,
    /// `--epoch`, back-dated.
    fixed_anchor: Option<Ticks>,
    /// The master for one generation of the library's names.
    master: Mutex<Option<(u64, Rendered)>>,
    /// Per track: recent renderings, most recent first. The key holds all
    /// the text depends on, so any request may use or add one.
    cache: Vec<Mutex<Vec<(CacheKey, Rendered)>>>,
    /// Segment file → (track, index in the loop).
    paths: std::collections::HashMap<String, (usize, usize)>,
    /// Files named by an `EXT-X-MAP` (initialisation sections).
    init_paths: std::collections::HashSet<String>,
    /// Per track, once asked for: what rewriting its timestamps needs.
    restamp: Vec<tokio::sync::OnceCell<Result<Arc<RestampPlan>, Arc<SourceError>>>>,
}

impl LiveStream {
    /// Wraps a loaded stream; `window` is the default window in segments,
    /// `epoch_unix` fixes the timeline's start.
    pub fn new(loaded: Loaded, window: u64, epoch_unix: Option<Ticks>) -> Self {
        let Loaded {
            stream,
            master_uris,
            load_time,
        } = loaded;
        let default_rule = WindowRule::new(window, stream.target_duration_s);
        let back_date = stream.schedule.first_full_instant(default_rule);
        let mut paths = std::collections::HashMap::new();
        for (t, track) in stream.tracks.iter().enumerate() {
            for (i, seg) in track.segments.iter().enumerate() {
                paths.entry(seg.path.clone()).or_insert((t, i));
            }
        }
        let init_paths = stream
            .tracks
            .iter()
            .flat_map(|t| &t.segments)
            .filter_map(|s| match s.map.as_ref().map(|m| &m.uri) {
                Some(crate::model::Resource::File(p)) => Some(p.clone()),
                _ => None,
            })
            .collect();
        LiveStream {
            init_paths,
            restamp: stream.tracks.iter().map(|_| Default::default()).collect(),
            paths,
            cache: stream.tracks.iter().map(|_| Mutex::default()).collect(),
            master_uris,
            load_time,
            default_rule,
            anchor: OnceLock::new(),
            fixed_anchor: epoch_unix.map(|e| e.saturating_sub(back_date)),
            master: Mutex::new(None),
            stream,
        }
    }

    /// A stream without a master or files, for tests and benchmarks.
    pub fn from_stream(stream: Stream, window: u64, epoch_unix: Option<Ticks>) -> Self {
        let loaded = Loaded {
            stream,
            master_uris: Vec::new(),
            load_time: Duration::ZERO,
        };
        LiveStream::new(loaded, window, epoch_unix)
    }

    /// The anchor (Unix time of the timeline's zero): the epoch, or the
    /// server clock's `clock_now_unix` at the first request, back-dated by
    /// one default window so that first request sees a full playlist. Only
    /// the server's own clock may start a timeline, never a `?now=`.
    pub fn anchor(&self, clock_now_unix: Ticks) -> Ticks {
        if let Some(fixed) = self.fixed_anchor {
            return fixed;
        }
        *self.anchor.get_or_init(|| {
            let back_date = self.stream.schedule.first_full_instant(self.default_rule);
            clock_now_unix.saturating_sub(back_date)
        })
    }

    /// The anchor of a timeline that starts at `start_unix` (a URL's
    /// `start=`): like `--epoch`, back-dated so `start_unix` already shows a
    /// full window.
    pub fn anchor_from(&self, start_unix: Ticks) -> Ticks {
        start_unix.saturating_sub(self.stream.schedule.first_full_instant(self.default_rule))
    }

    /// The window rule of a request: `window` segments (else the server's),
    /// at least `dvr_secs` of media and never less than 3 × target duration.
    pub fn rule(&self, window: Option<u16>, dvr_secs: Option<u32>) -> WindowRule {
        let mut rule = WindowRule::new(
            window.map_or(self.default_rule.segments, u64::from),
            self.stream.target_duration_s,
        );
        if let Some(dvr) = dvr_secs {
            rule.min_duration = rule.min_duration.max(Ticks::from_secs(u64::from(dvr)));
        }
        rule
    }

    /// The track and index in the loop of the segment file at `path`
    /// (relative to the stream directory); the first, when several list it.
    pub fn segment_at(&self, path: &str) -> Option<(usize, usize)> {
        self.paths.get(path).copied()
    }

    /// The timestamp-rewriting plan of track `index` (MPEG-TS, or fMP4 when
    /// `fmp4`), built off the async workers on first use from the files
    /// under `stream_dir`.
    pub async fn restamp_plan(
        self: &Arc<Self>,
        index: usize,
        stream_dir: PathBuf,
        fmp4: bool,
    ) -> Result<Arc<RestampPlan>, Arc<SourceError>> {
        let live = self.clone();
        self.restamp[index]
            .get_or_init(|| async move {
                let built = tokio::task::spawn_blocking(move || {
                    let track = &live.stream.tracks[index];
                    if fmp4 {
                        loader::fmp4_restamp_plan(&stream_dir, track).map(RestampPlan::Fmp4)
                    } else {
                        loader::ts_restamp_plan(&stream_dir, track).map(RestampPlan::Ts)
                    }
                })
                .await;
                match built {
                    Ok(Ok(plan)) => Ok(Arc::new(plan)),
                    Ok(Err(e)) => Err(Arc::new(e)),
                    Err(e) => Err(Arc::new(SourceError::new(
                        Path::new(&self.stream.name),
                        format!("timestamp plan crashed: {e}"),
                    ))),
                }
            })
            .await
            .clone()
    }

    /// Whether `path` (relative to the stream directory) is an
    /// initialisation section of a track, and not also one of its segments
    /// (single-file CMAF holds both).
    pub fn is_init_section(&self, path: &str) -> bool {
        self.init_paths.contains(path) && !self.paths.contains_key(path)
    }

    /// The anchor if the timeline has started; looking does not start it.
    pub fn started_anchor(&self) -> Option<Ticks> {
        self.fixed_anchor.or_else(|| self.anchor.get().copied())
    }

    /// When the timeline starts, if that is still in the future at `now_unix`.
    pub fn starts_in_future(&self, now_unix: Ticks) -> Option<Ticks> {
        self.fixed_anchor
            .map(|a| a + self.stream.schedule.first_full_instant(self.default_rule))
            .filter(|&start| start > now_unix)
    }

    /// The window listed at `now_unix` for a timeline anchored at `anchor_unix`.
    /// The live edge is the default rule's: a longer window or a DVR depth
    /// adds history (as much as the timeline has), never future segments.
    pub fn window(&self, anchor_unix: Ticks, now_unix: Ticks, rule: WindowRule) -> Window {
        let schedule = &self.stream.schedule;
        let t = now_unix.saturating_sub(anchor_unix);
        let edge = schedule.window_at(t, self.default_rule);
        if rule == self.default_rule {
            return edge;
        }
        schedule.window_ending_at(edge.last, rule)
    }

    /// The window of track `index`: the stream's window, or for a track on
    /// its own schedule, its segments covering the same span of time.
    pub fn track_window(
        &self,
        index: usize,
        anchor_unix: Ticks,
        now_unix: Ticks,
        rule: WindowRule,
    ) -> Window {
        let window = self.window(anchor_unix, now_unix, rule);
        match &self.stream.tracks[index].timing {
            TrackTiming::Own(own) => {
                let t = now_unix.saturating_sub(anchor_unix);
                own.window_like(&self.stream.schedule, window, t)
            }
            _ => window,
        }
    }

    /// The media playlist of track `index` on the timeline anchored at
    /// `anchor_unix`, at `now_unix`, under `rule`: from the cache when the
    /// same text was rendered recently.
    pub fn media_playlist(
        &self,
        index: usize,
        form: MediaForm,
        numbered: bool,
        anchor_unix: Ticks,
        now_unix: Ticks,
        rule: WindowRule,
    ) -> Rendered {
        let window = self.track_window(index, anchor_unix, now_unix, rule);
        let key = CacheKey {
            form,
            numbered,
            window,
            anchor_unix,
        };
        let slot = &self.cache[index];
        if let Ok(mut kept) = slot.lock()
            && let Some(at) = kept.iter().position(|(k, _)| *k == key)
        {
            metrics::counter!("pseudolive_playlist_cache_hits_total").increment(1);
            let entry = kept.remove(at);
            let rendered = entry.1.clone();
            kept.insert(0, entry);
            return rendered;
        }
        metrics::counter!("pseudolive_playlist_renders_total").increment(1);
        let rendered = Rendered::new(playlist::render_media(&MediaRequest {
            stream: &self.stream,
            track: &self.stream.tracks[index],
            window,
            anchor_unix,
            form,
            numbered,
        }));
        if rendered.plain.len() <= CACHED_RENDERING_MAX_BYTES
            && let Ok(mut kept) = slot.lock()
        {
            kept.insert(0, (key, rendered.clone()));
            kept.truncate(CACHED_RENDERINGS);
        }
        rendered
    }

    /// The default media playlist of track `index` at `clock_now_unix`, the
    /// server clock's time (starts the timeline), linked beside the master.
    pub fn playlist_at(&self, index: usize, clock_now_unix: Ticks) -> Rendered {
        let anchor = self.anchor(clock_now_unix);
        let rule = self.default_rule;
        self.media_playlist(index, MediaForm::Root, false, anchor, clock_now_unix, rule)
    }

    /// The master playlist, its links checked against `library`'s names
    /// (re-rendered when they change).
    pub fn master_playlist(&self, library: &Library) -> Rendered {
        let generation = library.generation();
        if let Ok(guard) = self.master.lock()
            && let Some((g, rendered)) = guard.as_ref()
            && *g == generation
        {
            return rendered.clone();
        }
        let name = &self.stream.name;
        let master_path = Path::new(urls::MASTER_FILE);
        let text = playlist::render_master(
            &self.stream.master,
            |uri| {
                let (_, index) = self.master_uris.iter().find(|(u, _)| u == uri)?;
                let track = &self.stream.tracks[*index].name;
                Some(urls::media(name, track, library.media_form(name, track)))
            },
            |uri| {
                let rel =
                    crate::source::resolve_uri(Path::new(""), Path::new(""), uri, master_path)
                        .ok()?;
                let rel: Vec<String> = rel
                    .components()
                    .map(|c| c.as_os_str().to_string_lossy().into_owned())
                    .collect();
                Some(urls::file(name, &rel.join("/"), MediaForm::Root, None))
            },
        );
        let rendered = Rendered::new(text);
        if let Ok(mut guard) = self.master.lock() {
            *guard = Some((generation, rendered.clone()));
        }
        rendered
    }
}

/// What rewriting a track's timestamps needs, by container.
#[derive(Debug)]
pub enum RestampPlan {
    /// MPEG-TS: start PTS and continuity counters per segment.
    Ts(TsRestampPlan),
    /// fMP4: track timescales and the reference start per segment.
    Fmp4(crate::restamp::fmp4::Fmp4Plan),
}

/// gzip-compresses `data`.
pub fn gzip(data: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut enc = flate2::write::GzEncoder::new(
        Vec::with_capacity(data.len() / 3 + 32),
        flate2::Compression::fast(),
    );
    let _ = enc.write_all(data);
    enc.finish().unwrap_or_default()
}

/// One stream's slot in the library.
#[derive(Debug)]
pub struct Slot {
    /// Directory name.
    pub name: String,
    state: watch::Sender<StreamState>,
    /// What the stream's files looked like when loading failed.
    failed_fingerprint: Mutex<Option<u64>>,
}

impl Slot {
    /// The current state.
    pub fn state(&self) -> StreamState {
        self.state.borrow().clone()
    }

    /// Waits up to `limit` for the stream to leave `Loading`.
    pub async fn settled(&self, limit: Duration) -> StreamState {
        let mut rx = self.state.subscribe();
        let wait = rx.wait_for(|s| !matches!(s, StreamState::Loading));
        match tokio::time::timeout(limit, wait).await {
            Ok(Ok(state)) => state.clone(),
            _ => self.state(),
        }
    }
}

/// All streams under the root.
#[derive(Debug)]
pub struct Library {
    config: LibraryConfig,
    slots: RwLock<BTreeMap<String, Arc<Slot>>>,
    last_rescan: Mutex<Option<Instant>>,
    /// Streams waiting to be loaded, in order; one loader works through it.
    queue: Mutex<VecDeque<Arc<Slot>>>,
    queued: Notify,
    loader_started: AtomicBool,
    /// Bumped whenever a name or a load state changes: masters re-check their links.
    generation: AtomicU64,
    /// Loads running now, and the most ever running at once.
    loads_running: AtomicUsize,
    peak_loads_running: AtomicUsize,
}

/// Shortest time between two rescans of the root.
const RESCAN_INTERVAL: Duration = Duration::from_secs(2);

impl Library {
    /// An empty library over `config.root`; call [`Library::rescan`] to find streams.
    pub fn new(config: LibraryConfig) -> Arc<Self> {
        crate::stats::install();
        Arc::new(Library {
            config,
            slots: RwLock::new(BTreeMap::new()),
            last_rescan: Mutex::new(None),
            queue: Mutex::new(VecDeque::new()),
            queued: Notify::new(),
            loader_started: AtomicBool::new(false),
            generation: AtomicU64::new(0),
            loads_running: AtomicUsize::new(0),
            peak_loads_running: AtomicUsize::new(0),
        })
    }

    /// The settings.
    pub fn config(&self) -> &LibraryConfig {
        &self.config
    }

    /// The slot of a stream, if it exists.
    pub fn get(&self, name: &str) -> Option<Arc<Slot>> {
        self.slots.read().ok()?.get(name).cloned()
    }

    /// All slots, by name.
    pub fn slots(&self) -> Vec<Arc<Slot>> {
        self.slots
            .read()
            .map(|s| s.values().cloned().collect())
            .unwrap_or_default()
    }

    /// Changes whenever the names or load states change.
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::SeqCst)
    }

    /// Whether a ready stream `stream` has a track `track`.
    pub fn has_track(&self, stream: &str, track: &str) -> bool {
        self.get(stream).is_some_and(|slot| match slot.state() {
            StreamState::Ready(live) => live.stream.track(track).is_some(),
            _ => false,
        })
    }

    /// How `stream`'s master links `track`, against the names held now.
    /// Another stream that is loading or failed might have any track: the
    /// seed's form is used only when no other stream could claim it.
    pub fn media_form(&self, stream: &str, track: &str) -> MediaForm {
        let could_have = |s: &str, t: &str| match self.get(s).map(|slot| slot.state()) {
            Some(StreamState::Ready(live)) => live.stream.track(t).is_some(),
            Some(_) => s != stream,
            None => false,
        };
        urls::media_form(stream, track, |s| self.get(s).is_some(), could_have)
    }

    /// Finds new stream directories (and failed streams whose files changed)
    /// and queues them for loading. Blocking IO: call it off the async
    /// workers (at start, or through [`Library::rescan_soon`]). Returns the
    /// number of streams queued.
    pub fn rescan(self: &Arc<Self>) -> Result<usize, SourceError> {
        let names = loader::find_streams(&self.config.root)?;
        // Failed streams' files, looked at before taking the lock: reading a
        // large directory must not hold up the requests.
        let failed_now: Vec<(Arc<Slot>, u64)> = self
            .slots()
            .into_iter()
            .filter(|slot| {
                slot.failed_fingerprint
                    .lock()
                    .ok()
                    .and_then(|f| *f)
                    .is_some()
            })
            .map(|slot| {
                let print = fingerprint(&self.config.root.join(&slot.name));
                (slot, print)
            })
            .collect();
        let mut fresh = Vec::new();
        if let Ok(mut slots) = self.slots.write() {
            for name in names {
                match slots.entry(name.clone()) {
                    std::collections::btree_map::Entry::Vacant(entry) => {
                        let slot = Arc::new(Slot {
                            name,
                            state: watch::Sender::new(StreamState::Loading),
                            failed_fingerprint: Mutex::new(None),
                        });
                        entry.insert(slot.clone());
                        fresh.push(slot);
                    }
                    std::collections::btree_map::Entry::Occupied(entry) => {
                        let slot = entry.get();
                        let recorded = slot.failed_fingerprint.lock().ok().and_then(|f| *f);
                        let now = failed_now
                            .iter()
                            .find(|(s, _)| Arc::ptr_eq(s, slot))
                            .map(|(_, p)| *p);
                        if let (Some(before), Some(now)) = (recorded, now)
                            && now != before
                        {
                            tracing::info!(stream = %slot.name, "files changed: loading again");
                            if let Ok(mut f) = slot.failed_fingerprint.lock() {
                                *f = None;
                            }
                            slot.state.send_replace(StreamState::Loading);
                            fresh.push(slot.clone());
                        }
                    }
                }
            }
        }
        let count = fresh.len();
        if count > 0 {
            self.generation.fetch_add(1, Ordering::SeqCst);
            if let Ok(mut queue) = self.queue.lock() {
                queue.extend(fresh);
            }
            self.queued.notify_one();
            self.start_loader();
        }
        Ok(count)
    }

    /// Rescans in the background for a request naming an unknown or failed
    /// stream, at most once every couple of seconds whatever the requests.
    /// Returns once the rescan is done (or immediately when one ran recently).
    pub async fn rescan_soon(self: &Arc<Self>) {
        let due = match self.last_rescan.lock() {
            Ok(mut last) if last.is_none_or(|t| t.elapsed() >= RESCAN_INTERVAL) => {
                *last = Some(Instant::now());
                true
            }
            _ => false,
        };
        if !due {
            return;
        }
        let lib = self.clone();
        match tokio::task::spawn_blocking(move || lib.rescan()).await {
            Ok(Err(e)) => tracing::warn!("rescan failed: {e}"),
            Err(e) => tracing::warn!("rescan crashed: {e}"),
            Ok(Ok(_)) => {}
        }
    }

    /// Moves a queued stream to the front of the load queue: a request for
    /// it is waiting. Still one load at a time.
    pub fn prioritise(&self, slot: &Arc<Slot>) {
        if let Ok(mut queue) = self.queue.lock()
            && let Some(at) = queue.iter().position(|s| Arc::ptr_eq(s, slot))
            && at > 0
            && let Some(s) = queue.remove(at)
        {
            queue.push_front(s);
        }
    }

    fn start_loader(self: &Arc<Self>) {
        if self.loader_started.swap(true, Ordering::SeqCst) {
            return;
        }
        let lib = self.clone();
        tokio::spawn(async move {
            loop {
                let next = lib.queue.lock().ok().and_then(|mut q| q.pop_front());
                match next {
                    Some(slot) => lib.load(&slot).await,
                    None => lib.queued.notified().await,
                }
            }
        });
    }

    /// The most streams ever measured at the same time (one, by design).
    pub fn peak_concurrent_loads(&self) -> usize {
        self.peak_loads_running.load(Ordering::SeqCst)
    }

    async fn load(&self, slot: &Arc<Slot>) {
        let running = self.loads_running.fetch_add(1, Ordering::SeqCst) + 1;
        self.peak_loads_running.fetch_max(running, Ordering::SeqCst);
        self.load_one(slot).await;
        self.loads_running.fetch_sub(1, Ordering::SeqCst);
    }

    async fn load_one(&self, slot: &Arc<Slot>) {
        let root = self.config.root.clone();
        let name = slot.name.clone();
        let prober = self.config.prober.clone();
        let result =
            tokio::task::spawn_blocking(move || loader::load_stream(&root, &name, &prober)).await;
        let state = match result {
            Ok(Ok(loaded)) => {
                let stream = &loaded.stream;
                tracing::info!(
                    stream = %stream.name,
                    segments = stream.schedule.len(),
                    tracks = %stream.tracks.iter().map(|t| t.name.as_str()).collect::<Vec<_>>().join(","),
                    loop_s = format!("{:.3}", stream.schedule.loop_duration().as_secs_f64()),
                    target_duration = stream.target_duration_s,
                    load_ms = loaded.load_time.as_millis() as u64,
                    "stream ready"
                );
                let name = stream.name.clone();
                metrics::gauge!("pseudolive_stream_load_seconds", "stream" => name.clone())
                    .set(loaded.load_time.as_secs_f64());
                for method in [Method::Native, Method::Ffprobe, Method::Playlist] {
                    let count = stream
                        .tracks
                        .iter()
                        .flat_map(|t| &t.segments)
                        .filter(|s| s.method == method)
                        .count();
                    let label = method.name();
                    metrics::gauge!("pseudolive_segments", "stream" => name.clone(), "method" => label)
                        .set(count as f64);
                }
                StreamState::Ready(Arc::new(LiveStream::new(
                    loaded,
                    self.config.window,
                    self.config.epoch_unix,
                )))
            }
            Ok(Err(e)) => {
                tracing::error!(stream = %slot.name, "stream failed to load: {e}");
                self.record_failure(slot);
                StreamState::Failed(Arc::new(e))
            }
            Err(e) => {
                tracing::error!(stream = %slot.name, "stream loader crashed: {e}");
                self.record_failure(slot);
                let dir = self.config.root.join(&slot.name);
                StreamState::Failed(Arc::new(SourceError::new(
                    &dir,
                    format!("loader crashed: {e}"),
                )))
            }
        };
        slot.state.send_replace(state);
        self.generation.fetch_add(1, Ordering::SeqCst);
    }

    fn record_failure(&self, slot: &Slot) {
        let print = fingerprint(&self.config.root.join(&slot.name));
        if let Ok(mut f) = slot.failed_fingerprint.lock() {
            *f = Some(print);
        }
    }
}

/// A summary of the files under `dir` (names, sizes, modification times, two
/// levels deep): it changes when a file is added, removed or rewritten.
fn fingerprint(dir: &Path) -> u64 {
    use std::hash::{Hash, Hasher};
    fn walk(dir: &Path, depth: u32, out: &mut Vec<(PathBuf, u64, Option<std::time::SystemTime>)>) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for e in entries.flatten() {
            let path = e.path();
            let Ok(meta) = e.metadata() else { continue };
            if meta.is_dir() {
                if depth > 0 {
                    walk(&path, depth - 1, out);
                }
            } else {
                out.push((path, meta.len(), meta.modified().ok()));
            }
        }
    }
    let mut files = Vec::new();
    walk(dir, 2, &mut files);
    files.sort();
    let mut h = std::collections::hash_map::DefaultHasher::new();
    files.hash(&mut h);
    h.finish()
}
