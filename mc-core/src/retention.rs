//! Per-tenant retention overrides, stored durably with their audit events.
//!
//! `mc-lifecycle` owns the rules (which kinds exist, their defaults and bounds, what
//! a period like `30d` means); this port only keeps each tenant's overrides as text
//! and changes them together with the `mc.lifecycle.override` audit event that
//! records the change — one unit of work, so no override is ever in force without its
//! event, and no event describes a change that did not happen (DESIGN rule 2).

use std::collections::BTreeMap;

use async_trait::async_trait;

use crate::audit::{AuditEvent, NewAuditEvent};
use crate::id::TenantId;
use crate::store::StoreError;

/// The longest blob kind name a store accepts.
pub const MAX_KIND_LEN: usize = 64;
/// The longest period text a store accepts (`"36500d"` is 6).
pub const MAX_TTL_LEN: usize = 32;

/// One change of one tenant's retention override, committed with its audit event.
#[derive(Debug, Clone, PartialEq)]
pub struct RetentionCommit {
    /// The tenant whose override changes.
    pub tenant: TenantId,
    /// The blob kind (`logs`, `receipts`): lowercase ASCII letters, digits and `-`.
    pub kind: String,
    /// The override the writer read (`None`: it had none). The commit fails with
    /// [`StoreError::Conflict`] when the stored one differs (compare-and-set), so two
    /// administrators cannot both believe they replaced the same value.
    pub expected: Option<String>,
    /// The new override as text (`"30d"`); `None` removes it (the default applies).
    pub ttl: Option<String>,
    /// The audit event recording the change; must be of `tenant`.
    pub event: NewAuditEvent,
}

impl RetentionCommit {
    /// Checks what every store rejects before anything is written: a foreign event,
    /// a malformed kind, an empty or oversized period.
    ///
    /// # Errors
    /// [`StoreError::InvalidInput`] naming the field.
    pub fn validate(&self) -> Result<(), StoreError> {
        if self.event.tenant() != &self.tenant {
            return Err(StoreError::InvalidInput {
                field: "event",
                reason: format!(
                    "belongs to tenant {}, commit is for {}",
                    self.event.tenant(),
                    self.tenant
                ),
            });
        }
        check_kind(&self.kind)?;
        for (field, v) in [("ttl", &self.ttl), ("expected", &self.expected)] {
            if let Some(v) = v
                && (v.is_empty()
                    || v.len() > MAX_TTL_LEN
                    || !v.chars().all(|c| c.is_ascii_graphic()))
            {
                return Err(StoreError::InvalidInput {
                    field,
                    reason: format!("a period is 1 to {MAX_TTL_LEN} printable ASCII characters"),
                });
            }
        }
        Ok(())
    }

    /// What the commit changes, for [`StoreError::Conflict`] messages.
    pub fn what(&self) -> String {
        format!("retention override {}/{}", self.tenant, self.kind)
    }
}

/// Checks a blob kind name: 1 to [`MAX_KIND_LEN`] of `a-z`, `0-9`, `-`.
///
/// # Errors
/// [`StoreError::InvalidInput`] with field `kind`.
pub fn check_kind(kind: &str) -> Result<(), StoreError> {
    if kind.is_empty()
        || kind.len() > MAX_KIND_LEN
        || !kind
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
    {
        return Err(StoreError::InvalidInput {
            field: "kind",
            reason: format!("a kind is 1 to {MAX_KIND_LEN} of a-z, 0-9 and -"),
        });
    }
    Ok(())
}

/// Renders an optional period for [`StoreError::Conflict`] (`none` when absent).
pub fn show(v: Option<&str>) -> String {
    v.unwrap_or("none").to_string()
}

/// Durable per-tenant retention overrides (see the module docs).
#[async_trait]
pub trait RetentionStore: Send + Sync {
    /// `tenant`'s overrides, kind → period text. A tenant without any has none.
    async fn overrides(&self, tenant: &TenantId) -> Result<BTreeMap<String, String>, StoreError>;

    /// Applies `commit` and appends its event to the tenant's audit chain, both or
    /// neither; returns the sealed event.
    ///
    /// # Errors
    /// [`StoreError::InvalidInput`] (see [`RetentionCommit::validate`]),
    /// [`StoreError::Conflict`] when the stored override is not `commit.expected`,
    /// or the backend's error — in every case nothing changed.
    async fn commit_override(&self, commit: RetentionCommit) -> Result<AuditEvent, StoreError>;
}
