//! Wire models for the Veo3 API.
