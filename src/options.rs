//! Per-URL options, parsed from the leading `key=value` segments of a
//! request path, and the same options as server-wide defaults (one flag per
//! key). Pure: text in, values out; no HTTP, no clock.
//!
//! **URLs.** Any number of options, in any order, before the stream's usual
//! path: `/<opt>/<opt>/<stream>.m3u8`, `/<opt>/<stream>_<variant>.m3u8`,
//! `/<opt>/<stream>/<variant>/<file>`. [`Options::split_leading`] takes the
//! segments as they appear in the URL (still percent-encoded) and stops at
//! the first one without `=`; the last segment always names the resource,
//! never an option. A leading segment with `=` whose key is unknown, a bad
//! value or a key given twice is an [`OptionError`] (the router answers 400);
//! so a stream directory whose name contains `=` cannot carry options before
//! it. Relative URIs in a playlist (variants in the master, segments in a
//! media playlist) resolve under the same options, so a player keeps them.
//!
//! | key | value | meaning |
//! |---|---|---|
//! | `window` | segments, 1–10000 | segments listed (still at least 3 × target duration) |
//! | `dvr` | seconds, 1–172800 | list at least this much media (timeshift) |
//! | `start` | Unix seconds or RFC 3339 | this URL's own timeline anchor, the same on every replica |
//! | `ts` | `continuous` or `source` | timestamp mode |
//! | `ll` | part target in seconds (≤ 3 decimals, 0.1–10), `0` off | LL-HLS |
//! | `fault` | `ACTION[,FILTER…]`, repeatable, or `none` | fault injection, see [`Fault`] |
//!
//! Values are percent-decoded (a fault's after splitting on `,` and `=`, so
//! `variant=a%2Cb` names the variant `a,b`); [`Options::to_path_prefix`]
//! writes the canonical, percent-safe form, and parsing it gives back the
//! same options.
//!
//! **Defaults and layering.** Each key is also a server flag of the same name
//! (`--window 10`, `--fault 404,every=10`, `--fault` repeatable), parsed by
//! the `parse_*` functions, which are clap `value_parser`s. [`Options::over`]
//! lays a URL's options over the server's: every key the URL sets wins.
//! `fault` is one key like the others: a URL with any `fault=` replaces the
//! server's whole fault list, so a URL alone says which faults it gets (the
//! same on every replica, whatever the others were started with);
//! `fault=none` turns the server's faults off for that URL.

mod fault;
#[cfg(test)]
mod tests;

use std::fmt;
use std::str::FromStr;

use percent_encoding::percent_decode_str;

pub use fault::{
    Cycle, Fault, FaultAction, FaultRequest, Faults, Filters, HANG_SECS, Resource, pct_bucket,
};

/// Every option key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Key {
    /// `window=SEGMENTS`
    Window,
    /// `dvr=SECS`
    Dvr,
    /// `start=TIME`
    Start,
    /// `ts=continuous|source`
    Ts,
    /// `ll=PART_SECS`
    Ll,
    /// `fault=ACTION[,FILTER…]`
    Fault,
}

/// The keys with the shape of their values, as error messages list them.
pub const VALID_KEYS: &str = "window=SEGMENTS, dvr=SECS, start=UNIX_SECS|RFC3339, \
     ts=continuous|source, ll=PART_SECS|0, fault=ACTION[,FILTER...]|none";

impl Key {
    /// All keys, in canonical order.
    pub const ALL: [Key; 6] = [
        Key::Window,
        Key::Dvr,
        Key::Start,
        Key::Ts,
        Key::Ll,
        Key::Fault,
    ];

    /// The key as written in URLs and flags.
    pub fn name(self) -> &'static str {
        match self {
            Key::Window => "window",
            Key::Dvr => "dvr",
            Key::Start => "start",
            Key::Ts => "ts",
            Key::Ll => "ll",
            Key::Fault => "fault",
        }
    }

    /// The key named `name` (exact spelling).
    pub fn from_name(name: &str) -> Option<Key> {
        Key::ALL.into_iter().find(|k| k.name() == name)
    }
}

