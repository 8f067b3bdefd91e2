//! Writing an fMP4 part: per source fragment it takes samples from, a new
//! `moof` and `mdat`.

use super::{Fragment, Sample, Traf, fragments, to_ticks};
use crate::ll::{Cut, LlError, Part, SegmentFrames};
use crate::probe::fmp4::Init;

/// Boxes written into a buffer, their sizes filled in when they close.
struct Writer {
    out: Vec<u8>,
    open: Vec<usize>,
}

impl Writer {
    fn begin(&mut self, kind: &[u8; 4]) {
        self.open.push(self.out.len());
        self.out.extend_from_slice(&[0, 0, 0, 0]);
        self.out.extend_from_slice(kind);
    }

    fn full(&mut self, kind: &[u8; 4], version: u8, flags: u32) {
        self.begin(kind);
        self.u32((u32::from(version) << 24) | (flags & 0x00ff_ffff));
    }

    fn end(&mut self) -> Result<(), LlError> {
        let start = self.open.pop().unwrap_or(0);
        let size = u32::try_from(self.out.len() - start)
            .map_err(|_| LlError::Malformed("a part's box would exceed 4 GiB".into()))?;
        self.out[start..start + 4].copy_from_slice(&size.to_be_bytes());
        Ok(())
    }

    fn u32(&mut self, v: u32) {
        self.out.extend_from_slice(&v.to_be_bytes());
    }
}

/// The samples of one track of one source fragment that go to the part.
struct Taken<'a> {
    traf: &'a Traf,
    samples: &'a [Sample],
}

/// The bytes of `part` as fragments of their own, decodable after the init
/// segment: for each source `moof` the part takes samples from, a new `moof`
/// and an `mdat` of exactly those samples. `segment` must be the bytes
/// [`super::fmp4_frames`] read, with the same `init`.
pub fn fmp4_part(
    init: &Init,
    segment: &[u8],
    frames: &SegmentFrames,
    part: &Part,
) -> Result<Vec<u8>, LlError> {
    let Cut::Fmp4(cut) = &frames.cut else {
        return Err(LlError::Mismatch(
            "not the frames of an fMP4 segment".into(),
        ));
    };
    if segment.len() != cut.len {
        return Err(LlError::Mismatch(format!(
            "the segment has {} bytes, its frames were read from {}",
            segment.len(),
            cut.len
        )));
    }
    let (first, end) = crate::ll::ts::part_range(frames, part)?;
    let n = frames.frames.len();
    // The part's time span since the segment's first lead frame; the first
    // and last parts are open-ended so that every sample has a part.
    let lo = (first > 0).then(|| i128::from(frames.frames[first].at.0));
    let hi = (end < n).then(|| i128::from(frames.frames[end].at.0));
    let zero = to_ticks(cut.first_dts, cut.timescale);
    let timescale = |track: u32| {
        init.tracks
            .iter()
            .find(|t| t.id == track)
            .map(|t| t.timescale)
    };

    let all = fragments(init, segment)?;
    let lead_count: usize = all
        .iter()
        .flat_map(|f| &f.trafs)
        .filter(|t| t.track == cut.lead)
        .map(|t| t.samples.len())
        .sum();
    if lead_count != n {
        return Err(LlError::Mismatch(format!(
            "{lead_count} lead samples, {n} frames"
        )));
    }
    let mut out = Writer {
        out: Vec::new(),
        open: Vec::new(),
    };
    let mut lead_index = 0usize;
    for fragment in &all {
        let mut taken = Vec::new();
        let mut earlier = false;
        for traf in &fragment.trafs {
            let (from, to) = if traf.track == cut.lead {
                let k = lead_index;
                lead_index += traf.samples.len();
                let from = first.clamp(k, lead_index) - k;
                let to = end.clamp(k, lead_index) - k;
                (from, to)
            } else {
                let scale = timescale(traf.track).ok_or_else(|| {
                    LlError::Malformed(format!("track {} is not in the init segment", traf.track))
                })?;
                let rel = |s: &Sample| to_ticks(s.dts, scale) - zero;
                let before = |bound: Option<i128>| {
                    bound.map_or(0, |b| traf.samples.partition_point(|s| rel(s) < b))
                };
                let from = before(lo);
                let to = hi.map_or(traf.samples.len(), |h| {
                    traf.samples.partition_point(|s| rel(s) < h)
                });
                (from, to.max(from))
            };
            earlier |= from > 0;
            if from < to {
                taken.push(Taken {
                    traf,
                    samples: &traf.samples[from..to],
                });
            }
        }
        if taken.is_empty() {
            continue;
        }
        if !earlier {
            for &(a, b) in &fragment.events {
                out.out.extend_from_slice(&segment[a..b]);
            }
        }
        write_fragment(&mut out, fragment, &taken, segment)?;
    }
    Ok(out.out)
}

