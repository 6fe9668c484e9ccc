//! Who may do what: the pluggable [`ActionPolicy`] and the default [`RolePolicy`].

use mc_core::{ActionKind, Actor, Execution};

/// A policy decision for one actor, action and execution.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyDecision {
    /// Whether the action is allowed.
    pub allowed: bool,
    /// Whether a step-up grant is required.
    pub step_up_required: bool,
    /// Why not (or notes why yes); shown to the actor.
    pub reasons: Vec<String>,
}

/// Decides whether an actor may perform an action. Pure and synchronous: the Rego
/// access pack (`mc-policy`) implements it too.
pub trait ActionPolicy: Send + Sync {
    /// The decision.
    fn decide(&self, actor: &Actor, action: ActionKind, execution: &Execution) -> PolicyDecision;
}

/// The default role rule: actors with one of `write_roles` (default `operator`) may
/// cancel, retry and replay; everyone else (e.g. `viewer`) may not. Step-up is
/// required for every write unless disabled (tests only).
#[derive(Debug, Clone)]
pub struct RolePolicy {
    write_roles: Vec<String>,
    step_up_required: bool,
}

impl Default for RolePolicy {
    fn default() -> Self {
        RolePolicy {
            write_roles: vec!["operator".to_string()],
            step_up_required: true,
        }
    }
}

impl RolePolicy {
    /// A policy granting writes to `roles`, with step-up required.
    pub fn new(roles: impl IntoIterator<Item = impl Into<String>>) -> Self {
        RolePolicy {
            write_roles: roles.into_iter().map(Into::into).collect(),
            step_up_required: true,
        }
    }

    /// Turns the step-up requirement off or on. Spec §7 makes step-up mandatory for
    /// write actions; turning it off is for hosts that enforce it upstream.
    pub fn with_step_up(mut self, required: bool) -> Self {
        self.step_up_required = required;
        self
    }
}

impl ActionPolicy for RolePolicy {
    fn decide(&self, actor: &Actor, action: ActionKind, execution: &Execution) -> PolicyDecision {
        if actor.tenant != execution.tenant {
            return PolicyDecision {
                allowed: false,
                step_up_required: self.step_up_required,
                reasons: vec![format!("actor {} belongs to another tenant", actor.sub)],
            };
        }
        let allowed = actor.roles.iter().any(|r| self.write_roles.contains(r));
        let reasons = if allowed {
            vec![]
        } else {
            vec![format!(
                "role {} may not {action}; requires one of: {}",
                if actor.roles.is_empty() {
                    "(none)".to_string()
                } else {
                    actor.roles.join(",")
                },
                self.write_roles.join(", ")
            )]
        };
        PolicyDecision {
            allowed,
            step_up_required: self.step_up_required,
            reasons,
        }
    }
}

/// Whether `action` is legal for an execution in its current state: cancel only
/// pending/running; retry only failed; replay only terminal.
pub fn legal_in_state(action: ActionKind, state: mc_core::ExecutionState) -> bool {
    use mc_core::ExecutionState::*;
    match action {
        ActionKind::Cancel => matches!(state, Pending | Running),
        ActionKind::Retry => state == Failed,
        ActionKind::Replay => state.is_terminal(),
    }
}
