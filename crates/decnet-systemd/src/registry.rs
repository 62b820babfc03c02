//! The unit registry: every template embedded at build time, classified by its path and
//! its own `# decnet:` header.

use std::fmt;
use std::str::FromStr;

use serde::Serialize;

use crate::Error;

include!(concat!(env!("OUT_DIR"), "/templates.rs"));

/// Directory unit files are installed into.
pub const UNIT_DIR: &str = "/etc/systemd/system";
/// The target that groups a host's DECNET units.
pub const TARGET: &str = "decnet.target";
/// Unit name prefix of every DECNET daemon.
pub const UNIT_PREFIX: &str = "decnet-";
/// Unit types a template may render.
pub const UNIT_SUFFIXES: &[&str] = &["service", "socket", "timer", "path"];
/// Longest unit name accepted (systemd's own limit is 255).
pub const MAX_UNIT_NAME: usize = 64;

/// Which side of a deployment a host is, and which units it gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// The master: bus, reconciler, swarm controller (and later API, listener).
    Master,
    /// An enrolled worker: bus, reconciler, agent (and later collector, forwarder).
    Agent,
}

impl Mode {
    /// Both modes, in a fixed order.
    pub const ALL: [Mode; 2] = [Mode::Master, Mode::Agent];

    /// The lowercase name used in headers, flags and the host INI.
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Master => "master",
            Mode::Agent => "agent",
        }
    }
}

impl fmt::Display for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Mode {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self, Error> {
        match s {
            "master" => Ok(Mode::Master),
            "agent" => Ok(Mode::Agent),
            other => Err(Error::Invalid {
                what: "mode",
                value: other.to_owned(),
                reason: "expected master or agent",
            }),
        }
    }
}

/// What a unit template says about itself in its `# decnet: key=value …` header line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct UnitMeta {
    /// Unit name (`decnet-bus.service`).
    pub name: String,
    /// Sides that install it (`side=master,agent`).
    pub sides: Vec<Mode>,
    /// Whether `decnet.target` wants it (`wanted=yes|no`, default yes). A unit that is
    /// installed but not wanted is started by hand; deinit and the reaper still stop it
    /// because they enumerate unit files.
    pub wanted: bool,
}

impl UnitMeta {
    /// Whether a host of `mode` installs this unit.
    pub fn runs_on(&self, mode: Mode) -> bool {
        self.sides.contains(&mode)
    }

    /// The daemon's short name: `bus` for `decnet-bus.service`.
    pub fn short_name(&self) -> &str {
        let stem = self
            .name
            .rsplit_once('.')
            .map_or(self.name.as_str(), |(s, _)| s);
        stem.strip_prefix(UNIT_PREFIX).unwrap_or(stem)
    }

    /// The file its output is appended to, relative to the log directory.
    pub fn log_file_name(&self) -> String {
        format!("decnet.{}.log", self.short_name())
    }
}

/// What an embedded template is, from its path under `deploy/systemd/`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum Kind {
    /// `decnet-<name>.<type>.j2`: a daemon's unit.
    Unit(UnitMeta),
    /// `decnet.target.j2`: wants the units of the host's mode.
    Target,
    /// `tmpfiles.d/<file>.j2` → `/etc/tmpfiles.d/<file>`.
    Tmpfiles,
    /// `logrotate.d/<file>.j2` → `/etc/logrotate.d/<file>`.
    Logrotate,
    /// `decnet.ini.j2`: the host-config placeholder, written only when none exists.
    HostConfig,
}

/// One embedded template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template {
    /// Path relative to `deploy/systemd/` (`decnet-bus.service.j2`).
    pub source: &'static str,
    /// The template text.
    pub text: &'static str,
    /// What it renders.
    pub kind: Kind,
    /// Rendered file name (`decnet-bus.service`, `decnet.conf`).
    pub file_name: String,
}

fn bad(source: &str, reason: impl Into<String>) -> Error {
    Error::Template {
        name: source.to_owned(),
        reason: reason.into(),
    }
}

