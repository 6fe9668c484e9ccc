//! # mc-evidence — evidence manifests, signed statements and disclosure packs
//!
//! Evidence & Disclosure v2 (spec §3.2 MC-DISC-1111/1112, §3.6 MC-DATA-1152) as a
//! library with no I/O of its own:
//!
//! - [`manifest`] — [`EvidenceManifest`] of an execution (artifacts with name, media
//!   type, size, SHA-256 and a pre-signed URL ≤ 10 min) built by
//!   [`EvidenceService::manifest`], the entry point behind
//!   `GET /api/executions/{id}/evidence` (403 when `evidence_v2_enabled` is off,
//!   404 for another tenant's execution);
//! - [`statement`], [`dsse`] — the manifest as an in-toto Statement v1 in a DSSE
//!   envelope signed with ed25519; verification of signature and digests;
//! - [`access`] — pre-signed URL checks that log each granted download as an
//!   `mc.evidence.access` audit event;
//! - [`redact`] — the streaming, length-preserving PII [`Redactor`];
//! - [`pack`] — the streaming, parallel `.tar.zst` [`PackBuilder`];
//!   [`unpack`] — reading and verifying packs, with the post-pack PII scan;
//! - `dir` (feature `dir-store`) — a `BlobStore` over a local directory.
//!
//! ```
//! use std::sync::Arc;
//! use mc_core::*;
//! use mc_evidence::{EvidenceKey, PackArtifact, PackBuilder, PackOptions, Redactor};
//! use mc_evidence::unpack::{read_pack, DiscardSink};
//! use time::macros::datetime;
//!
//! # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
//! let clock = Arc::new(ManualClock::new(datetime!(2025-12-10 18:00 UTC)));
//! let blobs = Arc::new(MemoryBlobStore::new(clock.clone()));
//! let key = BlobKey::new("tenants/acme/logs/exec_1/run.log").unwrap();
//! blobs.put(&key, "login alice@example.com from 10.0.0.7\n".into(), PutMode::Create)
//!     .await.unwrap();
//!
//! let signing = EvidenceKey::from_seed([42; 32]);
//! let opts = PackOptions::new(TenantId::new("acme").unwrap(), ExecutionId::new("exec_1").unwrap());
//! let builder = PackBuilder::new(blobs.clone(), Arc::new(Redactor::builtin()),
//!     signing.clone(), clock, opts);
//! let artifacts = PackArtifact::list(blobs.as_ref(), "tenants/acme/logs/exec_1/").await.unwrap();
//! let (report, pack) = builder.build(artifacts, Vec::new()).await.unwrap();
//! assert_eq!(report.redactions.get("email"), 1);
//! assert_eq!(report.redactions.get("ipv4"), 1);
//!
//! let verified = read_pack(&pack[..], &signing.verifying_key(), None, &mut DiscardSink).unwrap();
//! assert_eq!(verified.artifacts, 1);
//! # });
//! ```

#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod access;
mod byteclass;
#[cfg(feature = "dir-store")]
pub mod dir;
pub mod dsse;
pub mod error;
pub mod manifest;
pub mod pack;
pub mod redact;
pub mod statement;
pub mod unpack;

pub use access::{AccessGrant, AccessLogger, EVIDENCE_ACCESS};
pub use dsse::{Envelope, EvidenceKey};
pub use error::EvidenceError;
pub use manifest::{ArtifactEntry, EvidenceManifest, EvidenceService, SignedManifest};
pub use pack::{CancelToken, PackArtifact, PackBuilder, PackOptions, PackProgress, PackReport};
pub use redact::{CustomRule, RedactionCounts, Redactor};
pub use statement::{Statement, verify_envelope, verify_subjects};
pub use unpack::{VerifiedPack, read_pack};
