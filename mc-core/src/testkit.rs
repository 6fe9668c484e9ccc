//! Conformance suites every adapter runs unchanged (DESIGN.md rule 5).
//!
//! Each function panics with a message naming the broken rule. The in-memory adapters
//! run them in this crate's tests; the PostgreSQL and S3 adapters run them against
//! real servers. Each suite uses its own tenants (`conf-…`), so run it on an empty
//! store (a fresh schema or bucket prefix).

use std::collections::BTreeSet;

use bytes::Bytes;
use futures::StreamExt;
use time::macros::datetime;
use time::{Duration, OffsetDateTime};

use crate::action::ActionKind;
use crate::audit::{NewAuditEvent, verify_chain};
use crate::blob::{BlobError, BlobKey, BlobStore, PutMode};
use crate::execution::{Digest, Execution, ExecutionState};
use crate::flag::Flag;
use crate::id::{ActorId, ExecutionId, IdempotencyKey, TenantId};
use crate::store::{
    ActionCommit, AuditLog, CommitResult, ExecutionQuery, ExecutionStore, FlagStore,
    IdempotencyRecord, StoreError, Transition,
};

const T0: OffsetDateTime = datetime!(2025-12-10 18:00 UTC);

fn tenant(s: &str) -> TenantId {
    TenantId::new(s).expect("valid tenant")
}
fn exec_id(s: &str) -> ExecutionId {
    ExecutionId::new(s).expect("valid execution id")
}
fn actor() -> ActorId {
    ActorId::new("alice@company").expect("valid actor")
}

/// A pending execution created at `T0 + minutes`.
fn execution(t: &TenantId, id: &str, minutes: i64) -> Execution {
    Execution::new(
        t.clone(),
        exec_id(id),
        Digest::of(b"manifest"),
        Digest::of(id.as_bytes()),
        T0 + Duration::minutes(minutes),
    )
}

async fn create<S: ExecutionStore + ?Sized>(store: &S, e: Execution) {
    let mut c = ActionCommit::new(e.tenant.clone(), e.created_at);
    c.create = Some(e);
    store.commit(c).await.expect("create execution");
}

fn action_commit(
    t: &TenantId,
    id: &ExecutionId,
    version: u64,
    to: ExecutionState,
    key: Option<&str>,
    reason: &str,
) -> ActionCommit {
    let mut c = ActionCommit::new(t.clone(), T0 + Duration::hours(1));
    c.transition = Some(Transition {
        execution_id: id.clone(),
        expected_version: version,
        to,
        next_attempt: false,
    });
    c.audit.push(NewAuditEvent::exec_action(
        t,
        &actor(),
        id,
        ActionKind::Cancel,
        reason,
        c.at,
    ));
    c.idempotency = key.map(|k| IdempotencyRecord {
        key: IdempotencyKey::new(k).expect("valid key"),
        fingerprint: Digest::of(format!("{id}|{reason}").as_bytes()),
        outcome: serde_json::json!({ "execution": id.as_str(), "reason": reason }),
        created_at: T0,
    });
    c
}

async fn audit_len<S: AuditLog + ?Sized>(store: &S, t: &TenantId) -> usize {
    store.read(t, 0, 10_000).await.expect("read audit").len()
}

