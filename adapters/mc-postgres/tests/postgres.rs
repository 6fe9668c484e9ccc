//! PostgreSQL-specific guarantees: concurrency across connections and replicas,
//! crash safety, and the rules the schema enforces by itself.

mod common;

use std::sync::Arc;
use std::time::Duration as StdDuration;

use common::{Ctx, T0, create, exec, tenant, with_store};
use mc_core::audit::{AuditActor, AuditSubject};
use mc_core::{
    ActionCommit, ActionKind, ActorId, AuditLog, CommitResult, Digest, Execution, ExecutionId,
    ExecutionQuery, ExecutionState, ExecutionStore, IdempotencyKey, IdempotencyRecord,
    NewAuditEvent, StoreError, Transition, verify_chain,
};
use mc_postgres::PgStore;
use sqlx::Row;
use time::Duration;
use time::macros::datetime;

/// An action commit as mc-actions builds it: transition + audit event + key.
fn action(
    e: &Execution,
    kind: ActionKind,
    to: ExecutionState,
    next_attempt: bool,
    actor: &str,
    key: Option<&str>,
) -> ActionCommit {
    let t = tenant();
    let mut c = ActionCommit::new(t.clone(), T0 + Duration::minutes(5));
    c.transition = Some(Transition {
        execution_id: e.id.clone(),
        expected_version: e.version,
        to,
        next_attempt,
    });
    c.audit.push(NewAuditEvent::exec_action(
        &t,
        &ActorId::new(actor).unwrap(),
        &e.id,
        kind,
        "operator request",
        c.at,
    ));
    c.idempotency = key.map(|k| IdempotencyRecord {
        key: IdempotencyKey::new(k).unwrap(),
        fingerprint: Digest::of(format!("{}|{kind}|{actor}", e.id).as_bytes()),
        outcome: serde_json::json!({ "execution": e.id.as_str(), "action": kind.as_str() }),
        created_at: c.at,
    });
    c
}

