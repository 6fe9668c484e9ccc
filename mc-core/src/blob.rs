//! Blob storage: evidence, logs, receipts, deletion manifests.
//!
//! Keys follow the layout of DESIGN.md: `tenants/{tenant}/{kind}/{execution}/{name}`,
//! so the tenant and the kind are known from the key alone. [`BlobKey`] validates keys
//! (no empty or `.`/`..` segments, no leading `/`, bounded length) so a key built
//! from untrusted input cannot escape its tenant's prefix.

use std::fmt;
use std::pin::Pin;

use async_trait::async_trait;
use bytes::Bytes;
use futures_core::Stream;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::id::{ExecutionId, TenantId};

/// A stream of byte chunks.
pub type ByteStream = Pin<Box<dyn Stream<Item = Result<Bytes, BlobError>> + Send>>;

/// Longest lifetime of a pre-signed URL (spec §7: "limited to 10m").
pub const MAX_SIGNED_URL_TTL: std::time::Duration = std::time::Duration::from_secs(600);

/// Errors of [`BlobStore`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BlobError {
    /// No object under the key.
    #[error("blob {key} not found")]
    NotFound {
        /// The key.
        key: String,
    },
    /// A write-once create found an object already there.
    #[error("blob {key} already exists")]
    AlreadyExists {
        /// The key.
        key: String,
    },
    /// The key is not a valid blob key.
    #[error("invalid blob key {key:?}: {reason}")]
    InvalidKey {
        /// The rejected key.
        key: String,
        /// Why.
        reason: &'static str,
    },
    /// A pre-signed URL was asked for with a lifetime above [`MAX_SIGNED_URL_TTL`].
    #[error("signed URL lifetime {requested_secs}s exceeds the maximum of {max_secs}s")]
    TtlTooLong {
        /// Requested lifetime in seconds.
        requested_secs: u64,
        /// Maximum in seconds.
        max_secs: u64,
    },
    /// The object is under a retention floor (a receipt younger than its retention
    /// period): it cannot be deleted or overwritten before `until`.
    #[error("blob {key} is retained until {until}; it cannot be deleted or overwritten before")]
    Retained {
        /// The key.
        key: String,
        /// When the floor ends (RFC 3339).
        until: String,
    },
    /// The store cannot be reached.
    #[error("blob store unavailable: {0}")]
    Unavailable(String),
    /// Any other backend failure.
    #[error("blob store error: {0}")]
    Backend(String),
}

/// A validated blob key.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct BlobKey(pub(crate) String);

impl BlobKey {
    /// Maximum key length in bytes (S3's limit).
    pub const MAX_LEN: usize = 1024;

    /// Validates `key`.
    ///
    /// # Errors
    /// [`BlobError::InvalidKey`] for an empty key, a key over 1024 bytes, a leading or
    /// trailing `/`, an empty, `.` or `..` segment, or a control character.
    pub fn new(key: impl Into<String>) -> Result<Self, BlobError> {
        let key = key.into();
        let bad = |reason| BlobError::InvalidKey {
            key: key.chars().take(200).collect(),
            reason,
        };
        if key.is_empty() {
            return Err(bad("empty"));
        }
        if key.len() > Self::MAX_LEN {
            return Err(bad("longer than 1024 bytes"));
        }
        if key.chars().any(|c| c.is_control() || c == '\\') {
            return Err(bad("contains a control character or backslash"));
        }
        if key
            .split('/')
            .any(|seg| seg.is_empty() || seg == "." || seg == "..")
        {
            return Err(bad("has an empty, '.' or '..' segment"));
        }
        Ok(BlobKey(key))
    }

    /// `tenants/{tenant}/{kind}/{execution}/{name}` (DESIGN.md blob layout).
    ///
    /// # Errors
    /// [`BlobError::InvalidKey`] when `kind` or `name` make an invalid key.
    pub fn for_execution(
        tenant: &TenantId,
        kind: &str,
        execution: &ExecutionId,
        name: &str,
    ) -> Result<Self, BlobError> {
        if kind.contains('/') {
            return Err(BlobError::InvalidKey {
                key: kind.to_string(),
                reason: "kind must be one path segment",
            });
        }
        Self::new(format!("tenants/{tenant}/{kind}/{execution}/{name}"))
    }

    /// The prefix of every key of `tenant` and `kind`, ending in `/`.
    pub fn prefix(tenant: &TenantId, kind: &str) -> String {
        format!("tenants/{tenant}/{kind}/")
    }

    /// The tenant, when the key follows the layout.
    pub fn tenant(&self) -> Option<TenantId> {
        let mut it = self.0.split('/');
        match (it.next(), it.next()) {
            (Some("tenants"), Some(t)) => TenantId::new(t).ok(),
            _ => None,
        }
    }

