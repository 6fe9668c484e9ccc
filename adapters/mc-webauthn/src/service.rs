//! The step-up service: passkey registration, step-up challenges, grants.

use std::sync::Arc;

use async_trait::async_trait;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use mc_core::{ActorId, Clock, StepUpBinding, StepUpError, StepUpGrant, StepUpVerifier, TenantId};
use sha2::{Digest, Sha256};
use time::{Duration, OffsetDateTime};
use uuid::Uuid;
use webauthn_rs::prelude::{Passkey, Webauthn, WebauthnBuilder, WebauthnError};

use crate::api::{
    ChallengeFinishRequest, ChallengeFinishResponse, ChallengeStartRequest, ChallengeStartResponse,
    RegistrationFinishRequest, RegistrationFinishResponse, RegistrationStartRequest,
    RegistrationStartResponse,
};
use crate::config::StepUpConfig;
use crate::error::WebauthnStepUpError;
use crate::grant::GrantSigner;
use crate::store::{PendingChallenge, PendingRegistration, StepUpStore, StoredPasskey};

/// Longest accepted display name, in characters.
const MAX_DISPLAY_NAME: usize = 64;

/// WebAuthn step-up for console write actions.
///
/// Cheap to clone (shared state behind an `Arc`). Implements mc-core's
/// [`StepUpVerifier`], so `mc-actions` can verify the grants it issues.
#[derive(Clone)]
pub struct WebauthnStepUp {
    inner: Arc<Inner>,
}

struct Inner {
    webauthn: Webauthn,
    signer: GrantSigner,
    store: Arc<dyn StepUpStore>,
    clock: Arc<dyn Clock>,
    challenge_ttl: Duration,
    grant_ttl: Duration,
}

impl std::fmt::Debug for WebauthnStepUp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebauthnStepUp")
            .field("origins", &self.inner.webauthn.get_allowed_origins())
            .field("challenge_ttl", &self.inner.challenge_ttl)
            .field("grant_ttl", &self.inner.grant_ttl)
            .finish_non_exhaustive()
    }
}

/// The WebAuthn user handle of an actor: derived, not stored, so no extra table is
/// needed; tenant-qualified so one subject in two tenants gets two handles.
fn user_handle(tenant: &TenantId, actor: &ActorId) -> Uuid {
    let mut h = Sha256::new();
    h.update(b"mc-webauthn-user-handle-v1\0");
    h.update(tenant.as_str().as_bytes());
    h.update(b"\0");
    h.update(actor.as_str().as_bytes());
    let digest = h.finalize();
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&digest[..16]);
    Uuid::new_v8(bytes)
}

fn credential_id_of(passkey: &Passkey) -> String {
    URL_SAFE_NO_PAD.encode(passkey.cred_id())
}

/// Maps webauthn-rs refusals to typed errors; `rejected` wraps everything else.
fn ceremony_error(
    e: WebauthnError,
    rejected: fn(String) -> WebauthnStepUpError,
) -> WebauthnStepUpError {
    match e {
        WebauthnError::InvalidRPOrigin => WebauthnStepUpError::WrongOrigin,
        WebauthnError::MismatchedChallenge => WebauthnStepUpError::ChallengeMismatch,
        other => rejected(other.to_string()),
    }
}

impl WebauthnStepUp {
    /// A service for the relying party in `config`, keeping state in `store` and
    /// reading time from `clock`.
    ///
    /// # Errors
    /// [`WebauthnStepUpError::Config`] naming the field: `rp_id` not a registrable
    /// suffix of the origin's host, a lifetime outside (0, 15 min], ...
    pub fn new(
        config: StepUpConfig,
        store: Arc<dyn StepUpStore>,
        clock: Arc<dyn Clock>,
    ) -> Result<Self, WebauthnStepUpError> {
        config.validate()?;
        let config_err = |field, e: WebauthnError| WebauthnStepUpError::Config {
            field,
            reason: e.to_string(),
        };
        let mut builder = WebauthnBuilder::new(&config.rp_id, &config.rp_origin).map_err(|e| {
            WebauthnStepUpError::Config {
                field: "rp_id",
                reason: format!(
                    "{:?} is not the host of {} or a parent domain of it ({e})",
                    config.rp_id, config.rp_origin
                ),
            }
        })?;
        for origin in &config.extra_origins {
            builder = builder.append_allowed_origin(origin);
        }
        if let Some(name) = &config.rp_name {
            builder = builder.rp_name(name);
        }
        let timeout = std::time::Duration::try_from(config.challenge_ttl).map_err(|e| {
            WebauthnStepUpError::Config {
                field: "challenge_ttl",
                reason: e.to_string(),
            }
        })?;
        let webauthn = builder
            .timeout(timeout)
            .build()
            .map_err(|e| config_err("rp_origin", e))?;
        Ok(WebauthnStepUp {
            inner: Arc::new(Inner {
                webauthn,
                signer: GrantSigner::new(config.grant_key),
                store,
                clock,
                challenge_ttl: config.challenge_ttl,
                grant_ttl: config.grant_ttl,
            }),
        })
    }

