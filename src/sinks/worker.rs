//! Sink queue worker.
