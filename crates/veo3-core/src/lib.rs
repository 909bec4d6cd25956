//! The transport-agnostic Veo3Api trait, error model, retry and polling decisions for kie.ai's Veo 3 API.
pub mod download;
pub mod webhook;
