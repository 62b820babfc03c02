//! Placeholder for the `telnet` codec; filled in by its issue.
