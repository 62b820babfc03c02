//! Compiled-in catalogues: services, archetypes, distros and OS families.
//!
//! Listings (`decnet services|archetypes|distros`) and validation both read these tables;
//! nothing else defines a slug.

mod archetypes;
mod distros;
mod os;
mod persona;
mod services;

pub use archetypes::{ARCHETYPES, Archetype, archetype};
pub use distros::{DISTROS, Distro, HOSTNAME_WORDS, HostnameStyle, Kernel, PromptStyle, distro};
pub use os::{OS_FAMILIES, OsFamily, os_family};
pub use persona::{check_persona_value, parse_persona_value, persona_env_value};
pub use services::{
    PersonaKey, PersonaKind, Port, Proto, Role, SERVICES, ServiceSpec, selectable, service,
};
