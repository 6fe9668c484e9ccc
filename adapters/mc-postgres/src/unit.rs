//! The unit of work in one round trip: the `mc_commit` function of migration 0004
//! (ADR 0304).
//!
//! The audit events are sealed here, in Rust, with mc-core's
//! [`NewAuditEvent::seal`](mc_core::NewAuditEvent::seal) — the hash is SHA-256 over
//! mc-core's canonical JSON and is computed by nothing else — onto the chain head this
//! process last saw for the tenant ([`Heads`]). `mc_commit` locks the head row and
//! compares: when another process (or a plain [`AuditLog::append`](mc_core::AuditLog))
//! moved the chain meanwhile, the whole statement rolls back with SQLSTATE `MCC05` and
//! the real head, and the events are sealed again onto it. Commits of one tenant that
//! carry events are queued in-process on the tenant's slot, so one process never races
//! itself for the head; different tenants never wait for each other.
//!
//! After [`MAX_STALE`] stale heads in a row (a chain that keeps moving under us), the
//! commit falls back to the multi-statement transaction of [`crate::execution`], which
//! reads the head under its lock and cannot be stale.

use std::collections::HashMap;
use std::sync::{Arc, Mutex as StdMutex};

use mc_core::audit::GENESIS_HASH;
use mc_core::{ActionCommit, AuditEvent, CommitResult, ExecutionState, StoreError, TenantId};
use sqlx::Row;
use sqlx::postgres::PgDatabaseError;
use sqlx::types::Json;

use crate::PgStore;
use crate::codec::{execution_from_row, split, to_i64};
use crate::error::{corrupt, is_retryable, map_sqlx, sqlstate};

/// Stale chain heads tolerated in a row before falling back to the transaction that
/// reads the head under its lock.
pub(crate) const MAX_STALE: usize = 3;

/// A tenant's chain head as this process last saw it: `(seq, hash)`; `None` before
/// the first commit (then the genesis head is assumed, and corrected if wrong).
pub(crate) type HeadSlot = Arc<tokio::sync::Mutex<Option<(u64, String)>>>;

/// Tenants kept in [`Heads`] before idle slots are dropped.
const MAX_CACHED_TENANTS: usize = 4096;

/// Per-tenant chain-head hints and the in-process queue of commits that append.
#[derive(Default)]
pub(crate) struct Heads {
    slots: StdMutex<HashMap<TenantId, HeadSlot>>,
}

impl Heads {
    /// The slot of `tenant` (created on first use).
    pub(crate) fn slot(&self, tenant: &TenantId) -> HeadSlot {
        // A poisoned map only means another thread panicked while inserting; the map
        // itself is still a valid cache of hints.
        let mut slots = self
            .slots
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(s) = slots.get(tenant) {
            return s.clone();
        }
        if slots.len() >= MAX_CACHED_TENANTS {
            // Drop the hints nobody is using right now; they are only hints.
            slots.retain(|_, s| Arc::strong_count(s) > 1);
        }
        slots.entry(tenant.clone()).or_default().clone()
    }
}

/// What one call of `mc_commit` came back with.
enum Call {
    /// Written; the updated execution when the unit had a transition.
    Committed(Option<mc_core::Execution>),
    /// The key was recorded before: its fingerprint and outcome (nothing written).
    Recorded {
        fingerprint: String,
        outcome: String,
    },
    /// The events were sealed onto a stale head; this is the real one.
    StaleHead(u64, String),
    /// Lost a race (serialization failure, deadlock): run it again.
    Again(String),
}

/// The states from which `to` is a legal transition, as SQL text values.
pub(crate) fn legal_sources(to: ExecutionState) -> Vec<String> {
    ExecutionState::ALL
        .into_iter()
        .filter(|s| s.can_transition_to(to))
        .map(|s| s.as_str().to_string())
        .collect()
}

