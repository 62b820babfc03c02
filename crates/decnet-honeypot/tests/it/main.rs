//! Integration tests of `decnet-decky`: real binaries, real clients, loopback only.

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
