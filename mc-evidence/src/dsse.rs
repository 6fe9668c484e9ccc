//! DSSE envelopes (Dead Simple Signing Envelope, secure-systems-lab/dsse v1.0)
//! signed with ed25519, and the key material around them.
//!
//! The signature covers the *pre-authentication encoding* (PAE) of the payload type
//! and the payload, never the JSON of the envelope, so re-serialising an envelope
//! cannot change what was signed:
//!
//! ```text
//! PAE(type, body) = "DSSEv1" SP LEN(type) SP type SP LEN(body) SP body
//! ```
//!
//! where `LEN` is the ASCII decimal byte length without leading zeros.
//!
//! ```
//! use mc_evidence::dsse::{pae, Envelope, EvidenceKey};
//!
//! assert_eq!(
//!     pae("http://example.com/HelloWorld", b"hello world"),
//!     b"DSSEv1 29 http://example.com/HelloWorld 11 hello world".to_vec()
//! );
//! let key = EvidenceKey::from_seed([7; 32]);
//! let env = Envelope::sign("http://example.com/HelloWorld", b"hello world", &key);
//! assert_eq!(env.verify(&key.verifying_key()).unwrap(), b"hello world".to_vec());
//! ```

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use ed25519_dalek::pkcs8::{DecodePrivateKey, DecodePublicKey, EncodePrivateKey, EncodePublicKey};
use ed25519_dalek::{Signature, Signer, SigningKey, Verifier, VerifyingKey};
use serde::{Deserialize, Serialize};
use sha2::Digest as _;

use crate::error::EvidenceError;

/// The ed25519 public key type used for verification.
pub use ed25519_dalek::VerifyingKey as PublicKey;

/// The pre-authentication encoding of DSSE v1: the exact bytes that are signed.
pub fn pae(payload_type: &str, payload: &[u8]) -> Vec<u8> {
    let header = pae_header(payload_type, payload.len());
    let mut out = Vec::with_capacity(header.len() + payload.len());
    out.extend_from_slice(header.as_bytes());
    out.extend_from_slice(payload);
    out
}

/// The PAE up to the body: `"DSSEv1" SP len(type) SP type SP len(body) SP`.
fn pae_header(payload_type: &str, body_len: usize) -> String {
    format!("DSSEv1 {} {payload_type} {body_len} ", payload_type.len())
}

/// An ed25519 signing key for evidence statements.
///
/// Stored as PKCS#8 PEM (`-----BEGIN PRIVATE KEY-----`); the public half as an SPKI
/// PEM (`-----BEGIN PUBLIC KEY-----`). `Debug` never prints the secret.
#[derive(Clone)]
pub struct EvidenceKey {
    signing: SigningKey,
}

impl std::fmt::Debug for EvidenceKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EvidenceKey")
            .field("keyid", &key_id(&self.verifying_key()))
            .finish_non_exhaustive()
    }
}

impl EvidenceKey {
    /// A fresh key from the operating system's random number generator.
    ///
    /// # Errors
    /// [`EvidenceError::Key`] when the OS has no randomness to give.
    pub fn generate() -> Result<Self, EvidenceError> {
        let mut seed = [0u8; 32];
        getrandom::fill(&mut seed).map_err(|e| EvidenceError::Key {
            field: "random seed",
            reason: e.to_string(),
        })?;
        Ok(Self::from_seed(seed))
    }

    /// The key whose 32-byte secret is `seed` (deterministic; for tests and HSM export).
    pub fn from_seed(seed: [u8; 32]) -> Self {
        EvidenceKey {
            signing: SigningKey::from_bytes(&seed),
        }
    }

    /// Parses a PKCS#8 PEM private key.
    ///
    /// # Errors
    /// [`EvidenceError::Key`] naming `private key` when the PEM is not an ed25519
    /// PKCS#8 key.
    pub fn from_pkcs8_pem(pem: &str) -> Result<Self, EvidenceError> {
        let signing = SigningKey::from_pkcs8_pem(pem).map_err(|e| EvidenceError::Key {
            field: "private key",
            reason: format!("not an ed25519 PKCS#8 PEM key: {e}"),
        })?;
        Ok(EvidenceKey { signing })
    }

    /// The key as PKCS#8 PEM (LF line endings).
    ///
    /// # Errors
    /// [`EvidenceError::Key`] if encoding fails.
    pub fn to_pkcs8_pem(&self) -> Result<String, EvidenceError> {
        self.signing
            .to_pkcs8_pem(ed25519_dalek::pkcs8::spki::der::pem::LineEnding::LF)
            .map(|z| z.to_string())
            .map_err(|e| EvidenceError::Key {
                field: "private key",
                reason: e.to_string(),
            })
    }

