//! PostgreSQL [`StepUpStore`] (sqlx, runtime queries).
//!
//! Tables (created by [`PgStepUpStore::migrate`], all prefixed `mc_stepup_`, tenant in
//! every key):
//! - `mc_stepup_passkey` — `(tenant, credential_id)` primary key, so a credential is
//!   registered once per tenant;
//! - `mc_stepup_registration`, `mc_stepup_challenge` — pending ceremonies; *take* is a
//!   `DELETE … RETURNING`, so of two replicas finishing the same challenge exactly one
//!   gets the state;
//! - `mc_stepup_used_grant` — `grant_id` primary key; consuming is
//!   `INSERT … ON CONFLICT DO NOTHING`, so a grant is used once across replicas.
//!
//! Any connection-level failure maps to [`StoreError::Unavailable`] (spec §8 outage).

use async_trait::async_trait;
use mc_core::{ActionKind, ActorId, ExecutionId, StepUpBinding, TenantId};
use serde::Serialize;
use serde::de::DeserializeOwned;
use sqlx::postgres::{PgPool, PgPoolOptions, PgRow};
use sqlx::types::Json;
use sqlx::{Executor, Row};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::error::StoreError;
use crate::store::{PendingChallenge, PendingRegistration, StepUpStore, StoredPasskey};

/// Numbered migrations; each runs once, in order, under an advisory lock.
const MIGRATIONS: &[(i32, &str)] = &[(
    1,
    r#"
CREATE TABLE mc_stepup_passkey (
    tenant        text        NOT NULL,
    credential_id text        NOT NULL,
    actor         text        NOT NULL,
    passkey       jsonb       NOT NULL,
    seq           bigint      GENERATED ALWAYS AS IDENTITY,
    PRIMARY KEY (tenant, credential_id)
);
CREATE INDEX mc_stepup_passkey_actor ON mc_stepup_passkey (tenant, actor, seq);

CREATE TABLE mc_stepup_registration (
    tenant     text        NOT NULL,
    id         uuid        NOT NULL,
    actor      text        NOT NULL,
    state      jsonb       NOT NULL,
    expires_at timestamptz NOT NULL,
    PRIMARY KEY (tenant, id)
);
CREATE INDEX mc_stepup_registration_expiry ON mc_stepup_registration (expires_at);

CREATE TABLE mc_stepup_challenge (
    tenant       text        NOT NULL,
    id           uuid        NOT NULL,
    actor        text        NOT NULL,
    action       text        NOT NULL,
    execution_id text        NOT NULL,
    state        jsonb       NOT NULL,
    expires_at   timestamptz NOT NULL,
    PRIMARY KEY (tenant, id)
);
CREATE INDEX mc_stepup_challenge_expiry ON mc_stepup_challenge (expires_at);

CREATE TABLE mc_stepup_used_grant (
    grant_id   uuid        PRIMARY KEY,
    tenant     text        NOT NULL,
    expires_at timestamptz NOT NULL
);
CREATE INDEX mc_stepup_used_grant_expiry ON mc_stepup_used_grant (expires_at);
"#,
)];

/// Advisory lock key serialising concurrent `migrate()` calls of several replicas.
const MIGRATE_LOCK: i64 = 0x6d63_5f77_6562_6175; // "mc_webau"

/// A [`StepUpStore`] on PostgreSQL.
#[derive(Debug, Clone)]
pub struct PgStepUpStore {
    pool: PgPool,
}

impl PgStepUpStore {
    /// Uses an existing pool (its `search_path` decides the schema).
    pub fn new(pool: PgPool) -> Self {
        PgStepUpStore { pool }
    }

