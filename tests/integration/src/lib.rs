//! integration test crate
