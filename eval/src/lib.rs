//! dsmath eval crate.
