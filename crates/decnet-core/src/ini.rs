//! A small INI reader compatible with Python's `configparser` as the reference uses it,
//! keeping the line of every section and key so errors can point at them.
//!
//! Written by hand because the INI crates on crates.io either drop line numbers or do
//! not follow `configparser`'s rules (case-folded keys, `=`/`:` delimiters, indented
//! continuation lines, `[DEFAULT]`, `%(name)s` interpolation).

use crate::Error;
use crate::error::Location;

/// Largest INI text accepted (the reference's API accepts 512 KiB).
pub const MAX_INI_BYTES: usize = 512 * 1024;

/// One `key = value` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// Key, lower-cased as `configparser` does.
    pub key: String,
    /// Value after interpolation, continuation lines joined with `\n`.
    pub value: String,
    /// Line of the key.
    pub line: usize,
}

/// One section with its entries in file order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Section {
    /// Section name as written (case kept).
    pub name: String,
    /// Line of the header.
    pub line: usize,
    /// Entries, `[DEFAULT]` ones appended where the section lacks them.
    pub entries: Vec<Entry>,
}

impl Section {
    /// The entry for `key`, if present.
    pub fn get(&self, key: &str) -> Option<&Entry> {
        self.entries.iter().find(|e| e.key == key)
    }
}

/// A parsed INI document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ini {
    /// File name used in error messages.
    pub file: String,
    /// Sections in file order (without `[DEFAULT]`).
    pub sections: Vec<Section>,
}

impl Ini {
    /// The location of `section`'s header, or of one of its keys.
    pub fn location(&self, section: &Section, entry: Option<&Entry>) -> Location {
        Location {
            file: self.file.clone(),
            line: entry.map_or(section.line, |e| e.line),
            section: Some(section.name.clone()),
            key: entry.map(|e| e.key.clone()),
        }
    }

    /// Finds a section by exact name.
    pub fn section(&self, name: &str) -> Option<&Section> {
        self.sections.iter().find(|s| s.name == name)
    }
}

struct Raw {
    name: String,
    line: usize,
    entries: Vec<(String, String, usize)>,
}

/// Strips an inline comment: `#` or `;` preceded by whitespace.
fn strip_inline_comment(value: &str) -> &str {
    let bytes = value.as_bytes();
    for (i, b) in bytes.iter().enumerate() {
        if (*b == b'#' || *b == b';') && i > 0 && bytes[i - 1].is_ascii_whitespace() {
            return value[..i].trim_end();
        }
    }
    value
}

/// Parses `text`. `file` names the source in error messages.
///
/// # Errors
/// [`Error::At`] with the line of the first malformed construct: a key outside any
/// section, a line that is neither a section, a key nor a continuation, a duplicate
/// section or key (as `configparser`'s strict mode), or a bad `%` interpolation.
pub fn parse(file: &str, text: &str) -> Result<Ini, Error> {
    let at = |line: usize, section: Option<&str>, key: Option<&str>, msg: String| {
        Error::Invalid(msg).at(Location {
            file: file.to_owned(),
            line,
            section: section.map(str::to_owned),
            key: key.map(str::to_owned),
        })
    };
    if text.len() > MAX_INI_BYTES {
        return Err(at(
            1,
            None,
            None,
            format!(
                "file is {} bytes, at most {MAX_INI_BYTES} are accepted",
                text.len()
            ),
        ));
    }
    let mut raws: Vec<Raw> = Vec::new();
    let mut defaults: Vec<(String, String, usize)> = Vec::new();
    let mut in_default = false;
    // Index of the entry that continuation lines extend: (in_default, entry index).
    let mut last_entry: Option<usize> = None;
    for (idx, raw_line) in text.lines().enumerate() {
        let line_no = idx + 1;
        let line = raw_line.trim_end_matches('\r');
        let trimmed = line.trim();
        if trimmed.is_empty() {
            last_entry = None;
            continue;
        }
        if trimmed.starts_with('#') || trimmed.starts_with(';') {
            continue;
        }
        let indented = line.starts_with(' ') || line.starts_with('\t');
        if indented && let Some(i) = last_entry {
            let target = if in_default {
                defaults.get_mut(i)
            } else {
                raws.last_mut().and_then(|s| s.entries.get_mut(i))
            };
            if let Some(entry) = target {
                entry.1.push('\n');
                entry.1.push_str(strip_inline_comment(trimmed));
                continue;
            }
        }
        if let Some(rest) = trimmed.strip_prefix('[') {
            let Some(name) = rest.strip_suffix(']') else {
                return Err(at(
                    line_no,
                    None,
                    None,
                    format!("malformed section header '{trimmed}'"),
                ));
            };
            let name = name.trim().to_owned();
            if name.is_empty() {
                return Err(at(line_no, None, None, "empty section name".into()));
            }
            last_entry = None;
            if name == "DEFAULT" {
                in_default = true;
                continue;
            }
            in_default = false;
            if raws.iter().any(|s| s.name == name) {
                return Err(at(
                    line_no,
                    Some(&name),
                    None,
                    format!("section [{name}] appears twice"),
                ));
            }
            raws.push(Raw {
                name,
                line: line_no,
                entries: Vec::new(),
            });
            continue;
        }
        let delim = trimmed.find(['=', ':']);
        let Some(pos) = delim else {
            let section = raws.last().map(|s| s.name.as_str());
            return Err(at(
                line_no,
                section,
                None,
                format!("expected 'key = value', found '{trimmed}'"),
            ));
        };
        let key = trimmed[..pos].trim().to_lowercase();
        let value = strip_inline_comment(trimmed[pos + 1..].trim()).to_owned();
        if key.is_empty() {
            return Err(at(line_no, None, None, "empty key".into()));
        }
        let entries = if in_default {
            &mut defaults
        } else {
            match raws.last_mut() {
                Some(s) => &mut s.entries,
                None => {
                    return Err(at(
                        line_no,
                        None,
                        Some(&key),
                        "key outside of any section (add a [section] header above it)".into(),
                    ));
                }
            }
        };
        if entries.iter().any(|(k, _, _)| *k == key) {
            let section = if in_default {
                Some("DEFAULT")
            } else {
                raws.last().map(|s| s.name.as_str())
            };
            return Err(at(
                line_no,
                section,
                Some(&key),
                "key appears twice in this section".into(),
            ));
        }
        entries.push((key, value, line_no));
        last_entry = Some(entries.len() - 1);
    }

    let mut sections = Vec::with_capacity(raws.len());
    for raw in raws {
        let mut merged = raw.entries.clone();
        for d in &defaults {
            if !merged.iter().any(|(k, _, _)| *k == d.0) {
                merged.push(d.clone());
            }
        }
        let mut entries = Vec::with_capacity(merged.len());
        for (key, value, line) in &merged {
            let value = interpolate(value, &merged, 0)
                .map_err(|msg| at(*line, Some(&raw.name), Some(key), msg))?;
            entries.push(Entry {
                key: key.clone(),
                value,
                line: *line,
            });
        }
        sections.push(Section {
            name: raw.name,
            line: raw.line,
            entries,
        });
    }
    Ok(Ini {
        file: file.to_owned(),
        sections,
    })
}

