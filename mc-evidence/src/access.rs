//! Access logging for pre-signed URLs (spec §7: "pre-signed URLs limited to 10m;
//! access logged").
//!
//! The host's download route calls [`AccessLogger::authorize_request`] with the
//! request path and query before streaming a blob: the URL's signature and expiry
//! are checked against the host's `Clock`, and a granted access is appended to the
//! tenant's audit chain as an `mc.evidence.access` event (who, what, when).
//! Refusals are *not* written to the tenant's chain: the tenant named in a forged
//! URL is attacker-controlled, and writing it would let anyone spam any tenant's
//! audit log. They are reported through `tracing` instead.
//!
//! ```
//! use std::sync::Arc;
//! use mc_core::{signed_url::UrlSigner, *};
//! use mc_evidence::access::AccessLogger;
//! use time::macros::datetime;
//!
//! # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
//! let clock = Arc::new(ManualClock::new(datetime!(2025-12-10 18:00 UTC)));
//! let signer = UrlSigner::new(vec![1; 32], "http://localhost:8080/blobs");
//! let audit = Arc::new(MemoryStore::new());
//! let key = BlobKey::new("tenants/acme/logs/exec_1/run.log").unwrap();
//! let url = signer.sign("GET", &key, clock.now() + time::Duration::minutes(10));
//!
//! let logger = AccessLogger::new(signer, audit.clone(), clock.clone());
//! let who = ActorId::new("auditor@acme").unwrap();
//! let grant = logger.authorize_url(&url, &who, Some("203.0.113.9")).await.unwrap();
//! assert_eq!(grant.key, key);
//! assert_eq!(grant.event.kind, "mc.evidence.access");
//! clock.advance(time::Duration::minutes(11));
//! assert!(logger.authorize_url(&url, &who, None).await.is_err());
//! # });
//! ```

use std::sync::Arc;

use mc_core::audit::{AuditActor, AuditSubject};
use mc_core::signed_url::UrlSigner;
use mc_core::{ActorId, AuditEvent, AuditLog, BlobKey, Clock, ExecutionId, NewAuditEvent};

use crate::error::EvidenceError;

/// Audit event type of a granted evidence download.
pub const EVIDENCE_ACCESS: &str = "mc.evidence.access";

/// A granted access: the blob to serve and the audit event that recorded it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessGrant {
    /// The blob the URL is for.
    pub key: BlobKey,
    /// The sealed `mc.evidence.access` event.
    pub event: AuditEvent,
}

/// Verifies pre-signed URLs and logs every granted access.
#[derive(Clone)]
pub struct AccessLogger {
    signer: UrlSigner,
    audit: Arc<dyn AuditLog>,
    clock: Arc<dyn Clock>,
}

impl std::fmt::Debug for AccessLogger {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AccessLogger")
            .field("signer", &self.signer)
            .finish_non_exhaustive()
    }
}

impl AccessLogger {
    /// A logger checking URLs with `signer` (the same one the blob store signs with).
    pub fn new(signer: UrlSigner, audit: Arc<dyn AuditLog>, clock: Arc<dyn Clock>) -> Self {
        AccessLogger {
            signer,
            audit,
            clock,
        }
    }

    /// Verifies a full URL and logs the access.
    ///
    /// # Errors
    /// [`EvidenceError::AccessRefused`] for a malformed, tampered or expired URL;
    /// [`EvidenceError::InvalidInput`] naming `url` for a key outside
    /// `tenants/{tenant}/…`; [`EvidenceError::Store`] when the audit append fails
    /// (the download must then not be served).
    pub async fn authorize_url(
        &self,
        url: &str,
        who: &ActorId,
        client: Option<&str>,
    ) -> Result<AccessGrant, EvidenceError> {
        let verdict = self.signer.verify_url("GET", url, self.clock.now());
        self.grant(verdict, who, client).await
    }

