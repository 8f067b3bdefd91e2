//! Audio frame counting, for where the last frame of a segment ends: ADTS
//! (AAC), MPEG-1/2 audio (MP2, MP3) and AC-3/E-AC-3 frame headers. Pure,
//! over `&[u8]`.

/// One audio frame's header, read at the start of a buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AudioFrame {
    /// Bytes in the frame, header included.
    pub len: usize,
    /// Samples it decodes to (0 for an E-AC-3 dependent substream, which adds no time).
    pub samples: u64,
    /// Sample rate in Hz.
    pub rate: u64,
}

/// Sums the complete frames at the start of `data`, read by `frame`:
/// `(samples, sample_rate of the last frame with samples)`.
fn count(data: &[u8], frame: fn(&[u8]) -> Option<AudioFrame>) -> Option<(u64, u64)> {
    let mut pos = 0;
    let mut samples = 0;
    let mut rate = None;
    while let Some(f) = data.get(pos..).and_then(frame) {
        if f.samples > 0 {
            rate = Some(f.rate);
            samples += f.samples;
        }
        pos += f.len;
    }
    rate.map(|r| (samples, r))
}

/// The ADTS frame at the start of `data`, when its header and all its bytes are there.
pub fn adts_frame(data: &[u8]) -> Option<AudioFrame> {
    const RATES: [u64; 13] = [
        96000, 88200, 64000, 48000, 44100, 32000, 24000, 22050, 16000, 12000, 11025, 8000, 7350,
    ];
    let h = data.get(..7)?;
    if h[0] != 0xff || h[1] & 0xf0 != 0xf0 {
        return None;
    }
    let len = (usize::from(h[3] & 0x03) << 11) | (usize::from(h[4]) << 3) | usize::from(h[5] >> 5);
    if len < 7 || len > data.len() {
        return None;
    }
    Some(AudioFrame {
        len,
        samples: 1024 * (u64::from(h[6] & 0x03) + 1),
        rate: *RATES.get(usize::from((h[2] >> 2) & 0x0f))?,
    })
}

/// Number of complete ADTS frames in `data` and their sample rate, as
/// `(frames × 1024, sample_rate)`.
pub fn adts_samples(data: &[u8]) -> Option<(u64, u64)> {
    count(data, adts_frame)
}

/// The MPEG-1/2 audio frame (Layer I, II, III) at the start of `data`, when
/// its header and all its bytes are there (free-format bit rates are not read).
pub fn mpeg_audio_frame(data: &[u8]) -> Option<AudioFrame> {
    const KBPS: [[[u16; 15]; 3]; 2] = [
        [
            [
                0, 32, 64, 96, 128, 160, 192, 224, 256, 288, 320, 352, 384, 416, 448,
            ],
            [
                0, 32, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320, 384,
            ],
            [
                0, 32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320,
            ],
        ],
        [
            [
                0, 32, 48, 56, 64, 80, 96, 112, 128, 144, 160, 176, 192, 224, 256,
            ],
            [0, 8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160],
            [0, 8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160],
        ],
    ];
    let h = data.get(..4)?;
    let version = (h[1] >> 3) & 3; // 3: MPEG-1, 2: MPEG-2, 0: MPEG-2.5
    let layer = (h[1] >> 1) & 3; // 3: I, 2: II, 1: III
    let (bitrate_index, rate_index) = (usize::from(h[2] >> 4), usize::from((h[2] >> 2) & 3));
    if h[0] != 0xff
        || h[1] & 0xe0 != 0xe0
        || version == 1
        || layer == 0
        || bitrate_index == 0
        || bitrate_index == 15
        || rate_index == 3
    {
        return None;
    }
    let mpeg1 = version == 3;
    let rate = [44_100u64, 48_000, 32_000][rate_index]
        >> if mpeg1 {
            0
        } else if version == 2 {
            1
        } else {
            2
        };
    let layer_index = usize::from(3 - layer); // 0: I, 1: II, 2: III
    let bitrate = u64::from(KBPS[usize::from(!mpeg1)][layer_index][bitrate_index]) * 1000;
    let padding = u64::from((h[2] >> 1) & 1);
    let (samples, len) = match (layer_index, mpeg1) {
        (0, _) => (384, (12 * bitrate / rate + padding) * 4),
        (1, _) | (2, true) => (1152, 144 * bitrate / rate + padding),
        _ => (576, 72 * bitrate / rate + padding),
    };
    let len = len as usize;
    if len < 4 || len > data.len() {
        return None;
    }
    Some(AudioFrame { len, samples, rate })
}

