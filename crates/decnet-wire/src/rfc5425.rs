//! Placeholder for the `rfc5425` codec; filled in by its issue.
