//! Fault injection: `fault=ACTION[,FILTER…]` values, their canonical text,
//! and the choice of the fault a request gets, a pure function of the
//! request (resource, variant, media sequence numbers, timeline position),
//! so every replica makes the same choice and `?now=` reproduces it.
//!
//! **Actions.** A status `400`–`599` (answered with a one-line body);
//! `delay:MS` (answer after MS ms); `hang` (send nothing; close after
//! [`HANG_SECS`] or when the client leaves); `slow:KBPS` (send the body at
//! KBPS kilobits, 1000 bits, per second); `cut` (send the headers, with the
//! full length, and half the body, then close); `stale` (a media playlist
//! keeps serving an earlier window, as a stuck encoder would; see below).
//!
//! **Filters**, all of which must hold (none: every request of the target):
//! - `on=segment|playlist|master`: the resource; default `segment`, `stale`
//!   implies (and only allows) `playlist`;
//! - `variant=NAME`: that variant (or rendition) only;
//! - `every=N`: media sequence number divisible by N;
//! - `msn=M`, `msn=A-B`: that number, or A to B inclusive;
//! - `edge`: the segment is the newest one listed at the moment of the request;
//! - `pct=P`: P % of media sequence numbers, those whose [`pct_bucket`] is
//!   below P (a fixed hash: the same numbers on every replica and every run,
//!   and raising P only adds numbers);
//! - `cycle=S:A-B`: only from second A (included) to B (excluded) of every
//!   S-second cycle of the URL's timeline.
//!
//! The media sequence number of a playlist request is the newest one it
//! lists, so `on=playlist,every=10` fails the playlist while the live edge is
//! at a multiple of 10. `edge` applies to segments only; a master has no
//! number and no variant, so only `cycle` filters it. `stale` takes `variant`
//! and `cycle` only.
//!
//! **Stale.** While a stale fault holds, the playlist is the one of the
//! instant its current `cycle` interval began (`cycle=120:60-75`: from second
//! 60 to 75 of each 2-minute cycle, the window of second 60); without
//! `cycle`, it holds forever and the playlist stays the one of the start of
//! the URL's timeline. Both depend on the timeline only, so replicas agree.
//!
//! The first fault in the list that matches a request is the one it gets.

use std::fmt;
use std::ops::RangeInclusive;
use std::str::FromStr;

use percent_encoding::{AsciiSet, CONTROLS, percent_decode_str, utf8_percent_encode};

use super::{Key, OptionError, digits};
use crate::ticks::HZ;

/// How long a `hang` keeps the connection before closing it.
pub const HANG_SECS: u64 = 30;

/// Longest `delay`: 10 minutes.
const MAX_DELAY_MS: u64 = 600_000;
/// Fastest `slow`: 1 Gbit/s.
const MAX_RATE_KBPS: u64 = 1_000_000;

/// What a faulty request gets instead of the normal answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FaultAction {
    /// `404`: this status, 400–599, with a one-line body.
    Status(u16),
    /// `delay:2500`: the normal answer, this many ms late.
    Delay {
        /// The delay, 1–600000 ms.
        delay_ms: u32,
    },
    /// `hang`: nothing; the connection closes after [`HANG_SECS`].
    Hang,
    /// `slow:300`: the body at this rate.
    Slow {
        /// Kilobits (1000 bits) per second, 1–1000000.
        rate_kbps: u32,
    },
    /// `cut`: headers and half the body, then the connection closes.
    Cut,
    /// `stale`: an earlier window of the playlist.
    Stale,
}

impl FaultAction {
    /// The action's name without its value (`status`, `delay`, …), for metrics.
    pub fn name(&self) -> &'static str {
        match self {
            FaultAction::Status(_) => "status",
            FaultAction::Delay { .. } => "delay",
            FaultAction::Hang => "hang",
            FaultAction::Slow { .. } => "slow",
            FaultAction::Cut => "cut",
            FaultAction::Stale => "stale",
        }
    }

    /// For `slow`, the rate in bytes per second.
    pub fn rate_bytes_per_sec(&self) -> Option<u64> {
        match self {
            FaultAction::Slow { rate_kbps } => Some(u64::from(*rate_kbps) * 1000 / 8),
            _ => None,
        }
    }
}

impl fmt::Display for FaultAction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FaultAction::Status(code) => write!(f, "{code}"),
            FaultAction::Delay { delay_ms } => write!(f, "delay:{delay_ms}"),
            FaultAction::Hang => f.write_str("hang"),
            FaultAction::Slow { rate_kbps } => write!(f, "slow:{rate_kbps}"),
            FaultAction::Cut => f.write_str("cut"),
            FaultAction::Stale => f.write_str("stale"),
        }
    }
}

