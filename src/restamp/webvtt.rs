//! WebVTT segments in continuous mode: cue times are local to the file, and
//! `X-TIMESTAMP-MAP` ties them to the media's 90 kHz clock (RFC 8216bis
//! 3.1.4; without the header, cue time 0 is media time 0). When the media's
//! timestamps move, the map moves with them: its `MPEGTS` gets the same
//! offset, the cues stay as they are.

use crate::ticks::PTS_WRAP;

/// Why a file cannot be rewritten as WebVTT.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WebVttError {
    /// The file does not start with the `WEBVTT` signature.
    #[error("not a WebVTT file (no WEBVTT signature)")]
    NotWebVtt,
    /// `X-TIMESTAMP-MAP`'s `MPEGTS` value is not a number.
    #[error("X-TIMESTAMP-MAP with an unreadable MPEGTS value")]
    BadMap,
}

/// Whether `buf` starts like a WebVTT file (a UTF-8 byte order mark allowed).
pub fn looks_like_webvtt(buf: &[u8]) -> bool {
    let buf = buf.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(buf);
    buf.starts_with(b"WEBVTT") && matches!(buf.get(6), None | Some(b' ' | b'\t' | b'\n' | b'\r'))
}

/// `text` with its cues mapped `offset_ticks` (90 kHz, mod 2^33) later on the
/// media clock: the header's `X-TIMESTAMP-MAP` `MPEGTS` value moved by that
/// much, or, without the header, one inserted after the signature line
/// that maps cue time 0 to `offset_ticks` (the source mapped it to 0).
/// Everything else is kept byte for byte.
pub fn apply(text: &[u8], offset_ticks: u64) -> Result<Vec<u8>, WebVttError> {
    if !looks_like_webvtt(text) {
        return Err(WebVttError::NotWebVtt);
    }
    let offset = offset_ticks & (PTS_WRAP - 1);
    let mut lines = Lines { text, at: 0 };
    let (first, _) = lines.next().ok_or(WebVttError::NotWebVtt)?;
    let first_end = lines.at;
    // The header ends at the first blank line.
    for (line, start) in lines.by_ref() {
        if line.is_empty() {
            break;
        }
        if let Some(map) = line.strip_prefix(b"X-TIMESTAMP-MAP=") {
            let has_mpegts = map
                .split(|&b| b == b',')
                .any(|pair| pair.trim_ascii_start().starts_with(b"MPEGTS:"));
            if !has_mpegts {
                // Read as MPEGTS 0 (as without a map, and as hls.js reads
                // it): the moved value is the offset, added to the map.
                let end = start + line.len();
                let mut out = Vec::with_capacity(text.len() + 20);
                out.extend_from_slice(&text[..end]);
                out.extend_from_slice(format!(",MPEGTS:{offset}").as_bytes());
                out.extend_from_slice(&text[end..]);
                return Ok(out);
            }
            let (from, to, value) = mpegts_value(map).ok_or(WebVttError::BadMap)?;
            let at = start + b"X-TIMESTAMP-MAP=".len();
            let moved = (value % PTS_WRAP + offset) % PTS_WRAP;
            let mut out = Vec::with_capacity(text.len() + 12);
            out.extend_from_slice(&text[..at + from]);
            out.extend_from_slice(moved.to_string().as_bytes());
            out.extend_from_slice(&text[at + to..]);
            return Ok(out);
        }
    }
    // No map: insert one after the signature line, with its line ending.
    let ending: &[u8] = match &text[first.len()..first_end] {
        b"" => b"\n",
        ending => ending,
    };
    let map = format!("X-TIMESTAMP-MAP=MPEGTS:{offset},LOCAL:00:00:00.000");
    let mut out = Vec::with_capacity(text.len() + map.len() + 2);
    out.extend_from_slice(&text[..first_end]);
    if first_end == text.len() && !text.ends_with(b"\n") && !text.ends_with(b"\r") {
        out.extend_from_slice(ending);
    }
    out.extend_from_slice(map.as_bytes());
    out.extend_from_slice(ending);
    out.extend_from_slice(&text[first_end..]);
    Ok(out)
}

