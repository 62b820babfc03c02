//! Placeholder for the `pgwire` codec; filled in by its issue.
