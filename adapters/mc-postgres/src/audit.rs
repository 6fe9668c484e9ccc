//! The tenant-chained audit log on PostgreSQL.
//!
//! Appending locks the tenant's row in `mc_audit_heads` (an upsert that takes the row
//! lock and returns the current head), seals the events in Rust with mc-core's
//! [`NewAuditEvent::seal`], inserts them and moves the head — all inside the caller's
//! transaction. The lock is held until that transaction ends, so appends to one tenant
//! are serialised across every connection and replica while different tenants never
//! wait for each other.

use async_trait::async_trait;
use mc_core::audit::GENESIS_HASH;
use mc_core::{AuditEvent, AuditLog, NewAuditEvent, StoreError, TenantId};
use sqlx::{PgConnection, Row};

use crate::PgStore;
use crate::codec::{AUDIT_COLUMNS, AuditColumns, audit_from_row, check_text};
use crate::error::{TxError, corrupt, map_sqlx, tx_err};

/// Locks `tenant`'s chain head for the rest of the transaction and returns
/// `(seq, hash)` of the last event (`(0, GENESIS_HASH)` for an empty chain).
pub(crate) async fn lock_head(
    conn: &mut PgConnection,
    tenant: &TenantId,
) -> Result<(u64, String), TxError> {
    let row = sqlx::query(
        "INSERT INTO mc_audit_heads (tenant, seq, hash) VALUES ($1, 0, $2) \
         ON CONFLICT (tenant) DO UPDATE SET seq = mc_audit_heads.seq \
         RETURNING seq, hash",
    )
    .bind(tenant.as_str())
    .bind(GENESIS_HASH)
    .fetch_one(&mut *conn)
    .await
    .map_err(tx_err)?;
    let seq: i64 = row
        .try_get("seq")
        .map_err(|e| corrupt("audit head seq", e))?;
    let hash: String = row
        .try_get("hash")
        .map_err(|e| corrupt("audit head hash", e))?;
    let seq = u64::try_from(seq).map_err(|e| corrupt("audit head seq", e))?;
    Ok((seq, hash))
}

/// Checks what PostgreSQL cannot store before anything is written.
pub(crate) fn validate_event(ev: &NewAuditEvent) -> Result<(), StoreError> {
    check_text("audit event kind", &ev.kind)?;
    if let Some(r) = &ev.subject.resource {
        check_text("audit event resource", r)?;
    }
    Ok(())
}

/// Appends `events` (all of `tenant`) to the chain inside the open transaction on
/// `conn` and returns them sealed. The caller commits.
pub(crate) async fn append_in_tx(
    conn: &mut PgConnection,
    tenant: &TenantId,
    events: Vec<NewAuditEvent>,
) -> Result<Vec<AuditEvent>, TxError> {
    if events.is_empty() {
        return Ok(Vec::new());
    }
    let (mut seq, mut prev) = lock_head(conn, tenant).await?;
    let mut sealed = Vec::with_capacity(events.len());
    for ev in events {
        seq += 1;
        let s = ev.seal(seq, &prev);
        prev = s.hash.clone();
        sealed.push(s);
    }

    let mut cols = AuditColumns::default();
    for e in &sealed {
        cols.push(e)?;
    }
    // ORDER BY seq: each row's link trigger must see its predecessor already inserted.
    let q = sqlx::query(
        "INSERT INTO mc_audit_events \
           (tenant, seq, id, kind, actor_sub, execution_id, resource, data, ts, prev, hash) \
         SELECT $1, u.seq, u.id, u.kind, u.sub, u.exec, u.res, u.data::json, u.ts, u.prev, u.hash \
           FROM UNNEST($2::bigint[], $3::text[], $4::text[], $5::text[], $6::text[], \
                       $7::text[], $8::text[], $9::timestamptz[], $10::text[], $11::text[]) \
                AS u(seq, id, kind, sub, exec, res, data, ts, prev, hash) \
          ORDER BY u.seq",
    )
    .bind(tenant.as_str());
    cols.bind(q).execute(&mut *conn).await.map_err(tx_err)?;

    let Some(last) = sealed.last() else {
        return Ok(sealed);
    };
    sqlx::query("UPDATE mc_audit_heads SET seq = $2, hash = $3 WHERE tenant = $1")
        .bind(tenant.as_str())
        .bind(crate::codec::to_i64("seq", last.seq)?)
        .bind(&last.hash)
        .execute(&mut *conn)
        .await
        .map_err(tx_err)?;
    Ok(sealed)
}

