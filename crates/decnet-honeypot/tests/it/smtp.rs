//! Live tests of the `smtp` emulator (filled in with the emulator).
