//! The disclosure note of an execution's egress violations (spec §7: "violations
//! produce disclosure note").
//!
//! The audit chain is the record; the note is the auditor-facing summary, kept
//! beside the execution's other evidence (`tenants/{t}/evidence/{exec}/`
//! [`NOTE_NAME`]) so the evidence manifest lists it with its digest. Each entry
//! carries its audit event's id and hash, so a reader can check every line of the
//! note against the tenant's hash chain.

use std::collections::BTreeMap;

use mc_core::{
    AuditEvent, AuditLog, BlobError, BlobKey, BlobStore, ExecutionId, PutMode, StoreError, TenantId,
};
use serde::Serialize;
use time::OffsetDateTime;

use crate::EGRESS_BLOCKED;

/// The note's blob name within the execution's evidence.
pub const NOTE_NAME: &str = "egress-violations.json";

/// At most this many calls are listed one by one; the counts cover all.
pub const MAX_LISTED: usize = 1000;

/// One blocked call in a note.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NoteEntry {
    /// When.
    #[serde(with = "time::serde::rfc3339")]
    pub ts: OffsetDateTime,
    /// The task.
    pub task: String,
    /// `host:port` (or the raw target when it did not parse).
    pub target: String,
    /// The reason code (`host_not_allowed`, …).
    pub reason: String,
    /// The reason in words.
    pub detail: String,
    /// `enforce` (refused) or `shadow` (let through and recorded).
    pub mode: String,
    /// The audit event's id.
    pub audit_id: String,
    /// The audit event's hash (its link in the tenant's chain).
    pub audit_hash: String,
}

/// The summary of an execution's blocked egress calls.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DisclosureNote {
    /// Always `mc.egress.disclosure-note/v1`.
    pub kind: &'static str,
    /// The tenant.
    pub tenant: TenantId,
    /// The execution.
    pub execution_id: ExecutionId,
    /// When the note was made.
    #[serde(with = "time::serde::rfc3339")]
    pub generated_at: OffsetDateTime,
    /// Calls refused.
    pub refused: u64,
    /// Calls let through in shadow mode that enforcement would have refused.
    pub shadow: u64,
    /// Calls by reason code.
    pub by_reason: BTreeMap<String, u64>,
    /// The calls, oldest first (at most [`MAX_LISTED`]).
    pub calls: Vec<NoteEntry>,
    /// Whether more calls happened than are listed.
    pub truncated: bool,
}

impl DisclosureNote {
    /// The note for `execution` from (any superset of) its tenant's audit events.
    /// Returns `None` when the execution had no blocked call.
    pub fn from_events(
        tenant: &TenantId,
        execution: &ExecutionId,
        events: &[AuditEvent],
        generated_at: OffsetDateTime,
    ) -> Option<Self> {
        let mut note = DisclosureNote {
            kind: "mc.egress.disclosure-note/v1",
            tenant: tenant.clone(),
            execution_id: execution.clone(),
            generated_at,
            refused: 0,
            shadow: 0,
            by_reason: BTreeMap::new(),
            calls: Vec::new(),
            truncated: false,
        };
        for e in events.iter().filter(|e| {
            e.kind == EGRESS_BLOCKED
                && e.tenant() == tenant
                && e.subject.execution_id.as_ref() == Some(execution)
        }) {
            note.add(e);
        }
        (note.refused + note.shadow > 0).then_some(note)
    }

    fn add(&mut self, e: &AuditEvent) {
        let field = |k: &str| {
            e.data
                .get(k)
                .and_then(|v| v.as_str())
                .unwrap_or("")
                .to_string()
        };
        let mode = field("mode");
        if mode == "shadow" {
            self.shadow += 1;
        } else {
            self.refused += 1;
        }
        *self.by_reason.entry(field("reason")).or_default() += 1;
        if self.calls.len() < MAX_LISTED {
            self.calls.push(NoteEntry {
                ts: e.ts,
                task: field("task"),
                target: field("target"),
                reason: field("reason"),
                detail: field("detail"),
                mode,
                audit_id: e.id.clone(),
                audit_hash: e.hash.clone(),
            });
        } else {
            self.truncated = true;
        }
    }

    /// The note as pretty JSON.
    pub fn to_json_pretty(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_default()
    }
}