    /// The store (for purging, or for a host that lists passkeys).
    pub fn store(&self) -> &Arc<dyn StepUpStore> {
        &self.inner.store
    }

    /// The grant signer (to verify a grant without consuming it).
    pub fn signer(&self) -> &GrantSigner {
        &self.inner.signer
    }

    /// Starts registering a passkey for `actor` in `tenant`. Already registered
    /// passkeys of the actor are excluded, so one authenticator is enrolled once.
    ///
    /// # Errors
    /// [`WebauthnStepUpError::BadRequest`] for a bad `display_name`;
    /// [`WebauthnStepUpError::StepUp`]`(`[`StepUpError::Unavailable`]`)` when the store is down.
    #[tracing::instrument(skip_all, fields(tenant = %tenant, actor = %actor))]
    pub async fn start_registration(
        &self,
        tenant: &TenantId,
        actor: &ActorId,
        req: RegistrationStartRequest,
    ) -> Result<RegistrationStartResponse, WebauthnStepUpError> {
        let display_name = match req.display_name {
            Some(name) => {
                if name.trim().is_empty()
                    || name.chars().count() > MAX_DISPLAY_NAME
                    || name.chars().any(char::is_control)
                {
                    return Err(WebauthnStepUpError::BadRequest {
                        field: "display_name",
                        reason: format!("must be 1 to {MAX_DISPLAY_NAME} printable characters"),
                    });
                }
                name
            }
            None => actor.to_string(),
        };
        let existing = self.inner.store.passkeys(tenant, actor).await?;
        let exclude: Vec<_> = existing
            .iter()
            .map(|p| p.passkey.cred_id().clone())
            .collect();
        let (options, state) = self
            .inner
            .webauthn
            .start_passkey_registration(
                user_handle(tenant, actor),
                actor.as_str(),
                &display_name,
                (!exclude.is_empty()).then_some(exclude),
            )
            .map_err(|e| WebauthnStepUpError::RegistrationRejected(e.to_string()))?;
        let pending = PendingRegistration {
            id: Uuid::new_v4(),
            tenant: tenant.clone(),
            actor: actor.clone(),
            state,
            expires_at: self.inner.clock.now() + self.inner.challenge_ttl,
        };
        let (registration_id, expires_at) = (pending.id, pending.expires_at);
        self.inner.store.put_registration(pending).await?;
        tracing::info!(%registration_id, "passkey registration started");
        Ok(RegistrationStartResponse {
            registration_id,
            expires_at,
            options,
        })
    }

    /// Finishes a registration: verifies the authenticator's response against the
    /// stored state and stores the passkey. The registration is consumed whatever
    /// the outcome (a failed attempt starts over).
    ///
    /// # Errors
    /// `RegistrationNotFound`, `Mismatch { field: "actor" }`, `Expired("registration")`,
    /// `WrongOrigin`, `ChallengeMismatch`, `RegistrationRejected`,
    /// `CredentialAlreadyRegistered`, or the outage error.
    #[tracing::instrument(skip_all, fields(tenant = %tenant, actor = %actor, registration_id = %req.registration_id))]
    pub async fn finish_registration(
        &self,
        tenant: &TenantId,
        actor: &ActorId,
        req: RegistrationFinishRequest,
    ) -> Result<RegistrationFinishResponse, WebauthnStepUpError> {
        let pending = self
            .inner
            .store
            .take_registration(tenant, req.registration_id)
            .await?
            .ok_or(WebauthnStepUpError::RegistrationNotFound)?;
        if &pending.actor != actor {
            return Err(WebauthnStepUpError::Mismatch { field: "actor" });
        }
        if self.inner.clock.now() >= pending.expires_at {
            return Err(WebauthnStepUpError::Expired("registration"));
        }
        let passkey = self
            .inner
            .webauthn
            .finish_passkey_registration(&req.credential, &pending.state)
            .map_err(|e| ceremony_error(e, WebauthnStepUpError::RegistrationRejected))?;
        let credential_id = credential_id_of(&passkey);
        self.inner
            .store
            .add_passkey(StoredPasskey {
                tenant: tenant.clone(),
                actor: actor.clone(),
                credential_id: credential_id.clone(),
                passkey,
            })
            .await?;
        tracing::info!(%credential_id, "passkey registered");
        Ok(RegistrationFinishResponse { credential_id })
    }

