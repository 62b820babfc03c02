//! Splits one typed line into lists, pipelines, simple commands and redirections, without
//! evaluating anything: no command substitution, no globbing, no arithmetic.

use std::collections::BTreeMap;

/// Most words one line may hold; the rest is dropped.
pub const MAX_WORDS: usize = 256;
/// Most commands one line may hold (across `;`, `&&`, `||` and `|`).
pub const MAX_COMMANDS: usize = 32;

/// How a pipeline is joined to the one before it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Join {
    /// First pipeline, `;`, newline or `&`.
    Always,
    /// `&&`.
    And,
    /// `||`.
    Or,
}

/// One output redirection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Redirect {
    /// File descriptor redirected (1 or 2).
    pub fd: u8,
    /// `>>` instead of `>`.
    pub append: bool,
    /// Target path as typed (`None` for `2>&1`).
    pub target: Option<String>,
}

/// One simple command.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Simple {
    /// Words after expansion of `$VAR` and `~`.
    pub words: Vec<String>,
    /// Output redirections.
    pub redirects: Vec<Redirect>,
    /// Input redirection target.
    pub stdin: Option<String>,
}

/// Commands joined by `|`.
pub type Pipeline = Vec<Simple>;

#[derive(Debug, Clone, PartialEq, Eq)]
enum Tok {
    Word(String),
    Op(&'static str),
}

/// Variables visible to expansion.
pub struct Vars<'a> {
    /// Environment.
    pub env: &'a BTreeMap<String, String>,
    /// `$?`.
    pub status: i32,
    /// `~`.
    pub home: &'a str,
    /// `$$`.
    pub pid: u32,
}

impl Vars<'_> {
    fn lookup(&self, name: &str) -> String {
        match name {
            "?" => self.status.to_string(),
            "$" => self.pid.to_string(),
            "0" => "-bash".to_owned(),
            _ => self.env.get(name).cloned().unwrap_or_default(),
        }
    }
}

fn is_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

/// Reads a `$...` reference after the `$` and appends its value.
fn expand_dollar(chars: &[char], i: &mut usize, vars: &Vars<'_>, out: &mut String) {
    let Some(&c) = chars.get(*i) else {
        out.push('$');
        return;
    };
    if c == '{' {
        let start = *i + 1;
        let mut j = start;
        while j < chars.len() && chars[j] != '}' {
            j += 1;
        }
        if j < chars.len() {
            let name: String = chars[start..j].iter().collect();
            out.push_str(&vars.lookup(&name));
            *i = j + 1;
        } else {
            out.push('$');
        }
    } else if c == '?' || c == '$' || c.is_ascii_digit() {
        out.push_str(&vars.lookup(&c.to_string()));
        *i += 1;
    } else if c.is_ascii_alphabetic() || c == '_' {
        let start = *i;
        while *i < chars.len() && is_name_char(chars[*i]) {
            *i += 1;
        }
        let name: String = chars[start..*i].iter().collect();
        out.push_str(&vars.lookup(&name));
    } else {
        // `$(`, `$'`, `$"` and friends stay literal: nothing is evaluated.
        out.push('$');
    }
}

