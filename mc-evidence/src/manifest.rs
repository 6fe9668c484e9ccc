//! Evidence manifests (MC-DISC-1111): what exists for an execution, with digests,
//! sizes and pre-signed URLs, optionally signed as an in-toto statement.
//!
//! JSON shape (field names are stable; the JSON Schema is
//! [`MANIFEST_JSON_SCHEMA`] and `docs/evidence.md`):
//!
//! ```json
//! { "schema": "https://maestro-conductor.dev/schemas/evidence-manifest/v1",
//!   "tenant": "acme", "executionId": "exec_1",
//!   "generatedAt": "2025-12-10T18:00:00Z",
//!   "flags": { "evidence_v2_enabled": true },
//!   "execution": { "state": "succeeded", "attempt": 1,
//!                  "manifestDigest": "…", "inputsDigest": "…" },
//!   "artifacts": [ { "name": "tenants/acme/logs/exec_1/run.log", "kind": "logs",
//!                    "mediaType": "text/plain", "size": 42, "sha256": "…",
//!                    "uri": "memory://mc/…?expires=…&sig=…",
//!                    "uriExpiresAt": "2025-12-10T18:10:00Z" } ] }
//! ```

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use futures::{StreamExt, TryStreamExt};
use mc_core::{
    BlobError, BlobKey, BlobStore, Clock, Digest, ExecutionId, ExecutionStore, Flag, FlagStore,
    SignedUrl, TenantId,
};
use serde::{Deserialize, Serialize};
use sha2::Digest as _;
use time::OffsetDateTime;

use crate::dsse::{Envelope, EvidenceKey};
use crate::error::EvidenceError;
use crate::redact::RedactionCounts;
use crate::statement::Statement;

/// `schema` of every manifest this crate writes.
pub const MANIFEST_SCHEMA: &str = "https://maestro-conductor.dev/schemas/evidence-manifest/v1";

/// The JSON Schema (draft 2020-12) of [`EvidenceManifest`].
pub const MANIFEST_JSON_SCHEMA: &str = include_str!("../schema/evidence-manifest.v1.json");

/// Blob kinds listed for an execution's manifest (DESIGN.md blob layout).
pub const EVIDENCE_KINDS: [&str; 5] = ["logs", "receipts", "attestations", "artifacts", "evidence"];

/// Default lifetime of the pre-signed URLs of a manifest (the spec's maximum, 10 min).
pub const DEFAULT_URL_TTL: Duration = mc_core::blob::MAX_SIGNED_URL_TTL;

/// The execution's own identity, as recorded in a manifest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ExecutionSummary {
    /// State when the manifest was generated.
    pub state: String,
    /// Attempt number.
    pub attempt: u32,
    /// SHA-256 of the workflow manifest.
    pub manifest_digest: Digest,
    /// SHA-256 of the inputs.
    pub inputs_digest: Digest,
}

/// The redacted form of an artifact, as delivered in a pack.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Redacted {
    /// SHA-256 of the redacted bytes (what the pack holds).
    pub sha256: Digest,
    /// Matches per redaction rule.
    pub redactions: RedactionCounts,
}

/// One artifact.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ArtifactEntry {
    /// Name: the blob key (execution manifests) or the key relative to the pack source.
    pub name: String,
    /// Blob kind (`logs`, `receipts`, …) when the key follows the layout.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    /// Media type guessed from the name.
    pub media_type: String,
    /// Size in bytes (redaction keeps the size).
    pub size: u64,
    /// SHA-256 of the original bytes.
    pub sha256: Digest,
    /// Pre-signed GET URL (≤ 10 minutes).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uri: Option<String>,
    /// When `uri` stops working.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "time::serde::rfc3339::option"
    )]
    pub uri_expires_at: Option<OffsetDateTime>,
    /// Present for artifacts that went through redaction (packs).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub redacted: Option<Redacted>,
}

