//! JSON request and response bodies of the four step-up routes, so an HTTP layer
//! only deserialises, calls [`WebauthnStepUp`](crate::WebauthnStepUp) and serialises.
//!
//! | route (suggested)                       | request                        | response                        |
//! |-----------------------------------------|--------------------------------|---------------------------------|
//! | `POST /api/stepup/registrations`        | [`RegistrationStartRequest`]   | [`RegistrationStartResponse`]   |
//! | `POST /api/stepup/registrations:finish` | [`RegistrationFinishRequest`]  | [`RegistrationFinishResponse`]  |
//! | `POST /api/stepup/challenges`           | [`ChallengeStartRequest`]      | [`ChallengeStartResponse`]      |
//! | `POST /api/stepup/challenges:finish`    | [`ChallengeFinishRequest`]     | [`ChallengeFinishResponse`]     |
//!
//! Field names are camelCase, like the WebAuthn options they carry and the rest of
//! the console API. Tenant and actor never come from these bodies: the HTTP layer takes them from
//! its authenticated principal and passes them next to the body.

use mc_core::{ActionKind, ExecutionId, StepUpBinding, StepUpGrant};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use uuid::Uuid;
use webauthn_rs::prelude::{
    CreationChallengeResponse, PublicKeyCredential, RegisterPublicKeyCredential,
    RequestChallengeResponse,
};

/// Starts a passkey registration for the calling actor.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RegistrationStartRequest {
    /// Name the authenticator may show (defaults to the actor id); at most 64
    /// characters, no control characters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
}

/// The options to pass to `navigator.credentials.create()`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RegistrationStartResponse {
    /// Id to send back with the authenticator's response.
    pub registration_id: Uuid,
    /// The registration must be finished before this instant.
    #[serde(with = "time::serde::rfc3339")]
    pub expires_at: OffsetDateTime,
    /// WebAuthn `PublicKeyCredentialCreationOptions` (as `{ "publicKey": … }`).
    pub options: CreationChallengeResponse,
}

/// Finishes a passkey registration.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RegistrationFinishRequest {
    /// From [`RegistrationStartResponse::registration_id`].
    pub registration_id: Uuid,
    /// The result of `navigator.credentials.create()`.
    pub credential: RegisterPublicKeyCredential,
}

/// A registered passkey.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RegistrationFinishResponse {
    /// Credential id, base64url without padding.
    pub credential_id: String,
}

/// Asks for a step-up challenge for one action on one execution.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ChallengeStartRequest {
    /// The action to authorise (`cancel`, `retry`, `replay`).
    pub action: ActionKind,
    /// The execution it targets.
    pub execution_id: ExecutionId,
}

/// The options to pass to `navigator.credentials.get()`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ChallengeStartResponse {
    /// Id to send back with the assertion.
    pub challenge_id: Uuid,
    /// The challenge must be answered before this instant.
    #[serde(with = "time::serde::rfc3339")]
    pub expires_at: OffsetDateTime,
    /// What a grant obtained from this challenge will be bound to.
    pub binding: StepUpBinding,
    /// WebAuthn `PublicKeyCredentialRequestOptions` (as `{ "publicKey": … }`).
    pub options: RequestChallengeResponse,
}

/// Answers a step-up challenge.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ChallengeFinishRequest {
    /// From [`ChallengeStartResponse::challenge_id`].
    pub challenge_id: Uuid,
    /// The result of `navigator.credentials.get()`.
    pub credential: PublicKeyCredential,
}

/// A step-up grant: send it with the action request (it is single-use).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ChallengeFinishResponse {
    /// The grant token.
    pub grant: StepUpGrant,
    /// What the grant is bound to.
    pub binding: StepUpBinding,
    /// The grant is refused from this instant on.
    #[serde(with = "time::serde::rfc3339")]
    pub expires_at: OffsetDateTime,
}
