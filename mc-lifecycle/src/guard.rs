//! A `BlobStore` wrapper that enforces retention floors, whatever adapter is below.

use std::sync::Arc;

use async_trait::async_trait;
use mc_core::{BlobError, BlobKey, BlobMeta, BlobStore, ByteStream, Clock, PutMode, SignedUrl};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::{Enforcement, Retention};

/// Wraps a store so that objects of a kind with a retention floor
/// ([`Enforcement::RetainThenPurge`]: receipts) can be neither deleted nor overwritten
/// before their period ends — like S3 Object Lock in compliance mode, and on every
/// adapter (memory, local directory, S3). Spec §9: "keep receipts immutable".
/// Creating new objects, reading and listing pass through; objects of other kinds are
/// not affected.
///
/// ```
/// # tokio_test_block(async {
/// use std::sync::Arc;
/// use mc_core::{BlobError, BlobKey, BlobStore, MemoryBlobStore, PutMode, SystemClock};
/// use mc_lifecycle::{Retaining, Retention};
///
/// let clock = Arc::new(SystemClock);
/// let store = Retaining::new(Arc::new(MemoryBlobStore::new(clock.clone())), Retention::new(), clock);
/// let receipt = BlobKey::new("tenants/acme/receipts/exec_1/receipt.json").unwrap();
/// store.put(&receipt, "{}".into(), PutMode::Create).await.unwrap();
/// assert!(matches!(store.delete(&receipt).await, Err(BlobError::Retained { .. })));
/// # });
/// # fn tokio_test_block<F: std::future::Future>(f: F) -> F::Output {
/// #     tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(f)
/// # }
/// ```
pub struct Retaining {
    inner: Arc<dyn BlobStore>,
    retention: Retention,
    clock: Arc<dyn Clock>,
}

impl std::fmt::Debug for Retaining {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Retaining")
            .field("retention", &self.retention)
            .finish_non_exhaustive()
    }
}

impl Retaining {
    /// Wraps `inner`.
    pub fn new(inner: Arc<dyn BlobStore>, retention: Retention, clock: Arc<dyn Clock>) -> Self {
        Retaining {
            inner,
            retention,
            clock,
        }
    }

    /// Refuses a change of `key` while its object is under a floor.
    async fn guard(&self, key: &BlobKey) -> Result<(), BlobError> {
        let (Some(tenant), Some(kind)) = (key.tenant(), key.kind()) else {
            return Ok(());
        };
        let floored = self
            .retention
            .rule(kind)
            .is_some_and(|r| r.enforcement == Enforcement::RetainThenPurge);
        if !floored {
            return Ok(());
        }
        let meta = match self.inner.head(key).await {
            Ok(m) => m,
            Err(BlobError::NotFound { .. }) => return Ok(()),
            Err(e) => return Err(e),
        };
        let Some((until, _)) = self
            .retention
            .deletable_from(&tenant, kind, meta.last_modified)
        else {
            return Ok(());
        };
        if self.clock.now() < until {
            return Err(BlobError::Retained {
                key: key.as_str().to_string(),
                until: until.format(&Rfc3339).unwrap_or_else(|_| until.to_string()),
            });
        }
        Ok(())
    }
}

#[async_trait]
impl BlobStore for Retaining {
    async fn put(
        &self,
        key: &BlobKey,
        bytes: bytes::Bytes,
        mode: PutMode,
    ) -> Result<BlobMeta, BlobError> {
        if mode == PutMode::Overwrite {
            self.guard(key).await?;
        }
        self.inner.put(key, bytes, mode).await
    }

    async fn put_stream(
        &self,
        key: &BlobKey,
        stream: ByteStream,
        mode: PutMode,
    ) -> Result<BlobMeta, BlobError> {
        if mode == PutMode::Overwrite {
            self.guard(key).await?;
        }
        self.inner.put_stream(key, stream, mode).await
    }

    async fn get(&self, key: &BlobKey) -> Result<bytes::Bytes, BlobError> {
        self.inner.get(key).await
    }

    async fn get_stream(&self, key: &BlobKey) -> Result<ByteStream, BlobError> {
        self.inner.get_stream(key).await
    }

    async fn head(&self, key: &BlobKey) -> Result<BlobMeta, BlobError> {
        self.inner.head(key).await
    }

    async fn list(&self, prefix: &str) -> Result<Vec<BlobMeta>, BlobError> {
        self.inner.list(prefix).await
    }

    async fn delete(&self, key: &BlobKey) -> Result<(), BlobError> {
        self.guard(key).await?;
        self.inner.delete(key).await
    }

    /// Guards each key (a HEAD only for kinds with a floor), then deletes the allowed
    /// ones in one batch below; one result per key, in order.
    async fn delete_many(&self, keys: &[BlobKey]) -> Vec<Result<(), BlobError>> {
        let mut out: Vec<Option<Result<(), BlobError>>> = Vec::with_capacity(keys.len());
        let mut allowed = Vec::new();
        for k in keys {
            match self.guard(k).await {
                Ok(()) => {
                    allowed.push(k.clone());
                    out.push(None);
                }
                Err(e) => out.push(Some(Err(e))),
            }
        }
        let mut below = self.inner.delete_many(&allowed).await.into_iter();
        out.into_iter()
            .map(|r| {
                r.unwrap_or_else(|| {
                    below.next().unwrap_or_else(|| {
                        Err(BlobError::Backend(
                            "batch delete returned too few results".into(),
                        ))
                    })
                })
            })
            .collect()
    }

    async fn signed_get_url(
        &self,
        key: &BlobKey,
        ttl: std::time::Duration,
        now: OffsetDateTime,
    ) -> Result<SignedUrl, BlobError> {
        self.inner.signed_get_url(key, ttl, now).await
    }
}
