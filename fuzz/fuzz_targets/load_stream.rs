//! Library loading from arbitrary playlist text: the input is a master
//! playlist, a NUL byte, and a media playlist, written as `s/abr.m3u8` and
//! `s/v/index.m3u8` next to one real segment `s/v/seg.ts`. Loading must never
//! panic; a stream that loads must render its master and a live window.
#![no_main]

use std::path::PathBuf;
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use pseudolive::library::LiveStream;
use pseudolive::loader::load_stream;
use pseudolive::ticks::Ticks;
use pseudolive::probe::{ProbeMode, Prober};

const SEGMENT: &[u8] = include_bytes!("../../fixtures/av25/seg_000.ts");

fn root() -> &'static PathBuf {
    static ROOT: OnceLock<PathBuf> = OnceLock::new();
    ROOT.get_or_init(|| {
        let root = std::env::temp_dir().join(format!("pseudolive-fuzz-{}", std::process::id()));
        std::fs::create_dir_all(root.join("s/v")).unwrap();
        std::fs::write(root.join("s/v/seg.ts"), SEGMENT).unwrap();
        root
    })
}

fuzz_target!(|data: &[u8]| {
    let split = data.iter().position(|&b| b == 0).unwrap_or(data.len());
    let (master, media) = (&data[..split], data.get(split + 1..).unwrap_or(&[]));
    let root = root();
    std::fs::write(root.join("s/abr.m3u8"), master).unwrap();
    std::fs::write(root.join("s/v/index.m3u8"), media).unwrap();
    let prober = Prober { mode: ProbeMode::Native, ffprobe: None };
    if let Ok(loaded) = load_stream(root, "s", &prober) {
        assert!(!loaded.stream.master.is_empty());
        let tracks = loaded.stream.tracks.len();
        let live = LiveStream::new(loaded, 3, Some(Ticks::from_ms(1_800_000_000_000)));
        for i in 0..tracks {
            let p = live.playlist_at(i, Ticks(1_800_000_000_000 * 90 + 12_345_678));
            assert!(p.plain.starts_with(b"#EXTM3U\n"));
        }
    }
});
