//! `FlagStore` on PostgreSQL: one row per `(tenant, flag)`; a missing row is off.

use std::collections::BTreeMap;

use async_trait::async_trait;
use mc_core::{Flag, FlagStore, StoreError, TenantId};
use sqlx::Row;

use crate::PgStore;
use crate::error::{corrupt, map_sqlx};

#[async_trait]
impl FlagStore for PgStore {
    #[tracing::instrument(name = "mc_postgres.flags.is_enabled", skip(self), fields(tenant = %tenant, flag = %flag))]
    async fn is_enabled(&self, tenant: &TenantId, flag: Flag) -> Result<bool, StoreError> {
        let v: Option<bool> =
            sqlx::query_scalar("SELECT enabled FROM mc_flags WHERE tenant = $1 AND flag = $2")
                .bind(tenant.as_str())
                .bind(flag.as_str())
                .fetch_optional(&self.pool)
                .await
                .map_err(map_sqlx)?;
        Ok(v.unwrap_or(false))
    }

    #[tracing::instrument(name = "mc_postgres.flags.set", skip(self), fields(tenant = %tenant, flag = %flag))]
    async fn set(&self, tenant: &TenantId, flag: Flag, enabled: bool) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO mc_flags (tenant, flag, enabled, updated_at) VALUES ($1, $2, $3, now()) \
             ON CONFLICT (tenant, flag) DO UPDATE SET enabled = EXCLUDED.enabled, \
                                                      updated_at = EXCLUDED.updated_at",
        )
        .bind(tenant.as_str())
        .bind(flag.as_str())
        .bind(enabled)
        .execute(&self.pool)
        .await
        .map_err(map_sqlx)?;
        Ok(())
    }

    #[tracing::instrument(name = "mc_postgres.flags.all", skip(self), fields(tenant = %tenant))]
    async fn all(&self, tenant: &TenantId) -> Result<BTreeMap<Flag, bool>, StoreError> {
        let rows = sqlx::query("SELECT flag, enabled FROM mc_flags WHERE tenant = $1")
            .bind(tenant.as_str())
            .fetch_all(&self.pool)
            .await
            .map_err(map_sqlx)?;
        let mut out: BTreeMap<Flag, bool> = Flag::ALL.into_iter().map(|f| (f, false)).collect();
        for row in rows {
            let name: String = row.try_get("flag").map_err(|e| corrupt("flag", e))?;
            let flag: Flag = name.parse().map_err(|e| corrupt("flag", e))?;
            out.insert(
                flag,
                row.try_get("enabled").map_err(|e| corrupt("enabled", e))?,
            );
        }
        Ok(out)
    }
}
