//! Continuous-mode restamping on the request path: a copy of the cached
//! segment plus the in-place patch, side by side with the plain copy of the
//! same bytes (what serving the segment unchanged costs at least).

use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::time::Instant;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use pseudolive::restamp::BASE_TICKS;
use pseudolive::restamp::ts::{PlanSegment, TsRestampPlan, TsShift, apply};

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

/// The shift of that segment in loop 37 (a CC delta on every PID), as the
/// first segment of a run (`trim`: its leading audio cut where its own
/// audio ends, as in a one-segment loop) or not.
fn shift(bytes: &[u8], trim: bool) -> TsShift {
    let segments = [PlanSegment {
        starts_run: trim,
        duration_ticks: 180_000,
    }];
    let (plan, _) = TsRestampPlan::build(&segments, BASE_TICKS, |_| Ok::<_, ()>(bytes)).unwrap();
    plan.for_segment(37, 37 * 180_000)
}

fn copy_into(dst: &mut Vec<u8>, src: &[u8]) {
    dst.clear();
    dst.extend_from_slice(src);
}

/// `RESTAMP_LOOP=N` (or `N,copy`): copy the segment and restamp it N times
/// (or only copy it), then exit; for counting instructions with
/// `valgrind --tool=cachegrind`, which does not depend on the machine's load.
fn instruction_loop(bytes: &[u8], plain: &TsShift) -> bool {
    let Ok(spec) = std::env::var("RESTAMP_LOOP") else {
        return false;
    };
    let (n, copy_only) = match spec.split_once(',') {
        Some((n, what)) => (n.parse().unwrap_or(0), what == "copy"),
        None => (spec.parse().unwrap_or(0), false),
    };
    let mut out = bytes.to_vec();
    for _ in 0..n {
        copy_into(&mut out, black_box(bytes));
        if !copy_only {
            black_box(apply(&mut out, black_box(plain)));
        }
    }
    black_box(&out);
    true
}

fn ts(c: &mut Criterion) {
    let path = segment();
    let bytes = std::fs::read(&path).unwrap();
    let plain = shift(&bytes, false);
    if instruction_loop(&bytes, &plain) {
        return;
    }
    let trimmed = shift(&bytes, true);
    assert!(!plain.cc_deltas.is_empty() && plain.pts_offset_ticks != 0);
    assert!(
        trimmed
            .lead
            .as_ref()
            .is_some_and(|l| l.replaced_packets() > 0)
    );
    let mut out = Vec::with_capacity(bytes.len());

    let mut g = c.benchmark_group("restamp_ts");
    g.throughput(Throughput::Bytes(bytes.len() as u64));
    g.bench_function("memcpy", |b| {
        b.iter(|| {
            copy_into(&mut out, black_box(&bytes));
            black_box(&out);
        })
    });
    g.bench_function("memcpy + restamp", |b| {
        b.iter(|| {
            copy_into(&mut out, black_box(&bytes));
            black_box(apply(&mut out, black_box(&plain)));
        })
    });
    g.bench_function("memcpy + restamp, run start (lead splice)", |b| {
        b.iter(|| {
            copy_into(&mut out, black_box(&bytes));
            black_box(apply(&mut out, black_box(&trimmed)));
        })
    });
    g.bench_function("restamp in place", |b| {
        b.iter(|| black_box(apply(black_box(&mut out), black_box(&plain))))
    });
    g.finish();

    // Side by side in one run, alternating: the ratio to a plain copy.
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    let (mut copy_s, mut restamp_s) = (0.0, 0.0);
    let runs = 2000;
    for _ in 0..10 {
        let t = Instant::now();
        for _ in 0..runs {
            copy_into(&mut out, black_box(&bytes));
            black_box(&out);
        }
        copy_s += t.elapsed().as_secs_f64();
        let t = Instant::now();
        for _ in 0..runs {
            copy_into(&mut out, black_box(&bytes));
            black_box(apply(&mut out, &plain));
        }
        restamp_s += t.elapsed().as_secs_f64();
    }
    let n = (10 * runs) as f64;
    let gbps = |s: f64| bytes.len() as f64 * n / s / 1e9;
    println!(
        "per segment ({}, {} bytes): memcpy {:.2} µs ({:.2} GB/s), memcpy + restamp {:.2} µs ({:.2} GB/s), ratio {:.2}x",
        path.display(),
        bytes.len(),
        copy_s / n * 1e6,
        gbps(copy_s),
        restamp_s / n * 1e6,
        gbps(restamp_s),
        restamp_s / copy_s
    );
}

criterion_group!(benches, ts);
criterion_main!(benches);
