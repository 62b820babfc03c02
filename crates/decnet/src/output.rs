//! Tables for terminals and pipes, JSON for scripts.

use std::io::IsTerminal;

use anyhow::Result;
use comfy_table::{Table, presets};
use serde::Serialize;

/// A table with the given header, styled for a terminal or plain for a pipe.
pub fn table(header: &[&str]) -> Table {
    let mut t = Table::new();
    t.load_preset(if std::io::stdout().is_terminal() {
        presets::UTF8_HORIZONTAL_ONLY
    } else {
        presets::NOTHING
    });
    t.set_header(header.iter().copied());
    t
}

/// Prints `value` as pretty JSON on stdout.
pub fn json<T: Serialize>(value: &T) -> Result<()> {
    println!("{}", serde_json::to_string_pretty(value)?);
    Ok(())
}
