//! Template variables (validated once) and rendering in strict-undefined mode.

use std::path::{Component, Path, PathBuf};

use decnet_core::Settings;
use minijinja::{AutoEscape, Environment, UndefinedBehavior};
use serde::Serialize;

use crate::Error;
use crate::reaper::{REAPER_SCRIPT, REAPER_UNIT, ReaperScript, TMPFILES_DIR};
use crate::registry::{Kind, Mode, POLKIT_RULES_DIR, TARGET, Template, UNIT_DIR, templates};

/// Longest path accepted in a template variable.
pub const MAX_PATH_LEN: usize = 512;
/// Longest user or group name (the shadow utilities' limit).
pub const MAX_NAME_LEN: usize = 32;
/// Default daemon user and group.
pub const DEFAULT_USER: &str = "decnet";
/// Default install directory.
pub const DEFAULT_INSTALL_DIR: &str = "/opt/decnet";

/// The variables every template sees. Values are validated: they are safe to paste into
/// a unit file (no whitespace, quotes, `%` specifiers or shell metacharacters).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Vars {
    /// Daemon user.
    pub user: String,
    /// Daemon group (also the group allowed on the bus socket).
    pub group: String,
    /// Install directory (`/opt/decnet`).
    pub install_dir: PathBuf,
    /// The `decnet` binary the units run (`<install_dir>/bin/decnet` by default).
    pub bin: PathBuf,
    /// Persistent data (`/var/lib/decnet`).
    pub data_dir: PathBuf,
    /// Database directory, writable inside a read-only `data_dir` (`/var/lib/decnet/db`).
    pub db_dir: PathBuf,
    /// A worker's log spool, writable inside a read-only `data_dir`: the collector
    /// appends, the agent's forwarder ships and trims (`/var/lib/decnet/spool`).
    pub spool_dir: PathBuf,
    /// The collector's cursors, writable inside a read-only `data_dir`
    /// (`/var/lib/decnet/collector`).
    pub collector_dir: PathBuf,
    /// Logs (`/var/log/decnet`).
    pub log_dir: PathBuf,
    /// Runtime directory (`/run/decnet`).
    pub run_dir: PathBuf,
    /// Configuration directory (`/etc/decnet`).
    pub etc_dir: PathBuf,
    /// Host configuration INI (`/etc/decnet/decnet.ini`).
    pub host_config: PathBuf,
    /// The self-destruct reaper script `decnet-reaper.service` runs
    /// ([`REAPER_SCRIPT`]: root-owned, outside the install directory).
    pub reaper_script: PathBuf,
}

fn check_name(what: &'static str, name: &str) -> Result<String, Error> {
    let invalid = |reason| Error::Invalid {
        what,
        value: name.to_owned(),
        reason,
    };
    let mut bytes = name.bytes();
    match bytes.next() {
        None => return Err(invalid("empty")),
        Some(b) if !(b.is_ascii_lowercase() || b == b'_') => {
            return Err(invalid("must start with a lowercase letter or '_'"));
        }
        Some(_) => {}
    }
    if name.len() > MAX_NAME_LEN {
        return Err(invalid("longer than 32 characters"));
    }
    if !bytes.all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-') {
        return Err(invalid(
            "only lowercase letters, digits, '_' and '-' are allowed",
        ));
    }
    if name == "root" {
        return Err(invalid("the daemons must not run as root"));
    }
    Ok(name.to_owned())
}

/// Checks a path that will be pasted into unit files and removed by deinit: absolute,
/// normalized, not `/`, and made of characters systemd and the shell take literally.
///
/// # Errors
/// [`Error::Invalid`] naming `what`.
pub fn check_path(what: &'static str, path: &Path) -> Result<PathBuf, Error> {
    let text = path.to_string_lossy();
    let invalid = |reason| Error::Invalid {
        what,
        value: text.to_string(),
        reason,
    };
    if !path.is_absolute() {
        return Err(invalid("must be an absolute path"));
    }
    if text.len() > MAX_PATH_LEN {
        return Err(invalid("too long"));
    }
    if !text
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'/' | b'.' | b'_' | b'-' | b'+'))
    {
        return Err(invalid("only letters, digits and / . _ - + are allowed"));
    }
    let mut normal = 0;
    for c in path.components() {
        match c {
            Component::RootDir => {}
            Component::Normal(_) => normal += 1,
            _ => return Err(invalid("must not contain '.' or '..' components")),
        }
    }
    if normal == 0 {
        return Err(invalid("must not be /"));
    }
    Ok(path.components().collect())
}

