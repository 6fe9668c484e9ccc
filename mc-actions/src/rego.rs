//! [`RegoActionPolicy`]: the Rego `access` pack of `mc-policy` as an [`ActionPolicy`]
//! (feature `rego`).

use mc_core::{ActionKind, Actor, Execution};
use mc_policy::{AccessActor, AccessExecution, AccessInput, AccessPolicy};

use crate::policy::{ActionPolicy, PolicyDecision};

/// Decides actions with the `access` policy pack (`policy/access`). Fails closed: an
/// evaluation error (timeout, malformed decision) is a denial that names the error,
/// with step-up required.
///
/// ```no_run
/// use std::sync::Arc;
/// use mc_actions::RegoActionPolicy;
/// let policy = RegoActionPolicy::load(std::path::Path::new("policy/access")).unwrap();
/// // service.with_policy(Arc::new(policy))
/// # let _ = Arc::new(policy);
/// ```
#[derive(Debug)]
pub struct RegoActionPolicy {
    access: AccessPolicy,
}

impl RegoActionPolicy {
    /// Wraps a prepared access policy.
    pub fn new(access: AccessPolicy) -> Self {
        RegoActionPolicy { access }
    }

    /// Loads the pack in `dir`.
    ///
    /// # Errors
    /// The pack's load errors ([`mc_policy::PolicyError`]).
    pub fn load(dir: &std::path::Path) -> Result<Self, mc_policy::PolicyError> {
        Ok(Self::new(AccessPolicy::load(dir)?))
    }
}

impl ActionPolicy for RegoActionPolicy {
    fn decide(&self, actor: &Actor, action: ActionKind, execution: &Execution) -> PolicyDecision {
        if actor.tenant != execution.tenant {
            return PolicyDecision {
                allowed: false,
                step_up_required: true,
                reasons: vec![format!("actor {} belongs to another tenant", actor.sub)],
            };
        }
        let input = AccessInput {
            actor: AccessActor {
                sub: actor.sub.to_string(),
                tenant: actor.tenant.to_string(),
                roles: actor.roles.clone(),
            },
            action: action.as_str().to_string(),
            execution: AccessExecution {
                id: execution.id.to_string(),
                state: execution.state.as_str().to_string(),
            },
        };
        match self.access.decide(&input) {
            Ok(d) => PolicyDecision {
                allowed: d.allow,
                step_up_required: d.step_up_required,
                reasons: d.reasons,
            },
            Err(e) => {
                tracing::warn!(error = %e, "access policy failed; denying");
                PolicyDecision {
                    allowed: false,
                    step_up_required: true,
                    reasons: vec![format!("access policy error: {e}")],
                }
            }
        }
    }
}
