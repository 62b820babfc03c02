//! Live tests of the `ssh` emulator (filled in with the emulator).