impl ArtifactEntry {
    /// The digest of the bytes a recipient gets: redacted when redacted, else original.
    pub fn delivered_sha256(&self) -> &Digest {
        self.redacted.as_ref().map_or(&self.sha256, |r| &r.sha256)
    }
}

/// The evidence manifest of one execution (or of one pack).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EvidenceManifest {
    /// Always [`MANIFEST_SCHEMA`].
    pub schema: String,
    /// The tenant.
    pub tenant: TenantId,
    /// The execution.
    pub execution_id: ExecutionId,
    /// When the manifest was generated (from the caller's `Clock`).
    #[serde(with = "time::serde::rfc3339")]
    pub generated_at: OffsetDateTime,
    /// Flag state at generation time (`evidence_v2_enabled`).
    pub flags: BTreeMap<String, bool>,
    /// The execution's identity, when read from an `ExecutionStore`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub execution: Option<ExecutionSummary>,
    /// Every artifact, sorted by name.
    pub artifacts: Vec<ArtifactEntry>,
}

impl EvidenceManifest {
    /// A manifest with no artifacts yet.
    pub fn new(tenant: TenantId, execution_id: ExecutionId, generated_at: OffsetDateTime) -> Self {
        EvidenceManifest {
            schema: MANIFEST_SCHEMA.to_string(),
            tenant,
            execution_id,
            generated_at,
            flags: BTreeMap::from([(Flag::EvidenceV2Enabled.as_str().to_string(), true)]),
            execution: None,
            artifacts: Vec::new(),
        }
    }

    /// This manifest without its delivery links (`uri`, `uriExpiresAt`): what the
    /// signed statement carries as its predicate (ADR 0207). A pre-signed URL is a
    /// short-lived credential, not evidence: it is left out of the long-lived signed
    /// record, and the digests that are signed make any link safe to follow.
    pub fn without_urls(&self) -> EvidenceManifest {
        let mut m = self.clone();
        m.strip_urls();
        m
    }

    /// [`Self::without_urls`] in place, for a manifest the caller owns.
    pub(crate) fn strip_urls(&mut self) {
        for a in &mut self.artifacts {
            a.uri = None;
            a.uri_expires_at = None;
        }
    }

    /// The in-toto statement of this manifest (predicate: [`Self::without_urls`]).
    pub fn statement(&self) -> Statement {
        Statement::for_manifest(self.clone())
    }

    /// Signs the manifest as an in-toto statement in a DSSE envelope (the predicate
    /// leaves the pre-signed URLs out, see [`Self::without_urls`]).
    pub fn sign(&self, key: &EvidenceKey) -> Envelope {
        Statement::sign_manifest(self, key)
    }