impl fmt::Display for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Why an option (in a URL or a flag) was refused. Every message names the
/// key and value and lists the valid keys.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OptionError {
    /// A `key=value` segment whose key is not an option.
    #[error("unknown option {key:?} in {segment:?}; valid options: {VALID_KEYS}")]
    UnknownKey {
        /// The key as written.
        key: String,
        /// The whole segment.
        segment: String,
    },
    /// A known key with a value it cannot take.
    #[error("bad {key}={value:?}: {why}; valid options: {VALID_KEYS}")]
    BadValue {
        /// The option.
        key: Key,
        /// The value as written.
        value: String,
        /// What was expected.
        why: String,
    },
    /// A key other than `fault` given twice, or `fault=none` with other faults.
    #[error("{key} given more than once; valid options: {VALID_KEYS}")]
    Repeated {
        /// The option.
        key: Key,
    },
}

impl OptionError {
    fn bad(key: Key, value: &str, why: impl Into<String>) -> Self {
        OptionError::BadValue {
            key,
            value: value.to_string(),
            why: why.into(),
        }
    }
}

/// Timestamp mode of the segments served.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TsMode {
    /// `continuous`: timestamps keep increasing across loops.
    Continuous,
    /// `source`: the files' own timestamps, restarting at every loop point.
    Source,
}

impl TsMode {
    fn name(self) -> &'static str {
        match self {
            TsMode::Continuous => "continuous",
            TsMode::Source => "source",
        }
    }
}

/// `ll=`: LL-HLS off, or on with a part target.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LowLatency {
    /// `ll=0`.
    Off,
    /// `ll=0.5`: parts of (at most) this target duration, in ms (100–10000).
    Parts {
        /// `EXT-X-PART-INF:PART-TARGET`, in ms.
        part_target_ms: u32,
    },
}

/// One parsed `key=value` segment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Setting {
    /// `window=`
    Window(u16),
    /// `dvr=`
    Dvr(u32),
    /// `start=`, as Unix ms.
    Start(u64),
    /// `ts=`
    Ts(TsMode),
    /// `ll=`
    Ll(LowLatency),
    /// `fault=…`, or `fault=none` (`None`).
    Fault(Option<Fault>),
}

impl Setting {
    /// The key this setting is for.
    pub fn key(&self) -> Key {
        match self {
            Setting::Window(_) => Key::Window,
            Setting::Dvr(_) => Key::Dvr,
            Setting::Start(_) => Key::Start,
            Setting::Ts(_) => Key::Ts,
            Setting::Ll(_) => Key::Ll,
            Setting::Fault(_) => Key::Fault,
        }
    }
}

/// The options of one URL, or the server's defaults: `None` is unset.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Options {
    /// Segments listed.
    pub window_segments: Option<u16>,
    /// Media listed at least, in seconds.
    pub dvr_secs: Option<u32>,
    /// The timeline anchor, in Unix ms.
    pub start_ms: Option<u64>,
    /// Timestamp mode.
    pub ts: Option<TsMode>,
    /// LL-HLS.
    pub ll: Option<LowLatency>,
    /// Faults, first match wins; `Some` of an empty list: `fault=none`.
    pub faults: Option<Faults>,
}

/// Largest `window`, as `--window` allows.
pub const MAX_WINDOW_SEGMENTS: u16 = 10_000;
/// Largest `dvr`: 48 h.
pub const MAX_DVR_SECS: u32 = 48 * 3600;
/// Latest `start`: the last second of the year 9999, in Unix seconds.
pub const MAX_START_SECS: u64 = 253_402_300_799;
/// Part target bounds, in ms.
pub const PART_TARGET_MS: std::ops::RangeInclusive<u32> = 100..=10_000;

impl Options {
    /// Parses one path segment, still percent-encoded: `Ok(None)` when it
    /// holds no `=` (it is not an option).
    pub fn parse_segment(segment: &str) -> Result<Option<Setting>, OptionError> {
        let Some((key, raw)) = segment.split_once('=') else {
            return Ok(None);
        };
        let Some(key) = Key::from_name(key) else {
            return Err(OptionError::UnknownKey {
                key: key.to_string(),
                segment: segment.to_string(),
            });
        };
        let value = || {
            percent_decode_str(raw)
                .decode_utf8()
                .map_err(|_| OptionError::bad(key, raw, "not UTF-8 after percent-decoding"))
        };
        let setting = match key {
            Key::Window => Setting::Window(parse_window(&value()?)?),
            Key::Dvr => Setting::Dvr(parse_dvr_secs(&value()?)?),
            Key::Start => Setting::Start(parse_start_ms(&value()?)?),
            Key::Ts => Setting::Ts(parse_ts(&value()?)?),
            Key::Ll => Setting::Ll(parse_ll(&value()?)?),
            // A fault splits first, then decodes each part.
            Key::Fault if raw == "none" => Setting::Fault(None),
            Key::Fault => Setting::Fault(Some(parse_fault(raw)?)),
        };
        Ok(Some(setting))
    }

