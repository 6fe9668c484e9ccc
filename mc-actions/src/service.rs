//! [`ActionService`]: the guarded, idempotent, audited action pipeline.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use futures::StreamExt;
use mc_core::{
    ActionCommit, ActionKind, Actor, ActorId, Clock, CommitResult, Digest, Execution, ExecutionId,
    ExecutionState, ExecutionStore, Flag, FlagStore, IdempotencyRecord, NewAuditEvent,
    StepUpBinding, StepUpError, StepUpVerifier, StoreError, TenantId, Transition,
};
use sha2::Digest as _;
use tracing::Instrument;

use crate::error::ActionError;
use crate::policy::{ActionPolicy, RolePolicy, legal_in_state};
use crate::request::{ActionOutcome, ActionRequest, MAX_REASON_CHARS, ReplayedExecution};

/// The field of an `mc.exec.action` event's data naming the execution attempt a
/// retry or replay started: `{"executionId": "exec_1", "attempt": 2}`.
pub const STARTED_FIELD: &str = "started";

/// Name of the latency histogram (spec §6).
pub const ACTION_LATENCY_METRIC: &str = mc_core::telemetry::ACTION_LATENCY.name;

/// Performs console actions: validates, checks the flag, the policy, the state and the
/// step-up grant, then commits transition + audit event + idempotency record as one
/// unit of work.
///
/// ```
/// use std::sync::Arc;
/// use mc_actions::{ActionRequest, ActionService, HmacStepUp};
/// use mc_core::*;
/// use time::macros::datetime;
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// let store = MemoryStore::new();
/// let flags = MemoryFlagStore::new();
/// let clock = ManualClock::new(datetime!(2025-12-10 18:00 UTC));
/// let step_up = Arc::new(HmacStepUp::new(b"demo secret, 32 bytes long......".to_vec()));
/// let tenant = TenantId::new("acme").unwrap();
/// flags.set(&tenant, Flag::ConsoleActionsEnabled, true).await.unwrap();
///
/// let exec = Execution::new(tenant.clone(), ExecutionId::new("exec_1").unwrap(),
///     Digest::of(b"m"), Digest::of(b"i"), clock.now());
/// let mut unit = ActionCommit::new(tenant.clone(), clock.now());
/// unit.create = Some(exec.clone());
/// store.commit(unit).await.unwrap();
///
/// let service = ActionService::new(Arc::new(store), Arc::new(flags), step_up.clone(),
///     Arc::new(clock.clone()));
/// let actor = Actor::new(ActorId::new("alice@company").unwrap(), tenant.clone(), ["operator"]);
/// let grant = step_up.issue(&StepUpBinding { tenant: tenant.clone(), actor: actor.sub.clone(),
///     action: ActionKind::Cancel, execution_id: exec.id.clone() }, clock.now());
/// let outcome = service.perform(ActionRequest {
///     tenant, execution_id: exec.id, kind: ActionKind::Cancel, actor,
///     reason: "stuck".into(), idempotency_key: IdempotencyKey::new("k1").unwrap(),
///     step_up: Some(grant),
/// }).await.unwrap();
/// assert_eq!(outcome.state, ExecutionState::Cancelled);
/// # });
/// ```
pub struct ActionService {
    store: Arc<dyn ExecutionStore>,
    flags: Arc<dyn FlagStore>,
    step_up: Arc<dyn StepUpVerifier>,
    policy: Arc<dyn ActionPolicy>,
    clock: Arc<dyn Clock>,
    limiter: Mutex<HashMap<TenantId, (time::OffsetDateTime, u32)>>,
    observers: Vec<Arc<dyn ActionObserver>>,
}

/// Told of every action the service accepted (not of refusals, nor of idempotent
/// replays of a request already accepted), after its unit of work committed —
/// e.g. [`crate::RollbackWatch`], which then watches what a retry or replay started.
/// Called inline: keep it cheap and non-blocking.
pub trait ActionObserver: Send + Sync {
    /// `actor` of `tenant` had `outcome` accepted.
    fn accepted(&self, tenant: &TenantId, actor: &ActorId, outcome: &ActionOutcome);
}

