//! Cross-crate integration tests live in `it/`. This library only compiles the README's Rust
//! examples as doc tests, so the README cannot drift from the API.

#![doc = include_str!("../README.md")]