    /// Signs the manifest like [`Self::sign`] on a second thread while this thread
    /// sets every artifact's pre-signed link from `link` (called with each
    /// artifact's index) and then runs `then` on the linked manifest — to render it,
    /// say — and returns the envelope and what `then` returned.
    ///
    /// The signed statement leaves the links out (ADR 0207), so setting them cannot
    /// change what is signed, and `then` only reads. For a large manifest the
    /// signature (two SHA-512 passes of ed25519 over the statement) and the links
    /// plus rendering each take about half of the work, so this takes about half as
    /// long as doing one after the other (ADR 0211). When no thread can be started,
    /// the statement is signed on this thread afterwards.
    ///
    /// # Errors
    /// The first error `link` returns; the manifest is then left as it was (links
    /// are set only once all of them were made) and `then` is not run.
    ///
    /// ```
    /// use mc_core::{signed_url::UrlSigner, BlobKey, Digest, ExecutionId, TenantId};
    /// use mc_evidence::dsse::EvidenceKey;
    /// use mc_evidence::manifest::{ArtifactEntry, EvidenceManifest};
    /// use mc_evidence::statement::verify_envelope;
    /// use time::macros::datetime;
    ///
    /// let tenant = TenantId::new("acme").unwrap();
    /// let exec = ExecutionId::new("exec_1").unwrap();
    /// let now = datetime!(2025-12-10 18:00 UTC);
    /// let key = BlobKey::for_execution(&tenant, "logs", &exec, "run.log").unwrap();
    /// let mut m = EvidenceManifest::new(tenant, exec, now);
    /// m.artifacts.push(ArtifactEntry {
    ///     name: key.to_string(),
    ///     kind: Some("logs".into()),
    ///     media_type: "text/plain".into(),
    ///     size: 6,
    ///     sha256: Digest::of(b"hello\n"),
    ///     uri: None,
    ///     uri_expires_at: None,
    ///     redacted: None,
    /// });
    /// let signer = UrlSigner::new(vec![1; 32], "https://mc.example.com/blobs");
    /// let signing_key = EvidenceKey::from_seed([3; 32]);
    /// let ttl = std::time::Duration::from_secs(600);
    /// let (envelope, json) = m
    ///     .sign_and_link(&signing_key, |_, _| signer.signed_get(&key, ttl, now), |m| m.to_json_pretty())
    ///     .unwrap();
    /// assert!(json.contains("expires="));
    /// assert_eq!(envelope, m.sign(&signing_key));
    /// assert_eq!(verify_envelope(&envelope, &signing_key.verifying_key()).unwrap().subject.len(), 1);
    /// ```
    pub fn sign_and_link<R, E>(
        &mut self,
        key: &EvidenceKey,
        mut link: impl FnMut(usize, &ArtifactEntry) -> Result<SignedUrl, E>,
        then: impl FnOnce(&EvidenceManifest) -> R,
    ) -> Result<(Envelope, R), E> {
        let unsigned = Statement::unsigned_for(self);
        std::thread::scope(|s| {
            let signer = std::thread::Builder::new()
                .name("mc-evidence-sign".into())
                .spawn_scoped(s, || unsigned.signature(key));
            let links = self
                .artifacts
                .iter()
                .enumerate()
                .map(|(i, a)| link(i, a))
                .collect::<Result<Vec<_>, E>>()?;
            for (a, l) in self.artifacts.iter_mut().zip(links) {
                a.uri = Some(l.url);
                a.uri_expires_at = Some(l.expires_at);
            }
            let out = then(self);
            // The signing thread only hashes; the payload's base64 is made here.
            let mut envelope = unsigned.unsigned_envelope();
            let signature = match signer {
                Ok(handle) => handle
                    .join()
                    .unwrap_or_else(|panic| std::panic::resume_unwind(panic)),
                Err(_) => unsigned.signature(key),
            };
            envelope.add_signature(&signature, key);
            Ok((envelope, out))
        })
    }

    /// Pretty JSON.
    pub fn to_json_pretty(&self) -> String {
        // ~600 bytes per artifact pretty-printed: one allocation up front instead of
        // doubling (and copying) a multi-megabyte buffer for large manifests.
        let mut out = Vec::with_capacity(1024 + self.artifacts.len() * 640);
        let mut ser = serde_json::Serializer::pretty(&mut out);
        // Plain data into a Vec; serialising cannot fail, and serde_json writes UTF-8.
        if self.serialize(&mut ser).is_err() {
            return String::new();
        }
        String::from_utf8(out).unwrap_or_default()
    }
}

/// A manifest and, when a key was configured, its signed envelope.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SignedManifest {
    /// The manifest.
    pub manifest: EvidenceManifest,
    /// The DSSE envelope of its in-toto statement.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub envelope: Option<Envelope>,
}

/// Media type from a name's extension.
pub fn media_type_for(name: &str) -> &'static str {
    let lower = name.to_ascii_lowercase();
    let ends = |s: &str| lower.ends_with(s);
    if ends(".dsse.json") || ends(".intoto.jsonl") || ends(".intoto.json") {
        "application/vnd.in-toto+json"
    } else if ends(".json") {
        "application/json"
    } else if ends(".jsonl") || ends(".ndjson") {
        "application/x-ndjson"
    } else if ends(".log") || ends(".txt") || ends(".out") || ends(".err") {
        "text/plain"
    } else if ends(".yaml") || ends(".yml") {
        "application/yaml"
    } else if ends(".csv") {
        "text/csv"
    } else if ends(".html") {
        "text/html"
    } else if ends(".pdf") {
        "application/pdf"
    } else if ends(".tar.zst") || ends(".zst") {
        "application/zstd"
    } else if ends(".gz") {
        "application/gzip"
    } else if ends(".tar") {
        "application/x-tar"
    } else {
        "application/octet-stream"
    }
}

