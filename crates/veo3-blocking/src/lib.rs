//! Blocking client for kie.ai's Veo 3 / 3.1 video-generation API, without an async runtime.
