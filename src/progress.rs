//! Start-up progress on a terminal: one bar counting the streams measured,
//! with log lines printed above it instead of through it.

use std::io::Write;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::library::{Library, StreamState};

static BAR: OnceLock<ProgressBar> = OnceLock::new();

/// A `tracing` writer for stderr that keeps the progress bar intact.
#[derive(Debug, Clone, Copy, Default)]
pub struct Stderr;

impl Write for Stderr {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        match BAR.get().filter(|b| !b.is_finished()) {
            Some(bar) => bar
                .suspend(|| std::io::stderr().write_all(buf))
                .map(|_| buf.len()),
            None => std::io::stderr().write(buf),
        }
    }

    fn flush(&mut self) -> std::io::Result<()> {
        std::io::stderr().flush()
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Stderr {
    type Writer = Stderr;

    fn make_writer(&'a self) -> Self::Writer {
        Stderr
    }
}

/// Shows a bar of streams measured (ready or failed) until all are done.
/// Call only when stderr is a terminal.
pub fn show(library: Arc<Library>) {
    let total = library.slots().len() as u64;
    if total == 0 {
        return;
    }
    let bar = ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr());
    bar.set_style(
        ProgressStyle::with_template("measuring streams {bar:30} {pos}/{len} {elapsed} {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let bar = BAR.get_or_init(|| bar).clone();
    tokio::spawn(async move {
        loop {
            let slots = library.slots();
            let failed = slots
                .iter()
                .filter(|s| matches!(s.state(), StreamState::Failed(_)))
                .count();
            let done = slots
                .iter()
                .filter(|s| !matches!(s.state(), StreamState::Loading))
                .count();
            bar.set_length(slots.len() as u64);
            bar.set_position(done as u64);
            if failed > 0 {
                bar.set_message(format!("({failed} failed)"));
            }
            if done == slots.len() {
                bar.finish();
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    });
}