impl std::fmt::Debug for ActionService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ActionService").finish_non_exhaustive()
    }
}

/// Per-action view for the console (MC-UI-1103): whether the button is enabled,
/// why not, whether step-up will be asked, the confirmation copy and the rollback hint.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ActionAvailability {
    /// The action.
    pub action: ActionKind,
    /// Whether the actor may perform it now.
    pub allowed: bool,
    /// Why not, when not allowed.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub reason: Option<String>,
    /// Whether a step-up ceremony is needed first.
    pub step_up_required: bool,
    /// Text of the confirmation modal.
    pub confirmation: String,
    /// How to undo or contain the action if it goes wrong.
    pub rollback_hint: String,
}

/// A rate cap for [`ActionService::perform_many`]: at most `max` actions per tenant
/// per `per` window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateCap {
    /// Actions allowed per window.
    pub max: u32,
    /// The window.
    pub per: time::Duration,
}

/// One item of a bulk action.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BulkItem {
    /// The target execution.
    pub execution_id: ExecutionId,
    /// Its own outcome.
    pub result: Result<ActionOutcome, ActionError>,
}

fn fingerprint(req: &ActionRequest) -> Digest {
    let mut h = sha2::Sha256::new();
    for part in [
        req.tenant.as_str(),
        req.execution_id.as_str(),
        req.kind.as_str(),
        req.actor.sub.as_str(),
        req.reason.trim(),
    ] {
        h.update((part.len() as u64).to_be_bytes());
        h.update(part.as_bytes());
    }
    Digest::parse_hex("fingerprint", &hex::encode(h.finalize())).expect("sha256 hex is a digest")
}

/// The id of the execution a replay creates: derived from the request so that
/// racing replicas handling the same request create the same id.
fn replay_id(req: &ActionRequest) -> ExecutionId {
    let mut h = sha2::Sha256::new();
    h.update(req.tenant.as_str());
    h.update(b"\n");
    h.update(req.execution_id.as_str());
    h.update(b"\n");
    h.update(req.idempotency_key.as_str());
    ExecutionId::new(format!("rp_{}", &hex::encode(h.finalize())[..24]))
        .expect("hex id is a valid execution id")
}

fn outcome_from_record(v: &serde_json::Value) -> Result<ActionOutcome, ActionError> {
    let mut o: ActionOutcome = serde_json::from_value(v.clone()).map_err(|e| {
        ActionError::Store(StoreError::Corrupt(format!("idempotency outcome: {e}")))
    })?;
    o.idempotent_replay = true;
    Ok(o)
}

impl ActionService {
    /// A service with the default [`RolePolicy`] (`operator` writes, step-up required).
    pub fn new(
        store: Arc<dyn ExecutionStore>,
        flags: Arc<dyn FlagStore>,
        step_up: Arc<dyn StepUpVerifier>,
        clock: Arc<dyn Clock>,
    ) -> Self {
        ActionService {
            store,
            flags,
            step_up,
            policy: Arc::new(RolePolicy::default()),
            clock,
            limiter: Mutex::new(HashMap::new()),
            observers: Vec::new(),
        }
    }

    /// Tells `observer` of every accepted action (see [`ActionObserver`]).
    pub fn with_observer(mut self, observer: Arc<dyn ActionObserver>) -> Self {
        self.observers.push(observer);
        self
    }

    /// Replaces the policy (e.g. the Rego access pack from `mc-policy`).
    pub fn with_policy(mut self, policy: Arc<dyn ActionPolicy>) -> Self {
        self.policy = policy;
        self
    }