fn valid_unit_name(name: &str) -> bool {
    let Some((stem, suffix)) = name.rsplit_once('.') else {
        return false;
    };
    let Some(short) = stem.strip_prefix(UNIT_PREFIX) else {
        return false;
    };
    name.len() <= MAX_UNIT_NAME
        && UNIT_SUFFIXES.contains(&suffix)
        && !short.is_empty()
        && !short.starts_with('-')
        && !short.ends_with('-')
        && short
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

/// Parses the `# decnet: side=… [wanted=…]` header of a unit template.
fn parse_meta(source: &str, name: &str, text: &str) -> Result<UnitMeta, Error> {
    let header = text
        .lines()
        .take_while(|l| l.starts_with('#') || l.trim().is_empty())
        .find_map(|l| l.strip_prefix("# decnet:"))
        .ok_or_else(|| bad(source, "no `# decnet: side=…` header line"))?;
    let mut sides = None;
    let mut wanted = true;
    for pair in header.split_whitespace() {
        let (key, value) = pair
            .split_once('=')
            .ok_or_else(|| bad(source, format!("header item '{pair}' is not key=value")))?;
        match key {
            "side" => {
                let mut list = Vec::new();
                for side in value.split(',') {
                    let mode = side
                        .parse::<Mode>()
                        .map_err(|_| bad(source, format!("unknown side '{side}'")))?;
                    if !list.contains(&mode) {
                        list.push(mode);
                    }
                }
                list.sort();
                sides = Some(list);
            }
            "wanted" => {
                wanted = match value {
                    "yes" => true,
                    "no" => false,
                    _ => {
                        return Err(bad(
                            source,
                            format!("wanted must be yes or no, not '{value}'"),
                        ));
                    }
                };
            }
            _ => return Err(bad(source, format!("unknown header key '{key}'"))),
        }
    }
    let sides = sides.ok_or_else(|| bad(source, "header has no side="))?;
    Ok(UnitMeta {
        name: name.to_owned(),
        sides,
        wanted,
    })
}

fn classify(source: &'static str, text: &'static str) -> Result<Template, Error> {
    let stem = source
        .strip_suffix(".j2")
        .ok_or_else(|| bad(source, "template names end in .j2"))?;
    let (kind, file_name) = match stem.split_once('/') {
        Some(("tmpfiles.d", file)) if !file.contains('/') => (Kind::Tmpfiles, file),
        Some(("logrotate.d", file)) if !file.contains('/') => (Kind::Logrotate, file),
        Some(_) => return Err(bad(source, "unknown template directory")),
        None if stem == TARGET => (Kind::Target, stem),
        None if stem == "decnet.ini" => (Kind::HostConfig, stem),
        None if valid_unit_name(stem) => (Kind::Unit(parse_meta(source, stem, text)?), stem),
        None => {
            return Err(bad(
                source,
                "not a unit (decnet-<name>.<service|socket|timer|path>.j2), decnet.target.j2 or decnet.ini.j2",
            ));
        }
    };
    if file_name.is_empty() {
        return Err(bad(source, "empty file name"));
    }
    Ok(Template {
        source,
        text,
        kind,
        file_name: file_name.to_owned(),
    })
}

/// Every embedded template, sorted by path.
///
/// # Errors
/// [`Error::Template`] when a file under `deploy/systemd/` is in an unknown place or a unit
/// template has a malformed header (the crate's tests catch this before release).
pub fn templates() -> Result<Vec<Template>, Error> {
    EMBEDDED
        .iter()
        .map(|(source, text)| classify(source, text))
        .collect()
}

/// The unit templates' metadata, sorted by unit name.
///
/// # Errors
/// As [`templates`].
pub fn units() -> Result<Vec<UnitMeta>, Error> {
    Ok(templates()?
        .into_iter()
        .filter_map(|t| match t.kind {
            Kind::Unit(meta) => Some(meta),
            _ => None,
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_embedded_file_is_classified() {
        let all = templates().unwrap();
        assert_eq!(all.len(), EMBEDDED.len());
        let kinds = |k: fn(&Kind) -> bool| all.iter().filter(|t| k(&t.kind)).count();
        assert_eq!(kinds(|k| *k == Kind::Target), 1);
        assert_eq!(kinds(|k| *k == Kind::HostConfig), 1);
        assert_eq!(kinds(|k| *k == Kind::Tmpfiles), 1);
        assert_eq!(kinds(|k| *k == Kind::Logrotate), 1);
        assert!(kinds(|k| matches!(k, Kind::Unit(_))) >= 4);
    }

    #[test]
    fn the_daemons_units_and_their_sides() {
        let units = units().unwrap();
        let sides = |name: &str| {
            units
                .iter()
                .find(|u| u.name == name)
                .map(|u| u.sides.clone())
                .unwrap_or_default()
        };
        assert_eq!(sides("decnet-bus.service"), [Mode::Master, Mode::Agent]);
        assert_eq!(
            sides("decnet-reconciler.service"),
            [Mode::Master, Mode::Agent]
        );
        assert_eq!(sides("decnet-swarmctl.service"), [Mode::Master]);
        assert_eq!(sides("decnet-agent.service"), [Mode::Agent]);
        assert!(units.iter().all(|u| u.wanted));
        let bus = units
            .iter()
            .find(|u| u.name == "decnet-bus.service")
            .unwrap();
        assert_eq!(bus.short_name(), "bus");
        assert_eq!(bus.log_file_name(), "decnet.bus.log");
    }

    #[test]
    fn headers_are_parsed_strictly() {
        let meta = parse_meta(
            "x",
            "decnet-x.service",
            "# decnet: side=agent,master wanted=no\n",
        )
        .unwrap();
        assert_eq!(meta.sides, [Mode::Master, Mode::Agent]);
        assert!(!meta.wanted);
        for text in [
            "[Unit]\n",
            "# decnet: wanted=yes\n",
            "# decnet: side=worker\n",
            "# decnet: side=master colour=red\n",
            "# decnet: side=master wanted=maybe\n",
            "# decnet: side\n",
        ] {
            assert!(parse_meta("x", "decnet-x.service", text).is_err(), "{text}");
        }
    }

    #[test]
    fn unknown_template_locations_are_refused() {
        assert!(classify("decnet-x.service.j2", "# decnet: side=master\n").is_ok());
        for source in [
            "other.service.j2",
            "decnet-X.service.j2",
            "decnet-.service.j2",
            "decnet-x.mount.j2",
            "polkit/x.rules.j2",
            "tmpfiles.d/a/b.conf.j2",
            "decnet-x.service",
        ] {
            assert!(
                classify(source, "# decnet: side=master\n").is_err(),
                "{source}"
            );
        }
    }

    #[test]
    fn modes_parse() {
        assert_eq!("agent".parse::<Mode>().unwrap(), Mode::Agent);
        assert!("Master".parse::<Mode>().unwrap_err().is_validation());
    }
}
