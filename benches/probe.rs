//! Segment measurement: native (from memory, from disk, a 1000-segment
//! playlist) side by side with the ffprobe fallback on the same file.

use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::time::Instant;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use pseudolive::probe::ts::{Depth, scan};
use pseudolive::probe::{ProbeMode, Prober, SegmentInput, ffprobe, scan_file};

/// The largest segment of the demo stream.
fn segment() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("static/demo/high");
    std::fs::read_dir(&dir)
        .expect("static/demo/high (made by scripts/make-demo.sh)")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "ts"))
        .max_by_key(|p| std::fs::metadata(p).map(|m| m.len()).unwrap_or(0))
        .expect("a .ts segment")
}

fn native(c: &mut Criterion) {
    let path = segment();
    let bytes = std::fs::read(&path).unwrap();
    let mut g = c.benchmark_group("native");
    g.throughput(Throughput::Bytes(bytes.len() as u64));
    g.bench_function("full scan, from memory", |b| {
        b.iter(|| scan(black_box(&bytes), Depth::Full).unwrap())
    });
    g.bench_function("full scan, from disk", |b| {
        b.iter(|| scan_file(black_box(&path), Depth::Full).unwrap())
    });
    g.bench_function("start only, from disk", |b| {
        b.iter(|| scan_file(black_box(&path), Depth::Start).unwrap())
    });
    g.finish();
}

/// A playlist of 1000 hard links to the demo's segments.
fn thousand_segments() -> Vec<SegmentInput> {
    let dir = std::env::temp_dir().join(format!("pseudolive-bench-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let src: Vec<PathBuf> = {
        let d = Path::new(env!("CARGO_MANIFEST_DIR")).join("static/demo/mid");
        let mut v: Vec<PathBuf> = std::fs::read_dir(d)
            .unwrap()
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|e| e == "ts"))
            .collect();
        v.sort();
        v
    };
    (0..1000)
        .map(|i| {
            let path = dir.join(format!("seg_{i:04}.ts"));
            let from = &src[i % src.len()];
            if std::fs::hard_link(from, &path).is_err() {
                std::fs::copy(from, &path).unwrap();
            }
            SegmentInput {
                path,
                extinf_ticks: 180_000,
                discontinuity: i % src.len() == 0 && i > 0,
                ..SegmentInput::default()
            }
        })
        .collect()
}

fn playlist(c: &mut Criterion) {
    let inputs = thousand_segments();
    let prober = Prober {
        mode: ProbeMode::Native,
        ffprobe: None,
    };
    let mut g = c.benchmark_group("playlist");
    g.sample_size(10);
    g.bench_function("1000 segments, native, all cores", |b| {
        b.iter(|| prober.measure_playlist(black_box(&inputs)))
    });
    g.finish();
}

fn versus_ffprobe(c: &mut Criterion) {
    let Some(ffprobe) = ffprobe::locate(None) else {
        eprintln!("ffprobe not found: skipping the ffprobe comparison");
        return;
    };
    let path = segment();
    let mut g = c.benchmark_group("ffprobe");
    g.sample_size(10);
    g.bench_function("fallback, same file", |b| {
        b.iter(|| ffprobe::measure(&ffprobe, black_box(&path)).unwrap())
    });
    g.finish();

    // Side by side in one run: the per-segment ratio (not in `cargo test`'s quick pass).
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    let runs = 20;
    let t = Instant::now();
    for _ in 0..runs {
        black_box(ffprobe::measure(&ffprobe, &path).unwrap());
    }
    let ffprobe_s = t.elapsed().as_secs_f64() / runs as f64;
    let runs = 2000;
    let t = Instant::now();
    for _ in 0..runs {
        black_box(scan_file(&path, Depth::Full).unwrap());
    }
    let native_s = t.elapsed().as_secs_f64() / runs as f64;
    println!(
        "per segment ({}): native full scan from disk {:.1} µs, ffprobe {:.1} ms, ratio {:.0}x",
        path.display(),
        native_s * 1e6,
        ffprobe_s * 1e3,
        ffprobe_s / native_s
    );
}

criterion_group!(benches, native, playlist, versus_ffprobe);
criterion_main!(benches);
