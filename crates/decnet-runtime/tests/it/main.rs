//! Live tests of the runtime against a real Docker daemon (provisioned by
//! `.ci/provision/10-docker.sh`; the decky binary comes from `cargo xtask test`).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod lab;
mod live;