    /// Connects a small pool to `url`.
    ///
    /// # Errors
    /// [`StoreError::Unavailable`] when the server cannot be reached.
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        let pool = PgPoolOptions::new()
            .max_connections(8)
            .connect(url)
            .await
            .map_err(|e| StoreError::Unavailable(e.to_string()))?;
        Ok(Self::new(pool))
    }

    /// The pool.
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// Creates or upgrades this crate's tables. Safe to call from several replicas at
    /// once (an advisory lock serialises them) and on every start.
    ///
    /// # Errors
    /// [`StoreError::Unavailable`] when the server cannot be reached or a statement fails.
    pub async fn migrate(&self) -> Result<(), StoreError> {
        let unavailable = |e: sqlx::Error| StoreError::Unavailable(format!("migrate: {e}"));
        let mut tx = self.pool.begin().await.map_err(unavailable)?;
        sqlx::query("SELECT pg_advisory_xact_lock($1)")
            .bind(MIGRATE_LOCK)
            .execute(&mut *tx)
            .await
            .map_err(unavailable)?;
        (&mut *tx)
            .execute(
                "CREATE TABLE IF NOT EXISTS mc_stepup_schema_version (
                 version    integer     PRIMARY KEY,
                 applied_at timestamptz NOT NULL DEFAULT now())",
            )
            .await
            .map_err(unavailable)?;
        let applied: Vec<i32> = sqlx::query_scalar("SELECT version FROM mc_stepup_schema_version")
            .fetch_all(&mut *tx)
            .await
            .map_err(unavailable)?;
        for (version, sql) in MIGRATIONS {
            if applied.contains(version) {
                continue;
            }
            (&mut *tx).execute(*sql).await.map_err(unavailable)?;
            sqlx::query("INSERT INTO mc_stepup_schema_version (version) VALUES ($1)")
                .bind(version)
                .execute(&mut *tx)
                .await
                .map_err(unavailable)?;
        }
        tx.commit().await.map_err(unavailable)
    }
}

/// Maps a sqlx error: unique violations become `Conflict(rule)`, decoding problems
/// `Corrupt`, everything else (I/O, pool timeout, TLS, server errors) `Unavailable`.
fn map_err(rule: &'static str) -> impl Fn(sqlx::Error) -> StoreError {
    move |e| match &e {
        sqlx::Error::Database(db) if db.is_unique_violation() => StoreError::Conflict(rule),
        sqlx::Error::ColumnDecode { .. }
        | sqlx::Error::Decode(_)
        | sqlx::Error::ColumnNotFound(_)
        | sqlx::Error::TypeNotFound { .. } => StoreError::Corrupt(e.to_string()),
        _ => StoreError::Unavailable(e.to_string()),
    }
}

fn to_json<T: Serialize>(value: &T) -> Result<Json<serde_json::Value>, StoreError> {
    serde_json::to_value(value)
        .map(Json)
        .map_err(|e| StoreError::Corrupt(format!("cannot serialise state: {e}")))
}

fn col<T>(row: &PgRow, name: &str) -> Result<T, StoreError>
where
    T: for<'r> sqlx::Decode<'r, sqlx::Postgres> + sqlx::Type<sqlx::Postgres>,
{
    row.try_get(name)
        .map_err(|e| StoreError::Corrupt(format!("column {name}: {e}")))
}

fn json_col<T: DeserializeOwned>(row: &PgRow, name: &str) -> Result<T, StoreError> {
    let Json(value): Json<serde_json::Value> = col(row, name)?;
    serde_json::from_value(value).map_err(|e| StoreError::Corrupt(format!("column {name}: {e}")))
}

fn parsed<T: std::str::FromStr>(row: &PgRow, name: &str) -> Result<T, StoreError>
where
    T::Err: std::fmt::Display,
{
    let raw: String = col(row, name)?;
    raw.parse()
        .map_err(|e: T::Err| StoreError::Corrupt(format!("column {name}: {e}")))
}

fn passkey_row(tenant: &TenantId, row: &PgRow) -> Result<StoredPasskey, StoreError> {
    Ok(StoredPasskey {
        tenant: tenant.clone(),
        actor: parsed::<ActorId>(row, "actor")?,
        credential_id: col(row, "credential_id")?,
        passkey: json_col(row, "passkey")?,
    })
}