fn tokenize(line: &str, vars: &Vars<'_>) -> Vec<Tok> {
    let chars: Vec<char> = line.chars().collect();
    let mut toks = Vec::new();
    let mut word = String::new();
    let mut in_word = false;
    let mut i = 0;
    let flush = |word: &mut String, in_word: &mut bool, toks: &mut Vec<Tok>| {
        if *in_word {
            toks.push(Tok::Word(std::mem::take(word)));
            *in_word = false;
        }
    };
    while i < chars.len() && toks.len() < MAX_WORDS {
        let c = chars[i];
        match c {
            ' ' | '\t' | '\r' | '\n' => {
                flush(&mut word, &mut in_word, &mut toks);
                i += 1;
            }
            '#' if !in_word => break,
            '\'' => {
                in_word = true;
                i += 1;
                while i < chars.len() && chars[i] != '\'' {
                    word.push(chars[i]);
                    i += 1;
                }
                i += 1;
            }
            '"' => {
                in_word = true;
                i += 1;
                while i < chars.len() && chars[i] != '"' {
                    match chars[i] {
                        '\\' if matches!(chars.get(i + 1), Some('"' | '\\' | '$' | '`')) => {
                            word.push(chars[i + 1]);
                            i += 2;
                        }
                        '$' => {
                            i += 1;
                            expand_dollar(&chars, &mut i, vars, &mut word);
                        }
                        other => {
                            word.push(other);
                            i += 1;
                        }
                    }
                }
                i += 1;
            }
            '\\' => {
                in_word = true;
                if let Some(&next) = chars.get(i + 1) {
                    word.push(next);
                }
                i += 2;
            }
            '$' => {
                in_word = true;
                i += 1;
                expand_dollar(&chars, &mut i, vars, &mut word);
            }
            '~' if !in_word
                && matches!(
                    chars.get(i + 1),
                    None | Some('/' | ' ' | '\t' | ';' | '|' | '&')
                ) =>
            {
                in_word = true;
                word.push_str(vars.home);
                i += 1;
            }
            ';' | '|' | '&' | '>' | '<' => {
                // `2>` and `2>&1` attach to a bare `2`.
                let fd2 = c == '>' && in_word && word == "2";
                let amp_gt = c == '&' && chars.get(i + 1) == Some(&'>');
                if !fd2 {
                    flush(&mut word, &mut in_word, &mut toks);
                } else {
                    word.clear();
                    in_word = false;
                }
                let next = chars.get(i + 1).copied();
                let (op, len): (&'static str, usize) = match (c, next) {
                    ('&', _) if amp_gt => ("&>", 2),
                    ('&', Some('&')) => ("&&", 2),
                    ('|', Some('|')) => ("||", 2),
                    ('>', Some('>')) if fd2 => ("2>>", 2),
                    ('>', Some('&')) if fd2 && chars.get(i + 2) == Some(&'1') => ("2>&1", 3),
                    ('>', _) if fd2 => ("2>", 1),
                    ('>', Some('>')) => (">>", 2),
                    ('>', Some('&')) => (">&", 2),
                    (';', _) => (";", 1),
                    ('|', _) => ("|", 1),
                    ('&', _) => ("&", 1),
                    ('>', _) => (">", 1),
                    _ => ("<", 1),
                };
                toks.push(Tok::Op(op));
                i += len;
            }
            other => {
                in_word = true;
                word.push(other);
                i += 1;
            }
        }
    }
    flush(&mut word, &mut in_word, &mut toks);
    toks
}

