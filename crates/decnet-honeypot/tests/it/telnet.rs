//! Live tests of the `telnet` emulator (filled in with the emulator).
