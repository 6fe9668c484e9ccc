//! A host orchestrator embedding Controlled Actions on the in-memory defaults.
//!
//! `cargo run -p mc-examples --example controlled_actions`

use std::sync::Arc;

use mc_actions::{ActionRequest, ActionService, HmacStepUp};
use mc_core::*;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    // The host owns the stores and the clock; MC only sees the traits.
    let store = MemoryStore::new();
    let flags = MemoryFlagStore::new();
    let clock = SystemClock;
    let step_up = Arc::new(HmacStepUp::new(
        b"host-provided secret, 32 bytes!!".to_vec(),
    ));
    let service = ActionService::new(
        Arc::new(store.clone()),
        Arc::new(flags.clone()),
        step_up.clone(),
        Arc::new(clock),
    );

    let tenant = TenantId::new("acme")?;
    flags
        .set(&tenant, Flag::ConsoleActionsEnabled, true)
        .await?;

    // The runtime registers an execution and reports its progress.
    let id = ExecutionId::new("exec_42")?;
    let exec = Execution::new(
        tenant.clone(),
        id.clone(),
        Digest::of(b"manifest"),
        Digest::of(b"inputs"),
        clock.now(),
    );
    let mut unit = ActionCommit::new(tenant.clone(), clock.now());
    unit.create = Some(exec);
    store.commit(unit).await?;
    for to in [ExecutionState::Running, ExecutionState::Failed] {
        let cur = store.get(&tenant, &id).await?;
        store
            .commit(ActionCommit::runtime_transition(&cur, to, clock.now()))
            .await?;
    }

    // An operator retries it from the console after a step-up ceremony.
    let alice = Actor::new(ActorId::new("alice@company")?, tenant.clone(), ["operator"]);
    let grant = step_up.issue(
        &StepUpBinding {
            tenant: tenant.clone(),
            actor: alice.sub.clone(),
            action: ActionKind::Retry,
            execution_id: id.clone(),
        },
        clock.now(),
    );
    let outcome = service
        .perform(ActionRequest {
            tenant: tenant.clone(),
            execution_id: id.clone(),
            kind: ActionKind::Retry,
            actor: alice,
            reason: "transient_error".into(),
            idempotency_key: IdempotencyKey::new("console-retry-1")?,
            step_up: Some(grant),
        })
        .await?;
    println!("accepted: {}", serde_json::to_string_pretty(&outcome)?);

    let events = store.read(&tenant, 0, 100).await?;
    verify_chain(&events)?;
    println!(
        "audit chain of {tenant}: {} event(s), verified",
        events.len()
    );
    Ok(())
}