    /// The public half.
    pub fn verifying_key(&self) -> VerifyingKey {
        self.signing.verifying_key()
    }

    /// The key id written into envelopes: SHA-256 of the raw public key, hex.
    pub fn key_id(&self) -> String {
        key_id(&self.verifying_key())
    }

    pub(crate) fn sign(&self, msg: &[u8]) -> Signature {
        self.signing.sign(msg)
    }
}

/// The key id of a public key: lowercase hex SHA-256 of its 32 raw bytes.
pub fn key_id(key: &VerifyingKey) -> String {
    hex::encode(sha2::Sha256::digest(key.as_bytes()))
}

/// Parses an SPKI PEM public key (`-----BEGIN PUBLIC KEY-----`).
///
/// # Errors
/// [`EvidenceError::Key`] naming `public key` when it is not an ed25519 SPKI PEM key.
pub fn public_key_from_pem(pem: &str) -> Result<VerifyingKey, EvidenceError> {
    VerifyingKey::from_public_key_pem(pem).map_err(|e| EvidenceError::Key {
        field: "public key",
        reason: format!("not an ed25519 SPKI PEM key: {e}"),
    })
}

/// Encodes a public key as SPKI PEM.
///
/// # Errors
/// [`EvidenceError::Key`] if encoding fails.
pub fn public_key_to_pem(key: &VerifyingKey) -> Result<String, EvidenceError> {
    key.to_public_key_pem(ed25519_dalek::pkcs8::spki::der::pem::LineEnding::LF)
        .map_err(|e| EvidenceError::Key {
            field: "public key",
            reason: e.to_string(),
        })
}

/// One signature of an [`Envelope`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EnvelopeSignature {
    /// Hint naming the key ([`key_id`]); not trusted for verification.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub keyid: String,
    /// Base64 (standard alphabet, padded) ed25519 signature over the PAE.
    pub sig: String,
}

/// A payload written into its DSSE pre-authentication encoding, ready to be signed:
/// the PAE header and the payload share one buffer, so a multi-megabyte statement is
/// neither copied nor allocated twice. It owns its bytes and is `Send`, so a large
/// payload can be signed on another thread while the caller goes on
/// ([`crate::manifest::EvidenceManifest::sign_and_link`] does).
///
/// ```
/// use mc_evidence::dsse::{Envelope, EvidenceKey, UnsignedPayload};
///
/// let key = EvidenceKey::from_seed([7; 32]);
/// let unsigned = UnsignedPayload::new("http://example.com/HelloWorld", b"hello world");
/// assert_eq!(unsigned.pae(), b"DSSEv1 29 http://example.com/HelloWorld 11 hello world");
/// let env = std::thread::spawn(move || unsigned.sign(&key)).join().unwrap();
/// assert_eq!(env, Envelope::sign("http://example.com/HelloWorld", b"hello world", &EvidenceKey::from_seed([7; 32])));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnsignedPayload {
    payload_type: String,
    /// Room for the longest header, then the payload; the header is written
    /// right-aligned into the room, ending where the payload starts.
    buf: Vec<u8>,
    /// Where the PAE starts in `buf`.
    start: usize,
    /// Where the payload starts in `buf`.
    room: usize,
}

impl UnsignedPayload {
    /// `payload` of type `payload_type`, ready to sign.
    pub fn new(payload_type: &str, payload: &[u8]) -> Self {
        Self::written(payload_type, payload.len(), |b| {
            b.extend_from_slice(payload)
        })
    }

    /// The payload that `write` appends to the buffer (reserved for `capacity` more
    /// bytes), with the PAE header written in front of it in the same buffer.
    /// `write` must only append (the buffer holds the header's room already); the
    /// crate's statement writer is the one caller.
    pub(crate) fn written(
        payload_type: &str,
        capacity: usize,
        write: impl FnOnce(&mut Vec<u8>),
    ) -> Self {
        // Room for the longest header: "DSSEv1 <len> <type> <len up to 20 digits> ".
        let room = 7 + 20 + 1 + payload_type.len() + 1 + 20 + 1;
        let mut buf = Vec::with_capacity(room + capacity);
        buf.resize(room, 0);
        write(&mut buf);
        let body_len = buf.len() - room;
        let header = pae_header(payload_type, body_len);
        let start = room - header.len();
        buf[start..room].copy_from_slice(header.as_bytes());
        UnsignedPayload {
            payload_type: payload_type.to_string(),
            buf,
            start,
            room,
        }
    }

