//! Reading segments from disk for the native readers: whole files or
//! `EXT-X-BYTERANGE` sub-ranges, the container sniffed from the bytes
//! (MPEG-TS sync byte or an ISO BMFF box), init sections (`EXT-X-MAP`) put
//! in front. MPEG-TS is read from the head only when that is enough; of an
//! fMP4 segment only the boxes that carry timing are read (`mdat` is
//! skipped with a seek). Memory per segment stays under [`MAX_SEGMENT_BYTES`].

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::Path;

use super::fmp4::{self, Fmp4Timing};
use super::ts::{self, Depth, TsTiming};
use super::{ByteRange, SegmentInput};

/// Bytes read from the head of a segment to find its first PTS.
pub const HEAD_BYTES: u64 = 64 * 1024;

/// Bytes read first from a file named like fMP4: enough for the first
/// fragment header of most segments.
const SNIFF_BYTES: u64 = 4 * 1024;

/// Largest segment read whole to time it (a 10 s segment at 80 Mbit/s is
/// 100 MB), and largest init section.
pub const MAX_SEGMENT_BYTES: u64 = 256 << 20;

/// Native timing of one segment, by container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Timing {
    /// MPEG-TS, on the 33-bit 90 kHz PTS clock.
    Ts(TsTiming),
    /// fMP4/CMAF, on the reference track's timescale.
    Fmp4(Fmp4Timing),
}

/// An open file limited to a byte range of it.
struct RangeReader {
    file: File,
    /// Offset of the range in the file.
    start: u64,
    /// Length of the range.
    len: u64,
    /// Position of the file, relative to the range.
    cursor: u64,
}

fn read_err(e: std::io::Error) -> String {
    format!("cannot read: {e}")
}

impl RangeReader {
    fn open(path: &Path, range: Option<ByteRange>) -> Result<Self, String> {
        let file = File::open(path).map_err(read_err)?;
        let file_len = file.metadata().map_err(read_err)?.len();
        let (start, len) = match range {
            None => (0, file_len),
            Some(r) => {
                let end = r.offset.checked_add(r.length);
                if end.is_none_or(|end| end > file_len) {
                    return Err(format!(
                        "byte range {}@{} ends past the end of the file ({file_len} bytes)",
                        r.length, r.offset
                    ));
                }
                (r.offset, r.length)
            }
        };
        let mut r = RangeReader {
            file,
            start,
            len,
            cursor: 0,
        };
        if start > 0 {
            r.file.seek(SeekFrom::Start(start)).map_err(read_err)?;
        }
        Ok(r)
    }

    /// Up to `max` bytes from `pos` (relative to the range) to its end.
    fn read(&mut self, pos: u64, max: u64) -> Result<Vec<u8>, String> {
        let mut buf = Vec::new();
        self.read_into(&mut buf, pos, max)?;
        Ok(buf)
    }

    /// [`RangeReader::read`], appending to `buf`.
    fn read_into(&mut self, buf: &mut Vec<u8>, pos: u64, max: u64) -> Result<(), String> {
        let n = max.min(self.len.saturating_sub(pos));
        if pos != self.cursor {
            self.file
                .seek(SeekFrom::Start(self.start + pos))
                .map_err(read_err)?;
        }
        buf.reserve_exact(n as usize);
        let got = (&mut self.file)
            .take(n)
            .read_to_end(buf)
            .map_err(read_err)?;
        self.cursor = pos + got as u64;
        Ok(())
    }
}

/// The bytes of an init section (`EXT-X-MAP`): its file or sub-range.
pub fn read_init(path: &Path, range: Option<ByteRange>) -> Result<Vec<u8>, String> {
    let mut r = RangeReader::open(path, range)?;
    if r.len > MAX_SEGMENT_BYTES {
        return Err(format!(
            "{} bytes: too large for an init section (limit {} MiB)",
            r.len,
            MAX_SEGMENT_BYTES >> 20
        ));
    }
    r.read(0, r.len)
}

/// The bytes of a segment (its sub-range), with `init` in front: what ffprobe
/// reads in the fallback.
pub fn read_segment(seg: &SegmentInput, init: Option<&[u8]>) -> Result<Vec<u8>, String> {
    let mut r = RangeReader::open(&seg.path, seg.byte_range)?;
    let total = r.len + init.map_or(0, |i| i.len() as u64);
    if total > MAX_SEGMENT_BYTES {
        return Err(format!(
            "{total} bytes: too large to read whole (limit {} MiB)",
            MAX_SEGMENT_BYTES >> 20
        ));
    }
    let mut out = init.map(<[u8]>::to_vec).unwrap_or_default();
    out.extend(r.read(0, r.len)?);
    Ok(out)
}

