//! [`ObjectBlobStore`]: mc-core's [`BlobStore`] over any `object_store::ObjectStore`.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use async_trait::async_trait;
use bytes::Bytes;
use futures::{StreamExt, TryStreamExt};
use mc_core::blob::check_ttl;
use mc_core::signed_url::{SignedUrlError, UrlSigner};
use mc_core::{BlobError, BlobKey, BlobMeta, BlobStore, ByteStream, PutMode, SignedUrl};
use object_store::path::Path;
use object_store::signer::Signer;
use object_store::{
    ObjectMeta, ObjectStore, ObjectStoreExt, PutOptions, PutPayload, WriteMultipart,
};
use time::OffsetDateTime;

use crate::error::{OpenError, map_create_err, map_err};
use crate::location::Root;
use crate::options::{DEFAULT_PART_SIZE, DEFAULT_UPLOAD_CONCURRENCY, MIN_PART_SIZE};

/// How a store produces pre-signed GET URLs.
#[derive(Clone)]
pub(crate) enum UrlSigning {
    /// The backend's own signer (S3 SigV4 query signing): the S3 server checks it.
    Native(Arc<dyn Signer>),
    /// mc-core's HMAC-SHA256 URLs: the host's HTTP layer checks them with
    /// [`ObjectBlobStore::verify_signed_url`].
    Hmac(UrlSigner),
}

/// A [`BlobStore`] over any [`ObjectStore`]: S3 (and S3-compatible servers), a local
/// directory or memory.
///
/// - reads stream in chunks ([`BlobStore::get_stream`]);
/// - streamed writes above the part size (default 8 MiB) use a multipart upload,
///   aborted if the source stream fails, so nothing appears under the key;
/// - [`PutMode::Create`] is write-once and atomic (S3 `If-None-Match: *`, a hard link
///   on local disks); large write-once streams are staged under `_mc_staging/` and then
///   copied with copy-if-not-exists (ADR 0401);
/// - listings give size and last-modified, sorted by key, with the store's prefix
///   stripped;
/// - deletes are idempotent, and [`BlobStore::delete_many`] is one batched
///   `DeleteObjects` call per 1000 keys on S3;
/// - pre-signed GET URLs come from S3's SigV4 signer, or from mc-core's HMAC
///   [`UrlSigner`] for local and in-memory stores (verify them with
///   [`ObjectBlobStore::verify_signed_url`]). Lifetimes above 10 minutes are refused.
///
/// Build one with [`ObjectBlobStore::from_url`], or wrap your own store with
/// [`ObjectBlobStore::new`] / [`ObjectBlobStore::with_native_signer`].
#[derive(Clone)]
pub struct ObjectBlobStore {
    store: Arc<dyn ObjectStore>,
    signing: UrlSigning,
    root: Root,
    part_size: usize,
    upload_concurrency: usize,
    description: String,
}

impl std::fmt::Debug for ObjectBlobStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ObjectBlobStore")
            .field("store", &self.description)
            .field("prefix", &self.root.as_str())
            .field("native_signing", &self.is_natively_signed())
            .field("part_size", &self.part_size)
            .field("upload_concurrency", &self.upload_concurrency)
            .finish()
    }
}

/// Unique suffix of staging objects: process-random bits, a clock reading and a
/// counter, so two replicas staging at once never collide.
fn staging_name() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let mut random = [0u8; 8];
    // getrandom only fails on platforms without an entropy source; the counter and the
    // clock still make the name unique within this process then.
    let _ = getrandom::fill(&mut random);
    let nanos = OffsetDateTime::now_utc().unix_timestamp_nanos();
    format!(
        "{nanos:x}-{:x}-{}",
        COUNTER.fetch_add(1, Ordering::Relaxed),
        hex_lower(&random)
    )
}

