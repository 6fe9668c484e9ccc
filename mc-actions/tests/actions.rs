//! Controlled Actions v1: guards, effects, idempotency, audit, console view, bulk.

mod common;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use common::*;
use mc_actions::*;
use mc_core::*;

#[tokio::test]
async fn retry_cancel_replay_effects_and_one_audit_event_each() {
    let f = Fixture::new().await;
    let failed = f.execution("exec_failed", ExecutionState::Failed).await;
    let running = f.execution("exec_running", ExecutionState::Running).await;
    let op = operator();

    let retry = f
        .service
        .perform(f.request(&op, ActionKind::Retry, &failed.id, "k-retry"))
        .await
        .unwrap();
    assert_eq!(retry.status, "accepted");
    assert_eq!(retry.state, ExecutionState::Pending);
    assert_eq!(retry.attempt, 2);
    let stored = f.store.get(&f.tenant, &failed.id).await.unwrap();
    assert_eq!((stored.state, stored.attempt), (ExecutionState::Pending, 2));

    let cancel = f
        .service
        .perform(f.request(&op, ActionKind::Cancel, &running.id, "k-cancel"))
        .await
        .unwrap();
    assert_eq!(cancel.state, ExecutionState::Cancelled);

    let replay = f
        .service
        .perform(f.request(&op, ActionKind::Replay, &running.id, "k-replay"))
        .await
        .unwrap();
    let child = replay
        .replay
        .clone()
        .expect("replay names the new execution");
    assert_eq!(child.parent, running.id);
    assert_eq!(child.root, running.id);
    let stored_child = f.store.get(&f.tenant, &child.id).await.unwrap();
    assert_eq!(stored_child.manifest_digest, running.manifest_digest);
    assert_eq!(stored_child.inputs_digest, running.inputs_digest);
    assert_eq!(stored_child.state, ExecutionState::Pending);
    assert_eq!(
        f.store.get(&f.tenant, &running.id).await.unwrap().state,
        ExecutionState::Cancelled,
        "replay leaves the original untouched"
    );

    // Replay of the replay keeps the root.
    f.host_transition(&child.id, ExecutionState::Running)
        .await
        .unwrap();
    f.host_transition(&child.id, ExecutionState::Failed)
        .await
        .unwrap();
    let again = f
        .service
        .perform(f.request(&op, ActionKind::Replay, &child.id, "k-replay-2"))
        .await
        .unwrap()
        .replay
        .unwrap();
    assert_eq!(again.parent, child.id);
    assert_eq!(again.root, running.id, "root is the first of the lineage");

    let audit = f.audit().await;
    assert_eq!(audit.len(), 4, "one audit event per accepted action");
    assert!(audit.iter().all(|e| e.kind == "mc.exec.action"));
    // Spec §5.7's {action, reason}, and for a retry or replay the attempt it started.
    assert_eq!(
        audit[0].data,
        serde_json::json!({"action": "retry", "reason": "transient_error",
                           "started": {"executionId": "exec_failed", "attempt": 2}})
    );
    assert_eq!(audit[1].data["action"], "cancel");
    assert!(
        audit[1].data.get("started").is_none(),
        "a cancel starts nothing"
    );
    assert_eq!(audit[0].actor.sub.as_str(), "alice@company");
    assert_eq!(audit[0].id, retry.audit_event_id);
    assert_eq!(audit[1].subject.execution_id.as_ref(), Some(&running.id));
    verify_chain(&audit).unwrap();
}

