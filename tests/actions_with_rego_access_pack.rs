//! Controlled Actions decided by the shipped Rego `access` pack (`policy/access`)
//! instead of the built-in role rule: same outcomes for operator and viewer, the
//! pack's reasons surface in `NotAllowed`, and `admin` (break-glass) is allowed.

use std::path::Path;
use std::sync::Arc;

use mc_actions::{
    ActionError, ActionPolicy, ActionRequest, ActionService, HmacStepUp, RegoActionPolicy,
};
use mc_core::*;
use time::macros::datetime;

fn pack() -> RegoActionPolicy {
    RegoActionPolicy::load(&Path::new(env!("CARGO_MANIFEST_DIR")).join("../policy/access"))
        .expect("the shipped access pack loads")
}

#[test]
fn pack_decisions_match_the_role_rule() {
    let policy = pack();
    let tenant = TenantId::new("acme").unwrap();
    let exec = Execution::new(
        tenant.clone(),
        ExecutionId::new("exec_1").unwrap(),
        Digest::of(b"m"),
        Digest::of(b"i"),
        datetime!(2025-12-10 18:00 UTC),
    );
    let role_rule = mc_actions::RolePolicy::default();
    for roles in [
        vec!["operator"],
        vec!["viewer"],
        vec![],
        vec!["viewer", "operator"],
    ] {
        let actor = Actor::new(
            ActorId::new("alice@company").unwrap(),
            tenant.clone(),
            roles.clone(),
        );
        for action in ActionKind::ALL {
            let rego = policy.decide(&actor, action, &exec);
            let builtin = role_rule.decide(&actor, action, &exec);
            assert_eq!(rego.allowed, builtin.allowed, "{roles:?} {action}");
            assert!(rego.step_up_required, "every write needs step-up");
        }
    }
    let admin = Actor::new(
        ActorId::new("root@company").unwrap(),
        tenant.clone(),
        ["admin"],
    );
    assert!(
        policy.decide(&admin, ActionKind::Cancel, &exec).allowed,
        "admin is break-glass"
    );

    // Another tenant's actor is refused before the pack is asked.
    let foreign = Actor::new(
        ActorId::new("eve@globex").unwrap(),
        TenantId::new("globex").unwrap(),
        ["operator"],
    );
    assert!(!policy.decide(&foreign, ActionKind::Cancel, &exec).allowed);
}

#[tokio::test]
async fn action_service_with_the_access_pack() {
    let clock = ManualClock::new(datetime!(2025-12-10 18:00 UTC));
    let store = MemoryStore::new();
    let flags = MemoryFlagStore::new();
    let step_up = Arc::new(HmacStepUp::new(vec![3; 32]));
    let service = ActionService::new(
        Arc::new(store.clone()),
        Arc::new(flags.clone()),
        step_up.clone(),
        Arc::new(clock.clone()),
    )
    .with_policy(Arc::new(pack()));
    let tenant = TenantId::new("acme").unwrap();
    flags
        .set(&tenant, Flag::ConsoleActionsEnabled, true)
        .await
        .unwrap();
    let id = ExecutionId::new("exec_1").unwrap();
    let mut e = Execution::new(
        tenant.clone(),
        id.clone(),
        Digest::of(b"m"),
        Digest::of(b"i"),
        clock.now(),
    );
    e.state = ExecutionState::Running;
    let mut unit = ActionCommit::new(tenant.clone(), clock.now());
    unit.create = Some(e);
    store.commit(unit).await.unwrap();

    let req = |actor: &Actor, key: &str| ActionRequest {
        tenant: tenant.clone(),
        execution_id: id.clone(),
        kind: ActionKind::Cancel,
        actor: actor.clone(),
        reason: "runaway".into(),
        idempotency_key: IdempotencyKey::new(key).unwrap(),
        step_up: Some(step_up.issue(
            &StepUpBinding {
                tenant: tenant.clone(),
                actor: actor.sub.clone(),
                action: ActionKind::Cancel,
                execution_id: id.clone(),
            },
            clock.now(),
        )),
    };
    let viewer = Actor::new(
        ActorId::new("victor@company").unwrap(),
        tenant.clone(),
        ["viewer"],
    );
    let Err(ActionError::NotAllowed { reasons }) = service.perform(req(&viewer, "v")).await else {
        panic!("viewer must be refused by the pack");
    };
    assert!(
        reasons.iter().any(|r| r.contains("may not cancel")),
        "{reasons:?}"
    );

    let operator = Actor::new(
        ActorId::new("alice@company").unwrap(),
        tenant.clone(),
        ["operator"],
    );
    let mut no_grant = req(&operator, "o");
    no_grant.step_up = None;
    assert!(matches!(
        service.perform(no_grant).await,
        Err(ActionError::StepUpRequired { .. })
    ));
    let ok = service.perform(req(&operator, "o")).await.unwrap();
    assert_eq!(ok.state, ExecutionState::Cancelled);
}
