//! Continuous-mode WebVTT and the kept rewrites, tried against bad input and
//! real packagers' subtitles.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use pseudolive::clock::ManualClock;
use pseudolive::http::App;
use pseudolive::library::{Library, LibraryConfig};
use pseudolive::probe::{ProbeMode, Prober};
use pseudolive::ticks::Ticks;

use crate::util::{copy_stream, get, temp_dir};

const T0: u64 = 1_800_000_000_000;

/// A library over `root`, every stream settled, the clock at `T0`.
async fn app_over(root: &Path) -> (Arc<App>, Arc<ManualClock>) {
    let library = Library::new(LibraryConfig {
        root: root.to_path_buf(),
        window: 6,
        epoch_unix: Some(Ticks::from_ms(T0)),
        prober: Prober {
            mode: ProbeMode::Native,
            ffprobe: None,
        },
    });
    library.rescan().unwrap();
    for slot in library.slots() {
        slot.settled(Duration::from_secs(30)).await;
    }
    let clock = Arc::new(ManualClock::new(Ticks::from_ms(T0)));
    let app = App::with_clock(library, Duration::from_secs(5), clock.clone());
    (app, clock)
}

/// The `MPEGTS` value of a WebVTT body's map (0 without one).
fn mpegts(body: &[u8]) -> u64 {
    let text = String::from_utf8_lossy(body);
    let Some(map) = text.lines().find(|l| l.starts_with("X-TIMESTAMP-MAP=")) else {
        return 0;
    };
    map.split(['=', ','])
        .find_map(|kv| kv.trim().strip_prefix("MPEGTS:"))
        .unwrap_or_else(|| panic!("{map}"))
        .parse()
        .unwrap()
}

/// The kept rewrites of track `index` of `stream`.
fn kept(app: &Arc<App>, stream: &str, index: usize) -> usize {
    match app.library.get(stream).map(|s| s.state()) {
        Some(pseudolive::library::StreamState::Ready(live)) => live.rewritten(index).len(),
        _ => panic!("{stream} is not ready"),
    }
}

/// A segment too large for the file cache is read from disk on every
/// request, into a new allocation each time: a rewrite kept from it can
/// never be found again, so keeping it only pins the file and its rewrite
/// (up to 2 x 256 MiB per entry) for as long as the stream runs.
#[tokio::test]
async fn a_segment_read_past_the_file_cache_is_not_kept() {
    let root = temp_dir("r4_big").join("static");
    copy_stream(&root, "shaka_ts", "pkg/shaka_ts");
    // 17 MiB of null packets after the media: larger than the cache takes.
    let path = root.join("shaka_ts/video/seg_002.ts");
    let mut ts = std::fs::read(&path).unwrap();
    let mut null = [0xFFu8; 188];
    null[..4].copy_from_slice(&[0x47, 0x1F, 0xFF, 0x10]);
    while ts.len() < 17 << 20 {
        ts.extend_from_slice(&null);
    }
    std::fs::write(&path, &ts).unwrap();
    let (app, _clock) = app_over(&root).await;
    let url = "/ts=continuous/g=1/shaka_ts/video/seg_002.ts";
    let first = get(&app, url).await;
    assert_eq!(first.status(), 200);
    assert_eq!(get(&app, url).await.body(), first.body(), "the same bytes");
    assert_eq!(kept(&app, "shaka_ts", 0), 0, "nothing pinned");
    // A cached file's rewrite is kept.
    let url = "/ts=continuous/g=0/shaka_ts/video/seg_001.ts";
    assert_eq!(get(&app, url).await.status(), 200);
    assert_eq!(kept(&app, "shaka_ts", 0), 1);
}

/// A subtitle file rewritten on disk is served rewritten from its new bytes
/// once the file cache has seen the change.
#[tokio::test]
async fn a_changed_subtitle_file_is_not_served_from_the_kept_rewrite() {
    let root = temp_dir("r4_stale").join("static");
    copy_stream(&root, "shaka_ts", "pkg/shaka_ts");
    let (app, _clock) = app_over(&root).await;
    let url = "/ts=continuous/g=0/shaka_ts/text/seg_001.vtt";
    let before = get(&app, url).await;
    assert_eq!(mpegts(before.body()), 900_000);
    let path = root.join("shaka_ts/text/seg_001.vtt");
    let old = std::fs::read_to_string(&path).unwrap();
    std::fs::write(
        &path,
        old.replace("one", "uno")
            .replace("MPEGTS:9000", "MPEGTS:9090"),
    )
    .unwrap();
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let after = get(&app, url).await;
    let body = String::from_utf8_lossy(after.body());
    assert!(body.contains("uno"), "{body}");
    assert_eq!(mpegts(after.body()), 900_090);
}
