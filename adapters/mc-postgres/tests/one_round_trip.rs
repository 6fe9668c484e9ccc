//! The one-round-trip unit of work (`mc_commit`, ADR 0304) and the one-statement
//! `action_context` read: stale chain-head hints are corrected, typed errors and
//! replays are the multi-statement path's, and nothing is half-written.

mod common;

use common::{Ctx, T0, create, exec, tenant, with_store};
use mc_core::{
    ActionCommit, ActionKind, ActorId, AuditLog, CommitResult, Execution, ExecutionId,
    ExecutionState, ExecutionStore, IdempotencyKey, NewAuditEvent, StoreError, TenantId,
};

fn cancel(e: &Execution, key: &str, reason: &str) -> ActionCommit {
    common::cancel_unit(e, e.version, key, reason)
}

fn committed_seqs(r: &CommitResult) -> Vec<u64> {
    match r {
        CommitResult::Committed { audit, .. } => audit.iter().map(|e| e.seq).collect(),
        other => panic!("expected Committed, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_with_stale_chain_heads_reseal_and_keep_one_chain() {
    with_store(2, |ctx: Ctx| async move {
        let a = ctx.store.clone();
        let b = ctx.replica(2).await;
        for i in 0..6 {
            create(&a, &exec(&format!("exec_{i}"), ExecutionState::Running)).await;
        }
        // Alternate replicas: each one's hint is stale every time after the first.
        for i in 0..6 {
            let store = if i % 2 == 0 { &a } else { &b };
            let e = exec(&format!("exec_{i}"), ExecutionState::Running);
            let r = store.commit(cancel(&e, &format!("k{i}"), "stuck")).await;
            assert_eq!(committed_seqs(&r.unwrap()), [i + 1]);
        }
        // A plain append moves the head behind the hints' back too.
        let appended = a
            .append(NewAuditEvent::exec_action(
                &tenant(),
                &ActorId::new("bob@company").unwrap(),
                &ExecutionId::new("exec_0").unwrap(),
                ActionKind::Retry,
                "manual",
                T0,
            ))
            .await
            .unwrap();
        assert_eq!(appended.seq, 7);
        create(&b, &exec("exec_late", ExecutionState::Running)).await;
        let r = b
            .commit(cancel(
                &exec("exec_late", ExecutionState::Running),
                "late",
                "stuck",
            ))
            .await
            .unwrap();
        assert_eq!(committed_seqs(&r), [8]);
        assert_eq!(a.verify(&tenant()).await.unwrap(), 8);
        let events = a.read(&tenant(), 0, 100).await.unwrap();
        assert_eq!(
            events.iter().map(|e| e.seq).collect::<Vec<_>>(),
            (1..=8).collect::<Vec<_>>()
        );
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn typed_errors_roll_back_the_claimed_key() {
    with_store(2, |ctx: Ctx| async move {
        let store = ctx.store.clone();
        let e = exec("exec_1", ExecutionState::Running);
        create(&store, &e).await;

        // Version conflict: nothing written, the key stays free.
        let mut stale = e.clone();
        stale.version = 7;
        let r = store.commit(cancel(&stale, "k-stale", "stuck")).await;
        assert!(
            matches!(
                r,
                Err(StoreError::VersionConflict {
                    expected: 7,
                    actual: 1,
                    ..
                })
            ),
            "{r:?}"
        );
        // Not found.
        let r = store
            .commit(cancel(
                &exec("exec_nope", ExecutionState::Running),
                "k-nf",
                "x",
            ))
            .await;
        assert!(
            matches!(r, Err(StoreError::NotFound { ref id }) if id == "exec_nope"),
            "{r:?}"
        );
        // Illegal transition.
        let done = exec("exec_done", ExecutionState::Succeeded);
        create(&store, &done).await;
        let r = store.commit(cancel(&done, "k-ill", "x")).await;
        assert!(
            matches!(
                r,
                Err(StoreError::IllegalTransition {
                    from: ExecutionState::Succeeded,
                    to: ExecutionState::Cancelled,
                    ..
                })
            ),
            "{r:?}"
        );
        // Already exists, after a successful transition in the same unit: rolled back.
        let mut c = cancel(&e, "k-dup", "x");
        c.create = Some(done.clone());
        let r = store.commit(c).await;
        assert!(
            matches!(r, Err(StoreError::AlreadyExists { ref id }) if id == "exec_done"),
            "{r:?}"
        );
        assert_eq!(store.get(&tenant(), &e.id).await.unwrap(), e);
        for k in ["k-stale", "k-nf", "k-ill", "k-dup"] {
            let key = IdempotencyKey::new(k).unwrap();
            assert!(
                store.idempotency(&tenant(), &key).await.unwrap().is_none(),
                "{k}"
            );
        }
        assert!(store.head(&tenant()).await.unwrap().is_none());

        // Then: commit, replay, conflict.
        let ok = store.commit(cancel(&e, "k1", "stuck")).await.unwrap();
        let CommitResult::Committed { updated, .. } = &ok else {
            panic!("{ok:?}")
        };
        let updated = updated.clone().expect("the transition's row");
        assert_eq!(
            (updated.state, updated.version),
            (ExecutionState::Cancelled, 2)
        );
        assert_eq!(store.get(&tenant(), &e.id).await.unwrap(), updated);
        let again = store.commit(cancel(&e, "k1", "stuck")).await.unwrap();
        assert_eq!(
            again,
            CommitResult::Replayed {
                outcome: serde_json::json!({ "execution": "exec_1", "reason": "stuck" })
            }
        );
        let other = store.commit(cancel(&e, "k1", "another reason")).await;
        assert!(
            matches!(other, Err(StoreError::IdempotencyConflict { ref key }) if key == "k1"),
            "{other:?}"
        );
        assert_eq!(store.verify(&tenant()).await.unwrap(), 1);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn action_context_reads_record_and_execution_together() {
    with_store(2, |ctx: Ctx| async move {
        let store = ctx.store.clone();
        let e = exec("exec_1", ExecutionState::Running);
        create(&store, &e).await;
        let key = IdempotencyKey::new("k1").unwrap();
        let missing = ExecutionId::new("exec_missing").unwrap();

        let (rec, got) = store.action_context(&tenant(), &key, &e.id).await.unwrap();
        assert!(rec.is_none());
        assert_eq!(got.unwrap(), e);
        let (rec, got) = store
            .action_context(&tenant(), &key, &missing)
            .await
            .unwrap();
        assert!(rec.is_none());
        assert!(matches!(got, Err(StoreError::NotFound { ref id }) if id == "exec_missing"));

        let c = cancel(&e, "k1", "stuck");
        let recorded = c.idempotency.clone().unwrap();
        store.commit(c).await.unwrap();
        let (rec, got) = store.action_context(&tenant(), &key, &e.id).await.unwrap();
        assert_eq!(rec.unwrap(), recorded);
        assert_eq!(got.unwrap(), store.get(&tenant(), &e.id).await.unwrap());
        let (rec, got) = store
            .action_context(&tenant(), &key, &missing)
            .await
            .unwrap();
        assert_eq!(rec.unwrap(), recorded);
        assert!(got.is_err());
        // Another tenant sees neither.
        let other = TenantId::new("globex").unwrap();
        let (rec, got) = store.action_context(&other, &key, &e.id).await.unwrap();
        assert!(rec.is_none());
        assert!(matches!(got, Err(StoreError::NotFound { .. })));
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn commits_racing_appends_from_another_replica_keep_one_chain() {
    with_store(4, |ctx: Ctx| async move {
        let a = ctx.store.clone();
        let b = ctx.replica(4).await;
        for i in 0..20 {
            create(&a, &exec(&format!("exec_{i}"), ExecutionState::Running)).await;
        }
        // Replica A keeps moving the chain while B commits: B's hint is stale again
        // and again (re-seal, or the multi-statement fallback after 3 in a row).
        let appender = {
            let a = a.clone();
            tokio::spawn(async move {
                for _ in 0..60 {
                    a.append(NewAuditEvent::exec_action(
                        &tenant(),
                        &ActorId::new("bob@company").unwrap(),
                        &ExecutionId::new("exec_0").unwrap(),
                        ActionKind::Retry,
                        "noise",
                        T0,
                    ))
                    .await
                    .unwrap();
                }
            })
        };
        let committer = {
            let b = b.clone();
            tokio::spawn(async move {
                let mut seqs = Vec::new();
                for i in 0..20 {
                    let e = exec(&format!("exec_{i}"), ExecutionState::Running);
                    let r = b
                        .commit(cancel(&e, &format!("k{i}"), "stuck"))
                        .await
                        .unwrap();
                    seqs.extend(committed_seqs(&r));
                }
                seqs
            })
        };
        appender.await.unwrap();
        let seqs = committer.await.unwrap();
        assert_eq!(seqs.len(), 20);
        assert!(seqs.windows(2).all(|w| w[0] < w[1]), "{seqs:?}");
        assert_eq!(a.verify(&tenant()).await.unwrap(), 80);
        for i in 0..20 {
            let got = a
                .get(&tenant(), &ExecutionId::new(format!("exec_{i}")).unwrap())
                .await
                .unwrap();
            assert_eq!(got.state, ExecutionState::Cancelled);
        }
    })
    .await;
}