/// What a request asks for, as `on=` names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Resource {
    /// `segment`: a media segment (or key, init section).
    Segment,
    /// `playlist`: a media playlist.
    Playlist,
    /// `master`: the master playlist.
    Master,
}

impl Resource {
    fn name(self) -> &'static str {
        match self {
            Resource::Segment => "segment",
            Resource::Playlist => "playlist",
            Resource::Master => "master",
        }
    }
}

/// `cycle=S:A-B`: seconds A (included) to B (excluded) of every S seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Cycle {
    /// S, at least 1.
    pub period_secs: u32,
    /// A, below B.
    pub from_secs: u32,
    /// B, at most S.
    pub to_secs: u32,
}

impl Cycle {
    /// Where `timeline_ticks` falls in its cycle, in ticks.
    fn offset_ticks(&self, timeline_ticks: u64) -> u64 {
        timeline_ticks % self.period_ticks()
    }

    /// The period in ticks (a zero period, which parsing refuses, counts as 1 s).
    fn period_ticks(&self) -> u64 {
        u64::from(self.period_secs.max(1)) * HZ
    }

    /// Whether the fault is on at `timeline_ticks`.
    pub fn contains(&self, timeline_ticks: u64) -> bool {
        let offset = self.offset_ticks(timeline_ticks);
        (u64::from(self.from_secs) * HZ..u64::from(self.to_secs) * HZ).contains(&offset)
    }

    /// The start of the interval holding `timeline_ticks`, or of the last one
    /// before it (0 before the first).
    pub fn began_at_ticks(&self, timeline_ticks: u64) -> u64 {
        let offset = self.offset_ticks(timeline_ticks);
        let from = u64::from(self.from_secs) * HZ;
        let cycle_start = timeline_ticks - offset;
        if offset >= from {
            cycle_start.saturating_add(from)
        } else {
            cycle_start
                .saturating_add(from)
                .saturating_sub(self.period_ticks())
        }
    }
}

/// The filters of a fault: all must hold.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Filters {
    /// `on=`, with its default applied.
    pub on: Resource,
    /// `variant=`
    pub variant: Option<String>,
    /// `every=`, at least 1.
    pub every: Option<u64>,
    /// `msn=`
    pub msn: Option<RangeInclusive<u64>>,
    /// `pct=`, 0–100.
    pub pct: Option<u8>,
    /// `edge`
    pub edge: bool,
    /// `cycle=`
    pub cycle: Option<Cycle>,
}

/// One `fault=` value.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Fault {
    /// What the request gets.
    pub action: FaultAction,
    /// Which requests.
    pub filters: Filters,
}

/// A request as fault selection sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FaultRequest<'a> {
    /// What is asked for.
    pub kind: Resource,
    /// The variant (or rendition) name; empty for the master.
    pub variant: &'a str,
    /// A segment's media sequence number; for a media playlist, the newest
    /// one it lists; `None` for the master or when unknown (filters on
    /// numbers then never hold).
    pub msn: Option<u64>,
    /// The newest media sequence number listed at the moment of the request.
    pub edge_msn: Option<u64>,
    /// Position on the URL's timeline (0 at its start), in 90 kHz ticks.
    pub timeline_ticks: u64,
}

/// A URL's (or the server's) faults, in order.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct Faults(pub Vec<Fault>);

impl Faults {
    /// The first fault that matches `req`, if any.
    pub fn select(&self, req: &FaultRequest) -> Option<&Fault> {
        self.0.iter().find(|f| f.matches(req))
    }
}

/// The bucket, 0–99, of a media sequence number for `pct=`: SplitMix64's
/// output function (Steele, Lea, Flood 2014) of the number, modulo 100.
pub fn pct_bucket(msn: u64) -> u8 {
    (splitmix64(msn) % 100) as u8
}