/// Samples in the complete MPEG-1/2 audio frames (Layer I, II, III) of
/// `data` and their sample rate, as `(samples, sample_rate)`.
pub fn mpeg_audio_samples(data: &[u8]) -> Option<(u64, u64)> {
    count(data, mpeg_audio_frame)
}

/// The AC-3 or E-AC-3 syncframe at the start of `data`, when its header and
/// all its bytes are there (ATSC A/52: an AC-3 syncframe is 1536 samples; an
/// E-AC-3 one 256 × its number of blocks; an E-AC-3 dependent substream 0).
pub fn ac3_frame(data: &[u8]) -> Option<AudioFrame> {
    /// AC-3 bit rates in kbit/s, by `frmsizecod / 2`.
    const KBPS: [u64; 19] = [
        32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320, 384, 448, 512, 576, 640,
    ];
    const RATES: [u64; 3] = [48_000, 44_100, 32_000];
    let h = data.get(..6)?;
    if h[..2] != [0x0b, 0x77] {
        return None;
    }
    let bsid = h[5] >> 3;
    let fscod = usize::from(h[4] >> 6);
    let (len, samples, rate) = if bsid <= 10 {
        // AC-3; bsid 9 and 10 halve and quarter the sample rate.
        let frmsizecod = usize::from(h[4] & 0x3f);
        let (&rate, &kbps) = (RATES.get(fscod)?, KBPS.get(frmsizecod / 2)?);
        let words = match fscod {
            0 => 2 * kbps,
            1 => kbps * 320 / 147 + (frmsizecod & 1) as u64,
            _ => 3 * kbps,
        };
        (words as usize * 2, 1536, rate >> bsid.saturating_sub(8))
    } else if bsid <= 16 {
        // E-AC-3.
        let strmtyp = h[2] >> 6;
        let substream = (h[2] >> 3) & 7;
        let len = ((usize::from(h[2] & 7) << 8 | usize::from(h[3])) + 1) * 2;
        let (rate, blocks) = match RATES.get(fscod) {
            Some(&rate) => (rate, [1, 2, 3, 6][usize::from((h[4] >> 4) & 3)]),
            None => (
                *[24_000, 22_050, 16_000].get(usize::from((h[4] >> 4) & 3))?,
                6,
            ),
        };
        let independent = strmtyp != 1 && substream == 0;
        (len, if independent { 256 * blocks } else { 0 }, rate)
    } else {
        return None;
    };
    if len < 6 || len > data.len() {
        return None;
    }
    Some(AudioFrame { len, samples, rate })
}

