//! Group commit (`mc_commit_batch`, ADR 0305): several units in one transaction, each
//! still all-or-nothing on its own, answered exactly as one `commit` each would be.

mod common;

use std::sync::Arc;

use common::{Ctx, T0, with_store};
use mc_core::{
    ActionCommit, AuditLog, CommitResult, Digest, Execution, ExecutionId, ExecutionState,
    ExecutionStore, IdempotencyKey, StoreError, TenantId,
};
use mc_postgres::{GroupCommit, MAX_BATCH_LIMIT, PgStore};

fn tenant(name: &str) -> TenantId {
    TenantId::new(name).unwrap()
}

fn exec(t: &TenantId, id: &str) -> Execution {
    let mut e = Execution::new(
        t.clone(),
        ExecutionId::new(id).unwrap(),
        Digest::of(b"manifest"),
        Digest::of(id.as_bytes()),
        T0,
    );
    e.state = ExecutionState::Running;
    e
}

fn create_unit(e: &Execution) -> ActionCommit {
    let mut c = ActionCommit::new(e.tenant.clone(), e.created_at);
    c.create = Some(e.clone());
    c
}

fn cancel(e: &Execution, expected: u64, key: &str, reason: &str) -> ActionCommit {
    common::cancel_unit(e, expected, key, reason)
}

