//! The library: every stream under the root, its load state, its anchor and
//! its rendered playlists. Streams load in the background, one at a time
//! (each measurement uses every core); a request for a queued stream moves it
//! to the front of the queue. Time is passed in by the caller.

use std::collections::{BTreeMap, VecDeque};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use tokio::sync::{Notify, watch};

use crate::loader;
use crate::probe::{Method, Prober};
use crate::source::SourceError;
use crate::ticks::Ticks;
use crate::urls::{self, MediaForm};

mod live;
mod rewritten;
mod waits;
pub use live::{LiveStream, LowLatencyRequest, Rendered, RestampPlan, gzip};
pub use rewritten::Rewritten;

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
