//! A reader for systemd unit files (sections, repeated keys, continuations), so checks
//! look at settings, not at substrings.

use crate::Error;

/// Largest unit file accepted.
pub const MAX_UNIT_FILE_BYTES: usize = 256 * 1024;

/// One `[Section]` with its assignments in file order (keys repeat in unit files).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Section {
    /// Name between the brackets.
    pub name: String,
    /// `(key, value)` pairs, values trimmed, continuations joined with a space.
    pub entries: Vec<(String, String)>,
}

/// A parsed unit file.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct UnitFile {
    /// Sections in file order.
    pub sections: Vec<Section>,
}

impl UnitFile {
    /// Parses unit-file text: `#`/`;` comment lines, `[Section]` headers, `Key=Value`
    /// lines, a trailing `\` continuing a value on the next line.
    ///
    /// # Errors
    /// [`Error::Template`] (named `what`) for text over [`MAX_UNIT_FILE_BYTES`], an
    /// assignment before any section, or a line that is none of the above.
    pub fn parse(what: &str, text: &str) -> Result<UnitFile, Error> {
        let bad = |line: usize, reason: &str| Error::Template {
            name: what.to_owned(),
            reason: format!("line {line}: {reason}"),
        };
        if text.len() > MAX_UNIT_FILE_BYTES {
            return Err(bad(0, "file too large"));
        }
        let mut file = UnitFile::default();
        let mut pending: Option<(String, String)> = None;
        for (i, raw) in text.lines().enumerate() {
            let n = i + 1;
            if let Some((key, mut value)) = pending.take() {
                let part = raw.trim();
                match part.strip_suffix('\\') {
                    Some(head) => {
                        value.push(' ');
                        value.push_str(head.trim());
                        pending = Some((key, value));
                    }
                    None => {
                        value.push(' ');
                        value.push_str(part);
                        push(&mut file, key, value.trim().to_owned());
                    }
                }
                continue;
            }
            let line = raw.trim();
            if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
                continue;
            }
            if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
                file.sections.push(Section {
                    name: name.to_owned(),
                    entries: Vec::new(),
                });
                continue;
            }
            let (key, value) = line
                .split_once('=')
                .ok_or_else(|| bad(n, "not key=value"))?;
            if file.sections.is_empty() {
                return Err(bad(n, "assignment outside a section"));
            }
            let (key, value) = (key.trim().to_owned(), value.trim());
            match value.strip_suffix('\\') {
                Some(head) => pending = Some((key, head.trim().to_owned())),
                None => push(&mut file, key, value.to_owned()),
            }
        }
        if let Some((key, value)) = pending {
            push(&mut file, key, value);
        }
        Ok(file)
    }

    /// Every value of `key` in `section`, in order.
    pub fn all(&self, section: &str, key: &str) -> Vec<&str> {
        self.sections
            .iter()
            .filter(|s| s.name == section)
            .flat_map(|s| s.entries.iter())
            .filter(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
            .collect()
    }

    /// The effective value of a single-valued key (the last assignment wins).
    pub fn get(&self, section: &str, key: &str) -> Option<&str> {
        self.all(section, key).pop()
    }

    /// The whitespace-separated items of a list-valued key; an empty assignment resets the
    /// list, as systemd does.
    pub fn list(&self, section: &str, key: &str) -> Vec<&str> {
        let mut items = Vec::new();
        for value in self.all(section, key) {
            if value.is_empty() {
                items.clear();
            }
            items.extend(value.split_whitespace());
        }
        items
    }
}

fn push(file: &mut UnitFile, key: String, value: String) {
    if let Some(section) = file.sections.last_mut() {
        section.entries.push((key, value));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sections_repeats_and_continuations() {
        let f = UnitFile::parse(
            "t",
            "# c\n[Unit]\nWants=a b\nWants=c\n\n[Service]\n; c\nExecStart=/bin/x \\\n  --flag \\\n  y\nCapabilityBoundingSet=\nSystemCallFilter=@system-service\nSystemCallFilter=~@privileged\n",
        )
        .unwrap();
        assert_eq!(f.list("Unit", "Wants"), ["a", "b", "c"]);
        assert_eq!(f.get("Service", "ExecStart"), Some("/bin/x --flag y"));
        assert_eq!(f.get("Service", "CapabilityBoundingSet"), Some(""));
        assert_eq!(
            f.all("Service", "SystemCallFilter"),
            ["@system-service", "~@privileged"]
        );
        assert_eq!(f.get("Install", "WantedBy"), None);
    }

    #[test]
    fn empty_assignment_resets_a_list() {
        let f = UnitFile::parse(
            "t",
            "[Service]\nReadWritePaths=/a\nReadWritePaths=\nReadWritePaths=/b\n",
        )
        .unwrap();
        assert_eq!(f.list("Service", "ReadWritePaths"), ["/b"]);
    }

    #[test]
    fn malformed_lines_are_errors() {
        assert!(UnitFile::parse("t", "Key=Value\n").is_err());
        assert!(UnitFile::parse("t", "[Unit]\njunk\n").is_err());
        assert!(UnitFile::parse("t", &"#".repeat(MAX_UNIT_FILE_BYTES + 1)).is_err());
    }
}
