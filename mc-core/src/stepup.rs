//! Step-up authentication for write actions (spec §3.1 MC-UI-1102, §7).
//!
//! A step-up grant is proof that the actor just re-authenticated (a WebAuthn
//! assertion, or an HMAC grant in tests and the demo) *for this exact action*: it is
//! bound to tenant, actor, action and execution, expires quickly and is single-use.

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::action::ActionKind;
use crate::id::{ActorId, ExecutionId, TenantId};

/// What a grant must be bound to.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct StepUpBinding {
    /// Tenant.
    pub tenant: TenantId,
    /// Actor.
    pub actor: ActorId,
    /// Action.
    pub action: ActionKind,
    /// Execution.
    pub execution_id: ExecutionId,
}

/// An opaque step-up grant token. Its `Debug` never prints the token.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct StepUpGrant(String);

impl StepUpGrant {
    /// Wraps a token string.
    pub fn new(token: impl Into<String>) -> Self {
        StepUpGrant(token.into())
    }
    /// The token (send it to the verifier only).
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for StepUpGrant {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("StepUpGrant(<redacted>)")
    }
}

/// Why a step-up grant was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StepUpError {
    /// The token is not a grant (bad encoding or signature).
    #[error("step-up grant is invalid")]
    Invalid,
    /// The grant has expired.
    #[error("step-up grant expired")]
    Expired,
    /// The grant was issued for another tenant/actor/action/execution.
    #[error("step-up grant is bound to another {field}")]
    Mismatch {
        /// Which binding field differs.
        field: &'static str,
    },
    /// The grant was already used once.
    #[error("step-up grant was already used")]
    AlreadyUsed,
    /// The verifier (authenticator service, challenge store) is down. Writes are
    /// refused; reads keep working (spec §8 "step-up outage").
    #[error("step-up unavailable, console is read-only: {0}")]
    Unavailable(String),
}

/// Verifies and consumes step-up grants.
#[async_trait]
pub trait StepUpVerifier: Send + Sync {
    /// Checks that `grant` is valid at `now` for `binding` and marks it used.
    ///
    /// # Errors
    /// [`StepUpError`] saying why it was refused.
    async fn verify_and_consume(
        &self,
        grant: &StepUpGrant,
        binding: &StepUpBinding,
        now: OffsetDateTime,
    ) -> Result<(), StepUpError>;
}
