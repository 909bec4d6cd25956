//! Webhook (callback) verification, deduplication and the completion inbox (in progress).
