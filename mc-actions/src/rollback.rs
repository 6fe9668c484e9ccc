//! The rollback watch (MC-SRE-1161): after a retry or a replay, watch the execution
//! it started; when such executions fail again (a bad retry), roll the tenant's
//! console writes back — turn `console_actions_enabled` off (spec §9: "Rollback:
//! disable flags") — within two minutes, and record the evidence in the audit chain.
//!
//! The host calls [`RollbackWatch::watch`] with each accepted outcome (or lets
//! [`RollbackWatch::observe`] pick the retries and replays out of any outcome) and
//! [`RollbackWatch::check`] on a timer shorter than the deadline (every 30 s). The
//! list lives in memory; after a restart [`RollbackWatch::recover`] rebuilds it from
//! the tenants' audit chains (each accepted retry or replay's `mc.exec.action` event
//! names the attempt it started), so a restart does not let a bad retry escape.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use mc_core::audit::{AuditActor, AuditSubject, NewAuditEvent};
use mc_core::{
    ActionKind, ActorId, AuditLog, Clock, ExecutionId, ExecutionState, ExecutionStore, Flag,
    FlagStore, StoreError, TenantId,
};
use serde::Serialize;
use time::{Duration, OffsetDateTime};

use crate::ActionOutcome;

/// The audit event type of an automatic rollback.
pub const ROLLBACK_EVENT: &str = "mc.exec.rollback";

/// When to roll back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RollbackPolicy {
    /// How long after an action its execution is watched.
    pub window: Duration,
    /// Watched executions of a tenant that must fail within the window to roll back.
    pub failures: usize,
    /// The promise: a failure is rolled back within this long (spec: 2 minutes). Hosts
    /// call [`RollbackWatch::check`] at most half as often.
    pub deadline: Duration,
}

impl Default for RollbackPolicy {
    fn default() -> Self {
        RollbackPolicy {
            window: Duration::minutes(15),
            failures: 1,
            deadline: Duration::minutes(2),
        }
    }
}

#[derive(Debug, Clone)]
struct Watched {
    tenant: TenantId,
    execution: ExecutionId,
    action: ActionKind,
    attempt: u32,
    actor: ActorId,
    accepted_at: OffsetDateTime,
}

/// A failed execution that counted toward a rollback.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct BadAction {
    /// The execution.
    pub execution_id: ExecutionId,
    /// `retry` or `replay`.
    pub action: &'static str,
    /// Who took the action.
    pub actor: ActorId,
    /// When the action was accepted.
    #[serde(with = "time::serde::rfc3339")]
    pub accepted_at: OffsetDateTime,
    /// When the execution failed (its last update).
    #[serde(with = "time::serde::rfc3339")]
    pub failed_at: OffsetDateTime,
}

/// One automatic rollback, as recorded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Rollback {
    /// The tenant.
    pub tenant: TenantId,
    /// The failures that caused it.
    pub bad: Vec<BadAction>,
    /// When the watch saw them.
    #[serde(with = "time::serde::rfc3339")]
    pub detected_at: OffsetDateTime,
    /// When `console_actions_enabled` was turned off.
    #[serde(with = "time::serde::rfc3339")]
    pub rolled_back_at: OffsetDateTime,
    /// From the first failure to the rollback, in seconds.
    pub seconds_to_rollback: i64,
    /// Whether that was within the policy's deadline.
    pub within_deadline: bool,
    /// The flag turned off.
    pub flag: &'static str,
    /// The audit event's id.
    pub audit_event_id: String,
}

/// Events read per page by [`RollbackWatch::recover`].
const RECOVER_PAGE: u32 = 500;

/// The watch an accepted retry or replay's `mc.exec.action` event asks for, if any.
fn watched_from(e: &mc_core::AuditEvent) -> Option<Watched> {
    if e.kind != mc_core::audit::EXEC_ACTION {
        return None;
    }
    let action: ActionKind = e.data.get("action")?.as_str()?.parse().ok()?;
    if !matches!(action, ActionKind::Retry | ActionKind::Replay) {
        return None;
    }
    let started = e.data.get(crate::STARTED_FIELD)?;
    Some(Watched {
        tenant: e.actor.tenant.clone(),
        execution: ExecutionId::new(started.get("executionId")?.as_str()?).ok()?,
        action,
        attempt: u32::try_from(started.get("attempt")?.as_u64()?).ok()?,
        actor: e.actor.sub.clone(),
        accepted_at: e.ts,
    })
}

