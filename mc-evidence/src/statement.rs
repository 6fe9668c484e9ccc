//! in-toto Statement v1 carrying an [`EvidenceManifest`] as its predicate.
//!
//! ```json
//! { "_type": "https://in-toto.io/Statement/v1",
//!   "subject": [ { "name": "tenants/acme/logs/exec_1/run.log",
//!                  "digest": { "sha256": "…" } } ],
//!   "predicateType": "https://maestro-conductor.dev/evidence-manifest/v1",
//!   "predicate": { …EvidenceManifest… } }
//! ```
//!
//! A subject's `name` is the artifact's name in the manifest (a blob key for an
//! execution manifest, a pack path for a pack) and its digest is the digest of the
//! bytes a recipient receives (the redacted bytes, for a pack).

use std::collections::BTreeMap;

use mc_core::BlobKey;
use mc_core::BlobStore;
use serde::{Deserialize, Serialize};

use crate::dsse::{Envelope, EvidenceKey, UnsignedPayload};
use crate::error::EvidenceError;
use crate::manifest::{EvidenceManifest, ExecutionSummary, Redacted};
use mc_core::{Digest, ExecutionId, TenantId};
use time::OffsetDateTime;

/// `_type` of an in-toto Statement v1.
pub const STATEMENT_TYPE: &str = "https://in-toto.io/Statement/v1";
/// DSSE `payloadType` of an in-toto statement.
pub const IN_TOTO_PAYLOAD_TYPE: &str = "application/vnd.in-toto+json";
/// Our `predicateType`: the predicate is an [`EvidenceManifest`].
pub const PREDICATE_TYPE: &str = "https://maestro-conductor.dev/evidence-manifest/v1";

/// One subject of a statement.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Subject {
    /// The artifact's name.
    pub name: String,
    /// Digests by algorithm; we always write `sha256`.
    pub digest: BTreeMap<String, String>,
}

/// An in-toto Statement v1 whose predicate is an evidence manifest.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Statement {
    /// Always [`STATEMENT_TYPE`].
    #[serde(rename = "_type")]
    pub type_: String,
    /// What the statement is about.
    pub subject: Vec<Subject>,
    /// Always [`PREDICATE_TYPE`].
    pub predicate_type: String,
    /// The manifest.
    pub predicate: EvidenceManifest,
}

impl Statement {
    /// The statement for `manifest`: one subject per artifact, with the digest of the
    /// delivered bytes (the redacted digest when the artifact was redacted), and the
    /// manifest without its pre-signed URLs as the predicate
    /// ([`EvidenceManifest::without_urls`]).
    pub fn for_manifest(mut manifest: EvidenceManifest) -> Self {
        manifest.strip_urls();
        let subject = manifest
            .artifacts
            .iter()
            .map(|a| Subject {
                name: a.name.clone(),
                digest: BTreeMap::from([(
                    "sha256".to_string(),
                    a.delivered_sha256().as_str().to_string(),
                )]),
            })
            .collect();
        Statement {
            type_: STATEMENT_TYPE.to_string(),
            subject,
            predicate_type: PREDICATE_TYPE.to_string(),
            predicate: manifest,
        }
    }

    /// The JSON payload of the statement for `manifest`, byte for byte what
    /// `serde_json::to_vec(&Statement::for_manifest(manifest.clone()))` gives, but
    /// serialised once from borrowed data (no clone of the manifest).
    pub fn payload_for(manifest: &EvidenceManifest) -> Vec<u8> {
        let mut out = Vec::with_capacity(Self::payload_capacity(manifest));
        Self::write_payload(manifest, &mut out);
        out
    }

    /// About 300 bytes of statement JSON per artifact (more with redaction counts):
    /// one allocation up front.
    fn payload_capacity(manifest: &EvidenceManifest) -> usize {
        1024 + manifest
            .artifacts
            .iter()
            .map(|a| {
                320 + a
                    .redacted
                    .as_ref()
                    .map_or(0, |r| 96 + 32 * r.redactions.0.len())
            })
            .sum::<usize>()
    }

