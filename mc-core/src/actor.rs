//! Actors: who performs an action.

use serde::{Deserialize, Serialize};

use crate::id::{ActorId, TenantId};

/// An authenticated actor: subject, tenant and roles (from the host's identity
/// provider; roles such as `operator` or `viewer`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Actor {
    /// Subject (`alice@company`).
    pub sub: ActorId,
    /// The tenant the actor is acting in.
    pub tenant: TenantId,
    /// Role names.
    pub roles: Vec<String>,
}

impl Actor {
    /// A new actor.
    pub fn new(
        sub: ActorId,
        tenant: TenantId,
        roles: impl IntoIterator<Item = impl Into<String>>,
    ) -> Self {
        Actor {
            sub,
            tenant,
            roles: roles.into_iter().map(Into::into).collect(),
        }
    }

    /// Whether the actor has `role`.
    pub fn has_role(&self, role: &str) -> bool {
        self.roles.iter().any(|r| r == role)
    }
}
