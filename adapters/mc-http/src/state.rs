//! [`AppState`]: what the handlers call into.

use std::sync::Arc;

use mc_actions::ActionService;
use mc_core::ExecutionStore;

use crate::auth::BearerVerifier;
use crate::evidence::EvidenceApi;
use crate::retention::RetentionApi;
use crate::stepup::StepUpIssuer;

/// Default request body limit: 64 KiB (an action body is a reason of at most 1,024
/// characters and a grant; a WebAuthn answer is a few KiB).
pub const DEFAULT_BODY_LIMIT: usize = 64 * 1024;

/// Everything the routes need. Cheap to clone (all `Arc`s).
#[derive(Clone)]
pub struct AppState {
    /// Performs cancel / retry / replay and computes the allowed-actions view.
    pub actions: Arc<ActionService>,
    /// Reads executions (get, search) — the same store the service writes to.
    pub executions: Arc<dyn ExecutionStore>,
    /// Verifies bearer tokens.
    pub authenticator: Arc<dyn BearerVerifier>,
    /// Runs step-up ceremonies.
    pub step_up: Arc<dyn StepUpIssuer>,
    /// Largest accepted request body in bytes (larger → 413).
    pub body_limit: usize,
    /// The evidence routes' services; `None` answers them with 404 `not_configured`.
    pub evidence: Option<EvidenceApi>,
    /// The retention routes' services; `None` answers them with 404 `not_configured`.
    pub retention: Option<RetentionApi>,
}

impl std::fmt::Debug for AppState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppState")
            .field("step_up", &self.step_up.ceremony())
            .field("body_limit", &self.body_limit)
            .finish_non_exhaustive()
    }
}

impl AppState {
    /// State with the default body limit.
    pub fn new(
        actions: Arc<ActionService>,
        executions: Arc<dyn ExecutionStore>,
        authenticator: Arc<dyn BearerVerifier>,
        step_up: Arc<dyn StepUpIssuer>,
    ) -> Self {
        AppState {
            actions,
            executions,
            authenticator,
            step_up,
            body_limit: DEFAULT_BODY_LIMIT,
            evidence: None,
            retention: None,
        }
    }

    /// Serves the evidence routes with `api`.
    pub fn with_evidence(mut self, api: EvidenceApi) -> Self {
        self.evidence = Some(api);
        self
    }

    /// Serves the retention routes with `api`.
    pub fn with_retention(mut self, api: RetentionApi) -> Self {
        self.retention = Some(api);
        self
    }

    /// Sets the request body limit in bytes.
    pub fn with_body_limit(mut self, bytes: usize) -> Self {
        self.body_limit = bytes;
        self
    }
}
