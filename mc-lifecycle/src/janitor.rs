//! The janitor: deletes a tenant's expired objects of one kind and leaves a signed
//! deletion manifest for auditors (spec §3.6 MC-DATA-1151, §5.6, §7).
//!
//! A run is two signed documents under
//! `tenants/{tenant}/deletion-manifests/{run_id}/`:
//! 1. `plan.dsse.json`, written **before** anything is deleted (write-once: a second
//!    janitor with the same run id stops there), listing every expired object;
//! 2. `result.dsse.json`, written after, with each object's outcome and the SHA-256 of
//!    the plan.
//!
//! A run that stopped between the two (a crash, a killed pod) is finished by the next
//! run of the tenant ([`Janitor::recover`]): an object of the plan that is gone counts
//! as deleted, one that changed since the plan is skipped, the rest are deleted, and
//! the result is written. So every deletion is in a signed manifest, and a manifest
//! never claims a deletion that did not happen.

use std::collections::BTreeMap;
use std::sync::Arc;

use mc_core::audit::{AuditActor, AuditSubject, NewAuditEvent};
use mc_core::{
    ActorId, AuditLog, BlobError, BlobKey, BlobMeta, BlobStore, Clock, ExecutionId, PutMode,
    TenantId,
};
use mc_evidence::{Envelope, EvidenceKey};
use serde::{Deserialize, Serialize};
use sha2::Digest as _;
use time::OffsetDateTime;

use crate::{LifecycleError, Retention, Ttl};

/// The DSSE payload type of deletion manifests.
pub const PAYLOAD_TYPE: &str = "application/vnd.mc.deletion-manifest+json";

/// The audit event type of a janitor run.
pub const PURGE_EVENT: &str = "mc.lifecycle.purge";

/// Objects deleted per `delete_many` call (S3's DeleteObjects takes up to 1,000).
const DELETE_BATCH: usize = 1000;

/// The blob kind under which manifests are kept.
pub const MANIFEST_KIND: &str = "deletion-manifests";

/// Which of a run's two documents.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    /// Written before deleting: what will be deleted.
    Plan,
    /// Written after: what happened to each object.
    Result,
}

/// What happened to one object of a plan.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum Outcome {
    /// Deleted by this run.
    Deleted,
    /// Already gone when the run got to it (deleted before a crash, or by someone else).
    AlreadyGone,
    /// Written again since the plan (it is no longer the object that expired): kept.
    SkippedModified {
        /// Its new last-modified time.
        #[serde(with = "time::serde::rfc3339")]
        last_modified: OffsetDateTime,
    },
    /// The store refused or failed; the object is still there.
    Failed {
        /// The store's error.
        error: String,
    },
}

/// One object in a manifest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DeletionEntry {
    /// The blob key.
    pub key: String,
    /// Its size in bytes.
    pub size: u64,
    /// Its last-modified time (its age).
    #[serde(with = "time::serde::rfc3339")]
    pub last_modified: OffsetDateTime,
    /// When its retention period ended.
    #[serde(with = "time::serde::rfc3339")]
    pub expired_at: OffsetDateTime,
    /// In a result: what happened.
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    pub outcome: Option<Outcome>,
}

/// A signed record of one janitor run (its plan or its result).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DeletionManifest {
    /// Always `mc.lifecycle.deletion-manifest/v1`.
    pub schema: String,
    /// Plan or result.
    pub phase: Phase,
    /// The run.
    pub run_id: String,
    /// The tenant.
    pub tenant: TenantId,
    /// The blob kind (`logs`, `receipts`, …).
    pub kind: String,
    /// The retention period applied.
    pub ttl: Ttl,
    /// When this document was made.
    #[serde(with = "time::serde::rfc3339")]
    pub generated_at: OffsetDateTime,
    /// The objects.
    pub entries: Vec<DeletionEntry>,
    /// In a result: SHA-256 (hex) of the plan's envelope as stored.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plan_sha256: Option<String>,
}

const SCHEMA: &str = "mc.lifecycle.deletion-manifest/v1";

impl DeletionManifest {
    fn sign(&self, key: &EvidenceKey) -> Vec<u8> {
        let payload = serde_json::to_vec(self).unwrap_or_default();
        Envelope::sign(PAYLOAD_TYPE, &payload, key)
            .to_json_pretty()
            .into_bytes()
    }
}