    /// Performs one action. Records `mc_action_latency_ms` (labels `action`,
    /// `outcome`) and runs in a tracing span.
    ///
    /// # Errors
    /// Every refusal is an [`ActionError`] variant; on any error nothing was written.
    pub async fn perform(&self, req: ActionRequest) -> Result<ActionOutcome, ActionError> {
        let span = tracing::info_span!(
            "mc.action",
            tenant = %req.tenant,
            execution = %req.execution_id,
            action = %req.kind,
            actor = %req.actor.sub,
            outcome = tracing::field::Empty,
        );
        let kind = req.kind;
        let who = (!self.observers.is_empty()).then(|| (req.tenant.clone(), req.actor.sub.clone()));
        let started = Instant::now();
        let result = self.perform_inner(req).instrument(span.clone()).await;
        if let (Ok(outcome), Some((tenant, actor))) = (&result, &who)
            && !outcome.idempotent_replay
        {
            for o in &self.observers {
                o.accepted(tenant, actor, outcome);
            }
        }
        let label = match &result {
            Ok(o) if o.idempotent_replay => "replayed",
            Ok(_) => "accepted",
            Err(e) => e.code(),
        };
        span.record("outcome", label);
        metrics::histogram!(ACTION_LATENCY_METRIC, "action" => kind.as_str(), "outcome" => label)
            .record(started.elapsed().as_secs_f64() * 1000.0);
        if let Err(e) = &result {
            tracing::info!(parent: &span, error = %e, "action refused");
        }
        result
    }

