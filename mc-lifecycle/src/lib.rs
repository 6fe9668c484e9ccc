//! # mc-lifecycle — data-lifecycle enforcement
//!
//! Spec §1 B3, §3.6 MC-DATA-1151 (logs purged at 90 days, receipts kept 7 years,
//! per-tenant overrides, audit events), §5.6 (the janitor run as a CronJob with
//! `--kind=logs --ttl=90d`), §7 (signed deletion manifests for auditors), §9 (receipts
//! immutable).
//!
//! - [`Ttl`]: periods as written in configuration (`90d`, `7y`, `12h`), calendar years.
//! - [`Retention`]: a rule per blob kind (default, bounds, [`Enforcement`]) and the
//!   tenants' overrides, checked against the bounds ([`set_override_audited`] records
//!   each change as an `mc.lifecycle.override` audit event).
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
use mc_core::{ActorId, AuditLog, BlobError, StoreError, TenantId};
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
    /// The audit log failed.
    #[error("audit log: {0}")]
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
    /// The new period.
    pub ttl: Ttl,
    /// Why (recorded in the audit event).
    pub reason: &'a str,
}

/// Sets a tenant's retention override and records it as an `mc.lifecycle.override`
/// event (`{kind, ttl, previous, reason}`) by the actor. The override is checked
/// first and applied only once the event is in the chain, so every change in force
/// is audited. Returns the period it replaced.
///
/// # Errors
/// [`LifecycleError::NoRule`], [`LifecycleError::OverrideOutOfBounds`], or the audit
/// log's error (then nothing changed).
pub async fn set_override_audited(
    retention: &mut Retention,
    audit: &dyn AuditLog,
    change: OverrideChange<'_>,
    now: OffsetDateTime,
) -> Result<Ttl, LifecycleError> {
    let OverrideChange {
        tenant,
        actor,
        kind,
        ttl,
        reason,
    } = change;
    let mut next = retention.clone();
    let previous = next.set_override(tenant, kind, ttl, now)?;
    audit
        .append(NewAuditEvent {
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
                "ttl": ttl.to_string(),
                "previous": previous.to_string(),
                "reason": reason,
            }),
            ts: now,
        })
        .await?;
    *retention = next;
    Ok(previous)
}
