//! Shared fixture for mc-actions tests.
#![allow(dead_code, missing_docs)]

use std::sync::Arc;

use mc_actions::{ActionRequest, ActionService, HmacStepUp};
use mc_core::*;
use time::macros::datetime;

pub struct Fixture {
    pub store: MemoryStore,
    pub flags: MemoryFlagStore,
    pub clock: ManualClock,
    pub step_up: Arc<HmacStepUp>,
    pub service: ActionService,
    pub tenant: TenantId,
}

pub fn tenant() -> TenantId {
    TenantId::new("acme").unwrap()
}

pub fn operator() -> Actor {
    Actor::new(
        ActorId::new("alice@company").unwrap(),
        tenant(),
        ["operator"],
    )
}

pub fn viewer() -> Actor {
    Actor::new(
        ActorId::new("victor@company").unwrap(),
        tenant(),
        ["viewer"],
    )
}

impl Fixture {
    pub async fn new() -> Self {
        let store = MemoryStore::new();
        let flags = MemoryFlagStore::new();
        let clock = ManualClock::new(datetime!(2025-12-10 18:00 UTC));
        let step_up = Arc::new(HmacStepUp::new(vec![42; 32]));
        let t = tenant();
        flags
            .set(&t, Flag::ConsoleActionsEnabled, true)
            .await
            .unwrap();
        let service = ActionService::new(
            Arc::new(store.clone()),
            Arc::new(flags.clone()),
            step_up.clone(),
            Arc::new(clock.clone()),
        );
        Fixture {
            store,
            flags,
            clock,
            step_up,
            service,
            tenant: t,
        }
    }

    /// Creates an execution and drives it (as the host would) into `state`.
    pub async fn execution(&self, id: &str, state: ExecutionState) -> Execution {
        let e = Execution::new(
            self.tenant.clone(),
            ExecutionId::new(id).unwrap(),
            Digest::of(b"manifest"),
            Digest::of(id.as_bytes()),
            self.clock.now(),
        );
        let mut unit = ActionCommit::new(self.tenant.clone(), self.clock.now());
        unit.create = Some(e.clone());
        self.store.commit(unit).await.unwrap();
        let path: &[ExecutionState] = match state {
            ExecutionState::Pending => &[],
            ExecutionState::Running => &[ExecutionState::Running],
            ExecutionState::Succeeded => &[ExecutionState::Running, ExecutionState::Succeeded],
            ExecutionState::Failed => &[ExecutionState::Running, ExecutionState::Failed],
            ExecutionState::Cancelled => &[ExecutionState::Cancelled],
        };
        for to in path {
            self.host_transition(&e.id, *to).await.unwrap();
        }
        self.store.get(&self.tenant, &e.id).await.unwrap()
    }

    /// A runtime-driven transition (no audit event, no idempotency).
    pub async fn host_transition(
        &self,
        id: &ExecutionId,
        to: ExecutionState,
    ) -> Result<CommitResult, StoreError> {
        let cur = self.store.get(&self.tenant, id).await?;
        self.store
            .commit(ActionCommit::runtime_transition(&cur, to, self.clock.now()))
            .await
    }

    pub fn grant(&self, actor: &Actor, kind: ActionKind, id: &ExecutionId) -> StepUpGrant {
        self.step_up.issue(
            &StepUpBinding {
                tenant: actor.tenant.clone(),
                actor: actor.sub.clone(),
                action: kind,
                execution_id: id.clone(),
            },
            self.clock.now(),
        )
    }

    pub fn request(
        &self,
        actor: &Actor,
        kind: ActionKind,
        id: &ExecutionId,
        key: &str,
    ) -> ActionRequest {
        ActionRequest {
            tenant: self.tenant.clone(),
            execution_id: id.clone(),
            kind,
            actor: actor.clone(),
            reason: "transient_error".into(),
            idempotency_key: IdempotencyKey::new(key).unwrap(),
            step_up: Some(self.grant(actor, kind, id)),
        }
    }

    pub async fn audit(&self) -> Vec<AuditEvent> {
        self.store.read(&self.tenant, 0, 10_000).await.unwrap()
    }
}
