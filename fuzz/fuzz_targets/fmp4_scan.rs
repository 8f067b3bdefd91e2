//! Native fMP4 timing on arbitrary bytes: never panics, and a timing it
//! returns has a timescale and at least one fragment. The first byte splits
//! the rest into an init segment and a media segment; the whole input is
//! also read as a single file holding both.
#![no_main]

use libfuzzer_sys::fuzz_target;
use pseudolive::probe::fmp4::{looks_like_mp4, parse_init, scan, timing};

fuzz_target!(|data: &[u8]| {
    let Some((&split, rest)) = data.split_first() else {
        return;
    };
    let at = (usize::from(split) * 16).min(rest.len());
    let (init, media) = rest.split_at(at);
    if let Ok(t) = timing(Some(init), media) {
        assert!(t.timescale > 0 && t.fragments > 0);
    }
    if let Ok(init) = parse_init(rest) {
        assert!(init.reference().is_some());
        let _ = scan(&init, rest);
    }
    let _ = looks_like_mp4(rest);
});