/// The sequence number to read after so that the first event read is the first of
/// `tenant`'s chain at or after `t` (events are appended in time order). `head` is
/// the last sequence number.
async fn first_at_or_after(
    audit: &dyn AuditLog,
    tenant: &TenantId,
    head: u64,
    t: OffsetDateTime,
) -> Result<u64, StoreError> {
    // Smallest seq in 1..=head+1 whose event is at or after t (head+1: none is).
    let (mut lo, mut hi) = (1u64, head + 1);
    while lo < hi {
        let mid = lo + (hi - lo) / 2;
        match audit.read(tenant, mid - 1, 1).await?.first() {
            Some(e) if e.ts >= t => hi = mid,
            Some(_) => lo = mid + 1,
            // A chain shorter than its head says: read it all.
            None => return Ok(0),
        }
    }
    Ok(lo - 1)
}

/// Watches retried and replayed executions and rolls a tenant's console writes back
/// when they fail.
pub struct RollbackWatch {
    store: Arc<dyn ExecutionStore>,
    flags: Arc<dyn FlagStore>,
    audit: Arc<dyn AuditLog>,
    clock: Arc<dyn Clock>,
    policy: RollbackPolicy,
    watched: Mutex<Vec<Watched>>,
}

impl std::fmt::Debug for RollbackWatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RollbackWatch")
            .field("policy", &self.policy)
            .finish_non_exhaustive()
    }
}

impl crate::ActionObserver for RollbackWatch {
    /// [`RollbackWatch::observe`]: watches what an accepted retry or replay started.
    fn accepted(&self, tenant: &TenantId, actor: &ActorId, outcome: &ActionOutcome) {
        self.observe(tenant, actor, outcome);
    }
}