/// The span (in `map`) and value of the `MPEGTS:` digits of a map's
/// comma-separated `KEY:value` pairs.
fn mpegts_value(map: &[u8]) -> Option<(usize, usize, u64)> {
    let mut at = 0;
    for pair in map.split(|&b| b == b',') {
        let key_end = at + pair.iter().take_while(|&&b| b == b' ').count();
        if map[key_end..].starts_with(b"MPEGTS:") {
            let from = key_end + b"MPEGTS:".len();
            let digits = map[from..]
                .iter()
                .take_while(|b| b.is_ascii_digit())
                .count();
            let value = std::str::from_utf8(&map[from..from + digits])
                .ok()?
                .parse::<u64>()
                .ok()?;
            return Some((from, from + digits, value));
        }
        at += pair.len() + 1;
    }
    None
}

/// The lines of a text (`\n`, `\r\n` or `\r` endings), each with the offset
/// it starts at; `at` is where the next one starts.
struct Lines<'a> {
    text: &'a [u8],
    at: usize,
}

impl<'a> Iterator for Lines<'a> {
    type Item = (&'a [u8], usize);

    fn next(&mut self) -> Option<Self::Item> {
        if self.at >= self.text.len() {
            return None;
        }
        let start = self.at;
        let rest = &self.text[start..];
        let len = rest
            .iter()
            .position(|&b| b == b'\n' || b == b'\r')
            .unwrap_or(rest.len());
        let ending = match &rest[len..] {
            [b'\r', b'\n', ..] => 2,
            [] => 0,
            _ => 1,
        };
        self.at = start + len + ending;
        Some((&rest[..len], start))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn apply_str(text: &str, offset: u64) -> String {
        String::from_utf8(apply(text.as_bytes(), offset).unwrap()).unwrap()
    }

    #[test]
    fn an_existing_map_moves_by_the_offset_and_nothing_else_changes() {
        let src = "WEBVTT\nX-TIMESTAMP-MAP=LOCAL:00:00:00.000,MPEGTS:900000\n\n00:00.200 --> 00:01.600\none\n";
        let out = apply_str(src, 180_000);
        assert_eq!(
            out,
            src.replace("MPEGTS:900000", "MPEGTS:1080000"),
            "only the digits change"
        );
    }

    #[test]
    fn the_value_wraps_at_two_to_the_33() {
        let src = "WEBVTT\r\nX-TIMESTAMP-MAP=MPEGTS:8589934000,LOCAL:00:00:00.000\r\n\r\n";
        let out = apply_str(src, 1_000);
        assert!(out.contains("MPEGTS:408,LOCAL"), "{out}");
        // An offset given past 2^33 counts mod 2^33.
        let out = apply_str(src, PTS_WRAP + 1_000);
        assert!(out.contains("MPEGTS:408,LOCAL"), "{out}");
    }

    #[test]
    fn without_a_map_one_is_inserted_mapping_cue_time_zero() {
        let src = "WEBVTT\n\n00:00.222 --> 00:01.622\none\n\n";
        let out = apply_str(src, 1_260_000);
        assert_eq!(
            out,
            "WEBVTT\nX-TIMESTAMP-MAP=MPEGTS:1260000,LOCAL:00:00:00.000\n\n00:00.222 --> 00:01.622\none\n\n"
        );
        // CRLF files get CRLF, a BOM and a signature comment stay.
        let src = "\u{feff}WEBVTT - subs\r\n\r\n00:00.222 --> 00:01.622\r\none\r\n";
        let out = apply_str(src, 5);
        assert!(
            out.starts_with(
                "\u{feff}WEBVTT - subs\r\nX-TIMESTAMP-MAP=MPEGTS:5,LOCAL:00:00:00.000\r\n\r\n00:00.222"
            ),
            "{out:?}"
        );
        // A signature alone.
        assert_eq!(
            apply_str("WEBVTT", 7),
            "WEBVTT\nX-TIMESTAMP-MAP=MPEGTS:7,LOCAL:00:00:00.000\n"
        );
    }

    #[test]
    fn a_map_after_the_header_is_a_cue_text_not_a_map() {
        // The header ends at the first blank line: a later line is cue text.
        let src = "WEBVTT\n\n00:00.000 --> 00:01.000\nX-TIMESTAMP-MAP=MPEGTS:1\n";
        let out = apply_str(src, 10);
        assert!(out.starts_with("WEBVTT\nX-TIMESTAMP-MAP=MPEGTS:10,LOCAL:00:00:00.000\n\n"));
        assert!(out.ends_with("\nX-TIMESTAMP-MAP=MPEGTS:1\n"));
    }

    #[test]
    fn bad_input_is_refused_with_a_reason() {
        assert_eq!(apply(b"", 1), Err(WebVttError::NotWebVtt));
        assert_eq!(apply(b"WEBVTTX\n", 1), Err(WebVttError::NotWebVtt));
        assert_eq!(apply(&[0x47; 188], 1), Err(WebVttError::NotWebVtt));
        assert_eq!(
            apply(
                b"WEBVTT\nX-TIMESTAMP-MAP=MPEGTS:x,LOCAL:00:00:00.000\n\n",
                1
            ),
            Err(WebVttError::BadMap)
        );
        assert_eq!(
            apply(
                b"WEBVTT\nX-TIMESTAMP-MAP=MPEGTS:99999999999999999999999\n",
                1
            ),
            Err(WebVttError::BadMap)
        );
    }

    #[test]
    fn a_map_value_past_two_to_the_33_wraps_without_overflowing() {
        // The largest value u64 parses: moving it must not overflow.
        let src = "WEBVTT\nX-TIMESTAMP-MAP=MPEGTS:18446744073709551615,LOCAL:00:00:00.000\n\n";
        let out = apply_str(src, PTS_WRAP - 1);
        let expected = (u64::MAX % PTS_WRAP + PTS_WRAP - 1) % PTS_WRAP;
        assert!(out.contains(&format!("MPEGTS:{expected},")), "{out}");
    }

    #[test]
    fn maps_as_packagers_write_them_move_only_their_digits() {
        for (src, want) in [
            // MPEGTS first, LOCAL other than 0 (kept: the pair moves).
            (
                "WEBVTT\nX-TIMESTAMP-MAP=MPEGTS:900000,LOCAL:00:00:10.000\n\n",
                "WEBVTT\nX-TIMESTAMP-MAP=MPEGTS:900100,LOCAL:00:00:10.000\n\n",
            ),
            // Spaces after the comma; CR-only line endings.
            (
                "WEBVTT\rX-TIMESTAMP-MAP=LOCAL:00:00:00.000, MPEGTS:5\r\r",
                "WEBVTT\rX-TIMESTAMP-MAP=LOCAL:00:00:00.000, MPEGTS:105\r\r",
            ),
            // No LOCAL; a BOM; other header lines before the map.
            (
                "\u{feff}WEBVTT\r\nRegion: id=r width=40%\r\nX-TIMESTAMP-MAP=MPEGTS:0\r\n\r\nSTYLE\r\n::cue {}\r\n",
                "\u{feff}WEBVTT\r\nRegion: id=r width=40%\r\nX-TIMESTAMP-MAP=MPEGTS:100\r\n\r\nSTYLE\r\n::cue {}\r\n",
            ),
        ] {
            assert_eq!(apply_str(src, 100), want);
        }
        // A STYLE block after the header gets a map inserted in the header.
        let out = apply_str("WEBVTT\n\nSTYLE\n::cue {}\n", 3);
        assert_eq!(
            out,
            "WEBVTT\nX-TIMESTAMP-MAP=MPEGTS:3,LOCAL:00:00:00.000\n\nSTYLE\n::cue {}\n"
        );
    }

    #[test]
    fn a_map_without_mpegts_is_read_as_mpegts_zero() {
        // Served as it is, a player reads it as MPEGTS 0: moved, it maps
        // LOCAL to the offset instead of failing the request.
        assert_eq!(
            apply_str("WEBVTT\r\nX-TIMESTAMP-MAP=LOCAL:00:00:01.000\r\n\r\n", 7),
            "WEBVTT\r\nX-TIMESTAMP-MAP=LOCAL:00:00:01.000,MPEGTS:7\r\n\r\n"
        );
    }
}