    /// Appends the statement JSON for `manifest` to `out`.
    fn write_payload(manifest: &EvidenceManifest, out: &mut Vec<u8>) {
        #[derive(Serialize)]
        struct DigestRef<'a> {
            sha256: &'a str,
        }
        #[derive(Serialize)]
        struct SubjectRef<'a> {
            name: &'a str,
            digest: DigestRef<'a>,
        }
        /// An [`ArtifactEntry`] without `uri` / `uriExpiresAt`, fields in the same order.
        #[derive(Serialize)]
        #[serde(rename_all = "camelCase")]
        struct ArtifactRef<'a> {
            name: &'a str,
            #[serde(skip_serializing_if = "Option::is_none")]
            kind: Option<&'a str>,
            media_type: &'a str,
            size: u64,
            sha256: &'a Digest,
            #[serde(skip_serializing_if = "Option::is_none")]
            redacted: Option<&'a Redacted>,
        }
        /// An [`EvidenceManifest`] whose artifacts are [`ArtifactRef`]s.
        #[derive(Serialize)]
        #[serde(rename_all = "camelCase")]
        struct ManifestRef<'a> {
            schema: &'a str,
            tenant: &'a TenantId,
            execution_id: &'a ExecutionId,
            #[serde(with = "time::serde::rfc3339")]
            generated_at: OffsetDateTime,
            flags: &'a BTreeMap<String, bool>,
            #[serde(skip_serializing_if = "Option::is_none")]
            execution: Option<&'a ExecutionSummary>,
            artifacts: Vec<ArtifactRef<'a>>,
        }
        #[derive(Serialize)]
        #[serde(rename_all = "camelCase")]
        struct StatementRef<'a> {
            #[serde(rename = "_type")]
            type_: &'a str,
            subject: Vec<SubjectRef<'a>>,
            predicate_type: &'a str,
            predicate: ManifestRef<'a>,
        }
        let st = StatementRef {
            type_: STATEMENT_TYPE,
            subject: manifest
                .artifacts
                .iter()
                .map(|a| SubjectRef {
                    name: &a.name,
                    digest: DigestRef {
                        sha256: a.delivered_sha256().as_str(),
                    },
                })
                .collect(),
            predicate_type: PREDICATE_TYPE,
            predicate: ManifestRef {
                schema: &manifest.schema,
                tenant: &manifest.tenant,
                execution_id: &manifest.execution_id,
                generated_at: manifest.generated_at,
                flags: &manifest.flags,
                execution: manifest.execution.as_ref(),
                artifacts: manifest
                    .artifacts
                    .iter()
                    .map(|a| ArtifactRef {
                        name: &a.name,
                        kind: a.kind.as_deref(),
                        media_type: &a.media_type,
                        size: a.size,
                        sha256: &a.sha256,
                        redacted: a.redacted.as_ref(),
                    })
                    .collect(),
            },
        };
        // Plain data into a Vec; serialising cannot fail.
        let _ = serde_json::to_writer(out, &st);
    }

    /// Signs the statement for `manifest` without building a [`Statement`].
    pub fn sign_manifest(manifest: &EvidenceManifest, key: &EvidenceKey) -> Envelope {
        Self::unsigned_for(manifest).sign(key)
    }

    /// The statement for `manifest` written into its DSSE pre-authentication
    /// encoding, ready to sign (on any thread): the bytes [`Self::payload_for`]
    /// gives, in the one buffer they are signed from.
    pub fn unsigned_for(manifest: &EvidenceManifest) -> UnsignedPayload {
        UnsignedPayload::written(
            IN_TOTO_PAYLOAD_TYPE,
            Self::payload_capacity(manifest),
            |out| Self::write_payload(manifest, out),
        )
    }

    /// Serialises and signs the statement into a DSSE envelope.
    pub fn sign(&self, key: &EvidenceKey) -> Envelope {
        // A statement is plain data; serialising it cannot fail.
        let payload = serde_json::to_vec(self).unwrap_or_default();
        Envelope::sign(IN_TOTO_PAYLOAD_TYPE, &payload, key)
    }

    /// Checks the fixed fields and that subjects and artifacts agree.
    ///
    /// # Errors
    /// [`EvidenceError::InvalidStatement`] naming `_type`, `predicateType` or `subject`.
    pub fn validate(&self) -> Result<(), EvidenceError> {
        if self.type_ != STATEMENT_TYPE {
            return Err(EvidenceError::InvalidStatement {
                field: "_type",
                reason: format!("{:?}, expected {STATEMENT_TYPE}", self.type_),
            });
        }
        if self.predicate_type != PREDICATE_TYPE {
            return Err(EvidenceError::InvalidStatement {
                field: "predicateType",
                reason: format!("{:?}, expected {PREDICATE_TYPE}", self.predicate_type),
            });
        }
        if self.subject.len() != self.predicate.artifacts.len() {
            return Err(EvidenceError::InvalidStatement {
                field: "subject",
                reason: "subjects and manifest artifacts differ in number".into(),
            });
        }
        for (s, a) in self.subject.iter().zip(&self.predicate.artifacts) {
            let d = s.digest.get("sha256").map(String::as_str);
            if s.name != a.name || d != Some(a.delivered_sha256().as_str()) {
                return Err(EvidenceError::InvalidStatement {
                    field: "subject",
                    reason: format!("subject {} disagrees with the manifest", s.name),
                });
            }
        }
        Ok(())
    }

    /// The SHA-256 recorded for subject `name`.
    pub fn sha256_of(&self, name: &str) -> Option<&str> {
        self.subject
            .iter()
            .find(|s| s.name == name)
            .and_then(|s| s.digest.get("sha256"))
            .map(String::as_str)
    }
}

