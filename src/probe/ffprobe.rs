//! The ffprobe fallback: one child process per segment, with a timeout.
//!
//! Used only when the native reader cannot time a segment (or when asked to).
//! Reads packet timestamps, not `format=duration`, which mixes the audio start
//! with the video end.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crate::ticks::from_secs;

/// How long one ffprobe run may take before it is killed.
pub const TIMEOUT: Duration = Duration::from_secs(20);

/// Finds ffprobe: the given path, else beside the running binary, else on `PATH`.
pub fn locate(explicit: Option<&Path>) -> Option<PathBuf> {
    if let Some(p) = explicit {
        return p.is_file().then(|| p.to_path_buf());
    }
    let beside = std::env::current_exe()
        .ok()
        .and_then(|exe| exe.parent().map(|d| d.join("ffprobe")));
    if let Some(p) = beside.filter(|p| p.is_file()) {
        return Some(p);
    }
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|d| d.join("ffprobe"))
            .find(|p| p.is_file())
    })
}

/// A child process killed when dropped (on timeout or error).
struct KillOnDrop(Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Duration in ticks of a segment file, from ffprobe's packet timestamps of
/// the first video stream (else the first audio stream):
/// `max(pts + duration) − first pts`.
pub fn measure(ffprobe: &Path, file: &Path) -> Result<u64, String> {
    let child = Command::new(ffprobe)
        .args([
            "-v",
            "error",
            "-show_entries",
            "stream=index,codec_type:packet=stream_index,pts_time,duration_time",
            "-of",
            "compact",
        ])
        .arg(file)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot run {}: {e}", ffprobe.display()))?;
    let mut child = KillOnDrop(child);
    let mut stdout = child.0.stdout.take().ok_or("no ffprobe stdout")?;
    let reader = std::thread::spawn(move || {
        let mut out = String::new();
        let _ = stdout.read_to_string(&mut out);
        out
    });
    let deadline = Instant::now() + TIMEOUT;
    let status = loop {
        match child.0.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(5)),
            Ok(None) => return Err(format!("ffprobe timed out after {TIMEOUT:?}")),
            Err(e) => return Err(format!("ffprobe wait failed: {e}")),
        }
    };
    let out = reader.join().unwrap_or_default();
    if !status.success() {
        let mut err = String::new();
        if let Some(mut e) = child.0.stderr.take() {
            let _ = e.read_to_string(&mut err);
        }
        let first = err
            .lines()
            .next()
            .unwrap_or("no message")
            .trim()
            .to_string();
        return Err(format!("ffprobe failed ({status}): {first}"));
    }
    duration_from_compact(&out)
}

/// Runs [`measure`] on `bytes` (a byte range of a file, an init section and
/// a segment) written to a temporary file, removed afterwards.
pub fn measure_bytes(ffprobe: &Path, bytes: &[u8]) -> Result<u64, String> {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let path = std::env::temp_dir().join(format!(
        "pseudolive-ffprobe-{}-{}.bin",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    ));
    let temp = TempFile(path);
    let written = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&temp.0)
        .and_then(|mut f| f.write_all(bytes));
    written.map_err(|e| format!("cannot write {}: {e}", temp.0.display()))?;
    measure(ffprobe, &temp.0)
}

/// A file removed when dropped.
struct TempFile(PathBuf);

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

fn field<'a>(line: &'a str, key: &str) -> Option<&'a str> {
    line.split('|')
        .find_map(|kv| kv.strip_prefix(key)?.strip_prefix('='))
}

/// Parses ffprobe's `-of compact` output of streams and packets.
pub fn duration_from_compact(out: &str) -> Result<u64, String> {
    let streams: Vec<(&str, &str)> = out
        .lines()
        .filter(|l| l.starts_with("stream|"))
        .filter_map(|l| Some((field(l, "index")?, field(l, "codec_type")?)))
        .collect();
    let reference = ["video", "audio"]
        .iter()
        .find_map(|want| streams.iter().find(|(_, t)| t == want))
        .map(|(i, _)| *i)
        .ok_or("ffprobe found no audio or video stream")?;
    let mut first: Option<f64> = None;
    let mut end: Option<f64> = None;
    for line in out.lines().filter(|l| l.starts_with("packet|")) {
        if field(line, "stream_index") != Some(reference) {
            continue;
        }
        let Some(pts) = field(line, "pts_time").and_then(|v| v.parse::<f64>().ok()) else {
            continue;
        };
        let dur = field(line, "duration_time")
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0);
        first.get_or_insert(pts);
        end = Some(end.map_or(pts + dur, |e: f64| e.max(pts + dur)));
    }
    match (first, end) {
        (Some(f), Some(e)) if e > f => Ok(from_secs(e - f)),
        _ => Err("ffprobe found no timestamped packets".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_compact_output_video_first() {
        let out = "stream|index=0|codec_type=audio\nstream|index=1|codec_type=video\n\
                   packet|stream_index=0|pts_time=1.000000|duration_time=0.021333\n\
                   packet|stream_index=1|pts_time=1.080000|duration_time=0.040000\n\
                   packet|stream_index=1|pts_time=3.040000|duration_time=0.040000\n\
                   packet|stream_index=0|pts_time=9.000000|duration_time=0.021333\n";
        assert_eq!(duration_from_compact(out), Ok(180_000));
    }

    #[test]
    fn no_streams_is_an_error() {
        assert!(duration_from_compact("").is_err());
    }
}
