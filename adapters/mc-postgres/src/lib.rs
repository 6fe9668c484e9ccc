//! # mc-postgres — Maestro Conductor state on PostgreSQL
//!
//! [`PgStore`] implements mc-core's [`ExecutionStore`](mc_core::ExecutionStore)
//! (including the one-call unit of work `commit(ActionCommit)`, all-or-nothing in
//! SQL), the hash-chained [`AuditLog`](mc_core::AuditLog) and the
//! per-tenant [`FlagStore`](mc_core::FlagStore) and
//! [`RetentionStore`](mc_core::RetentionStore) (retention overrides, each changed in
//! one transaction with its audit event) on PostgreSQL 15 through sqlx. It is
//! what a host switches to when it outgrows one process (DESIGN.md rule 9): every
//! rule that must hold across replicas is enforced by the database itself —
//!
//! * the tenant is the first column of every primary key;
//! * `(tenant, idempotency_key)` is unique, and concurrent repeats of one request are
//!   answered with the first outcome ([`CommitResult::Replayed`](mc_core::CommitResult)),
//!   never with a raw unique violation;
//! * executions change under optimistic concurrency on `version`;
//! * the audit table is append-only (UPDATE / DELETE / TRUNCATE rejected by
//!   triggers), each event must link to its predecessor and `(tenant, seq)` is unique,
//!   so a chain can neither fork nor gap; appends serialise per tenant on a locked
//!   chain-head row.
//!
//! It passes mc-core's conformance suites unchanged, like the in-memory adapter.
//!
//! A commit is **one round trip**, and concurrent commits share it: units are queued
//! and sent in batches to the server-side function `mc_commit_batch` (migration 0005),
//! one statement and one transaction (one WAL flush) per batch, each unit still
//! all-or-nothing in its own right — written set-based when every unit of the batch
//! commits, one subtransaction per unit otherwise ([`GroupCommit`], ADR 0305). The
//! audit events are sealed in Rust by mc-core onto this process's hint of the
//! tenant's chain head, which the function verifies under the head lock (a stale hint
//! is corrected and the events re-sealed; ADR 0304). `action_context` reads the
//! idempotency record and the execution in one statement, so an mc-actions action
//! costs two round trips.
//! For a server on the same host, a Unix socket URL
//! (`postgres://user@localhost/db?host=/var/run/postgresql`) is cheaper than TCP.
//!
//! ```no_run
//! use mc_core::{ActionCommit, Digest, Execution, ExecutionId, ExecutionQuery,
//!               ExecutionStore, TenantId};
//! use mc_postgres::PgStore;
//!
//! # async fn demo() -> Result<(), mc_core::StoreError> {
//! let store = PgStore::connect("postgres://postgres@127.0.0.1:5432/mc", 16).await?;
//! store.migrate().await?; // embedded, numbered migrations; safe to run on every start
//!
//! let tenant = TenantId::new("acme").unwrap();
//! let now = time::OffsetDateTime::now_utc();
//! let exec = Execution::new(tenant.clone(), ExecutionId::new("exec_123").unwrap(),
//!     Digest::of(b"manifest"), Digest::of(b"inputs"), now)
//!     .with_label("team", "payments");
//! let mut unit = ActionCommit::new(tenant.clone(), now);
//! unit.create = Some(exec.clone());
//! store.commit(unit).await?;
//!
//! assert_eq!(store.get(&tenant, &exec.id).await?, exec);
//! let page = store.search(&tenant, &ExecutionQuery {
//!     label: Some(("team".into(), "payments".into())),
//!     ..Default::default()
//! }).await?;
//! assert_eq!(page.items.len(), 1);
//! # Ok(()) }
//! ```
//!
//! Modules (crate-private): `execution` (reads, search, `commit`), `audit` (the chain),
//! `flags`, `codec` (exact row ↔ value mapping), `error` (sqlx → `StoreError`). The
//! schema lives in `migrations/`; `docs/postgres.md` explains how to run it and the
//! benchmark figures.

#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod audit;
mod codec;
mod error;
mod execution;
mod flags;
mod retention;
mod unit;

use std::str::FromStr;
use std::time::Duration;

use mc_core::StoreError;
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::{ConnectOptions, Connection, Postgres, Transaction};

use crate::error::{TxError, is_retryable, map_sqlx};

pub use crate::execution::MAX_LABEL_BYTES;
pub use crate::unit::{CommitStats, GroupCommit, MAX_BATCH_LIMIT};

/// How often a transaction that lost a concurrency race (serialization failure,
/// deadlock) is run again before the caller gets [`StoreError::Unavailable`].
pub(crate) const MAX_TX_ATTEMPTS: usize = 5;

/// How long [`PgStore::connect`] and later calls wait for a pooled connection.
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(10);

/// The embedded, numbered migrations in `migrations/`.
static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!();

/// Executions, audit chains, idempotency records and flags in PostgreSQL.
///
/// Cheap to clone (it wraps a connection pool); share one per process. Several
/// processes ("replicas") may use the same database at once: every guarantee of the
/// traits holds across them.
#[derive(Clone)]
pub struct PgStore {
    pool: PgPool,
    /// The group-commit queue and per-tenant chain-head hints (ADR 0304, ADR 0305).
    committer: std::sync::Arc<crate::unit::Committer>,
}

impl std::fmt::Debug for PgStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgStore")
            .field("connections", &self.pool.size())
            .finish_non_exhaustive()
    }
}

