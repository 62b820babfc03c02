//! Integration tests of the fleet reconciler.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod ingest;
mod mirror;
mod reconcile;
mod support;
mod worker;
