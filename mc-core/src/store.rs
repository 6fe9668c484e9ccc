//! Storage traits: executions (with the unit of work), audit log, flags.

use std::collections::BTreeMap;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::audit::{AuditEvent, NewAuditEvent};
use crate::execution::{Digest, Execution, ExecutionState};
use crate::flag::Flag;
use crate::id::{ExecutionId, IdempotencyKey, TenantId};

/// Errors of every store trait. Variants are what a caller matches on.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StoreError {
    /// No such execution *for this tenant* (a foreign tenant's id is also NotFound).
    #[error("execution {id} not found")]
    NotFound {
        /// The id that was looked up.
        id: String,
    },
    /// An execution with this id already exists for the tenant.
    #[error("execution {id} already exists")]
    AlreadyExists {
        /// The duplicate id.
        id: String,
    },
    /// Optimistic concurrency: someone else changed the execution first.
    #[error(
        "execution {id} was changed concurrently (expected version {expected}, found {actual})"
    )]
    VersionConflict {
        /// The execution.
        id: String,
        /// The version the writer read.
        expected: u64,
        /// The version now stored.
        actual: u64,
    },
    /// The requested transition is not in [`crate::execution::TRANSITIONS`].
    #[error("execution {id} cannot go from {from} to {to}")]
    IllegalTransition {
        /// The execution.
        id: String,
        /// Its current state.
        from: ExecutionState,
        /// The requested state.
        to: ExecutionState,
    },
    /// The idempotency key was already used for a different request.
    #[error("idempotency key {key} was already used for a different request")]
    IdempotencyConflict {
        /// The key.
        key: String,
    },
    /// Bad input to a store call (a malformed cursor, a limit out of range).
    #[error("invalid {field}: {reason}")]
    InvalidInput {
        /// The field.
        field: &'static str,
        /// Why.
        reason: String,
    },
    /// A compare-and-set write found another value than the one the writer read
    /// (someone else changed it first); read again and retry.
    #[error("{what} was changed concurrently (expected {expected}, found {actual})")]
    Conflict {
        /// What was written (`retention override acme/logs`).
        what: String,
        /// The value the writer read.
        expected: String,
        /// The value now stored.
        actual: String,
    },
    /// The backing service cannot be reached; retrying later may succeed.
    #[error("store unavailable: {0}")]
    Unavailable(String),
    /// Stored data failed validation when read back.
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
    /// Any other backend failure.
    #[error("store backend error: {0}")]
    Backend(String),
}

/// A state transition inside an [`ActionCommit`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transition {
    /// The execution to change.
    pub execution_id: ExecutionId,
    /// The version the writer read; the commit fails with
    /// [`StoreError::VersionConflict`] if it changed since.
    pub expected_version: u64,
    /// The new state (must be a legal transition from the current one).
    pub to: ExecutionState,
    /// Whether the attempt counter goes up (a retry).
    pub next_attempt: bool,
}

/// The idempotency record of an action: the first outcome, returned again for every
/// repeat of the same request under the same key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IdempotencyRecord {
    /// The client's key, unique per tenant.
    pub key: IdempotencyKey,
    /// SHA-256 of the request's identity (execution, action, actor, reason); the same
    /// key with another fingerprint is a conflict.
    pub fingerprint: Digest,
    /// The outcome of the first request, as JSON.
    pub outcome: serde_json::Value,
    /// When it was recorded.
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
}

/// One unit of work (DESIGN.md rule 2): an optional transition, an optional new
/// execution, audit events and an optional idempotency record, committed together or
/// not at all.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActionCommit {
    /// The tenant every part belongs to.
    pub tenant: TenantId,
    /// Commit time (becomes `updated_at`).
    pub at: OffsetDateTime,
    /// Checked first: if the key exists with the same fingerprint the commit writes
    /// nothing and returns [`CommitResult::Replayed`].
    pub idempotency: Option<IdempotencyRecord>,
    /// A state change of an existing execution.
    pub transition: Option<Transition>,
    /// A new execution (a replay, or the host registering work).
    pub create: Option<Execution>,
    /// Audit events appended to the tenant's chain, in order.
    pub audit: Vec<NewAuditEvent>,
}

impl ActionCommit {
    /// An empty unit of work for `tenant` at `at`.
    pub fn new(tenant: TenantId, at: OffsetDateTime) -> Self {
        ActionCommit {
            tenant,
            at,
            idempotency: None,
            transition: None,
            create: None,
            audit: Vec::new(),
        }
    }

    /// The orchestrator's runtime moving `execution` to `to` at `at` (started,
    /// finished, failed): a transition expecting the version it was read at, with
    /// no new attempt and no audit event — console actions go through `mc-actions`.
    /// A concurrent change makes the commit fail with
    /// [`StoreError::VersionConflict`]; re-read and try again.
    pub fn runtime_transition(
        execution: &Execution,
        to: ExecutionState,
        at: OffsetDateTime,
    ) -> Self {
        let mut unit = ActionCommit::new(execution.tenant.clone(), at);
        unit.transition = Some(Transition {
            execution_id: execution.id.clone(),
            expected_version: execution.version,
            to,
            next_attempt: false,
        });
        unit
    }
}

