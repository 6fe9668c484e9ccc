//! `mc demo`: the Controlled Actions story on the in-memory default.

use std::io::Write as _;
use std::process::ExitCode;
use std::sync::Arc;

use mc_actions::{ActionError, ActionRequest, ActionService, HmacStepUp};
use mc_core::{
    ActionCommit, ActionKind, Actor, ActorId, AuditLog, Clock, Digest, Execution, ExecutionId,
    ExecutionState, ExecutionStore, Flag, FlagStore, IdempotencyKey, ManualClock, MemoryFlagStore,
    MemoryStore, StepUpBinding, TenantId, verify_chain,
};
use time::macros::datetime;

/// Arguments of `mc demo`.
#[derive(Debug, clap::Args)]
pub struct DemoArgs {
    /// Also write the audit log as JSON lines, one event per line, exactly as stored.
    #[arg(long, value_name = "FILE")]
    pub audit_out: Option<std::path::PathBuf>,
}

/// Runs the demo; exit code 1 if any step does not behave as the story says.
pub fn run(args: DemoArgs) -> ExitCode {
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("mc demo: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match rt.block_on(story(args)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("mc demo: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn step(n: u32, title: &str) {
    println!("\n── {n}. {title}");
}

fn expect_refusal(
    r: Result<mc_actions::ActionOutcome, ActionError>,
    want: fn(&ActionError) -> bool,
) -> anyhow::Result<()> {
    match r {
        Err(e) if want(&e) => {
            println!("   refused [{}]: {e}", e.code());
            Ok(())
        }
        Err(e) => anyhow::bail!("refused for the wrong reason: {e}"),
        Ok(o) => anyhow::bail!("expected a refusal, got {o:?}"),
    }
}

async fn host_transition(
    store: &MemoryStore,
    clock: &ManualClock,
    tenant: &TenantId,
    id: &ExecutionId,
    to: ExecutionState,
) -> anyhow::Result<()> {
    let cur = store.get(tenant, id).await?;
    store
        .commit(ActionCommit::runtime_transition(&cur, to, clock.now()))
        .await?;
    println!("   runtime: {id} {} -> {to}", cur.state);
    Ok(())
}

async fn story(args: DemoArgs) -> anyhow::Result<()> {
    let store = MemoryStore::new();
    let flags = MemoryFlagStore::new();
    let clock = ManualClock::new(datetime!(2025-12-10 18:04:21 UTC));
    let step_up = Arc::new(HmacStepUp::new(
        b"mc demo step-up key, 32 bytes!!!".to_vec(),
    ));
    let service = ActionService::new(
        Arc::new(store.clone()),
        Arc::new(flags.clone()),
        step_up.clone(),
        Arc::new(clock.clone()),
    );
    let tenant = TenantId::new("acme")?;
    let alice = Actor::new(ActorId::new("alice@company")?, tenant.clone(), ["operator"]);
    let victor = Actor::new(ActorId::new("victor@company")?, tenant.clone(), ["viewer"]);

    println!(
        "Maestro Conductor {} — Controlled Actions demo (in-memory stores)",
        env!("CARGO_PKG_VERSION")
    );

    step(1, "Tenant `acme` and its flags");
    flags
        .set(&tenant, Flag::ConsoleActionsEnabled, true)
        .await?;
    for (flag, on) in flags.all(&tenant).await? {
        println!("   {flag:<24} {}", if on { "on" } else { "off" });
    }

    step(2, "An execution runs and fails");
    let exec_id = ExecutionId::new("exec_123")?;
    let exec = Execution::new(
        tenant.clone(),
        exec_id.clone(),
        Digest::of(b"workflow: nightly-settlement v7"),
        Digest::of(b"{\"date\":\"2025-12-10\"}"),
        clock.now(),
    )
    .with_label("team", "payments");
    let mut unit = ActionCommit::new(tenant.clone(), clock.now());
    unit.create = Some(exec);
    store.commit(unit).await?;
    println!("   created {exec_id} (pending)");
    host_transition(&store, &clock, &tenant, &exec_id, ExecutionState::Running).await?;
    host_transition(&store, &clock, &tenant, &exec_id, ExecutionState::Failed).await?;

    let retry_req = |actor: &Actor, key: &str| -> anyhow::Result<ActionRequest> {
        Ok(ActionRequest {
            tenant: tenant.clone(),
            execution_id: exec_id.clone(),
            kind: ActionKind::Retry,
            actor: actor.clone(),
            reason: "transient_error".into(),
            idempotency_key: IdempotencyKey::new(key)?,
            step_up: None,
        })
    };

    step(3, "What the console offers alice (operator)");
    for a in service.allowed_actions(&alice, &tenant, &exec_id).await? {
        println!(
            "   {:<7} {:<8} step-up: {:<3} {}",
            a.action.as_str(),
            if a.allowed { "enabled" } else { "disabled" },
            if a.step_up_required { "yes" } else { "no" },
            a.reason.unwrap_or(a.confirmation)
        );
    }

    step(4, "victor (viewer) tries to retry");
    expect_refusal(
        service.perform(retry_req(&victor, "victor-1")?).await,
        |e| matches!(e, ActionError::NotAllowed { .. }),
    )?;

    step(5, "alice (operator) retries without step-up");
    expect_refusal(
        service.perform(retry_req(&alice, "retry-7f3a")?).await,
        |e| matches!(e, ActionError::StepUpRequired { .. }),
    )?;

    step(
        6,
        "alice completes a step-up ceremony for exactly this action",
    );
    let binding = StepUpBinding {
        tenant: tenant.clone(),
        actor: alice.sub.clone(),
        action: ActionKind::Retry,
        execution_id: exec_id.clone(),
    };
    let grant = step_up.issue(&binding, clock.now());
    println!(
        "   grant bound to acme / alice@company / retry / exec_123, single use, expires in 5m"
    );

    step(7, "retry with the grant: accepted");
    let mut req = retry_req(&alice, "retry-7f3a")?;
    req.step_up = Some(grant);
    let first = service.perform(req).await?;
    println!("   202 Accepted {}", serde_json::to_string(&first)?);

    step(8, "the same retry again (same Idempotency-Key)");
    let again = service.perform(retry_req(&alice, "retry-7f3a")?).await?;
    println!("   202 Accepted {}", serde_json::to_string(&again)?);
    anyhow::ensure!(
        again.idempotent_replay,
        "the repeat must be answered from the record"
    );
    anyhow::ensure!(again.audit_event_id == first.audit_event_id, "same outcome");
    println!("   → first outcome returned, no second effect, no second audit event");

    step(
        9,
        "attempt 2 fails too; alice replays it as a new execution",
    );
    host_transition(&store, &clock, &tenant, &exec_id, ExecutionState::Running).await?;
    host_transition(&store, &clock, &tenant, &exec_id, ExecutionState::Failed).await?;
    clock.advance(time::Duration::seconds(42));
    let binding = StepUpBinding {
        action: ActionKind::Replay,
        ..binding
    };
    let replay = service
        .perform(ActionRequest {
            kind: ActionKind::Replay,
            reason: "replay after upstream fix".into(),
            idempotency_key: IdempotencyKey::new("replay-91c2")?,
            step_up: Some(step_up.issue(&binding, clock.now())),
            ..retry_req(&alice, "unused")?
        })
        .await?;
    let child = replay
        .replay
        .as_ref()
        .ok_or_else(|| anyhow::anyhow!("replay must name the new execution"))?;
    println!(
        "   202 Accepted: new execution {} (parent {}, root {})",
        child.id, child.parent, child.root
    );
    let stored = store.get(&tenant, &child.id).await?;
    anyhow::ensure!(
        stored.manifest_digest.as_str()
            == store.get(&tenant, &exec_id).await?.manifest_digest.as_str()
    );
    println!(
        "   same manifest {}… and inputs {}…",
        &stored.manifest_digest.as_str()[..12],
        &stored.inputs_digest.as_str()[..12]
    );

    step(10, "the audit chain of tenant acme");
    let events = store.read(&tenant, 0, 1000).await?;
    for e in &events {
        println!("   {}", serde_json::to_string(e)?);
    }
    verify_chain(&events)?;
    let n = store.verify(&tenant).await?;
    println!(
        "   chain verified: {n} events, head {}…",
        &events[events.len() - 1].hash[..16]
    );
    anyhow::ensure!(n == 2, "two accepted actions, two events");

    let mut tampered = events.clone();
    tampered[0].data["reason"] = serde_json::json!("nothing to see here");
    match verify_chain(&tampered) {
        Err(e) => println!("   editing event 1 is detected: {e}"),
        Ok(()) => anyhow::bail!("tampering went undetected"),
    }

    if let Some(path) = args.audit_out {
        let mut out = std::io::BufWriter::new(std::fs::File::create(&path)?);
        for e in &events {
            serde_json::to_writer(&mut out, e)?;
            out.write_all(b"\n")?;
        }
        out.flush()?;
        println!(
            "   audit log written to {} ({} lines)",
            path.display(),
            events.len()
        );
    }
    println!("\nDone.");
    Ok(())
}
