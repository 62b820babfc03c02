//! Placeholder for the `rfc5424` codec; filled in by its issue.