/// What a commit did.
// Returned once per commit, never stored in bulk: boxing would only add an allocation.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CommitResult {
    /// Everything was written.
    Committed {
        /// The changed execution after the transition.
        updated: Option<Execution>,
        /// The created execution.
        created: Option<Execution>,
        /// The sealed audit events.
        audit: Vec<AuditEvent>,
    },
    /// The idempotency key was already recorded for this same request; nothing was
    /// written and this is the first outcome.
    Replayed {
        /// The recorded outcome.
        outcome: serde_json::Value,
    },
}

/// An opaque keyset-pagination cursor.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Cursor(String);

impl Cursor {
    /// The cursor pointing after `(created_at, id)` in newest-first order.
    pub fn after(created_at: OffsetDateTime, id: &ExecutionId) -> Self {
        let raw = format!("v1|{}|{}", created_at.unix_timestamp_nanos(), id.as_str());
        Cursor(hex::encode(raw))
    }

    /// Wraps a cursor string received from a client (validated by [`Cursor::decode`]).
    pub fn from_string(s: impl Into<String>) -> Self {
        Cursor(s.into())
    }

    /// The cursor as sent to clients.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Decodes the position `(created_at, id)`.
    ///
    /// # Errors
    /// [`StoreError::InvalidInput`] naming `cursor` when it was not produced by
    /// [`Cursor::after`].
    pub fn decode(&self) -> Result<(OffsetDateTime, ExecutionId), StoreError> {
        let bad = |reason: &str| StoreError::InvalidInput {
            field: "cursor",
            reason: reason.to_string(),
        };
        let bytes = hex::decode(&self.0).map_err(|_| bad("not a cursor returned by search"))?;
        let s = String::from_utf8(bytes).map_err(|_| bad("not a cursor returned by search"))?;
        let mut parts = s.splitn(3, '|');
        if parts.next() != Some("v1") {
            return Err(bad("unknown cursor version"));
        }
        let nanos: i128 = parts
            .next()
            .and_then(|n| n.parse().ok())
            .ok_or_else(|| bad("malformed position"))?;
        let ts = OffsetDateTime::from_unix_timestamp_nanos(nanos)
            .map_err(|_| bad("position out of range"))?;
        let id = parts
            .next()
            .and_then(|i| ExecutionId::new(i).ok())
            .ok_or_else(|| bad("malformed execution id"))?;
        Ok((ts, id))
    }
}

/// A console search over a tenant's executions: newest first, keyset-paginated.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ExecutionQuery {
    /// Only these states (empty = any).
    pub states: Vec<ExecutionState>,
    /// Created at or after.
    pub created_from: Option<OffsetDateTime>,
    /// Created strictly before.
    pub created_before: Option<OffsetDateTime>,
    /// Only executions carrying this label `(key, value)`.
    pub label: Option<(String, String)>,
    /// Page size, 1..=[`ExecutionQuery::MAX_LIMIT`] (0 means the default, 50).
    pub limit: u32,
    /// Continue after this cursor.
    pub cursor: Option<Cursor>,
}

impl ExecutionQuery {
    /// Largest page.
    pub const MAX_LIMIT: u32 = 500;
    /// Page size when none is given.
    pub const DEFAULT_LIMIT: u32 = 50;

    /// The effective page size.
    ///
    /// # Errors
    /// [`StoreError::InvalidInput`] naming `limit` when above [`Self::MAX_LIMIT`].
    pub fn effective_limit(&self) -> Result<u32, StoreError> {
        match self.limit {
            0 => Ok(Self::DEFAULT_LIMIT),
            n if n <= Self::MAX_LIMIT => Ok(n),
            n => Err(StoreError::InvalidInput {
                field: "limit",
                reason: format!("{n} is above the maximum page size {}", Self::MAX_LIMIT),
            }),
        }
    }

    /// Whether `e` passes the filters (not the cursor).
    pub fn matches(&self, e: &Execution) -> bool {
        (self.states.is_empty() || self.states.contains(&e.state))
            && self.created_from.is_none_or(|f| e.created_at >= f)
            && self.created_before.is_none_or(|b| e.created_at < b)
            && self
                .label
                .as_ref()
                .is_none_or(|(k, v)| e.labels.get(k) == Some(v))
    }
}

/// One page of results.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Page<T> {
    /// The items, newest first.
    pub items: Vec<T>,
    /// Where the next page starts; `None` on the last page.
    pub next_cursor: Option<Cursor>,
}

/// Executions and the unit of work that changes them.
#[async_trait]
pub trait ExecutionStore: Send + Sync {
    /// Reads one execution of `tenant`.
    ///
    /// # Errors
    /// [`StoreError::NotFound`] when `tenant` has no such execution.
    async fn get(&self, tenant: &TenantId, id: &ExecutionId) -> Result<Execution, StoreError>;

