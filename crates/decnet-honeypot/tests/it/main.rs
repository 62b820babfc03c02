//! Integration tests of `decnet-decky`: real binaries, real clients, loopback only.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

mod ftp;
mod http;
mod https;
mod mysql;
mod postgres;
mod redis;
mod smtp;
mod ssh;
mod telnet;
mod vnc;
