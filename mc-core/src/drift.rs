//! Where live configuration comes from, for drift detection (spec §3.4).
//!
//! This is the minimal shape; the drift crate and the Kubernetes adapter build on it.

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::store::StoreError;

/// One live object (a Kubernetes resource, a Terraform resource instance).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LiveObject {
    /// Kind (`Deployment`, `aws_s3_bucket`, ...).
    pub kind: String,
    /// Namespace or module, if any.
    pub namespace: Option<String>,
    /// Name.
    pub name: String,
    /// The object's configuration as JSON.
    pub body: serde_json::Value,
}

/// A source of live configuration.
#[async_trait]
pub trait DriftSource: Send + Sync {
    /// A short name for findings and logs (`kube:prod`, `terraform:state.json`).
    fn name(&self) -> &str;
    /// Reads every live object the source knows.
    async fn snapshot(&self) -> Result<Vec<LiveObject>, StoreError>;
}

/// How urgent an alert is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AlertSeverity {
    /// Wake someone up.
    Critical,
    /// Look at it in working hours.
    Warning,
}

/// An alert for the on-call (spec §3.4: "pages on sev").
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Alert {
    /// De-duplication key: the same key pages once until resolved.
    pub dedup_key: String,
    /// Severity.
    pub severity: AlertSeverity,
    /// One-line summary.
    pub summary: String,
    /// Details (the diff, the source, the time).
    pub details: serde_json::Value,
}

/// Where pages go (PagerDuty, Opsgenie, a chat channel).
#[async_trait]
pub trait Pager: Send + Sync {
    /// Sends `alert`; an alert whose `dedup_key` is already open is not an error.
    async fn page(&self, alert: Alert) -> Result<(), StoreError>;
}

/// A proposed change to the desired state: a pull request with a patch.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChangeProposal {
    /// A stable key of what it fixes: one open proposal per key.
    pub fingerprint: String,
    /// The branch to push (`drift/ab12cd34ef56`).
    pub branch: String,
    /// Title.
    pub title: String,
    /// Body (Markdown: the diff, the evidence).
    pub body: String,
    /// Labels (`drift:auto`, `drift:needs-review`).
    pub labels: Vec<String>,
    /// Files to write on the branch: path in the repository → new content.
    pub files: Vec<(String, String)>,
}

/// An opened proposal.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProposalRef {
    /// Its number (the pull request's).
    pub number: u64,
    /// Where a human reviews it.
    pub url: String,
}

/// Opens change proposals (pull requests). Merging stays a human decision.
#[async_trait]
pub trait ChangeProposer: Send + Sync {
    /// The open proposal for `fingerprint`, if any.
    async fn find_open(&self, fingerprint: &str) -> Result<Option<ProposalRef>, StoreError>;
    /// Opens `proposal`.
    async fn propose(&self, proposal: &ChangeProposal) -> Result<ProposalRef, StoreError>;
}