    /// Commits a unit of work atomically (see [`ActionCommit`]).
    ///
    /// # Errors
    /// `NotFound`, `VersionConflict`, `IllegalTransition`, `AlreadyExists`,
    /// `IdempotencyConflict`; on any error nothing was written.
    async fn commit(&self, commit: ActionCommit) -> Result<CommitResult, StoreError>;

    /// Looks up an idempotency record.
    async fn idempotency(
        &self,
        tenant: &TenantId,
        key: &IdempotencyKey,
    ) -> Result<Option<IdempotencyRecord>, StoreError>;

    /// Reads what an action needs before deciding, in one call where the store can:
    /// the idempotency record of `key` and the execution `id` (the inner `Result`
    /// carries the error of reading it, e.g. [`StoreError::NotFound`]). Callers
    /// check the record first, so a repeat is answered before anything else.
    ///
    /// The default calls [`idempotency`](Self::idempotency), then [`get`](Self::get);
    /// stores with a cheaper way (one SQL statement) override it.
    ///
    /// # Errors
    /// A failure to read the idempotency record.
    async fn action_context(
        &self,
        tenant: &TenantId,
        key: &IdempotencyKey,
        id: &ExecutionId,
    ) -> Result<(Option<IdempotencyRecord>, Result<Execution, StoreError>), StoreError> {
        let record = self.idempotency(tenant, key).await?;
        Ok((record, self.get(tenant, id).await))
    }

    /// Searches a tenant's executions, newest first (`created_at`, then id, descending).
    ///
    /// # Errors
    /// [`StoreError::InvalidInput`] for a bad cursor or limit.
    async fn search(
        &self,
        tenant: &TenantId,
        query: &ExecutionQuery,
    ) -> Result<Page<Execution>, StoreError>;
}

/// The tenant-chained audit log.
#[async_trait]
pub trait AuditLog: Send + Sync {
    /// Appends one event to its tenant's chain and returns it sealed.
    async fn append(&self, event: NewAuditEvent) -> Result<AuditEvent, StoreError>;

    /// Reads up to `limit` events of `tenant` with `seq > after_seq`, in order.
    async fn read(
        &self,
        tenant: &TenantId,
        after_seq: u64,
        limit: u32,
    ) -> Result<Vec<AuditEvent>, StoreError>;

    /// The last event of `tenant`'s chain.
    async fn head(&self, tenant: &TenantId) -> Result<Option<AuditEvent>, StoreError>;

    /// Reads and verifies the whole chain of `tenant`; returns the number of events.
    ///
    /// # Errors
    /// [`StoreError::Corrupt`] carrying the [`crate::audit::ChainError`] text, or the
    /// head does not match the last event read (the tail was truncated).
    async fn verify(&self, tenant: &TenantId) -> Result<u64, StoreError> {
        let mut after = 0u64;
        let mut prev_hash: Option<String> = None;
        loop {
            let batch = self.read(tenant, after, 1000).await?;
            if batch.is_empty() {
                break;
            }
            let anchor = prev_hash.as_deref().map(|h| (after, h));
            crate::audit::verify_chain_from(anchor, &batch)
                .map_err(|e| StoreError::Corrupt(e.to_string()))?;
            let last = &batch[batch.len() - 1];
            after = last.seq;
            prev_hash = Some(last.hash.clone());
        }
        let head = self.head(tenant).await?;
        if head.as_ref().map(|h| h.hash.as_str()) != prev_hash.as_deref() {
            return Err(StoreError::Corrupt(
                "chain head does not match the last event read".into(),
            ));
        }
        Ok(after)
    }
}

/// Per-tenant flags. A flag never set is **off** (deny by default).
#[async_trait]
pub trait FlagStore: Send + Sync {
    /// Whether `flag` is on for `tenant`.
    async fn is_enabled(&self, tenant: &TenantId, flag: Flag) -> Result<bool, StoreError>;
    /// Turns `flag` on or off for `tenant`.
    async fn set(&self, tenant: &TenantId, flag: Flag, enabled: bool) -> Result<(), StoreError>;
    /// Every flag's value for `tenant`.
    async fn all(&self, tenant: &TenantId) -> Result<BTreeMap<Flag, bool>, StoreError> {
        let mut out = BTreeMap::new();
        for f in Flag::ALL {
            out.insert(f, self.is_enabled(tenant, f).await?);
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn cursor_roundtrip() {
        let id = ExecutionId::new("exec_1").unwrap();
        let ts = time::macros::datetime!(2025-12-10 18:04:21.5 UTC);
        assert_eq!(Cursor::after(ts, &id).decode().unwrap(), (ts, id));
    }

    proptest! {
        #[test]
        fn forged_cursors_are_typed_errors_never_panics(s in ".{0,200}", hexish in "[0-9a-f]{0,120}") {
            for c in [Cursor::from_string(s), Cursor::from_string(hexish)] {
                if let Err(e) = c.decode() {
                    let is_cursor_error = matches!(e, StoreError::InvalidInput { field: "cursor", .. });
                    prop_assert!(is_cursor_error);
                }
            }
        }

        #[test]
        fn audit_json_parser_never_panics(s in ".{0,400}") {
            let _ = serde_json::from_str::<crate::AuditEvent>(&s);
        }
    }
}
