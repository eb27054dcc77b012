//! Cross-crate integration tests for dsmath.
