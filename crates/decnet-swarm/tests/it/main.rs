//! Integration tests of the swarm control plane over real mTLS on loopback addresses.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod logs;
mod logs_support;
mod support;
mod swarm;
