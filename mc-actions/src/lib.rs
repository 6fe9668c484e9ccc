//! # mc-actions — controlled console actions
//!
//! Cancel, retry and replay of executions behind the guards of spec §3.1 and §7
//! (MC-UI-1101/1102/1103): the per-tenant flag `console_actions_enabled`, a pluggable
//! [`ActionPolicy`] (role rule by default, the Rego access pack from `mc-policy`
//! in production), the execution's state, and a step-up grant bound to the exact
//! tenant, actor, action and execution. An accepted action commits its state
//! transition, exactly one `mc.exec.action` audit event and its idempotency record in
//! one unit of work; repeating the request with the same `Idempotency-Key` returns
//! the first outcome and writes nothing.
//!
//! See [`ActionService`] for a complete example.
//!
//! Modules:
//! - `service` — [`ActionService`]: `perform`, `perform_many`, `allowed_actions`;
//! - `policy` — [`ActionPolicy`], [`RolePolicy`], [`legal_in_state`];
//! - `stepup` — [`HmacStepUp`], the test/demo step-up verifier;
//! - `rego` (feature `rego`) — `RegoActionPolicy`, the `mc-policy` access pack;
//! - `request`, `error` — [`ActionRequest`], [`ActionOutcome`], [`ActionError`].

#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod error;
mod policy;
#[cfg(feature = "rego")]
mod rego;
mod request;
mod rollback;
mod service;
mod stepup;

pub use error::ActionError;
pub use policy::{ActionPolicy, PolicyDecision, RolePolicy, legal_in_state};
#[cfg(feature = "rego")]
pub use rego::RegoActionPolicy;
pub use request::{ActionOutcome, ActionRequest, MAX_REASON_CHARS, ReplayedExecution};
pub use rollback::{BadAction, ROLLBACK_EVENT, Rollback, RollbackPolicy, RollbackWatch};
pub use service::{
    ACTION_LATENCY_METRIC, ActionAvailability, ActionObserver, ActionService, BulkItem, RateCap,
    STARTED_FIELD,
};
pub use stepup::HmacStepUp;
