//! Integration tests of decnet-systemd: rendered units checked by systemd itself and by
//! their invariants, and the init/deinit engines over temporary roots.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod engine;
mod polkit;
mod support;
mod units;
