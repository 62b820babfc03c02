//! Live tests of the `https` emulator (filled in with the emulator).