/// SplitMix64's output function: the first output of a generator seeded with `x`.
pub(super) fn splitmix64(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

impl Fault {
    /// Whether every filter holds for `req`.
    pub fn matches(&self, req: &FaultRequest) -> bool {
        let f = &self.filters;
        let on_msn = |test: &dyn Fn(u64) -> bool| req.msn.is_some_and(test);
        f.on == req.kind
            && f.variant.as_deref().is_none_or(|v| v == req.variant)
            && f.every
                .is_none_or(|n| on_msn(&|m| m.checked_rem(n) == Some(0)))
            && f.msn.as_ref().is_none_or(|r| on_msn(&|m| r.contains(&m)))
            && f.pct.is_none_or(|p| on_msn(&|m| pct_bucket(m) < p))
            && (!f.edge || (req.msn.is_some() && req.msn == req.edge_msn))
            && f.cycle.is_none_or(|c| c.contains(req.timeline_ticks))
    }

    /// For `stale`, the timeline position whose playlist is served at
    /// `timeline_ticks`: the start of the current cycle interval, or 0
    /// (the timeline's start) without `cycle`.
    pub fn stale_at_ticks(&self, timeline_ticks: u64) -> Option<u64> {
        (self.action == FaultAction::Stale).then(|| {
            self.filters
                .cycle
                .map_or(0, |c| c.began_at_ticks(timeline_ticks))
        })
    }
}

/// Characters a variant name cannot carry as they are in a fault value.
const VALUE: &AsciiSet = &CONTROLS
    .add(b' ')
    .add(b'"')
    .add(b'#')
    .add(b'%')
    .add(b',')
    .add(b'/')
    .add(b'=')
    .add(b'?')
    .add(b'<')
    .add(b'>')
    .add(b'\\')
    .add(b'^')
    .add(b'`')
    .add(b'{')
    .add(b'|')
    .add(b'}')
    .add(b'[')
    .add(b']');

impl fmt::Display for Fault {
    /// Canonical: the action, then the filters in the order of the module
    /// doc, `on` only when not the action's default.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let filters = &self.filters;
        write!(f, "{}", self.action)?;
        if filters.on != default_target(self.action) {
            write!(f, ",on={}", filters.on.name())?;
        }
        if let Some(v) = &filters.variant {
            write!(f, ",variant={}", utf8_percent_encode(v, VALUE))?;
        }
        if let Some(n) = filters.every {
            write!(f, ",every={n}")?;
        }
        if let Some(r) = &filters.msn {
            if r.start() == r.end() {
                write!(f, ",msn={}", r.start())?;
            } else {
                write!(f, ",msn={}-{}", r.start(), r.end())?;
            }
        }
        if let Some(p) = filters.pct {
            write!(f, ",pct={p}")?;
        }
        if filters.edge {
            f.write_str(",edge")?;
        }
        if let Some(c) = filters.cycle {
            write!(f, ",cycle={}:{}-{}", c.period_secs, c.from_secs, c.to_secs)?;
        }
        Ok(())
    }
}

fn default_target(action: FaultAction) -> Resource {
    match action {
        FaultAction::Stale => Resource::Playlist,
        _ => Resource::Segment,
    }
}

/// The filters a fault may name.
const FILTERS: &str = "on=segment|playlist|master, variant=NAME, every=N, msn=M|A-B, edge, \
     pct=P, cycle=S:A-B";

impl FromStr for Fault {
    type Err = OptionError;

    /// `ACTION[,FILTER…]`, each part percent-decoded after splitting.
    fn from_str(s: &str) -> Result<Fault, OptionError> {
        let bad = |why: String| OptionError::bad(Key::Fault, s, why);
        let decode = |part: &str| {
            percent_decode_str(part)
                .decode_utf8()
                .map(|d| d.into_owned())
                .map_err(|_| bad(format!("{part:?} is not UTF-8 after percent-decoding")))
        };
        let mut parts = s.split(',');
        let action = parse_action(&decode(parts.next().unwrap_or_default())?).map_err(bad)?;
        let mut on = None;
        let mut filters = Filters {
            on: default_target(action),
            variant: None,
            every: None,
            msn: None,
            pct: None,
            edge: false,
            cycle: None,
        };
        for part in parts {
            let (name, value) = match part.split_once('=') {
                Some((name, value)) => (name, Some(decode(value)?)),
                None => (part, None),
            };
            let twice = || bad(format!("filter {name} given twice"));
            let value_of = |expected: &str| {
                value
                    .clone()
                    .ok_or_else(|| bad(format!("filter {name} needs a value: {name}={expected}")))
            };
            match name {
                "on" if on.is_some() => return Err(twice()),
                "on" => {
                    on = Some(parse_target(&value_of("segment|playlist|master")?).map_err(bad)?)
                }
                "variant" if filters.variant.is_some() => return Err(twice()),
                "variant" => {
                    let v = value_of("NAME")?;
                    if v.is_empty() {
                        return Err(bad("variant=: the name is empty".into()));
                    }
                    filters.variant = Some(v);
                }
                "every" if filters.every.is_some() => return Err(twice()),
                "every" => {
                    let v = value_of("N")?;
                    filters.every =
                        Some(digits(&v).filter(|n| *n >= 1).ok_or_else(|| {
                            bad(format!("every={v}: expected a whole number ≥ 1"))
                        })?);
                }
                "msn" if filters.msn.is_some() => return Err(twice()),
                "msn" => filters.msn = Some(parse_msn(&value_of("M or msn=A-B")?).map_err(bad)?),
                "pct" if filters.pct.is_some() => return Err(twice()),
                "pct" => {
                    let v = value_of("P")?;
                    filters.pct = Some(
                        digits(&v)
                            .filter(|p| *p <= 100)
                            .and_then(|p| u8::try_from(p).ok())
                            .ok_or_else(|| bad(format!("pct={v}: expected 0 to 100")))?,
                    );
                }
                "edge" if value.is_some() => {
                    return Err(bad("edge takes no value".into()));
                }
                "edge" if filters.edge => return Err(twice()),
                "edge" => filters.edge = true,
                "cycle" if filters.cycle.is_some() => return Err(twice()),
                "cycle" => filters.cycle = Some(parse_cycle(&value_of("S:A-B")?).map_err(bad)?),
                _ => return Err(bad(format!("unknown filter {part:?}; filters: {FILTERS}"))),
            }
        }
        if let Some(target) = on {
            filters.on = target;
        }
        check_combination(action, &filters).map_err(bad)?;
        Ok(Fault { action, filters })
    }
}

