//! Live playlists: rendering one window, the cached path, and building a
//! 10 000-segment stream's schedule.

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use pseudolive::library::LiveStream;
use pseudolive::model::Stream;
use pseudolive::playlist::{MediaRequest, render_media};
use pseudolive::ticks::Ticks;
use pseudolive::urls::MediaForm;

const S: u64 = 90_000;
const T0: u64 = 1_800_000_000_000 * 90;

fn stream(n: usize) -> Stream {
    let durations: Vec<u64> = (0..n as u64).map(|i| 2 * S + (i % 7) * 900).collect();
    let mut disc = vec![false; n];
    disc[n / 2] = true;
    Stream::from_durations(
        "bench",
        &[
            ("low", durations.clone()),
            ("mid", durations.clone()),
            ("high", durations),
        ],
        &disc,
    )
}

fn bench(c: &mut Criterion) {
    let mut g = c.benchmark_group("playlist");
    g.bench_function("build 10000-segment stream", |b| {
        b.iter(|| stream(black_box(10_000)))
    });
    let live = LiveStream::from_stream(stream(10_000), 6, Some(Ticks(T0)));
    let window = live.window(Ticks(T0), Ticks(T0 + 5000 * S), live.default_rule);
    let req = MediaRequest {
        stream: &live.stream,
        track: &live.stream.tracks[1],
        window,
        anchor_unix: Ticks(T0),
        form: MediaForm::Root,
        numbered: false,
        ll: None,
    };
    g.bench_function("render one window (6 segments)", |b| {
        b.iter(|| render_media(black_box(&req)))
    });
    let now = T0 + 5000 * S;
    live.playlist_at(1, Ticks(now));
    g.bench_function("cached window (Bytes clone)", |b| {
        b.iter(|| live.playlist_at(1, Ticks(black_box(now))))
    });
    let mut t = T0;
    g.bench_function("uncached: window moves every call", |b| {
        b.iter(|| {
            t += 3 * S;
            live.playlist_at(1, Ticks(black_box(t)))
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