    /// The payload's media type.
    pub fn payload_type(&self) -> &str {
        &self.payload_type
    }

    /// The payload.
    pub fn payload(&self) -> &[u8] {
        &self.buf[self.room..]
    }

    /// The exact bytes that are signed: [`pae`] of the type and the payload.
    pub fn pae(&self) -> &[u8] {
        &self.buf[self.start..]
    }

    /// The envelope of the payload signed with `key`: the same as [`Envelope::sign`]
    /// over [`Self::payload`].
    pub fn sign(&self, key: &EvidenceKey) -> Envelope {
        let mut envelope = self.unsigned_envelope();
        envelope.add_signature(&self.signature(key), key);
        envelope
    }

    /// `key`'s ed25519 signature over the PAE: the part of [`Self::sign`] that hashes
    /// the payload (twice, SHA-512).
    pub(crate) fn signature(&self, key: &EvidenceKey) -> Signature {
        key.sign(self.pae())
    }

    /// The envelope of the payload without signatures yet: the part of
    /// [`Self::sign`] that base64-encodes the payload.
    pub(crate) fn unsigned_envelope(&self) -> Envelope {
        Envelope {
            payload_type: self.payload_type.clone(),
            payload: B64.encode(self.payload()),
            signatures: Vec::new(),
        }
    }
}

/// A DSSE envelope in its standard JSON form
/// (`{"payloadType", "payload", "signatures": [{"keyid", "sig"}]}`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Envelope {
    /// The payload's media type (for in-toto: [`crate::statement::IN_TOTO_PAYLOAD_TYPE`]).
    pub payload_type: String,
    /// The payload, base64 (standard alphabet, padded).
    pub payload: String,
    /// One or more signatures.
    pub signatures: Vec<EnvelopeSignature>,
}

impl Envelope {
    /// Signs `payload` of type `payload_type` with `key`.
    pub fn sign(payload_type: &str, payload: &[u8], key: &EvidenceKey) -> Self {
        UnsignedPayload::new(payload_type, payload).sign(key)
    }

    /// Appends `key`'s signature `sig` (over this envelope's PAE).
    pub(crate) fn add_signature(&mut self, sig: &Signature, key: &EvidenceKey) {
        self.signatures.push(EnvelopeSignature {
            keyid: key.key_id(),
            sig: B64.encode(sig.to_bytes()),
        });
    }

    /// Parses the JSON form.
    ///
    /// # Errors
    /// [`EvidenceError::InvalidEnvelope`] naming the field that is missing or wrong.
    pub fn from_json(bytes: &[u8]) -> Result<Self, EvidenceError> {
        serde_json::from_slice(bytes).map_err(|e| EvidenceError::InvalidEnvelope {
            field: "envelope",
            reason: e.to_string(),
        })
    }

    /// The JSON form, pretty-printed.
    pub fn to_json_pretty(&self) -> String {
        // Serialising plain strings and vectors cannot fail.
        serde_json::to_string_pretty(self).unwrap_or_default()
    }