/// Execution store rules: create/get, transitions, optimistic concurrency,
/// idempotency, atomicity, tenant isolation and search.
pub async fn execution_store_conformance<S: ExecutionStore + AuditLog + ?Sized>(store: &S) {
    let a = tenant("conf-exec-a");
    let b = tenant("conf-exec-b");

    // Create and read back.
    let e1 = execution(&a, "exec_1", 0);
    create(store, e1.clone()).await;
    assert_eq!(
        store.get(&a, &e1.id).await.expect("get"),
        e1,
        "get returns what was created"
    );
    let mut dup = ActionCommit::new(a.clone(), T0);
    dup.create = Some(e1.clone());
    assert!(
        matches!(
            store.commit(dup).await,
            Err(StoreError::AlreadyExists { .. })
        ),
        "creating an existing id must fail with AlreadyExists"
    );

    // Tenant isolation: a foreign tenant's id is NotFound, for reads and writes.
    assert!(
        matches!(
            store.get(&b, &e1.id).await,
            Err(StoreError::NotFound { .. })
        ),
        "another tenant's execution must be NotFound"
    );
    let foreign = action_commit(&b, &e1.id, 1, ExecutionState::Cancelled, None, "x");
    assert!(
        matches!(
            store.commit(foreign).await,
            Err(StoreError::NotFound { .. })
        ),
        "a transition on another tenant's execution must be NotFound"
    );
    assert_eq!(
        audit_len(store, &b).await,
        0,
        "a failed commit writes no audit event"
    );

    // A legal transition bumps the version and writes the audit event.
    let r = store
        .commit(action_commit(
            &a,
            &e1.id,
            1,
            ExecutionState::Running,
            None,
            "start",
        ))
        .await
        .expect("pending -> running");
    let CommitResult::Committed { updated, audit, .. } = r else {
        panic!("a commit without idempotency key must be Committed");
    };
    let updated = updated.expect("updated execution returned");
    assert_eq!(updated.state, ExecutionState::Running);
    assert_eq!(updated.version, 2, "version increments on commit");
    assert_eq!(audit.len(), 1);
    assert_eq!(audit[0].seq, 1);

    // Illegal transition.
    let illegal = action_commit(&a, &e1.id, 2, ExecutionState::Pending, None, "x");
    assert!(
        matches!(
            store.commit(illegal).await,
            Err(StoreError::IllegalTransition {
                from: ExecutionState::Running,
                to: ExecutionState::Pending,
                ..
            })
        ),
        "running -> pending is not in TRANSITIONS"
    );

    // Optimistic concurrency: two writers with the same version, exactly one wins.
    let w1 = action_commit(&a, &e1.id, 2, ExecutionState::Cancelled, None, "w1");
    let w2 = action_commit(&a, &e1.id, 2, ExecutionState::Failed, None, "w2");
    let (r1, r2) = tokio::join!(store.commit(w1), store.commit(w2));
    let wins = [&r1, &r2].iter().filter(|r| r.is_ok()).count();
    assert_eq!(
        wins, 1,
        "exactly one of two concurrent writers wins: {r1:?} / {r2:?}"
    );
    let loser = if r1.is_ok() { r2 } else { r1 };
    assert!(
        matches!(
            loser,
            Err(StoreError::VersionConflict {
                expected: 2,
                actual: 3,
                ..
            })
        ),
        "the loser gets VersionConflict: {loser:?}"
    );
    assert_eq!(
        audit_len(store, &a).await,
        2,
        "the losing writer wrote no audit event"
    );

    // Idempotency: same key + same request -> first outcome, no second effect.
    let e2 = execution(&a, "exec_2", 1);
    create(store, e2.clone()).await;
    let first = store
        .commit(action_commit(
            &a,
            &e2.id,
            1,
            ExecutionState::Cancelled,
            Some("key-1"),
            "stop",
        ))
        .await
        .expect("first keyed commit");
    assert!(matches!(first, CommitResult::Committed { .. }));
    let before = audit_len(store, &a).await;
    // The repeat carries a stale version: it must still be answered from the record.
    let again = store
        .commit(action_commit(
            &a,
            &e2.id,
            1,
            ExecutionState::Cancelled,
            Some("key-1"),
            "stop",
        ))
        .await
        .expect("repeat of the same request");
    assert_eq!(
        again,
        CommitResult::Replayed {
            outcome: serde_json::json!({ "execution": "exec_2", "reason": "stop" })
        },
        "a repeat returns the first outcome"
    );
    assert_eq!(
        audit_len(store, &a).await,
        before,
        "a repeat writes no audit event"
    );
    let other = store
        .commit(action_commit(
            &a,
            &e2.id,
            2,
            ExecutionState::Cancelled,
            Some("key-1"),
            "other reason",
        ))
        .await;
    assert!(
        matches!(other, Err(StoreError::IdempotencyConflict { .. })),
        "same key, different request is a conflict: {other:?}"
    );
    let rec = store
        .idempotency(&a, &IdempotencyKey::new("key-1").expect("key"))
        .await
        .expect("read idempotency")
        .expect("record exists");
    assert_eq!(rec.outcome["reason"], "stop");
    assert!(
        store
            .idempotency(&b, &IdempotencyKey::new("key-1").expect("key"))
            .await
            .expect("read")
            .is_none(),
        "idempotency keys are per tenant"
    );

    // Concurrent repeats of one key: exactly one effect.
    let e3 = execution(&a, "exec_3", 2);
    create(store, e3.clone()).await;
    let before = audit_len(store, &a).await;
    let futs = (0..8).map(|_| {
        store.commit(action_commit(
            &a,
            &e3.id,
            1,
            ExecutionState::Cancelled,
            Some("key-race"),
            "race",
        ))
    });
    let results = futures::future::join_all(futs).await;
    let committed = results
        .iter()
        .filter(|r| matches!(r, Ok(CommitResult::Committed { .. })))
        .count();
    assert_eq!(
        committed, 1,
        "one effect for 8 concurrent repeats: {results:?}"
    );
    assert!(
        results.iter().all(|r| matches!(
            r,
            Ok(CommitResult::Committed { .. }) | Ok(CommitResult::Replayed { .. })
        )),
        "every other repeat is answered from the record: {results:?}"
    );
    assert_eq!(audit_len(store, &a).await, before + 1);

    // Atomicity: a failing transition writes neither audit nor idempotency record.
    let stale = action_commit(
        &a,
        &e3.id,
        1,
        ExecutionState::Cancelled,
        Some("key-stale"),
        "stale",
    );
    assert!(store.commit(stale).await.is_err());
    assert!(
        store
            .idempotency(&a, &IdempotencyKey::new("key-stale").expect("key"))
            .await
            .expect("read")
            .is_none(),
        "a failed commit leaves no idempotency record"
    );
    assert_eq!(audit_len(store, &a).await, before + 1);

    // A replay-style commit: transition-less, creates a child with lineage.
    let mut child = execution(&a, "exec_3_r1", 3);
    child.parent = Some(e3.id.clone());
    child.root = e3.root.clone();
    let mut c = ActionCommit::new(a.clone(), child.created_at);
    c.create = Some(child.clone());
    store.commit(c).await.expect("create child");
    let got = store.get(&a, &child.id).await.expect("get child");
    assert_eq!(got.parent.as_ref(), Some(&e3.id));
    assert_eq!(got.root, e3.id);

    search_conformance(store).await;
}