/// Streams a blob and returns its SHA-256 and size.
///
/// # Errors
/// [`EvidenceError::ArtifactMissing`] when absent, [`EvidenceError::Fetch`] otherwise.
pub async fn digest_blob(
    blobs: &dyn BlobStore,
    key: &BlobKey,
) -> Result<(Digest, u64), EvidenceError> {
    let fetch = |e: BlobError| match e {
        BlobError::NotFound { .. } => EvidenceError::ArtifactMissing {
            artifact: key.to_string(),
        },
        source => EvidenceError::Fetch {
            artifact: key.to_string(),
            source,
        },
    };
    let mut stream = blobs.get_stream(key).await.map_err(fetch)?;
    let mut h = sha2::Sha256::new();
    let mut n = 0u64;
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(fetch)?;
        n += chunk.len() as u64;
        h.update(&chunk);
    }
    let d = Digest::parse_hex("sha256", &hex::encode(h.finalize())).map_err(|e| {
        EvidenceError::InvalidInput {
            field: "sha256",
            reason: e.to_string(),
        }
    })?;
    Ok((d, n))
}

/// Builds manifests for executions: the library entry point behind
/// `GET /api/executions/{id}/evidence`.
///
/// ```
/// use std::sync::Arc;
/// use mc_core::*;
/// use mc_evidence::manifest::EvidenceService;
/// use time::macros::datetime;
///
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// let clock = Arc::new(ManualClock::new(datetime!(2025-12-10 18:00 UTC)));
/// let store = Arc::new(MemoryStore::new());
/// let flags = Arc::new(MemoryFlagStore::new());
/// let blobs = Arc::new(MemoryBlobStore::new(clock.clone()));
/// let tenant = TenantId::new("acme").unwrap();
/// let id = ExecutionId::new("exec_1").unwrap();
/// let mut unit = ActionCommit::new(tenant.clone(), clock.now());
/// unit.create = Some(Execution::new(tenant.clone(), id.clone(),
///     Digest::of(b"m"), Digest::of(b"i"), clock.now()));
/// store.commit(unit).await.unwrap();
/// let key = BlobKey::for_execution(&tenant, "logs", &id, "run.log").unwrap();
/// blobs.put(&key, "hello\n".into(), PutMode::Create).await.unwrap();
/// flags.set(&tenant, Flag::EvidenceV2Enabled, true).await.unwrap();
///
/// let svc = EvidenceService::new(store, flags, blobs, clock);
/// let m = svc.manifest(&tenant, &id).await.unwrap().manifest;
/// assert_eq!(m.artifacts.len(), 1);
/// assert_eq!(m.artifacts[0].sha256, Digest::of(b"hello\n"));
/// assert!(m.artifacts[0].uri.is_some());
/// # });
/// ```
#[derive(Clone)]
pub struct EvidenceService {
    executions: Arc<dyn ExecutionStore>,
    flags: Arc<dyn FlagStore>,
    blobs: Arc<dyn BlobStore>,
    clock: Arc<dyn Clock>,
    key: Option<EvidenceKey>,
    url_ttl: Duration,
    concurrency: usize,
}

impl std::fmt::Debug for EvidenceService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EvidenceService")
            .field("signing", &self.key.is_some())
            .field("url_ttl", &self.url_ttl)
            .finish_non_exhaustive()
    }
}

