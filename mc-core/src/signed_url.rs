//! HMAC-SHA256 pre-signed URLs for stores without a native signer (local directory,
//! memory). The signature covers the method, the key and the expiry; verification
//! is constant-time and checks expiry against the caller's clock.
//!
//! ```
//! use mc_core::signed_url::UrlSigner;
//! use mc_core::BlobKey;
//! use time::macros::datetime;
//!
//! let signer = UrlSigner::new(b"0123456789abcdef0123456789abcdef".to_vec(), "http://127.0.0.1:8080/blobs");
//! let key = BlobKey::new("tenants/acme/logs/exec_1/run.log").unwrap();
//! let now = datetime!(2025-12-10 18:00 UTC);
//! let url = signer.sign("GET", &key, now + time::Duration::minutes(5));
//! assert_eq!(signer.verify_url("GET", &url, now).unwrap(), key);
//! assert!(signer.verify_url("GET", &url, now + time::Duration::minutes(6)).is_err());
//! ```

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;
use time::OffsetDateTime;

use crate::blob::{BlobError, BlobKey, SignedUrl, check_ttl};

/// Why a signed URL was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignedUrlError {
    /// Not a URL this signer produced (missing parameters, other base).
    #[error("malformed signed URL: {0}")]
    Malformed(&'static str),
    /// The URL is past its expiry.
    #[error("signed URL expired")]
    Expired,
    /// The signature does not match (tampered path, expiry or method, or another key).
    #[error("signed URL signature is invalid")]
    BadSignature,
}

/// Signs and verifies URLs with a secret key.
#[derive(Clone)]
pub struct UrlSigner {
    /// HMAC state after absorbing the key, cloned for every URL: a manifest signs
    /// thousands of URLs and keying costs two SHA-256 blocks each time.
    keyed: Hmac<Sha256>,
    base: String,
}

impl std::fmt::Debug for UrlSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UrlSigner")
            .field("base", &self.base)
            .field("secret", &"<redacted>")
            .finish()
    }
}

impl UrlSigner {
    /// A signer whose URLs start with `base` (no trailing `/`).
    pub fn new(secret: Vec<u8>, base: impl Into<String>) -> Self {
        // new_from_slice accepts any key length for HMAC.
        let keyed = <Hmac<Sha256> as KeyInit>::new_from_slice(&secret)
            .unwrap_or_else(|_| unreachable_hmac());
        UrlSigner {
            keyed,
            base: base.into().trim_end_matches('/').to_string(),
        }
    }

    fn mac(&self, method: &str, key: &str, expires: &str) -> Hmac<Sha256> {
        let mut mac = self.keyed.clone();
        mac.update(b"mc-signed-url-v1\n");
        mac.update(method.as_bytes());
        mac.update(b"\n");
        mac.update(key.as_bytes());
        mac.update(b"\n");
        mac.update(expires.as_bytes());
        mac
    }

    /// A URL for `method` on `key`, valid until `expires_at`.
    pub fn sign(&self, method: &str, key: &BlobKey, expires_at: OffsetDateTime) -> String {
        let exp = expires_at.unix_timestamp().to_string();
        let sig = self.mac(method, key.as_str(), &exp).finalize().into_bytes();
        // One allocation of the final size; hex from a table (this runs once per
        // artifact of a manifest).
        let key = key.as_str();
        let mut url =
            String::with_capacity(self.base.len() + key.len() + exp.len() + 2 * sig.len() + 15);
        url.push_str(&self.base);
        url.push('/');
        url.push_str(key);
        url.push_str("?expires=");
        url.push_str(&exp);
        url.push_str("&sig=");
        const HEX: &[u8; 16] = b"0123456789abcdef";
        for b in sig {
            url.push(char::from(HEX[usize::from(b >> 4)]));
            url.push(char::from(HEX[usize::from(b & 0x0f)]));
        }
        url
    }

    /// A GET URL for `key` valid for `ttl` from `now`: the whole of
    /// [`crate::BlobStore::signed_get_url`] for stores that sign with this signer.
    ///
    /// # Errors
    /// [`BlobError::TtlTooLong`] above [`crate::blob::MAX_SIGNED_URL_TTL`].
    pub fn signed_get(
        &self,
        key: &BlobKey,
        ttl: std::time::Duration,
        now: OffsetDateTime,
    ) -> Result<SignedUrl, BlobError> {
        check_ttl(ttl)?;
        let expires_at = now + ttl;
        Ok(SignedUrl {
            url: self.sign("GET", key, expires_at),
            expires_at,
        })
    }

