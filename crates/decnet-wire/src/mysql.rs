//! Placeholder for the `mysql` codec; filled in by its issue.
