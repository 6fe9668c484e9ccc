//! Spec §7 "violations produce disclosure note", end to end: a task's blocked egress
//! call is audited by the proxy's decision, the execution's disclosure note is written
//! beside its evidence, and the signed evidence manifest lists the note with the
//! digest of what was written.

use std::sync::Arc;

use mc_core::*;
use mc_egress::{Blocked, DenyReason, TaskId, TaskRef, Verdict, write_disclosure_note};
use mc_evidence::{EvidenceKey, EvidenceService};
use time::macros::datetime;

#[tokio::test]
async fn a_blocked_call_reaches_the_signed_evidence_manifest() {
    let clock = Arc::new(ManualClock::new(datetime!(2025-12-17 14:00 UTC)));
    let store = MemoryStore::new();
    let flags = MemoryFlagStore::new();
    let blobs = MemoryBlobStore::new(clock.clone());
    let tenant = TenantId::new("acme").unwrap();
    let exec = ExecutionId::new("exec_7").unwrap();
    flags
        .set(&tenant, Flag::EvidenceV2Enabled, true)
        .await
        .unwrap();
    let mut unit = ActionCommit::new(tenant.clone(), clock.now());
    unit.create = Some(Execution::new(
        tenant.clone(),
        exec.clone(),
        Digest::of(b"manifest"),
        Digest::of(b"inputs"),
        clock.now(),
    ));
    store.commit(unit).await.unwrap();

    // The egress exfiltration drill (spec §8): SMTP out of task "fetch", refused.
    let who = TaskRef {
        tenant: tenant.clone(),
        execution: exec.clone(),
        task: TaskId::new("fetch").unwrap(),
    };
    let blocked = Blocked::from_verdict(
        &who,
        "mx.attacker.example:25",
        &Verdict::Deny(DenyReason::HostNotAllowed),
        clock.now(),
    )
    .unwrap();
    let event = store.append(blocked.to_audit_event()).await.unwrap();

    let (key, note) = write_disclosure_note(&store, &blobs, &tenant, &exec, clock.now())
        .await
        .unwrap()
        .expect("a note for the blocked call");
    assert_eq!(note.calls[0].audit_hash, event.hash);

    let signer = EvidenceKey::from_seed([9; 32]);
    let service = EvidenceService::new(
        Arc::new(store.clone()),
        Arc::new(flags.clone()),
        Arc::new(blobs.clone()),
        clock.clone(),
    )
    .with_signing_key(EvidenceKey::from_seed([9; 32]));
    let signed = service.manifest(&tenant, &exec).await.unwrap();
    let entry = signed
        .manifest
        .artifacts
        .iter()
        .find(|a| a.name.ends_with("egress-violations.json"))
        .expect("the note is an artifact of the execution");
    let bytes = blobs.get(&key).await.unwrap();
    assert_eq!(entry.sha256, Digest::of(&bytes));
    assert_eq!(entry.size, bytes.len() as u64);
    // And the statement that covers it verifies with the signer's key.
    let envelope = signed.envelope.expect("signed");
    envelope.verify(&signer.verifying_key()).unwrap();
}
