//! Options for [`ObjectBlobStore::from_url`](crate::ObjectBlobStore::from_url).

use std::time::Duration;

/// Smallest multipart part S3 accepts (every part but the last).
pub const MIN_PART_SIZE: usize = 5 * 1024 * 1024;

/// Default part size of a multipart upload, and the size above which a streamed put
/// switches from one request to a multipart upload.
pub const DEFAULT_PART_SIZE: usize = 8 * 1024 * 1024;

/// Default number of parts uploaded at once by one streamed put.
pub const DEFAULT_UPLOAD_CONCURRENCY: usize = 4;

/// How to open a blob store from a URL.
///
/// Every field has a working default ([`BlobStoreOptions::default`]); set only what
/// differs. S3 credentials come from the `AWS_*` environment variables unless given
/// here (explicit values win over the environment).
///
/// ```
/// use mc_objectstore::BlobStoreOptions;
///
/// // A local S3-compatible server (MinIO, s3s-fs, ...) reached over plain HTTP.
/// let options = BlobStoreOptions {
///     endpoint: Some("http://127.0.0.1:9000".into()),
///     allow_http: true,
///     access_key_id: Some("mc".into()),
///     secret_access_key: Some("mc-secret".into()),
///     region: Some("us-east-1".into()),
///     ..BlobStoreOptions::default()
/// };
/// assert!(options.credentials_from_env);
/// ```
#[derive(Clone)]
pub struct BlobStoreOptions {
    /// Read `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN`,
    /// `AWS_REGION`, `AWS_ENDPOINT`, ... for `s3://` URLs (default `true`).
    pub credentials_from_env: bool,
    /// S3 access key id; must be given together with `secret_access_key`.
    pub access_key_id: Option<String>,
    /// S3 secret access key; must be given together with `access_key_id`.
    pub secret_access_key: Option<String>,
    /// S3 session token for temporary credentials.
    pub session_token: Option<String>,
    /// S3 region (default: the environment's, else `us-east-1`).
    pub region: Option<String>,
    /// Endpoint of an S3-compatible server, e.g. `http://127.0.0.1:9000`. Requests use
    /// path-style addressing unless `virtual_hosted_style` is set.
    pub endpoint: Option<String>,
    /// Allow `http://` endpoints (tests and local servers only; default `false`).
    pub allow_http: bool,
    /// Address buckets as `https://{bucket}.{endpoint}` instead of `{endpoint}/{bucket}`.
    pub virtual_hosted_style: bool,
    /// Retries of one S3 request after a transient failure (default 10).
    pub max_retries: usize,
    /// Give up retrying one S3 request after this long (default 3 minutes).
    pub retry_timeout: Duration,
    /// Size of each part of a multipart upload, and the threshold above which a
    /// streamed put uses one (default 8 MiB, at least 5 MiB).
    pub part_size: usize,
    /// Parts of one streamed put uploaded at once (default 4, at least 1).
    pub upload_concurrency: usize,
    /// Secret of the HMAC-signed URLs of `file://` and `memory://` stores. Give the same
    /// secret to every replica that must verify the URLs; when `None`, a random
    /// per-process secret is used (URLs then die with the process).
    pub signing_secret: Option<Vec<u8>>,
    /// Base of the HMAC-signed URLs of `file://` and `memory://` stores: the HTTP route
    /// that serves them, e.g. `https://console.example.com/blobs`. Default: the store
    /// URL itself.
    pub signing_base_url: Option<String>,
}

impl Default for BlobStoreOptions {
    fn default() -> Self {
        BlobStoreOptions {
            credentials_from_env: true,
            access_key_id: None,
            secret_access_key: None,
            session_token: None,
            region: None,
            endpoint: None,
            allow_http: false,
            virtual_hosted_style: false,
            max_retries: 10,
            retry_timeout: Duration::from_secs(180),
            part_size: DEFAULT_PART_SIZE,
            upload_concurrency: DEFAULT_UPLOAD_CONCURRENCY,
            signing_secret: None,
            signing_base_url: None,
        }
    }
}

impl std::fmt::Debug for BlobStoreOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let redact = |o: &Option<String>| o.as_ref().map(|_| "<redacted>");
        f.debug_struct("BlobStoreOptions")
            .field("credentials_from_env", &self.credentials_from_env)
            .field("access_key_id", &self.access_key_id)
            .field("secret_access_key", &redact(&self.secret_access_key))
            .field("session_token", &redact(&self.session_token))
            .field("region", &self.region)
            .field("endpoint", &self.endpoint)
            .field("allow_http", &self.allow_http)
            .field("virtual_hosted_style", &self.virtual_hosted_style)
            .field("max_retries", &self.max_retries)
            .field("retry_timeout", &self.retry_timeout)
            .field("part_size", &self.part_size)
            .field("upload_concurrency", &self.upload_concurrency)
            .field(
                "signing_secret",
                &self.signing_secret.as_ref().map(|_| "<redacted>"),
            )
            .field("signing_base_url", &self.signing_base_url)
            .finish()
    }
}