impl Vars {
    /// Validated variables: names and `install_dir` as given, `bin` (default
    /// `<install_dir>/bin/decnet`), the other directories from `settings`.
    ///
    /// # Errors
    /// [`Error::Invalid`] for a name with characters outside `[a-z0-9_-]` (or `root`), a
    /// relative path, or a path with characters a unit file would misread.
    pub fn new(
        user: &str,
        group: &str,
        install_dir: &Path,
        bin: Option<&Path>,
        settings: &Settings,
    ) -> Result<Vars, Error> {
        let install_dir = check_path("install directory", install_dir)?;
        let bin = match bin {
            Some(b) => check_path("binary path", b)?,
            None => install_dir.join("bin").join("decnet"),
        };
        Ok(Vars {
            user: check_name("user", user)?,
            group: check_name("group", group)?,
            bin,
            install_dir,
            data_dir: check_path("data directory", &settings.data_dir)?,
            db_dir: check_path("database directory", &settings.db_dir)?,
            spool_dir: check_path("spool directory", &settings.spool_dir)?,
            collector_dir: check_path("collector directory", &settings.collector_dir)?,
            log_dir: check_path("log directory", &settings.log_dir)?,
            run_dir: check_path("runtime directory", &settings.run_dir)?,
            etc_dir: check_path("configuration directory", &settings.etc_dir)?,
            host_config: check_path("host config", &settings.host_config)?,
            reaper_script: PathBuf::from(REAPER_SCRIPT),
        })
    }

    /// Whether `decnet init` installs the binary itself (it lives inside `install_dir`).
    pub fn manages_bin(&self) -> bool {
        self.bin.starts_with(&self.install_dir) && self.bin != self.install_dir
    }
}

/// Who owns a rendered file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Owner {
    /// `root:root`.
    Root,
    /// `root:<group>`: readable by the daemons, writable only by root.
    RootGroup,
    /// `<user>:<group>`: the daemons' own.
    User,
}

/// One rendered file, with where it goes and how it is owned.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Rendered {
    /// What it is.
    pub kind: Kind,
    /// Absolute destination on the host (before any `--prefix`).
    pub path: PathBuf,
    /// Content.
    pub text: String,
    /// Permission bits.
    pub mode: u32,
    /// Owner.
    pub owner: Owner,
}

impl Rendered {
    /// The unit name, for units and the target.
    pub fn unit_name(&self) -> Option<&str> {
        match &self.kind {
            Kind::Unit(meta) => Some(&meta.name),
            Kind::Target => Some(TARGET),
            _ => None,
        }
    }
}

#[derive(Serialize)]
struct Context<'a> {
    #[serde(flatten)]
    vars: &'a Vars,
    mode: Mode,
    /// Units `decnet.target` wants on this side.
    units: Vec<&'a str>,
    /// The reaper's unit name, for the polkit rule that lets the agent start it.
    reaper_unit: &'static str,
}

fn environment() -> Environment<'static> {
    let mut env = Environment::new();
    env.set_undefined_behavior(UndefinedBehavior::Strict);
    env.set_keep_trailing_newline(true);
    env.set_auto_escape_callback(|_| AutoEscape::None);
    env
}

fn render_one(
    env: &Environment<'static>,
    t: &Template,
    ctx: &Context<'_>,
) -> Result<String, Error> {
    env.render_str(t.text, ctx).map_err(|e| Error::Template {
        name: t.source.to_owned(),
        reason: format!("{e:#}"),
    })
}

/// Where a file of a fixed-location kind goes on the host: units and the target, polkit
/// rules, tmpfiles and logrotate entries. `None` for the kinds whose place comes from the
/// variables (host config, reaper script).
pub fn fixed_destination(kind: &Kind, file_name: &str) -> Option<PathBuf> {
    let dir = match kind {
        Kind::Unit(_) | Kind::Target => UNIT_DIR,
        Kind::Tmpfiles => TMPFILES_DIR,
        Kind::Logrotate => "/etc/logrotate.d",
        Kind::Polkit { .. } => POLKIT_RULES_DIR,
        Kind::HostConfig | Kind::ReaperScript => return None,
    };
    Some(Path::new(dir).join(file_name))
}

