//! Placeholder for the `resp` codec; filled in by its issue.