#[tokio::test]
async fn guards_are_typed_errors_and_write_nothing() {
    let f = Fixture::new().await;
    let failed = f.execution("exec_1", ExecutionState::Failed).await;
    let op = operator();

    // Empty reason.
    let mut r = f.request(&op, ActionKind::Retry, &failed.id, "k1");
    r.reason = "   ".into();
    assert!(matches!(
        f.service.perform(r).await,
        Err(ActionError::InvalidRequest {
            field: "reason",
            ..
        })
    ));

    // Viewer.
    let v = viewer();
    let err = f
        .service
        .perform(f.request(&v, ActionKind::Retry, &failed.id, "k2"))
        .await
        .unwrap_err();
    let ActionError::NotAllowed { reasons } = &err else {
        panic!("viewer must be NotAllowed, got {err:?}");
    };
    assert!(reasons[0].contains("viewer"), "{reasons:?}");

    // Operator without step-up.
    let mut r = f.request(&op, ActionKind::Retry, &failed.id, "k3");
    r.step_up = None;
    assert!(matches!(
        f.service.perform(r).await,
        Err(ActionError::StepUpRequired {
            action: ActionKind::Retry,
            ..
        })
    ));

    // Step-up bound to another action / execution / actor; expired.
    let mut r = f.request(&op, ActionKind::Retry, &failed.id, "k4");
    r.step_up = Some(f.grant(&op, ActionKind::Cancel, &failed.id));
    assert_eq!(
        f.service.perform(r).await,
        Err(ActionError::StepUpRejected(StepUpError::Mismatch {
            field: "action"
        }))
    );
    let mut r = f.request(&op, ActionKind::Retry, &failed.id, "k5");
    r.step_up = Some(f.grant(
        &op,
        ActionKind::Retry,
        &ExecutionId::new("exec_other").unwrap(),
    ));
    assert_eq!(
        f.service.perform(r).await,
        Err(ActionError::StepUpRejected(StepUpError::Mismatch {
            field: "execution"
        }))
    );
    let r = f.request(&op, ActionKind::Retry, &failed.id, "k6");
    f.clock.advance(time::Duration::minutes(6));
    assert_eq!(
        f.service.perform(r).await,
        Err(ActionError::StepUpRejected(StepUpError::Expired))
    );

    // Illegal in state: cancel a failed execution; retry a running one.
    assert_eq!(
        f.service
            .perform(f.request(&op, ActionKind::Cancel, &failed.id, "k7"))
            .await,
        Err(ActionError::NotAllowedInState {
            action: ActionKind::Cancel,
            state: ExecutionState::Failed
        })
    );
    let running = f.execution("exec_2", ExecutionState::Running).await;
    assert!(matches!(
        f.service
            .perform(f.request(&op, ActionKind::Retry, &running.id, "k8"))
            .await,
        Err(ActionError::NotAllowedInState { .. })
    ));
    assert!(matches!(
        f.service
            .perform(f.request(&op, ActionKind::Replay, &running.id, "k9"))
            .await,
        Err(ActionError::NotAllowedInState { .. })
    ));

    // Unknown execution, and an actor of another tenant.
    assert!(matches!(
        f.service
            .perform(f.request(
                &op,
                ActionKind::Retry,
                &ExecutionId::new("nope").unwrap(),
                "k10"
            ))
            .await,
        Err(ActionError::NotFound { .. })
    ));
    let mut foreign = op.clone();
    foreign.tenant = TenantId::new("globex").unwrap();
    let mut r = f.request(&op, ActionKind::Retry, &failed.id, "k11");
    r.actor = foreign;
    assert!(matches!(
        f.service.perform(r).await,
        Err(ActionError::NotAllowed { .. })
    ));

    // Flag off: the console is read-only.
    f.flags
        .set(&f.tenant, Flag::ConsoleActionsEnabled, false)
        .await
        .unwrap();
    assert!(matches!(
        f.service
            .perform(f.request(&op, ActionKind::Retry, &failed.id, "k12"))
            .await,
        Err(ActionError::FlagDisabled {
            flag: Flag::ConsoleActionsEnabled,
            ..
        })
    ));

    assert!(
        f.audit().await.is_empty(),
        "no refused action writes an audit event"
    );
    assert_eq!(
        f.store.get(&f.tenant, &failed.id).await.unwrap().state,
        ExecutionState::Failed
    );
}