/// Renders everything a host of `mode` gets: its units, `decnet.target` wanting them, its
/// polkit rules, the tmpfiles and logrotate entries, the host-config placeholder and, on
/// a side that installs [`REAPER_UNIT`], the reaper script it runs.
///
/// # Errors
/// [`Error::Template`] for a malformed template or an undefined variable.
pub fn render(mode: Mode, vars: &Vars) -> Result<Vec<Rendered>, Error> {
    let all = templates()?;
    let units: Vec<&str> = all
        .iter()
        .filter_map(|t| match &t.kind {
            Kind::Unit(meta) if meta.runs_on(mode) && meta.wanted => Some(meta.name.as_str()),
            _ => None,
        })
        .collect();
    let ctx = Context {
        vars,
        mode,
        units,
        reaper_unit: REAPER_UNIT,
    };
    let env = environment();
    let mut out = Vec::new();
    for t in all.iter().filter(|t| t.kind.runs_on(mode)) {
        let (path, file_mode, owner) = match fixed_destination(&t.kind, &t.file_name) {
            Some(path) => (path, 0o644, Owner::Root),
            None => (vars.host_config.clone(), 0o640, Owner::RootGroup),
        };
        out.push(Rendered {
            kind: t.kind.clone(),
            path,
            text: render_one(&env, t, &ctx)?,
            mode: file_mode,
            owner,
        });
    }
    if out.iter().any(|r| r.unit_name() == Some(REAPER_UNIT)) {
        // Run by root: root-owned, readable and writable by root alone.
        out.push(Rendered {
            kind: Kind::ReaperScript,
            path: vars.reaper_script.clone(),
            text: ReaperScript::default().render()?,
            mode: 0o700,
            owner: Owner::Root,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars() -> Vars {
        Vars::new(
            "decnet",
            "decnet",
            Path::new("/opt/decnet"),
            None,
            &Settings::system(),
        )
        .unwrap()
    }

    #[test]
    fn bad_input_is_refused_as_validation() {
        let s = Settings::system();
        let opt = Path::new("/opt/decnet");
        for (user, dir) in [
            ("de;cnet", opt),
            ("$(id)", opt),
            ("Decnet", opt),
            ("", opt),
            ("root", opt),
            ("a234567890123456789012345678901234", opt),
            ("decnet", Path::new("opt/decnet")),
            ("decnet", Path::new("/opt/dec net")),
            ("decnet", Path::new("/opt/%n")),
            ("decnet", Path::new("/opt/../etc")),
            ("decnet", Path::new("/")),
        ] {
            let err = Vars::new(user, "decnet", dir, None, &s).unwrap_err();
            assert!(err.is_validation(), "{user} {}: {err}", dir.display());
        }
        let v = Vars::new(
            "svc_decnet",
            "decnet-ops",
            Path::new("/srv/decnet/"),
            None,
            &s,
        )
        .unwrap();
        assert_eq!(v.bin, Path::new("/srv/decnet/bin/decnet"));
        assert!(v.manages_bin());
        let v = Vars::new(
            "decnet",
            "decnet",
            opt,
            Some(Path::new("/usr/bin/decnet")),
            &s,
        )
        .unwrap();
        assert!(!v.manages_bin());
    }

    #[test]
    fn master_and_agent_get_their_sides() {
        let names = |mode| -> Vec<String> {
            render(mode, &vars())
                .unwrap()
                .iter()
                .filter_map(|r| r.unit_name().map(str::to_owned))
                .collect()
        };
        let (master, agent) = (names(Mode::Master), names(Mode::Agent));
        for both in [
            "decnet-bus.service",
            "decnet-collector.service",
            "decnet-reconciler.service",
            "decnet.target",
        ] {
            assert!(
                master.iter().any(|n| n == both) && agent.iter().any(|n| n == both),
                "{both}"
            );
        }
        assert!(master.iter().any(|n| n == "decnet-swarmctl.service"));
        assert!(!agent.iter().any(|n| n == "decnet-swarmctl.service"));
        assert!(agent.iter().any(|n| n == "decnet-agent.service"));
        assert!(!master.iter().any(|n| n == "decnet-agent.service"));
    }

    #[test]
    fn user_and_group_reach_tmpfiles_and_logrotate() {
        let s = Settings::system();
        let v = Vars::new("svc", "ops", Path::new("/opt/decnet"), None, &s).unwrap();
        let files = render(Mode::Master, &v).unwrap();
        let text = |kind: Kind| files.iter().find(|r| r.kind == kind).unwrap().text.clone();
        let tmpfiles = text(Kind::Tmpfiles);
        let line: Vec<&str> = tmpfiles
            .lines()
            .find(|l| !l.starts_with('#'))
            .unwrap()
            .split_whitespace()
            .collect();
        assert_eq!(line, ["d", "/run/decnet", "0750", "svc", "ops", "-"]);
        let logrotate = text(Kind::Logrotate);
        assert!(logrotate.contains("/var/log/decnet/*.log {"));
        assert!(logrotate.lines().any(|l| l.trim() == "su svc ops"));
    }

    #[test]
    fn the_host_config_placeholder_loads_with_the_mode() {
        for mode in Mode::ALL {
            let files = render(mode, &vars()).unwrap();
            let ini = files.iter().find(|r| r.kind == Kind::HostConfig).unwrap();
            assert_eq!(ini.path, Path::new("/etc/decnet/decnet.ini"));
            assert_eq!((ini.mode, ini.owner), (0o640, Owner::RootGroup));
            let host = decnet_core::hostcfg::HostConfig::load(
                "decnet.ini",
                Some(&ini.text),
                &Default::default(),
            )
            .unwrap();
            assert!(host.warnings.is_empty(), "{:?}", host.warnings);
            assert_eq!(host.get("DECNET_MODE"), Some(mode.as_str()));
        }
    }

    #[test]
    fn undefined_variables_are_errors() {
        let env = environment();
        let t = Template {
            source: "x.j2",
            text: "{{ nope }}",
            kind: Kind::Target,
            file_name: "x".into(),
        };
        let v = vars();
        let ctx = Context {
            vars: &v,
            mode: Mode::Master,
            units: vec![],
            reaper_unit: REAPER_UNIT,
        };
        assert!(matches!(
            render_one(&env, &t, &ctx),
            Err(Error::Template { .. })
        ));
    }
}
