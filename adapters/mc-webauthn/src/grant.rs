//! Step-up grant tokens: HMAC-SHA256 signed, bound, short-lived, single-use.
//!
//! Format: `mcsu1.<base64url(claims JSON)>.<base64url(HMAC-SHA256(key, "mc-stepup-grant-v1\n" ‖ claims part))>`.
//! The claims carry the [`StepUpBinding`], the issue and expiry times and a random
//! grant id; the id is what the store records as used, so single use holds across
//! replicas that share the store. Verification here is pure (no I/O): signature
//! (constant-time), expiry, then binding field by field. Consumption is the
//! caller's job ([`WebauthnStepUp`](crate::WebauthnStepUp) does it through the store).
//!
//! ```
//! use mc_core::{ActionKind, ActorId, ExecutionId, StepUpBinding, StepUpError, TenantId};
//! use mc_webauthn::{GrantKey, GrantSigner};
//! use time::{macros::datetime, Duration};
//!
//! let signer = GrantSigner::new(GrantKey::new(vec![7u8; 32]).unwrap());
//! let binding = StepUpBinding {
//!     tenant: TenantId::new("acme").unwrap(),
//!     actor: ActorId::new("alice@acme").unwrap(),
//!     action: ActionKind::Cancel,
//!     execution_id: ExecutionId::new("exec_1").unwrap(),
//! };
//! let now = datetime!(2025-12-10 18:00 UTC);
//! let (grant, claims) = signer.issue(&binding, now, Duration::minutes(5));
//! assert_eq!(signer.verify(&grant, &binding, now).unwrap(), claims);
//! let mut other = binding.clone();
//! other.action = ActionKind::Retry;
//! assert_eq!(signer.verify(&grant, &other, now), Err(StepUpError::Mismatch { field: "action" }));
//! assert_eq!(signer.verify(&grant, &binding, now + Duration::minutes(5)), Err(StepUpError::Expired));
//! ```

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, KeyInit, Mac};
use mc_core::{StepUpBinding, StepUpError, StepUpGrant};
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use subtle::ConstantTimeEq;
use time::{Duration, OffsetDateTime};
use uuid::Uuid;

use crate::config::GrantKey;

const PREFIX: &str = "mcsu1";
const DOMAIN: &[u8] = b"mc-stepup-grant-v1\n";
/// Tokens longer than this are refused before any decoding (cheap DoS guard).
const MAX_TOKEN_LEN: usize = 4096;

/// What a grant says: who may do what, on which execution, until when.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GrantClaims {
    /// Unique id; recorded as used on first successful verification.
    pub grant_id: Uuid,
    /// Tenant, actor, action and execution the grant is bound to.
    pub binding: StepUpBinding,
    /// When the grant was issued.
    #[serde(with = "time::serde::rfc3339")]
    pub issued_at: OffsetDateTime,
    /// The first instant at which the grant is no longer valid.
    #[serde(with = "time::serde::rfc3339")]
    pub expires_at: OffsetDateTime,
}

/// Issues and verifies grant tokens with one [`GrantKey`].
#[derive(Debug, Clone)]
pub struct GrantSigner {
    key: GrantKey,
}

impl GrantSigner {
    /// A signer using `key`.
    pub fn new(key: GrantKey) -> Self {
        GrantSigner { key }
    }

    fn mac(&self, claims_part: &str) -> Hmac<Sha256> {
        // HMAC accepts keys of any length; GrantKey guarantees at least 32 bytes.
        let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(self.key.bytes())
            .expect("HMAC-SHA256 accepts keys of any length");
        mac.update(DOMAIN);
        mac.update(claims_part.as_bytes());
        mac
    }

    /// Issues a grant for `binding`, valid from `now` for `ttl`, with a fresh random id.
    pub fn issue(
        &self,
        binding: &StepUpBinding,
        now: OffsetDateTime,
        ttl: Duration,
    ) -> (StepUpGrant, GrantClaims) {
        let claims = GrantClaims {
            grant_id: Uuid::new_v4(),
            binding: binding.clone(),
            issued_at: now,
            expires_at: now + ttl,
        };
        (self.encode(&claims), claims)
    }

    /// Encodes and signs `claims` (exposed for tests that need odd claims).
    pub fn encode(&self, claims: &GrantClaims) -> StepUpGrant {
        // Serialising plain data with derived Serialize cannot fail.
        let json = serde_json::to_vec(claims).expect("grant claims serialise");
        let claims_part = URL_SAFE_NO_PAD.encode(json);
        let sig = URL_SAFE_NO_PAD.encode(self.mac(&claims_part).finalize().into_bytes());
        StepUpGrant::new(format!("{PREFIX}.{claims_part}.{sig}"))
    }

    /// Checks signature (constant time), expiry and binding; does **not** consume.
    ///
    /// # Errors
    /// [`StepUpError::Invalid`] for a malformed or forged token,
    /// [`StepUpError::Expired`] at or after its expiry,
    /// [`StepUpError::Mismatch`] naming the first differing binding field
    /// (`tenant`, `actor`, `action`, `execution_id`).
    pub fn verify(
        &self,
        grant: &StepUpGrant,
        binding: &StepUpBinding,
        now: OffsetDateTime,
    ) -> Result<GrantClaims, StepUpError> {
        let claims = self.verify_signature(grant)?;
        if now >= claims.expires_at {
            return Err(StepUpError::Expired);
        }
        check_binding(&claims.binding, binding)?;
        Ok(claims)
    }