#[tokio::test]
async fn same_key_returns_first_outcome_without_second_event() {
    let f = Fixture::new().await;
    let failed = f.execution("exec_1", ExecutionState::Failed).await;
    let op = operator();
    let first = f
        .service
        .perform(f.request(&op, ActionKind::Retry, &failed.id, "same-key"))
        .await
        .unwrap();
    assert!(!first.idempotent_replay);

    // The client retries the same request (its grant was already consumed, and
    // the execution is no longer failed): the first outcome comes back.
    let mut again_req = f.request(&op, ActionKind::Retry, &failed.id, "same-key");
    again_req.step_up = None;
    let again = f.service.perform(again_req).await.unwrap();
    assert!(again.idempotent_replay);
    assert_eq!(
        ActionOutcome {
            idempotent_replay: false,
            ..again
        },
        first
    );
    assert_eq!(f.audit().await.len(), 1);

    // Same key, different request.
    let mut other = f.request(&op, ActionKind::Retry, &failed.id, "same-key");
    other.reason = "something else".into();
    assert!(matches!(
        f.service.perform(other).await,
        Err(ActionError::IdempotencyConflict { .. })
    ));
    assert_eq!(f.audit().await.len(), 1);
}

#[tokio::test]
async fn allowed_actions_view_for_the_console() {
    let f = Fixture::new().await;
    let failed = f.execution("exec_1", ExecutionState::Failed).await;
    let view = f
        .service
        .allowed_actions(&operator(), &f.tenant, &failed.id)
        .await
        .unwrap();
    let by: BTreeMap<_, _> = view.iter().map(|a| (a.action, a)).collect();
    assert!(!by[&ActionKind::Cancel].allowed);
    assert!(
        by[&ActionKind::Cancel]
            .reason
            .as_ref()
            .unwrap()
            .contains("failed")
    );
    assert!(by[&ActionKind::Retry].allowed);
    assert!(by[&ActionKind::Retry].step_up_required);
    assert!(by[&ActionKind::Retry].confirmation.contains("attempt 2"));
    assert!(by[&ActionKind::Replay].allowed);
    assert!(!by[&ActionKind::Replay].rollback_hint.is_empty());

    let view = f
        .service
        .allowed_actions(&viewer(), &f.tenant, &failed.id)
        .await
        .unwrap();
    assert!(view.iter().all(|a| !a.allowed));

    f.flags
        .set(&f.tenant, Flag::ConsoleActionsEnabled, false)
        .await
        .unwrap();
    let view = f
        .service
        .allowed_actions(&operator(), &f.tenant, &failed.id)
        .await
        .unwrap();
    assert!(view.iter().all(|a| {
        !a.allowed
            && a.reason
                .as_ref()
                .unwrap()
                .contains("console_actions_enabled")
    }));
}

#[tokio::test]
async fn step_up_outage_blocks_writes_but_not_reads() {
    let f = Fixture::new().await;
    let failed = f.execution("exec_1", ExecutionState::Failed).await;
    f.step_up.set_available(false);
    let err = f
        .service
        .perform(f.request(&operator(), ActionKind::Retry, &failed.id, "k"))
        .await
        .unwrap_err();
    assert!(matches!(err, ActionError::StepUpUnavailable(_)));
    assert!(err.to_string().contains("read-only"));
    // Reads keep working.
    assert_eq!(
        f.service
            .allowed_actions(&operator(), &f.tenant, &failed.id)
            .await
            .unwrap()
            .len(),
        3
    );
    assert_eq!(
        f.store.get(&f.tenant, &failed.id).await.unwrap().state,
        ExecutionState::Failed
    );
}