    /// The kind (`logs`, `receipts`, ...), when the key follows the layout.
    pub fn kind(&self) -> Option<&str> {
        let mut it = self.0.split('/');
        match (it.next(), it.next(), it.next()) {
            (Some("tenants"), Some(_), Some(k)) => Some(k),
            _ => None,
        }
    }

    /// The last path segment.
    pub fn name(&self) -> &str {
        self.0.rsplit('/').next().unwrap_or(&self.0)
    }

    /// The key as a string.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for BlobKey {
    type Error = BlobError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        BlobKey::new(s)
    }
}

impl From<BlobKey> for String {
    fn from(k: BlobKey) -> String {
        k.0
    }
}

impl fmt::Display for BlobKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Object metadata.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlobMeta {
    /// The key.
    pub key: BlobKey,
    /// Size in bytes.
    pub size: u64,
    /// Last modification (an object's age for retention).
    #[serde(with = "time::serde::rfc3339")]
    pub last_modified: OffsetDateTime,
}

/// How a put treats an existing object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PutMode {
    /// Replace whatever is there.
    Overwrite,
    /// Write once: fail with [`BlobError::AlreadyExists`] if the key exists.
    Create,
}

/// A pre-signed GET URL.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignedUrl {
    /// The URL.
    pub url: String,
    /// When it stops working.
    #[serde(with = "time::serde::rfc3339")]
    pub expires_at: OffsetDateTime,
}

/// An object store for MC's blobs.
#[async_trait]
pub trait BlobStore: Send + Sync {
    /// Stores `bytes` under `key`.
    async fn put(&self, key: &BlobKey, bytes: Bytes, mode: PutMode) -> Result<BlobMeta, BlobError>;

    /// Stores a stream under `key` without holding it all in memory (multipart
    /// upload on S3). Nothing is visible under `key` unless the whole stream succeeds.
    async fn put_stream(
        &self,
        key: &BlobKey,
        stream: ByteStream,
        mode: PutMode,
    ) -> Result<BlobMeta, BlobError>;

    /// Reads a whole object.
    async fn get(&self, key: &BlobKey) -> Result<Bytes, BlobError>;

    /// Reads an object as a stream of chunks.
    async fn get_stream(&self, key: &BlobKey) -> Result<ByteStream, BlobError>;

    /// Reads an object's metadata.
    async fn head(&self, key: &BlobKey) -> Result<BlobMeta, BlobError>;

    /// Lists every object whose key starts with `prefix`, sorted by key.
    async fn list(&self, prefix: &str) -> Result<Vec<BlobMeta>, BlobError>;

    /// Deletes an object; deleting a missing object succeeds.
    async fn delete(&self, key: &BlobKey) -> Result<(), BlobError>;

    /// Deletes many objects (batched where the backend supports it); one result per key.
    async fn delete_many(&self, keys: &[BlobKey]) -> Vec<Result<(), BlobError>> {
        let mut out = Vec::with_capacity(keys.len());
        for k in keys {
            out.push(self.delete(k).await);
        }
        out
    }

    /// A URL that allows a GET of `key` until `now + ttl`.
    ///
    /// # Errors
    /// [`BlobError::TtlTooLong`] above [`MAX_SIGNED_URL_TTL`].
    async fn signed_get_url(
        &self,
        key: &BlobKey,
        ttl: std::time::Duration,
        now: OffsetDateTime,
    ) -> Result<SignedUrl, BlobError>;
}

/// Refuses lifetimes above [`MAX_SIGNED_URL_TTL`].
///
/// # Errors
/// [`BlobError::TtlTooLong`].
pub fn check_ttl(ttl: std::time::Duration) -> Result<(), BlobError> {
    if ttl > MAX_SIGNED_URL_TTL {
        return Err(BlobError::TtlTooLong {
            requested_secs: ttl.as_secs(),
            max_secs: MAX_SIGNED_URL_TTL.as_secs(),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_cannot_escape() {
        for bad in [
            "", "/abs", "a//b", "a/../b", "a/./b", "trail/", "a\\b", "a\nb",
        ] {
            assert!(BlobKey::new(bad).is_err(), "{bad:?} must be rejected");
        }
        let t = TenantId::new("acme").unwrap();
        let e = ExecutionId::new("exec_1").unwrap();
        let k = BlobKey::for_execution(&t, "logs", &e, "run.log").unwrap();
        assert_eq!(k.as_str(), "tenants/acme/logs/exec_1/run.log");
        assert_eq!(k.tenant(), Some(t.clone()));
        assert_eq!(k.kind(), Some("logs"));
        assert_eq!(k.name(), "run.log");
        assert!(BlobKey::for_execution(&t, "logs", &e, "../x").is_err());
        assert!(BlobKey::for_execution(&t, "a/b", &e, "x").is_err());
    }
}
