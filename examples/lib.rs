//! Runnable examples of Maestro Conductor, one per capability:
//!
//! - `cargo run -p mc-examples --example controlled_actions` — a host embedding
//!   `mc-actions` on the in-memory stores: register an execution, let it fail, retry
//!   it with step-up, read the audit chain.
