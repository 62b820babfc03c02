//! DECNET's domain crate: what a fleet of deckies is, and how it is described.
//!
//! Read in this order:
//! - [`name`]: validated decky names and host ids (safe as bus topic tokens);
//! - [`model`]: [`DeckyConfig`] and [`DecnetConfig`], the reference-compatible fleet model;
//! - [`catalog`]: services, archetypes, distros and OS families, compiled in;
//! - [`ini`] and [`deploy_ini`]: the deployment INI of the reference, with line numbers;
//! - [`hostcfg`]: the host INI (`/etc/decnet/decnet.ini`) merged with the environment;
//! - [`net`]: route parsing, IP allocation, relocalization;
//! - [`plan`]: flags or INI plus LAN facts become a validated config;
//! - [`settings`]: every path, from one value;
//! - [`state`]: `decnet-state.json`, written atomically under a lock.
//!
//! This crate is pure: no async, no network, no clock, no environment. Time, randomness
//! (a seed) and detected LAN facts are parameters. The only IO is in [`state`], on paths
//! it is given.

pub mod catalog;
pub mod deploy_ini;
mod error;
pub mod hostcfg;
pub mod ini;
pub mod model;
pub mod name;
pub mod net;
pub mod plan;
pub mod settings;
pub mod state;

pub use error::{Error, Location};
pub use model::{CustomService, DeckyConfig, DecnetConfig, Mode};
pub use name::{DeckyName, HostUuid};
pub use settings::Settings;