    async fn perform_inner(&self, req: ActionRequest) -> Result<ActionOutcome, ActionError> {
        // 1. Shape of the request.
        let reason = req.reason.trim();
        if reason.is_empty() {
            return Err(ActionError::InvalidRequest {
                field: "reason",
                reason: "must not be empty".into(),
            });
        }
        if reason.chars().count() > MAX_REASON_CHARS {
            return Err(ActionError::InvalidRequest {
                field: "reason",
                reason: format!("longer than {MAX_REASON_CHARS} characters"),
            });
        }
        if req.actor.tenant != req.tenant {
            return Err(ActionError::NotAllowed {
                reasons: vec![format!("actor {} belongs to another tenant", req.actor.sub)],
            });
        }

        // 2. Idempotency: a repeat returns the first outcome, before any guard that
        // could have changed since (the grant was consumed, the state moved on).
        // The record and the execution come in one store call, read alongside the
        // flag; the checks below still run in order (record, flag, execution).
        let fp = fingerprint(&req);
        let (context, flag) = futures::join!(
            self.store
                .action_context(&req.tenant, &req.idempotency_key, &req.execution_id),
            self.flags
                .is_enabled(&req.tenant, Flag::ConsoleActionsEnabled)
        );
        let (record, exec) = context?;
        if let Some(rec) = record {
            return if rec.fingerprint == fp {
                outcome_from_record(&rec.outcome)
            } else {
                Err(ActionError::IdempotencyConflict {
                    key: req.idempotency_key.to_string(),
                })
            };
        }

        // 3. Flag: deny by default.
        if !flag? {
            return Err(ActionError::FlagDisabled {
                flag: Flag::ConsoleActionsEnabled,
                tenant: req.tenant.to_string(),
            });
        }

        // 4. Execution, policy, state.
        let exec = exec?;
        let decision = self.policy.decide(&req.actor, req.kind, &exec);
        if !decision.allowed {
            return Err(ActionError::NotAllowed {
                reasons: decision.reasons,
            });
        }
        if !legal_in_state(req.kind, exec.state) {
            return Err(ActionError::NotAllowedInState {
                action: req.kind,
                state: exec.state,
            });
        }

        // 5. Step-up, bound to this exact action.
        let now = self.clock.now();
        if decision.step_up_required {
            let Some(grant) = &req.step_up else {
                return Err(ActionError::StepUpRequired {
                    action: req.kind,
                    execution_id: req.execution_id.to_string(),
                });
            };
            let binding = StepUpBinding {
                tenant: req.tenant.clone(),
                actor: req.actor.sub.clone(),
                action: req.kind,
                execution_id: req.execution_id.clone(),
            };
            self.step_up
                .verify_and_consume(grant, &binding, now)
                .await
                .map_err(|e| match e {
                    StepUpError::Unavailable(m) => ActionError::StepUpUnavailable(m),
                    other => ActionError::StepUpRejected(other),
                })?;
        }

        // 6. One unit of work.
        let mut unit = ActionCommit::new(req.tenant.clone(), now);
        let (state, attempt, replay) = match req.kind {
            ActionKind::Cancel | ActionKind::Retry => {
                let (to, next_attempt) = if req.kind == ActionKind::Cancel {
                    (ExecutionState::Cancelled, false)
                } else {
                    (ExecutionState::Pending, true)
                };
                unit.transition = Some(Transition {
                    execution_id: exec.id.clone(),
                    expected_version: exec.version,
                    to,
                    next_attempt,
                });
                (to, exec.attempt + u32::from(next_attempt), None)
            }
            ActionKind::Replay => {
                let mut child = Execution::new(
                    req.tenant.clone(),
                    replay_id(&req),
                    exec.manifest_digest.clone(),
                    exec.inputs_digest.clone(),
                    now,
                );
                child.parent = Some(exec.id.clone());
                child.root = exec.root.clone();
                child.labels = exec.labels.clone();
                let replay = ReplayedExecution {
                    id: child.id.clone(),
                    parent: exec.id.clone(),
                    root: child.root.clone(),
                    state: child.state,
                };
                unit.create = Some(child);
                (exec.state, exec.attempt, Some(replay))
            }
        };
        // The event id is derived from the idempotency key (unique per tenant for
        // committed actions) so the recorded outcome can name it before the commit.
        let audit_event_id = {
            let mut h = sha2::Sha256::new();
            h.update(req.tenant.as_str());
            h.update(b"\n");
            h.update(req.idempotency_key.as_str());
            format!("evt_act_{}", &hex::encode(h.finalize())[..24])
        };
        let mut event = NewAuditEvent::exec_action(
            &req.tenant,
            &req.actor.sub,
            &req.execution_id,
            req.kind,
            reason,
            now,
        )
        .with_id(audit_event_id.clone());
        // Beyond spec §5.7's {action, reason}: which execution attempt a retry or
        // replay started, so the chain alone says what to watch (RollbackWatch::
        // recover) and an auditor can follow the lineage.
        let started = match (req.kind, &replay) {
            (ActionKind::Retry, _) => Some((&req.execution_id, attempt)),
            (ActionKind::Replay, Some(r)) => Some((&r.id, 1)),
            _ => None,
        };
        if let Some((execution, attempt)) = started
            && let Some(data) = event.data.as_object_mut()
        {
            data.insert(
                STARTED_FIELD.into(),
                serde_json::json!({ "executionId": execution, "attempt": attempt }),
            );
        }
        unit.audit.push(event);
        let outcome = ActionOutcome {
            status: "accepted".into(),
            action: req.kind,
            execution_id: req.execution_id.clone(),
            state,
            attempt,
            replay,
            audit_event_id,
            idempotent_replay: false,
        };
        unit.idempotency = Some(IdempotencyRecord {
            key: req.idempotency_key.clone(),
            fingerprint: fp,
            outcome: serde_json::to_value(&outcome).expect("outcome serialises"),
            created_at: now,
        });
        match self.store.commit(unit).await? {
            CommitResult::Committed { .. } => Ok(outcome),
            CommitResult::Replayed { outcome } => outcome_from_record(&outcome),
        }
    }

