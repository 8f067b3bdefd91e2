//! Behaviour tests: fixtures, the CLI, HTTP routes and the real binary.

mod battery;
mod binary;
mod checker;
mod fixtures;
mod http;
mod ll;
mod packagers;
mod parts;
mod prop;
mod restamp;
mod review;
mod review2;
mod review4;
mod rules;
mod util;
