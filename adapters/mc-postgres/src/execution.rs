//! `ExecutionStore` on PostgreSQL: reads, keyset search and the one-transaction unit
//! of work.
//!
//! # How `commit` stays one unit of work across replicas
//!
//! `commit` normally runs inside one call of the `mc_commit_batch` function
//! ([`crate::unit`], ADRs 0304–0305), which does the steps below in the same order
//! inside one statement. The multi-statement transaction here is its fallback (a
//! chain head that keeps moving) and the path for units naming another tenant. Everything runs in one
//! `READ COMMITTED` transaction, in this order:
//!
//! 1. **Idempotency first.** The record is *inserted* first with
//!    `ON CONFLICT DO NOTHING`. If another transaction holds the same
//!    `(tenant, key)` uncommitted, PostgreSQL makes this insert wait for it; if that
//!    one commits, nothing is inserted and we read its record and answer
//!    [`CommitResult::Replayed`] (or [`StoreError::IdempotencyConflict`] for another
//!    fingerprint), never a raw unique violation; if it rolls back, our insert goes
//!    through and we own the key. Reading the record *before* writing would not work:
//!    sixteen concurrent repeats would all see "no record" and race on the version.
//! 2. **Transition** with optimistic concurrency: one `UPDATE … WHERE version =
//!    expected AND state IN (states that may go to the target)`. When it matches no
//!    row, a second read names the reason (`NotFound`, `VersionConflict`,
//!    `IllegalTransition`) in the same precedence as the in-memory adapter.
//! 3. **Create** with `ON CONFLICT DO NOTHING` (`AlreadyExists` when nothing was
//!    inserted).
//! 4. **Audit** events sealed onto the tenant chain (see [`crate::audit`]).
//!
//! Any error rolls the transaction back, so nothing is half-written; a connection
//! killed mid-way is rolled back by the server.

use async_trait::async_trait;
use mc_core::{
    ActionCommit, CommitResult, Cursor, Digest, Execution, ExecutionId, ExecutionQuery,
    ExecutionState, ExecutionStore, IdempotencyKey, IdempotencyRecord, Page, StoreError, TenantId,
};
use sqlx::types::Json;
use sqlx::{PgConnection, Row};

use crate::PgStore;
use crate::audit::{append_in_tx, validate_event};
use crate::codec::{EXECUTION_COLUMNS, check_text, execution_from_row, join, split, to_i64};
use crate::error::{TxError, corrupt, map_sqlx, tx_err};

fn check_tenant(commit: &TenantId, other: &TenantId, what: &'static str) -> Result<(), StoreError> {
    if commit != other {
        return Err(StoreError::InvalidInput {
            field: what,
            reason: format!("belongs to tenant {other}, commit is for {commit}"),
        });
    }
    Ok(())
}

/// Longest label (key + value, in bytes) the label search index accepts.
pub const MAX_LABEL_BYTES: usize = 2048;

/// Checks what PostgreSQL cannot store, before the transaction starts.
fn validate_storable(c: &ActionCommit) -> Result<(), StoreError> {
    for ev in &c.audit {
        validate_event(ev)?;
    }
    if let Some(t) = &c.transition {
        to_i64("expected_version", t.expected_version)?;
    }
    if let Some(e) = &c.create {
        to_i64("version", e.version)?;
        for (k, v) in &e.labels {
            check_text("labels", k)?;
            check_text("labels", v)?;
            // Each label is a key of the label search index, whose entries are
            // limited to about 2.7 kB by PostgreSQL's B-tree.
            if k.len() + v.len() > MAX_LABEL_BYTES {
                return Err(StoreError::InvalidInput {
                    field: "labels",
                    reason: format!(
                        "label {k:?} is {} bytes long (key + value); at most {MAX_LABEL_BYTES} are indexable",
                        k.len() + v.len()
                    ),
                });
            }
        }
    }
    Ok(())
}

/// What the idempotency step found.
enum KeyState {
    /// We inserted the record and own the key until the transaction ends.
    Owned,
    /// The key was already recorded: answer from it.
    Answered(Box<Result<CommitResult, StoreError>>),
}

