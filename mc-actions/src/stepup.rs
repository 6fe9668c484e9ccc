//! [`HmacStepUp`]: an HMAC-signed, short-lived, single-use step-up grant for tests,
//! the demo and hosts that run their own re-authentication. The WebAuthn verifier
//! lives in `mc-webauthn`.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use async_trait::async_trait;
use hmac::{Hmac, KeyInit, Mac};
use mc_core::{StepUpBinding, StepUpError, StepUpGrant, StepUpVerifier};
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use time::{Duration, OffsetDateTime};

#[derive(Serialize, Deserialize)]
struct Claims {
    t: String,
    a: String,
    k: String,
    e: String,
    x: i64,
    n: String,
}

/// Issues and verifies HMAC-SHA256 step-up grants bound to tenant, actor, action and
/// execution. Grants expire after `ttl` and are single-use (per verifier instance;
/// share one instance, or use `mc-webauthn`'s store-backed verifier across replicas).
///
/// ```
/// use mc_actions::HmacStepUp;
/// use mc_core::{ActionKind, ActorId, ExecutionId, StepUpBinding, StepUpVerifier, TenantId};
/// use time::macros::datetime;
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// let v = HmacStepUp::new(b"a 32-byte secret for the demo!!!".to_vec());
/// let now = datetime!(2025-12-10 18:00 UTC);
/// let b = StepUpBinding {
///     tenant: TenantId::new("acme").unwrap(),
///     actor: ActorId::new("alice@company").unwrap(),
///     action: ActionKind::Retry,
///     execution_id: ExecutionId::new("exec_123").unwrap(),
/// };
/// let grant = v.issue(&b, now);
/// assert!(v.verify_and_consume(&grant, &b, now).await.is_ok());
/// assert!(v.verify_and_consume(&grant, &b, now).await.is_err()); // single use
/// # });
/// ```
pub struct HmacStepUp {
    key: Vec<u8>,
    ttl: Duration,
    counter: AtomicU64,
    used: Mutex<HashMap<String, i64>>,
    available: AtomicBool,
}

impl std::fmt::Debug for HmacStepUp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HmacStepUp")
            .field("ttl", &self.ttl)
            .finish_non_exhaustive()
    }
}

impl HmacStepUp {
    /// Default grant lifetime: 5 minutes.
    pub const DEFAULT_TTL: Duration = Duration::minutes(5);

    /// A verifier with secret `key` and the default lifetime.
    pub fn new(key: Vec<u8>) -> Self {
        HmacStepUp {
            key,
            ttl: Self::DEFAULT_TTL,
            counter: AtomicU64::new(0),
            used: Mutex::new(HashMap::new()),
            available: AtomicBool::new(true),
        }
    }

    /// Sets the grant lifetime.
    pub fn with_ttl(mut self, ttl: Duration) -> Self {
        self.ttl = ttl;
        self
    }

    /// Simulates an outage of the step-up backend (spec §8 drill): while
    /// unavailable, every verification fails with [`StepUpError::Unavailable`].
    pub fn set_available(&self, available: bool) {
        self.available.store(available, Ordering::SeqCst);
    }

    fn mac(&self) -> Hmac<Sha256> {
        <Hmac<Sha256> as KeyInit>::new_from_slice(&self.key).expect("HMAC accepts any key length")
    }

    /// Issues a grant for `binding`, valid from `now` for the configured lifetime.
    pub fn issue(&self, binding: &StepUpBinding, now: OffsetDateTime) -> StepUpGrant {
        let n = self.counter.fetch_add(1, Ordering::Relaxed);
        let claims = Claims {
            t: binding.tenant.to_string(),
            a: binding.actor.to_string(),
            k: binding.action.as_str().to_string(),
            e: binding.execution_id.to_string(),
            x: (now + self.ttl).unix_timestamp(),
            n: format!("{}-{n}", now.unix_timestamp_nanos()),
        };
        let payload = serde_json::to_vec(&claims).expect("claims serialise");
        let mut mac = self.mac();
        mac.update(&payload);
        let sig = mac.finalize().into_bytes();
        StepUpGrant::new(format!("v1.{}.{}", hex::encode(payload), hex::encode(sig)))
    }
}

