//! MC-SRE-1161, the action rollback drill: a bad retry (the retried execution fails
//! again) rolls the tenant's console writes back within two minutes, and the evidence
//! is in the audit chain.

mod common;

use std::sync::Arc;

use common::{Fixture, operator};
use mc_actions::{ActionError, ROLLBACK_EVENT, RollbackPolicy, RollbackWatch};
use mc_core::*;
use time::Duration;

fn watch(f: &Fixture, policy: RollbackPolicy) -> RollbackWatch {
    RollbackWatch::new(
        Arc::new(f.store.clone()),
        Arc::new(f.flags.clone()),
        Arc::new(f.store.clone()),
        Arc::new(f.clock.clone()),
        policy,
    )
}

#[tokio::test]
async fn a_bad_retry_is_rolled_back_within_two_minutes_with_evidence() {
    let f = Fixture::new().await;
    let w = watch(&f, RollbackPolicy::default());
    let e = f.execution("exec_1", ExecutionState::Failed).await;
    let alice = operator();
    let out = f
        .service
        .perform(f.request(&alice, ActionKind::Retry, &e.id, "k1"))
        .await
        .unwrap();
    w.observe(&f.tenant, &alice.sub, &out);
    assert_eq!(w.watching(), 1);

    // The retried attempt runs; a check meanwhile changes nothing.
    f.clock.advance(Duration::seconds(20));
    f.host_transition(&e.id, ExecutionState::Running)
        .await
        .unwrap();
    assert!(w.check().await.unwrap().is_empty());
    assert!(
        f.flags
            .is_enabled(&f.tenant, Flag::ConsoleActionsEnabled)
            .await
            .unwrap()
    );

    // It fails again: the bad retry. The host checks every 30 s.
    f.clock.advance(Duration::seconds(25));
    f.host_transition(&e.id, ExecutionState::Failed)
        .await
        .unwrap();
    let failed_at = f.clock.now();
    f.clock.advance(Duration::seconds(30));
    let rollbacks = w.check().await.unwrap();
    assert_eq!(rollbacks.len(), 1);
    let r = &rollbacks[0];
    assert!(r.within_deadline);
    assert_eq!(r.seconds_to_rollback, 30);
    assert!(r.rolled_back_at - failed_at <= Duration::minutes(2));
    assert_eq!(r.bad[0].execution_id, e.id);
    assert_eq!(r.bad[0].actor, alice.sub);

    // Rolled back: the flag is off, further writes are refused, reads still work.
    assert!(
        !f.flags
            .is_enabled(&f.tenant, Flag::ConsoleActionsEnabled)
            .await
            .unwrap()
    );
    let again = f
        .service
        .perform(f.request(&alice, ActionKind::Retry, &e.id, "k2"))
        .await;
    assert!(
        matches!(again, Err(ActionError::FlagDisabled { .. })),
        "{again:?}"
    );
    assert!(f.store.get(&f.tenant, &e.id).await.is_ok());

    // Evidence: the retry and the rollback, in order, in a chain that verifies.
    let audit = f.audit().await;
    let kinds: Vec<&str> = audit.iter().map(|e| e.kind.as_str()).collect();
    assert_eq!(kinds, ["mc.exec.action", ROLLBACK_EVENT]);
    let rb = &audit[1];
    assert_eq!(rb.id, r.audit_event_id);
    assert_eq!(rb.data["reason"], "bad_retry");
    assert_eq!(rb.data["flag"], "console_actions_enabled");
    assert_eq!(rb.data["secondsToRollback"], 30);
    assert_eq!(rb.data["bad"][0]["executionId"], "exec_1");
    assert_eq!(f.store.verify(&f.tenant).await.unwrap(), 2);
    // Nothing left to watch, and a second check does not roll back twice.
    assert_eq!(w.watching(), 0);
    assert!(w.check().await.unwrap().is_empty());
}

#[tokio::test]
async fn good_retries_and_stale_ones_do_not_roll_back() {
    let f = Fixture::new().await;
    let w = watch(
        &f,
        RollbackPolicy {
            failures: 2,
            ..RollbackPolicy::default()
        },
    );
    let alice = operator();
    let a = f.execution("exec_a", ExecutionState::Failed).await;
    let b = f.execution("exec_b", ExecutionState::Failed).await;
    for (e, key) in [(&a, "ka"), (&b, "kb")] {
        let out = f
            .service
            .perform(f.request(&alice, ActionKind::Retry, &e.id, key))
            .await
            .unwrap();
        w.observe(&f.tenant, &alice.sub, &out);
    }
    // a succeeds; b fails: one failure is below the policy's two.
    f.host_transition(&a.id, ExecutionState::Running)
        .await
        .unwrap();
    f.host_transition(&a.id, ExecutionState::Succeeded)
        .await
        .unwrap();
    f.host_transition(&b.id, ExecutionState::Running)
        .await
        .unwrap();
    f.host_transition(&b.id, ExecutionState::Failed)
        .await
        .unwrap();
    assert!(w.check().await.unwrap().is_empty());
    assert_eq!(
        w.watching(),
        1,
        "the failed one stays counted, the good one is dropped"
    );
    assert!(
        f.flags
            .is_enabled(&f.tenant, Flag::ConsoleActionsEnabled)
            .await
            .unwrap()
    );
    // A watched execution still pending after the window is dropped.
    let c = f.execution("exec_c", ExecutionState::Failed).await;
    let out = f
        .service
        .perform(f.request(&alice, ActionKind::Retry, &c.id, "kc"))
        .await
        .unwrap();
    w.observe(&f.tenant, &alice.sub, &out);
    f.clock.advance(Duration::minutes(16));
    assert!(w.check().await.unwrap().is_empty());
    assert_eq!(w.watching(), 1);
    // Cancels are not watched.
    let d = f.execution("exec_d", ExecutionState::Running).await;
    let out = f
        .service
        .perform(f.request(&alice, ActionKind::Cancel, &d.id, "kd"))
        .await
        .unwrap();
    w.observe(&f.tenant, &alice.sub, &out);
    assert_eq!(w.watching(), 1);
}