async fn claim_key(
    conn: &mut PgConnection,
    tenant: &TenantId,
    rec: &IdempotencyRecord,
) -> Result<KeyState, TxError> {
    let created = split(rec.created_at);
    let outcome = serde_json::to_string(&rec.outcome).map_err(|e| StoreError::InvalidInput {
        field: "idempotency outcome",
        reason: e.to_string(),
    })?;
    let inserted = sqlx::query(
        "INSERT INTO mc_idempotency (tenant, key, fingerprint, outcome, created_at, created_sub_ns) \
         VALUES ($1, $2, $3, $4::json, $5, $6) ON CONFLICT (tenant, key) DO NOTHING",
    )
    .bind(tenant.as_str())
    .bind(rec.key.as_str())
    .bind(rec.fingerprint.as_str())
    .bind(outcome)
    .bind(created.micros)
    .bind(created.sub_ns)
    .execute(&mut *conn)
    .await
    .map_err(tx_err)?
    .rows_affected();
    if inserted == 1 {
        return Ok(KeyState::Owned);
    }
    // The conflicting record is committed (the insert waited for its writer), and
    // this new statement's snapshot sees it.
    let Some(existing) = fetch_idempotency(conn, tenant, &rec.key).await? else {
        return Err(TxError::Retry(format!(
            "idempotency key {} vanished between insert and read",
            rec.key
        )));
    };
    Ok(KeyState::Answered(Box::new(
        if existing.fingerprint == rec.fingerprint {
            Ok(CommitResult::Replayed {
                outcome: existing.outcome,
            })
        } else {
            Err(StoreError::IdempotencyConflict {
                key: rec.key.to_string(),
            })
        },
    )))
}

async fn fetch_idempotency(
    conn: &mut PgConnection,
    tenant: &TenantId,
    key: &IdempotencyKey,
) -> Result<Option<IdempotencyRecord>, TxError> {
    let row = sqlx::query(
        "SELECT fingerprint, outcome::text AS outcome, created_at, created_sub_ns \
           FROM mc_idempotency WHERE tenant = $1 AND key = $2",
    )
    .bind(tenant.as_str())
    .bind(key.as_str())
    .fetch_optional(&mut *conn)
    .await
    .map_err(tx_err)?;
    let Some(row) = row else { return Ok(None) };
    let fingerprint: String = row
        .try_get("fingerprint")
        .map_err(|e| corrupt("fingerprint", e))?;
    let outcome: String = row.try_get("outcome").map_err(|e| corrupt("outcome", e))?;
    Ok(Some(IdempotencyRecord {
        key: key.clone(),
        fingerprint: Digest::parse_hex("fingerprint", &fingerprint)
            .map_err(|e| corrupt("fingerprint", e))?,
        outcome: serde_json::from_str(&outcome).map_err(|e| corrupt("outcome", e))?,
        created_at: join(
            row.try_get("created_at")
                .map_err(|e| corrupt("created_at", e))?,
            row.try_get("created_sub_ns")
                .map_err(|e| corrupt("created_sub_ns", e))?,
        )?,
    }))
}

async fn apply_transition(
    conn: &mut PgConnection,
    c: &ActionCommit,
    t: &mc_core::Transition,
) -> Result<Execution, TxError> {
    let at = split(c.at);
    // Found and locked by its primary key alone, then checked (migration 0006 explains
    // why `state` is not a condition of the UPDATE). Under READ COMMITTED `FOR UPDATE`
    // waits for a concurrent writer and returns the latest committed row.
    let cur = sqlx::query(
        "SELECT version, state FROM mc_executions WHERE tenant = $1 AND id = $2 FOR UPDATE",
    )
    .bind(c.tenant.as_str())
    .bind(t.execution_id.as_str())
    .fetch_optional(&mut *conn)
    .await
    .map_err(tx_err)?;
    let Some(cur) = cur else {
        return Err(StoreError::NotFound {
            id: t.execution_id.to_string(),
        }
        .into());
    };
    let version: i64 = cur.try_get("version").map_err(|e| corrupt("version", e))?;
    let version = u64::try_from(version).map_err(|e| corrupt("version", e))?;
    let state: ExecutionState = cur
        .try_get::<String, _>("state")
        .map_err(|e| corrupt("state", e))?
        .parse()
        .map_err(|e| corrupt("state", e))?;
    if version != t.expected_version {
        return Err(StoreError::VersionConflict {
            id: t.execution_id.to_string(),
            expected: t.expected_version,
            actual: version,
        }
        .into());
    }
    if !state.can_transition_to(t.to) {
        return Err(StoreError::IllegalTransition {
            id: t.execution_id.to_string(),
            from: state,
            to: t.to,
        }
        .into());
    }
    let row = sqlx::query(sqlx::AssertSqlSafe(format!(
        "UPDATE mc_executions \
            SET state = $3, version = version + 1, attempt = attempt + $4, \
                updated_at = $5, updated_sub_ns = $6 \
          WHERE tenant = $1 AND id = $2 \
      RETURNING {EXECUTION_COLUMNS}"
    )))
    .bind(c.tenant.as_str())
    .bind(t.execution_id.as_str())
    .bind(t.to.as_str())
    .bind(i64::from(t.next_attempt))
    .bind(at.micros)
    .bind(at.sub_ns)
    .fetch_one(&mut *conn)
    .await
    .map_err(tx_err)?;
    Ok(execution_from_row(&row)?)
}