fn hex_lower(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn to_offset(dt: &object_store::ObjectMeta) -> OffsetDateTime {
    let lm = &dt.last_modified;
    let nanos =
        i128::from(lm.timestamp()) * 1_000_000_000 + i128::from(lm.timestamp_subsec_nanos());
    OffsetDateTime::from_unix_timestamp_nanos(nanos).unwrap_or(OffsetDateTime::UNIX_EPOCH)
}

fn meta_of(key: BlobKey, m: &ObjectMeta) -> BlobMeta {
    BlobMeta {
        key,
        size: m.size,
        last_modified: to_offset(m),
    }
}

impl ObjectBlobStore {
    /// Wraps `store`, signing GET URLs with mc-core's HMAC `signer` (for stores
    /// without a native signer: local directories, memory, HTTP/WebDAV...).
    pub fn new(store: Arc<dyn ObjectStore>, signer: UrlSigner) -> Self {
        Self::build(store, UrlSigning::Hmac(signer))
    }

    /// Wraps `store`, signing GET URLs with `signer` (S3, GCS, Azure): usually the same
    /// object twice, e.g. an `Arc<AmazonS3>` as both store and signer.
    pub fn with_native_signer(store: Arc<dyn ObjectStore>, signer: Arc<dyn Signer>) -> Self {
        Self::build(store, UrlSigning::Native(signer))
    }

    pub(crate) fn build(store: Arc<dyn ObjectStore>, signing: UrlSigning) -> Self {
        let description = store.to_string();
        ObjectBlobStore {
            store,
            signing,
            root: Root::default(),
            part_size: DEFAULT_PART_SIZE,
            upload_concurrency: DEFAULT_UPLOAD_CONCURRENCY,
            description,
        }
    }

    /// Stores every key under `prefix` (e.g. `mc/prod`), stripped again on list.
    ///
    /// # Errors
    /// [`OpenError::InvalidPrefix`] for an empty, `.` or `..` segment or a control
    /// character.
    pub fn with_prefix(mut self, prefix: &str) -> Result<Self, OpenError> {
        self.root = Root::new(prefix)?;
        Ok(self)
    }

    /// Sets the multipart part size, which is also the size above which a streamed put
    /// becomes a multipart upload.
    ///
    /// # Errors
    /// [`OpenError::InvalidOption`] (`part_size`) below 5 MiB, S3's minimum.
    pub fn with_part_size(mut self, part_size: usize) -> Result<Self, OpenError> {
        if part_size < MIN_PART_SIZE {
            return Err(OpenError::InvalidOption {
                field: "part_size",
                reason: format!("{part_size} bytes is below S3's minimum of {MIN_PART_SIZE}"),
            });
        }
        self.part_size = part_size;
        Ok(self)
    }

    /// Sets how many parts of one streamed put are uploaded at once.
    ///
    /// # Errors
    /// [`OpenError::InvalidOption`] (`upload_concurrency`) for 0.
    pub fn with_upload_concurrency(mut self, concurrency: usize) -> Result<Self, OpenError> {
        if concurrency == 0 {
            return Err(OpenError::InvalidOption {
                field: "upload_concurrency",
                reason: "must be at least 1".into(),
            });
        }
        self.upload_concurrency = concurrency;
        Ok(self)
    }

    /// The key prefix of this store (empty when none), without a trailing `/`.
    pub fn prefix(&self) -> &str {
        self.root.as_str()
    }

    /// The underlying object store.
    pub fn object_store(&self) -> &Arc<dyn ObjectStore> {
        &self.store
    }

    /// `true` when GET URLs are signed by the backend (S3 SigV4) and checked by it;
    /// `false` when they are mc-core HMAC URLs the host must serve itself.
    pub fn is_natively_signed(&self) -> bool {
        matches!(self.signing, UrlSigning::Native(_))
    }

    fn hmac_signer(&self) -> Result<&UrlSigner, SignedUrlError> {
        match &self.signing {
            UrlSigning::Hmac(s) => Ok(s),
            UrlSigning::Native(_) => Err(SignedUrlError::Malformed(
                "this store's URLs are signed by the backend (S3 SigV4) and checked there",
            )),
        }
    }

    /// Verifies an HMAC-signed GET URL from [`BlobStore::signed_get_url`] of a local
    /// or in-memory store and returns its key; the caller then streams the object with
    /// [`BlobStore::get_stream`].
    ///
    /// # Errors
    /// [`SignedUrlError::BadSignature`] for a changed key, expiry or signature, or
    /// another store's secret; [`SignedUrlError::Expired`] at or after the expiry;
    /// [`SignedUrlError::Malformed`] for a URL not under this store's base, or when the
    /// store signs natively (S3 checks its own URLs).
    pub fn verify_signed_url(
        &self,
        url: &str,
        now: OffsetDateTime,
    ) -> Result<BlobKey, SignedUrlError> {
        self.hmac_signer()?.verify_url("GET", url, now)
    }

    /// Verifies a GET request an HTTP layer received for a signed URL: `key` is the
    /// percent-decoded path after the signing base (e.g. after `/blobs/`), `query` the
    /// raw query string (`expires=…&sig=…`).
    ///
    /// # Errors
    /// As [`ObjectBlobStore::verify_signed_url`].
    pub fn verify_signed_request(
        &self,
        key: &str,
        query: &str,
        now: OffsetDateTime,
    ) -> Result<BlobKey, SignedUrlError> {
        self.hmac_signer()?.verify("GET", key, query, now)
    }

    async fn head_path(&self, key: BlobKey, path: &Path) -> Result<BlobMeta, BlobError> {
        let m = self
            .store
            .head(path)
            .await
            .map_err(|e| map_err(e, key.as_str()))?;
        Ok(meta_of(key, &m))
    }

    async fn put_once(
        &self,
        key: &BlobKey,
        path: &Path,
        payload: PutPayload,
        mode: PutMode,
    ) -> Result<(), BlobError> {
        let opts = PutOptions {
            mode: match mode {
                PutMode::Overwrite => object_store::PutMode::Overwrite,
                PutMode::Create => object_store::PutMode::Create,
            },
            ..PutOptions::default()
        };
        self.store
            .put_opts(path, payload, opts)
            .await
            .map_err(|e| match mode {
                PutMode::Create => map_create_err(e, key.as_str()),
                PutMode::Overwrite => map_err(e, key.as_str()),
            })?;
        Ok(())
    }

    /// Multipart upload of `first` then the rest of `stream` to `path`; aborts the
    /// upload (nothing becomes visible) if the stream or a part fails.
    async fn put_multipart(
        &self,
        key: &BlobKey,
        path: &Path,
        first: Vec<Bytes>,
        mut stream: ByteStream,
    ) -> Result<(), BlobError> {
        let upload = self
            .store
            .put_multipart(path)
            .await
            .map_err(|e| map_err(e, key.as_str()))?;
        let mut writer = WriteMultipart::new_with_chunk_size(upload, self.part_size);
        let result: Result<(), BlobError> = async {
            for chunk in first {
                writer.put(chunk);
            }
            while let Some(chunk) = stream.next().await {
                let chunk = chunk?;
                // Back-pressure: at most `upload_concurrency` parts in flight, so a
                // fast source never buffers more than that many parts in memory.
                writer
                    .wait_for_capacity(self.upload_concurrency)
                    .await
                    .map_err(|e| map_err(e, key.as_str()))?;
                writer.put(chunk);
            }
            Ok(())
        }
        .await;
        match result {
            Ok(()) => {
                writer
                    .finish()
                    .await
                    .map_err(|e| map_err(e, key.as_str()))?;
                Ok(())
            }
            Err(e) => {
                if let Err(abort) = writer.abort().await {
                    tracing::warn!(key = %key, error = %abort, "aborting multipart upload failed");
                }
                Err(e)
            }
        }
    }

    /// A large write-once stream: stage it, then copy-if-not-exists into place, so the
    /// object appears atomically and only if nothing was there (ADR 0401).
    async fn put_multipart_create(
        &self,
        key: &BlobKey,
        path: &Path,
        first: Vec<Bytes>,
        stream: ByteStream,
    ) -> Result<(), BlobError> {
        // Fail fast before uploading gigabytes that cannot be kept.
        match self.store.head(path).await {
            Ok(_) => {
                return Err(BlobError::AlreadyExists {
                    key: key.to_string(),
                });
            }
            Err(object_store::Error::NotFound { .. }) => {}
            Err(e) => return Err(map_err(e, key.as_str())),
        }
        let staging = self.root.staging(&staging_name());
        self.put_multipart(key, &staging, first, stream).await?;
        let copied = self
            .store
            .copy_if_not_exists(&staging, path)
            .await
            .map_err(|e| map_create_err(e, key.as_str()));
        if let Err(e) = self.store.delete(&staging).await {
            tracing::warn!(key = %key, staging = %staging, error = %e, "removing staging object failed");
        }
        copied
    }
}

#[async_trait]
impl BlobStore for ObjectBlobStore {
    #[tracing::instrument(level = "debug", skip(self, bytes), fields(key = %key, size = bytes.len()))]
    async fn put(&self, key: &BlobKey, bytes: Bytes, mode: PutMode) -> Result<BlobMeta, BlobError> {
        let path = self.root.path(key);
        self.put_once(key, &path, bytes.into(), mode).await?;
        self.head_path(key.clone(), &path).await
    }

    #[tracing::instrument(level = "debug", skip(self, stream), fields(key = %key))]
    async fn put_stream(
        &self,
        key: &BlobKey,
        mut stream: ByteStream,
        mode: PutMode,
    ) -> Result<BlobMeta, BlobError> {
        let path = self.root.path(key);
        // Buffer up to one part: small objects go up in one atomic request.
        let mut first = Vec::new();
        let mut buffered = 0usize;
        while buffered < self.part_size {
            match stream.next().await {
                Some(chunk) => {
                    let chunk = chunk?;
                    buffered += chunk.len();
                    first.push(chunk);
                }
                None => {
                    let payload: PutPayload = first.into_iter().collect();
                    self.put_once(key, &path, payload, mode).await?;
                    return self.head_path(key.clone(), &path).await;
                }
            }
        }
        match mode {
            PutMode::Overwrite => self.put_multipart(key, &path, first, stream).await?,
            PutMode::Create => self.put_multipart_create(key, &path, first, stream).await?,
        }
        self.head_path(key.clone(), &path).await
    }

    #[tracing::instrument(level = "debug", skip(self), fields(key = %key))]
    async fn get(&self, key: &BlobKey) -> Result<Bytes, BlobError> {
        let result = self
            .store
            .get(&self.root.path(key))
            .await
            .map_err(|e| map_err(e, key.as_str()))?;
        result.bytes().await.map_err(|e| map_err(e, key.as_str()))
    }

    #[tracing::instrument(level = "debug", skip(self), fields(key = %key))]
    async fn get_stream(&self, key: &BlobKey) -> Result<ByteStream, BlobError> {
        let result = self
            .store
            .get(&self.root.path(key))
            .await
            .map_err(|e| map_err(e, key.as_str()))?;
        let key = key.to_string();
        Ok(Box::pin(
            result.into_stream().map_err(move |e| map_err(e, &key)),
        ))
    }

    #[tracing::instrument(level = "debug", skip(self), fields(key = %key))]
    async fn head(&self, key: &BlobKey) -> Result<BlobMeta, BlobError> {
        self.head_path(key.clone(), &self.root.path(key)).await
    }

    #[tracing::instrument(level = "debug", skip(self))]
    async fn list(&self, prefix: &str) -> Result<Vec<BlobMeta>, BlobError> {
        let dir = match self.root.list_dir(prefix) {
            Ok(dir) => dir,
            // A prefix whose directory part is not a valid key matches no key.
            Err(BlobError::InvalidKey { .. }) => return Ok(Vec::new()),
            Err(e) => return Err(e),
        };
        let mut stream = self.store.list(dir.as_ref());
        let mut out = Vec::new();
        while let Some(item) = stream.next().await {
            let m = item.map_err(|e| map_err(e, prefix))?;
            if let Some(key) = self.root.key_of(&m.location)
                && key.as_str().starts_with(prefix)
            {
                out.push(meta_of(key, &m));
            }
        }
        out.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(out)
    }

    #[tracing::instrument(level = "debug", skip(self), fields(key = %key))]
    async fn delete(&self, key: &BlobKey) -> Result<(), BlobError> {
        match self.store.delete(&self.root.path(key)).await {
            // Deleting a missing object succeeds (local stores report NotFound).
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(map_err(e, key.as_str())),
        }
    }

    #[tracing::instrument(level = "debug", skip(self, keys), fields(count = keys.len()))]
    async fn delete_many(&self, keys: &[BlobKey]) -> Vec<Result<(), BlobError>> {
        let paths: Vec<object_store::Result<Path>> =
            keys.iter().map(|k| Ok(self.root.path(k))).collect();
        let results: Vec<object_store::Result<Path>> = self
            .store
            .delete_stream(futures::stream::iter(paths).boxed())
            .collect()
            .await;
        // Results come back in input order; a backend that returned fewer (a failed
        // bulk call) leaves the rest reported as failed rather than silently deleted.
        let mut results = results.into_iter();
        keys.iter()
            .map(|k| match results.next() {
                Some(Ok(_)) | Some(Err(object_store::Error::NotFound { .. })) => Ok(()),
                Some(Err(e)) => Err(map_err(e, k.as_str())),
                None => Err(BlobError::Backend(format!(
                    "batch delete returned no result for {k}"
                ))),
            })
            .collect()
    }

    #[tracing::instrument(level = "debug", skip(self), fields(key = %key))]
    async fn signed_get_url(
        &self,
        key: &BlobKey,
        ttl: std::time::Duration,
        now: OffsetDateTime,
    ) -> Result<SignedUrl, BlobError> {
        match &self.signing {
            UrlSigning::Hmac(signer) => signer.signed_get(key, ttl, now),
            // SigV4 query signing stamps the request with the signer's own clock
            // (X-Amz-Date) and the lifetime; `expires_at` reports the same instant
            // when the caller's clock is the system clock.
            UrlSigning::Native(signer) => {
                check_ttl(ttl)?;
                let url = signer
                    .signed_url(http::Method::GET, &self.root.path(key), ttl)
                    .await
                    .map_err(|e| map_err(e, key.as_str()))?
                    .to_string();
                Ok(SignedUrl {
                    url,
                    expires_at: now + ttl,
                })
            }
        }
    }
}
