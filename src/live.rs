//! The running library: every stream's load state, its anchor, and the
//! rendered-playlist cache. Streams load in the background; requests for a
//! stream still loading wait for it (bounded).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock, RwLock};
use std::time::{Duration, Instant};

use bytes::Bytes;
use tokio::sync::{Semaphore, watch};

use crate::library::{self, Stream};
use crate::playlist;
use crate::probe::Prober;
use crate::ticks;

/// Settings of a running library.
#[derive(Debug, Clone)]
pub struct LibraryConfig {
    /// The directory holding one sub-directory per stream.
    pub root: PathBuf,
    /// Segments per live window.
    pub window: usize,
    /// Fixed anchor (Unix ms): identical playlists on every replica.
    pub epoch_ms: Option<u64>,
    /// How segments are measured.
    pub prober: Prober,
}

/// Where a stream is in its life.
#[derive(Debug, Clone)]
pub enum StreamState {
    /// Being measured.
    Loading,
    /// Ready to serve.
    Ready(Arc<LiveStream>),
    /// Could not be loaded; the reason names the file.
    Failed(Arc<str>),
}

/// One rendered media playlist, plain and gzip-compressed.
#[derive(Debug, Clone)]
pub struct Rendered {
    /// The playlist text.
    pub plain: Bytes,
    /// The same, gzip-compressed.
    pub gzip: Bytes,
}

/// A loaded stream plus its anchor and cache.
#[derive(Debug)]
pub struct LiveStream {
    /// The immutable stream.
    pub stream: Stream,
    /// The master playlist, gzip-compressed.
    pub master_gzip: Bytes,
    /// Unix time (ticks) of the timeline's zero: set by `--epoch` or on first request.
    anchor: OnceLock<u64>,
    fixed_epoch: Option<u64>,
    /// Per track: the last rendered window (keyed by its last segment number).
    cache: Vec<Mutex<Option<(u64, Rendered)>>>,
}

impl LiveStream {
    /// Wraps a loaded stream; `epoch_ms` fixes the anchor.
    pub fn new(stream: Stream, epoch_ms: Option<u64>) -> Self {
        let cache = stream.tracks.iter().map(|_| Mutex::new(None)).collect();
        LiveStream {
            master_gzip: Bytes::from(gzip(&stream.master)),
            stream,
            anchor: OnceLock::new(),
            fixed_epoch: epoch_ms.map(ticks::from_ms),
            cache,
        }
    }

    /// The anchor (Unix ticks): the epoch, or the first request's instant,
    /// back-dated by one window so that first request sees a full playlist.
    pub fn anchor(&self, now_unix_ticks: u64) -> u64 {
        *self.anchor.get_or_init(|| {
            let zero = self.fixed_epoch.unwrap_or(now_unix_ticks);
            zero.saturating_sub(self.stream.schedule.full_at())
        })
    }

    /// The window listed at `now_unix_ticks`, if the timeline has started
    /// (an `--epoch`, or a first request); looking does not start it.
    pub fn started_window_at(&self, now_unix_ticks: u64) -> Option<crate::timeline::Window> {
        let anchor = self.anchor.get().copied().or(self
            .fixed_epoch
            .map(|e| e.saturating_sub(self.stream.schedule.full_at())))?;
        Some(
            self.stream
                .schedule
                .window_at(now_unix_ticks.saturating_sub(anchor)),
        )
    }

    /// The window listed at `now_unix_ticks` (starts the timeline on first use).
    pub fn window_at(&self, now_unix_ticks: u64) -> crate::timeline::Window {
        let anchor = self.anchor(now_unix_ticks);
        self.stream
            .schedule
            .window_at(now_unix_ticks.saturating_sub(anchor))
    }

    /// The media playlist of track `index` at `now_unix_ticks`: a clone of
    /// cached bytes unless the window moved.
    pub fn media_playlist(&self, index: usize, now_unix_ticks: u64) -> Rendered {
        let window = self.window_at(now_unix_ticks);
        let slot = &self.cache[index];
        if let Ok(guard) = slot.lock()
            && let Some((last, rendered)) = guard.as_ref()
            && *last == window.last
        {
            return rendered.clone();
        }
        let plain = playlist::render_media(
            &self.stream,
            &self.stream.tracks[index],
            &window,
            self.anchor(now_unix_ticks),
        );
        let rendered = Rendered {
            gzip: Bytes::from(gzip(&plain)),
            plain: Bytes::from(plain),
        };
        if let Ok(mut guard) = slot.lock() {
            let newer = guard.as_ref().is_none_or(|(last, _)| *last < window.last);
            if newer {
                *guard = Some((window.last, rendered.clone()));
            }
        }
        rendered
    }
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
    started: AtomicBool,
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
    /// One stream measured at a time (each one uses every core).
    loading: Arc<Semaphore>,
}