async fn insert_execution(conn: &mut PgConnection, e: &Execution) -> Result<(), TxError> {
    let created = split(e.created_at);
    let updated = split(e.updated_at);
    let inserted = sqlx::query(
        "INSERT INTO mc_executions (tenant, id, state, attempt, manifest_digest, inputs_digest, \
             parent, root, labels, version, created_at, created_sub_ns, updated_at, updated_sub_ns) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14) \
         ON CONFLICT (tenant, id) DO NOTHING",
    )
    .bind(e.tenant.as_str())
    .bind(e.id.as_str())
    .bind(e.state.as_str())
    .bind(i64::from(e.attempt))
    .bind(e.manifest_digest.as_str())
    .bind(e.inputs_digest.as_str())
    .bind(e.parent.as_ref().map(ExecutionId::as_str))
    .bind(e.root.as_str())
    .bind(Json(&e.labels))
    .bind(to_i64("version", e.version)?)
    .bind(created.micros)
    .bind(created.sub_ns)
    .bind(updated.micros)
    .bind(updated.sub_ns)
    .execute(&mut *conn)
    .await
    .map_err(tx_err)?
    .rows_affected();
    if inserted == 0 {
        return Err(StoreError::AlreadyExists {
            id: e.id.to_string(),
        }
        .into());
    }
    Ok(())
}

/// One attempt at a commit inside the open transaction on `conn`.
async fn commit_once(conn: &mut PgConnection, c: &ActionCommit) -> Result<CommitResult, TxError> {
    // 1. Idempotency first: a repeat writes nothing.
    if let Some(rec) = &c.idempotency
        && let KeyState::Answered(answer) = claim_key(conn, &c.tenant, rec).await?
    {
        return Ok((*answer)?);
    }
    // 2. Validate, then write; the order of checks is the in-memory adapter's.
    for ev in &c.audit {
        check_tenant(&c.tenant, ev.tenant(), "audit event")?;
    }
    let updated = match &c.transition {
        Some(t) => Some(apply_transition(conn, c, t).await?),
        None => None,
    };
    if let Some(new) = &c.create {
        check_tenant(&c.tenant, &new.tenant, "created execution")?;
        insert_execution(conn, new).await?;
    }
    let audit = append_in_tx(conn, &c.tenant, c.audit.clone()).await?;
    Ok(CommitResult::Committed {
        updated,
        created: c.create.clone(),
        audit,
    })
}

impl PgStore {
    /// The unit of work as a multi-statement transaction (re-run on lost races): the
    /// path for units naming another tenant and the fallback of [`crate::unit`] when
    /// the chain head keeps moving under it.
    pub(crate) async fn commit_in_tx(
        &self,
        commit: &ActionCommit,
    ) -> Result<CommitResult, StoreError> {
        let mut last = String::new();
        for _ in 0..crate::MAX_TX_ATTEMPTS {
            let mut tx = self.begin().await?;
            let r = commit_once(&mut tx, commit).await;
            match crate::finish(tx, r).await {
                crate::Attempt::Done(r) => return r,
                crate::Attempt::Again(m) => last = m,
            }
        }
        Err(crate::retries_exhausted(&last))
    }
}

/// [`PgStore::commit_many`]: validates each unit, sends the well-formed units of one
/// tenant through the group-commit queue ([`crate::unit`]) and the rest on their own.
pub(crate) async fn commit_many(
    store: &PgStore,
    units: Vec<ActionCommit>,
) -> Vec<Result<CommitResult, StoreError>> {
    let n = units.len();
    let mut answers: Vec<Option<Result<CommitResult, StoreError>>> = (0..n).map(|_| None).collect();
    let mut queued = Vec::with_capacity(n);
    let mut queued_at = Vec::with_capacity(n);
    let mut alone = Vec::new();
    for (i, unit) in units.into_iter().enumerate() {
        if let Err(e) = validate_storable(&unit) {
            answers[i] = Some(Err(e));
            continue;
        }
        // A unit naming another tenant is refused, but only at the point the
        // multi-statement path reaches (after the idempotency claim, the transition…):
        // that path keeps the exact precedence of errors for such malformed input.
        let one_tenant = unit.audit.iter().all(|ev| ev.tenant() == &unit.tenant)
            && unit.create.as_ref().is_none_or(|e| e.tenant == unit.tenant);
        if one_tenant {
            queued.push(unit);
            queued_at.push(i);
        } else {
            alone.push((i, unit));
        }
    }
    let results = crate::unit::commit(store, queued).await;
    for (i, r) in queued_at.into_iter().zip(results) {
        answers[i] = Some(r);
    }
    for (i, unit) in alone {
        answers[i] = Some(store.commit_in_tx(&unit).await);
    }
    answers
        .into_iter()
        .map(|a| a.unwrap_or_else(|| Err(StoreError::Backend("a unit without an answer".into()))))
        .collect()
}

