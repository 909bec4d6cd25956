//! Integration tests: callbacks.
