//! Placeholder for the `ftp` codec; filled in by its issue.
