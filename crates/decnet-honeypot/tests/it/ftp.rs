//! Live tests of the `ftp` emulator (filled in with the emulator).
