//! Retention rules by blob kind, with per-tenant overrides inside fixed bounds.

use std::collections::BTreeMap;

use mc_core::TenantId;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::{LifecycleError, Ttl};

/// What a rule does when its period ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Enforcement {
    /// The janitor deletes objects older than the period (logs: purge at 90 days).
    Purge,
    /// A retention floor: objects must be kept at least the period and cannot be
    /// deleted or overwritten before it ends (receipts: 7 years, like S3 Object Lock in
    /// compliance mode); the janitor deletes them after it.
    RetainThenPurge,
}

/// The rule of one blob kind.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KindRule {
    /// The period when a tenant has no override.
    pub default: Ttl,
    /// The shortest override allowed.
    pub min: Ttl,
    /// The longest override allowed.
    pub max: Ttl,
    /// What the period means.
    pub enforcement: Enforcement,
}

/// The retention rules of every kind, and the tenants' overrides.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Retention {
    rules: BTreeMap<String, KindRule>,
    #[serde(default)]
    overrides: BTreeMap<String, BTreeMap<String, Ttl>>,
}

impl Default for Retention {
    /// Spec §1 B3 / §3.6: logs purged at 90 days (overrides 1 day – 10 years),
    /// receipts kept 7 years (overrides may only lengthen it, up to 100 years).
    fn default() -> Self {
        let mut rules = BTreeMap::new();
        rules.insert(
            "logs".to_string(),
            KindRule {
                default: Ttl::days(90),
                min: Ttl::days(1),
                max: Ttl::years(10),
                enforcement: Enforcement::Purge,
            },
        );
        rules.insert(
            "receipts".to_string(),
            KindRule {
                default: Ttl::years(7),
                min: Ttl::years(7),
                max: Ttl::years(100),
                enforcement: Enforcement::RetainThenPurge,
            },
        );
        Retention {
            rules,
            overrides: BTreeMap::new(),
        }
    }
}

impl Retention {
    /// The standard rules (see [`Default`]).
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds or replaces the rule of `kind` (builder style).
    #[must_use]
    pub fn with_rule(mut self, kind: &str, rule: KindRule) -> Self {
        self.rules.insert(kind.to_string(), rule);
        self
    }

    /// The kinds that have a rule, in name order.
    pub fn kinds(&self) -> impl Iterator<Item = &str> {
        self.rules.keys().map(String::as_str)
    }

    /// The rule of `kind`.
    pub fn rule(&self, kind: &str) -> Option<&KindRule> {
        self.rules.get(kind)
    }

    /// The period in force for `tenant`'s objects of `kind`: its override, else the
    /// kind's default; `None` when the kind has no rule (kept indefinitely).
    pub fn effective(&self, tenant: &TenantId, kind: &str) -> Option<Ttl> {
        let rule = self.rules.get(kind)?;
        Some(
            self.overrides
                .get(tenant.as_str())
                .and_then(|o| o.get(kind))
                .copied()
                .unwrap_or(rule.default),
        )
    }

    /// Sets `tenant`'s override of `kind` after checking it against the kind's bounds
    /// (compared at `now`). Returns the period it replaces.
    ///
    /// # Errors
    /// [`LifecycleError::NoRule`], [`LifecycleError::OverrideOutOfBounds`].
    pub fn set_override(
        &mut self,
        tenant: &TenantId,
        kind: &str,
        ttl: Ttl,
        now: OffsetDateTime,
    ) -> Result<Ttl, LifecycleError> {
        let rule = self.check_bounds(kind, ttl, now)?;
        let previous = self.effective(tenant, kind).unwrap_or(rule.default);
        self.overrides
            .entry(tenant.as_str().to_string())
            .or_default()
            .insert(kind.to_string(), ttl);
        Ok(previous)
    }