    /// Records `setting`; a key set twice (`fault` aside) is an error, and
    /// so is `fault=none` together with another fault.
    pub fn apply(&mut self, setting: Setting) -> Result<(), OptionError> {
        let key = setting.key();
        let repeated = match &setting {
            Setting::Window(_) => self.window_segments.is_some(),
            Setting::Dvr(_) => self.dvr_secs.is_some(),
            Setting::Start(_) => self.start_ms.is_some(),
            Setting::Ts(_) => self.ts.is_some(),
            Setting::Ll(_) => self.ll.is_some(),
            // `none` is only ever alone: an empty list means it was given.
            Setting::Fault(f) => self
                .faults
                .as_ref()
                .is_some_and(|list| list.0.is_empty() || f.is_none()),
        };
        if repeated {
            return Err(OptionError::Repeated { key });
        }
        match setting {
            Setting::Window(v) => self.window_segments = Some(v),
            Setting::Dvr(v) => self.dvr_secs = Some(v),
            Setting::Start(v) => self.start_ms = Some(v),
            Setting::Ts(v) => self.ts = Some(v),
            Setting::Ll(v) => self.ll = Some(v),
            Setting::Fault(f) => self.faults.get_or_insert_default().0.extend(f),
        }
        Ok(())
    }

    /// Splits the options off the front of a path's segments (as in the URL,
    /// still percent-encoded): the options, and the segments naming the
    /// resource (at least the last one), untouched. Segments decoded
    /// beforehand work too, except for a variant name holding `,` or `=`.
    pub fn split_leading<S: AsRef<str>>(segments: &[S]) -> Result<(Options, &[S]), OptionError> {
        let mut options = Options::default();
        let mut used = 0;
        for segment in segments.iter().take(segments.len().saturating_sub(1)) {
            let Some(setting) = Options::parse_segment(segment.as_ref())? else {
                break;
            };
            options.apply(setting)?;
            used += 1;
        }
        Ok((options, &segments[used..]))
    }

    /// The options as canonical `key=value/` segments (keys in [`Key::ALL`]
    /// order, faults in theirs), percent-safe, empty when nothing is set:
    /// `format!("/{}{stream}.m3u8", options.to_path_prefix())`.
    pub fn to_path_prefix(&self) -> String {
        let mut out = String::new();
        let mut push = |key: Key, value: &dyn fmt::Display| {
            out.push_str(&format!("{key}={value}/"));
        };
        if let Some(v) = self.window_segments {
            push(Key::Window, &v);
        }
        if let Some(v) = self.dvr_secs {
            push(Key::Dvr, &v);
        }
        if let Some(v) = self.start_ms {
            push(Key::Start, &format_start_ms(v));
        }
        if let Some(v) = self.ts {
            push(Key::Ts, &v.name());
        }
        if let Some(v) = self.ll {
            push(Key::Ll, &format_ll(v));
        }
        match &self.faults {
            Some(list) if list.0.is_empty() => push(Key::Fault, &"none"),
            Some(list) => list.0.iter().for_each(|f| push(Key::Fault, f)),
            None => {}
        }
        out
    }

    /// These options (a URL's) laid over `defaults` (the server's): each key
    /// set here wins, the fault list as a whole.
    pub fn over(self, defaults: &Options) -> Options {
        Options {
            window_segments: self.window_segments.or(defaults.window_segments),
            dvr_secs: self.dvr_secs.or(defaults.dvr_secs),
            start_ms: self.start_ms.or(defaults.start_ms),
            ts: self.ts.or(defaults.ts),
            ll: self.ll.or(defaults.ll),
            faults: self.faults.or_else(|| defaults.faults.clone()),
        }
    }

    /// Whether no key is set.
    pub fn is_empty(&self) -> bool {
        *self == Options::default()
    }
}

/// A whole number written with ASCII digits only (no sign, no spaces).
pub(crate) fn digits(s: &str) -> Option<u64> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

/// `window` / `--window`: segments, 1–10000.
pub fn parse_window(s: &str) -> Result<u16, OptionError> {
    digits(s)
        .filter(|n| (1..=u64::from(MAX_WINDOW_SEGMENTS)).contains(n))
        .and_then(|n| u16::try_from(n).ok())
        .ok_or_else(|| {
            OptionError::bad(
                Key::Window,
                s,
                format!("expected segments, 1 to {MAX_WINDOW_SEGMENTS}"),
            )
        })
}

