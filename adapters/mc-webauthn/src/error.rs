//! Errors of the step-up ceremonies and of the challenge store.

use mc_core::StepUpError;

/// Why a store operation failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StoreError {
    /// The backend cannot be reached (connection refused, pool timed out, switched
    /// down). Callers turn this into the spec §8 "step-up unavailable" outage.
    #[error("step-up store unavailable: {0}")]
    Unavailable(String),
    /// A uniqueness rule of the store was violated; the string names the rule
    /// (`credential_id`, `challenge_id`, ...).
    #[error("step-up store conflict on {0}")]
    Conflict(&'static str),
    /// A stored record could not be decoded (schema drift, manual edit).
    #[error("step-up store record is corrupt: {0}")]
    Corrupt(String),
}

/// Why a registration or step-up ceremony was refused.
///
/// Every variant is something an HTTP layer can map to a status code without
/// parsing strings: `Unavailable` → 503, `NotFound`/`Expired`/assertion failures → 4xx.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WebauthnStepUpError {
    /// The relying-party configuration is invalid; the string names the field.
    #[error("invalid step-up configuration: {field}: {reason}")]
    Config {
        /// The offending field (`rp_id`, `rp_origin`, `grant_key`, `challenge_ttl`, ...).
        field: &'static str,
        /// Why it was refused.
        reason: String,
    },
    /// A request field is invalid (for example an over-long display name).
    #[error("invalid request: {field}: {reason}")]
    BadRequest {
        /// The offending field.
        field: &'static str,
        /// Why it was refused.
        reason: String,
    },
    /// The actor has no registered passkey, so no step-up challenge can be issued.
    #[error("actor has no registered passkey; register one first")]
    NoPasskey,
    /// No pending registration with this id (unknown, already finished, or purged).
    #[error("registration not found (unknown, already used or purged)")]
    RegistrationNotFound,
    /// No pending challenge with this id (unknown, already used — a replay — or purged).
    #[error("step-up challenge not found (unknown, already used or purged)")]
    ChallengeNotFound,
    /// The registration or challenge expired before it was finished.
    #[error("{0} expired")]
    Expired(&'static str),
    /// The registration or challenge belongs to another tenant or actor.
    #[error("step-up ceremony is bound to another {field}")]
    Mismatch {
        /// `tenant` or `actor`.
        field: &'static str,
    },
    /// The assertion or attestation came from an origin this relying party does not allow.
    #[error("credential was produced for a foreign origin")]
    WrongOrigin,
    /// The assertion or attestation signs another challenge than the one being finished.
    #[error("credential answers another challenge")]
    ChallengeMismatch,
    /// The passkey is already registered (to this or another actor of the tenant).
    #[error("credential is already registered")]
    CredentialAlreadyRegistered,
    /// The authenticator's registration response was refused by webauthn-rs.
    #[error("passkey registration refused: {0}")]
    RegistrationRejected(String),
    /// The authenticator's assertion was refused by webauthn-rs (bad signature,
    /// unknown credential, user not verified, ...).
    #[error("passkey assertion refused: {0}")]
    AssertionRejected(String),
    /// A step-up error from mc-core; in practice
    /// [`StepUpError::Unavailable`] while the store or authenticator backend is down
    /// (spec §8: writes refused, console read-only).
    #[error(transparent)]
    StepUp(#[from] StepUpError),
    /// A stored record could not be decoded.
    #[error("step-up store record is corrupt: {0}")]
    Corrupt(String),
}

impl WebauthnStepUpError {
    /// Whether this is the spec §8 outage (store or authenticator backend down).
    pub fn is_unavailable(&self) -> bool {
        matches!(
            self,
            WebauthnStepUpError::StepUp(StepUpError::Unavailable(_))
        )
    }
}

impl From<StoreError> for WebauthnStepUpError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Unavailable(why) => WebauthnStepUpError::StepUp(StepUpError::Unavailable(
                format!("step-up store unavailable: {why}"),
            )),
            StoreError::Conflict("credential_id") => {
                WebauthnStepUpError::CredentialAlreadyRegistered
            }
            StoreError::Conflict(rule) => {
                WebauthnStepUpError::Corrupt(format!("unexpected conflict on {rule}"))
            }
            StoreError::Corrupt(why) => WebauthnStepUpError::Corrupt(why),
        }
    }
}