    /// The rule of `kind`, after checking that `ttl` lies within its bounds (compared
    /// at `now`).
    ///
    /// # Errors
    /// [`LifecycleError::NoRule`], [`LifecycleError::OverrideOutOfBounds`].
    pub fn check_bounds(
        &self,
        kind: &str,
        ttl: Ttl,
        now: OffsetDateTime,
    ) -> Result<&KindRule, LifecycleError> {
        let rule = self.rules.get(kind).ok_or_else(|| LifecycleError::NoRule {
            kind: kind.to_string(),
        })?;
        if !ttl.at_least(&rule.min, now) || !rule.max.at_least(&ttl, now) {
            return Err(LifecycleError::OverrideOutOfBounds {
                kind: kind.to_string(),
                ttl: ttl.to_string(),
                min: rule.min.to_string(),
                max: rule.max.to_string(),
            });
        }
        Ok(rule)
    }

    /// Removes `tenant`'s override of `kind`; returns it, if there was one.
    pub fn clear_override(&mut self, tenant: &TenantId, kind: &str) -> Option<Ttl> {
        let o = self.overrides.get_mut(tenant.as_str())?;
        let old = o.remove(kind);
        if o.is_empty() {
            self.overrides.remove(tenant.as_str());
        }
        old
    }

    /// Removes every override of `tenant`.
    pub fn clear_tenant(&mut self, tenant: &TenantId) {
        self.overrides.remove(tenant.as_str());
    }

    /// `tenant`'s overrides, kind → period.
    pub fn overrides(&self, tenant: &TenantId) -> BTreeMap<String, Ttl> {
        self.overrides
            .get(tenant.as_str())
            .cloned()
            .unwrap_or_default()
    }

    /// When an object of `tenant`'s `kind` last modified at `last_modified` may be
    /// deleted, and whether deleting it before then is forbidden (a floor).
    pub fn deletable_from(
        &self,
        tenant: &TenantId,
        kind: &str,
        last_modified: OffsetDateTime,
    ) -> Option<(OffsetDateTime, Enforcement)> {
        let rule = self.rules.get(kind)?;
        let ttl = self.effective(tenant, kind)?;
        Some((ttl.expiry(last_modified), rule.enforcement))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn defaults_and_overrides() {
        let mut r = Retention::new();
        let acme = TenantId::new("acme").unwrap();
        let now = datetime!(2025-12-10 00:00 UTC);
        assert_eq!(r.effective(&acme, "logs"), Some(Ttl::days(90)));
        assert_eq!(r.effective(&acme, "receipts"), Some(Ttl::years(7)));
        assert_eq!(r.effective(&acme, "evidence"), None);
        assert_eq!(
            r.set_override(&acme, "logs", "30d".parse().unwrap(), now)
                .unwrap(),
            Ttl::days(90)
        );
        assert_eq!(r.effective(&acme, "logs"), Some(Ttl::days(30)));
        let other = TenantId::new("globex").unwrap();
        assert_eq!(r.effective(&other, "logs"), Some(Ttl::days(90)));
        // Receipts may be kept longer, never shorter than 7 years.
        assert!(matches!(
            r.set_override(&acme, "receipts", "6y".parse().unwrap(), now),
            Err(LifecycleError::OverrideOutOfBounds { .. })
        ));
        assert!(matches!(
            r.set_override(&acme, "receipts", "2000d".parse().unwrap(), now),
            Err(LifecycleError::OverrideOutOfBounds { .. })
        ));
        r.set_override(&acme, "receipts", "10y".parse().unwrap(), now)
            .unwrap();
        assert!(matches!(
            r.set_override(&acme, "logs", "11y".parse().unwrap(), now),
            Err(LifecycleError::OverrideOutOfBounds { .. })
        ));
        assert!(matches!(
            r.set_override(&acme, "evidence", "1d".parse().unwrap(), now),
            Err(LifecycleError::NoRule { .. })
        ));
        assert_eq!(r.clear_override(&acme, "logs"), Some(Ttl::days(30)));
        assert_eq!(r.effective(&acme, "logs"), Some(Ttl::days(90)));
        let json = serde_json::to_string(&r).unwrap();
        let back: Retention = serde_json::from_str(&json).unwrap();
        assert_eq!(back, r);
    }
}
