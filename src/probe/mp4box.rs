//! The strict walk over ISO BMFF boxes that code rewriting or cutting fMP4
//! uses (`restamp::fmp4`, `ll::fmp4`): every box must lie wholly inside its
//! parent, and where its size is written is kept so it can be rewritten.
//! (Measuring, in [`super::fmp4`], reads leniently instead: a box cut short
//! at the end of a file still gives its samples.)

/// Length of a box header with a 32-bit size.
pub(crate) const HEADER: usize = 8;

/// One box: where it is and how its size is written.
#[derive(Debug, Clone, Copy)]
pub(crate) struct BoxAt {
    pub kind: [u8; 4],
    pub start: usize,
    /// First byte after the header (and after the large size).
    pub body: usize,
    pub end: usize,
    pub size: SizeField,
}

/// How a box's size is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SizeField {
    /// 32-bit size at `start`.
    Short,
    /// 64-bit size at `start + 8`.
    Large,
    /// Size 0: up to the end of the parent; never rewritten.
    ToEnd,
}

/// Why a box could not be walked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum BoxError {
    /// The header, or the box, runs past the end of its parent.
    Truncated { kind: [u8; 4], at: usize },
    /// A size smaller than the box's own header.
    BadSize { kind: [u8; 4], at: usize, size: u64 },
}

/// A box type as text, non-printable bytes as `?`.
pub(crate) fn kind_name(kind: &[u8; 4]) -> String {
    kind.iter()
        .map(|&b| if b.is_ascii_graphic() { b as char } else { '?' })
        .collect()
}

/// The big-endian `u32` at `at`, if it is all there.
pub(crate) fn get_u32(buf: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_be_bytes(
        buf.get(at..at.checked_add(4)?)?.try_into().ok()?,
    ))
}

/// The big-endian `u64` at `at`, if it is all there.
pub(crate) fn get_u64(buf: &[u8], at: usize) -> Option<u64> {
    Some(u64::from_be_bytes(
        buf.get(at..at.checked_add(8)?)?.try_into().ok()?,
    ))
}

/// The boxes in `buf[start..end]`; a box running past `end` is an error.
pub(crate) fn children(buf: &[u8], start: usize, end: usize) -> Result<Vec<BoxAt>, BoxError> {
    let mut out = Vec::new();
    let mut at = start;
    while at < end {
        let short = get_u32(buf, at).filter(|_| at + HEADER <= end);
        let kind: [u8; 4] = buf
            .get(at + 4..at + 8)
            .and_then(|k| k.try_into().ok())
            .unwrap_or(*b"????");
        let truncated = || BoxError::Truncated { kind, at };
        let short = short.ok_or_else(truncated)?;
        let (size, body, field) = match short {
            0 => ((end - at) as u64, at + HEADER, SizeField::ToEnd),
            1 => {
                let large = get_u64(buf, at + HEADER)
                    .filter(|_| at + 16 <= end)
                    .ok_or_else(truncated)?;
                (large, at + 16, SizeField::Large)
            }
            n => (u64::from(n), at + HEADER, SizeField::Short),
        };
        if size < (body - at) as u64 {
            return Err(BoxError::BadSize { kind, at, size });
        }
        let box_end = usize::try_from(size)
            .ok()
            .and_then(|s| at.checked_add(s))
            .filter(|&e| e <= end)
            .ok_or_else(truncated)?;
        out.push(BoxAt {
            kind,
            start: at,
            body,
            end: box_end,
            size: field,
        });
        at = box_end;
    }
    Ok(out)
}