#[async_trait]
impl AuditLog for PgStore {
    #[tracing::instrument(name = "mc_postgres.audit.append", skip_all, fields(tenant = %event.tenant()))]
    async fn append(&self, event: NewAuditEvent) -> Result<AuditEvent, StoreError> {
        validate_event(&event)?;
        let tenant = event.tenant().clone();
        let mut last = String::new();
        for _ in 0..crate::MAX_TX_ATTEMPTS {
            let mut tx = self.begin().await?;
            let r = append_in_tx(&mut tx, &tenant, vec![event.clone()])
                .await
                .and_then(|mut sealed| {
                    sealed.pop().ok_or_else(|| {
                        TxError::Store(StoreError::Backend("append sealed no event".into()))
                    })
                });
            match crate::finish(tx, r).await {
                crate::Attempt::Done(r) => return r,
                crate::Attempt::Again(m) => last = m,
            }
        }
        Err(crate::retries_exhausted(&last))
    }

    #[tracing::instrument(name = "mc_postgres.audit.read", skip(self), fields(tenant = %tenant))]
    async fn read(
        &self,
        tenant: &TenantId,
        after_seq: u64,
        limit: u32,
    ) -> Result<Vec<AuditEvent>, StoreError> {
        let Ok(after) = i64::try_from(after_seq) else {
            return Ok(Vec::new());
        };
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {AUDIT_COLUMNS} FROM mc_audit_events e \
              WHERE e.tenant = $1 AND e.seq > $2 ORDER BY e.seq LIMIT $3"
        )))
        .bind(tenant.as_str())
        .bind(after)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await
        .map_err(map_sqlx)?;
        rows.iter().map(audit_from_row).collect()
    }

    #[tracing::instrument(name = "mc_postgres.audit.head", skip(self), fields(tenant = %tenant))]
    async fn head(&self, tenant: &TenantId) -> Result<Option<AuditEvent>, StoreError> {
        // The head row is the anchor: if it names an event that is missing or differs,
        // the chain's tail was tampered with.
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT h.seq AS head_seq, h.hash AS head_hash, e.seq IS NOT NULL AS found, \
                    {AUDIT_COLUMNS} \
               FROM mc_audit_heads h \
               LEFT JOIN mc_audit_events e ON e.tenant = h.tenant AND e.seq = h.seq \
              WHERE h.tenant = $1"
        )))
        .bind(tenant.as_str())
        .fetch_optional(&self.pool)
        .await
        .map_err(map_sqlx)?;
        let Some(row) = row else { return Ok(None) };
        let head_seq: i64 = row
            .try_get("head_seq")
            .map_err(|e| corrupt("head seq", e))?;
        if head_seq == 0 {
            return Ok(None);
        }
        let found: bool = row.try_get("found").map_err(|e| corrupt("head", e))?;
        if !found {
            return Err(StoreError::Corrupt(format!(
                "audit chain head of tenant {tenant} names seq {head_seq}, which is missing"
            )));
        }
        let ev = audit_from_row(&row)?;
        let head_hash: String = row
            .try_get("head_hash")
            .map_err(|e| corrupt("head hash", e))?;
        if ev.hash != head_hash {
            return Err(StoreError::Corrupt(format!(
                "audit chain head of tenant {tenant} does not match event {head_seq}"
            )));
        }
        Ok(Some(ev))
    }
}