async fn search_conformance<S: ExecutionStore + ?Sized>(store: &S) {
    let t = tenant("conf-search");
    let other = tenant("conf-search-other");
    let mut all = Vec::new();
    for i in 0..25i64 {
        let mut e = execution(&t, &format!("s_{i:02}"), i);
        if i % 3 == 0 {
            e = e.with_label("team", "payments");
        }
        create(store, e.clone()).await;
        if i % 2 == 0 {
            // Half of them fail.
            let mut c = ActionCommit::new(t.clone(), e.created_at);
            c.transition = Some(Transition {
                execution_id: e.id.clone(),
                expected_version: 1,
                to: ExecutionState::Failed,
                next_attempt: false,
            });
            store.commit(c).await.expect("fail it");
            e.state = ExecutionState::Failed;
        }
        all.push(e);
    }
    // Same timestamp as s_24, different id: order ties by id descending.
    let tie = execution(&t, "s_24b", 24);
    create(store, tie.clone()).await;
    all.push(tie);
    create(store, execution(&other, "s_99", 100)).await;

    let mut expected: Vec<_> = all.iter().map(|e| (e.created_at, e.id.clone())).collect();
    expected.sort();
    expected.reverse();

    // Walk every page.
    let mut seen = Vec::new();
    let mut q = ExecutionQuery {
        limit: 7,
        ..Default::default()
    };
    let mut pages = 0;
    loop {
        let page = store.search(&t, &q).await.expect("search");
        assert!(page.items.len() <= 7);
        seen.extend(page.items.iter().map(|e| (e.created_at, e.id.clone())));
        pages += 1;
        match page.next_cursor {
            Some(c) => q.cursor = Some(c),
            None => break,
        }
        assert!(pages < 10, "pagination must terminate");
    }
    assert_eq!(
        seen, expected,
        "pages concatenate to all executions, newest first, no foreign tenant"
    );

    // Filters.
    let failed = store
        .search(
            &t,
            &ExecutionQuery {
                states: vec![ExecutionState::Failed],
                limit: 100,
                ..Default::default()
            },
        )
        .await
        .expect("search failed");
    assert_eq!(failed.items.len(), 13);
    assert!(
        failed
            .items
            .iter()
            .all(|e| e.state == ExecutionState::Failed)
    );
    assert!(failed.next_cursor.is_none());

    let window = store
        .search(
            &t,
            &ExecutionQuery {
                created_from: Some(T0 + Duration::minutes(5)),
                created_before: Some(T0 + Duration::minutes(10)),
                limit: 100,
                ..Default::default()
            },
        )
        .await
        .expect("search window");
    let ids: Vec<_> = window.items.iter().map(|e| e.id.to_string()).collect();
    assert_eq!(ids, ["s_09", "s_08", "s_07", "s_06", "s_05"]);

    let labelled = store
        .search(
            &t,
            &ExecutionQuery {
                label: Some(("team".into(), "payments".into())),
                states: vec![ExecutionState::Failed],
                limit: 2,
                ..Default::default()
            },
        )
        .await
        .expect("search label");
    let ids: Vec<_> = labelled.items.iter().map(|e| e.id.to_string()).collect();
    assert_eq!(
        ids,
        ["s_24", "s_18"],
        "label AND state filter, newest first"
    );
    assert!(labelled.next_cursor.is_some());

    let bad = store
        .search(
            &t,
            &ExecutionQuery {
                cursor: Some(crate::store::Cursor::from_string("zz-not-a-cursor")),
                ..Default::default()
            },
        )
        .await;
    assert!(
        matches!(
            bad,
            Err(StoreError::InvalidInput {
                field: "cursor",
                ..
            })
        ),
        "a forged cursor is InvalidInput: {bad:?}"
    );
    let too_big = store
        .search(
            &t,
            &ExecutionQuery {
                limit: 10_000,
                ..Default::default()
            },
        )
        .await;
    assert!(matches!(
        too_big,
        Err(StoreError::InvalidInput { field: "limit", .. })
    ));
}

