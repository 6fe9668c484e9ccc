//! Action round-trip on the in-memory stores: guards + step-up verify + commit +
//! audit hash. Prints p50/p95 of individual actions besides criterion's report.
//!
//! Run: `cargo bench -p mc-actions`. Figure to reach: p95 <= 200 µs.

use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use mc_actions::{ActionRequest, ActionService, HmacStepUp};
use mc_core::*;
use time::macros::datetime;

struct Bench {
    store: MemoryStore,
    clock: ManualClock,
    step_up: Arc<HmacStepUp>,
    service: ActionService,
    tenant: TenantId,
    actor: Actor,
    n: u64,
}

impl Bench {
    async fn new() -> Self {
        let store = MemoryStore::new();
        let flags = MemoryFlagStore::new();
        let clock = ManualClock::new(datetime!(2025-12-10 18:00 UTC));
        let step_up = Arc::new(HmacStepUp::new(vec![7; 32]));
        let tenant = TenantId::new("acme").unwrap();
        flags
            .set(&tenant, Flag::ConsoleActionsEnabled, true)
            .await
            .unwrap();
        let service = ActionService::new(
            Arc::new(store.clone()),
            Arc::new(flags),
            step_up.clone(),
            Arc::new(clock.clone()),
        );
        let actor = Actor::new(
            ActorId::new("alice@company").unwrap(),
            tenant.clone(),
            ["operator"],
        );
        Bench {
            store,
            clock,
            step_up,
            service,
            tenant,
            actor,
            n: 0,
        }
    }

    /// Prepares a running execution and a cancel request for it (not timed).
    async fn prepare(&mut self) -> ActionRequest {
        self.n += 1;
        let id = ExecutionId::new(format!("exec_{}", self.n)).unwrap();
        let mut e = Execution::new(
            self.tenant.clone(),
            id.clone(),
            Digest::of(b"m"),
            Digest::of(b"i"),
            self.clock.now(),
        );
        e.state = ExecutionState::Running;
        let mut unit = ActionCommit::new(self.tenant.clone(), self.clock.now());
        unit.create = Some(e);
        self.store.commit(unit).await.unwrap();
        let grant = self.step_up.issue(
            &StepUpBinding {
                tenant: self.tenant.clone(),
                actor: self.actor.sub.clone(),
                action: ActionKind::Cancel,
                execution_id: id.clone(),
            },
            self.clock.now(),
        );
        ActionRequest {
            tenant: self.tenant.clone(),
            execution_id: id,
            kind: ActionKind::Cancel,
            actor: self.actor.clone(),
            reason: "stuck in provisioning".into(),
            idempotency_key: IdempotencyKey::new(format!("key-{}", self.n)).unwrap(),
            step_up: Some(grant),
        }
    }
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 * p).ceil() as usize)
        .saturating_sub(1)
        .min(sorted.len() - 1)]
}

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let mut b = rt.block_on(Bench::new());

    // Explicit percentiles over 20,000 individual actions.
    let mut samples = Vec::with_capacity(20_000);
    for _ in 0..20_000 {
        let req = rt.block_on(b.prepare());
        let t = Instant::now();
        rt.block_on(b.service.perform(req)).unwrap();
        samples.push(t.elapsed());
    }
    samples.sort();
    println!(
        "action round-trip (in-memory, 20000 actions): p50 = {:?}, p95 = {:?}, p99 = {:?} (goal p95 <= 200µs)",
        percentile(&samples, 0.50),
        percentile(&samples, 0.95),
        percentile(&samples, 0.99)
    );

    c.bench_function("cancel round-trip (in-memory)", |bench| {
        bench.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let req = rt.block_on(b.prepare());
                let t = Instant::now();
                rt.block_on(b.service.perform(req)).unwrap();
                total += t.elapsed();
            }
            total
        })
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
