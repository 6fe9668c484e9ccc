//! # mc-lifecycle — data-lifecycle enforcement
//!
//! Spec §1 B3, §3.6 MC-DATA-1151 (logs purged at 90 days, receipts kept 7 years,
//! per-tenant overrides, audit events), §5.6 (the janitor run as a CronJob with
//! `--kind=logs --ttl=90d`), §7 (signed deletion manifests for auditors), §9 (receipts
//! immutable).
//!
//! - [`Ttl`]: periods as written in configuration (`90d`, `7y`, `12h`), calendar years.
//! - [`Retention`]: a rule per blob kind (default, bounds, [`Enforcement`]) and the
//!   tenants' overrides, checked against the bounds. Overrides are kept durably in a
//!   `RetentionStore` (in memory, or PostgreSQL with `mc-postgres`):
//!   [`set_override_audited`] changes one together with its `mc.lifecycle.override`
//!   audit event ([`set_override_if`]: only if unchanged since read),
//!   [`load_overrides`] reads them back for a janitor run, [`tenant_retention`] shows
//!   a tenant's rules and overrides.
//! - [`Janitor`]: deletes a tenant's expired objects of one kind, with a signed plan
//!   written before and a signed result after (DSSE, ed25519), finishes interrupted
//!   runs, audits each run (`mc.lifecycle.purge`); [`verify_deletion_manifest`].
//! - [`Retaining`]: wraps any `BlobStore` so that receipts can be neither deleted nor
//!   overwritten before their period ends.
//!
//! The crate does no I/O of its own: it works through `mc-core`'s `BlobStore`,
//! `AuditLog` and `Clock`, so a test can run "seven years later" in microseconds.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod guard;
mod janitor;
mod rules;
mod ttl;

pub use guard::Retaining;
pub use janitor::{
    DeletionEntry, DeletionManifest, Janitor, MANIFEST_KIND, Outcome, PAYLOAD_TYPE, PURGE_EVENT,
    Phase, PurgeOptions, PurgeReport, verify_deletion_manifest,
};
pub use rules::{Enforcement, KindRule, Retention};
pub use ttl::{Ttl, TtlError};

use mc_core::audit::{AuditActor, AuditSubject, NewAuditEvent};
use mc_core::{ActorId, BlobError, RetentionCommit, RetentionStore, StoreError, TenantId};
use time::OffsetDateTime;

/// The audit event type of a retention override change.
pub const OVERRIDE_EVENT: &str = "mc.lifecycle.override";