/// Verifies a stored deletion manifest (its DSSE envelope) with the janitor's public
/// key and returns it.
///
/// # Errors
/// [`LifecycleError::Manifest`]: not an envelope, another payload type, a bad
/// signature or a malformed payload.
pub fn verify_deletion_manifest(
    envelope: &[u8],
    key: &ed25519_dalek::VerifyingKey,
) -> Result<DeletionManifest, LifecycleError> {
    let bad = |reason: String| LifecycleError::Manifest { reason };
    let env = Envelope::from_json(envelope).map_err(|e| bad(e.to_string()))?;
    if env.payload_type != PAYLOAD_TYPE {
        return Err(bad(format!(
            "payload type {:?} is not {PAYLOAD_TYPE}",
            env.payload_type
        )));
    }
    let payload = env.verify(key).map_err(|e| bad(e.to_string()))?;
    let m: DeletionManifest =
        serde_json::from_slice(&payload).map_err(|e| bad(format!("payload: {e}")))?;
    if m.schema != SCHEMA {
        return Err(bad(format!("schema {:?} is not {SCHEMA}", m.schema)));
    }
    Ok(m)
}

/// How a run goes.
#[derive(Debug, Clone, Default)]
pub struct PurgeOptions {
    /// List what would be deleted; write and delete nothing.
    pub dry_run: bool,
    /// The run's id (default `{kind}-{yyyymmddThhmmZ}` of the start). Two runs with
    /// the same id for the same tenant cannot both delete: the second finds the plan.
    pub run_id: Option<String>,
}

/// What a run did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PurgeReport {
    /// The run.
    pub run_id: String,
    /// The period applied.
    pub ttl: Ttl,
    /// Objects of the kind looked at.
    pub examined: usize,
    /// Objects past their period (the plan).
    pub expired: usize,
    /// Deleted by this run.
    pub deleted: usize,
    /// Gone before this run got to them.
    pub already_gone: usize,
    /// Changed since the plan; kept.
    pub skipped: usize,
    /// The store failed; still there.
    pub failed: usize,
    /// The plan's key (none in a dry run or when nothing expired).
    pub plan_key: Option<BlobKey>,
    /// The result's key.
    pub result_key: Option<BlobKey>,
    /// Runs of earlier, interrupted janitors finished first.
    pub recovered: Vec<String>,
}

/// The janitor of one store.
pub struct Janitor {
    blobs: Arc<dyn BlobStore>,
    audit: Arc<dyn AuditLog>,
    clock: Arc<dyn Clock>,
    key: EvidenceKey,
    retention: Retention,
}

impl std::fmt::Debug for Janitor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Janitor")
            .field("retention", &self.retention)
            .finish_non_exhaustive()
    }
}

/// A run's manifest key. The run id takes the execution's place in the blob layout
/// (`tenants/{tenant}/deletion-manifests/{run_id}/{name}`), so it follows the execution
/// id's rules (1–128 bytes of `A-Z a-z 0-9 - _ .`, starting alphanumeric).
fn manifest_key(tenant: &TenantId, run_id: &str, name: &str) -> Result<BlobKey, LifecycleError> {
    let invalid = |reason: String| LifecycleError::InvalidRunId {
        run_id: run_id.chars().take(64).collect(),
        reason,
    };
    let run = ExecutionId::new(run_id).map_err(|e| invalid(e.to_string()))?;
    BlobKey::for_execution(tenant, MANIFEST_KIND, &run, name).map_err(|e| invalid(e.to_string()))
}

/// Whether `now` (from a listing) is still the object a plan listed. Stores report
/// last-modified times at different precisions on different calls (S3: milliseconds
/// in a LIST, whole seconds in a HEAD's `Last-Modified`), so times are compared to the
/// second, together with the size. A rewrite of an expired object within the second
/// the janitor lists it, to the same size, is not told apart.
fn same_object(now: &BlobMeta, planned: &DeletionEntry) -> bool {
    let secs = |t: OffsetDateTime| t.unix_timestamp();
    now.size == planned.size && secs(now.last_modified) == secs(planned.last_modified)
}

impl Janitor {
    /// A janitor deleting from `blobs`, recording in `audit`, signing with `key`.
    pub fn new(
        blobs: Arc<dyn BlobStore>,
        audit: Arc<dyn AuditLog>,
        clock: Arc<dyn Clock>,
        key: EvidenceKey,
        retention: Retention,
    ) -> Self {
        Janitor {
            blobs,
            audit,
            clock,
            key,
            retention,
        }
    }

