//! # mc-objectstore — Maestro Conductor blobs on S3, a local directory or memory
//!
//! [`ObjectBlobStore`] implements mc-core's [`BlobStore`](mc_core::BlobStore) over any
//! [`object_store::ObjectStore`]: evidence packs, logs, receipts and deletion manifests
//! live under `tenants/{tenant}/{kind}/{execution}/{name}` on Amazon S3 (or any
//! S3-compatible server), on a local disk, or in memory — and the domain crates do not
//! change when a host moves from one to the other.
//!
//! ```
//! use mc_core::{BlobKey, BlobStore, PutMode};
//! use mc_objectstore::{BlobStoreOptions, ObjectBlobStore};
//! use std::time::Duration;
//!
//! # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
//! let dir = tempfile::tempdir().unwrap();
//! let url = url::Url::from_directory_path(dir.path()).unwrap();
//! let options = BlobStoreOptions {
//!     signing_secret: Some(b"0123456789abcdef0123456789abcdef".to_vec()),
//!     signing_base_url: Some("https://console.example.com/blobs".into()),
//!     ..BlobStoreOptions::default()
//! };
//! let store = ObjectBlobStore::from_url(url.as_str(), &options).unwrap();
//!
//! let key = BlobKey::new("tenants/acme/evidence/exec_1/pack.tar.zst").unwrap();
//! store.put(&key, "evidence".into(), PutMode::Create).await.unwrap();
//! // Write-once: a second create is refused.
//! assert!(store.put(&key, "other".into(), PutMode::Create).await.is_err());
//!
//! // A pre-signed GET URL for 5 minutes; the HTTP layer verifies it.
//! let now = time::OffsetDateTime::now_utc();
//! let signed = store.signed_get_url(&key, Duration::from_secs(300), now).await.unwrap();
//! assert!(signed.url.starts_with("https://console.example.com/blobs/tenants/acme/"));
//! assert_eq!(store.verify_signed_url(&signed.url, now).unwrap(), key);
//! // More than 10 minutes is refused (spec §7).
//! assert!(store.signed_get_url(&key, Duration::from_secs(601), now).await.is_err());
//! # });
//! ```
//!
//! Modules:
//! - [`ObjectBlobStore`] (module `store`) — the `BlobStore` implementation;
//! - [`BlobStoreOptions`] (module [`options`]) — credentials, endpoint, multipart and
//!   signing settings for [`ObjectBlobStore::from_url`];
//! - [`OpenError`] — why a store could not be opened. Operations return mc-core's
//!   [`BlobError`](mc_core::BlobError): `NotFound`, `AlreadyExists`, `InvalidKey`,
//!   `TtlTooLong`, `Unavailable` (connection failures and timeouts), `Backend`.
//!
//! TLS: object_store's `aws` feature uses rustls with the aws-lc-rs crypto provider.
//! A binary that also links crates defaulting to ring must pick aws-lc-rs features for
//! them too, or install one provider at start-up (see DEPENDENCIES.md).

#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod error;
mod location;
mod open;
pub mod options;
mod store;

pub use error::OpenError;
pub use options::BlobStoreOptions;
pub use store::ObjectBlobStore;
