//! pseudolive: serves pre-segmented HLS streams as if they were live.
//!
//! Pure core (`probe`'s readers, `model`, `timeline`, `playlist`, `urls`)
//! over values; IO at the edges (`source`, `loader`, `library`, `http`, the
//! binary). `ARCHITECTURE.md` maps every module.
#![forbid(unsafe_code)]
#![deny(missing_docs)]
#![warn(clippy::print_stdout)]

pub mod clock;
pub mod config;
pub mod http;
pub mod library;
pub mod ll;
pub mod loader;
pub mod model;
pub mod options;
pub mod playlist;
pub mod probe;
pub mod probe_cmd;
pub mod progress;
pub mod restamp;
pub mod source;
pub mod stats;
pub mod tags;
pub mod ticks;
pub mod timeline;
pub mod urls;
