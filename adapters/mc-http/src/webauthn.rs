//! [`WebauthnIssuer`]: the real spec §7 step-up ceremony over `mc-webauthn`
//! (feature `webauthn`).
//!
//! | route | body | answer |
//! |---|---|---|
//! | `POST /api/stepup/registration/start` | `{"display_name"?}` | `{registration_id, expires_at, options}` → `navigator.credentials.create(options)` |
//! | `POST /api/stepup/registration/finish` | `{registration_id, credential}` | `{credential_id}` |
//! | `POST /api/stepup/challenge` | `{"action", "executionId"}` | `{challenge_id, expires_at, binding, options}` → `navigator.credentials.get(options)` |
//! | `POST /api/stepup/verify` | `{challenge_id, credential}` | `{grant, binding, expiresAt}` |
//!
//! The ceremony bodies are `mc_webauthn::api`'s (snake_case) so the browser glue is
//! the library's; tenant and actor come from the bearer principal.

use async_trait::async_trait;
use mc_core::{ActionKind, Actor, ExecutionId, StepUpError};
use mc_webauthn::WebauthnStepUp;
use mc_webauthn::WebauthnStepUpError as E;
use mc_webauthn::api::{
    ChallengeFinishRequest, ChallengeStartRequest, RegistrationFinishRequest,
    RegistrationStartRequest,
};
use serde::de::DeserializeOwned;

use crate::stepup::{IssuedGrant, StepUpIssueError, StepUpIssuer};

/// Passkey step-up over [`WebauthnStepUp`]. Share the same `WebauthnStepUp` with the
/// `ActionService` (it implements `StepUpVerifier`), so grants issued here are the
/// ones verified and consumed there.
#[derive(Debug, Clone)]
pub struct WebauthnIssuer {
    inner: WebauthnStepUp,
}

impl WebauthnIssuer {
    /// An issuer over `inner`.
    pub fn new(inner: WebauthnStepUp) -> Self {
        WebauthnIssuer { inner }
    }
}

fn body<T: DeserializeOwned>(
    field: &'static str,
    v: serde_json::Value,
) -> Result<T, StepUpIssueError> {
    serde_json::from_value(v).map_err(|e| StepUpIssueError::InvalidRequest {
        field,
        reason: e.to_string(),
    })
}

fn json<T: serde::Serialize>(v: &T) -> serde_json::Value {
    serde_json::to_value(v).unwrap_or_default()
}

/// Every ceremony error to the HTTP-facing kind. Foreign ceremonies ("bound to
/// another actor") look exactly like unknown ones.
fn map(e: E) -> StepUpIssueError {
    match e {
        E::BadRequest { field, reason } => StepUpIssueError::InvalidRequest { field, reason },
        E::NoPasskey | E::CredentialAlreadyRegistered => {
            StepUpIssueError::Precondition(e.to_string())
        }
        E::RegistrationNotFound => StepUpIssueError::NotFound("registration"),
        E::ChallengeNotFound | E::Mismatch { .. } => {
            StepUpIssueError::NotFound("step-up challenge")
        }
        E::Expired(_)
        | E::WrongOrigin
        | E::ChallengeMismatch
        | E::RegistrationRejected(_)
        | E::AssertionRejected(_) => StepUpIssueError::Rejected(e.to_string()),
        E::StepUp(StepUpError::Unavailable(m)) => StepUpIssueError::Unavailable(m),
        E::StepUp(other) => StepUpIssueError::Rejected(other.to_string()),
        // Server-side faults fail closed: no grant, writes refused, reads unaffected.
        E::Config { .. } | E::Corrupt(_) => {
            tracing::error!(error = %e, "webauthn step-up failure");
            StepUpIssueError::Unavailable("step-up backend failure".into())
        }
    }
}

#[async_trait]
impl StepUpIssuer for WebauthnIssuer {
    fn ceremony(&self) -> &'static str {
        "webauthn"
    }

    async fn challenge(
        &self,
        actor: &Actor,
        action: ActionKind,
        execution_id: &ExecutionId,
    ) -> Result<serde_json::Value, StepUpIssueError> {
        let req = ChallengeStartRequest {
            action,
            execution_id: execution_id.clone(),
        };
        let r = self
            .inner
            .start_challenge(&actor.tenant, &actor.sub, req)
            .await
            .map_err(map)?;
        let mut v = json(&r);
        v["ceremony"] = self.ceremony().into();
        Ok(v)
    }

    async fn verify(
        &self,
        actor: &Actor,
        answer: serde_json::Value,
    ) -> Result<IssuedGrant, StepUpIssueError> {
        let req: ChallengeFinishRequest = body("credential", answer)?;
        let r = self
            .inner
            .finish_challenge(&actor.tenant, &actor.sub, req)
            .await
            .map_err(map)?;
        Ok(IssuedGrant {
            grant: r.grant,
            binding: r.binding,
            expires_at: r.expires_at,
        })
    }

    async fn register_start(
        &self,
        actor: &Actor,
        b: serde_json::Value,
    ) -> Result<serde_json::Value, StepUpIssueError> {
        let req: RegistrationStartRequest = body("display_name", b)?;
        let r = self
            .inner
            .start_registration(&actor.tenant, &actor.sub, req)
            .await
            .map_err(map)?;
        Ok(json(&r))
    }

    async fn register_finish(
        &self,
        actor: &Actor,
        b: serde_json::Value,
    ) -> Result<serde_json::Value, StepUpIssueError> {
        let req: RegistrationFinishRequest = body("credential", b)?;
        let r = self
            .inner
            .finish_registration(&actor.tenant, &actor.sub, req)
            .await
            .map_err(map)?;
        Ok(json(&r))
    }
}
