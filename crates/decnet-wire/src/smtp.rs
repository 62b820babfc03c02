//! Placeholder for the `smtp` codec; filled in by its issue.