/// The SQL of one call; the output columns are renamed to those of
/// [`crate::codec::EXECUTION_COLUMNS`] so the updated row decodes like any other.
const CALL_SQL: &str = "SELECT o_kind, o_fingerprint, o_outcome, o_tenant AS tenant, o_id AS id, \
     o_state AS state, o_attempt AS attempt, o_manifest AS manifest_digest, \
     o_inputs AS inputs_digest, o_parent AS parent, o_root AS root, o_labels AS labels, \
     o_version AS version, o_created_at AS created_at, o_created_sub_ns AS created_sub_ns, \
     o_updated_at AS updated_at, o_updated_sub_ns AS updated_sub_ns \
     FROM mc_commit($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, \
     $17, $18, $19, $20, $21, $22, $23, $24, $25, $26, $27, $28, $29, $30, $31, $32, $33, \
     $34, $35, $36, $37, $38)";

fn bad_json(field: &'static str) -> impl Fn(serde_json::Error) -> StoreError {
    move |e| StoreError::InvalidInput {
        field,
        reason: e.to_string(),
    }
}

/// The DETAIL of a database error, if any.
fn detail(e: &sqlx::Error) -> Option<String> {
    e.as_database_error()
        .and_then(|d| d.try_downcast_ref::<PgDatabaseError>())
        .and_then(|d| d.detail())
        .map(str::to_string)
}

