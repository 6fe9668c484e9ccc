//! Errors: [`OpenError`] for constructors, and the mapping of `object_store` errors
//! onto mc-core's [`BlobError`].

use mc_core::BlobError;
use object_store::client::{HttpError, HttpErrorKind};

/// Why a blob store could not be opened or configured.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    /// The URL does not parse.
    #[error("invalid blob store URL {url:?}: {reason}")]
    InvalidUrl {
        /// The URL as given.
        url: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The scheme is none of `s3`, `file`, `memory`.
    #[error("unsupported blob store scheme {scheme:?} (expected s3://, file:// or memory://)")]
    UnsupportedScheme {
        /// The scheme found.
        scheme: String,
    },
    /// An `s3://` URL without a bucket.
    #[error("blob store URL {url:?} names no bucket (expected s3://bucket/prefix)")]
    MissingBucket {
        /// The URL as given.
        url: String,
    },
    /// A field of [`BlobStoreOptions`](crate::BlobStoreOptions) (or a builder argument)
    /// is out of range or inconsistent.
    #[error("invalid blob store option {field}: {reason}")]
    InvalidOption {
        /// The option's name.
        field: &'static str,
        /// What is wrong with it.
        reason: String,
    },
    /// The key prefix is not a valid path (empty, `.` or `..` segment, control character).
    #[error("invalid key prefix {prefix:?}: {reason}")]
    InvalidPrefix {
        /// The prefix as given.
        prefix: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The local root directory could not be created or opened.
    #[error("cannot use local blob directory {path}: {source}")]
    LocalRoot {
        /// The directory.
        path: std::path::PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// object_store refused the configuration (e.g. an invalid S3 endpoint).
    #[error("object store configuration rejected: {0}")]
    Backend(String),
}

/// Maps an `object_store` error on `key` to a typed [`BlobError`].
///
/// Connection failures, timeouts and interrupted requests anywhere in the error's
/// source chain become [`BlobError::Unavailable`], so a caller can tell "the store is
/// down" from "the store said no".
pub(crate) fn map_err(err: object_store::Error, key: &str) -> BlobError {
    if is_unavailable(&err) {
        return BlobError::Unavailable(err.to_string());
    }
    match err {
        object_store::Error::NotFound { .. } => BlobError::NotFound {
            key: key.to_string(),
        },
        object_store::Error::AlreadyExists { .. } => BlobError::AlreadyExists {
            key: key.to_string(),
        },
        object_store::Error::InvalidPath { .. } => BlobError::InvalidKey {
            key: key.chars().take(200).collect(),
            reason: "not a valid object path for this store",
        },
        other => BlobError::Backend(other.to_string()),
    }
}

/// Like [`map_err`] for a write-once put, where a failed precondition means the
/// object exists (S3 answers `If-None-Match: *` with 412).
pub(crate) fn map_create_err(err: object_store::Error, key: &str) -> BlobError {
    match err {
        object_store::Error::Precondition { .. } => BlobError::AlreadyExists {
            key: key.to_string(),
        },
        other => map_err(other, key),
    }
}

fn is_unavailable(err: &object_store::Error) -> bool {
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(err);
    while let Some(e) = cur {
        if let Some(http) = e.downcast_ref::<HttpError>() {
            return matches!(
                http.kind(),
                HttpErrorKind::Connect
                    | HttpErrorKind::Timeout
                    | HttpErrorKind::Interrupted
                    | HttpErrorKind::Request
            );
        }
        cur = e.source();
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn typed_mapping() {
        let nf = object_store::Error::NotFound {
            path: "p".into(),
            source: "gone".into(),
        };
        assert_eq!(
            map_err(nf, "tenants/a/logs/e/x"),
            BlobError::NotFound {
                key: "tenants/a/logs/e/x".into()
            }
        );
        let pre = object_store::Error::Precondition {
            path: "p".into(),
            source: "412".into(),
        };
        assert!(matches!(
            map_create_err(pre, "k"),
            BlobError::AlreadyExists { .. }
        ));
        let generic = object_store::Error::Generic {
            store: "S3",
            source: "boom".into(),
        };
        assert!(matches!(map_err(generic, "k"), BlobError::Backend(_)));
    }
}
