//! The one integration-test binary of veo3-rs.