fn parse_action(s: &str) -> Result<FaultAction, String> {
    let number = |v: &str, max: u64, what: &str| {
        digits(v)
            .filter(|n| (1..=max).contains(n))
            .and_then(|n| u32::try_from(n).ok())
            .ok_or_else(|| format!("{s}: expected {what}, 1 to {max}"))
    };
    match s.split_once(':') {
        Some(("delay", ms)) => Ok(FaultAction::Delay {
            delay_ms: number(ms, MAX_DELAY_MS, "milliseconds")?,
        }),
        Some(("slow", kbps)) => Ok(FaultAction::Slow {
            rate_kbps: number(kbps, MAX_RATE_KBPS, "kilobits per second")?,
        }),
        _ => match s {
            "hang" => Ok(FaultAction::Hang),
            "cut" => Ok(FaultAction::Cut),
            "stale" => Ok(FaultAction::Stale),
            _ => digits(s)
                .filter(|c| (400..=599).contains(c))
                .and_then(|c| u16::try_from(c).ok())
                .map(FaultAction::Status)
                .ok_or_else(|| {
                    format!(
                        "unknown action {s:?}; actions: a status 400-599, delay:MS, hang, \
                         slow:KBPS, cut, stale"
                    )
                }),
        },
    }
}

fn parse_target(s: &str) -> Result<Resource, String> {
    [Resource::Segment, Resource::Playlist, Resource::Master]
        .into_iter()
        .find(|t| t.name() == s)
        .ok_or_else(|| format!("on={s}: expected segment, playlist or master"))
}

fn parse_msn(s: &str) -> Result<RangeInclusive<u64>, String> {
    let bad = || format!("msn={s}: expected a number M or a range A-B with A ≤ B");
    match s.split_once('-') {
        None => digits(s).map(|m| m..=m).ok_or_else(bad),
        Some((a, b)) => match (digits(a), digits(b)) {
            (Some(a), Some(b)) if a <= b => Ok(a..=b),
            _ => Err(bad()),
        },
    }
}

fn parse_cycle(s: &str) -> Result<Cycle, String> {
    let bad =
        || format!("cycle={s}: expected S:A-B in seconds, with 0 ≤ A < B ≤ S (cycle=60:30-36)");
    let (period, span) = s.split_once(':').ok_or_else(bad)?;
    let (from, to) = span.split_once('-').ok_or_else(bad)?;
    let secs = |v: &str| digits(v).and_then(|n| u32::try_from(n).ok());
    match (secs(period), secs(from), secs(to)) {
        (Some(period_secs), Some(from_secs), Some(to_secs))
            if from_secs < to_secs && to_secs <= period_secs =>
        {
            Ok(Cycle {
                period_secs,
                from_secs,
                to_secs,
            })
        }
        _ => Err(bad()),
    }
}

/// Filters that could never hold together with the action or target.
fn check_combination(action: FaultAction, f: &Filters) -> Result<(), String> {
    let numbered = f.every.is_some() || f.msn.is_some() || f.pct.is_some() || f.edge;
    if action == FaultAction::Stale {
        if f.on != Resource::Playlist {
            return Err(format!(
                "stale applies to media playlists only, not on={}",
                f.on.name()
            ));
        }
        if numbered {
            return Err("stale takes only the variant and cycle filters".into());
        }
    }
    match f.on {
        Resource::Master if numbered || f.variant.is_some() => {
            Err("on=master takes only the cycle filter: a master has no number or variant".into())
        }
        Resource::Playlist if f.edge => Err("edge applies to segments only".into()),
        _ => Ok(()),
    }
}