/// Audit log rules: per-tenant chains from seq 1, contiguous under concurrency,
/// verifiable, isolated between tenants.
pub async fn audit_log_conformance<S: AuditLog + ?Sized>(log: &S) {
    let a = tenant("conf-audit-a");
    let b = tenant("conf-audit-b");
    assert!(
        log.head(&a).await.expect("head").is_none(),
        "a new tenant has no head"
    );
    assert_eq!(log.verify(&a).await.expect("verify empty"), 0);

    for i in 0..10 {
        let t = if i % 2 == 0 { &a } else { &b };
        let ev = NewAuditEvent::exec_action(
            t,
            &actor(),
            &exec_id(&format!("exec_{i}")),
            ActionKind::Retry,
            "transient_error",
            T0 + Duration::seconds(i),
        );
        let sealed = log.append(ev).await.expect("append");
        assert_eq!(
            sealed.seq,
            (i / 2 + 1) as u64,
            "seq is per tenant and starts at 1"
        );
    }

    // 16 concurrent appends to one tenant: contiguous seq, one chain, no fork.
    let futs = (0..16).map(|i| {
        log.append(NewAuditEvent::exec_action(
            &a,
            &actor(),
            &exec_id(&format!("conc_{i}")),
            ActionKind::Cancel,
            "load",
            T0,
        ))
    });
    for r in futures::future::join_all(futs).await {
        r.expect("concurrent append");
    }

    let events_a = log.read(&a, 0, 1000).await.expect("read a");
    assert_eq!(events_a.len(), 21);
    let seqs: BTreeSet<u64> = events_a.iter().map(|e| e.seq).collect();
    assert_eq!(seqs, (1..=21).collect(), "seq contiguous, no duplicates");
    verify_chain(&events_a).expect("chain of a verifies");
    assert!(
        events_a.iter().all(|e| e.tenant() == &a),
        "no foreign events in a's chain"
    );
    assert_eq!(log.verify(&a).await.expect("verify a"), 21);
    assert_eq!(log.verify(&b).await.expect("verify b"), 5);

    // Paging and head.
    let page = log.read(&a, 5, 3).await.expect("read page");
    assert_eq!(page.iter().map(|e| e.seq).collect::<Vec<_>>(), [6, 7, 8]);
    let head = log.head(&a).await.expect("head").expect("some head");
    assert_eq!(head.seq, 21);
    assert_eq!(head.hash, events_a[20].hash);

    // Round-trip: what is stored is exactly what was sealed (hash recomputes).
    for e in &events_a {
        assert_eq!(e.compute_hash(), e.hash, "stored event {} re-hashes", e.seq);
    }
}

