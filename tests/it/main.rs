//! The one integration-test binary of veo3-rs: every cross-crate test lives in a module here,
//! so the workspace links one test executable instead of one per file.

mod batch;
mod batch_input;
mod blocking;
mod callbacks;
mod cli;
mod client;
mod core;
mod drivers;
mod engine;
mod jobs;
mod publish;
mod sandbox;
mod support;
mod types;
mod workers;
