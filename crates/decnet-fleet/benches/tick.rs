//! Reconciler tick benchmark (filled in below).
fn main() {}