/// One call of `mc_commit` for `c` with `sealed` events sealed onto `head`.
async fn call(
    store: &PgStore,
    c: &ActionCommit,
    head: &(u64, String),
    sealed: &[AuditEvent],
) -> Result<Call, StoreError> {
    let at = split(c.at);
    let mut q = sqlx::query(CALL_SQL).bind(c.tenant.as_str());

    // Idempotency record.
    match &c.idempotency {
        Some(rec) => {
            let created = split(rec.created_at);
            q = q
                .bind(Some(rec.key.as_str()))
                .bind(Some(rec.fingerprint.as_str()))
                .bind(Some(
                    serde_json::to_string(&rec.outcome).map_err(bad_json("idempotency outcome"))?,
                ))
                .bind(Some(created.micros))
                .bind(Some(created.sub_ns));
        }
        None => {
            q = q
                .bind(None::<&str>)
                .bind(None::<&str>)
                .bind(None::<String>)
                .bind(None::<time::OffsetDateTime>)
                .bind(None::<i16>);
        }
    }

    // Transition.
    match &c.transition {
        Some(t) => {
            q = q
                .bind(Some(t.execution_id.as_str()))
                .bind(Some(t.to.as_str()))
                .bind(Some(i64::from(t.next_attempt)))
                .bind(Some(to_i64("expected_version", t.expected_version)?))
                .bind(Some(legal_sources(t.to)));
        }
        None => {
            q = q
                .bind(None::<&str>)
                .bind(None::<&str>)
                .bind(None::<i64>)
                .bind(None::<i64>)
                .bind(None::<Vec<String>>);
        }
    }
    q = q.bind(at.micros).bind(at.sub_ns);

    // Created execution.
    match &c.create {
        Some(e) => {
            let created = split(e.created_at);
            let updated = split(e.updated_at);
            q = q
                .bind(Some(e.id.as_str()))
                .bind(Some(e.state.as_str()))
                .bind(Some(i64::from(e.attempt)))
                .bind(Some(e.manifest_digest.as_str()))
                .bind(Some(e.inputs_digest.as_str()))
                .bind(e.parent.as_ref().map(|p| p.as_str()))
                .bind(Some(e.root.as_str()))
                .bind(Some(Json(&e.labels)))
                .bind(Some(to_i64("version", e.version)?))
                .bind(Some(created.micros))
                .bind(Some(created.sub_ns))
                .bind(Some(updated.micros))
                .bind(Some(updated.sub_ns));
        }
        None => {
            q = q
                .bind(None::<&str>)
                .bind(None::<&str>)
                .bind(None::<i64>)
                .bind(None::<&str>)
                .bind(None::<&str>)
                .bind(None::<&str>)
                .bind(None::<&str>)
                .bind(None::<Json<()>>)
                .bind(None::<i64>)
                .bind(None::<time::OffsetDateTime>)
                .bind(None::<i16>)
                .bind(None::<time::OffsetDateTime>)
                .bind(None::<i16>);
        }
    }

    // Audit events, sealed onto `head`.
    let n = sealed.len();
    let mut seqs = Vec::with_capacity(n);
    let mut ids = Vec::with_capacity(n);
    let mut kinds = Vec::with_capacity(n);
    let mut subs = Vec::with_capacity(n);
    let mut execs = Vec::with_capacity(n);
    let mut resources = Vec::with_capacity(n);
    let mut datas = Vec::with_capacity(n);
    let mut tss = Vec::with_capacity(n);
    let mut prevs = Vec::with_capacity(n);
    let mut hashes = Vec::with_capacity(n);
    for e in sealed {
        seqs.push(to_i64("seq", e.seq)?);
        ids.push(e.id.as_str());
        kinds.push(e.kind.as_str());
        subs.push(e.actor.sub.as_str());
        execs.push(e.subject.execution_id.as_ref().map(|x| x.as_str()));
        resources.push(e.subject.resource.as_deref());
        // serde_json escapes control characters, so the text is always storable.
        datas.push(serde_json::to_string(&e.data).map_err(bad_json("audit event data"))?);
        tss.push(e.ts);
        prevs.push(e.prev.as_str());
        hashes.push(e.hash.as_str());
    }
    q = q
        .bind(to_i64("seq", head.0)?)
        .bind(head.1.as_str())
        .bind(seqs)
        .bind(ids)
        .bind(kinds)
        .bind(subs)
        .bind(execs)
        .bind(resources)
        .bind(datas)
        .bind(tss)
        .bind(prevs)
        .bind(hashes);

    let row = match q.fetch_one(store.pool()).await {
        Ok(row) => row,
        Err(e) => return typed(e, c),
    };
    let kind: String = row.try_get("o_kind").map_err(|e| corrupt("o_kind", e))?;
    match kind.as_str() {
        "replayed" => Ok(Call::Recorded {
            fingerprint: row
                .try_get("o_fingerprint")
                .map_err(|e| corrupt("fingerprint", e))?,
            outcome: row
                .try_get("o_outcome")
                .map_err(|e| corrupt("outcome", e))?,
        }),
        "committed" => Ok(Call::Committed(match &c.transition {
            Some(_) => Some(execution_from_row(&row)?),
            None => None,
        })),
        other => Err(corrupt(
            "mc_commit result",
            format!("unknown kind {other:?}"),
        )),
    }
}

/// Maps a failed call to the typed error of the multi-statement path.
fn typed(e: sqlx::Error, c: &ActionCommit) -> Result<Call, StoreError> {
    if is_retryable(&e) {
        return Ok(Call::Again(e.to_string()));
    }
    let code = sqlstate(&e);
    let d = detail(&e);
    let missing = |what: &str| corrupt("mc_commit error", format!("{what} without its detail"));
    match (code.as_deref(), &c.transition, &c.create) {
        (Some("MCC01"), Some(t), _) => Err(StoreError::NotFound {
            id: t.execution_id.to_string(),
        }),
        (Some("MCC02"), Some(t), _) => {
            let actual = d
                .ok_or_else(|| missing("MCC02"))?
                .parse::<u64>()
                .map_err(|e| corrupt("version", e))?;
            Err(StoreError::VersionConflict {
                id: t.execution_id.to_string(),
                expected: t.expected_version,
                actual,
            })
        }
        (Some("MCC03"), Some(t), _) => {
            let from: ExecutionState = d
                .ok_or_else(|| missing("MCC03"))?
                .parse()
                .map_err(|e| corrupt("state", e))?;
            Err(StoreError::IllegalTransition {
                id: t.execution_id.to_string(),
                from,
                to: t.to,
            })
        }
        (Some("MCC04"), _, Some(new)) => Err(StoreError::AlreadyExists {
            id: new.id.to_string(),
        }),
        (Some("MCC05"), _, _) => {
            let d = d.ok_or_else(|| missing("MCC05"))?;
            let (seq, hash) = d
                .split_once(' ')
                .ok_or_else(|| corrupt("audit head", d.clone()))?;
            let seq = seq
                .parse::<u64>()
                .map_err(|e| corrupt("audit head seq", e))?;
            Ok(Call::StaleHead(seq, hash.to_string()))
        }
        _ => Err(map_sqlx(e)),
    }
}

