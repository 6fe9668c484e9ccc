//! Reading and verifying packs: one streaming pass over the `.tar.zst` that hashes
//! every artifact, optionally re-scans it for PII (the post-pack scan), hands it to
//! a sink (to write files, or nowhere), and finally checks the DSSE envelope and
//! every digest against the in-toto statement.

use std::collections::BTreeMap;
use std::io::{self, Read};
use std::sync::Arc;

use ed25519_dalek::VerifyingKey;
use sha2::Digest as _;

use crate::dsse::Envelope;
use crate::error::EvidenceError;
use crate::manifest::EvidenceManifest;
use crate::pack::{ARTIFACT_PREFIX, ENVELOPE_PATH, MANIFEST_PATH};
use crate::redact::{RedactionCounts, Redactor};
use crate::statement::{Statement, verify_envelope};

/// Largest manifest or envelope member accepted (a pack of 10⁵ artifacts fits easily).
pub const MAX_METADATA_BYTES: u64 = 256 << 20;

/// A verified pack.
#[derive(Debug, Clone)]
pub struct VerifiedPack {
    /// The verified statement (its predicate is the manifest).
    pub statement: Statement,
    /// The envelope that carried it.
    pub envelope: Envelope,
    /// Artifacts checked.
    pub artifacts: usize,
    /// Matches found by the post-pack scan, per artifact (empty when clean or when no
    /// scan was asked for).
    pub leaks: BTreeMap<String, RedactionCounts>,
}

impl VerifiedPack {
    /// The manifest.
    pub fn manifest(&self) -> &EvidenceManifest {
        &self.statement.predicate
    }
}

/// Receives artifacts while a pack is read (e.g. to write them to disk).
pub trait PackSink {
    /// Called once per artifact with its pack path (`artifacts/<name>`) and contents.
    /// The sink may read all, part or none of `data`.
    ///
    /// # Errors
    /// Any I/O error aborts the read.
    fn artifact(&mut self, path: &str, size: u64, data: &mut dyn Read) -> io::Result<()>;
}

/// A sink that keeps nothing (verify only).
#[derive(Debug, Default, Clone, Copy)]
pub struct DiscardSink;

impl PackSink for DiscardSink {
    fn artifact(&mut self, _: &str, _: u64, _: &mut dyn Read) -> io::Result<()> {
        Ok(())
    }
}

struct Hashing<'a, R> {
    inner: R,
    sha: sha2::Sha256,
    n: u64,
    scan: Option<(crate::redact::RedactStream, Vec<u8>)>,
    _p: std::marker::PhantomData<&'a ()>,
}

impl<R: Read> Read for Hashing<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.sha.update(&buf[..n]);
        self.n += n as u64;
        if let Some((s, scratch)) = &mut self.scan {
            scratch.clear();
            s.push(&buf[..n], scratch);
        }
        Ok(n)
    }
}

fn read_err(entry: &str, e: io::Error) -> EvidenceError {
    let text = e.to_string();
    if e.kind() == io::ErrorKind::UnexpectedEof
        || text.contains("incomplete")
        || text.contains("ended")
    {
        EvidenceError::TruncatedPack {
            reason: format!("{entry}: {text}"),
        }
    } else {
        EvidenceError::InvalidPack {
            entry: entry.to_string(),
            reason: text,
        }
    }
}

