//! [`ObjectBlobStore::from_url`]: `s3://bucket/prefix`, `file:///path`, `memory://`.

use std::sync::Arc;

use mc_core::signed_url::UrlSigner;
use object_store::aws::{AmazonS3Builder, S3CopyIfNotExists};
use object_store::local::LocalFileSystem;
use object_store::memory::InMemory;
use object_store::{ObjectStore, RetryConfig};

use crate::error::OpenError;
use crate::options::BlobStoreOptions;
use crate::store::{ObjectBlobStore, UrlSigning};

/// The URL's path, percent-decoded (`s3://b/my%20logs` has the prefix `my logs`).
/// The url crate has already resolved `.` and `..` segments (also `%2E%2E`), so a
/// prefix cannot climb out of the bucket; the decoded form is validated as a prefix.
fn decoded_path(url: &str, parsed: &url::Url) -> Result<String, OpenError> {
    percent_encoding::percent_decode_str(parsed.path())
        .decode_utf8()
        .map(|p| p.into_owned())
        .map_err(|e| OpenError::InvalidUrl {
            url: url.to_string(),
            reason: format!("path is not UTF-8 after percent-decoding: {e}"),
        })
}

/// A 32-byte secret from the operating system's CSPRNG.
fn random_secret() -> Result<Vec<u8>, OpenError> {
    let mut secret = vec![0u8; 32];
    getrandom::fill(&mut secret).map_err(|e| OpenError::InvalidOption {
        field: "signing_secret",
        reason: format!("none given and no system randomness to make one: {e}"),
    })?;
    Ok(secret)
}

fn hmac_signer(options: &BlobStoreOptions, default_base: &str) -> Result<UrlSigner, OpenError> {
    let secret = match &options.signing_secret {
        Some(s) if s.len() < 16 => {
            return Err(OpenError::InvalidOption {
                field: "signing_secret",
                reason: format!(
                    "{} bytes is too short; use at least 16 (32 recommended)",
                    s.len()
                ),
            });
        }
        Some(s) => s.clone(),
        None => random_secret()?,
    };
    let base = options
        .signing_base_url
        .clone()
        .unwrap_or_else(|| default_base.trim_end_matches('/').to_string());
    Ok(UrlSigner::new(secret, base))
}

impl ObjectBlobStore {
    /// Opens a store from a URL:
    ///
    /// - `s3://bucket[/prefix]`: Amazon S3 or an S3-compatible server
    ///   ([`BlobStoreOptions::endpoint`]); credentials from the environment and/or the
    ///   options; pre-signed URLs are S3 SigV4 URLs checked by the server;
    /// - `file:///absolute/dir`: a local directory, created if missing; pre-signed URLs
    ///   are HMAC URLs under [`BlobStoreOptions::signing_base_url`];
    /// - `memory://[prefix]`: in process memory (tests, demos), HMAC URLs as above.
    ///
    /// The URL's path after the bucket (for `memory://`, its host and path) is a key
    /// prefix prepended to every key and stripped on list.
    ///
    /// ```
    /// use mc_core::{BlobKey, BlobStore, PutMode};
    /// use mc_objectstore::{BlobStoreOptions, ObjectBlobStore};
    ///
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// let store = ObjectBlobStore::from_url("memory://", &BlobStoreOptions::default()).unwrap();
    /// let key = BlobKey::new("tenants/acme/logs/exec_1/run.log").unwrap();
    /// store.put(&key, "hello".into(), PutMode::Create).await.unwrap();
    /// assert_eq!(store.get(&key).await.unwrap(), "hello");
    /// # });
    /// ```
    ///
    /// # Errors
    /// [`OpenError::InvalidUrl`] for a URL that does not parse;
    /// [`OpenError::UnsupportedScheme`] for anything but `s3`, `file`, `memory`;
    /// [`OpenError::MissingBucket`] for `s3://` without a bucket;
    /// [`OpenError::InvalidPrefix`] for a prefix with `.`/`..`/empty segments;
    /// [`OpenError::InvalidOption`] naming the bad option (half a key pair, part size
    /// below 5 MiB, zero concurrency, a short signing secret);
    /// [`OpenError::LocalRoot`] when the local directory cannot be created.
    pub fn from_url(url: &str, options: &BlobStoreOptions) -> Result<Self, OpenError> {
        let parsed = url::Url::parse(url).map_err(|e| OpenError::InvalidUrl {
            url: url.to_string(),
            reason: e.to_string(),
        })?;
        if parsed.query().is_some() || parsed.fragment().is_some() {
            return Err(OpenError::InvalidUrl {
                url: url.to_string(),
                reason: "query and fragment are not supported; use BlobStoreOptions".into(),
            });
        }
        let store = match parsed.scheme() {
            "s3" => Self::open_s3(url, &parsed, options)?,
            "file" => Self::open_file(url, &parsed, options)?,
            "memory" => {
                let path = decoded_path(url, &parsed)?;
                let prefix = format!(
                    "{}/{}",
                    parsed.host_str().unwrap_or(""),
                    path.strip_prefix('/').unwrap_or(&path)
                );
                let base = match prefix.trim_matches('/') {
                    "" => "memory://mc".to_string(),
                    p => format!("memory://{p}"),
                };
                Self::build(
                    Arc::new(InMemory::new()),
                    UrlSigning::Hmac(hmac_signer(options, &base)?),
                )
                .with_prefix(&prefix)?
            }
            other => {
                return Err(OpenError::UnsupportedScheme {
                    scheme: other.to_string(),
                });
            }
        };
        store
            .with_part_size(options.part_size)?
            .with_upload_concurrency(options.upload_concurrency)
    }

