//! Step-up ceremonies over HTTP: the pluggable [`StepUpIssuer`] and the demo
//! [`HmacIssuer`].
//!
//! A ceremony has two legs: `challenge` (the client names the action and execution
//! it wants to perform and gets something to answer) and `verify` (the client
//! answers and receives a [`StepUpGrant`] bound to tenant + actor + action +
//! execution, which it then sends with the action request). What "answer" means is
//! the issuer's business — a WebAuthn assertion in production (`mc-webauthn`), a
//! bearer re-check in the demo — so challenge and answer bodies are JSON values the
//! issuer defines, and the HTTP layer only routes them. Tenant and actor always come
//! from the authenticated principal, never from a body.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use axum::http::StatusCode;
use mc_actions::HmacStepUp;
use mc_core::{ActionKind, Actor, Clock, ExecutionId, StepUpBinding, StepUpGrant};
use serde::{Deserialize, Serialize};
use time::{Duration, OffsetDateTime};

use crate::problem::Problem;

/// A grant issued at the end of a ceremony (the body of `POST /api/stepup/verify`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct IssuedGrant {
    /// The grant token: send it as `stepUp` in the action request body. Single use.
    pub grant: StepUpGrant,
    /// What the grant is bound to.
    pub binding: StepUpBinding,
    /// The grant is refused from this instant on.
    #[serde(with = "time::serde::rfc3339")]
    pub expires_at: OffsetDateTime,
}

/// Why a step-up ceremony leg was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StepUpIssueError {
    /// A body field is missing or malformed.
    #[error("invalid {field}: {reason}")]
    InvalidRequest {
        /// The field.
        field: &'static str,
        /// Why.
        reason: String,
    },
    /// The challenge (or registration) id is unknown, already used, or belongs to
    /// another tenant or actor — indistinguishable on purpose.
    #[error("{0} not found (unknown, already used, or not yours)")]
    NotFound(&'static str),
    /// The ceremony failed: expired challenge, refused assertion, wrong origin.
    #[error("step-up ceremony failed: {0}")]
    Rejected(String),
    /// The ceremony cannot start yet (e.g. no passkey registered).
    #[error("{0}")]
    Precondition(String),
    /// The step-up backend is down: writes are refused, reads keep working (spec §8).
    #[error("step-up unavailable, console is read-only: {0}")]
    Unavailable(String),
    /// This issuer has no such ceremony leg (e.g. registration for the demo issuer).
    #[error("the {0} ceremony does not support this operation")]
    NotSupported(&'static str),
}

impl From<StepUpIssueError> for Problem {
    fn from(e: StepUpIssueError) -> Self {
        let detail = e.to_string();
        match e {
            StepUpIssueError::InvalidRequest { field, .. } => {
                Problem::bad_request("invalid_request", detail).with_field(field)
            }
            StepUpIssueError::NotFound(_) => {
                Problem::new(StatusCode::NOT_FOUND, "challenge_not_found", detail)
            }
            StepUpIssueError::Rejected(_) => Problem::step_up("step_up_rejected", detail),
            StepUpIssueError::Precondition(_) => {
                Problem::new(StatusCode::CONFLICT, "step_up_precondition", detail)
            }
            StepUpIssueError::Unavailable(m) => Problem::step_up_unavailable(&m),
            StepUpIssueError::NotSupported(_) => {
                Problem::new(StatusCode::NOT_FOUND, "not_supported", detail)
            }
        }
    }
}

/// A step-up ceremony, as served by `POST /api/stepup/*`.
#[async_trait]
pub trait StepUpIssuer: Send + Sync {
    /// The ceremony's name, advertised in challenges (`webauthn`, `demo-bearer`).
    fn ceremony(&self) -> &'static str;

    /// Starts a ceremony for `actor` to perform `action` on `execution_id`.
    ///
    /// # Errors
    /// [`StepUpIssueError`]; `Unavailable` during a step-up outage.
    async fn challenge(
        &self,
        actor: &Actor,
        action: ActionKind,
        execution_id: &ExecutionId,
    ) -> Result<serde_json::Value, StepUpIssueError>;

    /// Checks `answer` to a challenge issued to `actor` and returns a grant.
    ///
    /// # Errors
    /// [`StepUpIssueError`] saying why no grant was issued.
    async fn verify(
        &self,
        actor: &Actor,
        answer: serde_json::Value,
    ) -> Result<IssuedGrant, StepUpIssueError>;

    /// Starts enrolling an authenticator for `actor` (passkey registration).
    ///
    /// # Errors
    /// [`StepUpIssueError::NotSupported`] by default.
    async fn register_start(
        &self,
        actor: &Actor,
        body: serde_json::Value,
    ) -> Result<serde_json::Value, StepUpIssueError> {
        let _ = (actor, body);
        Err(StepUpIssueError::NotSupported(self.ceremony()))
    }

    /// Finishes enrolling an authenticator for `actor`.
    ///
    /// # Errors
    /// [`StepUpIssueError::NotSupported`] by default.
    async fn register_finish(
        &self,
        actor: &Actor,
        body: serde_json::Value,
    ) -> Result<serde_json::Value, StepUpIssueError> {
        let _ = (actor, body);
        Err(StepUpIssueError::NotSupported(self.ceremony()))
    }
}

/// The demo ceremony over [`HmacStepUp`].
///
/// **This is a demo ceremony, not a second factor.** `challenge` records a random,
/// single-use, 5-minute challenge id bound to tenant + actor + action + execution;
/// `verify` (`{"challengeId": "…"}`) issues an HMAC grant to the authenticated
/// actor once the bearer token has been re-checked by the auth layer on that
/// request and the challenge is found to be that actor's, unexpired and unused. It
/// proves only possession of the bearer token — use the WebAuthn issuer for the
/// real spec §7 step-up.
///
/// ```
/// use std::sync::Arc;
/// use mc_actions::HmacStepUp;
/// use mc_core::*;
/// use mc_http::{HmacIssuer, StepUpIssuer};
/// use time::macros::datetime;
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// let clock = Arc::new(ManualClock::new(datetime!(2025-12-10 18:00 UTC)));
/// let hmac = Arc::new(HmacStepUp::new(vec![7; 32]));
/// let issuer = HmacIssuer::new(hmac.clone(), clock.clone());
/// let alice = Actor::new(ActorId::new("alice@acme").unwrap(), TenantId::new("acme").unwrap(), ["operator"]);
/// let exec = ExecutionId::new("exec_1").unwrap();
/// let challenge = issuer.challenge(&alice, ActionKind::Retry, &exec).await.unwrap();
/// let issued = issuer.verify(&alice, serde_json::json!({ "challengeId": challenge["challengeId"] })).await.unwrap();
/// hmac.verify_and_consume(&issued.grant, &issued.binding, clock.now()).await.unwrap();
/// # });
/// ```
pub struct HmacIssuer {
    hmac: Arc<HmacStepUp>,
    clock: Arc<dyn Clock>,
    ttl: Duration,
    pending: Mutex<HashMap<String, (StepUpBinding, OffsetDateTime)>>,
}

impl std::fmt::Debug for HmacIssuer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HmacIssuer")
            .field("ttl", &self.ttl)
            .finish_non_exhaustive()
    }
}