/// Reads a pack, passes each artifact to `sink`, and verifies it with `key`.
///
/// With `scan = Some(redactor)`, every artifact is re-scanned and matches are
/// reported in [`VerifiedPack::leaks`] (the MC-DATA-1152 post-pack scan).
///
/// # Errors
/// [`EvidenceError::TruncatedPack`] when the stream ends early or the envelope is
/// absent; [`EvidenceError::InvalidPack`] naming the entry for an unexpected member
/// or a manifest that disagrees with the statement; [`EvidenceError::BadSignature`]
/// for a wrong key; [`EvidenceError::UnknownPayloadType`];
/// [`EvidenceError::ArtifactMissing`] / [`EvidenceError::DigestMismatch`] naming the
/// artifact.
pub fn read_pack<R: Read>(
    reader: R,
    key: &VerifyingKey,
    scan: Option<&Arc<Redactor>>,
    sink: &mut dyn PackSink,
) -> Result<VerifiedPack, EvidenceError> {
    let dec = zstd::stream::read::Decoder::new(reader).map_err(|e| read_err("pack", e))?;
    let mut archive = tar::Archive::new(dec);
    let mut seen: BTreeMap<String, String> = BTreeMap::new();
    let mut leaks = BTreeMap::new();
    let mut manifest_bytes = None;
    let mut envelope_bytes = None;
    let entries = archive.entries().map_err(|e| read_err("pack", e))?;
    for entry in entries {
        let mut entry = entry.map_err(|e| read_err("pack", e))?;
        let path = entry
            .path()
            .map_err(|e| read_err("pack", e))?
            .to_string_lossy()
            .into_owned();
        let size = entry.size();
        if path == MANIFEST_PATH || path == ENVELOPE_PATH {
            if size > MAX_METADATA_BYTES {
                return Err(EvidenceError::InvalidPack {
                    entry: path,
                    reason: format!("{size} bytes is above the limit"),
                });
            }
            let mut buf = Vec::with_capacity(size as usize);
            entry
                .read_to_end(&mut buf)
                .map_err(|e| read_err(&path, e))?;
            if (buf.len() as u64) < size {
                return Err(EvidenceError::TruncatedPack {
                    reason: format!("{path} is cut short"),
                });
            }
            if path == MANIFEST_PATH {
                manifest_bytes = Some(buf);
            } else {
                envelope_bytes = Some(buf);
            }
            continue;
        }
        if !path.starts_with(ARTIFACT_PREFIX) || seen.contains_key(&path) {
            return Err(EvidenceError::InvalidPack {
                entry: path,
                reason: "not an artifact of this pack (or a duplicate)".into(),
            });
        }
        let mut h = Hashing {
            inner: &mut entry,
            sha: sha2::Sha256::new(),
            n: 0,
            scan: scan.map(|r| (r.stream(), Vec::new())),
            _p: std::marker::PhantomData,
        };
        sink.artifact(&path, size, &mut h)
            .map_err(|e| read_err(&path, e))?;
        io::copy(&mut h, &mut io::sink()).map_err(|e| read_err(&path, e))?;
        if h.n != size {
            return Err(EvidenceError::TruncatedPack {
                reason: format!("{path}: {} of {size} bytes", h.n),
            });
        }
        if let Some((mut s, mut scratch)) = h.scan.take() {
            s.finish(&mut scratch);
            if s.counts().total() > 0 {
                leaks.insert(path.clone(), s.counts().clone());
            }
        }
        seen.insert(path, hex::encode(h.sha.finalize()));
    }
    let envelope_bytes = envelope_bytes.ok_or_else(|| EvidenceError::TruncatedPack {
        reason: format!("{ENVELOPE_PATH} is missing"),
    })?;
    let manifest_bytes = manifest_bytes.ok_or_else(|| EvidenceError::TruncatedPack {
        reason: format!("{MANIFEST_PATH} is missing"),
    })?;
    let envelope = Envelope::from_json(&envelope_bytes)?;
    let statement = verify_envelope(&envelope, key)?;
    let manifest: EvidenceManifest =
        serde_json::from_slice(&manifest_bytes).map_err(|e| EvidenceError::InvalidPack {
            entry: MANIFEST_PATH.into(),
            reason: e.to_string(),
        })?;
    if manifest != statement.predicate {
        return Err(EvidenceError::InvalidPack {
            entry: MANIFEST_PATH.into(),
            reason: "differs from the signed statement".into(),
        });
    }
    for s in &statement.subject {
        let expected = s.digest.get("sha256").cloned().unwrap_or_default();
        match seen.remove(&s.name) {
            None => {
                return Err(EvidenceError::ArtifactMissing {
                    artifact: s.name.clone(),
                });
            }
            Some(actual) if actual != expected => {
                return Err(EvidenceError::DigestMismatch {
                    artifact: s.name.clone(),
                    expected,
                    actual,
                });
            }
            Some(_) => {}
        }
    }
    if let Some((extra, _)) = seen.into_iter().next() {
        return Err(EvidenceError::InvalidPack {
            entry: extra,
            reason: "not listed in the signed statement".into(),
        });
    }
    Ok(VerifiedPack {
        envelope,
        artifacts: statement.subject.len(),
        statement,
        leaks,
    })
}