/// Native timing of one segment. `init` is the content of its `EXT-X-MAP`:
/// for fMP4 the init segment; for MPEG-TS, PAT and PMT put in front.
/// A [`Depth::Start`] scan of MPEG-TS reads only the head when it holds a
/// timestamp of the reference stream; fMP4 is always read in full (without
/// its `mdat`), since its fragment headers are small.
pub fn scan_segment(
    seg: &SegmentInput,
    init: Option<&[u8]>,
    depth: Depth,
) -> Result<Timing, String> {
    if let Some(key) = &seg.aes128 {
        // Encrypted: the whole segment, decrypted, then timed from memory.
        let clear = key.decrypt(&read_segment(seg, None)?);
        if fmp4::looks_like_mp4(&clear) {
            return fmp4::timing(init, &clear)
                .map(Timing::Fmp4)
                .map_err(|e| e.to_string());
        }
        let ts_init = init.filter(|i| i.first() == Some(&0x47)).unwrap_or(&[]);
        return ts::scan(&[ts_init, &clear].concat(), depth)
            .map(Timing::Ts)
            .map_err(|e| format!("after AES-128 decryption: {e}"));
    }
    let mut r = RangeReader::open(&seg.path, seg.byte_range)?;
    // The bytes decide the container. The name only sizes the first read:
    // fMP4 needs its box headers, not the head of its `mdat`; MPEG-TS its
    // head in one read.
    let first = if looks_like_mp4_name(&seg.path) {
        SNIFF_BYTES
    } else {
        HEAD_BYTES
    };
    let mut head = Vec::with_capacity(HEAD_BYTES.min(r.len) as usize);
    r.read_into(&mut head, 0, first)?;
    if fmp4::looks_like_mp4(&head) {
        let boxes = timing_boxes(&mut r, head)?;
        return fmp4::timing(init, &boxes)
            .map(Timing::Fmp4)
            .map_err(|e| e.to_string());
    }
    let ts_init = init.filter(|i| i.first() == Some(&0x47)).unwrap_or(&[]);
    let scan = |bytes: &[u8]| {
        let timing = if ts_init.is_empty() {
            ts::scan(bytes, depth)
        } else {
            ts::scan(&[ts_init, bytes].concat(), depth)
        };
        timing.map(Timing::Ts).map_err(|e| e.to_string())
    };
    let sniffed = head.len() as u64;
    r.read_into(&mut head, sniffed, HEAD_BYTES - sniffed)?;
    let head_len = head.len() as u64;
    if head_len >= r.len {
        return scan(&head);
    }
    if depth == Depth::Start
        && let Ok(t) = scan(&head)
    {
        return Ok(t);
    }
    if r.len > MAX_SEGMENT_BYTES {
        return Err(format!(
            "{} bytes: too large to read whole (limit {} MiB), and its first {} KiB hold no timestamps",
            r.len,
            MAX_SEGMENT_BYTES >> 20,
            HEAD_BYTES >> 10
        ));
    }
    let mut all = head;
    r.read_into(&mut all, head_len, r.len - head_len)?;
    scan(&all)
}

/// Whether a file name ends like an ISO BMFF one (`.mp4`, `.m4s`, `.cmfv`…).
fn looks_like_mp4_name(path: &Path) -> bool {
    let ext = path.extension().and_then(|e| e.to_str()).unwrap_or("");
    [
        "mp4", "m4s", "m4a", "m4v", "cmfv", "cmfa", "cmft", "cmf", "mp4a", "mp4v",
    ]
    .iter()
    .any(|e| ext.eq_ignore_ascii_case(e))
}

/// The top-level boxes of an ISO BMFF range that carry timing
/// ([`fmp4::NEEDED_BOXES`]), one after another; every other box is skipped
/// with a seek. Box headers are read through a window of [`SNIFF_BYTES`],
/// so a file of many tiny boxes costs one read per window, not per box. A
/// box header that makes no sense is kept as it is, so that the reader
/// reports it.
fn timing_boxes(r: &mut RangeReader, head: Vec<u8>) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    // Bytes of the range from `window_pos` on.
    let (mut window, mut window_pos) = (head, 0u64);
    let mut pos: u64 = 0;
    while pos + 8 <= r.len {
        let range_len = r.len;
        // Bytes `pos..pos + n` (to the end of the range at most), when the window holds them.
        let in_window = |window: &[u8], window_pos: u64, n: u64| {
            let end = pos.saturating_add(n).min(range_len);
            let from = usize::try_from(pos.checked_sub(window_pos)?).ok()?;
            let to = usize::try_from(end - window_pos).ok()?;
            window.get(from..to).map(<[u8]>::to_vec)
        };
        let header = match in_window(&window, window_pos, 16) {
            Some(h) => h,
            None => {
                window = r.read(pos, SNIFF_BYTES)?;
                window_pos = pos;
                window[..window.len().min(16)].to_vec()
            }
        };
        let (Some(size), Some(kind)) = (header.get(..4), header.get(4..8)) else {
            break;
        };
        let size = u64::from(u32::from_be_bytes([size[0], size[1], size[2], size[3]]));
        let size = match size {
            0 => r.len - pos,
            1 => match header.get(8..16) {
                Some(b) => u64::from_be_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]]),
                None => 0,
            },
            n => n,
        };
        if size < 8 {
            out.extend_from_slice(&header);
            break;
        }
        if fmp4::NEEDED_BOXES.iter().any(|k| k[..] == *kind) {
            if out.len() as u64 + size.min(r.len - pos) > MAX_SEGMENT_BYTES {
                return Err(format!(
                    "its '{}' boxes exceed {} MiB",
                    String::from_utf8_lossy(kind),
                    MAX_SEGMENT_BYTES >> 20
                ));
            }
            match in_window(&window, window_pos, size) {
                Some(b) => out.extend(b),
                None => r.read_into(&mut out, pos, size)?,
            }
        }
        pos = pos.saturating_add(size);
    }
    Ok(out)
}

/// Native timing of an MPEG-TS file. A [`Depth::Start`] scan reads only
/// the head, and the whole file when the head is not enough. Files over
/// [`MAX_SEGMENT_BYTES`] are not read whole: memory and time stay bounded.
pub fn scan_file(path: &Path, depth: Depth) -> Result<TsTiming, String> {
    let seg = SegmentInput {
        path: path.to_path_buf(),
        ..SegmentInput::default()
    };
    match scan_segment(&seg, None, depth)? {
        Timing::Ts(t) => Ok(t),
        Timing::Fmp4(_) => Err("an fMP4 segment, not MPEG-TS".into()),
    }
}

#[cfg(test)]
#[path = "tests/native.rs"]
mod tests;