/// Writes one `moof` and its `mdat`.
fn write_fragment(
    w: &mut Writer,
    fragment: &Fragment,
    taken: &[Taken<'_>],
    segment: &[u8],
) -> Result<(), LlError> {
    let moof_start = w.out.len();
    // Where each traf's data_offset goes, to fill in once the moof's size is known.
    let mut offset_fields = Vec::with_capacity(taken.len());
    w.begin(b"moof");
    w.full(b"mfhd", 0, 0);
    w.u32(fragment.sequence);
    w.end()?;
    for t in taken {
        let traf = t.traf;
        let samples = t.samples;
        w.begin(b"traf");
        let sdi = traf.sample_description_index;
        let flags = 0x02_0000 | 0x08 | 0x10 | 0x20 | if sdi.is_some() { 0x02 } else { 0 };
        w.full(b"tfhd", 0, flags);
        w.u32(traf.track);
        if let Some(sdi) = sdi {
            w.u32(sdi);
        }
        w.u32(traf.default_duration);
        w.u32(traf.default_size);
        w.u32(traf.default_flags);
        w.end()?;
        w.full(b"tfdt", 1, 0);
        w.out.extend_from_slice(&samples[0].dts.to_be_bytes());
        w.end()?;

        let durations = samples.iter().any(|s| s.duration != traf.default_duration);
        let sizes = samples.iter().any(|s| s.size != traf.default_size);
        let per_sample_flags = samples[1..].iter().any(|s| s.flags != traf.default_flags);
        let first_flags = !per_sample_flags && samples[0].flags != traf.default_flags;
        let mut flags = 0x01;
        for (on, bit) in [
            (first_flags, 0x04),
            (durations, 0x100),
            (sizes, 0x200),
            (per_sample_flags, 0x400),
            (traf.cto, 0x800),
        ] {
            if on {
                flags |= bit;
            }
        }
        w.full(b"trun", traf.version, flags);
        w.u32(samples.len() as u32);
        offset_fields.push(w.out.len());
        w.u32(0);
        if first_flags {
            w.u32(samples[0].flags);
        }
        for s in samples {
            for (on, value) in [
                (durations, s.duration),
                (sizes, s.size),
                (per_sample_flags, s.flags),
                (traf.cto, s.cto),
            ] {
                if on {
                    w.u32(value);
                }
            }
        }
        w.end()?;
        w.end()?;
    }
    w.end()?;
    let moof_size = w.out.len() - moof_start;

    w.begin(b"mdat");
    let mut data_offset = moof_size + 8;
    for (t, at) in taken.iter().zip(offset_fields) {
        let offset = i32::try_from(data_offset)
            .map_err(|_| LlError::Malformed("a part's data offset exceeds 2 GiB".into()))?;
        w.out[at..at + 4].copy_from_slice(&offset.to_be_bytes());
        for s in t.samples {
            // In range: checked when the fragment was read.
            let bytes = segment
                .get(s.offset..s.offset + s.size as usize)
                .ok_or_else(|| LlError::Mismatch("sample data outside the segment".into()))?;
            w.out.extend_from_slice(bytes);
            data_offset += bytes.len();
        }
    }
    w.end()
}