    /// Starts a step-up challenge for one action on one execution, answerable with
    /// any passkey of the actor, once, within the challenge lifetime.
    ///
    /// # Errors
    /// `NoPasskey`; the outage error ([`StepUpError::Unavailable`]) when the store is down.
    #[tracing::instrument(skip_all, fields(tenant = %tenant, actor = %actor, action = %req.action, execution_id = %req.execution_id))]
    pub async fn start_challenge(
        &self,
        tenant: &TenantId,
        actor: &ActorId,
        req: ChallengeStartRequest,
    ) -> Result<ChallengeStartResponse, WebauthnStepUpError> {
        let passkeys: Vec<Passkey> = self
            .inner
            .store
            .passkeys(tenant, actor)
            .await?
            .into_iter()
            .map(|p| p.passkey)
            .collect();
        if passkeys.is_empty() {
            return Err(WebauthnStepUpError::NoPasskey);
        }
        let (options, state) = self
            .inner
            .webauthn
            .start_passkey_authentication(&passkeys)
            .map_err(|e| WebauthnStepUpError::AssertionRejected(e.to_string()))?;
        let binding = StepUpBinding {
            tenant: tenant.clone(),
            actor: actor.clone(),
            action: req.action,
            execution_id: req.execution_id,
        };
        let pending = PendingChallenge {
            id: Uuid::new_v4(),
            binding: binding.clone(),
            state,
            expires_at: self.inner.clock.now() + self.inner.challenge_ttl,
        };
        let (challenge_id, expires_at) = (pending.id, pending.expires_at);
        self.inner.store.put_challenge(pending).await?;
        tracing::info!(%challenge_id, "step-up challenge started");
        Ok(ChallengeStartResponse {
            challenge_id,
            expires_at,
            binding,
            options,
        })
    }

    /// Answers a step-up challenge: the challenge is taken from the store (so it can
    /// never be answered twice, even on another replica), checked for actor and
    /// expiry, the assertion verified by webauthn-rs, the passkey's counter updated,
    /// and a grant bound to the challenge's tenant, actor, action and execution issued.
    ///
    /// # Errors
    /// `ChallengeNotFound` (unknown or already answered — a replay),
    /// `Mismatch { field: "actor" }`, `Expired("challenge")`, `WrongOrigin`,
    /// `ChallengeMismatch` (an assertion for another challenge), `AssertionRejected`,
    /// or the outage error.
    #[tracing::instrument(skip_all, fields(tenant = %tenant, actor = %actor, challenge_id = %req.challenge_id))]
    pub async fn finish_challenge(
        &self,
        tenant: &TenantId,
        actor: &ActorId,
        req: ChallengeFinishRequest,
    ) -> Result<ChallengeFinishResponse, WebauthnStepUpError> {
        let pending = self
            .inner
            .store
            .take_challenge(tenant, req.challenge_id)
            .await?
            .ok_or(WebauthnStepUpError::ChallengeNotFound)?;
        if &pending.binding.actor != actor {
            return Err(WebauthnStepUpError::Mismatch { field: "actor" });
        }
        let now = self.inner.clock.now();
        if now >= pending.expires_at {
            return Err(WebauthnStepUpError::Expired("challenge"));
        }
        let result = self
            .inner
            .webauthn
            .finish_passkey_authentication(&req.credential, &pending.state)
            .map_err(|e| ceremony_error(e, WebauthnStepUpError::AssertionRejected))?;
        // Keep the signature counter current so a cloned authenticator shows up as
        // a counter going backwards on its next use.
        if result.needs_update() {
            let stored = self.inner.store.passkeys(tenant, actor).await?;
            for mut p in stored {
                if p.passkey.cred_id() == result.cred_id()
                    && p.passkey.update_credential(&result) == Some(true)
                {
                    self.inner.store.update_passkey(p).await?;
                }
            }
        }
        let (grant, claims) = self
            .inner
            .signer
            .issue(&pending.binding, now, self.inner.grant_ttl);
        tracing::info!(grant_id = %claims.grant_id, "step-up grant issued");
        Ok(ChallengeFinishResponse {
            grant,
            binding: claims.binding,
            expires_at: claims.expires_at,
        })
    }