/// Errors writing a note.
#[derive(Debug, thiserror::Error)]
pub enum NoteError {
    /// Reading the audit chain failed.
    #[error("reading the audit log: {0}")]
    Audit(#[from] StoreError),
    /// Writing the note failed.
    #[error("writing the note: {0}")]
    Blob(#[from] BlobError),
}

/// Reads `tenant`'s audit chain, builds `execution`'s note and writes it to
/// `tenants/{tenant}/evidence/{execution}/egress-violations.json` (replacing an
/// earlier note of the same execution). Returns the key and the note, or `None` when
/// the execution had no blocked call (then nothing is written).
///
/// # Errors
/// [`NoteError`] when the audit log cannot be read or the note cannot be written.
pub async fn write_disclosure_note(
    audit: &dyn AuditLog,
    blobs: &dyn BlobStore,
    tenant: &TenantId,
    execution: &ExecutionId,
    now: OffsetDateTime,
) -> Result<Option<(BlobKey, DisclosureNote)>, NoteError> {
    let mut events = Vec::new();
    let mut after = 0u64;
    loop {
        let batch = audit.read(tenant, after, 1000).await?;
        let Some(last) = batch.last() else { break };
        after = last.seq;
        events.extend(batch.into_iter().filter(|e| e.kind == EGRESS_BLOCKED));
    }
    let Some(note) = DisclosureNote::from_events(tenant, execution, &events, now) else {
        return Ok(None);
    };
    let key = BlobKey::for_execution(tenant, "evidence", execution, NOTE_NAME)?;
    blobs
        .put(
            &key,
            note.to_json_pretty().into_bytes().into(),
            PutMode::Overwrite,
        )
        .await?;
    Ok(Some((key, note)))
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use mc_core::{MemoryBlobStore, MemoryStore, SystemClock};

    use super::*;
    use crate::{Blocked, DenyReason, TaskId, TaskRef, Verdict};

    fn who(exec: &str) -> TaskRef {
        TaskRef {
            tenant: TenantId::new("acme").unwrap(),
            execution: ExecutionId::new(exec).unwrap(),
            task: TaskId::new("fetch").unwrap(),
        }
    }

    #[tokio::test]
    async fn the_note_lists_one_executions_blocks_linked_to_the_chain() {
        let audit = MemoryStore::new();
        let blobs = MemoryBlobStore::new(Arc::new(SystemClock));
        let t0 = OffsetDateTime::UNIX_EPOCH;
        let calls = [
            (
                "exec_1",
                "mx.example.com:25",
                Verdict::Deny(DenyReason::HostNotAllowed),
            ),
            (
                "exec_2",
                "other.example:443",
                Verdict::Deny(DenyReason::HostNotAllowed),
            ),
            (
                "exec_1",
                "api.example.com:80",
                Verdict::WouldDeny(DenyReason::PortNotAllowed { allowed: vec![443] }),
            ),
        ];
        for (exec, target, v) in &calls {
            let b = Blocked::from_verdict(&who(exec), target, v, t0).unwrap();
            audit.append(b.to_audit_event()).await.unwrap();
        }
        let tenant = TenantId::new("acme").unwrap();
        let exec = ExecutionId::new("exec_1").unwrap();
        let (key, note) = write_disclosure_note(&audit, &blobs, &tenant, &exec, t0)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            key.as_str(),
            "tenants/acme/evidence/exec_1/egress-violations.json"
        );
        assert_eq!((note.refused, note.shadow), (1, 1));
        assert_eq!(note.calls.len(), 2);
        assert_eq!(note.calls[0].target, "mx.example.com:25");
        assert_eq!(note.calls[1].mode, "shadow");
        assert_eq!(note.by_reason["port_not_allowed"], 1);
        let chain = audit.read(&tenant, 0, 10).await.unwrap();
        assert_eq!(note.calls[0].audit_hash, chain[0].hash);
        assert_eq!(note.calls[1].audit_hash, chain[2].hash);
        let stored: serde_json::Value =
            serde_json::from_slice(&blobs.get(&key).await.unwrap()).unwrap();
        assert_eq!(stored["executionId"], "exec_1");
        assert_eq!(stored["calls"].as_array().unwrap().len(), 2);
        // No blocked call: no note.
        let clean = ExecutionId::new("exec_3").unwrap();
        assert!(
            write_disclosure_note(&audit, &blobs, &tenant, &clean, t0)
                .await
                .unwrap()
                .is_none()
        );
        assert!(
            blobs
                .get(&BlobKey::for_execution(&tenant, "evidence", &clean, NOTE_NAME).unwrap())
                .await
                .is_err()
        );
    }

    #[test]
    fn long_histories_are_counted_whole_and_listed_in_part() {
        let tenant = TenantId::new("acme").unwrap();
        let exec = ExecutionId::new("exec_1").unwrap();
        let mut events = Vec::new();
        let mut prev = mc_core::audit::GENESIS_HASH.to_string();
        for i in 0..(MAX_LISTED as u64 + 5) {
            let b = Blocked::from_verdict(
                &who("exec_1"),
                "x.example:1",
                &Verdict::Deny(DenyReason::HostNotAllowed),
                OffsetDateTime::UNIX_EPOCH,
            )
            .unwrap();
            let e = b.to_audit_event().seal(i + 1, &prev);
            prev = e.hash.clone();
            events.push(e);
        }
        let note = DisclosureNote::from_events(&tenant, &exec, &events, OffsetDateTime::UNIX_EPOCH)
            .unwrap();
        assert_eq!(note.refused, MAX_LISTED as u64 + 5);
        assert_eq!(note.calls.len(), MAX_LISTED);
        assert!(note.truncated);
    }
}
