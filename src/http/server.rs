//! The accept loop: HTTP/1.1 connections with a header-read timeout (slow
//! or idle clients are dropped), a cap on open connections, and a graceful
//! shutdown bounded by a drain timeout. A proxy in front does TLS and HTTP/2
//! (`deploy/nginx-h2.conf`).

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::{TcpListener, TcpSocket};
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

/// Connections the kernel completes before the accept loop takes them.
/// The standard library's 128 loses connections (each retried by its
/// client a second or more later) when a thousand players connect at once
/// and the accept loop is off the CPU for a few milliseconds; Linux caps
/// this at `net.core.somaxconn` (4096 by default).
pub const LISTEN_BACKLOG: u32 = 1024;

/// A listening socket on `addr` (with `SO_REUSEADDR`, as
/// `TcpListener::bind` does) and a listen backlog of [`LISTEN_BACKLOG`].
pub fn bind(addr: SocketAddr) -> std::io::Result<TcpListener> {
    let socket = if addr.is_ipv4() {
        TcpSocket::new_v4()?
    } else {
        TcpSocket::new_v6()?
    };
    #[cfg(unix)]
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(LISTEN_BACKLOG)
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
            // While a request is in flight, the connection is not read: a
            // held request (a blocking reload, a hinted part) keeps only the
            // buffer its head came in, not a second one for a read that only
            // looks for the client leaving. A client that half-closes still
            // gets its answer; one that left is let go when its answer is due
            // (a hold is bounded) and the write fails.
            .half_close(true)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_burst_of_connections_waits_in_the_backlog() {
        let listener = bind("127.0.0.1:0".parse().unwrap()).unwrap();
        let addr = listener.local_addr().unwrap();
        // Nothing accepts: 400 connections at once still complete at once
        // (past a full backlog the kernel drops the handshake, which the
        // client retries only after a second).
        let connects = (0..400).map(|_| {
            tokio::time::timeout(
                Duration::from_millis(500),
                tokio::net::TcpStream::connect(addr),
            )
        });
        let done = futures_util::future::join_all(connects).await;
        let connected = done.iter().filter(|c| matches!(c, Ok(Ok(_)))).count();
        assert_eq!(connected, 400);
    }
}