/// `dvr` / `--dvr`: seconds of media, 1–172800 (48 h).
pub fn parse_dvr_secs(s: &str) -> Result<u32, OptionError> {
    digits(s)
        .filter(|n| (1..=u64::from(MAX_DVR_SECS)).contains(n))
        .and_then(|n| u32::try_from(n).ok())
        .ok_or_else(|| {
            OptionError::bad(
                Key::Dvr,
                s,
                format!("expected seconds, 1 to {MAX_DVR_SECS}"),
            )
        })
}

/// `start` / `--start`: Unix seconds or RFC 3339 (1970 to 9999), as Unix ms.
pub fn parse_start_ms(s: &str) -> Result<u64, OptionError> {
    let bad = || {
        OptionError::bad(
            Key::Start,
            s,
            "expected Unix seconds or RFC 3339 (2026-01-01T00:00:00Z), 1970 to 9999",
        )
    };
    let ms = match digits(s) {
        Some(secs) if secs <= MAX_START_SECS => secs * 1000,
        Some(_) => return Err(bad()),
        None => chrono::DateTime::parse_from_rfc3339(s)
            .ok()
            .and_then(|t| u64::try_from(t.timestamp_millis()).ok())
            .filter(|ms| *ms / 1000 <= MAX_START_SECS)
            .ok_or_else(bad)?,
    };
    Ok(ms)
}

/// Canonical `start`: Unix seconds when whole, else RFC 3339 UTC with ms.
fn format_start_ms(ms: u64) -> String {
    if ms.is_multiple_of(1000) {
        return (ms / 1000).to_string();
    }
    i64::try_from(ms)
        .ok()
        .and_then(chrono::DateTime::from_timestamp_millis)
        .map_or_else(
            || (ms / 1000).to_string(),
            |t| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        )
}

/// `ts` / `--ts`: `continuous` or `source`.
pub fn parse_ts(s: &str) -> Result<TsMode, OptionError> {
    match s {
        "continuous" => Ok(TsMode::Continuous),
        "source" => Ok(TsMode::Source),
        _ => Err(OptionError::bad(
            Key::Ts,
            s,
            "expected continuous or source",
        )),
    }
}

/// `ll` / `--ll`: a part target in seconds with at most 3 decimals
/// (0.1–10), or `0` for off.
pub fn parse_ll(s: &str) -> Result<LowLatency, OptionError> {
    let bad = || {
        OptionError::bad(
            Key::Ll,
            s,
            "expected a part target in seconds, 0.1 to 10 with at most 3 decimals, or 0 for off",
        )
    };
    let ms = decimal_ms(s).ok_or_else(bad)?;
    if ms == 0 {
        return Ok(LowLatency::Off);
    }
    u32::try_from(ms)
        .ok()
        .filter(|ms| PART_TARGET_MS.contains(ms))
        .map(|part_target_ms| LowLatency::Parts { part_target_ms })
        .ok_or_else(bad)
}

/// `1`, `0.5`, `2.125` → ms; more than 3 decimals or anything else: `None`.
fn decimal_ms(s: &str) -> Option<u64> {
    let (whole, frac) = s.split_once('.').unwrap_or((s, ""));
    if s.ends_with('.') || frac.len() > 3 {
        return None;
    }
    let frac_ms = if frac.is_empty() {
        0
    } else {
        digits(frac)? * 10u64.pow(3 - frac.len() as u32)
    };
    digits(whole)?.checked_mul(1000)?.checked_add(frac_ms)
}

/// Canonical `ll`: `0`, or seconds without trailing zeros (`0.5`, `1`).
fn format_ll(ll: LowLatency) -> String {
    match ll {
        LowLatency::Off => "0".to_string(),
        LowLatency::Parts { part_target_ms } => {
            let (whole, frac) = (part_target_ms / 1000, part_target_ms % 1000);
            if frac == 0 {
                whole.to_string()
            } else {
                format!("{whole}.{frac:03}")
                    .trim_end_matches('0')
                    .to_string()
            }
        }
    }
}

/// `fault` / `--fault` (repeatable): `ACTION[,FILTER…]`, see [`Fault`].
pub fn parse_fault(s: &str) -> Result<Fault, OptionError> {
    Fault::from_str(s)
}