/// Flag rules: off by default, per tenant, settable both ways.
pub async fn flag_store_conformance<F: FlagStore + ?Sized>(flags: &F) {
    let a = tenant("conf-flags-a");
    let b = tenant("conf-flags-b");
    for f in Flag::ALL {
        assert!(
            !flags.is_enabled(&a, f).await.expect("read"),
            "{f} is off by default"
        );
    }
    flags
        .set(&a, Flag::ConsoleActionsEnabled, true)
        .await
        .expect("set");
    assert!(
        flags
            .is_enabled(&a, Flag::ConsoleActionsEnabled)
            .await
            .expect("read")
    );
    assert!(
        !flags
            .is_enabled(&b, Flag::ConsoleActionsEnabled)
            .await
            .expect("read"),
        "flags are per tenant"
    );
    assert!(
        !flags
            .is_enabled(&a, Flag::EvidenceV2Enabled)
            .await
            .expect("read")
    );
    let all = flags.all(&a).await.expect("all");
    assert_eq!(all.len(), 4);
    assert!(all[&Flag::ConsoleActionsEnabled]);
    flags
        .set(&a, Flag::ConsoleActionsEnabled, false)
        .await
        .expect("unset");
    assert!(
        !flags
            .is_enabled(&a, Flag::ConsoleActionsEnabled)
            .await
            .expect("read"),
        "turning a flag off is the rollback"
    );
}

/// Change proposer rules (the drift PR bot's store): a fingerprint has no proposal
/// until one is opened, then exactly one — opening it again returns the open one —
/// and different fingerprints get different proposals.
pub async fn change_proposer_conformance<P: crate::drift::ChangeProposer + ?Sized>(p: &P) {
    let proposal = |fp: &str| crate::drift::ChangeProposal {
        fingerprint: fp.to_string(),
        branch: format!("drift/{fp}"),
        title: format!("drift(conformance): {fp}"),
        body: "evidence".into(),
        labels: vec!["drift:auto".into()],
        files: vec![("deploy/conformance.yaml".into(), "replicas: 5\n".into())],
    };
    let (a, b) = ("c0f0a1b2c3d4e5f6", "c0f0b1b2c3d4e5f6");
    assert_eq!(
        p.find_open(a).await.expect("find_open"),
        None,
        "nothing open yet"
    );
    let first = p.propose(&proposal(a)).await.expect("propose");
    assert_eq!(
        p.find_open(a).await.expect("find_open"),
        Some(first.clone()),
        "the opened proposal is found by its fingerprint"
    );
    let again = p.propose(&proposal(a)).await.expect("propose again");
    assert_eq!(again, first, "one proposal per fingerprint");
    let other = p.propose(&proposal(b)).await.expect("propose another");
    assert_ne!(
        other.number, first.number,
        "another fingerprint, another proposal"
    );
    assert_eq!(p.find_open(b).await.expect("find_open"), Some(other));
    assert_eq!(p.find_open(a).await.expect("find_open"), Some(first));
}