impl RollbackWatch {
    /// A watch over these stores.
    pub fn new(
        store: Arc<dyn ExecutionStore>,
        flags: Arc<dyn FlagStore>,
        audit: Arc<dyn AuditLog>,
        clock: Arc<dyn Clock>,
        policy: RollbackPolicy,
    ) -> Self {
        RollbackWatch {
            store,
            flags,
            audit,
            clock,
            policy,
            watched: Mutex::new(Vec::new()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Watched>> {
        self.watched
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Watches the execution an accepted retry or replay started (other actions and
    /// idempotent replays of a request are ignored).
    pub fn observe(&self, tenant: &TenantId, actor: &ActorId, outcome: &ActionOutcome) {
        if outcome.idempotent_replay {
            return;
        }
        let (execution, attempt) = match (outcome.action, &outcome.replay) {
            (ActionKind::Retry, _) => (outcome.execution_id.clone(), outcome.attempt),
            (ActionKind::Replay, Some(r)) => (r.id.clone(), 1),
            _ => return,
        };
        self.watch(tenant, actor, execution, outcome.action, attempt);
    }

    /// Watches `execution` (at `attempt`) started by `action`.
    pub fn watch(
        &self,
        tenant: &TenantId,
        actor: &ActorId,
        execution: ExecutionId,
        action: ActionKind,
        attempt: u32,
    ) {
        self.lock().push(Watched {
            tenant: tenant.clone(),
            execution,
            action,
            attempt,
            actor: actor.clone(),
            accepted_at: self.clock.now(),
        });
    }

    /// How many executions are being watched.
    pub fn watching(&self) -> usize {
        self.lock().len()
    }

    /// Rebuilds the watch list from the audit chains of `tenants`, e.g. at start-up:
    /// every retry or replay accepted within the policy's window (its
    /// `mc.exec.action` event carries the `started` execution attempt) is watched
    /// again, except those a later `mc.exec.rollback` event of the tenant already
    /// dealt with. Executions already watched are not added twice. Reads each chain
    /// from the first event of the window only (binary search on the sequence).
    /// Returns how many watches were added.
    ///
    /// # Errors
    /// The audit log's errors; nothing is added then.
    pub async fn recover(&self, tenants: &[TenantId]) -> Result<usize, StoreError> {
        let now = self.clock.now();
        let cutoff = now - self.policy.window;
        let mut found = Vec::new();
        for tenant in tenants {
            let Some(head) = self.audit.head(tenant).await? else {
                continue;
            };
            // Replicas' clocks differ a little: start a minute early, filter exactly.
            let mut after = first_at_or_after(
                self.audit.as_ref(),
                tenant,
                head.seq,
                cutoff - Duration::minutes(1),
            )
            .await?;
            let mut pending: Vec<Watched> = Vec::new();
            loop {
                let page = self.audit.read(tenant, after, RECOVER_PAGE).await?;
                let Some(last) = page.last() else { break };
                after = last.seq;
                for e in &page {
                    if e.kind == ROLLBACK_EVENT {
                        pending.clear();
                    } else if e.ts >= cutoff
                        && let Some(w) = watched_from(e)
                    {
                        pending.push(w);
                    }
                }
            }
            found.extend(pending);
        }
        let mut list = self.lock();
        let mut added = 0;
        for w in found {
            let known = list.iter().any(|x| {
                x.tenant == w.tenant && x.execution == w.execution && x.attempt == w.attempt
            });
            if !known {
                list.push(w);
                added += 1;
            }
        }
        Ok(added)
    }

    /// Looks at every watched execution: those that succeeded (or left the window)
    /// are dropped; a tenant with `policy.failures` failed ones is rolled back: the
    /// flag is turned off first (the safe step), then the audit event is appended.
    ///
    /// # Errors
    /// The stores' errors; nothing is dropped from the watch then. If the audit log
    /// fails after the flag was turned off, the error says so and the rollback stands.
    pub async fn check(&self) -> Result<Vec<Rollback>, StoreError> {
        let now = self.clock.now();
        // Take the list; watches added while this check awaits are appended after.
        let watched = std::mem::take(&mut *self.lock());
        let result = self.check_these(&watched, now).await;
        let mut list = self.lock();
        let added = std::mem::take(&mut *list);
        match result {
            Ok((keep, rollbacks)) => {
                *list = keep;
                list.extend(added);
                Ok(rollbacks)
            }
            Err(e) => {
                *list = watched;
                list.extend(added);
                Err(e)
            }
        }
    }

    async fn check_these(
        &self,
        watched: &[Watched],
        now: OffsetDateTime,
    ) -> Result<(Vec<Watched>, Vec<Rollback>), StoreError> {
        let mut keep = Vec::new();
        let mut bad: BTreeMap<TenantId, Vec<BadAction>> = BTreeMap::new();
        for w in watched {
            let e = match self.store.get(&w.tenant, &w.execution).await {
                Ok(e) => e,
                Err(StoreError::NotFound { .. }) => continue,
                Err(err) => return Err(err),
            };
            let this_attempt = e.attempt == w.attempt;
            match e.state {
                ExecutionState::Failed if this_attempt => {
                    bad.entry(w.tenant.clone()).or_default().push(BadAction {
                        execution_id: w.execution.clone(),
                        action: w.action.as_str(),
                        actor: w.actor.clone(),
                        accepted_at: w.accepted_at,
                        failed_at: e.updated_at,
                    });
                    keep.push(w.clone());
                }
                ExecutionState::Pending | ExecutionState::Running
                    if this_attempt && now - w.accepted_at <= self.policy.window =>
                {
                    keep.push(w.clone());
                }
                // Succeeded, cancelled, retried again by someone, or out of the window.
                _ => {}
            }
        }
        let mut rollbacks = Vec::new();
        for (tenant, failures) in bad {
            if failures.len() < self.policy.failures {
                continue;
            }
            keep.retain(|w| w.tenant != tenant);
            if let Some(r) = self.roll_back(&tenant, failures).await? {
                rollbacks.push(r);
            }
        }
        Ok((keep, rollbacks))
    }

    async fn roll_back(
        &self,
        tenant: &TenantId,
        bad: Vec<BadAction>,
    ) -> Result<Option<Rollback>, StoreError> {
        let detected_at = self.clock.now();
        if !self
            .flags
            .is_enabled(tenant, Flag::ConsoleActionsEnabled)
            .await?
        {
            return Ok(None); // Already rolled back (by a person or another replica).
        }
        self.flags
            .set(tenant, Flag::ConsoleActionsEnabled, false)
            .await?;
        let rolled_back_at = self.clock.now();
        let first_failure = bad.iter().map(|b| b.failed_at).min().unwrap_or(detected_at);
        let took = rolled_back_at - first_failure;
        let mut r = Rollback {
            tenant: tenant.clone(),
            bad,
            detected_at,
            rolled_back_at,
            seconds_to_rollback: took.whole_seconds(),
            within_deadline: took <= self.policy.deadline,
            flag: Flag::ConsoleActionsEnabled.as_str(),
            audit_event_id: String::new(),
        };
        let event = self
            .audit
            .append(NewAuditEvent {
                id: None,
                kind: ROLLBACK_EVENT.to_string(),
                actor: AuditActor {
                    sub: ActorId::new("mc-rollback-watch").expect("a valid actor id"),
                    tenant: tenant.clone(),
                },
                subject: AuditSubject {
                    execution_id: r.bad.first().map(|b| b.execution_id.clone()),
                    resource: Some(format!("flag/{}", r.flag)),
                },
                data: serde_json::json!({
                    "reason": "bad_retry",
                    "flag": r.flag,
                    "bad": r.bad,
                    "detectedAt": r.detected_at.format(&time::format_description::well_known::Rfc3339).unwrap_or_default(),
                    "secondsToRollback": r.seconds_to_rollback,
                    "withinDeadline": r.within_deadline,
                }),
                ts: rolled_back_at,
            })
            .await?;
        r.audit_event_id = event.id;
        tracing::warn!(%tenant, seconds = r.seconds_to_rollback, "console actions rolled back after a bad retry");
        metrics::counter!(mc_core::telemetry::ACTION_ROLLBACKS.name).increment(1);
        Ok(Some(r))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mc_core::MemoryStore;
    use time::macros::datetime;

    const T0: OffsetDateTime = datetime!(2025-12-10 18:00 UTC);

    fn event(tenant: &TenantId, ts: OffsetDateTime) -> NewAuditEvent {
        NewAuditEvent {
            id: None,
            kind: "test.event".into(),
            actor: AuditActor {
                sub: ActorId::new("tester").unwrap(),
                tenant: tenant.clone(),
            },
            subject: AuditSubject {
                execution_id: None,
                resource: None,
            },
            data: serde_json::json!({}),
            ts,
        }
    }

    #[test]
    fn the_window_s_first_event_is_found_by_bisection() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        rt.block_on(async {
            let store = MemoryStore::new();
            let tenant = TenantId::new("acme").unwrap();
            // 1..=7 events, times with repeats (several events in one second).
            let offsets = [0i64, 10, 10, 10, 25, 40, 40];
            for n in 1..=offsets.len() {
                let store = MemoryStore::new();
                for off in &offsets[..n] {
                    store
                        .append(event(&tenant, T0 + Duration::seconds(*off)))
                        .await
                        .unwrap();
                }
                let all = store.read(&tenant, 0, 100).await.unwrap();
                for probe in [-5i64, 0, 5, 10, 11, 25, 39, 40, 41, 100] {
                    let t = T0 + Duration::seconds(probe);
                    let want = all
                        .iter()
                        .find(|e| e.ts >= t)
                        .map_or(n as u64, |e| e.seq - 1);
                    let got = first_at_or_after(&store, &tenant, n as u64, t)
                        .await
                        .unwrap();
                    assert_eq!(got, want, "{n} events, t = T0{probe:+}s");
                }
            }
            // An empty chain: nothing to skip.
            assert_eq!(first_at_or_after(&store, &tenant, 0, T0).await.unwrap(), 0);
        });
    }
}