#[async_trait]
impl StepUpVerifier for HmacStepUp {
    async fn verify_and_consume(
        &self,
        grant: &StepUpGrant,
        binding: &StepUpBinding,
        now: OffsetDateTime,
    ) -> Result<(), StepUpError> {
        if !self.available.load(Ordering::SeqCst) {
            return Err(StepUpError::Unavailable(
                "step-up verifier is unreachable".into(),
            ));
        }
        let mut parts = grant.expose().split('.');
        let (Some("v1"), Some(p), Some(s), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(StepUpError::Invalid);
        };
        let payload = hex::decode(p).map_err(|_| StepUpError::Invalid)?;
        let sig = hex::decode(s).map_err(|_| StepUpError::Invalid)?;
        let mut mac = self.mac();
        mac.update(&payload);
        // Constant-time comparison: a timing oracle must not reveal the MAC.
        mac.verify_slice(&sig).map_err(|_| StepUpError::Invalid)?;
        let c: Claims = serde_json::from_slice(&payload).map_err(|_| StepUpError::Invalid)?;
        if now.unix_timestamp() >= c.x {
            return Err(StepUpError::Expired);
        }
        for (field, got, want) in [
            ("tenant", c.t.as_str(), binding.tenant.as_str()),
            ("actor", c.a.as_str(), binding.actor.as_str()),
            ("action", c.k.as_str(), binding.action.as_str()),
            ("execution", c.e.as_str(), binding.execution_id.as_str()),
        ] {
            if got != want {
                return Err(StepUpError::Mismatch { field });
            }
        }
        let mut used = self.used.lock().unwrap_or_else(|p| p.into_inner());
        let now_s = now.unix_timestamp();
        used.retain(|_, exp| *exp > now_s);
        if used.insert(c.n, c.x).is_some() {
            return Err(StepUpError::AlreadyUsed);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mc_core::{ActionKind, ActorId, ExecutionId, TenantId};
    use time::macros::datetime;

    fn binding() -> StepUpBinding {
        StepUpBinding {
            tenant: TenantId::new("acme").unwrap(),
            actor: ActorId::new("alice@company").unwrap(),
            action: ActionKind::Retry,
            execution_id: ExecutionId::new("exec_1").unwrap(),
        }
    }

    #[tokio::test]
    async fn grant_rules() {
        let v = HmacStepUp::new(vec![1; 32]);
        let now = datetime!(2025-12-10 18:00 UTC);
        let b = binding();

        let g = v.issue(&b, now);
        let mut other = b.clone();
        other.action = ActionKind::Cancel;
        assert_eq!(
            v.verify_and_consume(&g, &other, now).await,
            Err(StepUpError::Mismatch { field: "action" })
        );
        let mut other = b.clone();
        other.execution_id = ExecutionId::new("exec_2").unwrap();
        assert_eq!(
            v.verify_and_consume(&g, &other, now).await,
            Err(StepUpError::Mismatch { field: "execution" })
        );
        let mut other = b.clone();
        other.actor = ActorId::new("mallory").unwrap();
        assert_eq!(
            v.verify_and_consume(&g, &other, now).await,
            Err(StepUpError::Mismatch { field: "actor" })
        );
        assert_eq!(
            v.verify_and_consume(&g, &b, now + Duration::minutes(5))
                .await,
            Err(StepUpError::Expired)
        );
        v.verify_and_consume(&g, &b, now).await.unwrap();
        assert_eq!(
            v.verify_and_consume(&g, &b, now).await,
            Err(StepUpError::AlreadyUsed)
        );

        // Another key's grant, or a tampered one, is invalid.
        let foreign = HmacStepUp::new(vec![2; 32]).issue(&b, now);
        assert_eq!(
            v.verify_and_consume(&foreign, &b, now).await,
            Err(StepUpError::Invalid)
        );
        let g2 = v.issue(&b, now);
        let tampered = StepUpGrant::new(g2.expose().replacen("v1.7b", "v1.7c", 1));
        assert_eq!(
            v.verify_and_consume(&tampered, &b, now).await,
            Err(StepUpError::Invalid)
        );
        assert_eq!(
            v.verify_and_consume(&StepUpGrant::new("garbage"), &b, now)
                .await,
            Err(StepUpError::Invalid)
        );

        v.set_available(false);
        assert!(matches!(
            v.verify_and_consume(&g2, &b, now).await,
            Err(StepUpError::Unavailable(_))
        ));
    }
}