    fn open_s3(
        url: &str,
        parsed: &url::Url,
        options: &BlobStoreOptions,
    ) -> Result<Self, OpenError> {
        let bucket = parsed.host_str().filter(|b| !b.is_empty()).ok_or_else(|| {
            OpenError::MissingBucket {
                url: url.to_string(),
            }
        })?;
        let mut builder = if options.credentials_from_env {
            AmazonS3Builder::from_env()
        } else {
            AmazonS3Builder::new()
        };
        builder = builder
            .with_bucket_name(bucket)
            // Large write-once uploads are staged then copied with a conditional
            // multipart completion (If-None-Match: *), which AWS S3 and s3s support.
            .with_copy_if_not_exists(S3CopyIfNotExists::Multipart)
            .with_allow_http(options.allow_http)
            .with_virtual_hosted_style_request(options.virtual_hosted_style)
            .with_retry(RetryConfig {
                max_retries: options.max_retries,
                retry_timeout: options.retry_timeout,
                ..RetryConfig::default()
            });
        match (&options.access_key_id, &options.secret_access_key) {
            (Some(id), Some(secret)) => {
                builder = builder
                    .with_access_key_id(id)
                    .with_secret_access_key(secret);
            }
            (None, None) => {}
            (Some(_), None) => {
                return Err(OpenError::InvalidOption {
                    field: "secret_access_key",
                    reason: "access_key_id is set, so secret_access_key must be too".into(),
                });
            }
            (None, Some(_)) => {
                return Err(OpenError::InvalidOption {
                    field: "access_key_id",
                    reason: "secret_access_key is set, so access_key_id must be too".into(),
                });
            }
        }
        if let Some(token) = &options.session_token {
            builder = builder.with_token(token);
        }
        if let Some(region) = &options.region {
            builder = builder.with_region(region);
        }
        if let Some(endpoint) = &options.endpoint {
            let ep = url::Url::parse(endpoint).map_err(|e| OpenError::InvalidOption {
                field: "endpoint",
                reason: format!("{endpoint:?} is not a URL: {e}"),
            })?;
            if ep.scheme() == "http" && !options.allow_http {
                return Err(OpenError::InvalidOption {
                    field: "endpoint",
                    reason: "an http:// endpoint needs allow_http = true".into(),
                });
            }
            builder = builder.with_endpoint(endpoint);
        }
        let s3 = Arc::new(
            builder
                .build()
                .map_err(|e| OpenError::Backend(e.to_string()))?,
        );
        let store: Arc<dyn ObjectStore> = s3.clone();
        Self::build(store, UrlSigning::Native(s3)).with_prefix(&decoded_path(url, parsed)?)
    }

    fn open_file(
        url: &str,
        parsed: &url::Url,
        options: &BlobStoreOptions,
    ) -> Result<Self, OpenError> {
        let dir = parsed.to_file_path().map_err(|()| OpenError::InvalidUrl {
            url: url.to_string(),
            reason: "expected file:///absolute/path on this machine".into(),
        })?;
        std::fs::create_dir_all(&dir).map_err(|source| OpenError::LocalRoot {
            path: dir.clone(),
            source,
        })?;
        let local = LocalFileSystem::new_with_prefix(&dir)
            .map_err(|e| OpenError::LocalRoot {
                path: dir.clone(),
                source: std::io::Error::other(e.to_string()),
            })?
            // Remove empty directories left behind by deletes.
            .with_automatic_cleanup(true);
        Ok(Self::build(
            Arc::new(local),
            UrlSigning::Hmac(hmac_signer(options, url)?),
        ))
    }
}