    /// Verifies a URL produced by [`UrlSigner::sign`] and returns its key.
    ///
    /// # Errors
    /// [`SignedUrlError`]: malformed, expired or a bad signature.
    pub fn verify_url(
        &self,
        method: &str,
        url: &str,
        now: OffsetDateTime,
    ) -> Result<BlobKey, SignedUrlError> {
        let rest = url
            .strip_prefix(&self.base)
            .and_then(|r| r.strip_prefix('/'))
            .ok_or(SignedUrlError::Malformed("not under this signer's base"))?;
        let (path, query) = rest
            .split_once('?')
            .ok_or(SignedUrlError::Malformed("missing query"))?;
        self.verify(method, path, query, now)
    }

    /// Verifies a request for `path` (the key) with `query` (`expires=..&sig=..`).
    ///
    /// # Errors
    /// [`SignedUrlError`]: malformed, expired or a bad signature.
    pub fn verify(
        &self,
        method: &str,
        path: &str,
        query: &str,
        now: OffsetDateTime,
    ) -> Result<BlobKey, SignedUrlError> {
        let mut expires = None;
        let mut sig = None;
        for pair in query.split('&') {
            match pair.split_once('=') {
                Some(("expires", v)) => expires = Some(v),
                Some(("sig", v)) => sig = Some(v),
                _ => {}
            }
        }
        let expires: i64 = expires
            .and_then(|e| e.parse().ok())
            .ok_or(SignedUrlError::Malformed("missing or bad expires"))?;
        let sig = sig
            .and_then(|s| hex::decode(s).ok())
            .ok_or(SignedUrlError::Malformed("missing or bad sig"))?;
        let key = BlobKey::new(path).map_err(|_| SignedUrlError::Malformed("bad key"))?;
        // Signature first, so a tampered expiry reports BadSignature, then expiry.
        // The MAC covers the canonical decimal form, as `sign` wrote it, so `+5` or
        // `05` for `5` does not verify.
        self.mac(method, key.as_str(), &expires.to_string())
            .verify_slice(&sig)
            .map_err(|_| SignedUrlError::BadSignature)?;
        if now.unix_timestamp() >= expires {
            return Err(SignedUrlError::Expired);
        }
        Ok(key)
    }
}

#[cold]
fn unreachable_hmac() -> Hmac<Sha256> {
    // HMAC accepts keys of every length; this is never reached.
    <Hmac<Sha256> as KeyInit>::new_from_slice(&[0u8; 32]).expect("HMAC takes any key length")
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn url_is_the_documented_hmac_in_lowercase_hex() {
        let secret = b"0123456789abcdef0123456789abcdef";
        let s = UrlSigner::new(secret.to_vec(), "memory://blobs/");
        let key = BlobKey::new("tenants/acme/logs/e/a.log").unwrap();
        let at = datetime!(2025-12-10 18:10 UTC);
        let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(secret).unwrap();
        mac.update(b"mc-signed-url-v1\nGET\ntenants/acme/logs/e/a.log\n1765390200");
        let sig = hex::encode(mac.finalize().into_bytes());
        assert_eq!(
            s.sign("GET", &key, at),
            format!("memory://blobs/tenants/acme/logs/e/a.log?expires=1765390200&sig={sig}")
        );
        // The signer is reused: a second URL is keyed from the same state.
        assert_eq!(s.sign("GET", &key, at), s.sign("GET", &key, at));
    }

    #[test]
    fn tamper_is_refused() {
        let s = UrlSigner::new(vec![7; 32], "memory://blobs");
        let key = BlobKey::new("tenants/acme/logs/e/a.log").unwrap();
        let now = datetime!(2025-12-10 18:00 UTC);
        let url = s.sign("GET", &key, now + time::Duration::minutes(10));
        assert_eq!(s.verify_url("GET", &url, now).unwrap(), key);
        assert_eq!(
            s.verify_url("PUT", &url, now).unwrap_err(),
            SignedUrlError::BadSignature
        );
        let other = url.replace("a.log", "b.log");
        assert_eq!(
            s.verify_url("GET", &other, now).unwrap_err(),
            SignedUrlError::BadSignature
        );
        let later = url.replace("expires=", "expires=9");
        assert_eq!(
            s.verify_url("GET", &later, now).unwrap_err(),
            SignedUrlError::BadSignature
        );
        let s2 = UrlSigner::new(vec![8; 32], "memory://blobs");
        assert_eq!(
            s2.verify_url("GET", &url, now).unwrap_err(),
            SignedUrlError::BadSignature
        );
        assert_eq!(
            s.verify_url("GET", &url, now + time::Duration::minutes(10))
                .unwrap_err(),
            SignedUrlError::Expired
        );
        assert!(matches!(
            s.verify_url("GET", "memory://blobs/x", now),
            Err(SignedUrlError::Malformed(_))
        ));
    }
}
