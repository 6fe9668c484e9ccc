//! Rows to mc-core values and back, exactly.
//!
//! PostgreSQL's `timestamptz` has microsecond precision while `OffsetDateTime` has
//! nanoseconds, so every execution timestamp is stored as a microsecond timestamp
//! plus the sub-microsecond remainder (0..=999 ns). Reading both back yields the same
//! instant that was written.

use std::collections::BTreeMap;

use mc_core::audit::{AuditActor, AuditSubject};
use mc_core::{
    ActorId, AuditEvent, Digest, Execution, ExecutionId, ExecutionState, StoreError, TenantId,
};
use sqlx::Row;
use sqlx::postgres::PgRow;
use time::{Duration, OffsetDateTime};

use crate::error::corrupt;

/// A timestamp split into a microsecond-exact instant and the nanosecond remainder.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct SplitTime {
    /// The instant truncated (towards the past) to whole microseconds, in UTC.
    pub micros: OffsetDateTime,
    /// The remaining nanoseconds, 0..=999.
    pub sub_ns: i16,
}

/// Splits `t` for storage. Never fails for an `OffsetDateTime` in time's range.
pub(crate) fn split(t: OffsetDateTime) -> SplitTime {
    let nanos = t.unix_timestamp_nanos();
    let sub = nanos.rem_euclid(1000);
    // `nanos - sub` is a valid instant: it lies between `t` and the previous whole
    // microsecond, which time's range (whole days) always contains.
    let micros = OffsetDateTime::from_unix_timestamp_nanos(nanos - sub)
        .unwrap_or(t)
        .to_offset(time::UtcOffset::UTC);
    SplitTime {
        micros,
        // `sub` is in 0..1000.
        sub_ns: sub as i16,
    }
}

/// Joins a stored pair back into one instant.
pub(crate) fn join(micros: OffsetDateTime, sub_ns: i16) -> Result<OffsetDateTime, StoreError> {
    if !(0..=999).contains(&sub_ns) {
        return Err(corrupt(
            "timestamp",
            format!("sub-microsecond part {sub_ns} is out of range"),
        ));
    }
    micros
        .checked_add(Duration::nanoseconds(i64::from(sub_ns)))
        .ok_or_else(|| corrupt("timestamp", "out of range"))
}

/// Sealed audit events as the parallel arrays that `UNNEST` and `mc_commit_batch`
/// take, one element per event, in chain order.
#[derive(Debug, Default)]
pub(crate) struct AuditColumns {
    pub seqs: Vec<i64>,
    pub ids: Vec<String>,
    pub kinds: Vec<String>,
    pub subs: Vec<String>,
    pub execs: Vec<Option<String>>,
    pub resources: Vec<Option<String>>,
    pub datas: Vec<String>,
    pub tss: Vec<OffsetDateTime>,
    pub prevs: Vec<String>,
    pub hashes: Vec<String>,
}

impl AuditColumns {
    /// Appends one sealed event.
    pub(crate) fn push(&mut self, e: &AuditEvent) -> Result<(), StoreError> {
        self.seqs.push(to_i64("seq", e.seq)?);
        self.ids.push(e.id.clone());
        self.kinds.push(e.kind.clone());
        self.subs.push(e.actor.sub.as_str().to_string());
        self.execs.push(
            e.subject
                .execution_id
                .as_ref()
                .map(|x| x.as_str().to_string()),
        );
        self.resources.push(e.subject.resource.clone());
        // serde_json escapes control characters, so the text is always storable.
        self.datas
            .push(
                serde_json::to_string(&e.data).map_err(|err| StoreError::InvalidInput {
                    field: "audit event data",
                    reason: err.to_string(),
                })?,
            );
        self.tss.push(e.ts);
        self.prevs.push(e.prev.clone());
        self.hashes.push(e.hash.clone());
        Ok(())
    }

    /// Binds the ten arrays, in the order above, as the next parameters of `q`.
    pub(crate) fn bind<'q>(
        self,
        q: sqlx::query::Query<'q, sqlx::Postgres, sqlx::postgres::PgArguments>,
    ) -> sqlx::query::Query<'q, sqlx::Postgres, sqlx::postgres::PgArguments> {
        q.bind(self.seqs)
            .bind(self.ids)
            .bind(self.kinds)
            .bind(self.subs)
            .bind(self.execs)
            .bind(self.resources)
            .bind(self.datas)
            .bind(self.tss)
            .bind(self.prevs)
            .bind(self.hashes)
    }
}

/// The column list matching [`execution_from_row`].
pub(crate) const EXECUTION_COLUMNS: &str = "tenant, id, state, attempt, manifest_digest, \
     inputs_digest, parent, root, labels, version, created_at, created_sub_ns, updated_at, \
     updated_sub_ns";

fn get<'r, T>(row: &'r PgRow, col: &str) -> Result<T, StoreError>
where
    T: sqlx::Decode<'r, sqlx::Postgres> + sqlx::Type<sqlx::Postgres>,
{
    row.try_get(col).map_err(|e| corrupt(col, e))
}

