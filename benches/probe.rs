//! Segment measurement: native (from memory, from disk, a 1000-segment
//! playlist) side by side with the ffprobe fallback on the same file, and
//! the fMP4 reader beside the MPEG-TS reader on fixtures of the same content.

use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::time::Instant;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use pseudolive::probe::ts::{Depth, scan};
use pseudolive::probe::{
    InitSection, ProbeMode, Prober, SegmentInput, ffprobe, fmp4, scan_file, scan_segment,
};

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

fn fixture(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures")
        .join(path)
}

/// The fMP4 reader beside the MPEG-TS reader: `fixtures/av25/seg_001.ts` and
/// `fixtures/fmp4_avc/seg_001.m4s` hold 2 s of the same test picture and tone,
/// encoded alike (192×108 H.264 at 150 kbit/s, AAC), in the two containers.
fn fmp4_beside_ts(c: &mut Criterion) {
    let ts_path = fixture("av25/seg_001.ts");
    let (init_path, seg_path) = (
        fixture("fmp4_avc/init.mp4"),
        fixture("fmp4_avc/seg_001.m4s"),
    );
    let ts_bytes = std::fs::read(&ts_path).expect("fixtures (made by fixtures/make.sh)");
    let init = std::fs::read(&init_path).unwrap();
    let seg = std::fs::read(&seg_path).unwrap();
    let ts_input = SegmentInput {
        path: ts_path,
        ..SegmentInput::default()
    };
    let fmp4_input = SegmentInput {
        path: seg_path,
        init: Some(InitSection {
            path: init_path,
            byte_range: None,
        }),
        ..SegmentInput::default()
    };
    let mut g = c.benchmark_group("fmp4 beside ts");
    g.throughput(Throughput::Bytes(ts_bytes.len() as u64));
    g.bench_function("ts full scan, from memory", |b| {
        b.iter(|| scan(black_box(&ts_bytes), Depth::Full).unwrap())
    });
    g.bench_function("ts full scan, from disk", |b| {
        b.iter(|| scan_segment(black_box(&ts_input), None, Depth::Full).unwrap())
    });
    g.throughput(Throughput::Bytes((init.len() + seg.len()) as u64));
    g.bench_function("fmp4 init + segment, from memory", |b| {
        b.iter(|| fmp4::timing(Some(black_box(&init)), black_box(&seg)).unwrap())
    });
    g.throughput(Throughput::Bytes(seg.len() as u64));
    g.bench_function("fmp4 segment (init in memory), from disk", |b| {
        b.iter(|| scan_segment(black_box(&fmp4_input), Some(&init), Depth::Full).unwrap())
    });
    g.finish();

    // Side by side in one run, alternating (not in `cargo test`'s quick pass).
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    let per_call = |runs: u32, f: &dyn Fn()| {
        let t = Instant::now();
        for _ in 0..runs {
            f();
        }
        t.elapsed().as_secs_f64() / f64::from(runs)
    };
    let (mut ts_mem, mut mp4_mem, mut ts_disk, mut mp4_disk) = (vec![], vec![], vec![], vec![]);
    for _ in 0..5 {
        ts_mem.push(per_call(20_000, &|| {
            black_box(scan(black_box(&ts_bytes), Depth::Full).unwrap());
        }));
        mp4_mem.push(per_call(20_000, &|| {
            black_box(fmp4::timing(Some(black_box(&init)), black_box(&seg)).unwrap());
        }));
        ts_disk.push(per_call(5_000, &|| {
            black_box(scan_segment(&ts_input, None, Depth::Full).unwrap());
        }));
        mp4_disk.push(per_call(5_000, &|| {
            black_box(scan_segment(&fmp4_input, Some(&init), Depth::Full).unwrap());
        }));
    }
    let median = |v: &mut Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let (tm, fm) = (median(&mut ts_mem), median(&mut mp4_mem));
    let (td, fd) = (median(&mut ts_disk), median(&mut mp4_disk));
    println!(
        "per segment, from memory: ts {:.2} µs, fmp4 {:.2} µs, ratio ts/fmp4 {:.1}x; \
         from disk: ts {:.2} µs, fmp4 {:.2} µs, ratio {:.1}x",
        tm * 1e6,
        fm * 1e6,
        tm / fm,
        td * 1e6,
        fd * 1e6,
        td / fd
    );
}

criterion_group!(benches, native, playlist, versus_ffprobe, fmp4_beside_ts);
criterion_main!(benches);
