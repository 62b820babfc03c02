//! Integration tests of decnet-bus (one binary).

// Test helpers outside `#[test]` functions panic on purpose when a check fails.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod broker;
mod cli;
mod client;
mod contract;
mod protocol;
mod support;
mod wildcard;
mod worker;