/// Verifies `envelope` with `key` and returns the statement inside.
///
/// Checks, in order: the payload type is in-toto, a signature verifies over the
/// DSSE PAE, the payload is a Statement v1 with our predicate type, and its
/// subjects agree with the manifest.
///
/// # Errors
/// [`EvidenceError::UnknownPayloadType`], [`EvidenceError::BadSignature`],
/// [`EvidenceError::InvalidEnvelope`], [`EvidenceError::InvalidStatement`].
pub fn verify_envelope(
    envelope: &Envelope,
    key: &ed25519_dalek::VerifyingKey,
) -> Result<Statement, EvidenceError> {
    if envelope.payload_type != IN_TOTO_PAYLOAD_TYPE {
        return Err(EvidenceError::UnknownPayloadType {
            payload_type: envelope.payload_type.clone(),
        });
    }
    let payload = envelope.verify(key)?;
    let statement: Statement =
        serde_json::from_slice(&payload).map_err(|e| EvidenceError::InvalidStatement {
            field: "payload",
            reason: e.to_string(),
        })?;
    statement.validate()?;
    Ok(statement)
}

/// Re-reads every subject of `statement` from `blobs` (subject name = blob key) and
/// checks its SHA-256. Returns the number of artifacts checked.
///
/// # Errors
/// [`EvidenceError::ArtifactMissing`] or [`EvidenceError::DigestMismatch`] naming the
/// first artifact at fault; [`EvidenceError::Fetch`] for other store failures.
pub async fn verify_subjects(
    statement: &Statement,
    blobs: &dyn BlobStore,
) -> Result<usize, EvidenceError> {
    for s in &statement.subject {
        let key = BlobKey::new(s.name.clone()).map_err(|_| EvidenceError::InvalidStatement {
            field: "subject[].name",
            reason: format!("{:?} is not a valid blob key", s.name),
        })?;
        let (actual, _) = crate::manifest::digest_blob(blobs, &key).await?;
        let expected = s.digest.get("sha256").cloned().unwrap_or_default();
        if actual.as_str() != expected {
            return Err(EvidenceError::DigestMismatch {
                artifact: s.name.clone(),
                expected,
                actual: actual.to_string(),
            });
        }
    }
    Ok(statement.subject.len())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifest::{ArtifactEntry, Redacted};
    use crate::redact::RedactionCounts;
    use mc_core::{Digest, ExecutionId, TenantId};

    #[test]
    fn borrowed_payload_equals_the_owned_statement() {
        let mut m = EvidenceManifest::new(
            TenantId::new("acme").unwrap(),
            ExecutionId::new("exec_1").unwrap(),
            time::macros::datetime!(2025-12-10 18:00 UTC),
        );
        for (i, redacted) in [false, true, false].into_iter().enumerate() {
            m.artifacts.push(ArtifactEntry {
                name: format!("artifacts/logs/run-{i}.log"),
                kind: Some("logs".into()),
                media_type: "text/plain".into(),
                size: 10 + i as u64,
                sha256: Digest::of(format!("orig {i}").as_bytes()),
                uri: (!redacted).then(|| format!("memory://mc/x/{i}?sig=\"q\"")),
                uri_expires_at: None,
                redacted: redacted.then(|| Redacted {
                    sha256: Digest::of(b"red"),
                    redactions: RedactionCounts::default(),
                }),
            });
        }
        let owned = serde_json::to_vec(&Statement::for_manifest(m.clone())).unwrap();
        assert_eq!(Statement::payload_for(&m), owned);
        let key = EvidenceKey::from_seed([9; 32]);
        let env = m.sign(&key);
        assert_eq!(env, Statement::for_manifest(m.clone()).sign(&key));
        let st = verify_envelope(&env, &key.verifying_key()).unwrap();
        assert_eq!(st, Statement::for_manifest(m));
        assert_eq!(
            st.sha256_of("artifacts/logs/run-1.log"),
            Some(Digest::of(b"red").as_str())
        );
    }
}
