//! # mc-core — the heart of Maestro Conductor's control plane
//!
//! Validated ids, executions and their state machine, hash-chained audit events,
//! per-tenant flags, the I/O traits every other crate builds on, in-memory
//! implementations of each, and (feature `testkit`) the conformance suites every
//! adapter must pass. This crate does no I/O of its own.
//!
//! ```
//! use mc_core::{ActionCommit, Clock, Digest, Execution, ExecutionId, ExecutionStore,
//!               ManualClock, MemoryStore, TenantId};
//! use time::macros::datetime;
//!
//! # tokio_test_block_on(async {
//! let store = MemoryStore::new();
//! let clock = ManualClock::new(datetime!(2025-12-10 18:00 UTC));
//! let tenant = TenantId::new("acme").unwrap();
//! let exec = Execution::new(tenant.clone(), ExecutionId::new("exec_123").unwrap(),
//!     Digest::of(b"manifest"), Digest::of(b"inputs"), clock.now());
//! let mut unit = ActionCommit::new(tenant.clone(), clock.now());
//! unit.create = Some(exec.clone());
//! store.commit(unit).await.unwrap();
//! assert_eq!(store.get(&tenant, &exec.id).await.unwrap(), exec);
//! # });
//! # fn tokio_test_block_on<F: std::future::Future>(f: F) -> F::Output {
//! #     tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(f)
//! # }
//! ```
//!
//! Modules:
//! - [`id`] — `TenantId`, `ExecutionId`, `ActorId`, `IdempotencyKey`;
//! - [`execution`] — `Execution`, `ExecutionState`, the transition table;
//! - [`audit`] — `AuditEvent` (spec §5.7) and the per-tenant hash chain;
//! - [`flag`] — the four release flags of spec §9;
//! - [`store`] — `ExecutionStore` (with the one-call unit of work), `AuditLog`, `FlagStore`;
//! - [`blob`], [`signed_url`] — `BlobStore`, keys, pre-signed URLs;
//! - [`stepup`] — `StepUpVerifier` and grants; [`drift`] — `DriftSource`;
//! - [`clock`] — `Clock`, `SystemClock`, `ManualClock`; [`memory`] — in-memory adapters;
//! - [`telemetry`] — the catalogue of every metric the crates emit;
//! - `testkit` (feature) — the conformance suites.

#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod action;
pub mod actor;
pub mod audit;
pub mod blob;
pub mod clock;
pub mod drift;
pub mod execution;
pub mod flag;
pub mod id;
pub mod memory;
pub mod retention;
pub mod signed_url;
pub mod stepup;
pub mod store;
pub mod telemetry;
#[cfg(feature = "testkit")]
pub mod testkit;

pub use action::ActionKind;
pub use actor::Actor;
pub use audit::{AuditEvent, NewAuditEvent, verify_chain};
pub use blob::{BlobError, BlobKey, BlobMeta, BlobStore, ByteStream, PutMode, SignedUrl};
pub use clock::{Clock, ManualClock, SystemClock};
pub use drift::{
    Alert, AlertSeverity, ChangeProposal, ChangeProposer, DriftSource, LiveObject, Pager,
    ProposalRef,
};
pub use execution::{Digest, Execution, ExecutionState};
pub use flag::Flag;
pub use id::{ActorId, ExecutionId, IdError, IdempotencyKey, TaskId, TenantId};
pub use memory::{
    MemoryBlobStore, MemoryChangeProposer, MemoryDriftSource, MemoryFlagStore, MemoryPager,
    MemoryStore,
};
pub use retention::{RetentionCommit, RetentionStore};
pub use stepup::{StepUpBinding, StepUpError, StepUpGrant, StepUpVerifier};
pub use store::{
    ActionCommit, AuditLog, CommitResult, Cursor, ExecutionQuery, ExecutionStore, FlagStore,
    IdempotencyRecord, Page, StoreError, Transition,
};
