//! Native MPEG-TS timing on arbitrary bytes: never panics, and a timing it
//! returns is on the 33-bit clock.
#![no_main]

use libfuzzer_sys::fuzz_target;
use pseudolive::probe::audio::{adts_samples, mpeg_audio_samples};
use pseudolive::probe::ts::{Depth, scan};

fuzz_target!(|data: &[u8]| {
    if let Ok(t) = scan(data, Depth::Full) {
        assert!(t.start_pts < 1 << 33);
        assert!(t.skipped_bytes <= data.len());
    }
    let _ = scan(data, Depth::Start);
    let _ = adts_samples(data);
    let _ = mpeg_audio_samples(data);
});
