//! `RetentionStore` on PostgreSQL: one row per `(tenant, kind)` override in
//! `mc_retention_overrides` (migration 0007).
//!
//! A change takes the tenant's audit-head lock first, so every change of one tenant's
//! overrides is serialised with every other write to its chain; it then compares the
//! stored value with the one the writer read, writes or deletes the row and appends
//! the audit event, all in one transaction.

use std::collections::BTreeMap;

use async_trait::async_trait;
use mc_core::retention::show;
use mc_core::{AuditEvent, RetentionCommit, RetentionStore, StoreError, TenantId};
use sqlx::{PgConnection, Row};

use crate::PgStore;
use crate::audit::{append_in_tx, lock_head, validate_event};
use crate::error::{TxError, corrupt, map_sqlx, tx_err};

async fn commit_once(conn: &mut PgConnection, c: &RetentionCommit) -> Result<AuditEvent, TxError> {
    lock_head(conn, &c.tenant).await?;
    let current: Option<String> = sqlx::query_scalar(
        "SELECT ttl FROM mc_retention_overrides WHERE tenant = $1 AND kind = $2",
    )
    .bind(c.tenant.as_str())
    .bind(&c.kind)
    .fetch_optional(&mut *conn)
    .await
    .map_err(tx_err)?;
    if current != c.expected {
        return Err(TxError::Store(StoreError::Conflict {
            what: c.what(),
            expected: show(c.expected.as_deref()),
            actual: show(current.as_deref()),
        }));
    }
    match &c.ttl {
        Some(ttl) => sqlx::query(
            "INSERT INTO mc_retention_overrides (tenant, kind, ttl, updated_at) \
             VALUES ($1, $2, $3, now()) \
             ON CONFLICT (tenant, kind) DO UPDATE SET ttl = EXCLUDED.ttl, \
                                                      updated_at = EXCLUDED.updated_at",
        )
        .bind(c.tenant.as_str())
        .bind(&c.kind)
        .bind(ttl),
        None => sqlx::query("DELETE FROM mc_retention_overrides WHERE tenant = $1 AND kind = $2")
            .bind(c.tenant.as_str())
            .bind(&c.kind),
    }
    .execute(&mut *conn)
    .await
    .map_err(tx_err)?;
    let mut sealed = append_in_tx(conn, &c.tenant, vec![c.event.clone()]).await?;
    sealed
        .pop()
        .ok_or_else(|| TxError::Store(StoreError::Backend("append sealed no event".into())))
}

#[async_trait]
impl RetentionStore for PgStore {
    #[tracing::instrument(name = "mc_postgres.retention.overrides", skip(self), fields(tenant = %tenant))]
    async fn overrides(&self, tenant: &TenantId) -> Result<BTreeMap<String, String>, StoreError> {
        let rows = sqlx::query("SELECT kind, ttl FROM mc_retention_overrides WHERE tenant = $1")
            .bind(tenant.as_str())
            .fetch_all(&self.pool)
            .await
            .map_err(map_sqlx)?;
        let mut out = BTreeMap::new();
        for row in rows {
            let kind: String = row.try_get("kind").map_err(|e| corrupt("kind", e))?;
            let ttl: String = row.try_get("ttl").map_err(|e| corrupt("ttl", e))?;
            out.insert(kind, ttl);
        }
        Ok(out)
    }

    #[tracing::instrument(name = "mc_postgres.retention.commit", skip_all, fields(tenant = %commit.tenant, kind = %commit.kind))]
    async fn commit_override(&self, commit: RetentionCommit) -> Result<AuditEvent, StoreError> {
        commit.validate()?;
        validate_event(&commit.event)?;
        let mut last = String::new();
        for _ in 0..crate::MAX_TX_ATTEMPTS {
            let mut tx = self.begin().await?;
            let r = commit_once(&mut tx, &commit).await;
            match crate::finish(tx, r).await {
                crate::Attempt::Done(r) => return r,
                crate::Attempt::Again(m) => last = m,
            }
        }
        Err(crate::retries_exhausted(&last))
    }
}