/// Blob store rules: put/get/head/list/delete, write-once create, streaming, signed
/// URL expiry cap.
pub async fn blob_store_conformance<B: BlobStore + ?Sized>(store: &B) {
    let key = |s: &str| BlobKey::new(format!("tenants/conf-blob/logs/exec_1/{s}")).expect("key");
    let k1 = key("a.log");
    let meta = store
        .put(&k1, Bytes::from_static(b"hello"), PutMode::Overwrite)
        .await
        .expect("put");
    assert_eq!(meta.size, 5);
    assert_eq!(
        store.get(&k1).await.expect("get"),
        Bytes::from_static(b"hello")
    );
    assert_eq!(store.head(&k1).await.expect("head").size, 5);

    // Write-once create.
    let created = store
        .put(&k1, Bytes::from_static(b"again"), PutMode::Create)
        .await;
    assert!(
        matches!(created, Err(BlobError::AlreadyExists { .. })),
        "create over an existing object must fail: {created:?}"
    );
    assert_eq!(
        store.get(&k1).await.expect("get"),
        Bytes::from_static(b"hello"),
        "create did not overwrite"
    );

    // Streaming round trip of a multi-chunk object.
    let big: Vec<u8> = (0..(3 * 1024 * 1024 + 17))
        .map(|i| (i % 251) as u8)
        .collect();
    let chunks: Vec<Result<Bytes, BlobError>> = big
        .chunks(1024 * 1024)
        .map(|c| Ok(Bytes::copy_from_slice(c)))
        .collect();
    let k2 = key("big.bin");
    store
        .put_stream(
            &k2,
            Box::pin(futures::stream::iter(chunks)),
            PutMode::Create,
        )
        .await
        .expect("put_stream");
    let mut got = Vec::new();
    let mut s = store.get_stream(&k2).await.expect("get_stream");
    while let Some(c) = s.next().await {
        got.extend_from_slice(&c.expect("chunk"));
    }
    assert_eq!(got.len(), big.len());
    assert!(got == big, "streamed bytes round-trip");

    // A failing stream leaves nothing behind.
    let k3 = key("broken.bin");
    let broken: Vec<Result<Bytes, BlobError>> = vec![
        Ok(Bytes::from_static(b"partial")),
        Err(BlobError::Backend("source failed".into())),
    ];
    assert!(
        store
            .put_stream(
                &k3,
                Box::pin(futures::stream::iter(broken)),
                PutMode::Create
            )
            .await
            .is_err()
    );
    assert!(
        matches!(store.head(&k3).await, Err(BlobError::NotFound { .. })),
        "a failed streaming put leaves no object"
    );

    // List by prefix, sorted, with sizes.
    store
        .put(
            &BlobKey::new("tenants/conf-blob-other/logs/exec_1/x.log").expect("key"),
            Bytes::from_static(b"x"),
            PutMode::Overwrite,
        )
        .await
        .expect("put other");
    let listed = store.list("tenants/conf-blob/").await.expect("list");
    let names: Vec<_> = listed.iter().map(|m| m.key.name().to_string()).collect();
    assert_eq!(
        names,
        ["a.log", "big.bin"],
        "list is prefix-scoped and sorted"
    );
    assert_eq!(listed[1].size, big.len() as u64);

    // Missing objects.
    assert!(matches!(
        store.get(&key("missing")).await,
        Err(BlobError::NotFound { .. })
    ));
    assert!(matches!(
        store.head(&key("missing")).await,
        Err(BlobError::NotFound { .. })
    ));

    // Signed URLs: at most 10 minutes.
    let now = OffsetDateTime::now_utc();
    let url = store
        .signed_get_url(&k1, std::time::Duration::from_secs(600), now)
        .await
        .expect("10 minutes is allowed");
    assert!(url.expires_at > now);
    assert!(matches!(
        store
            .signed_get_url(&k1, std::time::Duration::from_secs(601), now)
            .await,
        Err(BlobError::TtlTooLong { .. })
    ));

    // Delete (idempotent) and batch delete.
    store.delete(&k1).await.expect("delete");
    store.delete(&k1).await.expect("delete again is fine");
    assert!(matches!(
        store.get(&k1).await,
        Err(BlobError::NotFound { .. })
    ));
    let results = store.delete_many(&[k2.clone(), key("missing")]).await;
    assert!(results.iter().all(Result::is_ok));
    assert!(
        store
            .list("tenants/conf-blob/")
            .await
            .expect("list")
            .is_empty()
    );
}

fn override_commit(
    t: &TenantId,
    kind: &str,
    expected: Option<&str>,
    ttl: Option<&str>,
) -> crate::retention::RetentionCommit {
    crate::retention::RetentionCommit {
        tenant: t.clone(),
        kind: kind.to_string(),
        expected: expected.map(str::to_string),
        ttl: ttl.map(str::to_string),
        event: NewAuditEvent {
            id: None,
            kind: "mc.lifecycle.override".to_string(),
            actor: crate::audit::AuditActor {
                sub: actor(),
                tenant: t.clone(),
            },
            subject: crate::audit::AuditSubject {
                execution_id: None,
                resource: Some(format!("retention/{kind}")),
            },
            data: serde_json::json!({ "kind": kind, "ttl": ttl, "previous": expected }),
            ts: T0,
        },
    }
}