    /// Verifies that at least one signature is `key`'s signature over the PAE and
    /// returns the decoded payload.
    ///
    /// # Errors
    /// [`EvidenceError::InvalidEnvelope`] naming `payload` or `signatures[i].sig` when
    /// base64 or lengths are wrong or there are no signatures;
    /// [`EvidenceError::BadSignature`] when no signature verifies with `key` (a wrong
    /// key or a tampered payload).
    pub fn verify(&self, key: &VerifyingKey) -> Result<Vec<u8>, EvidenceError> {
        let payload =
            B64.decode(self.payload.as_bytes())
                .map_err(|e| EvidenceError::InvalidEnvelope {
                    field: "payload",
                    reason: format!("not base64: {e}"),
                })?;
        if self.signatures.is_empty() {
            return Err(EvidenceError::InvalidEnvelope {
                field: "signatures",
                reason: "the envelope carries no signature".into(),
            });
        }
        let msg = pae(&self.payload_type, &payload);
        for s in &self.signatures {
            let raw = B64
                .decode(s.sig.as_bytes())
                .map_err(|e| EvidenceError::InvalidEnvelope {
                    field: "signatures[].sig",
                    reason: format!("not base64: {e}"),
                })?;
            let Ok(bytes) = <[u8; 64]>::try_from(raw.as_slice()) else {
                return Err(EvidenceError::InvalidEnvelope {
                    field: "signatures[].sig",
                    reason: format!("{} bytes; an ed25519 signature has 64", raw.len()),
                });
            };
            if key.verify(&msg, &Signature::from_bytes(&bytes)).is_ok() {
                return Ok(payload);
            }
        }
        Err(EvidenceError::BadSignature { keyid: key_id(key) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pae_matches_the_spec_vector() {
        assert_eq!(
            pae("http://example.com/HelloWorld", b"hello world"),
            b"DSSEv1 29 http://example.com/HelloWorld 11 hello world"
        );
        assert_eq!(pae("", b""), b"DSSEv1 0  0 ");
    }

    #[test]
    fn unsigned_payloads_sign_to_the_standard_envelope() {
        let key = EvidenceKey::from_seed([9; 32]);
        for body in [&b""[..], b"x", b"hello world", &[7u8; 100_000][..]] {
            for ty in [
                "http://example.com/HelloWorld",
                "application/vnd.in-toto+json",
                "",
            ] {
                let unsigned = UnsignedPayload::written(ty, 0, |b| b.extend_from_slice(body));
                assert_eq!(unsigned.pae(), pae(ty, body), "{ty} {}", body.len());
                assert_eq!(unsigned.payload(), body);
                assert_eq!(unsigned.payload_type(), ty);
                assert_eq!(unsigned, UnsignedPayload::new(ty, body));
                // The envelope of the standard form: the payload in base64 and the
                // ed25519 signature over PAE(type, body), made here independently.
                let want = Envelope {
                    payload_type: ty.to_string(),
                    payload: B64.encode(body),
                    signatures: vec![EnvelopeSignature {
                        keyid: key.key_id(),
                        sig: B64.encode(key.sign(&pae(ty, body)).to_bytes()),
                    }],
                };
                assert_eq!(unsigned.sign(&key), want, "{ty} {}", body.len());
                assert_eq!(Envelope::sign(ty, body, &key), want);
                // Signed in two parts (as `sign_and_link` does), the same envelope.
                let mut parts = unsigned.unsigned_envelope();
                parts.add_signature(&unsigned.signature(&key), &key);
                assert_eq!(parts, want);
            }
        }
    }

    #[test]
    fn sign_verify_and_refuse() {
        let k = EvidenceKey::from_seed([1; 32]);
        let other = EvidenceKey::from_seed([2; 32]);
        let env = Envelope::sign("application/x", b"body", &k);
        assert_eq!(env.verify(&k.verifying_key()).unwrap(), b"body");
        assert!(matches!(
            env.verify(&other.verifying_key()),
            Err(EvidenceError::BadSignature { .. })
        ));
        let mut tampered = env.clone();
        tampered.payload = B64.encode(b"bodx");
        assert!(matches!(
            tampered.verify(&k.verifying_key()),
            Err(EvidenceError::BadSignature { .. })
        ));
        let mut retyped = env.clone();
        retyped.payload_type = "application/y".into();
        assert!(retyped.verify(&k.verifying_key()).is_err());
        let mut empty = env.clone();
        empty.signatures.clear();
        assert!(matches!(
            empty.verify(&k.verifying_key()),
            Err(EvidenceError::InvalidEnvelope {
                field: "signatures",
                ..
            })
        ));
        let json = env.to_json_pretty();
        assert!(json.contains("\"payloadType\""));
        assert_eq!(Envelope::from_json(json.as_bytes()).unwrap(), env);
        assert!(matches!(
            Envelope::from_json(b"{\"payload\":\"\"}"),
            Err(EvidenceError::InvalidEnvelope { .. })
        ));
    }

    #[test]
    fn pem_round_trip() {
        let k = EvidenceKey::generate().unwrap();
        let pem = k.to_pkcs8_pem().unwrap();
        assert!(pem.starts_with("-----BEGIN PRIVATE KEY-----"));
        let back = EvidenceKey::from_pkcs8_pem(&pem).unwrap();
        assert_eq!(back.key_id(), k.key_id());
        let pubpem = public_key_to_pem(&k.verifying_key()).unwrap();
        assert_eq!(public_key_from_pem(&pubpem).unwrap(), k.verifying_key());
        assert!(matches!(
            EvidenceKey::from_pkcs8_pem(&pubpem),
            Err(EvidenceError::Key {
                field: "private key",
                ..
            })
        ));
        assert!(public_key_from_pem("garbage").is_err());
    }
}