fn sqlstate(e: &sqlx::Error) -> String {
    e.as_database_error()
        .and_then(|d| d.code())
        .map(|c| c.into_owned())
        .unwrap_or_else(|| format!("not a database error: {e}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sixteen_connections_sending_one_key_cause_one_effect() {
    with_store(16, |ctx: Ctx| async move {
        let store = ctx.store.clone();
        let e = exec("exec_16", ExecutionState::Running);
        create(&store, &e).await;

        // Open all sixteen connections first, so the requests really arrive on
        // separate sessions.
        let mut held = Vec::new();
        for _ in 0..16 {
            held.push(store.pool().acquire().await.unwrap());
        }
        drop(held);
        assert_eq!(store.pool().size(), 16);

        let barrier = Arc::new(tokio::sync::Barrier::new(16));
        let tasks: Vec<_> = (0..16)
            .map(|_| {
                let store = store.clone();
                let barrier = barrier.clone();
                let c = action(
                    &e,
                    ActionKind::Cancel,
                    ExecutionState::Cancelled,
                    false,
                    "alice@company",
                    Some("same-key"),
                );
                tokio::spawn(async move {
                    barrier.wait().await;
                    store.commit(c).await
                })
            })
            .collect();
        let mut results = Vec::new();
        for t in tasks {
            results.push(t.await.unwrap());
        }

        let committed: Vec<_> = results
            .iter()
            .filter(|r| matches!(r, Ok(CommitResult::Committed { .. })))
            .collect();
        assert_eq!(committed.len(), 1, "exactly one effect: {results:?}");
        let expected_outcome = serde_json::json!({ "execution": "exec_16", "action": "cancel" });
        for r in &results {
            match r {
                Ok(CommitResult::Committed { .. }) => {}
                Ok(CommitResult::Replayed { outcome }) => assert_eq!(outcome, &expected_outcome),
                Err(e) => panic!("a repeat must be answered from the record, got {e:?}"),
            }
        }
        let events = store.read(&tenant(), 0, 100).await.unwrap();
        assert_eq!(events.len(), 1, "one audit event for sixteen requests");
        let now = store.get(&tenant(), &e.id).await.unwrap();
        assert_eq!(now.state, ExecutionState::Cancelled);
        assert_eq!(now.version, 2);

        // The same key for a different request (another actor) is a conflict.
        let other = action(
            &e,
            ActionKind::Cancel,
            ExecutionState::Cancelled,
            false,
            "bob@company",
            Some("same-key"),
        );
        assert!(matches!(
            store.commit(other).await,
            Err(StoreError::IdempotencyConflict { key }) if key == "same-key"
        ));
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replicas_racing_on_one_execution_one_wins_other_gets_conflict() {
    with_store(4, |ctx: Ctx| async move {
        let a = ctx.store.clone();
        let b = ctx.replica(4).await;
        const N: usize = 12;
        for i in 0..N {
            // Cancel races a retry-style transition (a new attempt starts).
            create(&a, &exec(&format!("race_{i}"), ExecutionState::Pending)).await;
            // Two operators retry the same failed execution at once.
            create(&a, &exec(&format!("retry_{i}"), ExecutionState::Failed)).await;
        }
        for i in 0..N {
            let e = b
                .get(&tenant(), &ExecutionId::new(format!("race_{i}")).unwrap())
                .await
                .unwrap();
            let cancel = action(
                &e,
                ActionKind::Cancel,
                ExecutionState::Cancelled,
                false,
                "alice@company",
                Some(&format!("a-{i}")),
            );
            let retry = action(
                &e,
                ActionKind::Retry,
                ExecutionState::Running,
                true,
                "bob@company",
                Some(&format!("b-{i}")),
            );
            let (ra, rb) = tokio::join!(a.commit(cancel), b.commit(retry));
            let (winner, loser) = match (&ra, &rb) {
                (Ok(_), Err(_)) => (ra.as_ref().unwrap(), rb.as_ref().unwrap_err()),
                (Err(_), Ok(_)) => (rb.as_ref().unwrap(), ra.as_ref().unwrap_err()),
                _ => panic!("exactly one replica must win: {ra:?} / {rb:?}"),
            };
            assert!(
                matches!(
                    loser,
                    StoreError::VersionConflict {
                        expected: 1,
                        actual: 2,
                        ..
                    }
                ),
                "the loser gets a typed conflict: {loser:?}"
            );
            let CommitResult::Committed {
                updated: Some(won), ..
            } = winner
            else {
                panic!("winner committed a transition: {winner:?}");
            };
            assert_eq!(
                &a.get(&tenant(), &e.id).await.unwrap(),
                won,
                "both replicas see the winner"
            );

            let e = a
                .get(&tenant(), &ExecutionId::new(format!("retry_{i}")).unwrap())
                .await
                .unwrap();
            let r1 = action(
                &e,
                ActionKind::Retry,
                ExecutionState::Pending,
                true,
                "alice@company",
                Some(&format!("ra-{i}")),
            );
            let r2 = action(
                &e,
                ActionKind::Retry,
                ExecutionState::Pending,
                true,
                "bob@company",
                Some(&format!("rb-{i}")),
            );
            let (x, y) = tokio::join!(a.commit(r1), b.commit(r2));
            assert_eq!(
                [&x, &y].iter().filter(|r| r.is_ok()).count(),
                1,
                "{x:?} / {y:?}"
            );
            let after = b.get(&tenant(), &e.id).await.unwrap();
            assert_eq!(after.attempt, 2, "one retry, one new attempt");
            assert_eq!(after.version, 2);
        }
        let events = a.read(&tenant(), 0, 1000).await.unwrap();
        assert_eq!(
            events.len(),
            2 * N,
            "one audit event per race, none from losers"
        );
        verify_chain(&events).unwrap();
        // The losers' idempotency keys were rolled back with their transactions.
        let mut recorded = 0;
        for i in 0..N {
            for k in [
                format!("a-{i}"),
                format!("b-{i}"),
                format!("ra-{i}"),
                format!("rb-{i}"),
            ] {
                if b.idempotency(&tenant(), &IdempotencyKey::new(k).unwrap())
                    .await
                    .unwrap()
                    .is_some()
                {
                    recorded += 1;
                }
            }
        }
        assert_eq!(recorded, 2 * N);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_transaction_killed_midway_leaves_nothing_half_written() {
    with_store(4, |ctx: Ctx| async move {
        let store = ctx.store.clone();
        let e = exec("exec_kill", ExecutionState::Running);
        create(&store, &e).await;
        let mut c = action(
            &e,
            ActionKind::Cancel,
            ExecutionState::Cancelled,
            false,
            "alice@company",
            Some("kill-key"),
        );
        let mut child = exec("exec_kill_child", ExecutionState::Pending);
        child.parent = Some(e.id.clone());
        c.create = Some(child.clone());

        // Make the commit stop inside its transaction: after the idempotency record,
        // the transition and the new execution are written, the audit insert sleeps.
        let admin = ctx.replica(2).await;
        sqlx::query(
            "CREATE FUNCTION test_pause() RETURNS trigger LANGUAGE plpgsql AS \
             $$ BEGIN PERFORM pg_sleep(60); RETURN NEW; END $$",
        )
        .execute(admin.pool())
        .await
        .unwrap();
        sqlx::query(
            "CREATE TRIGGER test_pause BEFORE INSERT ON mc_audit_events \
             FOR EACH ROW EXECUTE FUNCTION test_pause()",
        )
        .execute(admin.pool())
        .await
        .unwrap();

        let in_flight = {
            let store = store.clone();
            let c = c.clone();
            tokio::spawn(async move { store.commit(c).await })
        };
        let mut pid = None;
        for _ in 0..600 {
            pid = sqlx::query_scalar::<_, i32>(
                "SELECT pid FROM pg_stat_activity \
                  WHERE application_name = $1 AND wait_event = 'PgSleep' LIMIT 1",
            )
            .bind(&ctx.schema)
            .fetch_optional(admin.pool())
            .await
            .unwrap();
            if pid.is_some() {
                break;
            }
            tokio::time::sleep(StdDuration::from_millis(50)).await;
        }
        let pid = pid.expect("the commit reached the paused audit insert");
        let killed: bool = sqlx::query_scalar("SELECT pg_terminate_backend($1)")
            .bind(pid)
            .fetch_one(admin.pool())
            .await
            .unwrap();
        assert!(killed);

        let r = in_flight.await.unwrap();
        assert!(
            matches!(r, Err(StoreError::Unavailable(_))),
            "a killed session is Unavailable: {r:?}"
        );
        sqlx::query("DROP TRIGGER test_pause ON mc_audit_events")
            .execute(admin.pool())
            .await
            .unwrap();

        // Nothing of the unit of work is visible.
        let now = store.get(&tenant(), &e.id).await.unwrap();
        assert_eq!(now, e, "the transition was rolled back");
        assert!(matches!(
            store.get(&tenant(), &child.id).await,
            Err(StoreError::NotFound { .. })
        ));
        let key = IdempotencyKey::new("kill-key").unwrap();
        assert!(store.idempotency(&tenant(), &key).await.unwrap().is_none());
        assert!(store.read(&tenant(), 0, 10).await.unwrap().is_empty());
        assert!(store.head(&tenant()).await.unwrap().is_none());

        // And the same request now goes through, once.
        let r = store.commit(c.clone()).await.unwrap();
        assert!(matches!(r, CommitResult::Committed { .. }));
        assert!(matches!(
            store.commit(c).await.unwrap(),
            CommitResult::Replayed { .. }
        ));
        assert_eq!(store.verify(&tenant()).await.unwrap(), 1);
        assert_eq!(store.get(&tenant(), &child.id).await.unwrap(), child);
    })
    .await;
}

async fn append_n(store: &PgStore, n: usize) -> Vec<mc_core::AuditEvent> {
    let mut out = Vec::new();
    for i in 0..n {
        out.push(
            store
                .append(NewAuditEvent::exec_action(
                    &tenant(),
                    &ActorId::new("alice@company").unwrap(),
                    &ExecutionId::new(format!("exec_{i}")).unwrap(),
                    ActionKind::Retry,
                    "transient_error",
                    T0,
                ))
                .await
                .unwrap(),
        );
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_audit_table_rejects_update_delete_and_truncate() {
    with_store(2, |ctx: Ctx| async move {
        let store = ctx.store.clone();
        append_n(&store, 3).await;
        let pool = store.pool();
        for sql in [
            "UPDATE mc_audit_events SET kind = 'edited' WHERE seq = 2",
            "UPDATE mc_audit_events SET data = '{}'::json",
            "DELETE FROM mc_audit_events WHERE seq = 3",
            "DELETE FROM mc_audit_events",
            "TRUNCATE mc_audit_events",
        ] {
            let err = sqlx::query(sql).execute(pool).await.unwrap_err();
            assert_eq!(sqlstate(&err), "MCA01", "{sql} must be rejected: {err}");
        }
        // The chain head cannot be moved backwards, removed or forged either.
        for sql in [
            "UPDATE mc_audit_heads SET seq = 1",
            "UPDATE mc_audit_heads SET seq = 9",
            "DELETE FROM mc_audit_heads",
            "TRUNCATE mc_audit_heads",
            "INSERT INTO mc_audit_heads VALUES ('other', 5, repeat('a', 64))",
        ] {
            let err = sqlx::query(sql).execute(pool).await.unwrap_err();
            assert_eq!(sqlstate(&err), "MCA03", "{sql} must be rejected: {err}");
        }
        assert_eq!(store.verify(&tenant()).await.unwrap(), 3);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_chain_cannot_fork_or_gap() {
    with_store(2, |ctx: Ctx| async move {
        let store = ctx.store.clone();
        let chain = append_n(&store, 2).await;
        let insert = |seq: i64, prev: String, hash: String| {
            sqlx::query(
                "INSERT INTO mc_audit_events \
                   (tenant, seq, id, kind, actor_sub, data, ts, prev, hash) \
                 VALUES ('acme', $1, 'evt_forged', 'mc.exec.action', 'mallory', '{}', now(), $2, $3)",
            )
            .bind(seq)
            .bind(prev)
            .bind(hash)
            .execute(store.pool())
        };
        // A second seq 2 that links correctly to seq 1: a fork.
        let err = insert(2, chain[0].hash.clone(), "b".repeat(64)).await.unwrap_err();
        assert_eq!(sqlstate(&err), "23505", "unique (tenant, seq) rejects a fork: {err}");
        assert_eq!(
            err.as_database_error().unwrap().constraint(),
            Some("mc_audit_events_pkey")
        );
        // A gap, and a link to the wrong predecessor.
        let err = insert(4, chain[1].hash.clone(), "c".repeat(64)).await.unwrap_err();
        assert_eq!(sqlstate(&err), "MCA02", "{err}");
        let err = insert(3, chain[0].hash.clone(), "d".repeat(64)).await.unwrap_err();
        assert_eq!(sqlstate(&err), "MCA02", "{err}");
        assert_eq!(store.verify(&tenant()).await.unwrap(), 2);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn appends_from_two_replicas_stay_one_contiguous_chain() {
    with_store(4, |ctx: Ctx| async move {
        let a = ctx.store.clone();
        let b = ctx.replica(4).await;
        let one = |store: PgStore, i: usize| async move {
            store
                .append(NewAuditEvent::exec_action(
                    &tenant(),
                    &ActorId::new("alice@company").unwrap(),
                    &ExecutionId::new(format!("exec_{i}")).unwrap(),
                    ActionKind::Cancel,
                    "load",
                    T0,
                ))
                .await
        };
        let futs = (0..60).map(|i| {
            let store = if i % 2 == 0 { a.clone() } else { b.clone() };
            tokio::spawn(one(store, i))
        });
        for r in futures::future::join_all(futs).await {
            r.unwrap().unwrap();
        }
        let events = b.read(&tenant(), 0, 1000).await.unwrap();
        assert_eq!(
            events.iter().map(|e| e.seq).collect::<Vec<_>>(),
            (1..=60).collect::<Vec<_>>()
        );
        verify_chain(&events).unwrap();
        assert_eq!(a.verify(&tenant()).await.unwrap(), 60);
        assert_eq!(a.head(&tenant()).await.unwrap().unwrap(), events[59]);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stored_values_read_back_identical() {
    with_store(2, |ctx: Ctx| async move {
        let store = ctx.store.clone();
        let t = tenant();
        // Nanosecond timestamps, labels that need escaping, lineage, big counters.
        let mut e = exec("exec_exact", ExecutionState::Failed)
            .with_label("team", "payments")
            .with_label("quote\"d", "ünïcødé 🚀 \\ back")
            .with_label("", "empty key");
        e.created_at = datetime!(2025-12-10 18:04:21.123456789 UTC);
        e.updated_at = datetime!(2025-12-10 18:04:22.000000001 +02:00);
        e.parent = Some(ExecutionId::new("exec_parent").unwrap());
        e.root = ExecutionId::new("exec_root").unwrap();
        e.attempt = u32::MAX;
        e.version = i64::MAX as u64;
        create(&store, &e).await;
        assert_eq!(store.get(&t, &e.id).await.unwrap(), e);
        let page = store
            .search(
                &t,
                &ExecutionQuery {
                    label: Some(("quote\"d".into(), "ünïcødé 🚀 \\ back".into())),
                    ..Default::default()
                },
            )
            .await
            .unwrap();
        assert_eq!(page.items, vec![e.clone()]);

        // Audit data whose JSON jsonb would rewrite; the stored event must re-hash.
        let ev = NewAuditEvent {
            id: Some("evt_caller_chosen".into()),
            kind: "mc.custom.event".into(),
            actor: AuditActor {
                sub: ActorId::new("svc:janitor|1").unwrap(),
                tenant: t.clone(),
            },
            subject: AuditSubject {
                execution_id: None,
                resource: Some("flag/console_actions_enabled".into()),
            },
            data: serde_json::json!({
                "z": -0.0, "a": [1.5e300, 12345678901234567890u64, -7, "nul \u{0} byte", null],
                "nested": { "b": true, "a": "ünï" }, "reason": "x"
            }),
            ts: datetime!(2025-12-10 18:04:21.987654321 UTC),
        };
        let sealed = store.append(ev).await.unwrap();
        let back = store.read(&t, 0, 10).await.unwrap();
        assert_eq!(back, vec![sealed.clone()]);
        assert_eq!(back[0].compute_hash(), sealed.hash);
        assert_eq!(
            serde_json::to_string(&back[0]).unwrap(),
            serde_json::to_string(&sealed).unwrap()
        );

        // Idempotency record: exact outcome and timestamp.
        let target = exec("exec_idem", ExecutionState::Running);
        create(&store, &target).await;
        let mut c = action(
            &target,
            ActionKind::Cancel,
            ExecutionState::Cancelled,
            false,
            "alice@company",
            Some("exact-key"),
        );
        let rec = c.idempotency.as_mut().unwrap();
        rec.created_at = datetime!(1969-12-31 23:59:59.999999999 UTC);
        rec.outcome = serde_json::json!({ "f": 0.1, "neg": -0.0, "s": "\u{0}" });
        let rec = rec.clone();
        store.commit(c).await.unwrap();
        assert_eq!(store.idempotency(&t, &rec.key).await.unwrap(), Some(rec));

        // What PostgreSQL cannot store is refused up front, naming the field.
        for bad in [
            exec("exec_nul", ExecutionState::Pending).with_label("k", "v\0"),
            exec("exec_huge", ExecutionState::Pending)
                .with_label("k", "v".repeat(mc_postgres::MAX_LABEL_BYTES)),
        ] {
            let mut c = ActionCommit::new(t.clone(), T0);
            c.create = Some(bad);
            assert!(matches!(
                store.commit(c).await,
                Err(StoreError::InvalidInput {
                    field: "labels",
                    ..
                })
            ));
        }

        // The label search index follows labels changed by hand-written SQL too.
        sqlx::query(
            "UPDATE mc_executions SET labels = '{\"team\": \"search\"}' WHERE id = 'exec_exact'",
        )
        .execute(store.pool())
        .await
        .unwrap();
        let by = |v: &str| ExecutionQuery {
            label: Some(("team".into(), v.into())),
            ..Default::default()
        };
        assert!(
            store
                .search(&t, &by("payments"))
                .await
                .unwrap()
                .items
                .is_empty()
        );
        let found = store.search(&t, &by("search")).await.unwrap().items;
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].id.as_str(), "exec_exact");
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_schema_accepts_only_lowercase_sha256_hex_digests() {
    with_store(2, |ctx: Ctx| async move {
        let pool = ctx.store.pool();
        let insert = |digest: String| {
            sqlx::query(
                "INSERT INTO mc_executions (tenant, id, state, attempt, manifest_digest, \
                     inputs_digest, root, version, created_at, updated_at) \
                 VALUES ('acme', md5(random()::text), 'running', 1, $1, repeat('b', 64), 'r', 1, \
                     now(), now())",
            )
            .bind(digest)
            .execute(pool)
        };
        insert("0123456789abcdef".repeat(4))
            .await
            .expect("a valid digest");
        for bad in [
            "A".repeat(64),
            "a".repeat(63),
            "a".repeat(65),
            format!("{}g", "a".repeat(63)),
            format!("{}\n", "a".repeat(63)),
            format!("{}é", "a".repeat(62)),
            String::new(),
        ] {
            let err = insert(bad.clone()).await.unwrap_err();
            assert_eq!(sqlstate(&err), "23514", "{bad:?} must be rejected: {err}");
        }
        let err = sqlx::query(
            "INSERT INTO mc_idempotency (tenant, key, fingerprint, outcome, created_at) \
             VALUES ('acme', 'k', repeat('z', 64), '{}', now())",
        )
        .execute(pool)
        .await
        .unwrap_err();
        assert_eq!(sqlstate(&err), "23514", "{err}");
    })
    .await;
}

/// The versions of the files in `migrations/` (`0007_name.sql` is 7), sorted: what
/// `migrate` must have recorded, once each, however often it ran.
fn migration_versions_on_disk() -> Vec<i64> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("migrations");
    let mut versions: Vec<i64> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|name| name.ends_with(".sql"))
        .map(|name| name.split('_').next().unwrap().parse().unwrap())
        .collect();
    versions.sort_unstable();
    assert!(!versions.is_empty(), "no migrations in {}", dir.display());
    versions
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn migrate_is_idempotent_and_versioned() {
    with_store(2, |ctx: Ctx| async move {
        ctx.store.migrate().await.unwrap();
        ctx.replica(1).await.migrate().await.unwrap();
        let versions: Vec<i64> =
            sqlx::query("SELECT version FROM _sqlx_migrations ORDER BY version")
                .fetch_all(ctx.store.pool())
                .await
                .unwrap()
                .iter()
                .map(|r| r.get(0))
                .collect();
        assert_eq!(versions, migration_versions_on_disk());
    })
    .await;
}

#[tokio::test]
async fn connection_failures_are_typed() {
    // Nothing listens on port 1.
    let r = PgStore::connect("postgres://postgres@127.0.0.1:1/test", 1).await;
    assert!(matches!(r, Err(StoreError::Unavailable(_))), "{r:?}");
    let r = PgStore::connect("postgres://postgres@127.0.0.1:notaport/test", 1).await;
    assert!(
        matches!(r, Err(StoreError::InvalidInput { field: "url", .. })),
        "{r:?}"
    );
    let r = PgStore::connect(&common::database_url(), 0).await;
    assert!(
        matches!(
            r,
            Err(StoreError::InvalidInput {
                field: "max_conns",
                ..
            })
        ),
        "{r:?}"
    );

    // A store whose database went away answers every call with Unavailable.
    let pool = sqlx::postgres::PgPoolOptions::new()
        .acquire_timeout(StdDuration::from_millis(500))
        .connect_lazy("postgres://postgres@127.0.0.1:1/test")
        .unwrap();
    let down = PgStore::from_pool(pool);
    assert!(matches!(
        down.get(&tenant(), &ExecutionId::new("x").unwrap()).await,
        Err(StoreError::Unavailable(_))
    ));
    let c = action(
        &exec("x", ExecutionState::Running),
        ActionKind::Cancel,
        ExecutionState::Cancelled,
        false,
        "alice@company",
        None,
    );
    assert!(matches!(
        down.commit(c).await,
        Err(StoreError::Unavailable(_))
    ));
    assert!(matches!(
        down.head(&tenant()).await,
        Err(StoreError::Unavailable(_))
    ));
    assert!(matches!(
        down.migrate().await,
        Err(StoreError::Unavailable(_))
    ));
}
