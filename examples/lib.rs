//! Runnable examples of Maestro Conductor, one per capability:
//!
//! - `cargo run -p mc-examples --example controlled_actions` — a host embedding
//!   `mc-actions` on the in-memory stores: register an execution, let it fail, retry
//!   it with step-up, read the audit chain.
//! - `cargo run -p mc-examples --example egress_proxy` — the egress proxy for one task:
//!   an allowed call goes through, an exfiltration attempt is refused and audited, and
//!   the execution's disclosure note lists it.
//! - `cargo run -p mc-examples --example lifecycle_janitor` — the TTL janitor 100 days
//!   later: an expired log deleted with a signed manifest, a young receipt kept.
//! - `cargo run -p mc-examples --example drift_detector` — a Deployment scaled by hand,
//!   found by a scan, with the PR bot's proposal.