/// Bounds of a search, in the stored `(micros, sub_ns)` form.
fn bound(t: time::OffsetDateTime) -> (time::OffsetDateTime, i16) {
    let s = split(t);
    (s.micros, s.sub_ns)
}

#[async_trait]
impl ExecutionStore for PgStore {
    #[tracing::instrument(name = "mc_postgres.get", skip(self), fields(tenant = %tenant, id = %id))]
    async fn get(&self, tenant: &TenantId, id: &ExecutionId) -> Result<Execution, StoreError> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {EXECUTION_COLUMNS} FROM mc_executions WHERE tenant = $1 AND id = $2"
        )))
        .bind(tenant.as_str())
        .bind(id.as_str())
        .fetch_optional(&self.pool)
        .await
        .map_err(map_sqlx)?;
        match row {
            Some(row) => execution_from_row(&row),
            None => Err(StoreError::NotFound { id: id.to_string() }),
        }
    }

    #[tracing::instrument(name = "mc_postgres.commit", skip_all, fields(tenant = %commit.tenant))]
    async fn commit(&self, commit: ActionCommit) -> Result<CommitResult, StoreError> {
        commit_many(self, vec![commit])
            .await
            .pop()
            .unwrap_or_else(|| Err(StoreError::Backend("a commit without an answer".into())))
    }

    #[tracing::instrument(name = "mc_postgres.idempotency", skip(self), fields(tenant = %tenant))]
    async fn idempotency(
        &self,
        tenant: &TenantId,
        key: &IdempotencyKey,
    ) -> Result<Option<IdempotencyRecord>, StoreError> {
        let mut conn = self.pool.acquire().await.map_err(map_sqlx)?;
        fetch_idempotency(&mut conn, tenant, key)
            .await
            .map_err(|e| match e {
                TxError::Store(e) => e,
                TxError::Retry(m) => StoreError::Unavailable(m),
            })
    }

    #[tracing::instrument(name = "mc_postgres.action_context", skip(self), fields(tenant = %tenant, id = %id))]
    async fn action_context(
        &self,
        tenant: &TenantId,
        key: &IdempotencyKey,
        id: &ExecutionId,
    ) -> Result<(Option<IdempotencyRecord>, Result<Execution, StoreError>), StoreError> {
        // One statement, one snapshot: the record and the execution as of one instant.
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT i.fingerprint AS i_fingerprint, i.outcome::text AS i_outcome, \
                    i.created_at AS i_created_at, i.created_sub_ns AS i_created_sub_ns, \
                    e.id IS NOT NULL AS e_found, {} \
               FROM (SELECT) AS one \
               LEFT JOIN mc_idempotency i ON i.tenant = $1 AND i.key = $2 \
               LEFT JOIN mc_executions e ON e.tenant = $1 AND e.id = $3",
            EXECUTION_COLUMNS
                .split(", ")
                .map(|c| format!("e.{c}"))
                .collect::<Vec<_>>()
                .join(", ")
        )))
        .bind(tenant.as_str())
        .bind(key.as_str())
        .bind(id.as_str())
        .fetch_one(&self.pool)
        .await
        .map_err(map_sqlx)?;
        let fingerprint: Option<String> = row
            .try_get("i_fingerprint")
            .map_err(|e| corrupt("fingerprint", e))?;
        let record = match fingerprint {
            None => None,
            Some(fingerprint) => {
                let outcome: String = row
                    .try_get("i_outcome")
                    .map_err(|e| corrupt("outcome", e))?;
                Some(IdempotencyRecord {
                    key: key.clone(),
                    fingerprint: Digest::parse_hex("fingerprint", &fingerprint)
                        .map_err(|e| corrupt("fingerprint", e))?,
                    outcome: serde_json::from_str(&outcome).map_err(|e| corrupt("outcome", e))?,
                    created_at: join(
                        row.try_get("i_created_at")
                            .map_err(|e| corrupt("created_at", e))?,
                        row.try_get("i_created_sub_ns")
                            .map_err(|e| corrupt("created_sub_ns", e))?,
                    )?,
                })
            }
        };
        let found: bool = row
            .try_get("e_found")
            .map_err(|e| corrupt("execution", e))?;
        let exec = if found {
            execution_from_row(&row)
        } else {
            Err(StoreError::NotFound { id: id.to_string() })
        };
        Ok((record, exec))
    }

    #[tracing::instrument(name = "mc_postgres.search", skip(self, query), fields(tenant = %tenant))]
    async fn search(
        &self,
        tenant: &TenantId,
        query: &ExecutionQuery,
    ) -> Result<Page<Execution>, StoreError> {
        let limit = query.effective_limit()?;
        let after = query.cursor.as_ref().map(Cursor::decode).transpose()?;
        if let Some((k, v)) = &query.label {
            check_text("label", k)?;
            check_text("label", v)?;
        }

        // The SQL text is built from fixed fragments only; every value is bound. Each
        // combination of filters is one prepared statement in the connection's cache.
        let cols = EXECUTION_COLUMNS
            .split(", ")
            .map(|c| format!("e.{c}"))
            .collect::<Vec<_>>()
            .join(", ");
        // With a label, the label table drives the scan (ordered by its own copy of
        // created/id, equal to the execution's through the join); otherwise the
        // executions' (tenant, created, id) index does.
        let (mut sql, o) = if query.label.is_some() {
            (
                format!(
                    "SELECT {cols} FROM mc_execution_labels k \
                     JOIN mc_executions e ON e.tenant = k.tenant AND e.id = k.id \
                      AND e.created_at = k.created_at AND e.created_sub_ns = k.created_sub_ns \
                     WHERE k.tenant = $1 AND k.key = $2 AND k.value = $3"
                ),
                "k",
            )
        } else {
            (
                format!("SELECT {cols} FROM mc_executions e WHERE e.tenant = $1"),
                "e",
            )
        };
        let mut n = if query.label.is_some() { 3 } else { 1 };
        let mut next = || {
            n += 1;
            n
        };
        let mut states: Vec<String> = query
            .states
            .iter()
            .map(|s| s.as_str().to_string())
            .collect();
        states.sort();
        states.dedup();
        match states.len() {
            0 => {}
            // Plain equality lets the planner read (tenant, state, created, id) in order.
            1 => sql.push_str(&format!(" AND e.state = ${}", next())),
            _ => sql.push_str(&format!(" AND e.state = ANY(${}::text[])", next())),
        }
        if query.created_from.is_some() {
            let (a, b) = (next(), next());
            sql.push_str(&format!(
                " AND ({o}.created_at, {o}.created_sub_ns) >= (${a}, ${b})"
            ));
        }
        if query.created_before.is_some() {
            let (a, b) = (next(), next());
            sql.push_str(&format!(
                " AND ({o}.created_at, {o}.created_sub_ns) < (${a}, ${b})"
            ));
        }
        if after.is_some() {
            let (a, b, c) = (next(), next(), next());
            sql.push_str(&format!(
                " AND ({o}.created_at, {o}.created_sub_ns, {o}.id) < (${a}, ${b}, ${c})"
            ));
        }
        let l = next();
        sql.push_str(&format!(
            " ORDER BY {o}.created_at DESC, {o}.created_sub_ns DESC, {o}.id DESC LIMIT ${l}"
        ));

        let mut q = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(tenant.as_str());
        if let Some((k, v)) = &query.label {
            q = q.bind(k.clone()).bind(v.clone());
        }
        match states.len() {
            0 => {}
            1 => q = q.bind(states[0].clone()),
            _ => q = q.bind(states),
        }
        if let Some(from) = query.created_from {
            let (a, b) = bound(from);
            q = q.bind(a).bind(b);
        }
        if let Some(before) = query.created_before {
            let (a, b) = bound(before);
            q = q.bind(a).bind(b);
        }
        if let Some((at, id)) = &after {
            let (a, b) = bound(*at);
            q = q.bind(a).bind(b).bind(id.as_str().to_string());
        }
        q = q.bind(i64::from(limit) + 1);

        let rows = q.fetch_all(&self.pool).await.map_err(map_sqlx)?;
        let mut items = rows
            .iter()
            .map(execution_from_row)
            .collect::<Result<Vec<_>, _>>()?;
        let next_cursor = if items.len() > limit as usize {
            items.truncate(limit as usize);
            items.last().map(|l| Cursor::after(l.created_at, &l.id))
        } else {
            None
        };
        Ok(Page { items, next_cursor })
    }
}
