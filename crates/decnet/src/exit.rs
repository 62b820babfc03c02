//! Exit statuses and one-line error rendering.

use std::fmt;
use std::process::ExitCode;

/// Bad input found at the CLI edge (not by a library): exit status 2.
#[derive(Debug)]
pub struct Invalid(pub String);

impl fmt::Display for Invalid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Invalid {}

/// Shorthand for an [`Invalid`] error.
pub fn invalid(msg: impl Into<String>) -> anyhow::Error {
    anyhow::Error::new(Invalid(msg.into()))
}

/// How a command ended when it did not fail.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// Everything asked for was done.
    Ok,
    /// Some of it was done (e.g. some services failed to start): exit status 3.
    Partial,
}

impl From<Status> for ExitCode {
    fn from(s: Status) -> Self {
        match s {
            Status::Ok => ExitCode::SUCCESS,
            Status::Partial => ExitCode::from(3),
        }
    }
}

/// 2 for validation errors anywhere in the chain, 1 otherwise.
pub fn code_for(err: &anyhow::Error) -> u8 {
    for cause in err.chain() {
        if cause.is::<Invalid>() {
            return 2;
        }
        if let Some(e) = cause.downcast_ref::<decnet_core::Error>()
            && e.is_validation()
        {
            return 2;
        }
        if let Some(e) = cause.downcast_ref::<decnet_runtime::Error>()
            && e.is_validation()
        {
            return 2;
        }
    }
    1
}

/// The cause chain on one line, without repeating a cause its parent already quotes.
pub fn one_line(err: &anyhow::Error) -> String {
    let mut out = String::new();
    let mut last = String::new();
    for cause in err.chain() {
        let text = cause.to_string();
        if !last.is_empty() && last.contains(&text) {
            continue;
        }
        if !out.is_empty() {
            out.push_str(": ");
        }
        out.push_str(&text);
        last = text;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use anyhow::Context as _;

    #[test]
    fn validation_errors_exit_2() {
        let e = anyhow::Error::new(decnet_core::Error::DuplicateName("a".into())).context("plan");
        assert_eq!(code_for(&e), 2);
        assert_eq!(code_for(&invalid("x")), 2);
        let io = std::io::Error::other("disk");
        assert_eq!(code_for(&anyhow::Error::new(io)), 1);
    }

    #[test]
    fn one_line_skips_repeated_causes() {
        let e: anyhow::Result<()> = Err(anyhow::anyhow!("inner")).context("outer");
        assert_eq!(one_line(&e.unwrap_err()), "outer: inner");
    }
}
