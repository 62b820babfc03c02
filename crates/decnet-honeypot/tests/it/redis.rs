//! Live tests of the `redis` emulator (filled in with the emulator).
