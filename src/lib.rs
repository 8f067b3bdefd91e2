//! pseudolive: serves pre-segmented HLS streams as if they were live.
//!
//! Pure core (`probe::ts`, `timeline`, `playlist`) over values; IO at the
//! edges (`source`, `library`, `http`, the binary).
#![forbid(unsafe_code)]
#![deny(missing_docs)]
#![warn(clippy::print_stdout)]

pub mod config;
pub mod http;
pub mod library;
pub mod live;
pub mod playlist;
pub mod probe;
pub mod probe_cmd;
pub mod progress;
pub mod restamp;
pub mod source;
pub mod ticks;
pub mod timeline;
