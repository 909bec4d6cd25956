//! Integration tests: core.
