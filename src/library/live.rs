//! A loaded stream while it is served: its anchor, its rendered-playlist
//! cache and its lazily built timestamp-rewriting plans.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use bytes::Bytes;

use super::Library;
use super::rewritten::Rewritten;
use super::waits::Waits;
use crate::ll::{StreamParts, TrackFrames, TrackParts};
use crate::loader::{self, Loaded};
use crate::model::{Stream, TrackTiming};
use crate::playlist::{self, LowLatencyView, MediaRequest, RenditionReport};
use crate::restamp::ts::TsRestampPlan;
use crate::source::SourceError;
use crate::ticks::Ticks;
use crate::timeline::parts::{Edge, LoopParts};
use crate::timeline::{Window, WindowRule};
use crate::urls::{self, MediaForm};

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
#[derive(Debug, Clone, PartialEq, Eq)]
struct CacheKey {
    form: MediaForm,
    numbered: bool,
    window: Window,
    anchor_unix: Ticks,
    /// With parts: the part target, the edge, what is skipped, and the
    /// other renditions' reports.
    ll: Option<LowLatencyKey>,
}

type LowLatencyKey = (Ticks, Option<Edge>, u64, bool, u64, Vec<RenditionReport>);

/// What a low-latency rendering adds, for one track at one instant.
#[derive(Debug)]
struct LowLatencyState<'a> {
    part_target: Ticks,
    parts: Option<(&'a LoopParts, Edge)>,
    reports: Vec<RenditionReport>,
    skipped: u64,
    skip_dateranges: bool,
    has_dateranges: bool,
    removed_from: u64,
}

impl LowLatencyState<'_> {
    fn key(&self) -> LowLatencyKey {
        (
            self.part_target,
            self.parts.map(|(_, edge)| edge),
            self.skipped,
            self.skip_dateranges,
            self.removed_from,
            self.reports.clone(),
        )
    }

    fn view(&self) -> LowLatencyView<'_> {
        LowLatencyView {
            part_target: self.part_target,
            parts: self.parts,
            reports: &self.reports,
            skipped: self.skipped,
            skip_dateranges: self.skip_dateranges,
            has_dateranges: self.has_dateranges,
            removed_from: self.removed_from,
        }
    }
}

/// A low-latency rendering of a media playlist: the parts of every track
/// for one part target, and what a delta update skips.
#[derive(Debug, Clone, Copy)]
pub struct LowLatencyRequest<'a> {
    /// Every track's parts.
    pub parts: &'a StreamParts,
    /// How the master links each track.
    pub forms: &'a [MediaForm],
    /// `_HLS_skip`: `Some(false)` for `YES`, `Some(true)` for `v2`.
    pub skip: Option<bool>,
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
    /// How the master links each track, for one generation of the library.
    forms: Mutex<Option<(u64, Arc<[MediaForm]>)>>,
    /// Per track: recent renderings, most recent first. The key holds all
    /// the text depends on, so any request may use or add one.
    cache: Vec<Mutex<Vec<(CacheKey, Rendered)>>>,
    /// Segment file → (track, index in the loop).
    paths: std::collections::HashMap<String, (usize, usize)>,
    /// Files named by an `EXT-X-MAP` (initialisation sections).
    init_paths: std::collections::HashSet<String>,
    /// Per track, once asked for: what rewriting its timestamps needs.
    restamp: Vec<tokio::sync::OnceCell<Result<Arc<RestampPlan>, Arc<SourceError>>>>,
    /// Per track: its recently rewritten segments (continuous timestamps).
    rewritten: Vec<Rewritten>,
    /// Per track, once low latency is asked for: its frames (`None` for a
    /// track listed by whole segments: subtitles, encrypted media).
    frames: Vec<tokio::sync::OnceCell<FramesResult>>,
    /// Per part target asked for (the latest few): every track's parts.
    parts: Mutex<Vec<(Ticks, PartsCell)>>,
    /// Requests held until an instant.
    pub waits: Waits,
    /// Whether any segment carries an `EXT-X-DATERANGE`.
    has_dateranges: bool,
}