/// Most challenges kept pending at once (a bound on memory an authenticated but
/// hostile client can pin); expired ones are dropped first.
const MAX_PENDING: usize = 10_000;

impl HmacIssuer {
    /// An issuer signing with `hmac` (share the same instance with the
    /// `ActionService`, which verifies and consumes the grants).
    pub fn new(hmac: Arc<HmacStepUp>, clock: Arc<dyn Clock>) -> Self {
        HmacIssuer {
            hmac,
            clock,
            ttl: Duration::minutes(5),
            pending: Mutex::new(HashMap::new()),
        }
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct DemoAnswer {
    challenge_id: String,
}

#[async_trait]
impl StepUpIssuer for HmacIssuer {
    fn ceremony(&self) -> &'static str {
        "demo-bearer"
    }

    async fn challenge(
        &self,
        actor: &Actor,
        action: ActionKind,
        execution_id: &ExecutionId,
    ) -> Result<serde_json::Value, StepUpIssueError> {
        let mut bytes = [0u8; 16];
        getrandom::fill(&mut bytes)
            .map_err(|e| StepUpIssueError::Unavailable(format!("no randomness: {e}")))?;
        let id = format!("ch_{}", hex::encode(bytes));
        let now = self.clock.now();
        let expires_at = now + self.ttl;
        let binding = StepUpBinding {
            tenant: actor.tenant.clone(),
            actor: actor.sub.clone(),
            action,
            execution_id: execution_id.clone(),
        };
        {
            let mut pending = self.pending.lock().unwrap_or_else(|p| p.into_inner());
            pending.retain(|_, (_, exp)| *exp > now);
            if pending.len() >= MAX_PENDING {
                return Err(StepUpIssueError::Unavailable(
                    "too many pending step-up challenges".into(),
                ));
            }
            pending.insert(id.clone(), (binding.clone(), expires_at));
        }
        Ok(serde_json::json!({
            "ceremony": self.ceremony(),
            "challengeId": id,
            "binding": binding,
            "expiresAt": expires_at.format(&time::format_description::well_known::Rfc3339)
                .unwrap_or_default(),
            "instructions": "demo ceremony: POST /api/stepup/verify with {\"challengeId\": …} \
                             and the same bearer token to receive a grant",
        }))
    }

    async fn verify(
        &self,
        actor: &Actor,
        answer: serde_json::Value,
    ) -> Result<IssuedGrant, StepUpIssueError> {
        let answer: DemoAnswer =
            serde_json::from_value(answer).map_err(|e| StepUpIssueError::InvalidRequest {
                field: "challengeId",
                reason: e.to_string(),
            })?;
        let now = self.clock.now();
        let (binding, expires_at) = {
            let mut pending = self.pending.lock().unwrap_or_else(|p| p.into_inner());
            // Removed whether or not it matches: a challenge is answered once.
            match pending.remove(&answer.challenge_id) {
                Some((b, exp)) if b.tenant == actor.tenant && b.actor == actor.sub => (b, exp),
                Some(other) => {
                    // Not this actor's: put it back untouched and say "not found".
                    pending.insert(answer.challenge_id, other);
                    return Err(StepUpIssueError::NotFound("step-up challenge"));
                }
                None => return Err(StepUpIssueError::NotFound("step-up challenge")),
            }
        };
        if now >= expires_at {
            return Err(StepUpIssueError::Rejected("the challenge expired".into()));
        }
        let grant = self.hmac.issue(&binding, now);
        Ok(IssuedGrant {
            grant,
            binding,
            expires_at: now + HmacStepUp::DEFAULT_TTL,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mc_core::{ActorId, ManualClock, StepUpVerifier, TenantId};
    use time::macros::datetime;

    fn actor(sub: &str, tenant: &str) -> Actor {
        Actor::new(
            ActorId::new(sub).unwrap(),
            TenantId::new(tenant).unwrap(),
            ["operator"],
        )
    }

    #[tokio::test]
    async fn demo_ceremony_rules() {
        let clock = Arc::new(ManualClock::new(datetime!(2025-12-10 18:00 UTC)));
        let hmac = Arc::new(HmacStepUp::new(vec![3; 32]));
        let issuer = HmacIssuer::new(hmac.clone(), clock.clone());
        let alice = actor("alice@acme", "acme");
        let exec = ExecutionId::new("exec_1").unwrap();

        let ch = issuer
            .challenge(&alice, ActionKind::Cancel, &exec)
            .await
            .unwrap();
        let id = ch["challengeId"].clone();
        // Another actor cannot redeem alice's challenge, and doing so does not burn it.
        let mallory = actor("mallory@acme", "acme");
        assert_eq!(
            issuer
                .verify(&mallory, serde_json::json!({ "challengeId": id }))
                .await
                .unwrap_err(),
            StepUpIssueError::NotFound("step-up challenge")
        );
        let issued = issuer
            .verify(&alice, serde_json::json!({ "challengeId": id }))
            .await
            .unwrap();
        assert_eq!(issued.binding.action, ActionKind::Cancel);
        hmac.verify_and_consume(&issued.grant, &issued.binding, clock.now())
            .await
            .unwrap();
        // Single use.
        assert!(matches!(
            issuer
                .verify(&alice, serde_json::json!({ "challengeId": id }))
                .await,
            Err(StepUpIssueError::NotFound(_))
        ));
        // Expiry.
        let ch = issuer
            .challenge(&alice, ActionKind::Cancel, &exec)
            .await
            .unwrap();
        clock.advance(Duration::minutes(6));
        assert!(matches!(
            issuer
                .verify(
                    &alice,
                    serde_json::json!({ "challengeId": ch["challengeId"] })
                )
                .await,
            Err(StepUpIssueError::NotFound(_)) | Err(StepUpIssueError::Rejected(_))
        ));
        // Malformed answer names the field.
        assert!(matches!(
            issuer
                .verify(&alice, serde_json::json!({ "nonce": 1 }))
                .await,
            Err(StepUpIssueError::InvalidRequest {
                field: "challengeId",
                ..
            })
        ));
    }
}