    /// The rules it applies.
    pub fn retention(&self) -> &Retention {
        &self.retention
    }

    /// Deletes `tenant`'s objects of `kind` older than the period in force, after
    /// finishing any interrupted run of the tenant.
    ///
    /// # Errors
    /// [`LifecycleError::NoRule`] (the kind is kept indefinitely),
    /// [`LifecycleError::RunExists`], [`LifecycleError::InvalidRunId`], and store
    /// errors. Failures to delete single objects are not errors: they are in the
    /// result manifest and the report.
    pub async fn purge(
        &self,
        tenant: &TenantId,
        kind: &str,
        opts: &PurgeOptions,
    ) -> Result<PurgeReport, LifecycleError> {
        let ttl = self
            .retention
            .effective(tenant, kind)
            .ok_or_else(|| LifecycleError::NoRule {
                kind: kind.to_string(),
            })?;
        let start = self.clock.now();
        let run_id = match &opts.run_id {
            Some(r) => r.clone(),
            None => format!(
                "{kind}-{:04}{:02}{:02}T{:02}{:02}Z",
                start.year(),
                u8::from(start.month()),
                start.day(),
                start.hour(),
                start.minute()
            ),
        };
        let plan_key = manifest_key(tenant, &run_id, "plan.dsse.json")?;
        let _span = tracing::info_span!("lifecycle.purge", %tenant, kind, %run_id).entered();
        let recovered = if opts.dry_run {
            Vec::new()
        } else {
            self.recover(tenant).await?
        };
        let listed = self.blobs.list(&BlobKey::prefix(tenant, kind)).await?;
        let examined = listed.len();
        let entries: Vec<DeletionEntry> = listed
            .into_iter()
            .filter_map(|m: BlobMeta| {
                let expired_at = ttl.expiry(m.last_modified);
                (expired_at <= start).then(|| DeletionEntry {
                    key: m.key.as_str().to_string(),
                    size: m.size,
                    last_modified: m.last_modified,
                    expired_at,
                    outcome: None,
                })
            })
            .collect();
        let mut report = PurgeReport {
            run_id: run_id.clone(),
            ttl,
            examined,
            expired: entries.len(),
            deleted: 0,
            already_gone: 0,
            skipped: 0,
            failed: 0,
            plan_key: None,
            result_key: None,
            recovered,
        };
        if opts.dry_run || entries.is_empty() {
            return Ok(report);
        }
        let plan = DeletionManifest {
            schema: SCHEMA.into(),
            phase: Phase::Plan,
            run_id: run_id.clone(),
            tenant: tenant.clone(),
            kind: kind.to_string(),
            ttl,
            generated_at: start,
            entries,
            plan_sha256: None,
        };
        let plan_bytes = plan.sign(&self.key);
        match self
            .blobs
            .put(&plan_key, plan_bytes.clone().into(), PutMode::Create)
            .await
        {
            Err(BlobError::AlreadyExists { .. }) => {
                return Err(LifecycleError::RunExists { run_id });
            }
            r => r?,
        };
        let (result_key, result) = self.execute(plan, &plan_bytes).await?;
        report.plan_key = Some(plan_key);
        report.result_key = Some(result_key);
        for e in &result.entries {
            match e.outcome {
                Some(Outcome::Deleted) => report.deleted += 1,
                Some(Outcome::AlreadyGone) => report.already_gone += 1,
                Some(Outcome::SkippedModified { .. }) => report.skipped += 1,
                _ => report.failed += 1,
            }
        }
        Ok(report)
    }

    /// Finishes every run of `tenant` that has a plan and no result (a janitor that
    /// stopped halfway). Returns their run ids.
    ///
    /// # Errors
    /// Store errors; [`LifecycleError::Manifest`] when a stored plan does not verify
    /// with this janitor's key (it is not acted on).
    pub async fn recover(&self, tenant: &TenantId) -> Result<Vec<String>, LifecycleError> {
        let listed = self
            .blobs
            .list(&BlobKey::prefix(tenant, MANIFEST_KIND))
            .await?;
        let mut done = Vec::new();
        for m in &listed {
            let Some(dir) = m.key.as_str().strip_suffix("/plan.dsse.json") else {
                continue;
            };
            let result = format!("{dir}/result.dsse.json");
            if listed.iter().any(|x| x.key.as_str() == result) {
                continue;
            }
            let bytes = self.blobs.get(&m.key).await?;
            let plan = verify_deletion_manifest(&bytes, &self.key.verifying_key())?;
            if &plan.tenant != tenant || plan.phase != Phase::Plan {
                return Err(LifecycleError::Manifest {
                    reason: format!("{} is not a plan of tenant {tenant}", m.key),
                });
            }
            tracing::warn!(run_id = %plan.run_id, "finishing an interrupted janitor run");
            let run_id = plan.run_id.clone();
            self.execute(plan, &bytes).await?;
            done.push(run_id);
        }
        Ok(done)
    }

