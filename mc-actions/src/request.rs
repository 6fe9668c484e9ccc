//! Requests and outcomes.

use mc_core::{
    ActionKind, Actor, ExecutionId, ExecutionState, IdempotencyKey, StepUpGrant, TenantId,
};
use serde::{Deserialize, Serialize};

/// Longest accepted reason, in characters.
pub const MAX_REASON_CHARS: usize = 1024;

/// A console write action, as received from the HTTP layer or a host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActionRequest {
    /// The tenant the action is performed in.
    pub tenant: TenantId,
    /// The target execution.
    pub execution_id: ExecutionId,
    /// Cancel, retry or replay.
    pub kind: ActionKind,
    /// Who asks.
    pub actor: Actor,
    /// Why (required; recorded in the audit event).
    pub reason: String,
    /// The client's idempotency key.
    pub idempotency_key: IdempotencyKey,
    /// The step-up grant for this exact action, if the client has one.
    pub step_up: Option<StepUpGrant>,
}

/// The execution a replay created.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ReplayedExecution {
    /// The new execution's id.
    pub id: ExecutionId,
    /// The execution it replays.
    pub parent: ExecutionId,
    /// The first execution of the lineage.
    pub root: ExecutionId,
    /// Its state (pending).
    pub state: ExecutionState,
}

/// The 202-style result of an accepted action.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ActionOutcome {
    /// Always `"accepted"`.
    pub status: String,
    /// The action.
    pub action: ActionKind,
    /// The target execution.
    pub execution_id: ExecutionId,
    /// The target execution's state after the action.
    pub state: ExecutionState,
    /// The target execution's attempt after the action.
    pub attempt: u32,
    /// For a replay: the new execution with its lineage.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub replay: Option<ReplayedExecution>,
    /// The id of the `mc.exec.action` audit event.
    pub audit_event_id: String,
    /// True when this answer came from the idempotency record of an earlier,
    /// identical request (no new effect, no new audit event).
    #[serde(default)]
    pub idempotent_replay: bool,
}
