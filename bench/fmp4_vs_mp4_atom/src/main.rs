//! Side-by-side evaluation: mp4-atom 0.17 against pseudolive's own fMP4
//! reader. Arguments: pairs of init segment and media segment. For each
//! pair: both timings (timescale, first tfdt, sum of sample durations) and
//! the time per call; then 400 000 randomly edited or truncated copies of
//! the pairs through both, counting panics.
//!
//! ```sh
//! cd bench/fmp4_vs_mp4_atom && cargo run --release -- \
//!   ../../fixtures/fmp4_avc/{init.mp4,seg_001.m4s} ../../fixtures/fmp4_hevc_ac3/{init.mp4,seg_002.m4s} \
//!   ../../fixtures/cmaf_shaka/video/{init.mp4,seg_002.m4s} ../../fixtures/cmaf_shaka/audio/{init.mp4,seg_003.m4s}
//! ```
#[path = "../../../src/probe/fmp4.rs"]
#[allow(dead_code)]
mod fmp4;

use mp4_atom::{Atom, DecodeAtom, DecodeMaybe, Header, Moof, Moov};
use std::hint::black_box;
use std::time::Instant;

fn atom_init(init: &[u8]) -> Result<(u32, u32, u32), String> {
    let mut buf = init;
    while let Some(h) = Header::decode_maybe(&mut buf).map_err(|e| e.to_string())? {
        let size = h.size.unwrap_or(buf.len());
        if size > buf.len() {
            return Err("short".into());
        }
        let (body, rest) = buf.split_at(size);
        if h.kind == Moov::KIND {
            let mut b = body;
            let moov = Moov::decode_atom(&h, &mut b).map_err(|e| e.to_string())?;
            let trak = moov
                .trak
                .iter()
                .find(|t| t.mdia.hdlr.handler == b"vide".into())
                .or_else(|| {
                    moov.trak
                        .iter()
                        .find(|t| t.mdia.hdlr.handler == b"soun".into())
                })
                .ok_or("no track")?;
            let id = trak.tkhd.track_id;
            let def = moov
                .mvex
                .as_ref()
                .and_then(|m| m.trex.iter().find(|t| t.track_id == id))
                .map_or(0, |t| t.default_sample_duration);
            return Ok((id, trak.mdia.mdhd.timescale, def));
        }
        buf = rest;
    }
    Err("no moov".into())
}

fn atom_seg(seg: &[u8], id: u32, trex_def: u32) -> Result<(u64, u64), String> {
    let mut buf = seg;
    let mut start = None;
    let mut dur = 0u64;
    while let Some(h) = Header::decode_maybe(&mut buf).map_err(|e| e.to_string())? {
        let size = h.size.unwrap_or(buf.len());
        if size > buf.len() {
            return Err("short".into());
        }
        let (body, rest) = buf.split_at(size);
        if h.kind == Moof::KIND {
            let mut b = body;
            let moof = Moof::decode_atom(&h, &mut b).map_err(|e| e.to_string())?;
            for traf in moof.traf.iter().filter(|t| t.tfhd.track_id == id) {
                if start.is_none() {
                    start = traf.tfdt.as_ref().map(|t| t.base_media_decode_time);
                }
                let def = traf.tfhd.default_sample_duration.unwrap_or(trex_def);
                for trun in &traf.trun {
                    for e in trun.samples.iter() {
                        dur += u64::from(e.duration.unwrap_or(def));
                    }
                }
            }
        }
        buf = rest;
    }
    Ok((start.ok_or("no tfdt")?, dur))
}

fn atom_timing(init: &[u8], seg: &[u8]) -> Result<(u32, u64, u64), String> {
    let (id, ts, def) = atom_init(init)?;
    let (s, d) = atom_seg(seg, id, def)?;
    Ok((ts, s, d))
}

fn own_timing(init: &[u8], seg: &[u8]) -> Result<(u32, u64, u64), String> {
    let t = fmp4::timing(Some(init), seg).map_err(|e| e.to_string())?;
    Ok((t.timescale, t.start_units.unwrap_or(0), t.duration_units))
}

fn per_call(n: u32, mut f: impl FnMut()) -> f64 {
    let t = Instant::now();
    for _ in 0..n {
        f();
    }
    t.elapsed().as_secs_f64() / f64::from(n)
}

fn main() {
    // args: init seg [init seg ...]
    let args: Vec<String> = std::env::args().skip(1).collect();
    let pairs: Vec<(String, Vec<u8>, Vec<u8>)> = args
        .chunks(2)
        .map(|c| {
            (
                c[1].clone(),
                std::fs::read(&c[0]).unwrap(),
                std::fs::read(&c[1]).unwrap(),
            )
        })
        .collect();
    println!("== correctness");
    for (name, init, seg) in &pairs {
        let a = atom_timing(init, seg);
        let o = own_timing(init, seg);
        println!(
            "{name}: mp4-atom {a:?} own {o:?} {}",
            if a == o { "same" } else { "DIFFER" }
        );
    }
    println!("== throughput (init + segment, timing of one segment)");
    for (name, init, seg) in &pairs {
        let n = 20_000;
        let ta = per_call(n, || {
            black_box(atom_timing(black_box(init), black_box(seg)).ok());
        });
        let to = per_call(n, || {
            black_box(own_timing(black_box(init), black_box(seg)).ok());
        });
        let bytes = (init.len() + seg.len()) as f64;
        println!(
            "{name} ({} B): mp4-atom {:.2} µs ({:.1} GiB/s), own {:.2} µs ({:.1} GiB/s), own/mp4-atom speed {:.1}x",
            init.len() + seg.len(),
            ta * 1e6,
            bytes / ta / 1073741824.0,
            to * 1e6,
            bytes / to / 1073741824.0,
            ta / to
        );
    }
    println!("== robustness (random byte edits + truncation, catch_unwind)");
    std::panic::set_hook(Box::new(|_| {}));
    let mut x: u64 = 0x9e3779b97f4a7c15;
    let mut rnd = || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let (mut runs, mut pa, mut po, mut oka, mut oko) = (0u64, 0u64, 0u64, 0u64, 0u64);
    for round in 0..400_000usize {
        let (_, init, seg) = &pairs[round % pairs.len()];
        let (mut i, mut s) = (init.clone(), seg.clone());
        for _ in 0..(1 + rnd() % 8) {
            let t = if rnd() % 2 == 0 { &mut i } else { &mut s };
            let lim = if rnd() % 3 == 0 {
                t.len()
            } else {
                t.len().min(800)
            };
            let at = (rnd() as usize) % lim;
            t[at] = rnd() as u8;
        }
        if rnd() % 4 == 0 {
            let t = if rnd() % 2 == 0 { &mut i } else { &mut s };
            let l = (rnd() as usize) % (t.len() + 1);
            t.truncate(l);
        }
        runs += 1;
        match std::panic::catch_unwind(|| atom_timing(&i, &s)) {
            Err(_) => pa += 1,
            Ok(Ok(_)) => oka += 1,
            _ => {}
        }
        match std::panic::catch_unwind(|| own_timing(&i, &s)) {
            Err(_) => po += 1,
            Ok(Ok(_)) => oko += 1,
            _ => {}
        }
    }
    println!(
        "{runs} mutated inputs: mp4-atom {pa} panics ({oka} still timed), own {po} panics ({oko} still timed)"
    );
}