impl PgStore {
    /// Connects to the database at `url` (`postgres://user:pass@host:5432/db`) with a
    /// pool of at most `max_conns` connections (opened on demand), after one
    /// connection attempt that checks the server answers and accepts the credentials.
    ///
    /// # Errors
    /// [`StoreError::InvalidInput`] naming `url` when it cannot be parsed, or
    /// `max_conns` when it is 0; [`StoreError::Unavailable`] when the server cannot be
    /// reached (or the database does not exist); [`StoreError::Backend`] for other
    /// failures such as bad credentials.
    pub async fn connect(url: &str, max_conns: u32) -> Result<Self, StoreError> {
        if max_conns == 0 {
            return Err(StoreError::InvalidInput {
                field: "max_conns",
                reason: "a pool needs at least one connection".into(),
            });
        }
        let options = PgConnectOptions::from_str(url).map_err(|e| StoreError::InvalidInput {
            field: "url",
            reason: e.to_string(),
        })?;
        // One direct attempt first: a pool would keep retrying a refused connection
        // until its acquire timeout, and a host starting up wants to know at once.
        let probe = options.connect().await.map_err(map_sqlx)?;
        let _ = probe.close().await;
        let pool = PgPoolOptions::new()
            .max_connections(max_conns)
            .acquire_timeout(ACQUIRE_TIMEOUT)
            .connect_lazy_with(options);
        Ok(PgStore::from_pool(pool))
    }

    /// Wraps a pool the host configured itself (TLS, `after_connect` hooks such as a
    /// `search_path` for a dedicated schema, timeouts).
    pub fn from_pool(pool: PgPool) -> Self {
        PgStore {
            pool,
            committer: std::sync::Arc::default(),
        }
    }

    /// This store with commits grouped as `config` says (the default groups up to 32
    /// concurrent units per transaction, 2 transactions in flight; ADR 0305). Clones
    /// made afterwards share the new queue; clones made before keep the old one.
    pub fn with_group_commit(mut self, config: GroupCommit) -> Self {
        self.committer = std::sync::Arc::new(crate::unit::Committer::new(config));
        self
    }

    /// How many batches and units the group-commit queue has sent (shared by clones).
    pub fn commit_stats(&self) -> CommitStats {
        self.committer.stats()
    }

    /// How this store groups commits.
    pub fn group_commit(&self) -> GroupCommit {
        self.committer.config()
    }

    /// Commits several units of work, each all-or-nothing on its own, and answers each
    /// exactly as [`ExecutionStore::commit`](mc_core::ExecutionStore::commit) would
    /// (one result per unit, in order). Units of one tenant are applied in the order
    /// given. Units are queued together, so up to [`GroupCommit::max_batch`] of them
    /// share one transaction and one WAL flush: the bulk path for a host applying many
    /// actions at once.
    pub async fn commit_many(
        &self,
        units: Vec<mc_core::ActionCommit>,
    ) -> Vec<Result<mc_core::CommitResult, StoreError>> {
        crate::execution::commit_many(self, units).await
    }

    /// Applies the embedded migrations that have not run yet. Safe to call on every
    /// start and from several replicas at once (sqlx serialises migrators with an
    /// advisory lock). Tables are created in the first schema of the connection's
    /// `search_path`.
    ///
    /// # Errors
    /// [`StoreError::Unavailable`] when the server cannot be reached;
    /// [`StoreError::Backend`] when a migration fails or the applied migrations differ
    /// from the embedded ones.
    pub async fn migrate(&self) -> Result<(), StoreError> {
        MIGRATOR.run(&self.pool).await.map_err(|e| match e {
            sqlx::migrate::MigrateError::Execute(inner) => map_sqlx(inner),
            other => StoreError::Backend(format!("migration failed: {other}")),
        })
    }

    /// The underlying pool, for the host's own queries and health checks.
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    pub(crate) async fn begin(&self) -> Result<Transaction<'static, Postgres>, StoreError> {
        self.pool.begin().await.map_err(map_sqlx)
    }
}

/// The result of one attempt at a transaction.
pub(crate) enum Attempt<T> {
    /// Final: committed, or rolled back with this error.
    Done(Result<T, StoreError>),
    /// Rolled back after losing a race; run it again.
    Again(String),
}

/// Commits `tx` when `r` is `Ok`, rolls it back otherwise.
pub(crate) async fn finish<T>(
    tx: Transaction<'static, Postgres>,
    r: Result<T, TxError>,
) -> Attempt<T> {
    match r {
        Ok(v) => match tx.commit().await {
            Ok(()) => Attempt::Done(Ok(v)),
            Err(e) if is_retryable(&e) => Attempt::Again(e.to_string()),
            // A failure *at* commit (e.g. the connection dropped) leaves the outcome
            // unknown to us; the server either committed all or nothing. Retrying
            // with the same idempotency key is safe.
            Err(e) => Attempt::Done(Err(map_sqlx(e))),
        },
        Err(e) => {
            // Dropping the transaction would roll back too; doing it here returns the
            // connection to the pool clean. A failed rollback means a dead connection,
            // which the server rolls back itself.
            let _ = tx.rollback().await;
            match e {
                TxError::Store(e) => Attempt::Done(Err(e)),
                TxError::Retry(m) => Attempt::Again(m),
            }
        }
    }
}

/// The error after [`MAX_TX_ATTEMPTS`] lost races.
pub(crate) fn retries_exhausted(last: &str) -> StoreError {
    StoreError::Unavailable(format!(
        "transaction lost a concurrency race {MAX_TX_ATTEMPTS} times, retry later: {last}"
    ))
}