/// `configparser`'s basic interpolation: `%%` is a literal `%`, `%(name)s` the value of
/// another key of the same section (or `[DEFAULT]`); any other `%` is an error.
fn interpolate(
    value: &str,
    scope: &[(String, String, usize)],
    depth: usize,
) -> Result<String, String> {
    if depth > 10 {
        return Err("interpolation nests deeper than 10 levels".into());
    }
    let mut out = String::with_capacity(value.len());
    let mut rest = value;
    while let Some(pos) = rest.find('%') {
        out.push_str(&rest[..pos]);
        let tail = &rest[pos + 1..];
        if let Some(t) = tail.strip_prefix('%') {
            out.push('%');
            rest = t;
        } else if let Some(t) = tail.strip_prefix('(') {
            let Some(end) = t.find(")s") else {
                return Err(format!(
                    "bad interpolation syntax in '{value}' (write %% for a literal %)"
                ));
            };
            let name = t[..end].to_lowercase();
            let Some((_, referenced, _)) = scope.iter().find(|(k, _, _)| *k == name) else {
                return Err(format!("interpolation refers to missing key '{name}'"));
            };
            out.push_str(&interpolate(referenced, scope, depth + 1)?);
            rest = &t[end + 2..];
        } else {
            return Err(format!(
                "'%' must be followed by '%' or '(' in '{value}' (write %% for a literal %)"
            ));
        }
    }
    out.push_str(rest);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn configparser_rules() {
        let text = "; comment\n[DEFAULT]\nnet = 10.0.0.0/24\n\n[general]\nGW = 10.0.0.1 # inline\ninterface: eth0\n\n[web]\nservices = http,\n  ssh\nlabel = %(net)s and 100%%\n";
        let ini = parse("t.ini", text).unwrap();
        let general = ini.section("general").unwrap();
        assert_eq!(general.get("gw").unwrap().value, "10.0.0.1");
        assert_eq!(general.get("gw").unwrap().line, 6);
        assert_eq!(general.get("interface").unwrap().value, "eth0");
        assert_eq!(general.get("net").unwrap().value, "10.0.0.0/24");
        let web = ini.section("web").unwrap();
        assert_eq!(web.get("services").unwrap().value, "http,\nssh");
        assert_eq!(web.get("label").unwrap().value, "10.0.0.0/24 and 100%");
        assert_eq!(ini.sections.len(), 2);
    }

    #[test]
    fn errors_carry_the_line() {
        let err = parse("a.ini", "x = 1\n").unwrap_err().to_string();
        assert!(err.starts_with("a.ini:1: key 'x'"), "{err}");
        let err = parse("a.ini", "[s]\nnot a pair\n").unwrap_err().to_string();
        assert!(err.starts_with("a.ini:2: section [s]"), "{err}");
        let err = parse("a.ini", "[s]\na=1\n[s]\n").unwrap_err().to_string();
        assert!(err.contains("a.ini:3") && err.contains("twice"), "{err}");
        let err = parse("a.ini", "[s]\na=1\nA=2\n").unwrap_err().to_string();
        assert!(err.contains("a.ini:3") && err.contains("'a'"), "{err}");
        let err = parse("a.ini", "[s]\np = 50%\n").unwrap_err().to_string();
        assert!(err.contains("a.ini:2") && err.contains("%%"), "{err}");
        let err = parse("a.ini", "[s\n").unwrap_err().to_string();
        assert!(err.contains("malformed"), "{err}");
    }

    proptest::proptest! {
        #[test]
        fn never_panics(text in "\\PC{0,200}") {
            let _ = parse("fuzz.ini", &text);
        }

        #[test]
        fn never_panics_on_ini_like_text(text in "(\\[[a-z%().]{0,6}\\]\n|[a-z ]{0,4}[=:][a-z%() ]{0,8}\n| [a-z]{0,4}\n|#[a-z]{0,3}\n){0,12}") {
            let _ = parse("fuzz.ini", &text);
        }
    }
}
