//! Live tests of the runtime against a real Docker daemon (provisioned by
//! `.ci/provision/10-docker.sh`; the decky binary comes from `cargo xtask test`).

#![allow(clippy::unwrap_used, clippy::expect_used)]

// The lab network is shared with the CLI's live tests (one copy); this suite does not
// use every helper in it.
mod guard;
#[allow(dead_code)]
#[path = "../../../decnet/tests/it/lab.rs"]
mod lab;
mod live;