impl EvidenceService {
    /// A service over the host's stores; URLs live [`DEFAULT_URL_TTL`], no signing.
    pub fn new(
        executions: Arc<dyn ExecutionStore>,
        flags: Arc<dyn FlagStore>,
        blobs: Arc<dyn BlobStore>,
        clock: Arc<dyn Clock>,
    ) -> Self {
        EvidenceService {
            executions,
            flags,
            blobs,
            clock,
            key: None,
            url_ttl: DEFAULT_URL_TTL,
            concurrency: 8,
        }
    }

    /// Also signs every manifest (in-toto statement in a DSSE envelope) with `key`.
    pub fn with_signing_key(mut self, key: EvidenceKey) -> Self {
        self.key = Some(key);
        self
    }

    /// Sets the pre-signed URL lifetime.
    ///
    /// # Errors
    /// [`EvidenceError::InvalidInput`] naming `url_ttl` above 10 minutes or zero.
    pub fn with_url_ttl(mut self, ttl: Duration) -> Result<Self, EvidenceError> {
        if ttl.is_zero() || ttl > mc_core::blob::MAX_SIGNED_URL_TTL {
            return Err(EvidenceError::InvalidInput {
                field: "url_ttl",
                reason: format!("{}s; must be 1s..=600s", ttl.as_secs()),
            });
        }
        self.url_ttl = ttl;
        Ok(self)
    }

