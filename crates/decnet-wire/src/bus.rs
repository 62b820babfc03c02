//! Placeholder for the `bus` codec; filled in by its issue.
