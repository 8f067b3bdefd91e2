//! Bad input files that must not crash the loader: values read from a
//! playlist used in arithmetic (a media sequence number near the top of its
//! range, an absurd `#EXTINF` next to a program date-time).

use std::path::Path;
use std::time::Duration;

use pseudolive::library::{Library, LibraryConfig, StreamState};
use pseudolive::probe::{ProbeMode, Prober};
use pseudolive::ticks::Ticks;

use crate::util::{fixture, temp_dir};

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let p = entry.unwrap().path();
        let dest = to.join(p.file_name().unwrap());
        if p.is_dir() {
            copy_dir(&p, &dest);
        } else {
            std::fs::copy(&p, &dest).unwrap();
        }
    }
}

/// The state `stream` settles in, in a library over `root`.
async fn settle(root: &Path, stream: &str) -> StreamState {
    let library = Library::new(LibraryConfig {
        root: root.to_path_buf(),
        window: 6,
        epoch_unix: Some(Ticks::from_ms(1_700_000_000_000)),
        prober: Prober {
            mode: ProbeMode::Native,
            ffprobe: None,
        },
    });
    library.rescan().unwrap();
    let slot = library.get(stream).expect("the stream is found");
    slot.settled(Duration::from_secs(30)).await
}

fn assert_no_crash(state: &StreamState) {
    if let StreamState::Failed(e) = state {
        assert!(
            !e.to_string().contains("crashed"),
            "bad input must be refused with a reason, not crash the loader: {e}"
        );
    }
}

/// An implied AES-128 IV is the source media sequence number plus the
/// segment's index: at the top of the u64 range that sum overflows
/// (`loader.rs`, `explicit_iv(k, pl.media_sequence + i as u64)`): a panic in
/// debug builds, a wrapped IV written into the live playlist in release.
#[tokio::test]
async fn an_implied_iv_at_the_top_of_the_media_sequence_range_is_no_crash() {
    let root = temp_dir("review2-msn-overflow").join("static");
    copy_dir(&fixture("pkg/ff_aes_noiv"), &root.join("aes"));
    let pl = root.join("aes/v/index.m3u8");
    let text = std::fs::read_to_string(&pl).unwrap().replace(
        "#EXT-X-MEDIA-SEQUENCE:0",
        "#EXT-X-MEDIA-SEQUENCE:18446744073709551615",
    );
    std::fs::write(&pl, text).unwrap();
    let state = settle(&root, "aes").await;
    assert_no_crash(&state);
    if let StreamState::Ready(live) = &state {
        // Segment 1's MSN is 2^64, which no 128-bit IV written from a wrapped
        // u64 can equal: it must not be written as 0.
        let ivs: Vec<Option<String>> = live.stream.tracks[0]
            .segments
            .iter()
            .map(|s| s.key.as_ref().and_then(|k| k.iv.clone()))
            .collect();
        assert_ne!(
            ivs[1].as_deref(),
            Some("0x00000000000000000000000000000000"),
            "{ivs:?}"
        );
    }
}

/// `tags::scan` adds each `#EXTINF` (in ms, from an unchecked f64) to the
/// running program date-time: `#EXTINF:1e300` saturates to i64::MAX and the
/// sum overflows (`tags.rs`, `pdt_ms = pdt.map(|p| p + extinf_ms)`).
#[tokio::test]
async fn a_huge_extinf_after_a_program_date_time_is_no_crash() {
    let root = temp_dir("review2-extinf-overflow").join("static");
    copy_dir(&fixture("pkg/ff_pdt_ads"), &root.join("pdt"));
    for v in ["hi", "lo"] {
        let pl = root.join("pdt").join(v).join("index.m3u8");
        let text = std::fs::read_to_string(&pl).unwrap();
        let text = text.replacen("#EXTINF:2.000000,", "#EXTINF:1e300,", 1);
        std::fs::write(&pl, text).unwrap();
    }
    let state = settle(&root, "pdt").await;
    assert_no_crash(&state);
}