#[tokio::test]
async fn bulk_actions_have_own_outcomes_and_a_rate_cap() {
    let f = Fixture::new().await;
    let op = operator();
    let mut reqs = Vec::new();
    for i in 0..5 {
        let e = f
            .execution(&format!("bulk_{i}"), ExecutionState::Running)
            .await;
        reqs.push(f.request(&op, ActionKind::Cancel, &e.id, &format!("bulk-key-{i}")));
    }
    // One of them is illegal: already cancelled by the host.
    f.host_transition(&reqs[1].execution_id, ExecutionState::Cancelled)
        .await
        .unwrap();
    let cap = RateCap {
        max: 4,
        per: time::Duration::minutes(1),
    };
    let items = f.service.perform_many(reqs.clone(), cap).await;
    assert_eq!(items.len(), 5);
    assert_eq!(items[0].execution_id, reqs[0].execution_id, "order is kept");
    assert!(items[0].result.is_ok());
    assert!(matches!(
        items[1].result,
        Err(ActionError::NotAllowedInState { .. })
    ));
    assert!(items[2].result.is_ok());
    assert!(items[3].result.is_ok());
    let Err(ActionError::RateLimited { retry_after }) = &items[4].result else {
        panic!("the 5th item exceeds the cap: {:?}", items[4].result);
    };
    assert_eq!(retry_after.as_secs(), 60);

    // After the window, the refused item goes through.
    f.clock.advance(time::Duration::minutes(1));
    let last = f.request(&op, ActionKind::Cancel, &reqs[4].execution_id, "bulk-key-4");
    let items = f.service.perform_many(vec![last], cap).await;
    assert!(items[0].result.is_ok(), "{:?}", items[0].result);
    assert_eq!(f.audit().await.len(), 4);
}

/// A recorder that remembers histogram names and values.
/// (metric name, labels, value)
type Sample = (String, Vec<(String, String)>, f64);

#[derive(Default, Clone)]
struct Recorded(Arc<Mutex<Vec<Sample>>>);

struct Hist {
    key: metrics::Key,
    sink: Recorded,
}

impl metrics::HistogramFn for Hist {
    fn record(&self, value: f64) {
        let labels = self
            .key
            .labels()
            .map(|l| (l.key().to_string(), l.value().to_string()))
            .collect();
        self.sink
            .0
            .lock()
            .unwrap()
            .push((self.key.name().to_string(), labels, value));
    }
}

impl metrics::Recorder for Recorded {
    fn describe_counter(
        &self,
        _: metrics::KeyName,
        _: Option<metrics::Unit>,
        _: metrics::SharedString,
    ) {
    }
    fn describe_gauge(
        &self,
        _: metrics::KeyName,
        _: Option<metrics::Unit>,
        _: metrics::SharedString,
    ) {
    }
    fn describe_histogram(
        &self,
        _: metrics::KeyName,
        _: Option<metrics::Unit>,
        _: metrics::SharedString,
    ) {
    }
    fn register_counter(&self, _: &metrics::Key, _: &metrics::Metadata<'_>) -> metrics::Counter {
        metrics::Counter::noop()
    }
    fn register_gauge(&self, _: &metrics::Key, _: &metrics::Metadata<'_>) -> metrics::Gauge {
        metrics::Gauge::noop()
    }
    fn register_histogram(
        &self,
        key: &metrics::Key,
        _: &metrics::Metadata<'_>,
    ) -> metrics::Histogram {
        metrics::Histogram::from_arc(Arc::new(Hist {
            key: key.clone(),
            sink: self.clone(),
        }))
    }
}

#[test]
fn every_attempt_records_action_latency() {
    let rec = Recorded::default();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    metrics::with_local_recorder(&rec, || {
        rt.block_on(async {
            let f = Fixture::new().await;
            let failed = f.execution("exec_1", ExecutionState::Failed).await;
            f.service
                .perform(f.request(&operator(), ActionKind::Retry, &failed.id, "m1"))
                .await
                .unwrap();
            let _ = f
                .service
                .perform(f.request(&viewer(), ActionKind::Retry, &failed.id, "m2"))
                .await;
        })
    });
    let got = rec.0.lock().unwrap().clone();
    assert_eq!(got.len(), 2, "{got:?}");
    assert!(
        got.iter()
            .all(|(n, _, v)| n == ACTION_LATENCY_METRIC && *v >= 0.0)
    );
    let outcomes: Vec<_> = got
        .iter()
        .map(|(_, l, _)| l.iter().find(|(k, _)| k == "outcome").unwrap().1.clone())
        .collect();
    assert_eq!(outcomes, ["accepted", "not_allowed"]);
}
