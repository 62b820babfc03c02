//! Live tests of the `vnc` emulator (filled in with the emulator).
