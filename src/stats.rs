//! What the server did, for `/metrics`, in Prometheus text format, through the
//! `metrics` facade. Counters are recorded where things happen (routes,
//! accept loop, library, faults); this module installs the recorder once
//! per process and renders it.
//!
//! | metric | labels | what |
//! |---|---|---|
//! | `pseudolive_requests_total` | `route`, `status` | answered requests |
//! | `pseudolive_response_bytes_total` | `route` | body bytes announced (`Content-Length`) |
//! | `pseudolive_open_connections` | | connections open now |
//! | `pseudolive_playlist_renders_total` | | media playlists rendered |
//! | `pseudolive_playlist_cache_hits_total` | | media playlists served from the cache |
//! | `pseudolive_stream_load_seconds` | `stream` | how long loading a stream took |
//! | `pseudolive_segments` | `stream`, `method` | segments by how they were measured |
//! | `pseudolive_faults_total` | `action` | injected faults |

use std::sync::OnceLock;

use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};

/// Which route answered, for the `route` label: set as a response extension.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RouteLabel(pub &'static str);

static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();

/// Installs the process's recorder (once; later calls do nothing).
pub fn install() -> Option<&'static PrometheusHandle> {
    HANDLE
        .get_or_init(|| PrometheusBuilder::new().install_recorder().ok())
        .as_ref()
}

/// Everything recorded so far, in Prometheus text format.
pub fn render() -> String {
    install().map(PrometheusHandle::render).unwrap_or_default()
}