/// Decodes a row selected with [`EXECUTION_COLUMNS`].
pub(crate) fn execution_from_row(row: &PgRow) -> Result<Execution, StoreError> {
    let tenant = TenantId::new(get::<String>(row, "tenant")?).map_err(|e| corrupt("tenant", e))?;
    let id = ExecutionId::new(get::<String>(row, "id")?).map_err(|e| corrupt("id", e))?;
    let state: ExecutionState = get::<String>(row, "state")?
        .parse()
        .map_err(|e| corrupt("state", e))?;
    let attempt = u32::try_from(get::<i64>(row, "attempt")?).map_err(|e| corrupt("attempt", e))?;
    let manifest_digest =
        Digest::parse_hex("manifest_digest", &get::<String>(row, "manifest_digest")?)
            .map_err(|e| corrupt("manifest_digest", e))?;
    let inputs_digest = Digest::parse_hex("inputs_digest", &get::<String>(row, "inputs_digest")?)
        .map_err(|e| corrupt("inputs_digest", e))?;
    let parent = get::<Option<String>>(row, "parent")?
        .map(ExecutionId::new)
        .transpose()
        .map_err(|e| corrupt("parent", e))?;
    let root = ExecutionId::new(get::<String>(row, "root")?).map_err(|e| corrupt("root", e))?;
    let labels: sqlx::types::Json<BTreeMap<String, String>> = get(row, "labels")?;
    let version = u64::try_from(get::<i64>(row, "version")?).map_err(|e| corrupt("version", e))?;
    let created_at = join(get(row, "created_at")?, get(row, "created_sub_ns")?)?;
    let updated_at = join(get(row, "updated_at")?, get(row, "updated_sub_ns")?)?;
    Ok(Execution {
        tenant,
        id,
        state,
        attempt,
        manifest_digest,
        inputs_digest,
        parent,
        root,
        labels: labels.0,
        version,
        created_at,
        updated_at,
    })
}

/// The column list matching [`audit_from_row`] (table alias `e`).
pub(crate) const AUDIT_COLUMNS: &str = "e.tenant, e.seq, e.id, e.kind, e.actor_sub, \
     e.execution_id, e.resource, e.data::text AS data, e.ts, e.prev, e.hash";

/// Decodes a row selected with [`AUDIT_COLUMNS`] back into the sealed event.
pub(crate) fn audit_from_row(row: &PgRow) -> Result<AuditEvent, StoreError> {
    let tenant = TenantId::new(get::<String>(row, "tenant")?).map_err(|e| corrupt("tenant", e))?;
    let seq = u64::try_from(get::<i64>(row, "seq")?).map_err(|e| corrupt("seq", e))?;
    let sub =
        ActorId::new(get::<String>(row, "actor_sub")?).map_err(|e| corrupt("actor_sub", e))?;
    let execution_id = get::<Option<String>>(row, "execution_id")?
        .map(ExecutionId::new)
        .transpose()
        .map_err(|e| corrupt("execution_id", e))?;
    let data: serde_json::Value =
        serde_json::from_str(&get::<String>(row, "data")?).map_err(|e| corrupt("data", e))?;
    Ok(AuditEvent {
        id: get(row, "id")?,
        kind: get(row, "kind")?,
        actor: AuditActor { sub, tenant },
        subject: AuditSubject {
            execution_id,
            resource: get(row, "resource")?,
        },
        data,
        ts: get(row, "ts")?,
        seq,
        prev: get(row, "prev")?,
        hash: get(row, "hash")?,
    })
}

/// Rejects text PostgreSQL cannot store (`text` and `jsonb` refuse the NUL character).
pub(crate) fn check_text(field: &'static str, value: &str) -> Result<(), StoreError> {
    if value.contains('\0') {
        return Err(StoreError::InvalidInput {
            field,
            reason: "contains the NUL character, which PostgreSQL text cannot store".into(),
        });
    }
    Ok(())
}

/// A `u64` counter as PostgreSQL `bigint`.
pub(crate) fn to_i64(field: &'static str, v: u64) -> Result<i64, StoreError> {
    i64::try_from(v).map_err(|_| StoreError::InvalidInput {
        field,
        reason: format!("{v} is above the largest storable value {}", i64::MAX),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn split_join_roundtrips_nanoseconds_before_and_after_the_epoch() {
        for t in [
            datetime!(2025-12-10 18:04:21.123456789 UTC),
            datetime!(1969-12-31 23:59:59.999999999 UTC),
            datetime!(1900-01-01 00:00:00.000000001 +02:00),
            datetime!(2025-12-10 18:00 UTC),
        ] {
            let s = split(t);
            assert!((0..=999).contains(&s.sub_ns));
            assert_eq!(s.micros.nanosecond() % 1000, 0, "micros part is whole µs");
            assert_eq!(join(s.micros, s.sub_ns).unwrap(), t);
        }
        assert!(join(datetime!(2025-12-10 18:00 UTC), 1000).is_err());
    }

    #[test]
    fn nul_and_oversized_values_are_named() {
        let e = check_text("labels", "a\0b").unwrap_err();
        assert!(matches!(
            e,
            StoreError::InvalidInput {
                field: "labels",
                ..
            }
        ));
        assert!(check_text("labels", "ok").is_ok());
        assert!(matches!(
            to_i64("version", u64::MAX),
            Err(StoreError::InvalidInput {
                field: "version",
                ..
            })
        ));
        assert_eq!(to_i64("version", 7).unwrap(), 7);
    }
}