/// Retention override rules: none at first; set, replace and clear, each with its
/// audit event in the tenant's chain (both or neither); compare-and-set against the
/// value the writer read; per tenant; of concurrent writers that read the same value
/// exactly one wins; invalid input writes nothing.
pub async fn retention_store_conformance<S>(store: &S)
where
    S: crate::retention::RetentionStore + AuditLog + ?Sized,
{
    let a = tenant("conf-retention-a");
    let b = tenant("conf-retention-b");
    assert!(store.overrides(&a).await.expect("read").is_empty());

    let ev = store
        .commit_override(override_commit(&a, "logs", None, Some("30d")))
        .await
        .expect("set");
    assert_eq!(ev.kind, "mc.lifecycle.override");
    assert_eq!(ev.seq, 1, "the change's event starts the tenant's chain");
    let read = store.overrides(&a).await.expect("read");
    assert_eq!(read.get("logs").map(String::as_str), Some("30d"));
    assert!(
        store.overrides(&b).await.expect("read b").is_empty(),
        "overrides are per tenant"
    );

    // Compare-and-set: a writer that read "none" cannot replace "30d".
    let stale = store
        .commit_override(override_commit(&a, "logs", None, Some("7d")))
        .await;
    assert!(
        matches!(&stale, Err(StoreError::Conflict { expected, actual, .. })
            if expected == "none" && actual == "30d"),
        "stale writer refused: {stale:?}"
    );
    assert_eq!(
        audit_len(store, &a).await,
        1,
        "a refused change has no event"
    );

    store
        .commit_override(override_commit(&a, "logs", Some("30d"), Some("14d")))
        .await
        .expect("replace");
    store
        .commit_override(override_commit(&a, "receipts", None, Some("10y")))
        .await
        .expect("another kind");
    let read = store.overrides(&a).await.expect("read");
    assert_eq!(read.len(), 2);
    assert_eq!(read["logs"], "14d");
    assert_eq!(read["receipts"], "10y");

    // Invalid input: nothing written.
    let foreign = crate::retention::RetentionCommit {
        tenant: a.clone(),
        ..override_commit(&b, "logs", None, Some("1d"))
    };
    assert!(matches!(
        store.commit_override(foreign).await,
        Err(StoreError::InvalidInput { field: "event", .. })
    ));
    for bad_kind in ["", "Logs", "../x", &"k".repeat(65)] {
        assert!(
            matches!(
                store
                    .commit_override(override_commit(&a, bad_kind, None, Some("1d")))
                    .await,
                Err(StoreError::InvalidInput { field: "kind", .. })
            ),
            "kind {bad_kind:?} refused"
        );
    }
    for bad_ttl in ["", "1 d", &"9".repeat(33)] {
        assert!(matches!(
            store
                .commit_override(override_commit(&a, "audit", None, Some(bad_ttl)))
                .await,
            Err(StoreError::InvalidInput { field: "ttl", .. })
        ));
    }
    assert!(store.overrides(&b).await.expect("read b").is_empty());
    assert_eq!(audit_len(store, &a).await, 3);

    // Clearing: the default applies again; clearing what is not there conflicts.
    store
        .commit_override(override_commit(&a, "logs", Some("14d"), None))
        .await
        .expect("clear");
    let read = store.overrides(&a).await.expect("read");
    assert_eq!(read.len(), 1);
    assert!(!read.contains_key("logs"));
    assert!(matches!(
        store
            .commit_override(override_commit(&a, "logs", Some("14d"), None))
            .await,
        Err(StoreError::Conflict { .. })
    ));

    // Eight writers that all read "none" for b's logs: exactly one wins.
    let ttls: Vec<String> = (1..=8).map(|d| format!("{d}d")).collect();
    let futs = ttls
        .iter()
        .map(|ttl| store.commit_override(override_commit(&b, "logs", None, Some(ttl))));
    let results = futures::future::join_all(futs).await;
    let won: Vec<usize> = results
        .iter()
        .enumerate()
        .filter(|(_, r)| r.is_ok())
        .map(|(i, _)| i)
        .collect();
    assert_eq!(won.len(), 1, "exactly one writer wins: {results:?}");
    for r in &results {
        if let Err(e) = r {
            assert!(matches!(e, StoreError::Conflict { .. }), "{e}");
        }
    }
    let read = store.overrides(&b).await.expect("read b");
    assert_eq!(read["logs"], ttls[won[0]], "the winner's value is stored");
    assert_eq!(
        audit_len(store, &b).await,
        1,
        "only the winner has an event"
    );
    assert_eq!(store.verify(&a).await.expect("verify a"), 4);
    assert_eq!(store.verify(&b).await.expect("verify b"), 1);
}
