//! Command-line flags, parsed by clap, and their validation.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;

use clap::{Parser, Subcommand};

use crate::options;
use crate::probe::ProbeMode;

/// Serves pre-segmented HLS streams as if they were live.
///
/// Every directory under --static holding an abr.m3u8 is a stream, looped
/// forever as a sliding-window live playlist. Master: `/<stream>.m3u8`.
#[derive(Debug, Parser)]
#[command(name = "pseudolive", version, args_conflicts_with_subcommands = true)]
pub struct Cli {
    /// Address to listen on.
    #[arg(default_value = "127.0.0.1")]
    pub host: IpAddr,
    /// Port to listen on.
    #[arg(default_value_t = 5000)]
    pub port: u16,
    /// The library root: one sub-directory per stream, each with an abr.m3u8.
    #[arg(long = "static", value_name = "DIR", default_value = "static")]
    pub root: PathBuf,
    /// Segments listed in each live playlist (at least 3 × target duration of media is always listed).
    #[arg(long, default_value_t = 6, value_parser = clap::value_parser!(u16).range(1..=10000))]
    pub window: u16,
    /// Fixed timeline start, RFC 3339 or Unix seconds: replicas with the same epoch serve identical
    /// playlists. Default: each stream starts at its first request. (`--start` is the same.)
    #[arg(long, alias = "start", value_parser = parse_epoch_ms, value_name = "TIME")]
    pub epoch: Option<u64>,
    /// List at least this many seconds of media (a DVR window), like the `dvr=` URL option.
    #[arg(long, value_parser = options::parse_dvr_secs, value_name = "SECS")]
    pub dvr: Option<u32>,
    /// Timestamp mode, like the `ts=` URL option: continuous (the default: media time keeps
    /// rising across loop points, which every client measured plays) or source (the files as
    /// they are).
    #[arg(long, value_parser = options::parse_ts, value_name = "MODE", default_value = "continuous")]
    pub ts: options::TsMode,
    /// LL-HLS part target in seconds (0: off), like the `ll=` URL option.
    #[arg(long, value_parser = options::parse_ll, value_name = "SECS")]
    pub ll: Option<options::LowLatency>,
    /// A fault for every URL that sets none, like the `fault=` URL option; repeatable.
    #[arg(long = "fault", value_parser = options::parse_fault, value_name = "ACTION[,FILTER...]")]
    pub faults: Vec<options::Fault>,
    /// Where stream pages load hls.js from (default: a public CDN); point it at a
    /// local copy for offline use.
    #[arg(long, value_name = "URL")]
    pub hlsjs_url: Option<String>,
    /// Open connections at most; more clients wait until one closes.
    #[arg(long, default_value_t = 10_000, value_parser = clap::value_parser!(u32).range(1..))]
    pub max_connections: u32,
    /// Seconds a client has to send a request head (also the idle limit of a kept-alive connection).
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..=3600), value_name = "SECS")]
    pub header_timeout: u64,
    #[allow(missing_docs)]
    #[command(flatten)]
    pub probe: ProbeArgs,
    /// Log filter: error, warn, info, debug, trace, or a tracing directive list.
    #[arg(long, default_value = "info", value_name = "LEVEL")]
    pub log_level: String,
    /// Subcommands.
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// How segment durations are measured.
#[derive(Debug, clap::Args)]
pub struct ProbeArgs {
    /// ffprobe to use as fallback (default: beside this binary, else on PATH).
    #[arg(long, value_name = "PATH", global = true)]
    pub ffprobe: Option<PathBuf>,
    /// native: read PTS values from the files; ffprobe: run ffprobe per segment;
    /// auto: native, then ffprobe, then the playlist's #EXTINF.
    #[arg(long = "probe", value_enum, default_value_t = ProbeMode::Auto, global = true)]
    pub mode: ProbeMode,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Measure segment durations and print them (a table, or JSON Lines with --json).
    Probe {
        /// Print one JSON object per segment.
        #[arg(long)]
        json: bool,
        /// .ts files, media playlists, master playlists or stream directories.
        #[arg(required = true)]
        paths: Vec<PathBuf>,
    },
}

impl Cli {
    /// The server-wide defaults of the URL options.
    pub fn default_options(&self) -> options::Options {
        options::Options {
            window_segments: None,
            dvr_secs: self.dvr,
            start_ms: None,
            ts: Some(self.ts),
            ll: self.ll,
            faults: (!self.faults.is_empty()).then(|| options::Faults(self.faults.clone())),
        }
    }

    /// The address to bind.
    pub fn addr(&self) -> SocketAddr {
        SocketAddr::new(self.host, self.port)
    }
}

/// `--epoch`: RFC 3339 (`2026-01-01T00:00:00Z`) or Unix seconds, as Unix ms.
pub fn parse_epoch_ms(s: &str) -> Result<u64, String> {
    if let Ok(secs) = s.parse::<u64>() {
        return secs
            .checked_mul(1000)
            .ok_or_else(|| "epoch too large".to_string());
    }
    let t = chrono::DateTime::parse_from_rfc3339(s)
        .map_err(|e| format!("expected RFC 3339 (2026-01-01T00:00:00Z) or Unix seconds: {e}"))?;
    u64::try_from(t.timestamp_millis()).map_err(|_| "epoch before 1970".to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn epoch_formats() {
        assert_eq!(parse_epoch_ms("1700000000"), Ok(1_700_000_000_000));
        assert_eq!(
            parse_epoch_ms("2023-11-14T22:13:20Z"),
            Ok(1_700_000_000_000)
        );
        assert_eq!(
            parse_epoch_ms("2023-11-14T23:13:20.5+01:00"),
            Ok(1_700_000_000_500)
        );
        assert!(parse_epoch_ms("yesterday").is_err());
    }

    #[test]
    fn seed_style_arguments() {
        let cli = Cli::try_parse_from(["pseudolive", "0.0.0.0", "8080"]).unwrap();
        assert_eq!(cli.addr().to_string(), "0.0.0.0:8080");
        let cli = Cli::try_parse_from(["pseudolive"]).unwrap();
        assert_eq!(cli.addr().to_string(), "127.0.0.1:5000");
        assert_eq!(cli.window, 6);
        let cli = Cli::try_parse_from(["pseudolive", "probe", "--json", "a.ts"]).unwrap();
        assert!(matches!(
            cli.command,
            Some(Command::Probe { json: true, .. })
        ));
        assert!(Cli::try_parse_from(["pseudolive", "--window", "0"]).is_err());
        let cli = Cli::try_parse_from([
            "pseudolive",
            "--fault",
            "404,every=10",
            "--fault",
            "delay:100",
            "--dvr",
            "60",
        ])
        .unwrap();
        let d = cli.default_options();
        assert_eq!(d.dvr_secs, Some(60));
        assert_eq!(d.faults.map(|f| f.0.len()), Some(2));
        assert!(Cli::try_parse_from(["pseudolive", "--fault", "teapot"]).is_err());
    }
}