    /// Checks only the signature and decodes the claims.
    ///
    /// # Errors
    /// [`StepUpError::Invalid`] for a malformed or forged token.
    pub fn verify_signature(&self, grant: &StepUpGrant) -> Result<GrantClaims, StepUpError> {
        let token = grant.expose();
        if token.len() > MAX_TOKEN_LEN {
            return Err(StepUpError::Invalid);
        }
        let mut parts = token.split('.');
        let (Some(PREFIX), Some(claims_part), Some(sig_part), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(StepUpError::Invalid);
        };
        let sig = URL_SAFE_NO_PAD
            .decode(sig_part)
            .map_err(|_| StepUpError::Invalid)?;
        let expected = self.mac(claims_part).finalize().into_bytes();
        // Constant-time compare: a timing side channel must not leak how many
        // leading bytes of a forged signature were right.
        if sig.len() != expected.len() || !bool::from(sig.as_slice().ct_eq(expected.as_slice())) {
            return Err(StepUpError::Invalid);
        }
        let json = URL_SAFE_NO_PAD
            .decode(claims_part)
            .map_err(|_| StepUpError::Invalid)?;
        serde_json::from_slice(&json).map_err(|_| StepUpError::Invalid)
    }
}

/// Compares a grant's binding with the expected one, field by field, so the error
/// says which one differs.
pub(crate) fn check_binding(got: &StepUpBinding, want: &StepUpBinding) -> Result<(), StepUpError> {
    if got.tenant != want.tenant {
        return Err(StepUpError::Mismatch { field: "tenant" });
    }
    if got.actor != want.actor {
        return Err(StepUpError::Mismatch { field: "actor" });
    }
    if got.action != want.action {
        return Err(StepUpError::Mismatch { field: "action" });
    }
    if got.execution_id != want.execution_id {
        return Err(StepUpError::Mismatch {
            field: "execution_id",
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use mc_core::{ActionKind, ActorId, ExecutionId, TenantId};
    use time::macros::datetime;

    fn binding() -> StepUpBinding {
        StepUpBinding {
            tenant: TenantId::new("acme").unwrap(),
            actor: ActorId::new("alice@acme").unwrap(),
            action: ActionKind::Cancel,
            execution_id: ExecutionId::new("exec_1").unwrap(),
        }
    }

    fn signer() -> GrantSigner {
        GrantSigner::new(GrantKey::new(vec![1u8; 32]).unwrap())
    }

    const NOW: OffsetDateTime = datetime!(2025-12-10 18:00 UTC);

    #[test]
    fn roundtrip_and_expiry_boundary() {
        let (g, c) = signer().issue(&binding(), NOW, Duration::minutes(5));
        assert_eq!(c.expires_at, NOW + Duration::minutes(5));
        assert_eq!(signer().verify(&g, &binding(), NOW).unwrap(), c);
        let last = NOW + Duration::minutes(5) - Duration::seconds(1);
        assert!(signer().verify(&g, &binding(), last).is_ok());
        assert_eq!(
            signer().verify(&g, &binding(), NOW + Duration::minutes(5)),
            Err(StepUpError::Expired)
        );
    }

    #[test]
    fn each_binding_field_is_named() {
        let (g, _) = signer().issue(&binding(), NOW, Duration::minutes(5));
        let mut b = binding();
        b.tenant = TenantId::new("globex").unwrap();
        assert_eq!(
            signer().verify(&g, &b, NOW),
            Err(StepUpError::Mismatch { field: "tenant" })
        );
        let mut b = binding();
        b.actor = ActorId::new("mallory@acme").unwrap();
        assert_eq!(
            signer().verify(&g, &b, NOW),
            Err(StepUpError::Mismatch { field: "actor" })
        );
        let mut b = binding();
        b.execution_id = ExecutionId::new("exec_2").unwrap();
        assert_eq!(
            signer().verify(&g, &b, NOW),
            Err(StepUpError::Mismatch {
                field: "execution_id"
            })
        );
    }

    #[test]
    fn forged_tampered_and_foreign_key_tokens_are_invalid() {
        let (g, c) = signer().issue(&binding(), NOW, Duration::minutes(5));
        let other = GrantSigner::new(GrantKey::new(vec![2u8; 32]).unwrap());
        assert_eq!(other.verify(&g, &binding(), NOW), Err(StepUpError::Invalid));

        // Re-encode longer-lived claims but keep the old signature.
        let mut longer = c.clone();
        longer.expires_at = NOW + Duration::days(1);
        let forged_claims = signer().encode(&longer);
        let old_sig = g.expose().rsplit('.').next().unwrap();
        let new_claims = forged_claims.expose().split('.').nth(1).unwrap();
        let spliced = StepUpGrant::new(format!("mcsu1.{new_claims}.{old_sig}"));
        assert_eq!(
            signer().verify(&spliced, &binding(), NOW),
            Err(StepUpError::Invalid)
        );

        for bad in [
            "",
            "mcsu1",
            "mcsu1..",
            "mcsu2.a.b",
            "mcsu1.a.b.c",
            "mcsu1.!!!.???",
        ] {
            assert_eq!(
                signer().verify(&StepUpGrant::new(bad), &binding(), NOW),
                Err(StepUpError::Invalid),
                "{bad:?}"
            );
        }
        let huge = StepUpGrant::new("x".repeat(MAX_TOKEN_LEN + 1));
        assert_eq!(
            signer().verify(&huge, &binding(), NOW),
            Err(StepUpError::Invalid)
        );
    }

    #[test]
    fn grant_ids_are_unique() {
        let (_, a) = signer().issue(&binding(), NOW, Duration::minutes(5));
        let (_, b) = signer().issue(&binding(), NOW, Duration::minutes(5));
        assert_ne!(a.grant_id, b.grant_id);
    }
}
