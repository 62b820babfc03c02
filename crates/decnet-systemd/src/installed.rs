//! Which DECNET units a host has installed, read from the unit files on disk.

use std::path::Path;

use crate::Error;
use crate::registry::{TARGET, UNIT_DIR, UNIT_PREFIX, UNIT_SUFFIXES};

/// Most unit files considered in the unit directory (a real one holds a few hundred).
pub const MAX_UNIT_DIR_ENTRIES: usize = 100_000;

/// Whether a file name is a DECNET unit: `decnet.target` or `decnet-<name>.<type>`.
pub fn is_decnet_unit(name: &str) -> bool {
    if name == TARGET {
        return true;
    }
    let Some((stem, suffix)) = name.rsplit_once('.') else {
        return false;
    };
    stem.len() > UNIT_PREFIX.len()
        && stem.starts_with(UNIT_PREFIX)
        && UNIT_SUFFIXES.contains(&suffix)
}

/// The DECNET units installed under `root` (`/` for the host): every `decnet.target` and
/// `decnet-*.{service,socket,timer,path}` file (or symlink to one) in
/// `<root>/etc/systemd/system`, sorted, `decnet.target` first. Units outside the target
/// (started by hand) are included: this is the list deinit and the self-destruct reaper
/// stop, so it must name everything `decnet init` ever installed.
///
/// # Errors
/// [`Error::Io`] when the directory exists but cannot be read, or holds more than
/// [`MAX_UNIT_DIR_ENTRIES`] entries.
pub fn installed_units(root: &Path) -> Result<Vec<String>, Error> {
    let dir = root.join(UNIT_DIR.trim_start_matches('/'));
    let entries = match std::fs::read_dir(&dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(Error::io("read directory", &dir)(e)),
    };
    let mut units = Vec::new();
    for (i, entry) in entries.enumerate() {
        if i >= MAX_UNIT_DIR_ENTRIES {
            return Err(Error::io("read directory", &dir)(std::io::Error::other(
                "too many entries",
            )));
        }
        let entry = entry.map_err(Error::io("read directory", &dir))?;
        let Some(name) = entry.file_name().to_str().map(str::to_owned) else {
            continue;
        };
        // `decnet.target.wants/` and friends are directories: follow symlinks, keep files.
        if is_decnet_unit(&name) && entry.path().is_file() {
            units.push(name);
        }
    }
    units.sort_by(|a, b| (a != TARGET, a).cmp(&(b != TARGET, b)));
    Ok(units)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_every_installed_decnet_unit_and_nothing_else() {
        let root = tempfile::tempdir().unwrap();
        assert!(installed_units(root.path()).unwrap().is_empty());
        let dir = root.path().join("etc/systemd/system");
        std::fs::create_dir_all(dir.join("decnet.target.wants")).unwrap();
        for name in [
            "decnet-bus.service",
            "decnet-swarmctl.service",
            "decnet-backup.timer",
            "decnet.target",
            "decnetx.service",
            "decnet-.service",
            "decnet-x.mount",
            "ssh.service",
            "decnet-bus.service.d",
        ] {
            if name.ends_with(".d") {
                std::fs::create_dir(dir.join(name)).unwrap();
            } else {
                std::fs::write(dir.join(name), "").unwrap();
            }
        }
        std::os::unix::fs::symlink(
            dir.join("decnet-bus.service"),
            dir.join("decnet-linked.service"),
        )
        .unwrap();
        assert_eq!(
            installed_units(root.path()).unwrap(),
            [
                "decnet.target",
                "decnet-backup.timer",
                "decnet-bus.service",
                "decnet-linked.service",
                "decnet-swarmctl.service"
            ]
        );
    }
}
