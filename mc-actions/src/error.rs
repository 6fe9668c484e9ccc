//! Why an action was refused.

use std::time::Duration;

use mc_core::{ActionKind, ExecutionState, Flag, StepUpError, StoreError};

/// Why [`crate::ActionService::perform`] refused an action. Every variant is
/// something a caller (the HTTP layer, the console) maps to a precise answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ActionError {
    /// A request field is missing or malformed.
    #[error("invalid {field}: {reason}")]
    InvalidRequest {
        /// The field.
        field: &'static str,
        /// Why.
        reason: String,
    },
    /// `console_actions_enabled` (or another required flag) is off for the tenant.
    #[error("{flag} is off for tenant {tenant}: the console is read-only")]
    FlagDisabled {
        /// The flag.
        flag: Flag,
        /// The tenant.
        tenant: String,
    },
    /// The policy does not allow this actor to perform this action.
    #[error("not allowed: {}", reasons.join("; "))]
    NotAllowed {
        /// The policy's reasons.
        reasons: Vec<String>,
    },
    /// The action needs a step-up grant and none was given.
    #[error("step-up authentication required for {action} on {execution_id}")]
    StepUpRequired {
        /// The action.
        action: ActionKind,
        /// The execution.
        execution_id: String,
    },
    /// The step-up grant was refused (expired, reused, bound elsewhere, invalid).
    #[error("step-up refused: {0}")]
    StepUpRejected(StepUpError),
    /// The step-up verifier is down: writes are refused, reads keep working.
    #[error("step-up unavailable, console is read-only: {0}")]
    StepUpUnavailable(String),
    /// The action is illegal in the execution's current state.
    #[error("cannot {action} an execution that is {state}")]
    NotAllowedInState {
        /// The action.
        action: ActionKind,
        /// The current state.
        state: ExecutionState,
    },
    /// No such execution for this tenant.
    #[error("execution {execution_id} not found")]
    NotFound {
        /// The id.
        execution_id: String,
    },
    /// The idempotency key was used before for a different request.
    #[error("idempotency key {key} was already used for a different request")]
    IdempotencyConflict {
        /// The key.
        key: String,
    },
    /// The execution changed concurrently (another replica won); re-read and retry.
    #[error("execution {execution_id} changed concurrently; re-read and retry")]
    Conflict {
        /// The execution.
        execution_id: String,
    },
    /// A bulk action exceeded its rate cap.
    #[error("rate cap reached; retry after {retry_after:?}")]
    RateLimited {
        /// When the next slot opens.
        retry_after: Duration,
    },
    /// The store failed.
    #[error(transparent)]
    Store(StoreError),
}

impl ActionError {
    /// A short stable code for metrics labels and problem documents.
    pub fn code(&self) -> &'static str {
        match self {
            ActionError::InvalidRequest { .. } => "invalid_request",
            ActionError::FlagDisabled { .. } => "flag_disabled",
            ActionError::NotAllowed { .. } => "not_allowed",
            ActionError::StepUpRequired { .. } => "step_up_required",
            ActionError::StepUpRejected(_) => "step_up_rejected",
            ActionError::StepUpUnavailable(_) => "step_up_unavailable",
            ActionError::NotAllowedInState { .. } => "not_allowed_in_state",
            ActionError::NotFound { .. } => "not_found",
            ActionError::IdempotencyConflict { .. } => "idempotency_conflict",
            ActionError::Conflict { .. } => "conflict",
            ActionError::RateLimited { .. } => "rate_limited",
            ActionError::Store(_) => "store_error",
        }
    }
}

impl From<StoreError> for ActionError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound { id } => ActionError::NotFound { execution_id: id },
            StoreError::VersionConflict { id, .. } => ActionError::Conflict { execution_id: id },
            StoreError::IdempotencyConflict { key } => ActionError::IdempotencyConflict { key },
            other => ActionError::Store(other),
        }
    }
}
