//! dsmath train crate.
