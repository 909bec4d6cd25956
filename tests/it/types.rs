//! Integration tests: types.
