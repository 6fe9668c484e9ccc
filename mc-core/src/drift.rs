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
