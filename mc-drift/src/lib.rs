//! # mc-drift — configuration drift and remediation proposals
//!
//! Spec §3.4 (MC-DRFT-1131 detector, MC-DRFT-1132 PR bot), §5.4, §6
//! (`mc_drift_findings_total`), §8 (drift storm), §9 (flag `drift_pr_bot_enabled`),
//! §12 (labels `drift:auto` / `drift:needs-review`).
//!
//! - Desired state from rendered Kubernetes manifests ([`from_kube_yaml`]: a Helm
//!   release's manifest, `helm template`, kustomize output) or Terraform state
//!   ([`from_terraform_state`]).
//! - Live state from any `mc_core::DriftSource` (a Kubernetes cluster, a cloud
//!   inventory).
//! - [`find_drift`]: every field the desired object sets must match live; fields the
//!   server fills in are not drift (like `kubectl diff` and Argo CD), server-managed
//!   metadata is ignored, named list items (containers, ports) match by name, and
//!   [`PathRule`]s ignore more (`ignoreDifferences`). Each finding has a severity
//!   (RBAC, network policy, secrets, images, security contexts and missing objects are
//!   critical) and a stable fingerprint.
//! - [`DriftDetector::scan`]: counts findings, pages on critical ones (de-duplicated by
//!   fingerprint), and with `drift_pr_bot_enabled` opens one proposal per drift
//!   ([`proposal_for`]: a patch codifying the live state, the diff, the environment
//!   and the time as evidence; never merged by the bot).
//!
//! Pure: no I/O of its own; run a scan every 2 minutes (spec §5.4) from the host or
//! `mc drift watch`.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod desired;
mod detector;
mod diff;
mod propose;

pub use desired::{DesiredObject, Origin, from_kube_yaml, from_terraform_state, kube_object};
pub use detector::{DetectorParts, DriftDetector, FINDINGS_METRIC, OPEN_METRIC, ScanReport};
pub use diff::{
    Change, DiffRules, FieldDiff, Finding, ObjectId, PathRule, Severity, diff_object, find_drift,
};
pub use propose::{LABEL_AUTO, LABEL_REVIEW, proposal_for};

/// Errors of drift detection.
#[derive(Debug, thiserror::Error)]
pub enum DriftError {
    /// A desired-state file that cannot be read.
    #[error("{file}, document {doc}: {reason}")]
    Manifest {
        /// The file.
        file: String,
        /// The document index.
        doc: usize,
        /// Why.
        reason: String,
    },
    /// The live source, the pager, the flags or the proposer failed.
    #[error(transparent)]
    Store(#[from] mc_core::StoreError),
}
