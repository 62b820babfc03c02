//! Live tests of the `http` emulator (filled in with the emulator).