    /// Verifies a request as an HTTP route sees it: `path` is the blob key (the part
    /// after the signer's base, without the leading `/`) and `query` is
    /// `expires=…&sig=…`.
    ///
    /// # Errors
    /// As [`AccessLogger::authorize_url`].
    pub async fn authorize_request(
        &self,
        path: &str,
        query: &str,
        who: &ActorId,
        client: Option<&str>,
    ) -> Result<AccessGrant, EvidenceError> {
        let verdict =
            self.signer
                .verify("GET", path.trim_start_matches('/'), query, self.clock.now());
        self.grant(verdict, who, client).await
    }

    async fn grant(
        &self,
        verdict: Result<BlobKey, mc_core::signed_url::SignedUrlError>,
        who: &ActorId,
        client: Option<&str>,
    ) -> Result<AccessGrant, EvidenceError> {
        let key = verdict.inspect_err(|e| {
            tracing::warn!(error = %e, actor = %who, "evidence URL refused");
        })?;
        let tenant = key.tenant().ok_or_else(|| EvidenceError::InvalidInput {
            field: "url",
            reason: format!("key {key} is outside the tenants/{{tenant}}/ layout"),
        })?;
        let execution = key
            .as_str()
            .split('/')
            .nth(3)
            .and_then(|e| ExecutionId::new(e).ok());
        let event = NewAuditEvent {
            id: None,
            kind: EVIDENCE_ACCESS.to_string(),
            actor: AuditActor {
                sub: who.clone(),
                tenant,
            },
            subject: AuditSubject {
                execution_id: execution,
                resource: Some(key.to_string()),
            },
            data: serde_json::json!({
                "method": "GET",
                "kind": key.kind(),
                "client": client,
            }),
            ts: self.clock.now(),
        };
        let event = self
            .audit
            .append(event)
            .await
            .map_err(EvidenceError::Store)?;
        tracing::info!(key = %key, actor = %who, "evidence access logged");
        Ok(AccessGrant { key, event })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mc_core::signed_url::SignedUrlError;
    use mc_core::{ManualClock, MemoryStore, TenantId};
    use time::macros::datetime;

    #[tokio::test]
    async fn grants_are_logged_refusals_are_not() {
        let clock = Arc::new(ManualClock::new(datetime!(2025-12-10 18:00 UTC)));
        let signer = UrlSigner::new(vec![3; 32], "memory://mc");
        let audit = Arc::new(MemoryStore::new());
        let logger = AccessLogger::new(signer.clone(), audit.clone(), clock.clone());
        let who = ActorId::new("bob@acme").unwrap();
        let tenant = TenantId::new("acme").unwrap();
        let key = BlobKey::new("tenants/acme/logs/exec_9/run.log").unwrap();
        let url = signer.sign("GET", &key, clock.now() + time::Duration::minutes(5));

        let g = logger
            .authorize_url(&url, &who, Some("10.0.0.1"))
            .await
            .unwrap();
        assert_eq!(
            g.event.subject.execution_id.as_ref().unwrap().as_str(),
            "exec_9"
        );
        assert_eq!(g.event.actor.sub, who);
        assert_eq!(g.event.data["client"], "10.0.0.1");
        assert_eq!(g.event.ts, clock.now());
        let (path, query) = url
            .strip_prefix("memory://mc/")
            .unwrap()
            .split_once('?')
            .unwrap();
        logger
            .authorize_request(path, query, &who, None)
            .await
            .unwrap();
        assert_eq!(audit.verify(&tenant).await.unwrap(), 2);

        let tampered = url.replace("run.log", "other.log");
        assert!(matches!(
            logger.authorize_url(&tampered, &who, None).await,
            Err(EvidenceError::AccessRefused(SignedUrlError::BadSignature))
        ));
        clock.advance(time::Duration::minutes(5));
        assert!(matches!(
            logger.authorize_url(&url, &who, None).await,
            Err(EvidenceError::AccessRefused(SignedUrlError::Expired))
        ));
        let outside = BlobKey::new("misc/x").unwrap();
        let u = signer.sign("GET", &outside, clock.now() + time::Duration::minutes(1));
        assert!(matches!(
            logger.authorize_url(&u, &who, None).await,
            Err(EvidenceError::InvalidInput { field: "url", .. })
        ));
        assert_eq!(audit.verify(&tenant).await.unwrap(), 2);
    }
}
