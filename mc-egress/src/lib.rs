//! # mc-egress — per-task egress allowlists, deny by default
//!
//! Spec §3.5 (MC-RUN-1141, MC-RUN-1142), §5.3, §6 (`mc_egress_block_total`), §7
//! (deny by default), §9 (flag `egress_policy_enforce`). This crate is the pure part:
//! it reads the `egress:` sections of a workflow manifest, parses the destination a
//! task asks for (untrusted input, parsed strictly), checks it against the task's
//! allowlist and every resolved address against the [`AddressPolicy`], and describes
//! a blocked call as an audit event and a metric. It does no I/O; the proxy that
//! enforces it on real sockets is the adapter crate `mc-egress-proxy`.
//!
//! ```
//! use mc_egress::{decide, Destination, Mode, Verdict, WorkflowEgress};
//!
//! let manifest = WorkflowEgress::from_yaml(r#"
//! tasks:
//!   - id: fetch
//!     uses: pkg:http/get@1.0.0
//!     egress:
//!       allow:
//!         - host: api.example.com
//!           ports: [443]
//! "#)?;
//! let fetch = manifest.task("fetch").expect("declared above");
//! let to = |s: &str| Destination::from_authority(s).unwrap();
//! assert_eq!(decide(fetch, &to("api.example.com:443"), Mode::Enforce), Verdict::Allow);
//! // SMTP to anywhere: refused when enforcing, recorded and let through in shadow mode.
//! assert!(!decide(fetch, &to("mx.example.com:25"), Mode::Enforce).proceeds());
//! assert!(decide(fetch, &to("mx.example.com:25"), Mode::Shadow).proceeds());
//! # Ok::<(), mc_egress::EgressError>(())
//! ```
//!
//! The order of checks a proxy follows (and `mc-egress-proxy` does):
//! 1. the task's credentials name a registered task, else [`DenyReason::UnknownTask`];
//! 2. the request target parses ([`Destination`]), else [`DenyReason::BadTarget`];
//! 3. the allowlist covers host and port ([`decide`]) — **before** any DNS lookup, so
//!    a denied name is never resolved (no DNS exfiltration through the proxy);
//! 4. every address the name resolves to passes the [`AddressPolicy`] (metadata
//!    service, loopback, private ranges: enforced in shadow mode too), and the proxy
//!    connects to an address it checked.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod addr;
mod decision;
mod dest;
mod host;
mod note;
mod policy;

pub use addr::AddressPolicy;
pub use decision::{
    BLOCK_METRIC, Blocked, DenyReason, EGRESS_BLOCKED, Mode, TaskRef, Verdict, count_block, decide,
};
pub use dest::{Destination, DestinationError};
pub use host::{Host, HostError, canonical_ip, normalize_name};
pub use ipnet::IpNet;
pub use mc_core::TaskId;
pub use note::{
    DisclosureNote, MAX_LISTED, NOTE_NAME, NoteEntry, NoteError, write_disclosure_note,
};
pub use policy::{AllowRule, HostPattern, TaskEgress, WorkflowEgress};

/// Errors reading an egress policy.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EgressError {
    /// The manifest is not YAML of the manifest's shape (or `egress:` has an
    /// unknown key).
    #[error("manifest: {0}")]
    Yaml(String),
    /// A value is wrong; `path` names it (`tasks[0].egress.allow[1].ports[0]`).
    #[error("{path}: {reason}")]
    Invalid {
        /// Where.
        path: String,
        /// Why.
        reason: String,
    },
    /// Two tasks share an id.
    #[error("two tasks have the id {id:?}")]
    DuplicateTask {
        /// The id.
        id: String,
    },
}