/// Shortest time between two rescans of the root.
const RESCAN_INTERVAL: Duration = Duration::from_secs(2);

impl Library {
    /// An empty library over `config.root`; call [`Library::rescan`] to find streams.
    pub fn new(config: LibraryConfig) -> Arc<Self> {
        Arc::new(Library {
            config,
            slots: RwLock::new(BTreeMap::new()),
            last_rescan: Mutex::new(None),
            loading: Arc::new(Semaphore::new(1)),
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

    /// Finds new stream directories and starts loading them in the
    /// background. Returns the number of new streams.
    pub fn rescan(self: &Arc<Self>) -> Result<usize, crate::source::SourceError> {
        let names = library::find_streams(&self.config.root)?;
        let mut fresh = Vec::new();
        if let Ok(mut slots) = self.slots.write() {
            for name in names {
                if let std::collections::btree_map::Entry::Vacant(entry) = slots.entry(name.clone())
                {
                    let slot = Arc::new(Slot {
                        name,
                        state: watch::Sender::new(StreamState::Loading),
                        started: AtomicBool::new(false),
                    });
                    entry.insert(slot.clone());
                    fresh.push(slot);
                }
            }
        }
        let count = fresh.len();
        for slot in fresh {
            let lib = self.clone();
            tokio::spawn(async move {
                let Ok(_permit) = lib.loading.clone().acquire_owned().await else {
                    return;
                };
                lib.load(&slot).await;
            });
        }
        Ok(count)
    }

    /// Rescans for a request naming an unknown stream, at most once every
    /// couple of seconds whatever the requests.
    pub fn rescan_rate_limited(self: &Arc<Self>) {
        let due = match self.last_rescan.lock() {
            Ok(mut last) if last.is_none_or(|t| t.elapsed() >= RESCAN_INTERVAL) => {
                *last = Some(Instant::now());
                true
            }
            _ => false,
        };
        if due && let Err(e) = self.rescan() {
            tracing::warn!("rescan failed: {e}");
        }
    }

    /// Loads a stream now if no one has started it: a request for a stream
    /// that is still queued jumps the queue.
    pub fn prioritise(self: &Arc<Self>, slot: &Arc<Slot>) {
        if !slot.started.load(Ordering::Relaxed) {
            let lib = self.clone();
            let slot = slot.clone();
            tokio::spawn(async move { lib.load(&slot).await });
        }
    }

    async fn load(&self, slot: &Arc<Slot>) {
        if slot.started.swap(true, Ordering::SeqCst) {
            return;
        }
        let root = self.config.root.clone();
        let name = slot.name.clone();
        let prober = self.config.prober.clone();
        let window = self.config.window;
        let result = tokio::task::spawn_blocking(move || {
            library::load_stream(&root, &name, &prober, window)
        })
        .await;
        let state = match result {
            Ok(Ok(stream)) => {
                tracing::info!(
                    stream = %stream.name,
                    segments = stream.schedule.len(),
                    variants = %stream.tracks.iter().map(|t| t.name.as_str()).collect::<Vec<_>>().join(","),
                    loop_s = format!("{:.3}", ticks::to_secs(stream.schedule.loop_ticks())),
                    target_duration = stream.target_duration,
                    load_ms = stream.load_time.as_millis() as u64,
                    "stream ready"
                );
                StreamState::Ready(Arc::new(LiveStream::new(stream, self.config.epoch_ms)))
            }
            Ok(Err(e)) => {
                tracing::error!(stream = %slot.name, "stream failed to load: {e}");
                StreamState::Failed(e.to_string().into())
            }
            Err(e) => {
                tracing::error!(stream = %slot.name, "stream loader crashed: {e}");
                StreamState::Failed(format!("loader crashed: {e}").into())
            }
        };
        slot.state.send_replace(state);
    }
}

/// Now, as 90 kHz ticks since the Unix epoch.
pub fn now_unix_ticks() -> u64 {
    let since = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    since.as_secs() * ticks::HZ + u64::from(since.subsec_micros()) * 9 / 100
}
