//! Behaviour tests: fixtures, the CLI, HTTP routes and the real binary.

mod fixtures;
mod util;
