//! Applying an injected fault to a response: a status instead of the answer,
//! a delay, a hang, a slow or a cut body. Which fault a request gets is
//! decided by `options::Faults::select`, a pure function; this module only
//! does what was chosen. `stale` is applied before rendering (the handler
//! renders an earlier instant), so it never reaches here.

use std::time::Duration;

use bytes::Bytes;
use futures_util::{Stream, StreamExt};
use http_body_util::BodyExt;
use warp::Reply;
use warp::http::header;
use warp::reply::Response;

use super::reply::HttpError;
use crate::options::{FaultAction, HANG_SECS};

/// Marks a response whose connection must be closed without a word: the
/// accept loop drops the connection instead of writing it.
#[derive(Debug, Clone, Copy)]
pub struct AbortConnection;

/// Bytes sent per pause of a slow body: small enough to keep the rate even.
const SLOW_PIECE_BYTES: usize = 4096;

/// `res` as `action` makes it (marked with the action, for the metrics).
pub async fn apply(action: FaultAction, res: Response) -> Response {
    let mut res = act(action, res).await;
    res.extensions_mut().insert(action);
    res
}

async fn act(action: FaultAction, res: Response) -> Response {
    match action {
        FaultAction::Status(code) => HttpError::Injected(code).into_response(),
        FaultAction::Delay { delay_ms } => {
            tokio::time::sleep(Duration::from_millis(u64::from(delay_ms))).await;
            res
        }
        FaultAction::Hang => {
            tokio::time::sleep(Duration::from_secs(HANG_SECS)).await;
            let mut res = Response::new(Bytes::new().into());
            res.extensions_mut().insert(AbortConnection);
            res
        }
        FaultAction::Slow { .. } => match action.rate_bytes_per_sec() {
            Some(rate) => map_body(res, |body| slow(body, rate).boxed()),
            None => res,
        },
        FaultAction::Cut => {
            let length = res
                .headers()
                .get(header::CONTENT_LENGTH)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.parse::<u64>().ok())
                .unwrap_or(0);
            map_body(res, |body| cut(body, length / 2).boxed())
        }
        FaultAction::Stale => res,
    }
}

type BodyStream = futures_util::stream::BoxStream<'static, Result<Bytes, std::io::Error>>;

/// The response with its body replaced by `f` of the body's bytes.
fn map_body(res: Response, f: impl FnOnce(BodyStream) -> BodyStream) -> Response {
    let (parts, body) = res.into_parts();
    let data: BodyStream = body
        .into_data_stream()
        .map(|r| r.map_err(std::io::Error::other))
        .boxed();
    let stream = SyncStream(std::sync::Mutex::new(f(data)));
    let mut out = warp::reply::stream(stream).into_response();
    *out.status_mut() = parts.status;
    *out.headers_mut() = parts.headers;
    *out.extensions_mut() = parts.extensions;
    out
}

/// A stream made `Sync` (warp asks for it) by a lock only its one reader takes.
struct SyncStream(std::sync::Mutex<BodyStream>);

impl Stream for SyncStream {
    type Item = Result<Bytes, std::io::Error>;
    fn poll_next(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Self::Item>> {
        match self.get_mut().0.get_mut() {
            Ok(inner) => inner.poll_next_unpin(cx),
            Err(_) => std::task::Poll::Ready(None),
        }
    }
}

/// `body` at `rate_bytes_per_sec`, in small pieces, each sent when the
/// bytes before it have had their time.
fn slow(
    body: BodyStream,
    rate_bytes_per_sec: u64,
) -> impl Stream<Item = Result<Bytes, std::io::Error>> {
    let start = tokio::time::Instant::now();
    let rate = rate_bytes_per_sec.max(1);
    futures_util::stream::unfold(
        (body, Bytes::new(), 0u64),
        move |(mut body, mut pending, sent)| async move {
            if pending.is_empty() {
                match body.next().await? {
                    Ok(chunk) => pending = chunk,
                    Err(e) => return Some((Err(e), (body, pending, sent))),
                }
            }
            let piece = pending.split_to(pending.len().min(SLOW_PIECE_BYTES));
            let due = start + Duration::from_secs_f64(sent as f64 / rate as f64);
            tokio::time::sleep_until(due).await;
            let sent = sent + piece.len() as u64;
            Some((Ok(piece), (body, pending, sent)))
        },
    )
    .filter(|r| std::future::ready(!matches!(r, Ok(b) if b.is_empty())))
}

/// The first `keep` bytes of `body`, then the end: shorter than the
/// length its headers announced, so the connection is closed after them.
fn cut(body: BodyStream, keep: u64) -> impl Stream<Item = Result<Bytes, std::io::Error>> {
    futures_util::stream::unfold((body, keep), |(mut body, left)| async move {
        if left == 0 {
            // Pending once, so the server writes out what it has before it
            // sees the body end short and closes the connection.
            tokio::task::yield_now().await;
            return None;
        }
        match body.next().await? {
            Ok(mut chunk) => {
                chunk.truncate(left.min(chunk.len() as u64) as usize);
                let left = left - chunk.len() as u64;
                Some((Ok(chunk), (body, left)))
            }
            Err(e) => Some((Err(e), (body, 0))),
        }
    })
}