/// Errors of lifecycle enforcement.
#[derive(Debug, thiserror::Error)]
pub enum LifecycleError {
    /// The kind has no retention rule (its objects are kept indefinitely).
    #[error("no retention rule for kind {kind:?}")]
    NoRule {
        /// The kind.
        kind: String,
    },
    /// An override outside the kind's bounds.
    #[error("retention {ttl} for {kind} is outside the allowed {min}..={max}")]
    OverrideOutOfBounds {
        /// The kind.
        kind: String,
        /// The period asked for.
        ttl: String,
        /// The shortest allowed.
        min: String,
        /// The longest allowed.
        max: String,
    },
    /// A malformed period.
    #[error(transparent)]
    Ttl(#[from] TtlError),
    /// A run with this id already has a plan (another janitor ran or runs it).
    #[error("janitor run {run_id} already exists")]
    RunExists {
        /// The run.
        run_id: String,
    },
    /// A run id that cannot name a manifest.
    #[error("bad run id {run_id:?}: {reason}")]
    InvalidRunId {
        /// The run id (truncated).
        run_id: String,
        /// Why.
        reason: String,
    },
    /// A deletion manifest that does not verify or parse.
    #[error("deletion manifest: {reason}")]
    Manifest {
        /// Why.
        reason: String,
    },
    /// The blob store failed.
    #[error(transparent)]
    Blob(#[from] BlobError),
    /// A stored override that cannot be applied: not a period, or outside the kind's
    /// bounds. Nothing is purged for the tenant on a value nobody can vouch for.
    #[error("stored retention override {tenant}/{kind}: {reason}")]
    StoredOverride {
        /// The tenant.
        tenant: String,
        /// The kind.
        kind: String,
        /// Why it was refused.
        reason: String,
    },
    /// A conditional change ([`set_override_if`]) found another override in force
    /// than the one the caller saw: someone changed it since. Nothing changed.
    #[error("retention override {tenant}/{kind} is {actual}, not {expected} as expected")]
    PreconditionFailed {
        /// The tenant.
        tenant: String,
        /// The kind.
        kind: String,
        /// What the caller saw (`none` for no override).
        expected: String,
        /// What is stored now (`none` for no override).
        actual: String,
    },
    /// The audit log or the retention store failed (a lost compare-and-set race is
    /// [`StoreError::Conflict`]).
    #[error("store: {0}")]
    Audit(#[from] StoreError),
}

/// A retention override change, as asked for.
#[derive(Debug, Clone)]
pub struct OverrideChange<'a> {
    /// The tenant.
    pub tenant: &'a TenantId,
    /// Who changes it.
    pub actor: &'a ActorId,
    /// The blob kind.
    pub kind: &'a str,
    /// The new period; `None` removes the override (the kind's default applies).
    pub ttl: Option<Ttl>,
    /// Why (recorded in the audit event).
    pub reason: &'a str,
}

/// How many times [`set_override_audited`] re-reads and retries after losing a
/// compare-and-set race to another administrator.
const OVERRIDE_ATTEMPTS: usize = 3;

/// Sets (or, with `ttl: None`, removes) a tenant's retention override in `store`
/// and records it as an `mc.lifecycle.override` event (`{kind, ttl, previous,
/// reason}`; `ttl` is `null` for a removal) by the actor — one unit of work: the
/// override is in force exactly when its event is in the tenant's chain.
///
/// The new period is checked against `retention`'s rule for the kind first. The
/// change is compare-and-set against the override read just before, so `previous`
/// in the event is exactly what it replaced; a lost race is re-read and retried.
/// Returns the period in force before the change (the override, else the default).
///
/// # Errors
/// [`LifecycleError::NoRule`], [`LifecycleError::OverrideOutOfBounds`],
/// [`LifecycleError::StoredOverride`] when the stored value cannot be read as a
/// period, or the store's error — in every case nothing changed.
pub async fn set_override_audited(
    retention: &Retention,
    store: &dyn RetentionStore,
    change: OverrideChange<'_>,
    now: OffsetDateTime,
) -> Result<Ttl, LifecycleError> {
    commit_change(retention, store, change, None, now).await
}

/// Like [`set_override_audited`], but only if the tenant's override of the kind is
/// still `expected` (`None`: no override) — the HTTP API's `If-Match`. One attempt:
/// a value changed since, or a race lost while committing, is
/// [`LifecycleError::PreconditionFailed`] naming both values, and nothing changes.
///
/// # Errors
/// As [`set_override_audited`], and [`LifecycleError::PreconditionFailed`].
pub async fn set_override_if(
    retention: &Retention,
    store: &dyn RetentionStore,
    change: OverrideChange<'_>,
    expected: Option<Ttl>,
    now: OffsetDateTime,
) -> Result<Ttl, LifecycleError> {
    commit_change(retention, store, change, Some(expected), now).await
}

async fn commit_change(
    retention: &Retention,
    store: &dyn RetentionStore,
    change: OverrideChange<'_>,
    precondition: Option<Option<Ttl>>,
    now: OffsetDateTime,
) -> Result<Ttl, LifecycleError> {
    let OverrideChange {
        tenant,
        actor,
        kind,
        ttl,
        reason,
    } = change;
    let rule = match ttl {
        Some(ttl) => retention.check_bounds(kind, ttl, now)?,
        None => retention.rule(kind).ok_or_else(|| LifecycleError::NoRule {
            kind: kind.to_string(),
        })?,
    };
    let show = |t: Option<Ttl>| mc_core::retention::show(t.map(|t| t.to_string()).as_deref());
    let mut attempt = 0;
    loop {
        attempt += 1;
        let stored = store.overrides(tenant).await?.remove(kind);
        let current = stored
            .as_deref()
            .map(|text| parse_stored(tenant, kind, text))
            .transpose()?;
        let failed =
            |actual: Option<Ttl>, expected: Option<Ttl>| LifecycleError::PreconditionFailed {
                tenant: tenant.to_string(),
                kind: kind.to_string(),
                expected: show(expected),
                actual: show(actual),
            };
        if let Some(expected) = precondition
            && current != expected
        {
            return Err(failed(current, expected));
        }
        let previous = current.unwrap_or(rule.default);
        let commit = RetentionCommit {
            tenant: tenant.clone(),
            kind: kind.to_string(),
            expected: stored,
            ttl: ttl.map(|t| t.to_string()),
            event: NewAuditEvent {
                id: None,
                kind: OVERRIDE_EVENT.to_string(),
                actor: AuditActor {
                    sub: actor.clone(),
                    tenant: tenant.clone(),
                },
                subject: AuditSubject {
                    execution_id: None,
                    resource: Some(format!("retention/{kind}")),
                },
                data: serde_json::json!({
                    "kind": kind,
                    "ttl": ttl.map(|t| t.to_string()),
                    "previous": previous.to_string(),
                    "reason": reason,
                }),
                ts: now,
            },
        };
        match store.commit_override(commit).await {
            Ok(_) => return Ok(previous),
            Err(StoreError::Conflict { .. }) if precondition.is_some() => {
                // Someone committed between the read and the write: report what is
                // stored now.
                let now_stored = store.overrides(tenant).await?.remove(kind);
                let actual = now_stored
                    .as_deref()
                    .map(|text| parse_stored(tenant, kind, text))
                    .transpose()?;
                return Err(failed(actual, precondition.flatten()));
            }
            Err(StoreError::Conflict { .. }) if attempt < OVERRIDE_ATTEMPTS => continue,
            Err(e) => return Err(e.into()),
        }
    }
}

/// A kind's retention as a tenant sees it: the rule, the tenant's override, and the
/// period in force.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct KindRetention {
    /// The blob kind.
    pub kind: String,
    /// The rule (default, bounds, enforcement).
    #[serde(flatten)]
    pub rule: KindRule,
    /// The tenant's override, if any.
    #[serde(rename = "override")]
    pub override_ttl: Option<Ttl>,
    /// The period in force: the override, else the default.
    pub effective: Ttl,
}

/// Every kind's retention for `tenant`, with the overrides stored in `store`.
///
/// # Errors
/// [`LifecycleError::StoredOverride`] for a stored value that is not a period, or the
/// store's error.
pub async fn tenant_retention(
    retention: &Retention,
    store: &dyn RetentionStore,
    tenant: &TenantId,
) -> Result<Vec<KindRetention>, LifecycleError> {
    let stored = store.overrides(tenant).await?;
    retention
        .kinds()
        .filter_map(|kind| retention.rule(kind).map(|rule| (kind, rule.clone())))
        .map(|(kind, rule)| {
            let override_ttl = stored
                .get(kind)
                .map(|text| parse_stored(tenant, kind, text))
                .transpose()?;
            Ok(KindRetention {
                kind: kind.to_string(),
                effective: override_ttl.unwrap_or(rule.default),
                rule,
                override_ttl,
            })
        })
        .collect()
}

fn parse_stored(tenant: &TenantId, kind: &str, text: &str) -> Result<Ttl, LifecycleError> {
    text.parse()
        .map_err(|e: TtlError| LifecycleError::StoredOverride {
            tenant: tenant.to_string(),
            kind: kind.to_string(),
            reason: e.to_string(),
        })
}

/// Reads each tenant's overrides from `store` into `retention`, replacing what it held
/// for those tenants. Every stored value is parsed and checked against the kind's
/// current bounds: one that fails (an override stored before a bound was tightened,
/// or written by another tool) is an error, never silently replaced by the default —
/// the janitor must not purge on a period nobody set. Overrides of kinds without a
/// rule are ignored (their objects are kept).
///
/// # Errors
/// [`LifecycleError::StoredOverride`] naming the tenant and kind, or the store's error;
/// `retention` is unchanged then.
pub async fn load_overrides(
    retention: &mut Retention,
    store: &dyn RetentionStore,
    tenants: &[TenantId],
    now: OffsetDateTime,
) -> Result<(), LifecycleError> {
    let mut next = retention.clone();
    for tenant in tenants {
        next.clear_tenant(tenant);
        for (kind, text) in store.overrides(tenant).await? {
            if next.rule(&kind).is_none() {
                continue;
            }
            let ttl = parse_stored(tenant, &kind, &text)?;
            next.set_override(tenant, &kind, ttl, now).map_err(|e| {
                LifecycleError::StoredOverride {
                    tenant: tenant.to_string(),
                    kind: kind.clone(),
                    reason: e.to_string(),
                }
            })?;
        }
    }
    *retention = next;
    Ok(())
}
