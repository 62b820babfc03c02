//! End-to-end tests of the `decnet` binary.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod deploy;
mod init;
mod lab;
mod live;
mod logs;
mod reconcile;
mod support;
mod swarm;