#[async_trait]
impl StepUpStore for PgStepUpStore {
    async fn put_registration(&self, reg: PendingRegistration) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO mc_stepup_registration (tenant, id, actor, state, expires_at)
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(reg.tenant.as_str())
        .bind(reg.id)
        .bind(reg.actor.as_str())
        .bind(to_json(&reg.state)?)
        .bind(reg.expires_at)
        .execute(&self.pool)
        .await
        .map_err(map_err("registration_id"))?;
        Ok(())
    }

    async fn take_registration(
        &self,
        tenant: &TenantId,
        id: Uuid,
    ) -> Result<Option<PendingRegistration>, StoreError> {
        let row = sqlx::query(
            "DELETE FROM mc_stepup_registration WHERE tenant = $1 AND id = $2
             RETURNING actor, state, expires_at",
        )
        .bind(tenant.as_str())
        .bind(id)
        .fetch_optional(&self.pool)
        .await
        .map_err(map_err("registration_id"))?;
        row.map(|row| {
            Ok(PendingRegistration {
                id,
                tenant: tenant.clone(),
                actor: parsed(&row, "actor")?,
                state: json_col(&row, "state")?,
                expires_at: col(&row, "expires_at")?,
            })
        })
        .transpose()
    }

    async fn add_passkey(&self, passkey: StoredPasskey) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO mc_stepup_passkey (tenant, credential_id, actor, passkey)
             VALUES ($1, $2, $3, $4)",
        )
        .bind(passkey.tenant.as_str())
        .bind(&passkey.credential_id)
        .bind(passkey.actor.as_str())
        .bind(to_json(&passkey.passkey)?)
        .execute(&self.pool)
        .await
        .map_err(map_err("credential_id"))?;
        Ok(())
    }

    async fn passkeys(
        &self,
        tenant: &TenantId,
        actor: &ActorId,
    ) -> Result<Vec<StoredPasskey>, StoreError> {
        let rows = sqlx::query(
            "SELECT actor, credential_id, passkey FROM mc_stepup_passkey
             WHERE tenant = $1 AND actor = $2 ORDER BY seq",
        )
        .bind(tenant.as_str())
        .bind(actor.as_str())
        .fetch_all(&self.pool)
        .await
        .map_err(map_err("credential_id"))?;
        rows.iter().map(|row| passkey_row(tenant, row)).collect()
    }

    async fn update_passkey(&self, passkey: StoredPasskey) -> Result<(), StoreError> {
        // The actor in the WHERE clause keeps an update from moving a credential.
        sqlx::query(
            "UPDATE mc_stepup_passkey SET passkey = $4
             WHERE tenant = $1 AND credential_id = $2 AND actor = $3",
        )
        .bind(passkey.tenant.as_str())
        .bind(&passkey.credential_id)
        .bind(passkey.actor.as_str())
        .bind(to_json(&passkey.passkey)?)
        .execute(&self.pool)
        .await
        .map_err(map_err("credential_id"))?;
        Ok(())
    }

    async fn put_challenge(&self, challenge: PendingChallenge) -> Result<(), StoreError> {
        let b = &challenge.binding;
        sqlx::query(
            "INSERT INTO mc_stepup_challenge
                 (tenant, id, actor, action, execution_id, state, expires_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(b.tenant.as_str())
        .bind(challenge.id)
        .bind(b.actor.as_str())
        .bind(b.action.as_str())
        .bind(b.execution_id.as_str())
        .bind(to_json(&challenge.state)?)
        .bind(challenge.expires_at)
        .execute(&self.pool)
        .await
        .map_err(map_err("challenge_id"))?;
        Ok(())
    }

    async fn take_challenge(
        &self,
        tenant: &TenantId,
        id: Uuid,
    ) -> Result<Option<PendingChallenge>, StoreError> {
        let row = sqlx::query(
            "DELETE FROM mc_stepup_challenge WHERE tenant = $1 AND id = $2
             RETURNING actor, action, execution_id, state, expires_at",
        )
        .bind(tenant.as_str())
        .bind(id)
        .fetch_optional(&self.pool)
        .await
        .map_err(map_err("challenge_id"))?;
        row.map(|row| {
            Ok(PendingChallenge {
                id,
                binding: StepUpBinding {
                    tenant: tenant.clone(),
                    actor: parsed::<ActorId>(&row, "actor")?,
                    action: parsed::<ActionKind>(&row, "action")?,
                    execution_id: parsed::<ExecutionId>(&row, "execution_id")?,
                },
                state: json_col(&row, "state")?,
                expires_at: col(&row, "expires_at")?,
            })
        })
        .transpose()
    }

    async fn consume_grant(
        &self,
        tenant: &TenantId,
        grant_id: Uuid,
        expires_at: OffsetDateTime,
    ) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "INSERT INTO mc_stepup_used_grant (grant_id, tenant, expires_at)
             VALUES ($1, $2, $3) ON CONFLICT (grant_id) DO NOTHING",
        )
        .bind(grant_id)
        .bind(tenant.as_str())
        .bind(expires_at)
        .execute(&self.pool)
        .await
        .map_err(map_err("grant_id"))?;
        Ok(done.rows_affected() == 1)
    }

    async fn purge_expired(&self, now: OffsetDateTime) -> Result<u64, StoreError> {
        let mut total = 0;
        for sql in [
            "DELETE FROM mc_stepup_registration WHERE expires_at < $1",
            "DELETE FROM mc_stepup_challenge WHERE expires_at < $1",
            "DELETE FROM mc_stepup_used_grant WHERE expires_at < $1",
        ] {
            let done = sqlx::query(sql)
                .bind(now)
                .execute(&self.pool)
                .await
                .map_err(map_err("purge"))?;
            total += done.rows_affected();
        }
        Ok(total)
    }
}
