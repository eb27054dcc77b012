//! dsmath data crate.
