//! The crate's one error type.

use mc_core::signed_url::SignedUrlError;
use mc_core::{BlobError, StoreError};

/// Everything that can go wrong building, signing, packing or verifying evidence.
///
/// Variants name the artifact or field at fault so a caller (HTTP handler, CLI) can
/// map them without parsing text: `FlagDisabled` is a 403, `ExecutionNotFound` a 404,
/// `AccessRefused` a 403, the verification variants "invalid evidence".
#[derive(Debug, thiserror::Error)]
pub enum EvidenceError {
    /// The tenant's `evidence_v2_enabled` flag is off.
    #[error("evidence v2 is disabled for tenant {tenant} (flag evidence_v2_enabled is off)")]
    FlagDisabled {
        /// The tenant.
        tenant: String,
    },
    /// The tenant has no such execution (another tenant's id is also not found).
    #[error("execution {execution} not found")]
    ExecutionNotFound {
        /// The execution id looked up.
        execution: String,
    },
    /// An artifact named in a manifest, statement or pack is not there.
    #[error("artifact {artifact} is missing")]
    ArtifactMissing {
        /// The artifact (blob key or pack path).
        artifact: String,
    },
    /// An artifact's SHA-256 differs from the one recorded.
    #[error("artifact {artifact}: SHA-256 is {actual}, the statement says {expected}")]
    DigestMismatch {
        /// The artifact.
        artifact: String,
        /// The recorded digest.
        expected: String,
        /// The digest of the bytes found.
        actual: String,
    },
    /// An artifact's size differs from the one announced by the store.
    #[error("artifact {artifact}: {actual} bytes read, {expected} expected")]
    SizeMismatch {
        /// The artifact.
        artifact: String,
        /// The announced size.
        expected: u64,
        /// The bytes actually read.
        actual: u64,
    },
    /// Fetching an artifact from the blob store failed.
    #[error("fetching artifact {artifact} failed: {source}")]
    Fetch {
        /// The artifact.
        artifact: String,
        /// The store's error.
        #[source]
        source: BlobError,
    },
    /// A blob-store call that is not about one artifact failed (listing, signing, publishing).
    #[error("blob store: {0}")]
    Blob(#[from] BlobError),
    /// The execution or audit store failed.
    #[error("store: {0}")]
    Store(StoreError),
    /// No signature of the envelope verifies with the given key.
    #[error("no envelope signature verifies with key {keyid} (wrong key or tampered payload)")]
    BadSignature {
        /// The key id of the key that was tried.
        keyid: String,
    },
    /// The envelope's `payloadType` is not the in-toto type.
    #[error("unknown envelope payloadType {payload_type:?}; expected application/vnd.in-toto+json")]
    UnknownPayloadType {
        /// The type found.
        payload_type: String,
    },
    /// The envelope JSON is malformed.
    #[error("invalid DSSE envelope: {field}: {reason}")]
    InvalidEnvelope {
        /// The field at fault.
        field: &'static str,
        /// Why.
        reason: String,
    },
    /// The in-toto statement or the manifest inside it is malformed.
    #[error("invalid in-toto statement: {field}: {reason}")]
    InvalidStatement {
        /// The field at fault.
        field: &'static str,
        /// Why.
        reason: String,
    },
    /// A key could not be generated, parsed or encoded.
    #[error("{field}: {reason}")]
    Key {
        /// Which key (`private key`, `public key`, `random seed`).
        field: &'static str,
        /// Why.
        reason: String,
    },
    /// A pre-signed URL was refused (expired, tampered, malformed).
    #[error("pre-signed URL refused: {0}")]
    AccessRefused(#[from] SignedUrlError),
    /// A request parameter is out of range (URL lifetime, concurrency, ...).
    #[error("invalid {field}: {reason}")]
    InvalidInput {
        /// The field.
        field: &'static str,
        /// Why.
        reason: String,
    },
    /// The pack ends early or a required member is absent.
    #[error("truncated pack: {reason}")]
    TruncatedPack {
        /// What was missing.
        reason: String,
    },
    /// The pack is not a valid tar+zstd evidence pack.
    #[error("invalid pack entry {entry}: {reason}")]
    InvalidPack {
        /// The entry (or `pack` for the container).
        entry: String,
        /// Why.
        reason: String,
    },
    /// A redaction pattern was refused.
    #[error(transparent)]
    Redact(#[from] crate::redact::RedactError),
    /// The post-pack scan found a pattern that survived redaction.
    #[error("redaction check failed: rule {rule} still matches in {artifact}")]
    RedactionLeak {
        /// The artifact.
        artifact: String,
        /// The rule that matched.
        rule: String,
    },
    /// The build was cancelled; nothing was published.
    #[error("evidence pack build cancelled")]
    Cancelled,
    /// Writing the pack to its sink failed.
    #[error("writing the pack failed: {0}")]
    Io(#[from] std::io::Error),
}

impl From<StoreError> for EvidenceError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound { id } => EvidenceError::ExecutionNotFound { execution: id },
            other => EvidenceError::Store(other),
        }
    }
}