/// Samples in the complete AC-3 and E-AC-3 syncframes of `data` and their
/// sample rate, as `(samples, sample_rate)` (see [`ac3_frame`]; E-AC-3
/// dependent substreams add no time).
pub fn ac3_samples(data: &[u8]) -> Option<(u64, u64)> {
    count(data, ac3_frame)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn adts_frames_are_counted() {
        // A 9-byte ADTS frame: 48 kHz (rate index 3), one raw data block.
        let frame = [0xff, 0xf1, 0x4c, 0x80, 0x01, 0x20, 0xfc, 0, 0];
        let two: Vec<u8> = frame.iter().chain(frame.iter()).copied().collect();
        assert_eq!(adts_samples(&two), Some((2048, 48_000)));
        assert_eq!(adts_samples(&two[..12]), Some((1024, 48_000)));
        assert_eq!(
            adts_samples(&[0xff, 0xfd, 0x44, 0x00]),
            None,
            "MPEG audio is not ADTS"
        );
    }

    #[test]
    fn mpeg_audio_frames_are_counted_from_their_headers() {
        // MPEG-1 Layer II, 64 kbit/s, 48 kHz: 192-byte frames of 1152 samples.
        let mut frame = vec![0xff, 0xfd, 0x44, 0x00];
        frame.resize(192, 0);
        let three: Vec<u8> = frame.iter().chain(&frame).chain(&frame).copied().collect();
        assert_eq!(mpeg_audio_samples(&three), Some((3 * 1152, 48_000)));
        // A cut-off last frame does not count.
        assert_eq!(mpeg_audio_samples(&three[..500]), Some((2 * 1152, 48_000)));
        // MPEG-2 Layer III, 32 kbit/s, 24 kHz: 96-byte frames of 576 samples.
        let mut frame = vec![0xff, 0xf3, 0x44, 0x00];
        frame.resize(96, 0);
        assert_eq!(mpeg_audio_samples(&frame), Some((576, 24_000)));
        assert_eq!(
            mpeg_audio_samples(&[0xff, 0xf1, 0x4c, 0x80]),
            None,
            "ADTS is not MPEG audio"
        );
    }
    #[test]
    fn ac3_frames_are_counted_from_their_headers() {
        // AC-3, 48 kHz, 64 kbit/s (frmsizecod 8): 256-byte syncframes, bsid 8.
        let mut frame = vec![0x0b, 0x77, 0, 0, 0x08, 8 << 3];
        frame.resize(256, 0);
        let three: Vec<u8> = frame.iter().chain(&frame).chain(&frame).copied().collect();
        assert_eq!(ac3_samples(&three), Some((3 * 1536, 48_000)));
        assert_eq!(
            ac3_samples(&three[..700]),
            Some((2 * 1536, 48_000)),
            "cut-off last frame"
        );
        // 44.1 kHz, 64 kbit/s, odd frmsizecod 9: 140 words (279 + 1 = 280 bytes).
        let mut frame = vec![0x0b, 0x77, 0, 0, 0x40 | 9, 8 << 3];
        frame.resize(280, 0);
        assert_eq!(ac3_samples(&frame), Some((1536, 44_100)));
        assert_eq!(ac3_samples(&frame[..279]), None);
        // E-AC-3 (bsid 16), 44.1 kHz, 6 blocks, frmsiz 138: 278-byte frames;
        // then a dependent substream frame, which adds no samples.
        let mut ind = vec![0x0b, 0x77, 0x00, 138, 0x40 | 0x30, 16 << 3];
        ind.resize(278, 0);
        let mut dep = vec![0x0b, 0x77, 0x40, 9, 0x40 | 0x30, 16 << 3];
        dep.resize(20, 0);
        let both: Vec<u8> = ind.iter().chain(&dep).chain(&ind).copied().collect();
        assert_eq!(ac3_samples(&both), Some((2 * 1536, 44_100)));
        // E-AC-3, 24 kHz (fscod 3, fscod2 0): always 6 blocks.
        let mut half = vec![0x0b, 0x77, 0x00, 9, 0xc0, 16 << 3];
        half.resize(20, 0);
        assert_eq!(ac3_samples(&half), Some((1536, 24_000)));
        // E-AC-3 with one block per frame.
        let mut one = vec![0x0b, 0x77, 0x00, 9, 0x00, 16 << 3];
        one.resize(20, 0);
        assert_eq!(ac3_samples(&one), Some((256, 48_000)));
        assert_eq!(
            ac3_samples(&[0x0b, 0x77, 0, 0, 0xc0, 8 << 3]),
            None,
            "fscod 3 in AC-3"
        );
        assert_eq!(
            ac3_samples(&[0xff, 0xf1, 0x4c, 0x80, 0x01, 0x20]),
            None,
            "ADTS is not AC-3"
        );
    }
}
