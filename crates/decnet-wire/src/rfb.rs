//! Placeholder for the `rfb` codec; filled in by its issue.
