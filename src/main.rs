//! The pseudolive binary: flags → library → bind → serve, or `probe`.

use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use clap::Parser;
use tracing_subscriber::EnvFilter;

use pseudolive::clock::{Clock, SystemClock};
use pseudolive::config::{Cli, Command};
use pseudolive::http::server::Limits;
use pseudolive::http::{self, App};
use pseudolive::library::{Library, LibraryConfig};
use pseudolive::probe::{ProbeMode, Prober, ffprobe};
use pseudolive::probe_cmd;
use pseudolive::ticks::Ticks;

/// Longest wait of a playlist request for a stream that is loading.
const LOAD_WAIT: Duration = Duration::from_secs(10);

fn main() -> ExitCode {
    let cli = Cli::parse();
    let filter = EnvFilter::try_new(format!("{},mpeg2ts_reader=error", cli.log_level))
        .unwrap_or_else(|_| EnvFilter::new("info"));
    use std::io::IsTerminal;
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(pseudolive::progress::Stderr)
        .init();
    match run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("pseudolive: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn prober(cli: &Cli) -> anyhow::Result<Prober> {
    let found = ffprobe::locate(cli.probe.ffprobe.as_deref());
    if let Some(p) = &cli.probe.ffprobe
        && found.is_none()
    {
        anyhow::bail!("--ffprobe {}: no such file", p.display());
    }
    if cli.probe.mode == ProbeMode::Ffprobe && found.is_none() {
        anyhow::bail!("--probe ffprobe: ffprobe not found (give --ffprobe PATH)");
    }
    Ok(Prober {
        mode: cli.probe.mode,
        ffprobe: found,
    })
}

fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let prober = prober(&cli)?;
    if let Some(Command::Probe { json, paths }) = &cli.command {
        let ok = probe_cmd::run(&prober, paths, *json, &mut std::io::stdout().lock())?;
        return Ok(if ok {
            ExitCode::SUCCESS
        } else {
            ExitCode::FAILURE
        });
    }
    let runtime = tokio::runtime::Runtime::new().context("cannot start the async runtime")?;
    let result = runtime.block_on(serve(cli, prober));
    // Loaders still measuring (ffprobe fallbacks can take seconds each) must
    // not hold the exit: the drain already bounded the connections.
    runtime.shutdown_timeout(Duration::from_millis(200));
    result?;
    Ok(ExitCode::SUCCESS)
}

async fn serve(cli: Cli, prober: Prober) -> anyhow::Result<()> {
    let shutdown = shutdown_signal();
    let addr = cli.addr();
    let listener = http::server::bind(addr).with_context(|| format!("cannot listen on {addr}"))?;
    let epoch_unix = cli.epoch.map(Ticks::from_ms);
    if let Some(epoch) = epoch_unix
        && epoch > SystemClock.now_unix()
    {
        tracing::warn!(
            "--epoch is in the future: every stream shows its first window until {}",
            chrono::DateTime::from_timestamp_millis(epoch.as_ms() as i64)
                .map(|d| d.to_rfc3339())
                .unwrap_or_default()
        );
    }
    let library = Library::new(LibraryConfig {
        root: cli.root.clone(),
        window: u64::from(cli.window),
        epoch_unix,
        prober,
    });
    let scan = library.clone();
    let found = tokio::task::spawn_blocking(move || scan.rescan())
        .await
        .context("cannot start")?
        .context("cannot start")?;
    let local = listener.local_addr().unwrap_or(addr);
    tracing::info!(
        "serving {} stream(s) from {} on http://{local}/ (master playlists: http://{local}/<stream>.m3u8)",
        found,
        cli.root.display()
    );
    if std::io::IsTerminal::is_terminal(&std::io::stderr()) {
        pseudolive::progress::show(library.clone());
    }
    let app = App::with_options(
        library,
        LOAD_WAIT,
        std::sync::Arc::new(SystemClock),
        cli.default_options(),
        cli.hlsjs_url.clone(),
    );
    let limits = Limits {
        max_connections: cli.max_connections as usize,
        header_read_timeout: std::time::Duration::from_secs(cli.header_timeout),
        ..Limits::default()
    };
    let held = app.shutdown.clone();
    let shutdown = async move {
        shutdown.await;
        held.cancel();
    };
    http::server::serve(listener, http::routes(app), limits, shutdown).await;
    Ok(())
}

/// SIGINT or SIGTERM. The handlers are installed now, when this is called
/// (before the socket is bound), not when the future is first polled: a
/// signal that arrives while streams are being found is not fatal.
fn shutdown_signal() -> impl std::future::Future<Output = ()> {
    #[cfg(unix)]
    let term = {
        use tokio::signal::unix::{SignalKind, signal};
        signal(SignalKind::terminate()).ok()
    };
    let interrupt = {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{SignalKind, signal};
            signal(SignalKind::interrupt()).ok()
        }
    };
    async move {
        #[cfg(unix)]
        {
            let (mut term, mut interrupt) = (term, interrupt);
            let term = async {
                match term.as_mut() {
                    Some(s) => {
                        s.recv().await;
                    }
                    None => std::future::pending().await,
                }
            };
            let interrupt = async {
                match interrupt.as_mut() {
                    Some(s) => {
                        s.recv().await;
                    }
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                _ = term => {}
                _ = interrupt => {}
            }
        }
        #[cfg(not(unix))]
        {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}