/// Parses a line into pipelines with their joins. Malformed pieces (a dangling `|`, an
/// operator without a command) produce empty commands, which the shell reports the way
/// bash reports syntax errors.
pub fn parse(line: &str, vars: &Vars<'_>) -> Result<Vec<(Join, Pipeline)>, String> {
    let toks = tokenize(line, vars);
    let mut out: Vec<(Join, Pipeline)> = Vec::new();
    let mut join = Join::Always;
    let mut pipeline: Pipeline = Vec::new();
    let mut cmd = Simple::default();
    let mut n_commands = 0usize;
    let mut iter = toks.into_iter().peekable();
    while let Some(tok) = iter.next() {
        match tok {
            Tok::Word(w) => cmd.words.push(w),
            Tok::Op(op @ (">" | ">>" | "2>" | "2>>" | "&>" | ">&")) => {
                let target = match iter.next() {
                    Some(Tok::Word(w)) => w,
                    _ => return Err("newline".to_owned()),
                };
                let fd = if op.starts_with('2') { 2 } else { 1 };
                cmd.redirects.push(Redirect {
                    fd,
                    append: op.ends_with(">>"),
                    target: Some(target.clone()),
                });
                if op == "&>" || op == ">&" {
                    cmd.redirects.push(Redirect {
                        fd: 2,
                        append: false,
                        target: Some(target),
                    });
                }
            }
            Tok::Op("2>&1") => cmd.redirects.push(Redirect {
                fd: 2,
                append: false,
                target: None,
            }),
            Tok::Op("<") => match iter.next() {
                Some(Tok::Word(w)) => cmd.stdin = Some(w),
                _ => return Err("newline".to_owned()),
            },
            Tok::Op(op) => {
                if cmd.words.is_empty() && cmd.redirects.is_empty() {
                    return Err(op.to_owned());
                }
                n_commands += 1;
                pipeline.push(std::mem::take(&mut cmd));
                if op != "|" {
                    out.push((join, std::mem::take(&mut pipeline)));
                    join = match op {
                        "&&" => Join::And,
                        "||" => Join::Or,
                        _ => Join::Always,
                    };
                } else if iter.peek().is_none() {
                    return Err("newline".to_owned());
                }
                if n_commands >= MAX_COMMANDS {
                    return Ok(out);
                }
            }
        }
    }
    if !cmd.words.is_empty() || !cmd.redirects.is_empty() {
        pipeline.push(cmd);
    }
    if !pipeline.is_empty() {
        out.push((join, pipeline));
    } else if join != Join::Always {
        return Err("newline".to_owned());
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(line: &str) -> Vec<(Join, Pipeline)> {
        let mut env = BTreeMap::new();
        env.insert("HOME".to_owned(), "/root".to_owned());
        env.insert("USER".to_owned(), "root".to_owned());
        let vars = Vars {
            env: &env,
            status: 127,
            home: "/root",
            pid: 4242,
        };
        parse(line, &vars).unwrap()
    }

    fn words(line: &str) -> Vec<Vec<Vec<String>>> {
        p(line)
            .into_iter()
            .map(|(_, pl)| pl.into_iter().map(|c| c.words).collect())
            .collect()
    }

    #[test]
    fn sequences_pipes_and_quotes() {
        assert_eq!(
            words("uname -a; id && cat /proc/cpuinfo | grep name | wc -l"),
            vec![
                vec![vec!["uname", "-a"]],
                vec![vec!["id"]],
                vec![
                    vec!["cat", "/proc/cpuinfo"],
                    vec!["grep", "name"],
                    vec!["wc", "-l"]
                ],
            ]
        );
        assert_eq!(
            words(r#"echo 'a b' "c $USER" \$HOME $? ~ ~/x $(id) `id`"#),
            vec![vec![vec![
                "echo", "a b", "c root", "$HOME", "127", "/root", "/root/x", "$(id)", "`id`"
            ]]]
        );
        let joins: Vec<Join> = p("a || b && c; d & e")
            .into_iter()
            .map(|(j, _)| j)
            .collect();
        assert_eq!(
            joins,
            [
                Join::Always,
                Join::Or,
                Join::And,
                Join::Always,
                Join::Always
            ]
        );
    }

    #[test]
    fn redirections() {
        let l = p("echo hi > /tmp/x 2>/dev/null; ls 2>&1 >> log");
        let first = &l[0].1[0];
        assert_eq!(first.words, ["echo", "hi"]);
        assert_eq!(first.redirects.len(), 2);
        assert_eq!(first.redirects[1].fd, 2);
        assert_eq!(first.redirects[1].target.as_deref(), Some("/dev/null"));
        let second = &l[1].1[0];
        assert_eq!(second.redirects[0].target, None);
        assert!(second.redirects[1].append);
    }

    #[test]
    fn syntax_errors_and_comments() {
        let env = BTreeMap::new();
        let vars = Vars {
            env: &env,
            status: 0,
            home: "/root",
            pid: 1,
        };
        assert_eq!(parse("; ls", &vars).unwrap_err(), ";");
        assert_eq!(parse("ls |", &vars).unwrap_err(), "newline");
        assert_eq!(parse("ls &&", &vars).unwrap_err(), "newline");
        assert!(parse("# just a comment", &vars).unwrap().is_empty());
    }

    proptest::proptest! {
        #[test]
        fn never_panics_and_stays_bounded(line in ".{0,600}") {
            let env = BTreeMap::new();
            let vars = Vars { env: &env, status: 0, home: "/root", pid: 1 };
            if let Ok(list) = parse(&line, &vars) {
                let n: usize = list.iter().map(|(_, p)| p.len()).sum();
                proptest::prop_assert!(n <= MAX_COMMANDS + 1);
            }
        }
    }
}
