//! Progress display.