    /// The manifest of `execution` for `tenant` (signed when a key is configured).
    ///
    /// Digests are computed by streaming each blob (up to 8 at a time). The
    /// statement is then signed on a blocking thread of the current tokio runtime
    /// while the store signs the links (ADR 0211); under another executor it is
    /// signed after them.
    ///
    /// # Errors
    /// [`EvidenceError::FlagDisabled`] when `evidence_v2_enabled` is off for the tenant
    /// (HTTP 403); [`EvidenceError::ExecutionNotFound`] for an unknown id or another
    /// tenant's id (HTTP 404); [`EvidenceError::Fetch`]/[`EvidenceError::Blob`] for
    /// store failures.
    #[tracing::instrument(skip(self), fields(tenant = %tenant, execution = %execution))]
    pub async fn manifest(
        &self,
        tenant: &TenantId,
        execution: &ExecutionId,
    ) -> Result<SignedManifest, EvidenceError> {
        if !self
            .flags
            .is_enabled(tenant, Flag::EvidenceV2Enabled)
            .await?
        {
            return Err(EvidenceError::FlagDisabled {
                tenant: tenant.to_string(),
            });
        }
        let exec = self.executions.get(tenant, execution).await?;
        let now = self.clock.now();
        let mut metas = Vec::new();
        for kind in EVIDENCE_KINDS {
            let prefix = format!("{}{}/", BlobKey::prefix(tenant, kind), execution);
            metas.extend(self.blobs.list(&prefix).await?);
        }
        let blobs = self.blobs.as_ref();
        let mut digests: Vec<(BlobKey, Digest, u64)> = futures::stream::iter(metas)
            .map(|meta| async move {
                let (sha256, size) = digest_blob(blobs, &meta.key).await?;
                Ok::<_, EvidenceError>((meta.key, sha256, size))
            })
            .buffered(self.concurrency)
            .try_collect()
            .await?;
        digests.sort_by(|a, b| a.0.as_str().cmp(b.0.as_str()));
        let mut manifest = EvidenceManifest::new(tenant.clone(), execution.clone(), now);
        manifest.execution = Some(ExecutionSummary {
            state: exec.state.as_str().to_string(),
            attempt: exec.attempt,
            manifest_digest: exec.manifest_digest,
            inputs_digest: exec.inputs_digest,
        });
        manifest.artifacts = digests
            .iter()
            .map(|(key, sha256, size)| ArtifactEntry {
                name: key.to_string(),
                kind: key.kind().map(str::to_string),
                media_type: media_type_for(key.name()).to_string(),
                size: *size,
                sha256: sha256.clone(),
                uri: None,
                uri_expires_at: None,
                redacted: None,
            })
            .collect();
        // The statement leaves the links out (ADR 0207): it is signed on a blocking
        // thread of the current tokio runtime while the links are made here (ADR
        // 0211); outside a tokio runtime, here after them.
        let signing = self.key.as_ref().map(|key| {
            let unsigned = Arc::new(Statement::unsigned_for(&manifest));
            let task = tokio::runtime::Handle::try_current().ok().map(|rt| {
                let (unsigned, key) = (unsigned.clone(), key.clone());
                rt.spawn_blocking(move || unsigned.sign(&key))
            });
            (task, unsigned, key)
        });
        let ttl = self.url_ttl;
        // Owned keys: a future borrowing the closure's argument would not be `Send`
        // for every lifetime, which axum's handlers need.
        let links: Vec<SignedUrl> = futures::stream::iter(digests.into_iter().map(|d| d.0))
            .map(|key| async move { blobs.signed_get_url(&key, ttl, now).await })
            .buffered(self.concurrency)
            .try_collect()
            .await?;
        for (a, l) in manifest.artifacts.iter_mut().zip(links) {
            a.uri = Some(l.url);
            a.uri_expires_at = Some(l.expires_at);
        }
        let envelope = match signing {
            None => None,
            Some((Some(task), unsigned, key)) => Some(match task.await {
                Ok(envelope) => envelope,
                Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
                // The runtime is shutting down: sign here instead.
                Err(_) => unsigned.sign(key),
            }),
            Some((None, unsigned, key)) => Some(unsigned.sign(key)),
        };
        Ok(SignedManifest { manifest, envelope })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::statement::{verify_envelope, verify_subjects};
    use mc_core::{
        ActionCommit, Execution, ManualClock, MemoryBlobStore, MemoryFlagStore, MemoryStore,
        PutMode,
    };
    use time::macros::datetime;

    struct Fixture {
        svc: EvidenceService,
        flags: Arc<MemoryFlagStore>,
        blobs: Arc<MemoryBlobStore>,
        clock: Arc<ManualClock>,
        tenant: TenantId,
        id: ExecutionId,
    }

    async fn fixture() -> Fixture {
        let clock = Arc::new(ManualClock::new(datetime!(2025-12-10 18:00 UTC)));
        let store = Arc::new(MemoryStore::new());
        let flags = Arc::new(MemoryFlagStore::new());
        let blobs = Arc::new(MemoryBlobStore::new(clock.clone()));
        let tenant = TenantId::new("acme").unwrap();
        let id = ExecutionId::new("exec_1").unwrap();
        let mut unit = ActionCommit::new(tenant.clone(), clock.now());
        unit.create = Some(Execution::new(
            tenant.clone(),
            id.clone(),
            Digest::of(b"m"),
            Digest::of(b"i"),
            clock.now(),
        ));
        store.commit(unit).await.unwrap();
        for (kind, name, body) in [
            ("logs", "run.log", "line one\n"),
            ("receipts", "receipt.json", "{}"),
            ("attestations", "build.intoto.jsonl", "{\"a\":1}"),
        ] {
            let k = BlobKey::for_execution(&tenant, kind, &id, name).unwrap();
            blobs
                .put(&k, body.to_string().into(), PutMode::Create)
                .await
                .unwrap();
        }
        // Another execution's and another tenant's blobs must not appear.
        let other = ExecutionId::new("exec_2").unwrap();
        let k = BlobKey::for_execution(&tenant, "logs", &other, "x.log").unwrap();
        blobs.put(&k, "x".into(), PutMode::Create).await.unwrap();
        flags
            .set(&tenant, Flag::EvidenceV2Enabled, true)
            .await
            .unwrap();
        let svc = EvidenceService::new(store, flags.clone(), blobs.clone(), clock.clone())
            .with_signing_key(EvidenceKey::from_seed([9; 32]));
        Fixture {
            svc,
            flags,
            blobs,
            clock,
            tenant,
            id,
        }
    }

    #[tokio::test]
    async fn manifest_lists_signs_and_verifies() {
        let f = fixture().await;
        let sm = f.svc.manifest(&f.tenant, &f.id).await.unwrap();
        let m = &sm.manifest;
        assert_eq!(m.artifacts.len(), 3);
        assert_eq!(m.generated_at, f.clock.now());
        assert!(m.flags["evidence_v2_enabled"]);
        let log = m
            .artifacts
            .iter()
            .find(|a| a.name.ends_with("run.log"))
            .unwrap();
        assert_eq!(log.kind.as_deref(), Some("logs"));
        assert_eq!(log.media_type, "text/plain");
        assert_eq!(log.size, 9);
        assert_eq!(log.sha256, Digest::of(b"line one\n"));
        assert_eq!(log.uri_expires_at, Some(f.clock.now() + DEFAULT_URL_TTL));
        // The URL works now and not after 10 minutes.
        let url = log.uri.as_deref().unwrap();
        assert_eq!(f.blobs.get_signed(url).unwrap().unwrap(), "line one\n");
        f.clock.advance(time::Duration::minutes(10));
        assert!(f.blobs.get_signed(url).is_err());

        assert!(m.artifacts.windows(2).all(|w| w[0].name < w[1].name));
        let key = EvidenceKey::from_seed([9; 32]).verifying_key();
        let env = sm.envelope.unwrap();
        // Signed on a blocking thread while the links were made: the same envelope.
        assert_eq!(env, m.sign(&EvidenceKey::from_seed([9; 32])));
        let st = verify_envelope(&env, &key).unwrap();
        assert_eq!(st.predicate, m.without_urls());
        // The signed record carries no short-lived credential.
        let payload = env.verify(&key).unwrap();
        assert!(!String::from_utf8_lossy(&payload).contains("uri"));
        assert_eq!(verify_subjects(&st, f.blobs.as_ref()).await.unwrap(), 3);
        // Change a blob: verification names it.
        let k = BlobKey::new(log.name.clone()).unwrap();
        f.blobs
            .put(&k, "tampered\n".into(), PutMode::Overwrite)
            .await
            .unwrap();
        match verify_subjects(&st, f.blobs.as_ref()).await.unwrap_err() {
            EvidenceError::DigestMismatch { artifact, .. } => assert_eq!(artifact, log.name),
            e => panic!("{e}"),
        }
        f.blobs.delete(&k).await.unwrap();
        assert!(matches!(
            verify_subjects(&st, f.blobs.as_ref()).await,
            Err(EvidenceError::ArtifactMissing { .. })
        ));
        let wrong = EvidenceKey::from_seed([1; 32]).verifying_key();
        assert!(matches!(
            verify_envelope(&env, &wrong),
            Err(EvidenceError::BadSignature { .. })
        ));
        let mut odd = env.clone();
        odd.payload_type = "text/plain".into();
        assert!(matches!(
            verify_envelope(&odd, &key),
            Err(EvidenceError::UnknownPayloadType { .. })
        ));
    }

    #[test]
    fn the_service_signs_outside_a_tokio_runtime_too() {
        // Built on a tokio runtime, then driven by the futures executor: no tokio
        // runtime to sign on beside the links, so the statement is signed after them.
        let f = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap()
            .block_on(fixture());
        let sm = futures::executor::block_on(f.svc.manifest(&f.tenant, &f.id)).unwrap();
        let key = EvidenceKey::from_seed([9; 32]);
        assert_eq!(sm.envelope.unwrap(), sm.manifest.sign(&key));
        assert!(sm.manifest.artifacts.iter().all(|a| a.uri.is_some()));
    }

    #[test]
    fn sign_and_link_sets_every_link_or_none() {
        let now = datetime!(2025-12-10 18:00 UTC);
        let tenant = TenantId::new("acme").unwrap();
        let exec = ExecutionId::new("exec_1").unwrap();
        let mut m = EvidenceManifest::new(tenant.clone(), exec.clone(), now);
        m.artifacts = (0..50)
            .map(|i| ArtifactEntry {
                name: format!("tenants/acme/logs/exec_1/part-{i:02}.log"),
                kind: Some("logs".into()),
                media_type: "text/plain".into(),
                size: i,
                sha256: Digest::of(format!("{i}").as_bytes()),
                uri: None,
                uri_expires_at: None,
                redacted: None,
            })
            .collect();
        let key = EvidenceKey::from_seed([4; 32]);
        let before = m.clone();
        let link = |i: usize, a: &ArtifactEntry| SignedUrl {
            url: format!("https://x/{}?n={i}", a.name),
            expires_at: now + time::Duration::minutes(10),
        };

        // A failing link: nothing is set and `then` does not run.
        let failed = m.sign_and_link(
            &key,
            |i, a| {
                if i == 37 {
                    Err("no link")
                } else {
                    Ok(link(i, a))
                }
            },
            |_| panic!("then must not run"),
        );
        assert_eq!(failed.unwrap_err(), "no link");
        assert_eq!(m, before);

        // Every link set, `then` sees them, and the envelope is what `sign` gives —
        // before and after the links (they are not signed).
        let (env, seen) = m
            .sign_and_link(&key, |i, a| Ok::<_, ()>(link(i, a)), |m| m.clone())
            .unwrap();
        assert_eq!(seen, m);
        for (i, a) in m.artifacts.iter().enumerate() {
            assert_eq!(a.uri.as_deref(), Some(link(i, a).url.as_str()));
            assert_eq!(a.uri_expires_at, Some(now + time::Duration::minutes(10)));
        }
        assert_eq!(env, m.sign(&key));
        assert_eq!(env, before.sign(&key));
        let st = verify_envelope(&env, &key.verifying_key()).unwrap();
        assert_eq!(st.predicate, before);
    }

    #[tokio::test]
    async fn flag_off_and_foreign_tenant_are_refused() {
        let f = fixture().await;
        let other = TenantId::new("globex").unwrap();
        f.flags
            .set(&other, Flag::EvidenceV2Enabled, true)
            .await
            .unwrap();
        assert!(matches!(
            f.svc.manifest(&other, &f.id).await,
            Err(EvidenceError::ExecutionNotFound { .. })
        ));
        f.flags
            .set(&f.tenant, Flag::EvidenceV2Enabled, false)
            .await
            .unwrap();
        assert!(matches!(
            f.svc.manifest(&f.tenant, &f.id).await,
            Err(EvidenceError::FlagDisabled { .. })
        ));
        assert!(
            f.svc
                .clone()
                .with_url_ttl(Duration::from_secs(601))
                .is_err()
        );
    }

    #[test]
    fn schema_names_every_field() {
        let schema: serde_json::Value = serde_json::from_str(MANIFEST_JSON_SCHEMA).unwrap();
        let mut m = EvidenceManifest::new(
            TenantId::new("a").unwrap(),
            ExecutionId::new("e").unwrap(),
            datetime!(2025-12-10 18:00 UTC),
        );
        m.artifacts.push(ArtifactEntry {
            name: "a.log".into(),
            kind: Some("logs".into()),
            media_type: "text/plain".into(),
            size: 1,
            sha256: Digest::of(b"a"),
            uri: Some("u".into()),
            uri_expires_at: Some(datetime!(2025-12-10 18:10 UTC)),
            redacted: Some(Redacted {
                sha256: Digest::of(b"b"),
                redactions: RedactionCounts::default(),
            }),
        });
        assert_eq!(
            m.to_json_pretty(),
            serde_json::to_string_pretty(&m).unwrap()
        );
        let v = serde_json::to_value(&m).unwrap();
        let props = &schema["properties"];
        for k in v.as_object().unwrap().keys() {
            assert!(props.get(k).is_some(), "schema lacks {k}");
        }
        let aprops = &schema["$defs"]["artifact"]["properties"];
        for k in v["artifacts"][0].as_object().unwrap().keys() {
            assert!(aprops.get(k).is_some(), "schema lacks artifacts[].{k}");
        }
    }
}