async fn verify_chain(store: &PgStore, t: &TenantId) -> usize {
    let events = store.read(t, 0, u32::MAX).await.expect("read chain");
    mc_core::audit::verify_chain(&events).expect("chain verifies");
    let head = store.head(t).await.expect("head");
    assert_eq!(head.map(|h| h.seq), events.last().map(|e| e.seq));
    events.len()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_unit_rolls_back_alone_and_its_neighbours_commit() {
    with_store(4, |ctx: Ctx| async move {
        let store = ctx.store.clone();
        let t = tenant("acme");
        let execs: Vec<Execution> = (0..4).map(|i| exec(&t, &format!("exec_{i}"))).collect();
        let made = store
            .commit_many(execs.iter().map(create_unit).collect())
            .await;
        assert!(made.iter().all(Result::is_ok), "{made:?}");
        let before = store.commit_stats();

        let units = vec![
            // 1. commits
            cancel(&execs[0], 1, "k-0", "stuck"),
            // 2. wrong version: fails, rolls back alone (its key is not claimed)
            cancel(&execs[1], 7, "k-1", "stuck"),
            // 3. sealed onto the head unit 2 would have left: re-sealed, commits
            cancel(&execs[2], 1, "k-2", "stuck"),
            // 4. the key of unit 1 with the same request: replayed, writes nothing
            cancel(&execs[0], 1, "k-0", "stuck"),
            // 5. the key of unit 1 for another request: conflict
            cancel(&execs[3], 1, "k-0", "other"),
            // 6. creates an execution that exists: fails alone
            create_unit(&execs[3]),
            // 7. commits after all of that
            cancel(&execs[3], 1, "k-3", "stuck"),
        ];
        let out = store.commit_many(units).await;
        assert_eq!(out.len(), 7);
        let seqs = |r: &Result<CommitResult, StoreError>| -> Vec<u64> { match r {
            Ok(CommitResult::Committed { audit, .. }) => audit.iter().map(|e| e.seq).collect(),
            other => panic!("expected Committed, got {other:?}"),
        } };
        assert_eq!(seqs(&out[0]), vec![1u64]);
        assert!(
            matches!(
                &out[1],
                Err(StoreError::VersionConflict {
                    expected: 7,
                    actual: 1,
                    ..
                })
            ),
            "{:?}",
            out[1]
        );
        assert_eq!(seqs(&out[2]), vec![2]);
        assert!(
            matches!(&out[3], Ok(CommitResult::Replayed { outcome }) if outcome["execution"] == "exec_0"),
            "{:?}",
            out[3]
        );
        assert!(
            matches!(&out[4], Err(StoreError::IdempotencyConflict { key }) if key == "k-0"),
            "{:?}",
            out[4]
        );
        assert!(
            matches!(&out[5], Err(StoreError::AlreadyExists { id }) if id == "exec_3"),
            "{:?}",
            out[5]
        );
        assert_eq!(seqs(&out[6]), vec![3]);

        // What is stored is exactly what was answered.
        assert_eq!(verify_chain(&store, &t).await, 3);
        for (e, state, version) in [
            (&execs[0], ExecutionState::Cancelled, 2),
            (&execs[1], ExecutionState::Running, 1),
            (&execs[2], ExecutionState::Cancelled, 2),
            (&execs[3], ExecutionState::Cancelled, 2),
        ] {
            let got = store.get(&t, &e.id).await.unwrap();
            assert_eq!((got.state, got.version), (state, version), "{}", e.id);
        }
        assert!(
            store
                .idempotency(&t, &IdempotencyKey::new("k-1").unwrap())
                .await
                .unwrap()
                .is_none(),
            "the failed unit's key must not be claimed"
        );
        // A few batches: the first one unit by one (unit 2 fails), then the units
        // sealed onto the head that unit 2 did not leave, again.
        let after = store.commit_stats();
        assert!(
            after.batches - before.batches <= 4,
            "{before:?} -> {after:?}"
        );
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn units_queued_together_share_one_transaction_across_tenants() {
    with_store(4, |ctx: Ctx| async move {
        let store = ctx.store.clone();
        let tenants = [tenant("t-a"), tenant("t-b"), tenant("t-c")];
        let mut units = Vec::new();
        for i in 0..5 {
            for t in &tenants {
                units.push(create_unit(&exec(t, &format!("exec_{i}"))));
            }
        }
        let made = store.commit_many(units).await;
        assert!(made.iter().all(Result::is_ok), "{made:?}");

        let before = store.commit_stats();
        // Interleaved tenants; each tenant's units must keep their order.
        let mut units = Vec::new();
        for i in 0..5 {
            for t in &tenants {
                units.push(cancel(
                    &exec(t, &format!("exec_{i}")),
                    1,
                    &format!("k-{i}"),
                    "stuck",
                ));
            }
        }
        let out = store.commit_many(units).await;
        let after = store.commit_stats();
        assert_eq!(
            (
                after.batches - before.batches,
                after.units - before.units,
                after.units_set_path - before.units_set_path
            ),
            (1, 15, 15),
            "fifteen units queued at once go as one batch, on the set-based path"
        );
        for (n, r) in out.iter().enumerate() {
            let i = n / 3;
            match r {
                Ok(CommitResult::Committed { audit, updated, .. }) => {
                    let updated = updated.as_ref().expect("the transition's row");
                    let t = &tenants[n % 3];
                    assert_eq!(&store.get(t, &updated.id).await.unwrap(), updated);
                    assert_eq!(
                        (updated.state, updated.version),
                        (ExecutionState::Cancelled, 2)
                    );
                    assert_eq!(audit[0].seq, i as u64 + 1, "tenant order kept");
                    assert_eq!(
                        audit[0].subject.execution_id.as_ref().unwrap().as_str(),
                        format!("exec_{i}")
                    );
                }
                other => panic!("unit {n}: {other:?}"),
            }
        }
        for t in &tenants {
            assert_eq!(verify_chain(&store, t).await, 5);
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_concurrent_commits_on_one_tenant_are_grouped_and_keep_one_chain() {
    with_store(8, |ctx: Ctx| async move {
        let store = ctx.store.clone();
        let t = tenant("acme");
        let execs: Vec<Execution> = (0..64).map(|i| exec(&t, &format!("exec_{i}"))).collect();
        let made = store
            .commit_many(execs.iter().map(create_unit).collect())
            .await;
        assert!(made.iter().all(Result::is_ok));
        // Another replica appends to the same chain meanwhile: our hints go stale.
        let other = ctx.replica(2).await;
        let store = Arc::new(store);
        let mut tasks = Vec::new();
        for (i, e) in execs.iter().enumerate() {
            let (store, e) = (store.clone(), e.clone());
            tasks.push(tokio::spawn(async move {
                store
                    .commit(cancel(&e, 1, &format!("k-{i}"), "stuck"))
                    .await
            }));
        }
        for i in 0..8 {
            other
                .commit(cancel(
                    &exec(&t, &format!("exec_{i}")),
                    1,
                    &format!("k-{i}"),
                    "stuck",
                ))
                .await
                .expect("the other replica's commit is answered (committed or replayed)");
        }
        let mut committed = 0;
        for task in tasks {
            match task.await.unwrap() {
                Ok(CommitResult::Committed { .. }) => committed += 1,
                Ok(CommitResult::Replayed { .. }) => {}
                other => panic!("{other:?}"),
            }
        }
        let events = verify_chain(&store, &t).await;
        // Every execution was cancelled exactly once, by one of the two replicas.
        assert_eq!(events, 64);
        assert!(committed >= 56, "{committed}");
        for e in &execs {
            assert_eq!(
                store.get(&t, &e.id).await.unwrap().state,
                ExecutionState::Cancelled
            );
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_grouping_every_unit_is_its_own_batch() {
    with_store(4, |ctx: Ctx| async move {
        let store = ctx
            .store
            .clone()
            .with_group_commit(GroupCommit::new(1, 1).unwrap());
        assert_eq!(store.group_commit().max_batch(), 1);
        let t = tenant("acme");
        let execs: Vec<Execution> = (0..5).map(|i| exec(&t, &format!("exec_{i}"))).collect();
        let out = store
            .commit_many(execs.iter().map(create_unit).collect())
            .await;
        assert!(out.iter().all(Result::is_ok));
        assert_eq!(
            store.commit_stats(),
            mc_postgres::CommitStats {
                batches: 5,
                units: 5,
                units_set_path: 5
            }
        );
        mc_core::testkit::execution_store_conformance(&store).await;
    })
    .await;
}

#[test]
fn group_commit_settings_are_validated() {
    assert!(matches!(
        GroupCommit::new(0, 1),
        Err(StoreError::InvalidInput {
            field: "max_batch",
            ..
        })
    ));
    assert!(matches!(
        GroupCommit::new(MAX_BATCH_LIMIT + 1, 1),
        Err(StoreError::InvalidInput {
            field: "max_batch",
            ..
        })
    ));
    assert!(matches!(
        GroupCommit::new(8, 0),
        Err(StoreError::InvalidInput {
            field: "max_in_flight",
            ..
        })
    ));
    let g = GroupCommit::new(MAX_BATCH_LIMIT, 3).unwrap();
    assert_eq!((g.max_batch(), g.max_in_flight()), (MAX_BATCH_LIMIT, 3));
    assert_eq!(GroupCommit::default().max_batch(), 32);
}
