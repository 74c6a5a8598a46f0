//! Fixture objects for the end-to-end tests (built by build.rs).
