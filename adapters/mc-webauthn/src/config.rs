//! Relying-party and lifetime configuration of the step-up service.

use time::Duration;
use url::Url;

use crate::error::WebauthnStepUpError;

/// Default lifetime of a registration or step-up challenge (issue 3: 5 minutes).
pub const DEFAULT_CHALLENGE_TTL: Duration = Duration::minutes(5);
/// Default lifetime of a step-up grant (issue 3: 5 minutes).
pub const DEFAULT_GRANT_TTL: Duration = Duration::minutes(5);
/// The longest lifetime accepted for challenges and grants: a step-up is proof of a
/// *recent* re-authentication, so an hour-long grant would defeat its purpose.
pub const MAX_TTL: Duration = Duration::minutes(15);
/// Minimum length of the grant signing key in bytes (HMAC-SHA256 block strength).
pub const MIN_GRANT_KEY_LEN: usize = 32;

/// The HMAC-SHA256 key that signs step-up grants. Every replica that verifies grants
/// must hold the same key. Its `Debug` never prints the key.
#[derive(Clone)]
pub struct GrantKey(Vec<u8>);

impl GrantKey {
    /// Wraps key bytes.
    ///
    /// # Errors
    /// [`WebauthnStepUpError::Config`] naming `grant_key` when it is shorter than
    /// [`MIN_GRANT_KEY_LEN`] bytes.
    pub fn new(bytes: impl Into<Vec<u8>>) -> Result<Self, WebauthnStepUpError> {
        let bytes = bytes.into();
        if bytes.len() < MIN_GRANT_KEY_LEN {
            return Err(WebauthnStepUpError::Config {
                field: "grant_key",
                reason: format!(
                    "{} bytes given; at least {MIN_GRANT_KEY_LEN} are required",
                    bytes.len()
                ),
            });
        }
        Ok(GrantKey(bytes))
    }

    /// A fresh random 32-byte key from the operating system. Fine for a single
    /// process; replicas must share one key instead (see `docs/stepup.md`).
    ///
    /// # Errors
    /// [`WebauthnStepUpError::Config`] naming `grant_key` if the OS has no randomness.
    pub fn random() -> Result<Self, WebauthnStepUpError> {
        let mut bytes = vec![0u8; MIN_GRANT_KEY_LEN];
        getrandom::fill(&mut bytes).map_err(|e| WebauthnStepUpError::Config {
            field: "grant_key",
            reason: format!("no OS randomness: {e}"),
        })?;
        Ok(GrantKey(bytes))
    }

    pub(crate) fn bytes(&self) -> &[u8] {
        &self.0
    }
}

impl std::fmt::Debug for GrantKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("GrantKey(<redacted>)")
    }
}

/// Configuration of [`WebauthnStepUp`](crate::WebauthnStepUp).
#[derive(Debug, Clone)]
pub struct StepUpConfig {
    /// Relying-party id: the registrable domain passkeys are bound to (`example.com`).
    /// Changing it later invalidates every registered passkey.
    pub rp_id: String,
    /// The origin the console is served from (`https://console.example.com`).
    pub rp_origin: Url,
    /// Further allowed origins (other console hosts of the same rp id).
    pub extra_origins: Vec<Url>,
    /// Name shown by authenticators; defaults to `rp_id`.
    pub rp_name: Option<String>,
    /// Lifetime of registration and step-up challenges.
    pub challenge_ttl: Duration,
    /// Lifetime of a step-up grant.
    pub grant_ttl: Duration,
    /// Key that signs grants.
    pub grant_key: GrantKey,
}

impl StepUpConfig {
    /// A configuration with the default lifetimes (5 minutes each).
    pub fn new(rp_id: impl Into<String>, rp_origin: Url, grant_key: GrantKey) -> Self {
        StepUpConfig {
            rp_id: rp_id.into(),
            rp_origin,
            extra_origins: Vec::new(),
            rp_name: None,
            challenge_ttl: DEFAULT_CHALLENGE_TTL,
            grant_ttl: DEFAULT_GRANT_TTL,
            grant_key,
        }
    }

    /// Checks lifetimes; the origin/rp-id relation is checked by webauthn-rs.
    pub(crate) fn validate(&self) -> Result<(), WebauthnStepUpError> {
        for (field, ttl) in [
            ("challenge_ttl", self.challenge_ttl),
            ("grant_ttl", self.grant_ttl),
        ] {
            if ttl <= Duration::ZERO || ttl > MAX_TTL {
                return Err(WebauthnStepUpError::Config {
                    field,
                    reason: format!("{ttl} is outside (0, {MAX_TTL}]"),
                });
            }
        }
        Ok(())
    }
}
