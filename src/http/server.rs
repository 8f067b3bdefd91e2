//! The accept loop: HTTP/1.1 connections with a header-read timeout (slow
//! or idle clients are dropped), a cap on open connections, and a graceful
//! shutdown bounded by a drain timeout. A proxy in front does TLS and HTTP/2.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use warp::filters::BoxedFilter;
use warp::reply::Response;

use super::faults::AbortConnection;

/// Why a connection was closed without an answer.
#[derive(Debug, thiserror::Error)]
#[error("closed unanswered by fault=hang")]
struct Hung;

/// Limits of the server.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Open connections at most; further clients wait in the listen backlog.
    pub max_connections: usize,
    /// A request head (or the next one on a kept-alive connection) must arrive within this.
    pub header_read_timeout: Duration,
    /// After the shutdown signal, in-flight responses get this long to finish.
    pub drain: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_connections: 10_000,
            header_read_timeout: Duration::from_secs(10),
            drain: Duration::from_secs(5),
        }
    }
}

/// Serves `routes` on `listener` until `shutdown` completes, then drains.
pub async fn serve(
    listener: TcpListener,
    routes: BoxedFilter<(Response,)>,
    limits: Limits,
    shutdown: impl Future<Output = ()>,
) {
    let graceful = GracefulShutdown::new();
    let slots = Arc::new(Semaphore::new(limits.max_connections));
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let permit = tokio::select! {
            permit = slots.clone().acquire_owned() => match permit {
                Ok(p) => p,
                Err(_) => break,
            },
            _ = &mut shutdown => break,
        };
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(e) => {
                    // Out of file descriptors and the like: back off, keep serving.
                    tracing::warn!("accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = &mut shutdown => break,
        };
        let _ = stream.set_nodelay(true);
        let inner = TowerToHyperService::new(warp::service(routes.clone()));
        // A response marked by a `hang` fault closes the connection unanswered.
        let service = hyper::service::service_fn(move |req| {
            let answer = hyper::service::Service::call(&inner, req);
            async move {
                let res = match answer.await {
                    Ok(res) => res,
                    Err(never) => match never {},
                };
                if res.extensions().get::<AbortConnection>().is_some() {
                    return Err(Hung);
                }
                Ok(res)
            }
        });
        let connection = hyper::server::conn::http1::Builder::new()
            .timer(TokioTimer::new())
            .header_read_timeout(limits.header_read_timeout)
            .writev(true)
            // Request heads over 64 KiB get 431: no player sends that much.
            .max_buf_size(64 * 1024)
            .serve_connection(TokioIo::new(stream), service);
        let connection = graceful.watch(connection);
        metrics::gauge!("pseudolive_open_connections").increment(1.0);
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::debug!("connection ended: {e}");
            }
            metrics::gauge!("pseudolive_open_connections").decrement(1.0);
            drop(permit);
        });
    }
    drop(listener);
    tracing::info!(
        "shutting down: draining connections for at most {:?}",
        limits.drain
    );
    if tokio::time::timeout(limits.drain, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!("drain timeout: closing the remaining connections");
    }
}
