//! Live tests of the `mysql` emulator (filled in with the emulator).
