//! Integration tests: blocking.