    /// Deletes a plan's objects, writes the signed result and audits the run.
    async fn execute(
        &self,
        mut plan: DeletionManifest,
        plan_bytes: &[u8],
    ) -> Result<(BlobKey, DeletionManifest), LifecycleError> {
        // What is there now, in one listing: an object must still be the one the plan
        // listed (a rewrite since is new data, kept). Then the rest is deleted in
        // batches (S3's DeleteObjects through `delete_many`).
        let now: BTreeMap<String, BlobMeta> = self
            .blobs
            .list(&BlobKey::prefix(&plan.tenant, &plan.kind))
            .await?
            .into_iter()
            .map(|m| (m.key.as_str().to_string(), m))
            .collect();
        let mut doomed: Vec<(usize, BlobKey)> = Vec::new();
        for (i, e) in plan.entries.iter_mut().enumerate() {
            let key = BlobKey::new(e.key.clone()).map_err(|err| LifecycleError::Manifest {
                reason: format!("plan entry {}: {err}", e.key),
            })?;
            match now.get(&e.key) {
                None => e.outcome = Some(Outcome::AlreadyGone),
                Some(m) if !same_object(m, e) => {
                    e.outcome = Some(Outcome::SkippedModified {
                        last_modified: m.last_modified,
                    });
                }
                Some(_) => doomed.push((i, key)),
            }
        }
        for batch in doomed.chunks(DELETE_BATCH) {
            let keys: Vec<BlobKey> = batch.iter().map(|(_, k)| k.clone()).collect();
            let results = self.blobs.delete_many(&keys).await;
            for ((i, _), r) in batch.iter().zip(results) {
                plan.entries[*i].outcome = Some(match r {
                    Ok(()) => Outcome::Deleted,
                    Err(err) => Outcome::Failed {
                        error: err.to_string(),
                    },
                });
            }
        }
        let deleted = plan
            .entries
            .iter()
            .filter(|e| e.outcome == Some(Outcome::Deleted))
            .count();
        metrics::counter!(mc_core::telemetry::LIFECYCLE_DELETED.name, "kind" => plan.kind.clone())
            .increment(deleted as u64);
        plan.phase = Phase::Result;
        plan.generated_at = self.clock.now();
        plan.plan_sha256 = Some(hex::encode(sha2::Sha256::digest(plan_bytes)));
        let result_key = manifest_key(&plan.tenant, &plan.run_id, "result.dsse.json")?;
        let bytes = plan.sign(&self.key);
        let digest = hex::encode(sha2::Sha256::digest(&bytes));
        self.blobs
            .put(&result_key, bytes.into(), PutMode::Create)
            .await?;
        let count = |f: fn(&Outcome) -> bool| {
            plan.entries
                .iter()
                .filter(|e| e.outcome.as_ref().is_some_and(f))
                .count()
        };
        let event = NewAuditEvent {
            id: None,
            kind: PURGE_EVENT.to_string(),
            actor: AuditActor {
                sub: ActorId::new("mc-janitor").expect("a valid actor id"),
                tenant: plan.tenant.clone(),
            },
            subject: AuditSubject {
                execution_id: None,
                resource: Some(result_key.as_str().to_string()),
            },
            data: serde_json::json!({
                "kind": plan.kind,
                "ttl": plan.ttl.to_string(),
                "runId": plan.run_id,
                "deleted": deleted,
                "alreadyGone": count(|o| *o == Outcome::AlreadyGone),
                "skipped": count(|o| matches!(o, Outcome::SkippedModified { .. })),
                "failed": count(|o| matches!(o, Outcome::Failed { .. })),
                "manifestSha256": digest,
            }),
            ts: self.clock.now(),
        };
        self.audit.append(event).await?;
        Ok((result_key, plan))
    }
}