type FramesResult = Result<Option<Arc<TrackFrames>>, Arc<SourceError>>;
type PartsCell = Arc<tokio::sync::OnceCell<Result<Arc<StreamParts>, Arc<SourceError>>>>;

/// Part targets whose parts are kept per stream.
const KEPT_PART_TARGETS: usize = 4;

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
            rewritten: stream.tracks.iter().map(|_| Default::default()).collect(),
            frames: stream.tracks.iter().map(|_| Default::default()).collect(),
            parts: Mutex::default(),
            waits: Waits::default(),
            has_dateranges: stream
                .tracks
                .iter()
                .flat_map(|t| &t.segments)
                .flat_map(|s| &s.tags)
                .any(|t| crate::tags::daterange_id(t).is_some()),
            paths,
            cache: stream.tracks.iter().map(|_| Mutex::default()).collect(),
            master_uris,
            load_time,
            default_rule,
            anchor: OnceLock::new(),
            fixed_anchor: epoch_unix.map(|e| e.saturating_sub(back_date)),
            master: Mutex::new(None),
            forms: Mutex::new(None),
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

    /// Track `index`'s recently rewritten segments.
    pub fn rewritten(&self, index: usize) -> &Rewritten {
        &self.rewritten[index]
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
                        loader::ts_restamp_plan_on(
                            &stream_dir,
                            track,
                            Some(live.stream.schedule_of(track)),
                        )
                        .map(RestampPlan::Ts)
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

    /// Every track's parts for `target`: carved once per target (the
    /// latest few targets are kept) from each track's frames, which are read
    /// once, off the async workers, from the files under `stream_dir`.
    pub async fn stream_parts(
        self: &Arc<Self>,
        target: Ticks,
        stream_dir: PathBuf,
    ) -> Result<Arc<StreamParts>, Arc<SourceError>> {
        let cell = {
            let mut kept = self.parts.lock().unwrap_or_else(|e| e.into_inner());
            let at = kept.iter().position(|(t, _)| *t == target);
            let entry = match at {
                Some(at) => kept.remove(at),
                None => (target, PartsCell::default()),
            };
            kept.insert(0, entry.clone());
            kept.truncate(KEPT_PART_TARGETS);
            entry.1
        };
        cell.get_or_init(|| async {
            let mut tracks = Vec::with_capacity(self.stream.tracks.len());
            for (index, track) in self.stream.tracks.iter().enumerate() {
                let frames = self.track_frames(index, stream_dir.clone()).await?;
                let schedule = self.stream.schedule_of(track);
                tracks.push(match frames {
                    Some(frames) => {
                        Some(TrackParts::carve(frames, track, schedule, target).map_err(Arc::new)?)
                    }
                    None => None,
                });
            }
            Ok(Arc::new(StreamParts { target, tracks }))
        })
        .await
        .clone()
    }

    /// The frames of track `index`, read once.
    async fn track_frames(self: &Arc<Self>, index: usize, stream_dir: PathBuf) -> FramesResult {
        let live = self.clone();
        self.frames[index]
            .get_or_init(|| async move {
                let built = tokio::task::spawn_blocking(move || {
                    crate::ll::read_frames(&stream_dir, &live.stream.tracks[index])
                })
                .await;
                match built {
                    Ok(Ok(frames)) => Ok(frames.map(Arc::new)),
                    Ok(Err(e)) => Err(Arc::new(e)),
                    Err(e) => Err(Arc::new(SourceError::new(
                        Path::new(&self.stream.name),
                        format!("reading frames crashed: {e}"),
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

    /// The instant whose live edge a playlist `t` after the anchor shows:
    /// `t`, or before a full window exists (a timeline that has not
    /// started), the first full window's instant, as [`Self::window`] lists.
    pub fn edge_instant(&self, t: Ticks) -> Ticks {
        t.max(self.stream.schedule.first_full_instant(self.default_rule))
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
    #[allow(clippy::too_many_arguments)]
    pub fn media_playlist(
        &self,
        index: usize,
        form: MediaForm,
        numbered: bool,
        anchor_unix: Ticks,
        now_unix: Ticks,
        rule: WindowRule,
        ll: Option<LowLatencyRequest<'_>>,
    ) -> Rendered {
        let window = self.track_window(index, anchor_unix, now_unix, rule);
        let t = self.edge_instant(now_unix.saturating_sub(anchor_unix));
        let low = ll.map(|ll| self.low_latency_state(index, form, window, t, ll));
        let key = CacheKey {
            form,
            numbered,
            window,
            anchor_unix,
            ll: low.as_ref().map(LowLatencyState::key),
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
            ll: low.as_ref().map(LowLatencyState::view),
        }));
        if rendered.plain.len() <= CACHED_RENDERING_MAX_BYTES
            && let Ok(mut kept) = slot.lock()
        {
            kept.insert(0, (key, rendered.clone()));
            kept.truncate(CACHED_RENDERINGS);
        }
        rendered
    }

    /// What a low-latency rendering of track `index` adds at `t` (since
    /// the anchor), for `window`.
    fn low_latency_state<'a>(
        &self,
        index: usize,
        form: MediaForm,
        window: Window,
        t: Ticks,
        ll: LowLatencyRequest<'a>,
    ) -> LowLatencyState<'a> {
        let stream = &self.stream;
        let schedule = stream.schedule_of(&stream.tracks[index]);
        let edge_of = |j: usize| {
            let parts = ll.parts.tracks[j].as_ref()?;
            let schedule = stream.schedule_of(&stream.tracks[j]);
            Some((&parts.times, Edge::at(schedule, &parts.times, t)))
        };
        let reports = (0..stream.tracks.len())
            .filter(|&j| j != index)
            .map(|j| {
                let other = &stream.tracks[j];
                let last = edge_of(j).and_then(|(parts, edge)| edge.last_part(parts));
                let listed = stream.schedule_of(other).listed(t);
                RenditionReport {
                    uri: urls::sibling_media(&stream.name, &other.name, form, ll.forms[j]),
                    last_msn: last.map_or(listed.saturating_sub(1), |p| p.msn),
                    last_part: last.map(|p| p.part),
                }
            })
            .collect();
        // A delta update skips the segments that ended before the skip boundary.
        let skip_until =
            Ticks::from_secs(stream.target_duration_s) * playlist::SKIP_UNTIL_TARGET_DURATIONS;
        let skipped = match ll.skip {
            Some(_) => schedule
                .listed(t.saturating_sub(skip_until))
                .saturating_sub(window.first)
                .min(window.last - window.first),
            None => 0,
        };
        // A client holds a playlist at most half the skip boundary old:
        // the date ranges that left since then are listed as removed.
        let removed_from = schedule
            .listed(t.saturating_sub(Ticks(skip_until.0 / 2)))
            .saturating_sub(window.last - window.first + 1);
        LowLatencyState {
            part_target: ll.parts.target,
            parts: edge_of(index),
            reports,
            skipped,
            skip_dateranges: self.has_dateranges && ll.skip == Some(true),
            has_dateranges: self.has_dateranges,
            removed_from: removed_from.min(window.first),
        }
    }

    /// The default media playlist of track `index` at `clock_now_unix`, the
    /// server clock's time (starts the timeline), linked beside the master.
    pub fn playlist_at(&self, index: usize, clock_now_unix: Ticks) -> Rendered {
        let anchor = self.anchor(clock_now_unix);
        let rule = self.default_rule;
        self.media_playlist(
            index,
            MediaForm::Root,
            false,
            anchor,
            clock_now_unix,
            rule,
            None,
        )
    }

    /// How the master links each track (`Library::media_form`), worked
    /// out again only when `library`'s names or load states change.
    pub fn media_forms(&self, library: &Library) -> Arc<[MediaForm]> {
        let generation = library.generation();
        if let Ok(guard) = self.forms.lock()
            && let Some((g, forms)) = guard.as_ref()
            && *g == generation
        {
            return forms.clone();
        }
        let forms: Arc<[MediaForm]> = self
            .stream
            .tracks
            .iter()
            .map(|t| library.media_form(&self.stream.name, &t.name))
            .collect();
        if let Ok(mut guard) = self.forms.lock() {
            *guard = Some((generation, forms.clone()));
        }
        forms
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
