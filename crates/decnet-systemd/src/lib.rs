//! DECNET's systemd deployment surface: the unit templates, compiled in, and the step
//! engine behind `decnet init` and `decnet init --deinit`.
//!
//! Read in this order:
//! - [`registry`]: every `deploy/systemd/**/*.j2`, embedded by `build.rs` at build time
//!   and classified by its path; a unit template's `# decnet: side=… [wanted=…]
//!   [daemon=…]` header says which side installs it, whether `decnet.target` wants it and
//!   whether it is a daemon (the reaper is not), a polkit rule's `// decnet: side=…`
//!   which side installs it. This is the one unit registry: adding a daemon's unit is
//!   adding a template file.
//! - [`render`]: [`Vars`] (validated once: names, absolute paths safe in a unit file) and
//!   [`render()`], which renders a side's files with minijinja in strict-undefined mode;
//! - [`unitfile`]: a unit-file reader, so checks look at settings rather than substrings;
//! - [`system`]: the [`System`] trait (accounts and commands) and [`HostSystem`];
//! - [`engine`]: [`init`] and [`deinit`], idempotent step lists (OK / SKIP / DRY / FAIL)
//!   over a file-system root (`/` or a `--prefix`);
//! - [`installed`]: [`installed_units`], the DECNET units installed under a root, which
//!   deinit and the self-destruct reaper stop;
//! - [`reaper`]: the self-destruct reaper script ([`reaper::ReaperScript`]), one generator
//!   for the copy `decnet init --mode agent` installs for `decnet-reaper.service` (the
//!   agent, not root, starts that unit through a polkit rule that admits it alone) and for
//!   the copy the agent writes itself when it runs as root or without systemd.
//!
//! It does not run the daemons, talk to D-Bus, or parse the CLI; it runs `systemctl`,
//! `systemd-tmpfiles`, `useradd`/`groupadd` (and their `del` forms) only through
//! [`System`], never under `--prefix`.

pub mod engine;
mod error;
pub mod installed;
pub mod reaper;
pub mod registry;
pub mod render;
pub mod system;
pub mod unitfile;

pub use engine::{DeinitOptions, InitOptions, Outcome, Step, any_failed, deinit, init};
pub use error::Error;
pub use installed::installed_units;
pub use registry::Mode;
pub use render::{Vars, render};
pub use system::{HostSystem, System};
