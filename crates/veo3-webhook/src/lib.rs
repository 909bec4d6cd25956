//! A verified, deduplicating callback receiver for kie.ai's Veo 3 API (in progress).
