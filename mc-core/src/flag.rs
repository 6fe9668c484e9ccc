//! Per-tenant feature flags (spec §9). Flags are data: turning one off is the rollback.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// The release flags of spec §9. Every flag is **off** for a tenant until set.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Flag {
    /// Console write actions (cancel / retry / replay).
    ConsoleActionsEnabled,
    /// Evidence manifests and packs v2.
    EvidenceV2Enabled,
    /// Egress policy enforcement (off = shadow/audit-only).
    EgressPolicyEnforce,
    /// The drift remediation pull-request bot.
    DriftPrBotEnabled,
}

impl Flag {
    /// All flags.
    pub const ALL: [Flag; 4] = [
        Flag::ConsoleActionsEnabled,
        Flag::EvidenceV2Enabled,
        Flag::EgressPolicyEnforce,
        Flag::DriftPrBotEnabled,
    ];

    /// The flag's name as written in spec §9.
    pub fn as_str(self) -> &'static str {
        match self {
            Flag::ConsoleActionsEnabled => "console_actions_enabled",
            Flag::EvidenceV2Enabled => "evidence_v2_enabled",
            Flag::EgressPolicyEnforce => "egress_policy_enforce",
            Flag::DriftPrBotEnabled => "drift_pr_bot_enabled",
        }
    }
}

impl fmt::Display for Flag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An unknown flag name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "unknown flag {0:?}; expected one of console_actions_enabled, evidence_v2_enabled, egress_policy_enforce, drift_pr_bot_enabled"
)]
pub struct UnknownFlag(pub String);

impl FromStr for Flag {
    type Err = UnknownFlag;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Flag::ALL
            .into_iter()
            .find(|f| f.as_str() == s)
            .ok_or_else(|| UnknownFlag(s.to_string()))
    }
}
