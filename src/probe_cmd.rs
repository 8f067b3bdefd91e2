//! `pseudolive probe`: measure segments from the command line, as a table or JSON Lines.

use std::io::Write;
use std::path::{Path, PathBuf};

use m3u8_rs::{MasterPlaylist, MediaPlaylist, Playlist};

use crate::probe::{Measured, Prober, SegmentInput};
use crate::source::{self, SourceError};
use crate::ticks::to_secs;

/// A group of segments to measure together (one playlist, or one lone file).
struct Job {
    playlist: Option<PathBuf>,
    segments: Vec<SegmentInput>,
    uris: Vec<String>,
}

/// One output row, exactly the keys of `--json`.
#[derive(serde::Serialize)]
struct Row<'a> {
    playlist: Option<String>,
    uri: &'a str,
    index: usize,
    duration: f64,
    ticks: u64,
    method: Option<crate::probe::Method>,
    error: Option<&'a str>,
}

/// A playlist's segments, their URIs resolved under `root` by the server's rule.
fn media_job(root: &Path, path: &Path, pl: MediaPlaylist) -> Result<Job, SourceError> {
    Ok(Job {
        playlist: Some(path.to_path_buf()),
        segments: source::segment_inputs(root, path, &pl)?,
        uris: pl.segments.iter().map(|s| s.uri.clone()).collect(),
    })
}

fn master_jobs(path: &Path, master: MasterPlaylist) -> Result<Vec<Job>, SourceError> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let uris = master
        .variants
        .iter()
        .filter(|v| !v.is_i_frame)
        .map(|v| v.uri.clone())
        .chain(master.alternatives.iter().filter_map(|a| a.uri.clone()));
    let mut seen = Vec::new();
    let mut jobs = Vec::new();
    for uri in uris {
        let p = dir.join(source::resolve_uri(dir, Path::new(""), &uri, path)?);
        if !seen.contains(&p) {
            jobs.push(media_job(dir, &p, source::read_media(&p)?)?);
            seen.push(p);
        }
    }
    Ok(jobs)
}

fn jobs_for(path: &Path) -> Result<Vec<Job>, SourceError> {
    if path.is_dir() {
        let master = path.join(crate::urls::MASTER_FILE);
        if master.is_file() {
            return master_jobs(&master, source::read_master(&master)?.1);
        }
        // No master: every media playlist in the directory.
        let mut playlists: Vec<PathBuf> = std::fs::read_dir(path)
            .map_err(|e| SourceError::new(path, format!("cannot read directory: {e}")))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|e| e == "m3u8"))
            .collect();
        playlists.sort();
        if playlists.is_empty() {
            return Err(SourceError::new(
                path,
                "directory has no abr.m3u8 and no other .m3u8",
            ));
        }
        return playlists
            .iter()
            .map(|p| media_job(path, p, source::read_media(p)?))
            .collect();
    }
    if path.extension().is_some_and(|e| e == "m3u8") {
        return match source::read_playlist(path)? {
            Playlist::MasterPlaylist(m) => master_jobs(path, m),
            Playlist::MediaPlaylist(pl) => {
                let dir = path.parent().unwrap_or(Path::new("."));
                Ok(vec![media_job(dir, path, source::check_media(path, pl)?)?])
            }
        };
    }
    if !path.exists() {
        return Err(SourceError::new(path, "no such file"));
    }
    Ok(vec![Job {
        playlist: None,
        segments: vec![SegmentInput {
            path: path.to_path_buf(),
            ..SegmentInput::default()
        }],
        uris: vec![path.display().to_string()],
    }])
}

/// For a stream directory (one holding an `abr.m3u8`), loads it exactly as
/// the server would and logs why the server would refuse it; false then.
fn check_stream(path: &Path, prober: &Prober) -> bool {
    if !path.join(crate::urls::MASTER_FILE).is_file() {
        return true;
    }
    let (Some(root), Some(name)) = (path.parent(), path.file_name()) else {
        return true;
    };
    let root = if root.as_os_str().is_empty() {
        Path::new(".")
    } else {
        root
    };
    match crate::loader::load_stream(root, &name.to_string_lossy(), prober) {
        Ok(loaded) => {
            tracing::info!(
                stream = %loaded.stream.name,
                "the server would serve this stream: {} tracks, {} segments per loop, {:.3} s loop",
                loaded.stream.tracks.len(),
                loaded.stream.schedule.len(),
                loaded.stream.schedule.loop_duration().as_secs_f64()
            );
            true
        }
        Err(e) => {
            tracing::error!("the server would refuse this stream: {e}");
            false
        }
    }
}

/// Runs the command; `Ok(false)` when some segment could not be measured or
/// a stream directory would be refused by the server.
pub fn run(
    prober: &Prober,
    paths: &[PathBuf],
    json: bool,
    out: &mut impl Write,
) -> std::io::Result<bool> {
    let mut all_ok = true;
    if !json {
        writeln!(
            out,
            "{:<40} {:>5} {:<24} {:>11} {:<8} error",
            "playlist", "index", "uri", "duration", "method"
        )?;
    }
    for path in paths {
        all_ok &= check_stream(path, prober);
        let jobs = match jobs_for(path) {
            Ok(jobs) => jobs,
            Err(e) => {
                tracing::error!("{e}");
                all_ok = false;
                continue;
            }
        };
        for job in jobs {
            let measured: Vec<Measured> = prober.measure_playlist(&job.segments);
            let playlist = job.playlist.as_ref().map(|p| p.display().to_string());
            for (index, (m, uri)) in measured.iter().zip(&job.uris).enumerate() {
                all_ok &= m.method.is_some();
                let row = Row {
                    playlist: playlist.clone(),
                    uri,
                    index,
                    duration: (to_secs(m.ticks) * 1e6).round() / 1e6,
                    ticks: m.ticks,
                    method: m.method,
                    error: m.error.as_deref(),
                };
                if json {
                    serde_json::to_writer(&mut *out, &row)?;
                    writeln!(out)?;
                } else {
                    let method = serde_json::to_value(row.method).ok();
                    let method = method.as_ref().and_then(|v| v.as_str()).unwrap_or("FAILED");
                    writeln!(
                        out,
                        "{:<40} {:>5} {:<24} {:>11.6} {:<8} {}",
                        row.playlist.as_deref().unwrap_or("-"),
                        index,
                        uri,
                        row.duration,
                        method,
                        row.error.unwrap_or("")
                    )?;
                }
            }
        }
    }
    Ok(all_ok)
}
