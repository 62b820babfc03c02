//! DECNET's swarm control plane: one master drives many workers, each running an agent
//! that deploys that worker's share (shard) of the fleet.
//!
//! Read in this order:
//! - [`pki`]: the CA (ECDSA P-256), leaf certificates whose [`pki::Role`] is a SAN URI
//!   (`urn:decnet:role:agent`), CSR signing, key files written 0600 at creation;
//! - [`names`]: strict worker-name and address patterns (reserved names refused);
//! - [`tls`]: rustls configurations (TLS ≥ 1.2, the DECNET CA as the only root), the
//!   pinning verifier and the per-connection [`tls::Peer`];
//! - [`serve`]: the server loop (bounded connections, timeouts, body cap, peer attached
//!   to every request) and [`serve::ApiError`] (5xx bodies carry no detail);
//! - [`proto`]: every request and response body;
//! - [`client`]: JSON clients, the pinned [`client::AgentClient`] and the
//!   [`client::OperatorClient`];
//! - [`agent`]: the worker agent (bundle, routes, queue, relocalize, heartbeat,
//!   enrollment, self-destruct reaper) over an [`agent::backend::AgentBackend`]:
//!   [`agent::runtime::RuntimeBackend`] drives Docker through `decnet-runtime`,
//!   [`agent::backend::FakeBackend`] is the in-memory double for tests;
//! - [`master`]: the controller (operator and worker listeners, enrollment, dispatch with
//!   partial success, heartbeat intake, liveness sweeper, decommission);
//! - [`listen`]: the controller's log listener (RFC 5425 over mTLS, enrolled workers
//!   only, commit then `ack <n>`); [`forward`]: the worker's forwarder shipping its log
//!   spool with acknowledged offsets and a never-ending reconnect loop.
//!
//! # Invariants
//! - **Trust is explicit.** The agent obeys only the pinned master certificate (role and
//!   fingerprint, checked on the connection carrying the request); the controller accepts
//!   heartbeats only from the agent certificate pinned in the host row and never from a
//!   revoked one; every client pins the server leaf inside its TLS verifier, and a client
//!   without a pin cannot be built.
//! - **Keys stay home.** The master signs CSRs; no response body holds a private key.
//! - **Outcomes are observed.** A decky is recorded `running` only when the agent
//!   reported it running (a synchronous deploy result or a `/status` probe); a heartbeat
//!   is a full snapshot of the host's shards and keeps recorded errors.
//! - **One operation at a time per agent**, off the request-serving tasks.
//!
//! Not here: the container runtime itself (`decnet-runtime`, behind the backend trait),
//! the log spool and ingestion (`decnet-fleet::logs`), the self-updater and the
//! dashboard API.

pub mod agent;
pub mod client;
mod error;
pub mod forward;
pub mod listen;
pub mod master;
pub mod names;
pub mod pki;
pub mod proto;
pub mod serve;
pub mod tls;

pub use error::{Error, Result};

/// This build's version, reported in heartbeats.
pub const AGENT_VERSION: &str = env!("CARGO_PKG_VERSION");