    /// Deletes expired registrations, challenges and used-grant ids (run it now and
    /// then, e.g. from the janitor). Returns how many records were deleted.
    ///
    /// # Errors
    /// The outage error when the store is down.
    pub async fn purge_expired(&self) -> Result<u64, WebauthnStepUpError> {
        Ok(self
            .inner
            .store
            .purge_expired(self.inner.clock.now())
            .await?)
    }
}

#[async_trait]
impl StepUpVerifier for WebauthnStepUp {
    /// Signature (constant time), expiry, binding field by field, then single use
    /// through the store. A forged, expired or mismatched grant is refused without
    /// touching the store; a good grant while the store is down is refused with
    /// [`StepUpError::Unavailable`] (never accepted unconsumed).
    #[tracing::instrument(skip_all, fields(tenant = %binding.tenant, actor = %binding.actor, action = %binding.action, execution_id = %binding.execution_id))]
    async fn verify_and_consume(
        &self,
        grant: &StepUpGrant,
        binding: &StepUpBinding,
        now: OffsetDateTime,
    ) -> Result<(), StepUpError> {
        let claims = self.inner.signer.verify(grant, binding, now)?;
        match self
            .inner
            .store
            .consume_grant(&claims.binding.tenant, claims.grant_id, claims.expires_at)
            .await
        {
            Ok(true) => Ok(()),
            Ok(false) => Err(StepUpError::AlreadyUsed),
            Err(e) => Err(StepUpError::Unavailable(e.to_string())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::GrantKey;
    use crate::memory::MemoryStepUpStore;
    use mc_core::SystemClock;
    use url::Url;

    fn build(config: StepUpConfig) -> Result<WebauthnStepUp, WebauthnStepUpError> {
        WebauthnStepUp::new(
            config,
            Arc::new(MemoryStepUpStore::new()),
            Arc::new(SystemClock),
        )
    }

    fn config(rp_id: &str, origin: &str) -> StepUpConfig {
        StepUpConfig::new(
            rp_id,
            Url::parse(origin).unwrap(),
            GrantKey::new(vec![3u8; 32]).unwrap(),
        )
    }

    #[test]
    fn configuration_errors_name_the_field() {
        assert!(build(config("example.com", "https://console.example.com")).is_ok());
        let field = |r: Result<WebauthnStepUp, WebauthnStepUpError>| match r {
            Err(WebauthnStepUpError::Config { field, .. }) => field,
            other => panic!("expected a config error, got {other:?}"),
        };
        assert_eq!(
            field(build(config("example.org", "https://console.example.com"))),
            "rp_id"
        );
        let mut long = config("example.com", "https://console.example.com");
        long.grant_ttl = Duration::hours(1);
        assert_eq!(field(build(long)), "grant_ttl");
        let mut zero = config("example.com", "https://console.example.com");
        zero.challenge_ttl = Duration::ZERO;
        assert_eq!(field(build(zero)), "challenge_ttl");
        assert!(matches!(
            GrantKey::new(vec![0u8; 31]),
            Err(WebauthnStepUpError::Config {
                field: "grant_key",
                ..
            })
        ));
        assert_ne!(
            GrantKey::random().unwrap().bytes(),
            GrantKey::random().unwrap().bytes()
        );
    }

    #[test]
    fn user_handles_are_tenant_qualified_and_stable() {
        let t1 = TenantId::new("acme").unwrap();
        let t2 = TenantId::new("globex").unwrap();
        let a = ActorId::new("alice").unwrap();
        assert_eq!(user_handle(&t1, &a), user_handle(&t1, &a));
        assert_ne!(user_handle(&t1, &a), user_handle(&t2, &a));
    }

    #[test]
    fn debug_never_prints_the_grant_key() {
        let s = format!("{:?}", config("example.com", "https://console.example.com"));
        assert!(s.contains("GrantKey(<redacted>)"), "{s}");
        assert!(!s.contains("3, 3, 3"), "{s}");
    }
}
