//! Live tests of the `postgres` emulator (filled in with the emulator).