/// The watch list lives in memory: a process restarted between a bad retry and its
/// failure rebuilds it from the audit chain, so the rollback still happens — once.
#[tokio::test]
async fn a_restart_does_not_let_a_bad_retry_escape() {
    let f = Fixture::new().await;
    let alice = operator();
    let e1 = f.execution("exec_1", ExecutionState::Failed).await;
    let e2 = f.execution("exec_2", ExecutionState::Failed).await;
    let old = f.execution("exec_old", ExecutionState::Failed).await;
    // A retry long ago (outside the 15-minute window), then a retry and a replay.
    f.service
        .perform(f.request(&alice, ActionKind::Retry, &old.id, "k0"))
        .await
        .unwrap();
    f.clock.advance(Duration::minutes(30));
    let retry = f
        .service
        .perform(f.request(&alice, ActionKind::Retry, &e1.id, "k1"))
        .await
        .unwrap();
    let replay = f
        .service
        .perform(f.request(&alice, ActionKind::Replay, &e2.id, "k2"))
        .await
        .unwrap();
    let replayed = replay.replay.clone().unwrap().id;
    // The events name what they started.
    let audit = f.audit().await;
    assert_eq!(audit[1].data["started"]["executionId"], "exec_1");
    assert_eq!(audit[1].data["started"]["attempt"], retry.attempt);
    assert_eq!(
        audit[2].data["started"]["executionId"],
        replayed.as_str(),
        "a replay watches the new execution"
    );
    assert_eq!(audit[2].data["started"]["attempt"], 1);

    // The process restarts: a new watch knows nothing until it recovers.
    let w = watch(&f, RollbackPolicy::default());
    assert_eq!(w.watching(), 0);
    assert_eq!(w.recover(std::slice::from_ref(&f.tenant)).await.unwrap(), 2);
    assert_eq!(w.watching(), 2, "the old retry is out of the window");
    assert_eq!(
        w.recover(std::slice::from_ref(&f.tenant)).await.unwrap(),
        0,
        "recovering twice adds nothing"
    );
    // Another tenant's chain is empty: nothing to recover, no error.
    assert_eq!(
        w.recover(&[TenantId::new("globex").unwrap()])
            .await
            .unwrap(),
        0
    );

    // The retried execution fails again: rolled back, with evidence.
    f.host_transition(&e1.id, ExecutionState::Running)
        .await
        .unwrap();
    f.host_transition(&e1.id, ExecutionState::Failed)
        .await
        .unwrap();
    f.clock.advance(Duration::seconds(30));
    let rollbacks = w.check().await.unwrap();
    assert_eq!(rollbacks.len(), 1);
    assert_eq!(rollbacks[0].bad[0].execution_id, e1.id);
    assert!(
        !f.flags
            .is_enabled(&f.tenant, Flag::ConsoleActionsEnabled)
            .await
            .unwrap()
    );

    // An operator turns writes back on; another restart must not roll back again
    // for the failure that rollback already dealt with.
    f.flags
        .set(&f.tenant, Flag::ConsoleActionsEnabled, true)
        .await
        .unwrap();
    let w2 = watch(&f, RollbackPolicy::default());
    assert_eq!(
        w2.recover(std::slice::from_ref(&f.tenant)).await.unwrap(),
        0
    );
    assert!(w2.check().await.unwrap().is_empty());
    assert!(
        f.flags
            .is_enabled(&f.tenant, Flag::ConsoleActionsEnabled)
            .await
            .unwrap()
    );
}

/// As an observer of the service, the watch sees every accepted retry and replay
/// without the host calling `observe`: refusals, cancels and idempotent replays of
/// a request add nothing.
#[tokio::test]
async fn the_watch_observes_the_service_directly() {
    let f = Fixture::new().await;
    let w = Arc::new(watch(&f, RollbackPolicy::default()));
    let service = mc_actions::ActionService::new(
        Arc::new(f.store.clone()),
        Arc::new(f.flags.clone()),
        f.step_up.clone(),
        Arc::new(f.clock.clone()),
    )
    .with_observer(w.clone());
    let alice = operator();
    let failed = f.execution("exec_1", ExecutionState::Failed).await;
    let running = f.execution("exec_2", ExecutionState::Running).await;
    let done = f.execution("exec_3", ExecutionState::Succeeded).await;
    service
        .perform(f.request(&alice, ActionKind::Retry, &failed.id, "k1"))
        .await
        .unwrap();
    assert_eq!(w.watching(), 1);
    // The same request again (an idempotent replay) and a refused one: no watch.
    service
        .perform(f.request(&alice, ActionKind::Retry, &failed.id, "k1"))
        .await
        .unwrap();
    assert!(
        service
            .perform(f.request(&alice, ActionKind::Retry, &running.id, "k2"))
            .await
            .is_err()
    );
    assert_eq!(w.watching(), 1);
    service
        .perform(f.request(&alice, ActionKind::Replay, &done.id, "k3"))
        .await
        .unwrap();
    service
        .perform(f.request(&alice, ActionKind::Cancel, &running.id, "k4"))
        .await
        .unwrap();
    assert_eq!(w.watching(), 2, "the retry and the replay; not the cancel");
}