/// Seals `c`'s events onto `head`.
fn seal(c: &ActionCommit, head: &(u64, String)) -> Vec<AuditEvent> {
    let (mut seq, mut prev) = head.clone();
    c.audit
        .iter()
        .map(|ev| {
            seq += 1;
            let s = ev.clone().seal(seq, &prev);
            prev.clone_from(&s.hash);
            s
        })
        .collect()
}

/// Commits `c` (already validated, every tenant equal to `c.tenant`) in one round trip
/// when the head hint is right; see the module documentation.
pub(crate) async fn commit(store: &PgStore, c: &ActionCommit) -> Result<CommitResult, StoreError> {
    let slot = (!c.audit.is_empty()).then(|| store.heads.slot(&c.tenant));
    let mut hint = match &slot {
        Some(s) => Some(s.lock().await),
        None => None,
    };
    let mut head = hint
        .as_ref()
        .and_then(|h| (**h).clone())
        .unwrap_or_else(|| (0, GENESIS_HASH.to_string()));
    let (mut stale, mut races) = (0, 0);
    loop {
        let sealed = seal(c, &head);
        match call(store, c, &head, &sealed).await? {
            Call::Committed(updated) => {
                if let (Some(h), Some(l)) = (hint.as_mut(), sealed.last()) {
                    **h = Some((l.seq, l.hash.clone()));
                }
                return Ok(CommitResult::Committed {
                    updated,
                    created: c.create.clone(),
                    audit: sealed,
                });
            }
            Call::Recorded {
                fingerprint,
                outcome,
            } => {
                let rec = c.idempotency.as_ref().ok_or_else(|| {
                    corrupt("mc_commit result", "a recorded key for a unit without one")
                })?;
                return if fingerprint == rec.fingerprint.as_str() {
                    Ok(CommitResult::Replayed {
                        outcome: serde_json::from_str(&outcome)
                            .map_err(|e| corrupt("outcome", e))?,
                    })
                } else {
                    Err(StoreError::IdempotencyConflict {
                        key: rec.key.to_string(),
                    })
                };
            }
            Call::StaleHead(seq, hash) => {
                head = (seq, hash);
                if let Some(h) = hint.as_mut() {
                    **h = Some(head.clone());
                }
                stale += 1;
                if stale >= MAX_STALE {
                    tracing::debug!(tenant = %c.tenant, "chain head kept moving; multi-statement commit");
                    // Still holding the slot: the fallback never waits for it while
                    // holding database locks, so this cannot deadlock.
                    let r = store.commit_in_tx(c).await;
                    if let (Some(h), Ok(CommitResult::Committed { audit, .. })) =
                        (hint.as_mut(), &r)
                        && let Some(l) = audit.last()
                    {
                        **h = Some((l.seq, l.hash.clone()));
                    }
                    return r;
                }
            }
            Call::Again(m) => {
                races += 1;
                if races >= crate::MAX_TX_ATTEMPTS {
                    return Err(crate::retries_exhausted(&m));
                }
            }
        }
    }
}