    /// What the console may offer `actor` for one execution.
    ///
    /// # Errors
    /// [`ActionError::NotFound`] for an unknown (or foreign) execution; store errors.
    pub async fn allowed_actions(
        &self,
        actor: &Actor,
        tenant: &TenantId,
        execution_id: &ExecutionId,
    ) -> Result<Vec<ActionAvailability>, ActionError> {
        let exec = self.store.get(tenant, execution_id).await?;
        let enabled = self
            .flags
            .is_enabled(tenant, Flag::ConsoleActionsEnabled)
            .await?;
        Ok(ActionKind::ALL
            .into_iter()
            .map(|action| {
                let decision = self.policy.decide(actor, action, &exec);
                let reason = if !enabled {
                    Some(format!(
                        "console actions are disabled for tenant {tenant} (flag console_actions_enabled)"
                    ))
                } else if !decision.allowed {
                    Some(decision.reasons.join("; "))
                } else if !legal_in_state(action, exec.state) {
                    Some(format!("cannot {action} an execution that is {}", exec.state))
                } else {
                    None
                };
                ActionAvailability {
                    action,
                    allowed: reason.is_none(),
                    reason,
                    step_up_required: decision.step_up_required,
                    confirmation: confirmation(action, &exec),
                    rollback_hint: rollback_hint(action).to_string(),
                }
            })
            .collect())
    }

    /// Performs many actions, each with its own outcome, in order. At most
    /// `cap.max` actions per tenant start per `cap.per` window (measured on the
    /// service's clock, shared across calls); the rest are refused with
    /// [`ActionError::RateLimited`] and may be resubmitted after `retry_after`.
    /// Up to four actions run concurrently.
    pub async fn perform_many(&self, requests: Vec<ActionRequest>, cap: RateCap) -> Vec<BulkItem> {
        let admitted: Vec<_> = requests
            .into_iter()
            .map(|r| {
                let admission = self.admit(&r.tenant, cap);
                (r, admission)
            })
            .collect();
        futures::stream::iter(admitted)
            .map(|(req, admission)| async move {
                let execution_id = req.execution_id.clone();
                let result = match admission {
                    Ok(()) => self.perform(req).await,
                    Err(e) => Err(e),
                };
                BulkItem {
                    execution_id,
                    result,
                }
            })
            .buffered(4)
            .collect()
            .await
    }

    fn admit(&self, tenant: &TenantId, cap: RateCap) -> Result<(), ActionError> {
        let now = self.clock.now();
        let mut l = self.limiter.lock().unwrap_or_else(|p| p.into_inner());
        let slot = l.entry(tenant.clone()).or_insert((now, 0));
        if now - slot.0 >= cap.per {
            *slot = (now, 0);
        }
        if slot.1 >= cap.max {
            let wait = (slot.0 + cap.per) - now;
            return Err(ActionError::RateLimited {
                retry_after: std::time::Duration::try_from(wait).unwrap_or_default(),
            });
        }
        slot.1 += 1;
        Ok(())
    }
}

fn confirmation(action: ActionKind, e: &Execution) -> String {
    match action {
        ActionKind::Cancel => format!(
            "Cancel execution {}? Running tasks are stopped and the execution ends as cancelled.",
            e.id
        ),
        ActionKind::Retry => format!(
            "Retry execution {} as attempt {} with the same manifest and inputs?",
            e.id,
            e.attempt + 1
        ),
        ActionKind::Replay => format!(
            "Replay execution {} as a new execution with the same manifest and inputs? The original stays unchanged.",
            e.id
        ),
    }
}

fn rollback_hint(action: ActionKind) -> &'static str {
    match action {
        ActionKind::Cancel => {
            "A cancelled execution cannot resume; replay it to run the same manifest and inputs again."
        }
        ActionKind::Retry => {
            "If the retry misbehaves, cancel it; the failed attempt's receipts and evidence are kept. Turning off console_actions_enabled makes the console read-only."
        }
        ActionKind::Replay => {
            "Cancel the new execution to stop it; the original execution and its receipts are untouched."
        }
    }
}
